/* Dense layer kernels on CBLAS. Row-major throughout; W is [out][in] like
 * torch.nn.Linear.weight so that a row is one unit.
 *
 * Threads split a layer by units (columns of z, rows of W and dW) at fixed
 * boundaries (clipnn_chunk), and every thread calls a single-threaded BLAS
 * on its slice: one thread pool (OpenMP) for everything, so no BLAS worker
 * spins against an OpenMP worker on the same core, and the result depends
 * only on the number of threads. A batch of one goes through GEMV (and a
 * rank-one loop), which skips the packing a GEMM does for nothing.
 *
 * Where the BLAS multiplies small GEMMs straight from their operands
 * (clipnn_gemm_direct_macs), a thread's slice is cut into tiles within
 * that size: at a batch of 32 a slice of a layer is a GEMM that it would
 * pack (W's slice, for 32 rows of activations) and, for dW, zero first;
 * its tiles skip both. */
#include <cblas.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/nn.h"


/* Units per tile of a slice of n units of a GEMM over B rows of the batch,
 * macs_per_unit multiply-adds a unit: the widest multiple of 16 (whole
 * cache lines of a row) within the direct limit and max_units, or the
 * whole slice. Tiles pay off at small batches only: on OpenBLAS's AVX-512
 * kernels, one thread, a tile of dW at batch 32 ran at 1.2-1.3x the packed
 * slice, at batch 64 1.1x (tiles of 32-48 rows) to 1.0x (16), at batch 128
 * 0.75-0.9x; so no tiles past 64 rows or narrower than min_units. */
static size_t tile_units(size_t n, size_t B, size_t macs_per_unit, size_t max_units, size_t min_units) {
    size_t limit = clipnn_gemm_direct_macs;
    if (!limit || B > 64) return n;
    size_t u = limit / macs_per_unit;
    if (u > max_units) u = max_units;
    if (n <= u) return n;
    u -= u % 16;
    return u >= min_units ? u : n;
}

/* The forward's product as the BLAS sees it (column-major, W transposed)
 * goes direct only with C of at most 1200 entries and a depth of 32 or
 * more; tiles of 16-32 units ran at 1.07-1.6x the slice at batch 32, at
 * 0.9x at batch 64. */
static size_t forward_tile_units(size_t n, size_t B, size_t in) {
    return B <= 32 ? tile_units(n, B, B * in, in >= 32 ? 1200 / B : 0, 16) : n;
}

/* dW tiles of rows x cols for a slice of n rows: whole rows when 32 of
 * them fit the limit, else 32 rows by columns split evenly within it
 * (1.03-1.1x the slice where whole rows did not fit: 1024 inputs at batch
 * 32, 784 at 64). */
static void weight_tiles(size_t n, size_t in, size_t B, size_t *rows, size_t *cols) {
    *rows = tile_units(n, B, in * B, SIZE_MAX, 32), *cols = in;
    if (*rows < n || !clipnn_gemm_direct_macs || B > 64 || n * in * B <= clipnn_gemm_direct_macs) return;
    size_t r = n < 32 ? n : 32, c = clipnn_gemm_direct_macs / (r * B);
    if (c < 32) return;
    size_t parts = (in + c - 1) / c, even = (in + parts - 1) / parts;
    even += (16 - even % 16) % 16;
    *rows = r, *cols = even * r * B <= clipnn_gemm_direct_macs ? even : even - 16;
}

/* z[B][lo:hi) = a[B][in] W[lo:hi][in]^T   (z rows have stride out)
 * No bias: it is added with the activation in one pass over z. */
void clipnn_dense_forward_cols(float *z, const float *a, const float *W, size_t B, size_t in, size_t out,
                               size_t lo, size_t hi) {
    if (hi <= lo) return;
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(hi - lo), (int)in, 1.0f, W + lo * in, (int)in, a, 1, 0.0f,
                    z + lo, 1);
    else
        for (size_t step = forward_tile_units(hi - lo, B, in), j = lo; j < hi; j += step)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)(hi - j < step ? hi - j : step),
                        (int)in, 1.0f, a, (int)in, W + j * in, (int)in, 0.0f, z + j, (int)out);
}

/* Rows lo..hi of the batch-of-one dW = dz a^T: row j is dz_j a. */
CLIPNN_HOT_KERNEL void rank_one_rows(float *dW, const float *dz, const float *a, size_t in, size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; j++) {
        float d = dz[j], *restrict row = dW + j * in;
#pragma omp simd
        for (size_t i = 0; i < in; i++) row[i] = d * a[i];
    }
}

/* db[lo:hi) = sum over the B rows of dz[B][out] of their columns lo..hi. */
CLIPNN_HOT_KERNEL void column_sums(float *db, const float *dz, size_t B, size_t out, size_t lo, size_t hi) {
    memcpy(db + lo, dz + lo, (hi - lo) * sizeof *db);
    for (size_t r = 1; r < B; r++) {
        const float *restrict row = dz + r * out;
        float *restrict acc = db;
#pragma omp simd
        for (size_t j = lo; j < hi; j++) acc[j] += row[j];
    }
}

/* dW[lo:hi][in] = dz[B][lo:hi)^T a[B][in], tile by tile. */
static void weight_grad_tiles(float *dW, const float *dz, const float *a, size_t B, size_t in, size_t out, size_t lo,
                              size_t hi) {
    size_t rows, cols;
    weight_tiles(hi - lo, in, B, &rows, &cols);
    for (size_t j = lo; j < hi; j += rows)
        for (size_t k = 0; k < in; k += cols)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - j < rows ? hi - j : rows),
                        (int)(in - k < cols ? in - k : cols), (int)B, 1.0f, dz + j, (int)out, a + k, (int)in, 0.0f,
                        dW + j * in + k, (int)in);
}

/* dW[lo:hi][in] = dz[B][lo:hi)^T a[B][in]     (dW, db may be NULL)
 * db[lo:hi)     = sum over B of dz[B][lo:hi) */
void clipnn_dense_weight_grad_rows(float *dW, float *db, const float *dz, const float *a, size_t B, size_t in,
                                   size_t out, size_t lo, size_t hi) {
    if (hi <= lo) return;
    if (dW && B == 1)
        rank_one_rows(dW, dz, a, in, lo, hi);
    else if (dW)
        weight_grad_tiles(dW, dz, a, B, in, out, lo, hi);
    if (db) column_sums(db, dz, B, out, lo, hi);
}

/* da[B][lo:hi) = dz[B][out] W[out][lo:hi)   (da rows have stride in) */
void clipnn_dense_input_grad_cols(float *da, const float *dz, const float *W, size_t B, size_t in, size_t out,
                                  size_t lo, size_t hi) {
    if (hi <= lo) return;
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)out, (int)(hi - lo), 1.0f, W + lo, (int)in, dz, 1, 0.0f,
                    da + lo, 1);
    else
        for (size_t step = tile_units(hi - lo, B, B * out, SIZE_MAX, 32), i = lo; i < hi; i += step)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(hi - i < step ? hi - i : step),
                        (int)out, 1.0f, dz, (int)out, W + i, (int)in, 0.0f, da + i, (int)in);
}

static int threads_for_layer(size_t B, size_t in, size_t out) { return clipnn_threads_for_macs(B * in * out); }

/* dW[out][in] = dz[B][out]^T a[B][in];  db[out] = sum_B dz;
 * da[B][in] = dz[B][out] W[out][in]. Any of dW, db, da may be NULL. */
void clipnn_dense_backward(float *dW, float *db, float *da, const float *dz, const float *a, const float *W,
                           size_t B, size_t in, size_t out) {
    int threads = threads_for_layer(B, in, out);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = clipnn_thread_id(), T = clipnn_thread_count();
        size_t lo, hi;
        clipnn_chunk(out, t, T, &lo, &hi);
        clipnn_dense_weight_grad_rows(dW, db, dz, a, B, in, out, lo, hi);
        if (da) {
            clipnn_chunk(in, t, T, &lo, &hi);
            clipnn_dense_input_grad_cols(da, dz, W, B, in, out, lo, hi);
        }
    }
}
