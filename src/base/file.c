/* Reading a whole file, plain or gzip, and inflating gzip bytes in memory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/base.h"

enum { FIRST_CHUNK = 1 << 16 };

/* Grow *buf ([*cap]) so that it holds at least need bytes, doubling, but
 * never past limit. */
static int grow(unsigned char **buf, size_t *cap, size_t need, size_t limit) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : FIRST_CHUNK;
    while (c < need) c = c > SIZE_MAX / 2 ? SIZE_MAX : 2 * c;
    if (c > limit) c = limit;
    if (c < need) return -1;
    unsigned char *p = clipnn_realloc_array(*buf, c, 1);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

static clipnn_status gz_status(gzFile g, const char *path) {
    int errnum = Z_OK;
    const char *msg = gzerror(g, &errnum);
    switch (errnum) {
    case Z_OK:
    case Z_STREAM_END: return CLIPNN_OK;
    case Z_BUF_ERROR:
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the compressed data end early (%s)", path, msg);
    case Z_DATA_ERROR: return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: corrupt gzip data (%s)", path, msg);
    case Z_MEM_ERROR: return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory while decompressing", path);
    case Z_ERRNO: return clipnn_fail(CLIPNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
    default: return clipnn_fail(CLIPNN_ERR_IO, "%s: read error: %s", path, msg);
    }
}

/* path opened for reading through zlib (plain files pass through); *st
 * and *known: what fstat said of it. */
static clipnn_status open_file(const char *path, gzFile *g, int *fd, struct stat *st, int *known) {
    *fd = open(path, O_RDONLY);
    if (*fd < 0) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    *known = fstat(*fd, st) == 0;
    if (*known && S_ISDIR(st->st_mode)) {
        close(*fd);
        return clipnn_fail(CLIPNN_ERR_IO, "%s: is a directory, not a file", path);
    }
    *g = gzdopen(*fd, "rb");
    if (!*g) {
        close(*fd);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    (void)gzbuffer(*g, 1 << 17);
    return CLIPNN_OK;
}

/* Start near the final size when the file tells it: a plain file is its
 * own size, and gzip rarely inflates past 8x. Still bounded by the bytes
 * on disk, whatever a header inside claims. */
static clipnn_status presize(const char *path, int fd, const struct stat *st, unsigned char **b, size_t *cap,
                             size_t limit) {
    unsigned char magic[2] = {0, 0};
    if (!(S_ISREG(st->st_mode) && st->st_size > 0 && (uint64_t)st->st_size < SIZE_MAX / 16 &&
          pread(fd, magic, 2, 0) >= 0))
        return CLIPNN_OK;
    int gzip = magic[0] == 0x1f && magic[1] == 0x8b;
    size_t guess = (gzip ? 8 : 1) * (size_t)st->st_size + 2;
    if (grow(b, cap, guess < limit ? guess : limit, limit))
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, guess);
    return CLIPNN_OK;
}

/* Everything g inflates into *b (grown as needed), up to max_len + 1 bytes;
 * text: refuse a NUL byte as soon as it arrives (a stream of NULs, such as
 * a gzip bomb, ends at its first chunk). */
static clipnn_status read_all(gzFile g, const char *path, size_t max_len, int text, size_t limit,
                              unsigned char **b, size_t *cap, size_t *n) {
    for (;;) {
        if (grow(b, cap, *n + 2, limit))
            return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory after reading %zu bytes", path, *n);
        size_t want = *cap - 1 - *n;
        if (want > (1u << 30)) want = 1u << 30;
        int r = gzread(g, *b + *n, (unsigned)want);
        if (r < 0) {
            clipnn_status s = gz_status(g, path);
            return s ? s : clipnn_fail(CLIPNN_ERR_IO, "%s: read error", path);
        }
        if (r == 0) return gz_status(g, path);
        const unsigned char *nul = text ? memchr(*b + *n, 0, (size_t)r) : NULL;
        if (nul)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: binary data (a NUL byte at byte %zu), not a text file", path,
                               *n + (size_t)(nul - (*b + *n)));
        *n += (size_t)r;
        if (*n > max_len) return CLIPNN_OK;
    }
}

/* clipnn_read_file and clipnn_read_text_file. A max_len past the input
 * limit is the limit, and a file longer than that is refused by name. */
static clipnn_status read_file(const char *path, size_t max_len, int text, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    uint64_t input_limit = clipnn_max_input_bytes();
    int capped = (uint64_t)max_len >= input_limit;
    if (capped) max_len = input_limit < SIZE_MAX ? (size_t)input_limit : SIZE_MAX;
    if (max_len > SIZE_MAX / 2) max_len = SIZE_MAX / 2;
    gzFile g = NULL;
    int fd = -1, known = 0;
    struct stat st;
    clipnn_status s = open_file(path, &g, &fd, &st, &known);
    if (s) return s;
    unsigned char *b = NULL;
    size_t cap = 0, n = 0, limit = max_len + 2; /* max_len + 1 bytes and the NUL */
    if (known) s = presize(path, fd, &st, &b, &cap, limit);
    if (!s) s = read_all(g, path, max_len, text, limit, &b, &cap, &n);
    gzclose_r(g);
    if (!s && capped && n > max_len) s = clipnn_fail_input_limit(path, input_limit);
    if (s) {
        clipnn_free(b);
        return s;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return CLIPNN_OK;
}

clipnn_status clipnn_read_file(const char *path, size_t max_len, unsigned char **buf, size_t *len) {
    return read_file(path, max_len, 0, buf, len);
}

clipnn_status clipnn_read_text_file(const char *path, unsigned char **buf, size_t *len) {
    return read_file(path, SIZE_MAX, 1, buf, len);
}

/* n bytes of g into to, or dropped (to NULL); *done counts those read. */
static clipnn_status pass_bytes(gzFile g, const char *path, unsigned char *to, size_t n, size_t *done) {
    unsigned char scratch[1 << 14];
    while (n > 0) {
        size_t want = n > (1u << 30) ? 1u << 30 : n;
        if (!to && want > sizeof scratch) want = sizeof scratch;
        int r = gzread(g, to ? to : scratch, (unsigned)want);
        if (r < 0) {
            clipnn_status s = gz_status(g, path);
            return s ? s : clipnn_fail(CLIPNN_ERR_IO, "%s: read error", path);
        }
        if (r == 0) return gz_status(g, path);
        if (to) to += r;
        n -= (size_t)r, *done += (size_t)r;
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_read_file_range(const char *path, size_t offset, size_t count, size_t max_len, unsigned char *buf,
                                     size_t *len) {
    *len = 0;
    gzFile g = NULL;
    int fd = -1, known = 0;
    struct stat st;
    clipnn_status s = open_file(path, &g, &fd, &st, &known);
    if (s) return s;
    s = pass_bytes(g, path, NULL, offset, len);
    if (!s && *len == offset) s = pass_bytes(g, path, buf, count, len);
    if (!s && *len == offset + count) s = pass_bytes(g, path, NULL, max_len + 1 - *len, len);
    gzclose_r(g);
    return s;
}

clipnn_status clipnn_gunzip_memory(const char *name, const unsigned char *gz, size_t gz_len,
                                   unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: cannot start decompression", name);
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;
    clipnn_status s = CLIPNN_OK;
    z.next_in = (unsigned char *)gz; /* zlib's API is not const-correct */
    for (;;) {
        if (grow(&b, &cap, n + 2, SIZE_MAX)) {
            s = clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory decompressing", name);
            break;
        }
        size_t in_chunk = gz_len > UINT_MAX ? UINT_MAX : gz_len;
        size_t out_room = cap - 1 - n > UINT_MAX ? UINT_MAX : cap - 1 - n;
        z.avail_in = (unsigned)in_chunk;
        z.next_out = b + n;
        z.avail_out = (unsigned)out_room;
        int r = inflate(&z, Z_NO_FLUSH);
        size_t used = in_chunk - z.avail_in;
        gz += used;
        gz_len -= used;
        n += out_room - z.avail_out;
        if (r == Z_STREAM_END) break;
        if (r == Z_BUF_ERROR && gz_len == 0) {
            s = clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the compressed data end early", name);
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: corrupt gzip data (%s)", name, z.msg ? z.msg : "?");
            break;
        }
    }
    inflateEnd(&z);
    if (s) {
        clipnn_free(b);
        return s;
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return CLIPNN_OK;
}

