/* Clip21's error-feedback vectors in a checkpoint: each process's e_r is
 * gathered to process 0, which writes them all (the FEED section), and a
 * job resumed with the same number of processes gives each its own back.
 *
 * FEED layout (little-endian, docs/formats.md):
 *   0    u64 processes N of the job that saved it
 *   8    u64 n_params
 *   16   f32 e[N][n_params], process r's vector at r */
#include <limits.h>

#include "base/bytes_le.h"
#include "dist/dist.h"

#ifdef CLIPNN_MPI
#include <mpi.h>
#endif

enum { FEED_HEADER = 16 };

/* Bytes of a payload of N vectors of n floats; 0 when that overflows. */
static uint64_t feed_bytes(uint64_t N, uint64_t n) {
    if (N == 0 || n > (UINT64_MAX - FEED_HEADER) / 4 / N || FEED_HEADER + 4 * N * n > SIZE_MAX) return 0;
    return FEED_HEADER + 4 * N * n;
}

clipnn_status clipnn_dist_check_feed(const unsigned char *p, size_t len, size_t n_params, const char *path) {
    if (len < FEED_HEADER)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: Clip21 (FEED) section of %zu bytes is too short", path, len);
    uint64_t N = le_get_u64(p), n = le_get_u64(p + 8);
    if (n != n_params)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: Clip21 (FEED) section for %llu parameters, the model has %zu", path,
                           (unsigned long long)n, n_params);
    if (feed_bytes(N, n) != len)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: Clip21 (FEED) section of %zu bytes does not hold %llu vectors of "
                           "%llu floats", path, len, (unsigned long long)N, (unsigned long long)n);
    return CLIPNN_OK;
}

#ifdef CLIPNN_MPI
/* n floats from process `from` to process 0, in pieces an int can count. */
static void move_floats(float *v, size_t n, int from, int rank) {
    for (size_t done = 0; done < n;) {
        int piece = n - done > INT_MAX ? INT_MAX : (int)(n - done);
        if (rank == 0) MPI_Recv(v + done, piece, MPI_FLOAT, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        else MPI_Send(v + done, piece, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
        done += (size_t)piece;
    }
}
#endif

/* Process 0 writes its own vector, then receives the others' one by one
 * into `spare` (n floats) and encodes each at its place. */
static void gather_vectors(float *e, size_t n, unsigned char *out, float *spare) {
    int rank = clipnn_dist_rank(), N = clipnn_dist_size();
    if (rank == 0) le_put_f32s(out + FEED_HEADER, e, n);
#ifdef CLIPNN_MPI
    for (int r = 1; r < N; r++) {
        if (rank == r) move_floats(e, n, r, rank);
        if (rank != 0) continue;
        move_floats(spare, n, r, 0);
        le_put_f32s(out + FEED_HEADER + 4 * (size_t)r * n, spare, n);
    }
#else
    (void)spare, (void)N;
#endif
}

clipnn_status clipnn_dist_save_feed(unsigned char **out, size_t *len) {
    size_t n = 0;
    float *e = clipnn_dist_feed(&n);
    *out = NULL, *len = 0;
    if (!e) return CLIPNN_OK;
    int N = clipnn_dist_size(), root = clipnn_dist_rank() == 0;
    uint64_t bytes = feed_bytes((uint64_t)N, n);
    unsigned char *blob = root && bytes ? clipnn_alloc((size_t)bytes) : NULL;
    float *spare = root && N > 1 ? clipnn_alloc_array(n, sizeof *spare) : NULL;
    /* every process learns whether process 0 can hold them before any sends */
    int short_of_memory = clipnn_dist_agree(root && (!blob || (N > 1 && !spare)));
    if (short_of_memory) {
        clipnn_free(blob), clipnn_free(spare);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory on process 0 for the %d processes' Clip21 vectors "
                           "of %zu floats", N, n);
    }
    if (root) le_put_u64(blob, (uint64_t)N), le_put_u64(blob + 8, n);
    gather_vectors(e, n, blob, spare);
    clipnn_free(spare);
    *out = blob, *len = root ? (size_t)bytes : 0;
    return CLIPNN_OK;
}

clipnn_status clipnn_dist_restore_feed(const unsigned char *p, size_t len, const char *origin) {
    size_t n = 0;
    float *e = clipnn_dist_feed(&n);
    if (!e && !p) return CLIPNN_OK;
    if (!e)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the run was made with --clip-where clip21 (its processes' "
                           "error-feedback vectors are saved); continue it with --clip-where clip21", origin);
    if (!p)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: --clip-where clip21 cannot resume: the checkpoint holds no "
                           "error-feedback vectors (the run was made without --clip-where clip21)", origin);
    clipnn_status s = clipnn_dist_check_feed(p, len, n, origin);
    if (s) return s;
    uint64_t saved = le_get_u64(p);
    if (saved != (uint64_t)clipnn_dist_size())
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: --clip-where clip21 saved by %llu processes cannot resume on "
                           "%d: each error-feedback vector belongs to one process of the saved job", origin,
                           (unsigned long long)saved, clipnn_dist_size());
    le_get_f32s(e, p + FEED_HEADER + 4 * (size_t)clipnn_dist_rank() * n, n);
    return CLIPNN_OK;
}
