/* npz files as numpy.savez writes and numpy.load reads them: a zip archive
 * of NAME.npy members. Written stored (no compression, no zip64: at most
 * 4 GiB), with a fixed timestamp so the same model gives the same bytes,
 * and the metadata as the member __metadata__.json (numpy.load returns it
 * as bytes). Read: stored or deflated members, zip64 sizes and offsets,
 * every size and offset checked against the file, CRCs verified, a
 * deflated member inflated into no more than its declared size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/bytes_le.h"
#include "export/export.h"
#include "io/json.h"
#include "io/npy.h"

enum {
    LOCAL_SIG = 0x04034b50, CENTRAL_SIG = 0x02014b50, END_SIG = 0x06054b50, END64_SIG = 0x06064b50,
    LOCATOR_SIG = 0x07064b50, LOCAL_SIZE = 30, CENTRAL_SIZE = 46, END_SIZE = 22, DOS_DATE_1980 = 0x21
};
static const char META_MEMBER[] = "__metadata__.json";

static void put_u16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static unsigned get_u16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* ---------------------------------------------------------------- write */

typedef struct {
    char *name;          /* member name */
    unsigned char *body; /* member bytes */
    size_t len;
    uint32_t crc, offset;
} member;

static clipnn_status tensor_member(const clipnn_tensor *t, member *m) {
    unsigned char head[CLIPNN_NPY_HEADER_MAX];
    size_t hl = clipnn_npy_header(head, t->shape, t->ndim), len = strlen(t->name);
    m->len = hl + 4 * t->count;
    m->body = clipnn_alloc(m->len);
    m->name = clipnn_alloc(len + 5);
    if (!m->body || !m->name) return clipnn_fail(CLIPNN_ERR_NOMEM, "npz: out of memory for tensor %s", t->name);
    memcpy(m->body, head, hl);
    le_put_f32s(m->body + hl, t->data, t->count);
    memcpy(m->name, t->name, len);
    memcpy(m->name + len, ".npy", 5);
    return CLIPNN_OK;
}

static clipnn_status meta_member(const clipnn_data_info *meta, member *m) {
    clipnn_text t = {0};
    clipnn_text_put(&t, "{", 1);
    for (size_t i = 0; i < clipnn_data_info_count(meta); i++) {
        const char *value, *key = clipnn_data_info_entry(meta, i, &value);
        if (i) clipnn_text_put(&t, ",", 1);
        clipnn_text_json_string(&t, key);
        clipnn_text_put(&t, ":", 1);
        clipnn_text_json_string(&t, value);
    }
    clipnn_text_put(&t, "}", 1);
    m->name = clipnn_alloc(sizeof META_MEMBER);
    if (t.failed || !m->name) {
        clipnn_text_free(&t);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "npz: out of memory for the metadata");
    }
    memcpy(m->name, META_MEMBER, sizeof META_MEMBER);
    m->body = (unsigned char *)t.p;
    m->len = t.len;
    return CLIPNN_OK;
}

static void entry_fields(unsigned char *p, const member *m) {
    put_u16(p, 20);                 /* version needed: 2.0 */
    put_u16(p + 2, 0);              /* flags */
    put_u16(p + 4, 0);              /* stored */
    put_u16(p + 6, 0);              /* time 00:00 */
    put_u16(p + 8, DOS_DATE_1980);  /* date 1980-01-01 */
    le_put_u32(p + 10, m->crc);
    le_put_u32(p + 14, (uint32_t)m->len);
    le_put_u32(p + 18, (uint32_t)m->len);
    put_u16(p + 22, (unsigned)strlen(m->name));
    put_u16(p + 24, 0);             /* extra */
}

typedef struct {
    member *m;
    size_t n;
} npz_job;

static int fill_npz(FILE *f, void *user) {
    npz_job *job = user;
    unsigned char h[CENTRAL_SIZE];
    uint32_t offset = 0, cd_size = 0;
    for (size_t i = 0; i < job->n; i++) {
        member *m = &job->m[i];
        size_t nl = strlen(m->name);
        m->offset = offset;
        le_put_u32(h, LOCAL_SIG);
        entry_fields(h + 4, m);
        if (fwrite(h, 1, LOCAL_SIZE, f) != LOCAL_SIZE || fwrite(m->name, 1, nl, f) != nl ||
            fwrite(m->body, 1, m->len, f) != m->len)
            return EIO;
        offset += (uint32_t)(LOCAL_SIZE + nl + m->len);
    }
    for (size_t i = 0; i < job->n; i++) {
        const member *m = &job->m[i];
        size_t nl = strlen(m->name);
        memset(h, 0, sizeof h);
        le_put_u32(h, CENTRAL_SIG);
        put_u16(h + 4, 20); /* made by: 2.0 */
        entry_fields(h + 6, m);
        le_put_u32(h + 42, m->offset);
        if (fwrite(h, 1, CENTRAL_SIZE, f) != CENTRAL_SIZE || fwrite(m->name, 1, nl, f) != nl) return EIO;
        cd_size += (uint32_t)(CENTRAL_SIZE + nl);
    }
    unsigned char e[END_SIZE] = {0};
    le_put_u32(e, END_SIG);
    put_u16(e + 8, (unsigned)job->n);
    put_u16(e + 10, (unsigned)job->n);
    le_put_u32(e + 12, cd_size);
    le_put_u32(e + 16, offset);
    return fwrite(e, 1, END_SIZE, f) == END_SIZE ? 0 : EIO;
}

clipnn_status clipnn_npz_write(const char *path, const clipnn_tensor_set *ts) {
    npz_job job = {clipnn_alloc_array(ts->n + 1, sizeof(member)), ts->n + 1};
    if (!job.m) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    clipnn_status s = CLIPNN_OK;
    uint64_t total = END_SIZE;
    for (size_t i = 0; !s && i < job.n; i++) {
        s = i < ts->n ? tensor_member(&ts->t[i], &job.m[i]) : meta_member(ts->meta, &job.m[i]);
        if (!s) job.m[i].crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), job.m[i].body, (uInt)job.m[i].len);
        if (!s) total += LOCAL_SIZE + CENTRAL_SIZE + 2 * strlen(job.m[i].name) + job.m[i].len;
        if (!s && (total > UINT32_MAX || job.m[i].len > UINT32_MAX || ts->n >= 0xffff))
            s = clipnn_fail(CLIPNN_ERR_OVERFLOW,
                            "%s: more than 4 GiB or 65535 members: too large for a zip without zip64", path);
    }
    if (!s) s = clipnn_write_atomic(path, "npz file", fill_npz, &job);
    for (size_t i = 0; i < job.n; i++) {
        clipnn_free(job.m[i].name);
        clipnn_free(job.m[i].body);
    }
    clipnn_free(job.m);
    return s;
}

/* ----------------------------------------------------------------- read */

typedef struct {
    const char *path;
    const unsigned char *b;
    size_t len;
} zip_file;

typedef struct {
    uint64_t count, cd_offset, cd_size;
} zip_directory;

static clipnn_status corrupt(const zip_file *z, const char *what) {
    return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not a valid npz (zip) file: %s", z->path, what);
}

/* The zip64 end record, when the classic one says its fields overflowed. */
static clipnn_status read_end64(const zip_file *z, size_t end_at, zip_directory *d) {
    if (end_at < 20 || le_get_u32(z->b + end_at - 20) != LOCATOR_SIG) return corrupt(z, "zip64 locator missing");
    uint64_t at = le_get_u64(z->b + end_at - 12);
    if (at > z->len || z->len - at < 56 || le_get_u32(z->b + at) != END64_SIG)
        return corrupt(z, "bad zip64 end record");
    d->count = le_get_u64(z->b + at + 32);
    d->cd_size = le_get_u64(z->b + at + 40);
    d->cd_offset = le_get_u64(z->b + at + 48);
    return CLIPNN_OK;
}

static clipnn_status read_directory(const zip_file *z, zip_directory *d) {
    if (z->len < END_SIZE)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: %zu bytes, too short for a zip file", z->path, z->len);
    size_t at = z->len - END_SIZE, stop = at > 0xffff ? at - 0xffff : 0;
    while (le_get_u32(z->b + at) != END_SIG) {
        if (at == stop) return corrupt(z, "no end of central directory (truncated?)");
        at--;
    }
    d->count = get_u16(z->b + at + 10);
    d->cd_size = le_get_u32(z->b + at + 12);
    d->cd_offset = le_get_u32(z->b + at + 16);
    if (d->count == 0xffff || d->cd_size == 0xffffffffu || d->cd_offset == 0xffffffffu) {
        clipnn_status s = read_end64(z, at, d);
        if (s) return s;
    }
    if (d->cd_offset > at || d->cd_size > at - d->cd_offset) return corrupt(z, "central directory outside the file");
    if (d->count > CLIPNN_TENSORS_MAX + 1) return corrupt(z, "too many members");
    return CLIPNN_OK;
}

/* One central directory entry at *at (advanced past it). */
typedef struct {
    char name[512];
    unsigned method, flags;
    uint32_t crc;
    uint64_t csize, usize, local;
} zip_entry;

/* The zip64 extra field: the 64-bit values of the fields that overflowed. */
static clipnn_status zip64_extra(const zip_file *z, const unsigned char *x, size_t n, zip_entry *e) {
    while (n >= 4) {
        unsigned id = get_u16(x), size = get_u16(x + 2);
        if (size > n - 4) return corrupt(z, "extra field runs past its entry");
        if (id == 1) {
            uint64_t *fields[3] = {&e->usize, &e->csize, &e->local};
            uint64_t limits[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
            size_t k = 4;
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != limits[i]) continue;
                if (k + 8 > 4 + (size_t)size) return corrupt(z, "short zip64 extra field");
                *fields[i] = le_get_u64(x + k);
                k += 8;
            }
        }
        x += 4 + size;
        n -= 4 + size;
    }
    return CLIPNN_OK;
}

static clipnn_status read_entry(const zip_file *z, uint64_t *at, uint64_t end, zip_entry *e) {
    if (end - *at < CENTRAL_SIZE || le_get_u32(z->b + *at) != CENTRAL_SIG)
        return corrupt(z, "bad central directory entry");
    const unsigned char *h = z->b + *at;
    size_t nl = get_u16(h + 28), xl = get_u16(h + 30), cl = get_u16(h + 32);
    if (end - *at - CENTRAL_SIZE < nl + xl + cl) return corrupt(z, "central directory entry runs past the directory");
    if (nl == 0 || nl >= sizeof e->name || memchr(h + CENTRAL_SIZE, 0, nl)) return corrupt(z, "bad member name");
    memcpy(e->name, h + CENTRAL_SIZE, nl);
    e->name[nl] = 0;
    e->flags = get_u16(h + 8);
    e->method = get_u16(h + 10);
    e->crc = le_get_u32(h + 16);
    e->csize = le_get_u32(h + 20);
    e->usize = le_get_u32(h + 24);
    e->local = le_get_u32(h + 42);
    *at += CENTRAL_SIZE + nl + xl + cl;
    return zip64_extra(z, h + CENTRAL_SIZE + nl, xl, e);
}

/* The member's bytes: in place when stored, inflated into *owned when
 * deflated (at most its declared size, which bounds the allocation). */
static clipnn_status member_bytes(const zip_file *z, const zip_entry *e, const unsigned char **out,
                                  unsigned char **owned) {
    *owned = NULL;
    if (e->flags & 1) return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: member %s is encrypted", z->path, e->name);
    if (e->local > z->len || z->len - e->local < LOCAL_SIZE || le_get_u32(z->b + e->local) != LOCAL_SIG)
        return corrupt(z, "bad local header");
    uint64_t data = e->local + LOCAL_SIZE + get_u16(z->b + e->local + 26) + get_u16(z->b + e->local + 28);
    if (data > z->len || e->csize > z->len - data)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: member %s runs past the end of the file", z->path, e->name);
    const unsigned char *p = z->b + data;
    if (e->method == 0) {
        if (e->usize != e->csize) return corrupt(z, "stored member whose sizes differ");
        *out = p;
    } else if (e->method == 8) {
        /* deflate expands at most 1032-fold: a larger claim is a lie */
        if (e->usize > 1032 * e->csize + 64 || e->usize > ((uint64_t)1 << 32))
            return corrupt(z, "implausible uncompressed size");
        clipnn_status limit = clipnn_check_input_size(z->path, e->usize);
        if (limit) return limit;
        unsigned char *u = clipnn_alloc((size_t)e->usize + 1);
        if (!u) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for member %s", z->path, e->name);
        z_stream st;
        memset(&st, 0, sizeof st);
        int ok = inflateInit2(&st, -15) == Z_OK;
        st.next_in = (unsigned char *)p, st.avail_in = (uInt)e->csize;
        st.next_out = u, st.avail_out = (uInt)e->usize + 1;
        ok = ok && inflate(&st, Z_FINISH) == Z_STREAM_END && st.total_out == e->usize;
        inflateEnd(&st);
        if (!ok) {
            clipnn_free(u);
            return corrupt(z, "a deflated member does not inflate to its size");
        }
        *out = *owned = u;
    } else {
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED,
                           "%s: member %s uses compression method %u (stored and deflate are read)", z->path, e->name,
                           e->method);
    }
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), *out, (uInt)e->usize) != e->crc) {
        clipnn_free(*owned);
        *owned = NULL;
        return clipnn_fail(CLIPNN_ERR_CHECKSUM, "%s: member %s: CRC mismatch, the file is damaged", z->path, e->name);
    }
    return CLIPNN_OK;
}

static clipnn_status read_meta_member(const zip_file *z, const unsigned char *p, size_t n, clipnn_data_info *meta) {
    clipnn_json *j;
    clipnn_status s = clipnn_json_parse(z->path, (const char *)p, n, &j);
    if (s) return s;
    if (j->type != JSON_OBJECT) s = corrupt(z, "__metadata__.json is not an object");
    for (size_t i = 0; !s && i < j->n; i++) {
        if (j->items[i].type != JSON_STRING) s = corrupt(z, "a metadata value is not a string");
        else if (clipnn_data_info_set(meta, j->keys[i], j->items[i].text))
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: metadata entry %.64s: bad value or key", z->path, j->keys[i]);
    }
    clipnn_json_free(j);
    return s;
}

static clipnn_status read_member(const zip_file *z, const zip_entry *e, clipnn_tensor_set *ts) {
    const unsigned char *p = NULL;
    unsigned char *owned = NULL;
    clipnn_status s = member_bytes(z, e, &p, &owned);
    if (s) return s;
    size_t nl = strlen(e->name), n = (size_t)e->usize;
    if (!strcmp(e->name, META_MEMBER)) {
        s = read_meta_member(z, p, n, ts->meta);
    } else if (nl > 4 && !strcmp(e->name + nl - 4, ".npy")) {
        char tname[512];
        memcpy(tname, e->name, nl - 4);
        tname[nl - 4] = 0;
        float *v = NULL;
        size_t shape[CLIPNN_NPY_MAX_DIMS], ndim = 0;
        char where[1100];
        snprintf(where, sizeof where, "%s: member %s", z->path, e->name);
        s = clipnn_npy_read_mem(where, p, n, &v, shape, &ndim);
        for (size_t i = 0; !s && i < ts->n; i++)
            if (!strcmp(ts->t[i].name, tname)) s = corrupt(z, "two members of the same name");
        if (!s && ndim > CLIPNN_TENSOR_MAX_DIMS)
            s = clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: %zu dimensions; 1 or 2 are read", where, ndim);
        if (!s) s = clipnn_tensor_set_add(ts, tname, shape, ndim, v);
        if (s) clipnn_free(v);
    } else {
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: member %s is neither an .npy array nor %s", z->path, e->name,
                        META_MEMBER);
    }
    clipnn_free(owned);
    return s;
}

static clipnn_status parse_npz(const char *path, const unsigned char *b, size_t len, clipnn_tensor_set *ts) {
    zip_file z = {path, b, len};
    zip_directory d = {0, 0, 0};
    clipnn_status s = read_directory(&z, &d);
    uint64_t at = s ? 0 : d.cd_offset, end = s ? 0 : d.cd_offset + d.cd_size;
    for (uint64_t i = 0; !s && i < d.count; i++) {
        zip_entry e;
        s = read_entry(&z, &at, end, &e);
        if (!s) s = read_member(&z, &e, ts);
    }
    return s;
}

clipnn_status clipnn_npz_read(const char *path, clipnn_tensor_set *ts) {
    return clipnn_tensor_set_read(path, parse_npz, ts);
}
