/* Checkpoints: a model and, optionally, the training state of the run that
 * made it, in one self-checking file.
 *
 * Layout, all integers little-endian (docs/formats.md says the same):
 *
 *   offset   size  field
 *   0        8     magic: 'C' 'L' 'I' 'P' 'N' 'N' 0x00 0x1a
 *   8        4     u32 format version, 1
 *   12       8     u64 length of the whole file, CRC included
 *   20       ...   sections, each: u32 tag (four ASCII bytes in file order),
 *                  u64 payload length, payload
 *   length-4 4     u32 CRC-32 (zlib's crc32, as gzip and PNG) of every byte
 *                  before it
 *
 *   ARCH  required, before PARM: u64 n_inputs, u64 n_layers, then for each
 *         layer u64 width, u32 activation code (0 identity, 1 sigmoid,
 *         2 tanh, 3 gelu, 4 softplus, 5 relu)
 *   PARM  required: the n_params float32 of the model, for each layer W
 *         ([out][in], row-major) then b ([out])
 *   OPTM  optional: optimizer state (src/optim_state.c)
 *   CLIP  optional: clipper state (src/clip.c; opaque here)
 *   TRAN  optional: loop state of clipnn_train (src/train_state.c); its
 *         presence is what makes the file resumable
 *
 * Each tag appears at most once. Readers skip tags they do not know, so a
 * later writer can add optional sections without a new version; a change old
 * readers must not miss bumps the version.
 *
 * The length in the header tells a truncated file (shorter than it says)
 * from a damaged one (right length, wrong CRC). The CRC is verified over the
 * whole file before any section is trusted, and every size read from the
 * file is bounded by the file's real size before anything is allocated, so
 * a forged header cannot ask for gigabytes.
 *
 * Saving writes PATH.tmp.XXXXXX in the same directory, flushes, fsyncs,
 * closes and renames it over PATH (atomic on POSIX file systems), then
 * fsyncs the directory so the rename itself survives a crash. On any failure
 * the temporary file is removed and an existing PATH is left as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/bytes_le.h"
#include "train/train.h"

static const unsigned char magic[8] = {'C', 'L', 'I', 'P', 'N', 'N', 0x00, 0x1a};
enum { FORMAT_VERSION = 1, HEADER_BYTES = 20, SECTION_HEADER = 12, CRC_BYTES = 4 };

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_ARCH TAG('A', 'R', 'C', 'H')
#define TAG_PARM TAG('P', 'A', 'R', 'M')
#define TAG_OPTM TAG('O', 'P', 'T', 'M')
#define TAG_CLIP TAG('C', 'L', 'I', 'P')
#define TAG_TRAN TAG('T', 'R', 'A', 'N')

/* On-disk activation codes are fixed by the format, whatever the order of
 * the enum in the header. */
static const clipnn_act act_by_code[] = {CLIPNN_ACT_IDENTITY, CLIPNN_ACT_SIGMOID, CLIPNN_ACT_TANH,
                                         CLIPNN_ACT_GELU,     CLIPNN_ACT_SOFTPLUS, CLIPNN_ACT_RELU};
enum { N_ACT_CODES = sizeof act_by_code / sizeof act_by_code[0] };

static uint32_t act_code(clipnn_act act) {
    for (uint32_t c = 0; c < N_ACT_CODES; c++)
        if (act_by_code[c] == act) return c;
    return UINT32_MAX; /* unreachable for a model that clipnn_model_create accepted */
}

/* Widths beyond this are refused on load, as clipnn_model_create does (BLAS
 * takes int dimensions). */
#define MAX_DIM ((uint64_t)1 << 30)

/* zlib's crc32 takes a uInt length. */
static uLong crc_update(uLong crc, const unsigned char *p, size_t n) {
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* ---------------------------------------------------------------- saving */

typedef struct {
    FILE *f;
    uLong crc;
    int err; /* errno of the first failed write; later writes are skipped */
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->err || n == 0) return;
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n) {
        w->err = errno ? errno : EIO;
        return;
    }
    w->crc = crc_update(w->crc, p, n);
}

static void put_section_header(writer *w, uint32_t tag, uint64_t len) {
    unsigned char h[SECTION_HEADER];
    le_put_u32(h, tag);
    le_put_u64(h + 4, len);
    put(w, h, sizeof h);
}

static void put_floats(writer *w, const float *v, size_t n) {
    unsigned char buf[4096];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        le_put_f32s(buf, v + i, k);
        put(w, buf, 4 * k);
    }
}

static void write_contents(writer *w, const clipnn_model *m, const clipnn_train_state *st, uint64_t total) {
    unsigned char h[HEADER_BYTES];
    memcpy(h, magic, sizeof magic);
    le_put_u32(h + 8, FORMAT_VERSION);
    le_put_u64(h + 12, total);
    put(w, h, sizeof h);

    put_section_header(w, TAG_ARCH, 16 + 12 * (uint64_t)m->n_layers);
    unsigned char a[16];
    le_put_u64(a, m->n_inputs);
    le_put_u64(a + 8, m->n_layers);
    put(w, a, 16);
    for (size_t l = 0; l < m->n_layers; l++) {
        unsigned char e[12];
        le_put_u64(e, m->layers[l].out);
        le_put_u32(e + 8, act_code(m->layers[l].act));
        put(w, e, 12);
    }

    put_section_header(w, TAG_PARM, 4 * (uint64_t)m->n_params);
    put_floats(w, m->params, m->n_params);

    if (st && st->loop) {
        const struct {
            uint32_t tag;
            const unsigned char *data;
            size_t len;
        } extra[] = {{TAG_OPTM, st->optim, st->optim_len},
                     {TAG_CLIP, st->clip, st->clip_len},
                     {TAG_TRAN, st->loop, st->loop_len}};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            if (!extra[i].data) continue;
            put_section_header(w, extra[i].tag, extra[i].len);
            put(w, extra[i].data, extra[i].len);
        }
    }

    unsigned char crc[CRC_BYTES];
    le_put_u32(crc, (uint32_t)w->crc);
    if (!w->err && fwrite(crc, 1, sizeof crc, w->f) != sizeof crc) w->err = errno ? errno : EIO;
}

static uint64_t file_length(const clipnn_model *m, const clipnn_train_state *st) {
    uint64_t total = HEADER_BYTES + SECTION_HEADER + 16 + 12 * (uint64_t)m->n_layers + SECTION_HEADER +
                     4 * (uint64_t)m->n_params + CRC_BYTES;
    if (st && st->loop) {
        if (st->optim) total += SECTION_HEADER + st->optim_len;
        if (st->clip) total += SECTION_HEADER + st->clip_len;
        total += SECTION_HEADER + st->loop_len;
    }
    return total;
}

typedef struct {
    const clipnn_model *m;
    const clipnn_train_state *st;
} checkpoint_job;

static int fill_checkpoint(FILE *f, void *user) {
    const checkpoint_job *job = user;
    writer w = {f, crc32(0L, Z_NULL, 0), 0};
    write_contents(&w, job->m, job->st, file_length(job->m, job->st));
    return w.err;
}

clipnn_status clipnn_checkpoint_save(const char *path, const clipnn_model *m, const clipnn_train_state *st) {
    if (!path || !m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: NULL argument");
    if (!*path) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: empty file name");
    checkpoint_job job = {m, st};
    return clipnn_write_atomic(path, "checkpoint", fill_checkpoint, &job);
}

clipnn_status clipnn_model_save(const clipnn_model *m, const char *path) {
    return clipnn_checkpoint_save(path, m, NULL);
}

/* --------------------------------------------------------------- loading */

typedef struct {
    FILE *f;
    const char *path;
    uint64_t size;
} reader;

/* n bytes at offset off; the offsets come from a walk already bounded by
 * the file size, so a short read means the file changed or failed under us. */
static clipnn_status read_at(reader *r, uint64_t off, void *buf, size_t n) {
    if (fseeko(r->f, (off_t)off, SEEK_SET) != 0)
        return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot seek: %s", r->path, strerror(errno));
    errno = 0;
    if (fread(buf, 1, n, r->f) != n) {
        if (ferror(r->f))
            return clipnn_fail(CLIPNN_ERR_IO, "%s: read error: %s", r->path, strerror(errno ? errno : EIO));
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated while reading (did it change?)", r->path);
    }
    return CLIPNN_OK;
}

static clipnn_status check_header(reader *r) {
    unsigned char h[HEADER_BYTES];
    size_t have = r->size < HEADER_BYTES ? (size_t)r->size : HEADER_BYTES;
    clipnn_status s = read_at(r, 0, h, have);
    if (s) return s;
    size_t cmp = have < sizeof magic ? have : sizeof magic;
    if (memcmp(h, magic, cmp) != 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not a clipnn checkpoint (wrong magic number)", r->path);
    if (have < 12)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %llu bytes, shorter than the header", r->path,
                           (unsigned long long)r->size);
    uint32_t version = le_get_u32(h + 8);
    if (version == 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: invalid checkpoint format version 0", r->path);
    if (version > FORMAT_VERSION)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED,
                           "%s: checkpoint format version %u is newer than this build reads (%d)", r->path,
                           version, FORMAT_VERSION);
    if (have < HEADER_BYTES)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %llu bytes, shorter than the header", r->path,
                           (unsigned long long)r->size);
    uint64_t declared = le_get_u64(h + 12);
    if (declared < HEADER_BYTES + CRC_BYTES)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: header gives an impossible length of %llu bytes", r->path,
                           (unsigned long long)declared);
    if (r->size < declared)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %llu of %llu bytes", r->path,
                           (unsigned long long)r->size, (unsigned long long)declared);
    if (r->size > declared)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu bytes after the end of the checkpoint (%llu bytes)",
                           r->path, (unsigned long long)(r->size - declared), (unsigned long long)declared);
    return CLIPNN_OK;
}

static clipnn_status check_crc(reader *r) {
    unsigned char buf[16384];
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t end = r->size - CRC_BYTES;
    if (fseeko(r->f, 0, SEEK_SET) != 0)
        return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot seek: %s", r->path, strerror(errno));
    for (uint64_t off = 0; off < end;) {
        size_t n = end - off < sizeof buf ? (size_t)(end - off) : sizeof buf;
        if (fread(buf, 1, n, r->f) != n)
            return ferror(r->f) ? clipnn_fail(CLIPNN_ERR_IO, "%s: read error: %s", r->path, strerror(errno))
                                : clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated while reading", r->path);
        crc = crc_update(crc, buf, n);
        off += n;
    }
    unsigned char stored[CRC_BYTES];
    clipnn_status s = read_at(r, end, stored, CRC_BYTES);
    if (s) return s;
    if (le_get_u32(stored) != (uint32_t)crc)
        return clipnn_fail(CLIPNN_ERR_CHECKSUM, "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged",
                           r->path, le_get_u32(stored), (unsigned)crc);
    return CLIPNN_OK;
}

typedef struct {
    uint32_t tag;
    const char *name;
    uint64_t off, len; /* payload */
    int present;
} section;

enum { SEC_ARCH, SEC_PARM, SEC_OPTM, SEC_CLIP, SEC_TRAN, N_SECTIONS };

/* Walk the sections (the CRC holds, so a bad structure is a bad writer, not
 * damage: FORMAT). */
static clipnn_status find_sections(reader *r, section *sec) {
    uint64_t end = r->size - CRC_BYTES, off = HEADER_BYTES;
    while (off < end) {
        if (end - off < SECTION_HEADER)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu stray bytes before the checksum", r->path,
                               (unsigned long long)(end - off));
        unsigned char h[SECTION_HEADER];
        clipnn_status s = read_at(r, off, h, sizeof h);
        if (s) return s;
        uint32_t tag = le_get_u32(h);
        uint64_t len = le_get_u64(h + 4);
        off += SECTION_HEADER;
        char tag_text[5];
        for (int i = 0; i < 4; i++) {
            unsigned char c = h[i];
            tag_text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        tag_text[4] = 0;
        if (len > end - off)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: section %s of %llu bytes runs past the end of the file",
                               r->path, tag_text, (unsigned long long)len);
        for (int i = 0; i < N_SECTIONS; i++) {
            if (sec[i].tag != tag) continue;
            if (sec[i].present)
                return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: section %s appears twice", r->path, tag_text);
            sec[i].present = 1;
            sec[i].off = off;
            sec[i].len = len;
        }
        off += len;
    }
    if (!sec[SEC_ARCH].present)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: no architecture (ARCH) section", r->path);
    if (!sec[SEC_PARM].present)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: no parameter (PARM) section", r->path);
    if (sec[SEC_PARM].off < sec[SEC_ARCH].off)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: parameters stored before the architecture", r->path);
    return CLIPNN_OK;
}

/* "64-32-10" for messages. */
static void arch_text(char *out, size_t cap, uint64_t n_inputs, const size_t *widths, size_t n_layers) {
    int k = snprintf(out, cap, "%llu", (unsigned long long)n_inputs);
    for (size_t l = 0; l < n_layers && k > 0 && (size_t)k < cap; l++)
        k += snprintf(out + k, cap - (size_t)k, "-%zu", widths[l]);
    if (k < 0 || (size_t)k >= cap) strcpy(out + cap - 4, "...");
}

/* Reads ARCH and checks it against the PARM length before anything the
 * size of the model is allocated. */
/* The ARCH header: input count and layer count, checked against the
 * section's length. */
static clipnn_status read_arch_header(reader *r, const section *a, uint64_t *ni, uint64_t *nl) {
    if (a->len < 16)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: architecture section of %llu bytes is too short", r->path,
                           (unsigned long long)a->len);
    unsigned char h[16];
    clipnn_status s = read_at(r, a->off, h, sizeof h);
    if (s) return s;
    *ni = le_get_u64(h), *nl = le_get_u64(h + 8);
    if (*nl == 0 || *nl != (a->len - 16) / 12 || (a->len - 16) % 12 != 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: architecture section of %llu bytes cannot hold %llu layers",
                           r->path, (unsigned long long)a->len, (unsigned long long)*nl);
    if (*ni == 0 || *ni > MAX_DIM)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu inputs is out of range (1 to %llu)", r->path,
                           (unsigned long long)*ni, (unsigned long long)MAX_DIM);
    return CLIPNN_OK;
}

/* The nl layer records (width, activation code) of raw into widths and
 * acts, with the parameter count they imply. */
static clipnn_status decode_layers(reader *r, const unsigned char *raw, uint64_t ni, uint64_t nl, size_t *widths,
                                   clipnn_act *acts, uint64_t *n_params) {
    uint64_t total = 0, in = ni;
    for (size_t l = 0; l < nl; l++) {
        uint64_t w = le_get_u64(raw + 12 * l);
        uint32_t code = le_get_u32(raw + 12 * l + 8);
        if (w == 0 || w > MAX_DIM)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: layer %zu has width %llu, out of range (1 to %llu)", r->path, l,
                               (unsigned long long)w, (unsigned long long)MAX_DIM);
        if (code >= N_ACT_CODES)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: layer %zu has unknown activation code %u", r->path, l, code);
        /* in, w <= 2^30, so (in + 1) * w < 2^61: the sum is what can overflow. */
        uint64_t layer = (in + 1) * w;
        if (total > UINT64_MAX / 4 - layer)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the architecture's parameter count overflows", r->path);
        total += layer;
        widths[l] = (size_t)w;
        acts[l] = act_by_code[code];
        in = w;
    }
    *n_params = total;
    return CLIPNN_OK;
}

/* The PARM section must hold exactly the architecture's parameters. */
static clipnn_status check_param_count(reader *r, const section *sec, uint64_t ni, const size_t *widths, size_t nl,
                                       uint64_t n_params) {
    if (sec[SEC_PARM].len == 4 * n_params) return CLIPNN_OK;
    if (sec[SEC_PARM].len % 4)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: parameter section of %llu bytes is not a whole number of float32",
                           r->path, (unsigned long long)sec[SEC_PARM].len);
    char text[128];
    arch_text(text, sizeof text, ni, widths, nl);
    return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %llu parameters stored, the architecture %s needs %llu", r->path,
                       (unsigned long long)(sec[SEC_PARM].len / 4), text, (unsigned long long)n_params);
}

static clipnn_status read_arch(reader *r, const section *sec, size_t *n_inputs, size_t *n_layers,
                               size_t **widths_out, clipnn_act **acts_out) {
    const section *a = &sec[SEC_ARCH];
    uint64_t ni = 0, nl = 0, n_params = 0;
    clipnn_status s = read_arch_header(r, a, &ni, &nl);
    if (s) return s;
    /* nl * 12 <= the section length <= the file size: these are bounded. */
    unsigned char *raw = clipnn_alloc((size_t)(a->len - 16));
    size_t *widths = clipnn_alloc_array((size_t)nl, sizeof *widths);
    clipnn_act *acts = clipnn_alloc_array((size_t)nl, sizeof *acts);
    if (!raw || !widths || !acts)
        s = clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %llu layers", r->path, (unsigned long long)nl);
    if (!s) s = read_at(r, a->off + 16, raw, (size_t)(a->len - 16));
    if (!s) s = decode_layers(r, raw, ni, nl, widths, acts, &n_params);
    if (!s) s = check_param_count(r, sec, ni, widths, (size_t)nl, n_params);
    clipnn_free(raw);
    if (s) {
        clipnn_free(widths);
        clipnn_free(acts);
        return s;
    }
    *n_inputs = (size_t)ni;
    *n_layers = (size_t)nl;
    *widths_out = widths;
    *acts_out = acts;
    return CLIPNN_OK;
}

static clipnn_status read_params(reader *r, const section *p, clipnn_model *m) {
    unsigned char buf[16384];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < m->n_params; i += per) {
        size_t k = m->n_params - i < per ? m->n_params - i : per;
        clipnn_status s = read_at(r, p->off + 4 * (uint64_t)i, buf, 4 * k);
        if (s) return s;
        le_get_f32s(m->params + i, buf, k);
    }
    return CLIPNN_OK;
}

/* Payload of an optional section into a fresh buffer (its length is bounded
 * by the file size, checked by find_sections). */
static clipnn_status read_blob(reader *r, const section *sec, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!sec->present) return CLIPNN_OK;
    if (sec->len > SIZE_MAX) return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: %s section too large", r->path, sec->name);
    unsigned char *b = clipnn_alloc((size_t)sec->len);
    if (!b) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for the %s section", r->path, sec->name);
    clipnn_status s = read_at(r, sec->off, b, (size_t)sec->len);
    if (s) {
        clipnn_free(b);
        return s;
    }
    *out = b;
    *len = (size_t)sec->len;
    return CLIPNN_OK;
}

static clipnn_status read_state(reader *r, const section *sec, size_t n_params, clipnn_train_state **out) {
    clipnn_train_state *st;
    clipnn_status s = clipnn_train_state_create(&st);
    if (s) return s;
    snprintf(st->source, sizeof st->source, "%s", r->path);
    if (sec[SEC_TRAN].present) {
        s = read_blob(r, &sec[SEC_OPTM], &st->optim, &st->optim_len);
        if (!s) s = read_blob(r, &sec[SEC_CLIP], &st->clip, &st->clip_len);
        if (!s) s = read_blob(r, &sec[SEC_TRAN], &st->loop, &st->loop_len);
        if (!s) s = clipnn_train_state_validate(st, n_params, r->path);
    } else if (sec[SEC_OPTM].present || sec[SEC_CLIP].present) {
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: optimizer or clipper state without the training (TRAN) section",
                        r->path);
    }
    if (s) {
        clipnn_train_state_free(st);
        return s;
    }
    *out = st;
    return CLIPNN_OK;
}

static clipnn_status load(reader *r, clipnn_model **out, clipnn_train_state **state) {
    clipnn_status s = check_header(r);
    if (!s) s = check_crc(r);
    if (s) return s;
    section sec[N_SECTIONS] = {
        [SEC_ARCH] = {TAG_ARCH, "ARCH", 0, 0, 0}, [SEC_PARM] = {TAG_PARM, "PARM", 0, 0, 0},
        [SEC_OPTM] = {TAG_OPTM, "OPTM", 0, 0, 0}, [SEC_CLIP] = {TAG_CLIP, "CLIP", 0, 0, 0},
        [SEC_TRAN] = {TAG_TRAN, "TRAN", 0, 0, 0},
    };
    s = find_sections(r, sec);
    if (s) return s;
    size_t n_inputs = 0, n_layers = 0, *widths = NULL;
    clipnn_act *acts = NULL;
    s = read_arch(r, sec, &n_inputs, &n_layers, &widths, &acts);
    if (s) return s;
    clipnn_model *m = NULL;
    s = clipnn_model_create(&m, n_inputs, n_layers, widths, acts);
    clipnn_free(widths);
    clipnn_free(acts);
    if (s) return s;
    s = read_params(r, &sec[SEC_PARM], m);
    clipnn_train_state *st = NULL;
    if (!s && state) s = read_state(r, sec, m->n_params, &st);
    if (s) {
        clipnn_model_free(m);
        return s;
    }
    *out = m;
    if (state) *state = st;
    return CLIPNN_OK;
}

clipnn_status clipnn_checkpoint_load(const char *path, clipnn_model **out, clipnn_train_state **state) {
    if (!path || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: NULL argument");
    *out = NULL;
    if (state) *state = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    clipnn_status s;
    if (fstat(fileno(f), &sb) != 0)
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: not a regular file", path);
    else {
        reader r = {f, path, (uint64_t)sb.st_size};
        s = load(&r, out, state);
    }
    fclose(f);
    return s;
}

clipnn_status clipnn_model_load(const char *path, clipnn_model **out) {
    return clipnn_checkpoint_load(path, out, NULL);
}
