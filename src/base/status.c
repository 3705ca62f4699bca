/* Status codes, error details, enum-name lookup, the log sink, the version. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

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

/* The version this library was built as (a program compiled against
 * another header sees the difference). */
const char *clipnn_version(void) { return CLIPNN_VERSION; }

const char *clipnn_strerror(clipnn_status status) {
    if ((unsigned)status >= CLIPNN_STATUS_COUNT) return "unknown status";
    return status_text[status];
}

static _Thread_local char last_error[4096]; /* room for two long paths and the reason */

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

/* Process-wide; atomic, so that setting the sink races with no training
 * thread that reads it. */
static _Atomic(clipnn_log_fn) log_fn;
static void *_Atomic log_user;

void clipnn_set_log(clipnn_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

/* Used by the library to tell things to an installed log sink. */
void clipnn_log(int level, const char *fmt, ...) {
    clipnn_log_fn fn = log_fn;
    if (!fn) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, log_user);
}
