/* Checkpoints: a model and, optionally, the training state of the run that
 * made it, in one self-checking file.
 *
 * Layout, all integers little-endian (docs/formats.md says the same):
 *
 *   offset   size  field
 *   0        8     magic: 'C' 'L' 'I' 'P' 'N' 'N' 0x00 0x1a
 *   8        4     u32 format version: 1 for a model without recurrent
 *                  layers (as every earlier build wrote), 2 with them, 3
 *                  with a BPTT section
 *   12       8     u64 length of the whole file, CRC included
 *   20       ...   sections, each: u32 tag (four ASCII bytes in file order),
 *                  u64 payload length, payload
 *   length-4 4     u32 CRC-32 (zlib's crc32, as gzip and PNG) of every byte
 *                  before it
 *
 *   ARCH  required, before PARM: u64 n_inputs, u64 n_layers, then for each
 *         layer u64 width, u32 activation code (0 identity, 1 sigmoid,
 *         2 tanh, 3 gelu, 4 softplus, 5 relu; a recurrent layer's is its
 *         nonlinearity)
 *   SEQN  required from version 2, before PARM: u64 steps, u64 step_dim, u32
 *         every_step, u32 n_layers, then a u32 kind code per layer (0 dense,
 *         1 rnn, 2 rnn-relu, 3 lstm, 4 gru)
 *   PARM  required: the n_params float32 of the model, for each recurrent
 *         layer W_ih, W_hh, b_ih, b_hh, for each dense layer W ([out][in],
 *         row-major) then b ([out])
 *   OPTM  optional: optimizer state (src/train/optim_state.c)
 *   CLIP  optional: clipper state (src/clip/state.c; opaque here)
 *   TRAN  optional: loop state of clipnn_train (src/train/train_state.c); its
 *         presence is what makes the file resumable
 *   DATA  optional: how the model's inputs were prepared (a clipnn_data_info
 *         record: u32 count, then per entry u32 key length, key, u32 value
 *         length, value; src/data/data_info.c)
 *   BPTT  optional, with TRAN, version 3: the chunk position, current batch
 *         and carried state of a run with truncated BPTT or a carried state
 *         (src/train/train_state.c); a build that cannot continue such a run
 *         refuses the version instead of resuming it as another
 *   PRIV  optional, with TRAN: the privacy accountant of a private run
 *         (src/train/private.c); a build without it reads the model and
 *         skips the section
 *   EPCH  optional, with TRAN: the sums of the epoch in progress that TRAN
 *         lacks (src/train/train_state.c), so that a resumed run reports
 *         the split epoch whole; a build without it skips the section
 *   FEED  optional, with TRAN: the error-feedback vectors of the processes
 *         of a job with --clip-where clip21 (src/dist/clip21_state.c)
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
#include "data/data.h"
#include "train/train.h"

static const unsigned char magic[8] = {'C', 'L', 'I', 'P', 'N', 'N', 0x00, 0x1a};
enum { FORMAT_VERSION = 3, FORMAT_VERSION_SEQ = 2, FORMAT_VERSION_MLP = 1 };
enum { HEADER_BYTES = 20, SECTION_HEADER = 12, CRC_BYTES = 4 };

#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_ARCH TAG('A', 'R', 'C', 'H')
#define TAG_SEQN TAG('S', 'E', 'Q', 'N')
#define TAG_PARM TAG('P', 'A', 'R', 'M')
#define TAG_OPTM TAG('O', 'P', 'T', 'M')
#define TAG_CLIP TAG('C', 'L', 'I', 'P')
#define TAG_TRAN TAG('T', 'R', 'A', 'N')
#define TAG_BPTT TAG('B', 'P', 'T', 'T')
#define TAG_PRIV TAG('P', 'R', 'I', 'V')
#define TAG_EPCH TAG('E', 'P', 'C', 'H')
#define TAG_DATA TAG('D', 'A', 'T', 'A')
#define TAG_FEED TAG('F', 'E', 'E', 'D')

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

static int put_chunk(void *w, const void *p, size_t n) {
    put(w, p, n);
    return ((writer *)w)->err;
}

static void put_floats(writer *w, const float *v, size_t n) {
    le_write_f32s(v, n, put_chunk, w);
}

static size_t all_layers(const clipnn_model *m) { return clipnn_model_n_layers(m); }

static uint64_t arch_bytes(const clipnn_model *m) { return 16 + 12 * (uint64_t)all_layers(m); }
static uint64_t seqn_bytes(const clipnn_model *m) { return m->n_rec ? 24 + 4 * (uint64_t)all_layers(m) : 0; }

/* ARCH, and SEQN for a model with recurrent layers. */
static void write_arch(writer *w, const clipnn_model *m) {
    size_t n = all_layers(m);
    put_section_header(w, TAG_ARCH, arch_bytes(m));
    unsigned char a[24];
    le_put_u64(a, m->n_inputs);
    le_put_u64(a + 8, n);
    put(w, a, 16);
    for (size_t l = 0; l < n; l++) {
        le_put_u64(a, clipnn_model_layer_width(m, l));
        le_put_u32(a + 8, act_code(clipnn_model_layer_act(m, l)));
        put(w, a, 12);
    }
    if (!m->n_rec) return;
    put_section_header(w, TAG_SEQN, seqn_bytes(m));
    le_put_u64(a, m->steps);
    le_put_u64(a + 8, m->step_dim);
    le_put_u32(a + 16, (uint32_t)m->every_step);
    le_put_u32(a + 20, (uint32_t)n);
    put(w, a, 24);
    for (size_t l = 0; l < n; l++) {
        le_put_u32(a, (uint32_t)clipnn_model_layer_kind(m, l));
        put(w, a, 4);
    }
}

/* The oldest version that holds everything written: earlier builds read the
 * files they can continue. */
static uint32_t format_version(const clipnn_model *m, const clipnn_train_state *st) {
    if (st && st->loop && st->bptt) return FORMAT_VERSION;
    return m->n_rec ? FORMAT_VERSION_SEQ : FORMAT_VERSION_MLP;
}

static void write_contents(writer *w, const clipnn_model *m, const clipnn_train_state *st, uint64_t total) {
    unsigned char h[HEADER_BYTES];
    memcpy(h, magic, sizeof magic);
    le_put_u32(h + 8, format_version(m, st));
    le_put_u64(h + 12, total);
    put(w, h, sizeof h);
    write_arch(w, m);

    put_section_header(w, TAG_PARM, 4 * (uint64_t)m->n_params);
    put_floats(w, m->params, m->n_params);

    if (st && st->loop) {
        const struct {
            uint32_t tag;
            const unsigned char *data;
            size_t len;
        } extra[] = {{TAG_OPTM, st->optim, st->optim_len},
                     {TAG_CLIP, st->clip, st->clip_len},
                     {TAG_TRAN, st->loop, st->loop_len},
                     {TAG_BPTT, st->bptt, st->bptt_len},
                     {TAG_PRIV, st->priv, st->priv_len},
                     {TAG_EPCH, st->epch, st->epch_len},
                     {TAG_FEED, st->feed, st->feed_len}};
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
    uint64_t total = HEADER_BYTES + SECTION_HEADER + arch_bytes(m) + (m->n_rec ? SECTION_HEADER : 0) +
                     seqn_bytes(m) + SECTION_HEADER + 4 * (uint64_t)m->n_params + CRC_BYTES;
    if (st && st->loop) {
        if (st->optim) total += SECTION_HEADER + st->optim_len;
        if (st->clip) total += SECTION_HEADER + st->clip_len;
        total += SECTION_HEADER + st->loop_len;
        if (st->bptt) total += SECTION_HEADER + st->bptt_len;
        if (st->priv) total += SECTION_HEADER + st->priv_len;
        if (st->epch) total += SECTION_HEADER + st->epch_len;
        if (st->feed) total += SECTION_HEADER + st->feed_len;
    }
    return total;
}

typedef struct {
    const clipnn_model *m;
    const clipnn_train_state *st;
    const unsigned char *data; /* the DATA payload, or NULL */
    size_t data_len;
} checkpoint_job;

/* The optional DATA section goes before the CRC, after the other sections:
 * the length and the CRC cover it, the rest of the layout is unchanged. */
static int fill_checkpoint(FILE *f, void *user) {
    const checkpoint_job *job = user;
    writer w = {f, crc32(0L, Z_NULL, 0), 0};
    uint64_t total = file_length(job->m, job->st) + (job->data ? SECTION_HEADER + job->data_len : 0);
    long crc_at = 0;
    write_contents(&w, job->m, job->st, total);
    if (!job->data || w.err) return w.err;
    /* rewrite the CRC: step back over it and append DATA first */
    if ((crc_at = ftell(f)) < CRC_BYTES || fseek(f, crc_at - CRC_BYTES, SEEK_SET) != 0) return errno ? errno : EIO;
    put_section_header(&w, TAG_DATA, job->data_len);
    put(&w, job->data, job->data_len);
    unsigned char crc[CRC_BYTES];
    le_put_u32(crc, (uint32_t)w.crc);
    if (!w.err && fwrite(crc, 1, sizeof crc, f) != sizeof crc) w.err = errno ? errno : EIO;
    return w.err;
}

clipnn_status clipnn_checkpoint_save_info(const char *path, const clipnn_model *m, const clipnn_train_state *st,
                                          const clipnn_data_info *info) {
    if (!path || !m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: NULL argument");
    if (!*path) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: empty file name");
    checkpoint_job job = {m, st, NULL, 0};
    unsigned char *data = NULL;
    if (info) {
        clipnn_status s = clipnn_data_info_encode(info, &data, &job.data_len);
        if (s) return s;
        job.data = data;
    }
    clipnn_status s = clipnn_write_atomic(path, "checkpoint", fill_checkpoint, &job);
    clipnn_free(data);
    return s;
}

clipnn_status clipnn_checkpoint_save(const char *path, const clipnn_model *m, const clipnn_train_state *st) {
    return clipnn_checkpoint_save_info(path, m, st, NULL);
}

clipnn_status clipnn_model_save(const clipnn_model *m, const char *path) {
    return clipnn_checkpoint_save(path, m, NULL);
}

/* --------------------------------------------------------------- loading */

typedef struct {
    FILE *f;
    const char *path;
    uint64_t size;
    uint32_t version; /* of the file, once its header is checked */
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
    r->version = version;
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
        return clipnn_fail(CLIPNN_ERR_CHECKSUM,
                           "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged", r->path,
                           le_get_u32(stored), (unsigned)crc);
    return CLIPNN_OK;
}

typedef struct {
    uint32_t tag;
    const char *name;
    uint64_t off, len; /* payload */
    int present;
} section;

enum {
    SEC_ARCH, SEC_SEQN, SEC_PARM, SEC_OPTM, SEC_CLIP, SEC_TRAN, SEC_BPTT, SEC_PRIV, SEC_DATA, SEC_EPCH, SEC_FEED,
    N_SECTIONS
};

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
    if (r->version >= 2 && !sec[SEC_SEQN].present)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: a version %u checkpoint without its sequence (SEQN) section",
                           r->path, r->version);
    if (r->version < 2) sec[SEC_SEQN].present = 0; /* not part of version 1: skipped as unknown */
    if (sec[SEC_SEQN].present && sec[SEC_PARM].off < sec[SEC_SEQN].off)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: parameters stored before the sequence (SEQN) section", r->path);
    if (r->version < 3) sec[SEC_BPTT].present = 0; /* nor BPTT of versions 1 and 2 */
    return CLIPNN_OK;
}

/* "64-32-10" for messages. */
static void arch_text(char *out, size_t cap, uint64_t n_inputs, const clipnn_layer_spec *ls, size_t n_layers) {
    int k = snprintf(out, cap, "%llu", (unsigned long long)n_inputs);
    for (size_t l = 0; l < n_layers && k > 0 && (size_t)k < cap; l++)
        k += snprintf(out + k, cap - (size_t)k, "-%s%s%zu", ls[l].kind ? clipnn_layer_kind_name(ls[l].kind) : "",
                      ls[l].kind ? ":" : "", ls[l].width);
    if (k < 0 || (size_t)k >= cap) strcpy(out + cap - 4, "...");
}

/* The widths and activations of ARCH (every layer dense until SEQN says
 * otherwise) into ls[nl]. */
static clipnn_status read_layers(reader *r, const section *a, size_t nl, clipnn_layer_spec *ls) {
    /* nl * 12 <= the section length <= the file size: bounded. */
    unsigned char *raw = clipnn_alloc(12 * nl);
    if (!raw) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %zu layers", r->path, nl);
    clipnn_status s = read_at(r, a->off + 16, raw, 12 * nl);
    for (size_t l = 0; !s && l < nl; l++) {
        uint64_t w = le_get_u64(raw + 12 * l);
        uint32_t code = le_get_u32(raw + 12 * l + 8);
        if (w == 0 || w > MAX_DIM)
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: layer %zu has width %llu, out of range (1 to %llu)", r->path, l,
                            (unsigned long long)w, (unsigned long long)MAX_DIM);
        else if (code >= N_ACT_CODES)
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: layer %zu has unknown activation code %u", r->path, l, code);
        else
            ls[l] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, (size_t)w, act_by_code[code]};
    }
    clipnn_free(raw);
    return s;
}

/* SEQN: the input's steps and the layer kinds (recurrent ones first, a
 * dense one last), consistent with ARCH's n_inputs. */
static clipnn_status read_seqn(reader *r, const section *q, uint64_t ni, size_t nl, clipnn_layer_spec *ls,
                               clipnn_seq_shape *seq) {
    unsigned char h[24];
    if (q->len != 24 + 4 * (uint64_t)nl)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: sequence section of %llu bytes for %zu layers", r->path,
                           (unsigned long long)q->len, nl);
    clipnn_status s = read_at(r, q->off, h, sizeof h);
    if (s) return s;
    uint64_t steps = le_get_u64(h), dim = le_get_u64(h + 8);
    /* both at most ni (<= 2^30), so their product cannot wrap around to ni */
    if (steps == 0 || dim == 0 || steps > ni || dim > ni || steps * dim != ni || le_get_u32(h + 20) != nl)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu steps of %llu values for %llu inputs and %u layers", r->path,
                           (unsigned long long)steps, (unsigned long long)dim, (unsigned long long)ni,
                           le_get_u32(h + 20));
    *seq = (clipnn_seq_shape){(size_t)steps, (size_t)dim, le_get_u32(h + 16) != 0};
    for (size_t l = 0; !s && l < nl; l++) {
        unsigned char k[4];
        s = read_at(r, q->off + 24 + 4 * l, k, 4);
        uint32_t kind = s ? 0 : le_get_u32(k);
        int misplaced = l > 0 && kind != CLIPNN_LAYER_DENSE && ls[l - 1].kind == CLIPNN_LAYER_DENSE;
        if (!s && (kind >= CLIPNN_LAYER_COUNT || misplaced || (l + 1 == nl && kind != CLIPNN_LAYER_DENSE)))
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: layer %zu has kind code %u where it cannot be", r->path, l, kind);
        if (!s) ls[l].kind = (clipnn_layer_kind)kind;
    }
    return s;
}

/* Parameters of the layers (each width <= 2^30 and G <= 4, so a layer's
 * count is below 2^63: the sum is what can overflow); 0 on overflow. */
static uint64_t count_params(const clipnn_layer_spec *ls, size_t nl, const clipnn_seq_shape *seq) {
    uint64_t n = 0, in = seq->step_dim;
    for (size_t l = 0; l < nl; l++) {
        uint64_t w = ls[l].width, G = ls[l].kind == CLIPNN_LAYER_LSTM ? 4 : ls[l].kind == CLIPNN_LAYER_GRU ? 3 : 1;
        if (l == 0 && ls[0].kind == CLIPNN_LAYER_DENSE) in = (uint64_t)seq->steps * seq->step_dim;
        uint64_t layer = ls[l].kind == CLIPNN_LAYER_DENSE ? (in + 1) * w : G * w * (in + w + 2);
        if (n > UINT64_MAX / 4 - layer) return 0;
        n += layer;
        in = w;
    }
    return n;
}

static clipnn_status check_param_count(reader *r, const section *sec, uint64_t ni, const clipnn_layer_spec *ls,
                                       size_t nl, const clipnn_seq_shape *seq) {
    uint64_t n_params = count_params(ls, nl, seq);
    if (n_params == 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the architecture's parameter count overflows", r->path);
    if (sec[SEC_PARM].len == 4 * n_params) return CLIPNN_OK;
    if (sec[SEC_PARM].len % 4)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: parameter section of %llu bytes is not a whole number of float32",
                           r->path, (unsigned long long)sec[SEC_PARM].len);
    char text[128];
    arch_text(text, sizeof text, ni, ls, nl);
    return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %llu parameters stored, the architecture %s needs %llu", r->path,
                       (unsigned long long)(sec[SEC_PARM].len / 4), text, (unsigned long long)n_params);
}

/* Reads ARCH (and SEQN) and checks them against the PARM length before
 * anything the size of the model is allocated. */
static clipnn_status read_arch(reader *r, const section *sec, clipnn_seq_shape *seq, size_t *n_layers,
                               clipnn_layer_spec **specs) {
    const section *a = &sec[SEC_ARCH];
    if (a->len < 16)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: architecture section of %llu bytes is too short", r->path,
                           (unsigned long long)a->len);
    unsigned char h[16];
    clipnn_status s = read_at(r, a->off, h, sizeof h);
    if (s) return s;
    uint64_t ni = le_get_u64(h), nl = le_get_u64(h + 8);
    if (nl == 0 || nl != (a->len - 16) / 12 || (a->len - 16) % 12 != 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: architecture section of %llu bytes cannot hold %llu layers",
                           r->path, (unsigned long long)a->len, (unsigned long long)nl);
    if (ni == 0 || ni > MAX_DIM)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu inputs is out of range (1 to %llu)", r->path,
                           (unsigned long long)ni, (unsigned long long)MAX_DIM);
    clipnn_layer_spec *ls = clipnn_alloc_array((size_t)nl, sizeof *ls);
    if (!ls) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %llu layers", r->path, (unsigned long long)nl);
    *seq = (clipnn_seq_shape){1, (size_t)ni, 0};
    s = read_layers(r, a, (size_t)nl, ls);
    if (!s && sec[SEC_SEQN].present) s = read_seqn(r, &sec[SEC_SEQN], ni, (size_t)nl, ls, seq);
    if (!s) s = check_param_count(r, sec, ni, ls, (size_t)nl, seq);
    if (s) {
        clipnn_free(ls);
        return s;
    }
    *n_layers = (size_t)nl;
    *specs = ls;
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
        if (!s) s = read_blob(r, &sec[SEC_BPTT], &st->bptt, &st->bptt_len);
        if (!s) s = read_blob(r, &sec[SEC_PRIV], &st->priv, &st->priv_len);
        if (!s) s = read_blob(r, &sec[SEC_EPCH], &st->epch, &st->epch_len);
        if (!s) s = read_blob(r, &sec[SEC_FEED], &st->feed, &st->feed_len);
        if (!s) s = clipnn_train_state_validate(st, n_params, r->path);
    } else if (sec[SEC_OPTM].present || sec[SEC_CLIP].present || sec[SEC_BPTT].present || sec[SEC_PRIV].present ||
               sec[SEC_EPCH].present || sec[SEC_FEED].present) {
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: optimizer, clipper or BPTT state without the training (TRAN) section",
                        r->path);
    }
    if (s) {
        clipnn_train_state_free(st);
        return s;
    }
    *out = st;
    return CLIPNN_OK;
}

/* The DATA record, or NULL when the file has none. */
static clipnn_status read_data_info(reader *r, const section *sec, clipnn_data_info **info) {
    unsigned char *b = NULL;
    size_t len = 0;
    *info = NULL;
    clipnn_status s = read_blob(r, sec, &b, &len);
    if (!s && b) s = clipnn_data_info_decode(r->path, b, len, info);
    clipnn_free(b);
    return s;
}

static clipnn_status load(reader *r, clipnn_model **out, clipnn_train_state **state, clipnn_data_info **info) {
    clipnn_status s = check_header(r);
    if (!s) s = check_crc(r);
    if (s) return s;
    section sec[N_SECTIONS] = {
        [SEC_ARCH] = {TAG_ARCH, "ARCH", 0, 0, 0}, [SEC_SEQN] = {TAG_SEQN, "SEQN", 0, 0, 0},
        [SEC_PARM] = {TAG_PARM, "PARM", 0, 0, 0},
        [SEC_OPTM] = {TAG_OPTM, "OPTM", 0, 0, 0}, [SEC_CLIP] = {TAG_CLIP, "CLIP", 0, 0, 0},
        [SEC_TRAN] = {TAG_TRAN, "TRAN", 0, 0, 0}, [SEC_BPTT] = {TAG_BPTT, "BPTT", 0, 0, 0},
        [SEC_PRIV] = {TAG_PRIV, "PRIV", 0, 0, 0},
        [SEC_DATA] = {TAG_DATA, "DATA", 0, 0, 0}, [SEC_EPCH] = {TAG_EPCH, "EPCH", 0, 0, 0},
        [SEC_FEED] = {TAG_FEED, "FEED", 0, 0, 0},
    };
    s = find_sections(r, sec);
    if (s) return s;
    size_t n_layers = 0;
    clipnn_layer_spec *specs = NULL;
    clipnn_seq_shape seq;
    s = read_arch(r, sec, &seq, &n_layers, &specs);
    if (s) return s;
    clipnn_model *m = NULL;
    s = clipnn_model_create_seq(&m, &seq, n_layers, specs);
    clipnn_free(specs);
    if (s) return s;
    s = read_params(r, &sec[SEC_PARM], m);
    clipnn_train_state *st = NULL;
    if (!s && state) s = read_state(r, sec, m->n_params, &st);
    clipnn_data_info *di = NULL;
    if (!s && info) s = read_data_info(r, &sec[SEC_DATA], &di);
    if (s) {
        clipnn_train_state_free(st);
        clipnn_model_free(m);
        return s;
    }
    *out = m;
    if (state) *state = st;
    if (info) *info = di;
    return CLIPNN_OK;
}

clipnn_status clipnn_checkpoint_load(const char *path, clipnn_model **out, clipnn_train_state **state) {
    return clipnn_checkpoint_load_info(path, out, state, NULL);
}

clipnn_status clipnn_checkpoint_load_info(const char *path, clipnn_model **out, clipnn_train_state **state,
                                          clipnn_data_info **info) {
    if (!path || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "checkpoint: NULL argument");
    *out = NULL;
    if (state) *state = NULL;
    if (info) *info = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    clipnn_status s;
    if (fstat(fileno(f), &sb) != 0)
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: not a regular file", path);
    else if (!(s = clipnn_check_input_size(path, (uint64_t)sb.st_size))) {
        reader r = {f, path, (uint64_t)sb.st_size, 0};
        s = load(&r, out, state, info);
    }
    fclose(f);
    return s;
}

clipnn_status clipnn_model_load(const char *path, clipnn_model **out) {
    return clipnn_checkpoint_load(path, out, NULL);
}
