/* Status codes, error details, counted allocation, threads. */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

static const char *const status_text[CLIPNN_STATUS_COUNT] = {
    [CLIPNN_OK] = "success",
    [CLIPNN_ERR_INVALID_ARG] = "invalid argument",
    [CLIPNN_ERR_NOMEM] = "out of memory",
    [CLIPNN_ERR_OVERFLOW] = "size overflow",
    [CLIPNN_ERR_IO] = "input/output error",
    [CLIPNN_ERR_FORMAT] = "bad file format",
    [CLIPNN_ERR_TRUNCATED] = "file truncated",
    [CLIPNN_ERR_CHECKSUM] = "checksum mismatch",
    [CLIPNN_ERR_SHAPE] = "shape mismatch",
    [CLIPNN_ERR_NONFINITE] = "non-finite value",
    [CLIPNN_ERR_UNSUPPORTED] = "unsupported",
    [CLIPNN_ERR_STATE] = "invalid state",
};

const char *clipnn_strerror(clipnn_status status) {
    if ((unsigned)status >= CLIPNN_STATUS_COUNT) return "unknown status";
    return status_text[status];
}

static _Thread_local char last_error[512];

const char *clipnn_last_error(void) { return last_error[0] ? last_error : "no error"; }

clipnn_status clipnn_fail(clipnn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int clipnn_lookup_name(const char *const *names, size_t n, const char *name, const char *what) {
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(name, names[i])) return (int)i;
    char list[256];
    size_t len = 0;
    list[0] = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    clipnn_fail(CLIPNN_ERR_INVALID_ARG, "unknown %s '%s' (%s)", what, name ? name : "(null)", list);
    return -1;
}

static clipnn_log_fn log_fn;
static void *log_user;

void clipnn_set_log(clipnn_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

/* ------------------------------------------------------------ allocation */

static atomic_uint_fast64_t n_allocations;

uint64_t clipnn_allocation_count(void) { return (uint64_t)atomic_load(&n_allocations); }

int clipnn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int clipnn_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

void *clipnn_alloc(size_t bytes) {
    atomic_fetch_add(&n_allocations, 1);
    return malloc(bytes ? bytes : 1);
}

void *clipnn_alloc_array(size_t count, size_t size) {
    size_t bytes;
    if (clipnn_mul_size(count, size, &bytes)) return NULL;
    atomic_fetch_add(&n_allocations, 1);
    return calloc(bytes ? count : 1, bytes ? size : 1);
}

void *clipnn_realloc_array(void *p, size_t count, size_t size) {
    size_t bytes;
    if (clipnn_mul_size(count, size, &bytes)) return NULL;
    atomic_fetch_add(&n_allocations, 1);
    return realloc(p, bytes ? bytes : 1);
}

void clipnn_free(void *p) { free(p); }

/* --------------------------------------------------------------- threads */

/* openblas_set_num_threads exists only when OpenBLAS provides libblas; a
 * weak reference lets the same binary run on netlib BLAS. */
extern void openblas_set_num_threads(int) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

static int n_threads = 1;

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
     * BLAS on one slice per thread (src/dense.c); BLAS threads of their own
     * would spin against the OpenMP ones on the same cores. */
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}

int clipnn_get_threads(void) { return n_threads; }

const char *clipnn_blas_name(void) { return openblas_get_config ? "openblas" : "netlib"; }

int clipnn_threads_for(size_t work) {
    /* Below ~64k element operations a parallel region costs more than it saves. */
    if (n_threads <= 1 || work < 65536) return 1;
    return n_threads;
}

/* Used by the library to tell things to an installed log sink. */
void clipnn_log(int level, const char *fmt, ...) {
    if (!log_fn) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}
