/* The base of the library: status and error details, counted allocation,
 * random numbers, threads, whole-file reads and atomic writes. Private; every
 * other folder builds on it and it builds on nothing of the library's. */
#ifndef CLIPNN_BASE_H
#define CLIPNN_BASE_H

#include "clipnn.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* ------------------------------------------------------------- errors */

/* Record a one-line detail for clipnn_last_error() and return status. */
clipnn_status clipnn_fail(clipnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Index of name in names[n]; -1 (and "unknown WHAT 'name' (names...)" as
 * the last error) when it is not there. The parsers of enum names share it. */
int clipnn_lookup_name(const char *const *names, size_t n, const char *name, const char *what);

/* The public PREFIX_name(TYPE) and PREFIX_parse(const char *, TYPE *) of an
 * enum whose names are the table NAMES[COUNT] ("unknown" past its end;
 * parse fails with INVALID_ARG and a message listing the names, calling
 * the enum WHAT). */
#define CLIPNN_NAME_FUNCTIONS(PREFIX, TYPE, NAMES, COUNT, WHAT)                   \
    const char *PREFIX##_name(TYPE v) { return (unsigned)v < (COUNT) ? NAMES[v] : "unknown"; } \
    clipnn_status PREFIX##_parse(const char *name, TYPE *out) {                  \
        int i = clipnn_lookup_name(NAMES, (COUNT), name, WHAT);                   \
        if (i < 0) return CLIPNN_ERR_INVALID_ARG;                                 \
        *out = (TYPE)i;                                                           \
        return CLIPNN_OK;                                                         \
    }

/* Is v a class index of k outputs or classes (an integer in [0, k))? The
 * one test of every place that takes class labels. */
static inline int clipnn_is_class_index(double v, size_t k) { return v >= 0 && v < (double)k && v == floor(v); }

/* A message for the sink of clipnn_set_log (level 0 information, 1
 * warning); nothing without a sink. Formats on the stack: safe inside the
 * training steps, which must not allocate. */
void clipnn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Part k of `parts` contiguous parts of n items: [*lo, *hi) = [n k / parts,
 * n (k + 1) / parts), computed without forming n k (parts < 2: all of it).
 * The one cut of a training set into the shards of a data-parallel job. */
static inline void clipnn_part_bounds(size_t n, size_t k, size_t parts, size_t *lo, size_t *hi) {
    if (parts < 2) {
        *lo = 0, *hi = n;
        return;
    }
    size_t q = n / parts, r = n % parts;
    *lo = q * k + r * k / parts;
    *hi = q * (k + 1) + r * (k + 1) / parts;
}

/* --------------------------------------------------------- allocation */

/* All library allocations go through these so that they can be counted
 * (clipnn_allocation_count) and overflow-checked. */
void *clipnn_alloc(size_t bytes);                  /* malloc, counted */
void *clipnn_alloc_array(size_t count, size_t size); /* zeroed; NULL on overflow */
void *clipnn_realloc_array(void *p, size_t count, size_t size);
/* zeroed, starting on a 64-byte line; NULL on overflow; released only with
 * clipnn_free_aligned (never clipnn_free or realloc) */
void *clipnn_alloc_aligned_array(size_t count, size_t size);
void clipnn_free_aligned(void *p);
void clipnn_free(void *p);
/* a * b into *out; 0 on success, -1 on overflow. */
int clipnn_mul_size(size_t a, size_t b, size_t *out);
int clipnn_add_size(size_t a, size_t b, size_t *out);

/* ---------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: fast, reproducible everywhere. */
typedef struct {
    uint64_t s[4];
} clipnn_rng;

void clipnn_rng_seed(clipnn_rng *r, uint64_t seed);
uint64_t clipnn_rng_next(clipnn_rng *r);
double clipnn_rng_uniform(clipnn_rng *r);          /* [0, 1) */
uint64_t clipnn_rng_below(clipnn_rng *r, uint64_t n); /* [0, n), unbiased */
double clipnn_rng_normal(clipnn_rng *r);           /* N(0, 1) */
void clipnn_rng_shuffle(clipnn_rng *r, size_t *items, size_t n);

/* Gaussian noise by blocks of a counter-based stream: a key (one
 * clipnn_rng_next draw per use) names a stream, block b of it depends on
 * the key and b alone. Float Box-Muller over Philox4x32-10 bits
 * (src/base/normal_block.c says how exact). */
#define CLIPNN_NORMAL_BLOCK 1024
void clipnn_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
void clipnn_normal_block(uint64_t key, uint64_t block, float z[CLIPNN_NORMAL_BLOCK]);
/* g[j] = (a g[j] + std z_j) inv, and g[j] = (sum[j] + std z_j) inv, in
 * double, z_j entry j of the stream key (j < n). */
void clipnn_normal_scale(uint64_t key, double a, double std, double inv, float *g, size_t n);
void clipnn_normal_mean(uint64_t key, double std, double inv, const double *sum, float *g, size_t n);

/* ------------------------------------------------------------ threads */

/* A pass is split among threads at the fixed boundaries of clipnn_chunk. */
void clipnn_chunk(size_t n, int t, int T, size_t *lo, size_t *hi);
int clipnn_threads_for_macs(size_t macs); /* threads for a layer-by-layer pass of that many multiply-adds */
/* Barrier for the threads of one parallel region (src/nn/dense.c): zero it
 * before the region, every thread calls clipnn_barrier_wait(b, team size). */
typedef struct {
    _Atomic int count, gen;
} clipnn_barrier;
void clipnn_barrier_wait(clipnn_barrier *b, int n);
/* Work below which model passes run on one thread (2^17 multiply-adds;
 * updates: a sixteenth of it in parameters). Tests set 0 to run the split
 * kernels on small models. */
extern size_t clipnn_parallel_macs;
/* The largest GEMM (multiply-adds) the BLAS multiplies without packing its
 * operands, 0 when it packs every one: the dense kernels cut a thread's
 * slice into tiles within it (src/nn/dense.c). Set at load from the BLAS
 * and the CPU; the bench sets 0 to compare. */
extern size_t clipnn_gemm_direct_macs;
int clipnn_thread_id(void);    /* omp_get_thread_num, 0 without OpenMP */
int clipnn_thread_count(void); /* omp_get_num_threads, 1 without OpenMP */
int clipnn_threads_for(size_t work); /* threads worth using for `work` element ops */

/* ---------------------------------------------------------------- clock */

/* Monotonic seconds (CLOCK_MONOTONIC), for the durations results report. */
double clipnn_now_seconds(void);

/* -------------------------------------------------------- hot kernels */

/* Starts the definition of a static function holding a hot loop outside
 * BLAS. The function is compiled three times, for x86-64-v4 (AVX-512),
 * x86-64-v3 (AVX2, FMA) and the x86-64 baseline, and the dynamic loader
 * picks the one the CPU runs (GCC's target_clones, an ifunc): a build that
 * can be copied to any x86-64 keeps the vector width of the machine it
 * runs on. Static because GCC 12 gives the dispatcher of a non-static
 * clone default visibility whatever -fvisibility says, so the library
 * would export it; an external function calls the static kernel. Numbers
 * depend on the clone only through the order of simd reductions (the
 * vector width; -std=c11 fuses no a * b + c into an FMA), so they are the
 * same on every run of a given machine. CLIPNN_NO_DISPATCH (make NATIVE=1,
 * make DISPATCH=0) compiles one version, for the flags of the build; so
 * do compilers and C libraries without ifuncs. */
#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(CLIPNN_NO_DISPATCH)
#define CLIPNN_HOT_KERNEL static __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLIPNN_HOT_KERNEL static
#endif


/* ------------------------------------------------------------- limits */

/* Bytes of memory the system has available now (MemAvailable). */
uint64_t clipnn_memory_available(void);
/* "123", "64K", "1.5G" (powers of 1024) into *out; -1 when it is not one. */
int clipnn_parse_bytes(const char *text, uint64_t *out);
/* bytes as "4.8 GB", "512 bytes". */
void clipnn_format_bytes(double bytes, char out[32]);
/* OK when an estimate of bytes fits the memory limit (clipnn_max_memory);
 * else NOMEM with "WHAT would take about X, more than the memory limit of
 * Y ...". Called before large allocations, with the estimate of the whole
 * object (a double: estimates never overflow). */
clipnn_status clipnn_check_memory(double bytes, const char *what);
/* OK when a file of bytes is within the input limit, else as below. */
clipnn_status clipnn_check_input_size(const char *path, uint64_t bytes);
/* NOMEM: "PATH: larger than the input limit of X ...; raise it ...". */
clipnn_status clipnn_fail_input_limit(const char *path, uint64_t limit);

/* ---------------------------------------------------------------- files */

/* The whole of path (gzip inflated) into *buf ([*len] bytes and a NUL), or
 * its first max_len + 1 bytes when it is longer (the caller judges). A
 * file past the input limit (clipnn_max_input_bytes) is refused, whatever
 * max_len says. */
clipnn_status clipnn_read_file(const char *path, size_t max_len, unsigned char **buf, size_t *len);
/* A whole text file, as clipnn_read_file with no max_len of its own: a NUL
 * byte is refused (FORMAT) as soon as it is read. */
clipnn_status clipnn_read_text_file(const char *path, unsigned char **buf, size_t *len);
/* Bytes [offset, offset + count) of path (gzip inflated) into buf[count],
 * and in *len the file's length counted up to max_len + 1 (the caller
 * judges; offset + count <= max_len): the bytes around the range are
 * inflated and dropped, never held. A file that ends before the range
 * leaves *len short of offset + count. */
clipnn_status clipnn_read_file_range(const char *path, size_t offset, size_t count, size_t max_len, unsigned char *buf,
                                     size_t *len);
/* Inflate gzip bytes held in memory; name is used in messages. */
clipnn_status clipnn_gunzip_memory(const char *name, const unsigned char *gz, size_t gz_len,
                                   unsigned char **buf, size_t *len);

/* ------------------------------------------- atomic files (src/train/checkpoint.c) */

/* Writes the contents of a file; returns 0 or the errno of a failed write. */
typedef int (*clipnn_fill_fn)(FILE *f, void *user);
/* Write path atomically: fill() writes PATH.tmp.XXXXXX beside it, which is
 * flushed, fsynced and renamed over path, then the directory is fsynced. On
 * failure the temporary file is removed, an existing path is left as it was,
 * and the IO message says "PATH: <what> not saved (...)". */
clipnn_status clipnn_write_atomic(const char *path, const char *what, clipnn_fill_fn fill, void *user);
/* Writes n floats to f as little-endian float32; returns 0 or the errno of
 * the failed write. */
int clipnn_fwrite_f32s(FILE *f, const float *v, size_t n);

#endif
