/* Owner computes: the training set is cut into one contiguous part per
 * process (clipnn_part_bounds), each process holds its part only, every
 * process draws the same global batch and computes the rows it owns. The
 * MPI calls only with CLIPNN_MPI. */
#include <stdint.h>
#include <string.h>

#include "dist/dist.h"

#ifdef CLIPNN_MPI
#include <mpi.h>
#endif

static struct {
    size_t n, first, lo, hi; /* the set's rows, the first held, the rows [lo, hi) this process owns */
    size_t parts;            /* processes */
    size_t *counts;          /* [parts]: the current batch's rows per owner */
    double sum_max, sum_mean; /* over the batches: the largest owner's rows, the rows per process on average */
} own = {0, 0, 0, 0, 1, NULL, 0, 0};

/* One process: the set must be whole. */
static clipnn_status whole_set(size_t n, size_t first, size_t held) {
    if (first == 0 && held == n) return CLIPNN_OK;
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: the training set holds rows %zu to %zu of %zu only (a shard); "
                       "one process trains on the whole set", first, first + held, n);
}

clipnn_status clipnn_dist_open_shard(size_t n, size_t first, size_t held, size_t row_bytes) {
    /* trainings outside a job may run in several threads at once: they touch no state */
    if (!clipnn_dist_active()) return whole_set(n, first, held);
    clipnn_dist_close_shard();
    own.parts = (size_t)clipnn_dist_size();
    own.n = n, own.first = first;
    clipnn_part_bounds(n, own.parts > 1 ? (size_t)clipnn_dist_rank() : 0, own.parts, &own.lo, &own.hi);
    own.sum_max = own.sum_mean = 0;
    if (own.lo < first || own.hi > first + held) {
        if (own.parts < 2) return whole_set(n, first, held);
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: the training set holds rows %zu to %zu of %zu, but process "
                           "%d of %zu owns rows %zu to %zu (load shard %d of %zu)", first, first + held, n,
                           clipnn_dist_rank(), own.parts, own.lo, own.hi, clipnn_dist_rank(), own.parts);
    }
    if (own.parts > 1)
        clipnn_log(0, "train: process %d of %zu holds rows %zu to %zu of %zu (%.1f MB), owns rows %zu to %zu",
                   clipnn_dist_rank(), own.parts, first, first + held, n, (double)held * (double)row_bytes / 1e6,
                   own.lo, own.hi);
    /* the load measurement; the owner of row i is ((i + 1) N - 1) / n */
    if (own.parts > 1 && n <= SIZE_MAX / own.parts && !(own.counts = clipnn_alloc_array(own.parts, sizeof *own.counts)))
        return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory");
    return CLIPNN_OK;
}

void clipnn_dist_close_shard(void) {
    if (!own.counts) return; /* nothing held (outside a job, nothing to write) */
    clipnn_free(own.counts);
    own.counts = NULL;
}

size_t clipnn_dist_take_owned(size_t *idx, size_t len, size_t *pos) {
    size_t kept = 0;
    for (size_t i = 0; i < len; i++) {
        size_t row = idx[i];
        if (own.counts) own.counts[((row + 1) * own.parts - 1) / own.n]++;
        if (row < own.lo || row >= own.hi) continue;
        if (pos) pos[kept] = i;
        idx[kept++] = row - own.first;
    }
    return kept;
}

void clipnn_dist_owned_rows(size_t *lo, size_t *hi) { *lo = own.lo - own.first, *hi = own.hi - own.first; }

void clipnn_dist_batch_done(void) {
    if (!own.counts) return;
    size_t most = 0, rows = 0;
    for (size_t k = 0; k < own.parts; k++) {
        most = own.counts[k] > most ? own.counts[k] : most;
        rows += own.counts[k];
        own.counts[k] = 0;
    }
    own.sum_max += (double)most;
    own.sum_mean += (double)rows / (double)own.parts;
}

double clipnn_dist_imbalance(void) { return own.sum_mean > 0 ? own.sum_max / own.sum_mean - 1 : 0; }

#ifdef CLIPNN_MPI
/* n values of `size` bytes summed over the processes, in pieces an int
 * counts; the time of a step's counted with the steps' all-reduces. */
static void sum_values(void *a, size_t n, size_t size, MPI_Datatype type, int step) {
    double t0 = clipnn_now_seconds();
    while (clipnn_dist_active() && n > 0) {
        int piece = n > INT32_MAX ? INT32_MAX : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, a, piece, type, MPI_SUM, MPI_COMM_WORLD);
        a = (char *)a + (size_t)piece * size, n -= (size_t)piece;
    }
    if (step) clipnn_dist_count_reduce(clipnn_now_seconds() - t0);
}
#endif

void clipnn_dist_sum_doubles(double *a, size_t n, int step) {
#ifdef CLIPNN_MPI
    sum_values(a, n, sizeof *a, MPI_DOUBLE, step);
#else
    (void)a, (void)n, (void)step;
#endif
}

void clipnn_dist_sum_f32(float *a, size_t n, int step) {
#ifdef CLIPNN_MPI
    sum_values(a, n, sizeof *a, MPI_FLOAT, step);
#else
    (void)a, (void)n, (void)step;
#endif
}
