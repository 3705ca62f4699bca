/* clipnn: Status codes, error details, the log sink, threads and the allocation count: what every part of the API uses. */
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

#define CLIPNN_VERSION_MAJOR 0
#define CLIPNN_VERSION_MINOR 1
#define CLIPNN_VERSION_PATCH 0

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

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_BASE_H */
