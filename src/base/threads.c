/* Threads: the library's thread count, the split of a pass among threads,
 * and the barrier of a parallel region. */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/base.h"

/* openblas_set_num_threads exists only when OpenBLAS provides libblas; a
 * weak reference lets the same binary run on netlib BLAS. */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

/* Process-wide; atomic, so that threads of the application may set and
 * read it while others train. */
static _Atomic int n_threads = 1;

/* OpenBLAS starts with threads of its own; the library's single-threaded
 * default must not run BLAS on several (see clipnn_set_threads). */
__attribute__((constructor)) static void blas_single_threaded(void) {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}

void clipnn_set_threads(int n) {
    if (n < 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)(online < CLIPNN_MAX_THREADS ? online : CLIPNN_MAX_THREADS) : 1;
    }
    /* More threads than this only cost: each OpenMP thread is an OS thread. */
    if (n > CLIPNN_MAX_THREADS) n = CLIPNN_MAX_THREADS;
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    /* The library splits its kernels among its own OpenMP threads and calls
     * BLAS on one slice per thread (src/nn/dense.c); BLAS threads of their own
     * would spin against the OpenMP ones on the same cores. */
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}

int clipnn_get_threads(void) { return n_threads; }

const char *clipnn_blas_name(void) { return openblas_get_config ? "openblas" : "netlib"; }

extern char *openblas_get_corename(void) __attribute__((weak));

/* OpenBLAS from 0.3.16 on, on its AVX-512 Intel cores, multiplies a GEMM
 * of at most 10^6 multiply-adds straight from its operands (its
 * small-matrix kernels); a larger one it packs both operands into buffers
 * first and, for beta = 0, zeroes C in a pass of its own. Elsewhere every
 * GEMM is packed: 0, no limit worth tiling for. */
static size_t direct_gemm_macs(void) {
    if (!openblas_get_config || !openblas_get_corename) return 0;
    const char *core = openblas_get_corename(), *config = openblas_get_config();
    int major = 0, minor = 0, patch = 0;
    if (!core || !config || sscanf(config, "OpenBLAS %d.%d.%d", &major, &minor, &patch) != 3) return 0;
    int recent = major > 0 || minor > 3 || (minor == 3 && patch >= 16);
    int avx512 = !strcmp(core, "SkylakeX") || !strcmp(core, "Cooperlake") || !strcmp(core, "SapphireRapids");
    return recent && avx512 ? 1000000 : 0;
}

size_t clipnn_gemm_direct_macs;

__attribute__((constructor)) static void detect_direct_gemm(void) { clipnn_gemm_direct_macs = direct_gemm_macs(); }

int clipnn_threads_for(size_t work) {
    /* Below ~64k element operations a parallel region costs more than it saves. */
    if (n_threads <= 1 || work < 65536) return 1;
    return n_threads;
}

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
