/* Resource limits: the most bytes one input file may inflate to, and the
 * most memory one model, workspace or data set may be estimated to take.
 * Both default to a share of the memory the system has available, so that
 * a hostile file or an absurd option is refused with a clear line instead
 * of driving the process into swap or the OOM killer. */
#include <ctype.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static _Atomic uint64_t max_input_set, max_memory_set; /* 0: default */

/* MemAvailable of /proc/meminfo in bytes; the free physical pages where
 * there is no such file. Read with open/read: no allocation, so that it
 * may be called anywhere. */
uint64_t clipnn_memory_available(void) {
    char text[4096];
    int fd = open("/proc/meminfo", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (n > 0) {
        text[n] = 0;
        const char *line = strstr(text, "MemAvailable:");
        if (line) return (uint64_t)strtoull(line + sizeof "MemAvailable:" - 1, NULL, 10) * 1024;
    }
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : (uint64_t)1 << 32;
}

/* "123", "64K", "1.5G" (powers of 1024) into *out; -1 when it is not one. */
int clipnn_parse_bytes(const char *text, uint64_t *out) {
    char *end;
    double v = text ? strtod(text, &end) : -1;
    if (!text || end == text || !(v > 0)) return -1;
    const char *units = "KMGT", *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (*end && (!u || !*u || end[1])) return -1;
    for (const char *p = units; u && p <= u; p++) v *= 1024;
    if (!(v < 1.8e19)) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* The limit set by the API, else by the environment variable, else 0. */
static uint64_t chosen(_Atomic uint64_t *set, const char *env) {
    uint64_t v = atomic_load(set);
    if (v) return v;
    return clipnn_parse_bytes(getenv(env), &v) ? 0 : v;
}

void clipnn_set_max_input_bytes(uint64_t bytes) { atomic_store(&max_input_set, bytes); }
void clipnn_set_max_memory(uint64_t bytes) { atomic_store(&max_memory_set, bytes); }

uint64_t clipnn_max_input_bytes(void) {
    uint64_t v = chosen(&max_input_set, "CLIPNN_MAX_INPUT_BYTES");
    return v ? v : clipnn_memory_available() / 8; /* parsing a CSV file takes ~7 times its size */
}

uint64_t clipnn_max_memory(void) {
    uint64_t v = chosen(&max_memory_set, "CLIPNN_MAX_MEMORY");
    return v ? v : clipnn_memory_available();
}

void clipnn_format_bytes(double bytes, char out[32]) {
    static const char *const unit[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
    snprintf(out, 32, u ? "%.3g %s" : "%.0f %s", bytes, unit[u]);
}

clipnn_status clipnn_check_memory(double bytes, const char *what) {
    double limit = (double)clipnn_max_memory();
    if (bytes <= limit) return CLIPNN_OK;
    char need[32], have[32];
    clipnn_format_bytes(bytes, need);
    clipnn_format_bytes(limit, have);
    return clipnn_fail(CLIPNN_ERR_NOMEM, "%s would take about %s, more than the memory limit of %s (the memory "
                       "available, or CLIPNN_MAX_MEMORY)", what, need, have);
}

clipnn_status clipnn_check_input_size(const char *path, uint64_t bytes) {
    uint64_t limit = clipnn_max_input_bytes();
    return bytes > limit ? clipnn_fail_input_limit(path, limit) : CLIPNN_OK;
}

clipnn_status clipnn_fail_input_limit(const char *path, uint64_t limit) {
    char have[32], twice[32];
    clipnn_format_bytes((double)limit, have);
    snprintf(twice, sizeof twice, "%lluM", (unsigned long long)(2 * (limit >> 20) + 1));
    return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: larger than the input limit of %s (after decompression); raise "
                       "it with the environment variable CLIPNN_MAX_INPUT_BYTES, e.g. CLIPNN_MAX_INPUT_BYTES=%s",
                       path, have, twice);
}
