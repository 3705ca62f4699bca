/* clipnn: status codes, error details, the version, the log sink, threads and
 * the allocation count: what every part of the API uses. */
#ifndef CLIPNN_PUBLIC_BASE_H
#define CLIPNN_PUBLIC_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only what is declared with CLIPNN_API is exported from the shared library. */
#if defined(_WIN32)
#define CLIPNN_API
#else
#define CLIPNN_API __attribute__((visibility("default")))
#endif

/* The version of this header. The three numbers are the one source of the
 * version: the build derives the shared library's soname (libclipnn.so.0.MINOR
 * while MAJOR is 0, whose minor versions may break the ABI; libclipnn.so.MAJOR
 * after) and clipnn.pc's Version from them. */
#define CLIPNN_VERSION_MAJOR 0
#define CLIPNN_VERSION_MINOR 5
#define CLIPNN_VERSION_PATCH 0
#define CLIPNN_VERSION_STR_(x) #x
#define CLIPNN_VERSION_STR(x) CLIPNN_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH", e.g. "0.2.0". */
#define CLIPNN_VERSION                                                                            \
    CLIPNN_VERSION_STR(CLIPNN_VERSION_MAJOR) "." CLIPNN_VERSION_STR(CLIPNN_VERSION_MINOR) "." \
        CLIPNN_VERSION_STR(CLIPNN_VERSION_PATCH)

/* The version of the library actually linked ("MAJOR.MINOR.PATCH"), which
 * can differ from CLIPNN_VERSION when a program runs against another build
 * of the shared library. A static string. */
CLIPNN_API const char *clipnn_version(void);

/* ------------------------------------------------------------------ status */

typedef enum {
    CLIPNN_OK = 0,
    CLIPNN_ERR_INVALID_ARG, /* an argument or option is out of its domain */
    CLIPNN_ERR_NOMEM,       /* allocation failed */
    CLIPNN_ERR_OVERFLOW,    /* a size computation would overflow */
    CLIPNN_ERR_IO,          /* a file could not be opened, read or written */
    CLIPNN_ERR_FORMAT,      /* a file is not of the expected format */
    CLIPNN_ERR_TRUNCATED,   /* a file ended early */
    CLIPNN_ERR_CHECKSUM,    /* a file's checksum does not match */
    CLIPNN_ERR_SHAPE,       /* shapes do not agree */
    CLIPNN_ERR_NONFINITE,   /* NaN or Inf met where it is not allowed */
    CLIPNN_ERR_UNSUPPORTED, /* valid request this build cannot serve */
    CLIPNN_ERR_STATE,       /* call made in the wrong state (e.g. batch > reserved) */
    CLIPNN_STATUS_COUNT
} clipnn_status;

CLIPNN_API const char *clipnn_strerror(clipnn_status status);
/* The name of names[0..n) closest to word in edit distance (insertions,
 * deletions, substitutions and swaps of neighbours, case ignored), when it
 * is close enough to be a likely typo (at most 1 edit for words of up to 4
 * characters, 2 up to 8, 3 beyond), else the first name that word (of 2
 * characters or more) begins; NULL otherwise. For "did you mean" messages. */
CLIPNN_API const char *clipnn_closest_name(const char *word, const char *const *names, size_t n);
/* Detail of the last failure on this thread, e.g.
 * "data.csv: line 12, column 3: not a number: 'abc'". Never NULL. */
CLIPNN_API const char *clipnn_last_error(void);

/* Optional log sink for messages the library wants to tell (level 0 = info,
 * 1 = warning), one line each without a newline, called on the thread that
 * made the library call. Warnings: a training step skipped under the skip
 * policy for non-finite values (its number and what was not finite).
 * Information: a resumed run (where it resumes), the input scaling a
 * loaded data set got. NULL (the default) keeps the library silent. */
typedef void (*clipnn_log_fn)(int level, const char *message, void *user);
CLIPNN_API void clipnn_set_log(clipnn_log_fn fn, void *user);

/* Number of threads of the library's parallel passes (BLAS runs on one
 * slice per thread). n <= 0: one per online processor; at most
 * CLIPNN_MAX_THREADS. The default is 1. Results are bit-identical for a
 * given thread count. */
#define CLIPNN_MAX_THREADS 256
CLIPNN_API void clipnn_set_threads(int n);
CLIPNN_API int clipnn_get_threads(void);
CLIPNN_API const char *clipnn_blas_name(void); /* "openblas", "netlib" ... */

/* Number of heap allocations the library has made since start. Lets a
 * caller (and the tests) show that training steps allocate nothing. */
CLIPNN_API uint64_t clipnn_allocation_count(void);

/* Resource limits, process-wide. The input limit bounds the bytes of one
 * input file once decompressed (CSV, IDX, NPY, checkpoints): a larger file
 * is refused (NOMEM) with a message giving the limit and how to
 * raise it, before it can fill the memory. Its default is an eighth of the
 * memory available when the library first needs it (MemAvailable of
 * /proc/meminfo, else the free physical pages), or the environment
 * variable CLIPNN_MAX_INPUT_BYTES. The memory limit bounds what one model,
 * its workspace, optimizer buffers or one data set is estimated to take:
 * more is refused (NOMEM) with one line stating the estimate, before the
 * memory is allocated. Its default is the memory available at the time of
 * the check, or CLIPNN_MAX_MEMORY. Both variables take a byte count with
 * an optional K, M, G or T suffix (powers of 1024). Setting 0 restores the
 * default. */
CLIPNN_API void clipnn_set_max_input_bytes(uint64_t bytes);
CLIPNN_API uint64_t clipnn_max_input_bytes(void);
CLIPNN_API void clipnn_set_max_memory(uint64_t bytes);
CLIPNN_API uint64_t clipnn_max_memory(void);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_BASE_H */
