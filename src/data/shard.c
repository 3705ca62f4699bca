/* Shards of a training set: the rows one process of a data-parallel job
 * keeps (contiguous ranges, the same cut whatever the format). */
#include <string.h>

#include "data/data.h"

clipnn_status clipnn_dataset_keep_shard(clipnn_dataset *d, size_t shard, size_t shards) {
    if (shards < 2 || d->n != d->total) return CLIPNN_OK; /* whole, or already a shard */
    size_t lo, hi;
    clipnn_part_bounds(d->n, shard, shards, &lo, &hi);
    size_t rows = hi - lo;
    /* Fresh arrays of the shard's size: the whole set's are returned to the
     * allocator at once, not kept behind a shrunk block. */
    float *x = clipnn_alloc_array(rows ? rows * d->dim : 1, sizeof *x);
    float *y = clipnn_alloc_array(rows ? rows * d->n_targets : 1, sizeof *y);
    if (!x || !y) {
        clipnn_free(x), clipnn_free(y);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for shard %zu of %zu", d->name, shard, shards);
    }
    memcpy(x, d->x + lo * d->dim, rows * d->dim * sizeof *x);
    memcpy(y, d->y + lo * d->n_targets, rows * d->n_targets * sizeof *y);
    clipnn_free(d->x), clipnn_free(d->y);
    d->x = x, d->y = y;
    d->first = lo, d->n = rows;
    return CLIPNN_OK;
}
