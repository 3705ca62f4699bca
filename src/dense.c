/* Dense layer kernels on CBLAS. Row-major throughout; W is [out][in] like
 * torch.nn.Linear.weight so that a row is one unit.
 *
 * Threads split a layer by units (columns of z, rows of W and dW) at fixed
 * boundaries (clipnn_chunk), and every thread calls a single-threaded BLAS
 * on its slice: one thread pool (OpenMP) for everything, so no BLAS worker
 * spins against an OpenMP worker on the same core, and the result depends
 * only on the number of threads. A batch of one goes through GEMV (and a
 * rank-one loop), which skips the packing a GEMM does for nothing. */
#include <cblas.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

#ifdef _OPENMP
int clipnn_thread_id(void) { return omp_get_thread_num(); }
int clipnn_thread_count(void) { return omp_get_num_threads(); }
#else
int clipnn_thread_id(void) { return 0; }
int clipnn_thread_count(void) { return 1; }
#endif

/* Thread t's share [lo, hi) of n units among T threads; boundaries on
 * multiples of 16 floats (a cache line) when there is room, so that threads
 * writing neighbouring columns of the same row do not share lines. */
void clipnn_chunk(size_t n, int t, int T, size_t *lo, size_t *hi) {
    size_t unit = n >= 16 * (size_t)T ? 16 : 1;
    size_t blocks = (n + unit - 1) / unit;
    size_t b0 = blocks * (size_t)t / (size_t)T, b1 = blocks * (size_t)(t + 1) / (size_t)T;
    *lo = b0 * unit < n ? b0 * unit : n;
    *hi = b1 * unit < n ? b1 * unit : n;
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)(hi - lo), (int)in, 1.0f, a, (int)in,
                    W + lo * in, (int)in, 0.0f, z + lo, (int)out);
}

/* dW[lo:hi][in] = dz[B][lo:hi)^T a[B][in]     (dW, db may be NULL)
 * db[lo:hi)     = sum over B of dz[B][lo:hi) */
void clipnn_dense_weight_grad_rows(float *dW, float *db, const float *dz, const float *a, size_t B, size_t in,
                                   size_t out, size_t lo, size_t hi) {
    if (hi <= lo) return;
    if (dW && B == 1) {
        /* Rank one: row j of dW is dz_j a. */
        for (size_t j = lo; j < hi; j++) {
            float d = dz[j], *restrict row = dW + j * in;
#pragma omp simd
            for (size_t i = 0; i < in; i++) row[i] = d * a[i];
        }
    } else if (dW) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), (int)in, (int)B, 1.0f, dz + lo,
                    (int)out, a, (int)in, 0.0f, dW + lo * in, (int)in);
    }
    if (db) {
        memcpy(db + lo, dz + lo, (hi - lo) * sizeof *db);
        for (size_t r = 1; r < B; r++) {
            const float *restrict row = dz + r * out;
            float *restrict acc = db;
#pragma omp simd
            for (size_t j = lo; j < hi; j++) acc[j] += row[j];
        }
    }
}

/* da[B][lo:hi) = dz[B][out] W[out][lo:hi)   (da rows have stride in) */
void clipnn_dense_input_grad_cols(float *da, const float *dz, const float *W, size_t B, size_t in, size_t out,
                                  size_t lo, size_t hi) {
    if (hi <= lo) return;
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)out, (int)(hi - lo), 1.0f, W + lo, (int)in, dz, 1, 0.0f,
                    da + lo, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)(hi - lo), (int)out, 1.0f, dz,
                    (int)out, W + lo, (int)in, 0.0f, da + lo, (int)in);
}

/* Threads for a pass of `macs` multiply-adds with a barrier every layer.
 * With clipnn_barrier_wait a barrier costs ~0.2 us quiet and ~2 us with
 * another process busy; the parallel region itself (libgomp) 1-10 us. So
 * threads from 2^17 multiply-adds: a batch of one through 784-256-128-10
 * (235k) takes 56 us on two threads against 90 us on one. */
size_t clipnn_parallel_macs = (size_t)1 << 17;

/* Barrier of the n threads of a parallel region: a short spin, then
 * sched_yield. libgomp's barrier measured 15-300 us here (2 vCPUs on a
 * shared host) against 0.2 us for this one, and its futex sleep costs a
 * scheduler slice when another process holds the other core, where a
 * yield hands the core back at once. */
void clipnn_barrier_wait(clipnn_barrier *b, int n) {
    if (n <= 1) return;
    int gen = atomic_load_explicit(&b->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == n - 1) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_store_explicit(&b->gen, gen + 1, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == gen; spins++) {
        if (spins < 500) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

int clipnn_threads_for_macs(size_t macs) { return macs >= clipnn_parallel_macs ? clipnn_threads_for(macs) : 1; }

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
