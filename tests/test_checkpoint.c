/* Checkpoints: bit-identical round trips, every kind of damaged or foreign
 * file refused with its own status and a message naming the file, atomic
 * saving, optimizer state, and exact resume of a training run. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "file_util.h"
#include "clipnn.h"
#include "train/train.h" /* to build training states without the trainer */

/* Offsets fixed by the format (src/train/checkpoint.c, docs/formats.md). */
enum {
    OFF_VERSION = 8,
    OFF_LENGTH = 12,
    OFF_ARCH_PAYLOAD = 20 + 12, /* first section is ARCH: header 20, section header 12 */
    OFF_N_INPUTS = OFF_ARCH_PAYLOAD,
    OFF_N_LAYERS = OFF_ARCH_PAYLOAD + 8,
    OFF_LAYER0 = OFF_ARCH_PAYLOAD + 16 /* + 12 l: u64 width, u32 activation code */
};

static clipnn_model *small_model(size_t n_in, size_t n_layers, const size_t *widths, const clipnn_act *acts,
                                 uint64_t seed) {
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, n_in, n_layers, widths, acts) != CLIPNN_OK) return NULL;
    clipnn_model_init(m, CLIPNN_INIT_TORCH, seed);
    return m;
}

/* 5-7-4-3 with three different activations. */
static clipnn_model *model_a(void) {
    size_t w[3] = {7, 4, 3};
    clipnn_act a[3] = {CLIPNN_ACT_TANH, CLIPNN_ACT_GELU, CLIPNN_ACT_IDENTITY};
    return small_model(5, 3, w, a, 11);
}

typedef struct {
    unsigned char *data;
    size_t len;
} blob;

static blob slurp(const char *path) {
    blob b = {NULL, 0};
    b.data = slurp_file(path, &b.len);
    return b;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* What a deliberate forger does: fix the length and the CRC after an edit,
 * so that only the reader's own checks stand between it and the content. */
static void reseal(blob *b) {
    put_u64(b->data + OFF_LENGTH, b->len);
    uLong crc = crc32(0L, b->data, (uInt)(b->len - 4));
    put_u32(b->data + b->len - 4, (uint32_t)crc);
}

/* Loads path and checks the status and that the message names the file. */
static void expect_refused(const char *path, clipnn_status want, const char *what) {
    clipnn_model *m = (clipnn_model *)&m; /* must be reset to NULL on failure */
    clipnn_status s = clipnn_model_load(path, &m);
    CHECK_MSG(s == want, "%s: status %d (%s), expected %d; message: %s", what, (int)s, clipnn_strerror(s),
              (int)want, clipnn_last_error());
    CHECK_MSG(m == NULL, "%s: output not reset on failure", what);
    CHECK_MSG(strstr(clipnn_last_error(), path) != NULL, "%s: message does not name the file: %s", what,
              clipnn_last_error());
    if (s == CLIPNN_OK) clipnn_model_free(m);
}

static int same_model(clipnn_model *a, clipnn_model *b) {
    if (clipnn_model_n_inputs(a) != clipnn_model_n_inputs(b)) return 0;
    if (clipnn_model_n_layers(a) != clipnn_model_n_layers(b)) return 0;
    for (size_t l = 0; l < clipnn_model_n_layers(a); l++)
        if (clipnn_model_layer_width(a, l) != clipnn_model_layer_width(b, l) ||
            clipnn_model_layer_act(a, l) != clipnn_model_layer_act(b, l))
            return 0;
    return clipnn_model_n_params(a) == clipnn_model_n_params(b) &&
           memcmp(clipnn_model_params(a), clipnn_model_params(b), clipnn_model_n_params(a) * sizeof(float)) == 0;
}

TEST(checkpoint_round_trip_is_bit_identical) {
    const char *path = check_tmp_path("roundtrip.ckpt");
    /* Every activation, in two models, and float values that a text or
     * double detour would change: -0, a subnormal, the extremes, Inf and a
     * NaN with a payload. */
    size_t w1[3] = {7, 4, 3}, w2[4] = {2, 9, 1, 6};
    clipnn_act a1[3] = {CLIPNN_ACT_TANH, CLIPNN_ACT_GELU, CLIPNN_ACT_IDENTITY};
    clipnn_act a2[4] = {CLIPNN_ACT_SIGMOID, CLIPNN_ACT_SOFTPLUS, CLIPNN_ACT_RELU, CLIPNN_ACT_TANH};
    clipnn_model *models[2] = {small_model(5, 3, w1, a1, 3), small_model(13, 4, w2, a2, 4)};
    for (int k = 0; k < 2; k++) {
        clipnn_model *m = models[k];
        CHECK(m != NULL);
        if (!m) continue;
        float *p = clipnn_model_params(m);
        uint32_t nan_bits = 0x7fc01234u;
        float special[6] = {-0.0f, 1e-45f, 3.4028235e38f, -1.1754944e-38f, INFINITY, 0};
        memcpy(&special[5], &nan_bits, sizeof nan_bits);
        memcpy(p, special, sizeof special);
        CHECK_OK(clipnn_model_save(m, path));
        clipnn_model *back = NULL;
        CHECK_OK(clipnn_model_load(path, &back));
        CHECK(back != NULL);
        if (back) {
            CHECK(same_model(m, back));
            clipnn_model_free(back);
        }
        /* The documented header: magic, version 1, the file's own length. */
        blob b = slurp(path);
        CHECK(b.len > 24 && memcmp(b.data, "CLIPNN\0\x1a", 8) == 0);
        CHECK(b.len > 24 && b.data[OFF_VERSION] == 1 && get_u64(b.data + OFF_LENGTH) == b.len);
        size_t expect = 20 + 12 + 16 + 12 * clipnn_model_n_layers(m) + 12 + 4 * clipnn_model_n_params(m) + 4;
        CHECK_MSG(b.len == expect, "file of %zu bytes, layout says %zu", b.len, expect);
        free(b.data);
        clipnn_model_free(m);
    }
    remove(path);
}

TEST(checkpoint_save_replaces_an_existing_file) {
    const char *path = check_tmp_path("replace.ckpt");
    clipnn_model *a = model_a(), *b = model_a(), *back = NULL;
    CHECK(a && b);
    if (!a || !b) return;
    clipnn_model_init(b, CLIPNN_INIT_XAVIER, 99);
    CHECK_OK(clipnn_model_save(a, path));
    CHECK_OK(clipnn_model_save(b, path));
    CHECK_OK(clipnn_model_load(path, &back));
    CHECK(back && same_model(back, b) && !same_model(back, a));
    clipnn_model_free(a), clipnn_model_free(b), clipnn_model_free(back);
    remove(path);
}

TEST(checkpoint_missing_file_is_an_io_error_naming_it) {
    const char *path = check_tmp_path("no-such-checkpoint.ckpt");
    remove(path);
    expect_refused(path, CLIPNN_ERR_IO, "missing file");
    CHECK(strstr(clipnn_last_error(), strerror(ENOENT)) != NULL);
    const char *dir = check_tmp_path("");
    expect_refused(dir, CLIPNN_ERR_IO, "a directory");
}

TEST(checkpoint_foreign_files_are_not_checkpoints) {
    const char *path = check_tmp_path("foreign.ckpt");
    const char *samples[] = {"label,x1,x2\n1,0.5,0.25\n", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
                             "\x93NUMPY\x01\0v\0{'descr': '<f4'", "CLIPNNX\x1a\1\0\0\0"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        spit(path, samples[i], strlen(samples[i]) + 1);
        expect_refused(path, CLIPNN_ERR_FORMAT, samples[i]);
        CHECK(strstr(clipnn_last_error(), "not a clipnn checkpoint") != NULL);
    }
    remove(path);
}

TEST(checkpoint_versions_newer_or_invalid_are_refused) {
    const char *path = check_tmp_path("version.ckpt");
    clipnn_model *m = model_a();
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    put_u32(b.data + OFF_VERSION, 4);
    reseal(&b);
    spit(path, b.data, b.len);
    expect_refused(path, CLIPNN_ERR_UNSUPPORTED, "version 4");
    CHECK(strstr(clipnn_last_error(), "version 4") != NULL);
    /* versions 2 (recurrent layers) and 3 (truncated BPTT) need the sequence section */
    for (uint32_t v = 2; v <= 3; v++) {
        put_u32(b.data + OFF_VERSION, v);
        reseal(&b);
        spit(path, b.data, b.len);
        expect_refused(path, CLIPNN_ERR_FORMAT, "version 2 or 3 without SEQN");
        CHECK(strstr(clipnn_last_error(), "SEQN") != NULL);
    }
    put_u32(b.data + OFF_VERSION, 0);
    reseal(&b);
    spit(path, b.data, b.len);
    expect_refused(path, CLIPNN_ERR_FORMAT, "version 0");
    free(b.data);
    clipnn_model_free(m);
    remove(path);
}

/* The length in the header makes every truncation a truncation, never a
 * misleading checksum error, and never a crash. */
TEST(checkpoint_every_truncation_is_reported_as_truncated) {
    const char *path = check_tmp_path("whole.ckpt"), *cut = check_tmp_path("cut.ckpt");
    clipnn_model *m = model_a();
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    CHECK(b.len > 100);
    for (size_t len = 0; len < b.len; len++) {
        spit(cut, b.data, len);
        clipnn_model *out = NULL;
        clipnn_status s = clipnn_model_load(cut, &out);
        CHECK_MSG(s == CLIPNN_ERR_TRUNCATED, "cut at %zu of %zu: status %d: %s", len, b.len, (int)s,
                  clipnn_last_error());
        CHECK_MSG(strstr(clipnn_last_error(), cut) != NULL, "cut at %zu: %s", len, clipnn_last_error());
        clipnn_model_free(out);
    }
    free(b.data);
    clipnn_model_free(m);
    remove(path);
    remove(cut);
}

/* CRC-32 detects every single-bit error, so each flipped bit anywhere must
 * be refused; inside the parameters (and anywhere past the header) it is a
 * checksum mismatch. */
TEST(checkpoint_every_flipped_bit_is_refused) {
    const char *path = check_tmp_path("flip.ckpt");
    clipnn_model *m = model_a();
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= (unsigned char)(1u << (i % 8));
        spit(path, b.data, b.len);
        clipnn_model *out = NULL;
        clipnn_status s = clipnn_model_load(path, &out);
        clipnn_status want = i < 8    ? CLIPNN_ERR_FORMAT /* magic */
                             : i < 12 ? s               /* version: FORMAT or UNSUPPORTED, checked below */
                             : i < 20 ? s               /* length: TRUNCATED or FORMAT, checked below */
                                      : CLIPNN_ERR_CHECKSUM;
        if (i >= 8 && i < 12) CHECK_MSG(s == CLIPNN_ERR_FORMAT || s == CLIPNN_ERR_UNSUPPORTED, "byte %zu", i);
        if (i >= 12 && i < 20) CHECK_MSG(s == CLIPNN_ERR_TRUNCATED || s == CLIPNN_ERR_FORMAT, "byte %zu", i);
        CHECK_MSG(s == want && s != CLIPNN_OK, "flip in byte %zu of %zu: status %d: %s", i, b.len, (int)s,
                  clipnn_last_error());
        CHECK_MSG(strstr(clipnn_last_error(), path) != NULL, "byte %zu: %s", i, clipnn_last_error());
        clipnn_model_free(out);
        b.data[i] ^= (unsigned char)(1u << (i % 8));
    }
    free(b.data);
    clipnn_model_free(m);
    remove(path);
}

/* Forged files whose CRC is right: the reader's own checks must catch
 * absurd sizes before allocating anything of that size. */
TEST(checkpoint_forged_sizes_are_refused_without_huge_allocations) {
    const char *path = check_tmp_path("orig.ckpt"), *bad = check_tmp_path("forged.ckpt");
    clipnn_model *m = model_a();
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    blob f = {malloc(b.len), b.len};

    /* A layer 2^30 wide (the largest allowed) over 5 inputs is 6 * 2^30
     * parameters, 24 GiB: refused because the file does not hold them. */
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + OFF_LAYER0, (uint64_t)1 << 30);
    reseal(&f);
    spit(bad, f.data, f.len);
    uint64_t before = clipnn_allocation_count();
    expect_refused(bad, CLIPNN_ERR_SHAPE, "giant width");
    /* The ARCH payload and the width/activation arrays, nothing for a model. */
    CHECK_MSG(clipnn_allocation_count() - before <= 3, "%llu allocations",
              (unsigned long long)(clipnn_allocation_count() - before));

    /* Widths past the limit, and a giant input count. */
    put_u64(f.data + OFF_LAYER0, (uint64_t)1 << 40);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "width 2^40");
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + OFF_N_INPUTS, UINT64_MAX);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "2^64-1 inputs");

    /* A layer count the section cannot hold: refused before the width
     * array of that length is allocated. */
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + OFF_N_LAYERS, (uint64_t)1 << 60);
    reseal(&f);
    spit(bad, f.data, f.len);
    before = clipnn_allocation_count();
    expect_refused(bad, CLIPNN_ERR_FORMAT, "2^60 layers");
    CHECK(clipnn_allocation_count() == before);

    /* A section length past the end of the file. */
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + 20 + 4, (uint64_t)1 << 62);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "section past the end");
    CHECK(strstr(clipnn_last_error(), "ARCH") != NULL);

    /* An unknown activation code. */
    memcpy(f.data, b.data, b.len);
    put_u32(f.data + OFF_LAYER0 + 12 + 8, 77);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "activation 77");
    CHECK(strstr(clipnn_last_error(), "activation code 77") != NULL);

    /* A plausible architecture that does not match the parameters: 5-6-4-3
     * needs 36 + 28 + 15 = 79 parameters, the file holds 5-7-4-3's 89. */
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + OFF_LAYER0, 6);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_SHAPE, "params vs architecture");
    CHECK(strstr(clipnn_last_error(), "89 parameters stored") != NULL &&
          strstr(clipnn_last_error(), "5-6-4-3 needs 79") != NULL);

    /* Bytes after the declared end. */
    blob g = {malloc(b.len + 3), b.len + 3};
    memcpy(g.data, b.data, b.len);
    memset(g.data + b.len, 0, 3);
    spit(bad, g.data, g.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "trailing bytes");

    free(g.data);
    free(f.data);
    free(b.data);
    clipnn_model_free(m);
    remove(path);
    remove(bad);
}

/* A version 2 file with a forged sequence section: each forgery resealed
 * (length and CRC right) is refused with FORMAT or SHAPE naming the file,
 * never built into a model; every cut of the file is TRUNCATED. */
TEST(checkpoint_forged_sequence_section_is_refused) {
    const char *path = check_tmp_path("seq.ckpt"), *bad = check_tmp_path("seq_forged.ckpt");
    clipnn_layer_spec ls[2] = {{CLIPNN_LAYER_LSTM, 3, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {4, 2, 0};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (!m) return;
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    /* ARCH: 12 + 16 + 2 x 12 bytes; SEQN's header then its payload */
    const size_t seqn = 20 + 12 + 40, q = seqn + 12, parm = q + 24 + 8;
    CHECK(b.len > parm + 12 && !memcmp(b.data + seqn, "SEQN", 4) && !memcmp(b.data + parm, "PARM", 4) &&
          get_u64(b.data + q) == 4 && get_u64(b.data + q + 8) == 2);
    blob f = {malloc(b.len), b.len};
    const struct {
        size_t at, bytes;
        uint64_t value;
        clipnn_status want;
        const char *what;
    } forgeries[] = {
        {q, 8, 0, CLIPNN_ERR_FORMAT, "0 steps"},
        {q, 8, 3, CLIPNN_ERR_FORMAT, "3 steps of 2 for 8 inputs"},
        {q + 8, 8, 0, CLIPNN_ERR_FORMAT, "steps of 0 values"},
        /* 4 (2^62 + 2) wraps around to 8 inputs: only the bound on each catches it */
        {q + 8, 8, ((uint64_t)1 << 62) + 2, CLIPNN_ERR_FORMAT, "a step_dim whose product wraps"},
        {q + 20, 4, 3, CLIPNN_ERR_FORMAT, "3 layers for 2"},
        {q + 24, 4, 9, CLIPNN_ERR_FORMAT, "kind 9"},
        {q + 24, 4, CLIPNN_LAYER_DENSE, CLIPNN_ERR_SHAPE, "a dense first layer: other parameter count"},
        {q + 28, 4, CLIPNN_LAYER_GRU, CLIPNN_ERR_FORMAT, "a recurrent last layer"},
        {q + 24, 4, CLIPNN_LAYER_GRU, CLIPNN_ERR_SHAPE, "gru for lstm: other parameter count"},
        {seqn + 4, 8, 31, CLIPNN_ERR_FORMAT, "SEQN one byte short"},
    };
    for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
        memcpy(f.data, b.data, b.len);
        if (forgeries[i].bytes == 8) put_u64(f.data + forgeries[i].at, forgeries[i].value);
        else put_u32(f.data + forgeries[i].at, (uint32_t)forgeries[i].value);
        reseal(&f);
        spit(bad, f.data, f.len);
        expect_refused(bad, forgeries[i].want, forgeries[i].what);
    }
    /* SEQN moved behind PARM: the format puts it before, as ARCH */
    size_t seqn_len = parm - seqn, parm_len = b.len - 4 - parm;
    memcpy(f.data, b.data, b.len);
    memcpy(f.data + seqn, b.data + parm, parm_len);
    memcpy(f.data + seqn + parm_len, b.data + seqn, seqn_len);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_refused(bad, CLIPNN_ERR_FORMAT, "SEQN after PARM");
    for (size_t len = 0; len < b.len; len += 7) {
        spit(bad, b.data, len);
        expect_refused(bad, CLIPNN_ERR_TRUNCATED, "a cut recurrent checkpoint");
    }
    free(f.data);
    free(b.data);
    clipnn_model_free(m);
    remove(path);
    remove(bad);
}

/* The point of tagged sections: a reader skips sections it does not know,
 * so a later version can add optional ones. */
TEST(checkpoint_unknown_sections_are_skipped) {
    const char *path = check_tmp_path("extra.ckpt");
    clipnn_model *m = model_a(), *back = NULL;
    CHECK_OK(clipnn_model_save(m, path));
    blob b = slurp(path);
    const char extra[] = "XTRA\5\0\0\0\0\0\0\0hello";
    size_t n = sizeof extra - 1;
    blob g = {malloc(b.len + n), b.len + n};
    memcpy(g.data, b.data, b.len - 4);
    memcpy(g.data + b.len - 4, extra, n);
    reseal(&g);
    spit(path, g.data, g.len);
    CHECK_OK(clipnn_model_load(path, &back));
    CHECK(back && same_model(back, m));
    clipnn_model_free(back);
    free(g.data);
    free(b.data);
    clipnn_model_free(m);
    remove(path);
}

TEST(checkpoint_save_into_missing_directory_fails_cleanly) {
    const char *path = check_tmp_path("no-such-dir/model.ckpt");
    clipnn_model *m = model_a();
    clipnn_status s = clipnn_model_save(m, path);
    CHECK(s == CLIPNN_ERR_IO);
    CHECK(strstr(clipnn_last_error(), path) != NULL);
    CHECK(strstr(clipnn_last_error(), strerror(ENOENT)) != NULL);
    struct stat sb;
    CHECK(stat(check_tmp_path("no-such-dir"), &sb) != 0);
    clipnn_model_free(m);
}

/* A write that fails half way (the file size limit stands in for a full
 * disk; it binds root too, unlike permissions) must leave the old file
 * whole and no temporary behind; so must a rename that fails. */
TEST(checkpoint_failed_save_keeps_old_file_and_leaves_no_temporary) {
    const char *dir = check_tmp_path("atomic");
    mkdir(dir, 0755);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    size_t wide[2] = {300, 3};
    clipnn_act acts[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *old = model_a(), *big = small_model(40, 2, wide, acts, 5), *back = NULL;
    CHECK_OK(clipnn_model_save(old, path));
    blob before = slurp(path);

    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 2000; /* the big model needs ~50 kB */
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    clipnn_status s = clipnn_model_save(big, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, handler);
    CHECK_MSG(s == CLIPNN_ERR_IO, "status %d: %s", (int)s, clipnn_last_error());
    CHECK(strstr(clipnn_last_error(), path) != NULL);
    blob after = slurp(path);
    CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    CHECK_OK(clipnn_model_load(path, &back));
    CHECK(back && same_model(back, old));
    CHECK(count_prefixed(dir, "model.ckpt.tmp.") == 0);

    /* rename(2) over a directory fails after the data are written. */
    char target[4300];
    snprintf(target, sizeof target, "%s/taken", dir);
    mkdir(target, 0755);
    CHECK(clipnn_model_save(old, target) == CLIPNN_ERR_IO);
    CHECK(count_prefixed(dir, "taken.tmp.") == 0);
    rmdir(target);

    free(before.data), free(after.data);
    clipnn_model_free(old), clipnn_model_free(big), clipnn_model_free(back);
    remove(path);
    rmdir(dir);
}

/* --------------------------------------------------------- optimizer state */

static void fill_grads(float *g, size_t n, int t) {
    for (size_t i = 0; i < n; i++) g[i] = (float)sin(0.3 * (double)i + 1.7 * t);
}

/* Run k steps on o1, copy its state into a fresh o2, then step both the
 * same way: parameters must stay bit-identical. */
static void check_optimizer_resume(clipnn_optim_options oo) {
    enum { N = 37 };
    clipnn_optimizer *o1 = NULL, *o2 = NULL;
    CHECK_OK(clipnn_optimizer_create(&o1, N, &oo));
    CHECK_OK(clipnn_optimizer_create(&o2, N, &oo));
    if (!o1 || !o2) return;
    float p1[N], p2[N], g[N];
    for (int i = 0; i < N; i++) p1[i] = (float)cos(i);
    for (int t = 0; t < 3; t++) {
        fill_grads(g, N, t);
        CHECK_OK(clipnn_optimizer_step(o1, p1, g, 0.05, 0.7));
    }
    size_t len = clipnn_optimizer_state_size(o1);
    unsigned char *buf = malloc(len);
    clipnn_optimizer_state_save(o1, buf);
    CHECK_OK(clipnn_optimizer_state_load(o2, buf, len));
    CHECK(clipnn_optimizer_steps(o2) == 3);
    memcpy(p2, p1, sizeof p1);
    for (int t = 3; t < 7; t++) {
        fill_grads(g, N, t);
        CHECK_OK(clipnn_optimizer_step(o1, p1, g, 0.05, 0.7));
        CHECK_OK(clipnn_optimizer_step(o2, p2, g, 0.05, 0.7));
    }
    CHECK(memcmp(p1, p2, sizeof p1) == 0);
    /* A state cut short, or offered to an optimizer of another shape. */
    CHECK(clipnn_optimizer_state_load(o2, buf, len - 1) == CLIPNN_ERR_TRUNCATED);
    clipnn_optimizer *o3 = NULL;
    CHECK_OK(clipnn_optimizer_create(&o3, N + 1, &oo));
    CHECK(clipnn_optimizer_state_load(o3, buf, len) == CLIPNN_ERR_SHAPE);
    clipnn_optimizer_free(o3);
    free(buf);
    clipnn_optimizer_free(o1);
    clipnn_optimizer_free(o2);
}

TEST(optimizer_state_round_trip_continues_exactly) {
    clipnn_optim_options oo = clipnn_optim_options_default();
    check_optimizer_resume(oo); /* plain SGD: only the step count */
    oo.momentum = 0.9;
    check_optimizer_resume(oo);
    oo.nesterov = 1;
    oo.weight_decay = 0.01;
    check_optimizer_resume(oo);
    oo = clipnn_optim_options_default();
    oo.kind = CLIPNN_OPT_ADAM;
    check_optimizer_resume(oo);

    /* Adam's state is not SGD-with-momentum's. */
    clipnn_optimizer *adam = NULL, *sgd = NULL;
    clipnn_optim_options so = clipnn_optim_options_default();
    so.momentum = 0.9;
    CHECK_OK(clipnn_optimizer_create(&adam, 4, &oo));
    CHECK_OK(clipnn_optimizer_create(&sgd, 4, &so));
    unsigned char buf[256];
    CHECK(clipnn_optimizer_state_size(adam) <= sizeof buf);
    clipnn_optimizer_state_save(adam, buf);
    CHECK(clipnn_optimizer_state_load(sgd, buf, clipnn_optimizer_state_size(adam)) == CLIPNN_ERR_SHAPE);
    CHECK(strstr(clipnn_last_error(), "adam") != NULL);
    clipnn_optimizer_free(adam);
    clipnn_optimizer_free(sgd);
}

/* ------------------------------------------------ training state sections */

/* Payload offset of section `tag` in a checkpoint image, or 0. */
static size_t find_section(const blob *b, const char *tag, uint64_t *len) {
    size_t off = 20;
    while (off + 12 <= b->len - 4) {
        uint64_t l = get_u64(b->data + off + 4);
        if (memcmp(b->data + off, tag, 4) == 0) {
            if (len) *len = l;
            return off + 12;
        }
        off += 12 + (size_t)l;
    }
    return 0;
}

enum { ST_N = 6 };

/* A state as clipnn_train would capture it, built from its parts so that
 * the container is tested on its own (the resume tests below run the
 * trainer). */
static clipnn_train_state *made_state(clipnn_model *m, clipnn_train_loop *L, size_t *order) {
    size_t P = clipnn_model_n_params(m);
    clipnn_train_state *st = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    if (!st) return NULL;
    *L = (clipnn_train_loop){.step = 17, .rng = {{1, 2, 0xfedcba9876543210ull, 4}}, .cursor = 3, .epoch = 2,
                             .epoch_steps = 5, .epoch_clipped = 4, .clipped = 11, .skipped = 1,
                             .sum_lr = 1.7, .sum_lr2 = 0.17, .epoch_loss = 3.25, .max_dist = 0.5};
    for (size_t i = 0; i < ST_N; i++) order[i] = (i * 5 + 2) % ST_N; /* a permutation: 5 is prime to 6 */
    CHECK_OK(clipnn_train_loop_encode(L, order, ST_N, clipnn_model_params(m), P, &st->loop, &st->loop_len));
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.momentum = 0.9;
    clipnn_optimizer *o = NULL;
    CHECK_OK(clipnn_optimizer_create(&o, P, &oo));
    float *p = malloc(P * sizeof *p), *g = malloc(P * sizeof *g);
    memcpy(p, clipnn_model_params(m), P * sizeof *p);
    for (int t = 0; t < 2; t++) {
        fill_grads(g, P, t);
        clipnn_optimizer_step(o, p, g, 0.1, 1.0);
    }
    st->optim_len = clipnn_optimizer_state_size(o);
    st->optim = malloc(st->optim_len);
    clipnn_optimizer_state_save(o, st->optim);
    st->clip_len = 3;
    st->clip = malloc(3);
    memcpy(st->clip, "abc", 3);
    clipnn_optimizer_free(o);
    free(p), free(g);
    return st;
}

TEST(checkpoint_training_state_round_trip) {
    const char *path = check_tmp_path("state.ckpt");
    clipnn_model *m = model_a(), *back = NULL;
    clipnn_train_loop L, L2;
    size_t order[ST_N], order2[ST_N];
    clipnn_train_state *st = made_state(m, &L, order), *got = NULL;
    if (!st) return;
    CHECK(clipnn_train_state_steps(st) == 17);
    CHECK_OK(clipnn_checkpoint_save(path, m, st));
    CHECK_OK(clipnn_checkpoint_load(path, &back, &got));
    CHECK(back && same_model(back, m));
    CHECK(got && clipnn_train_state_steps(got) == 17);
    if (got) {
        CHECK(got->optim_len == st->optim_len && memcmp(got->optim, st->optim, st->optim_len) == 0);
        CHECK(got->clip_len == 3 && memcmp(got->clip, "abc", 3) == 0);
        CHECK(got->loop_len == st->loop_len && memcmp(got->loop, st->loop, st->loop_len) == 0);
        CHECK(strcmp(got->source, path) == 0);
        size_t P = clipnn_model_n_params(m);
        float *theta0 = malloc(P * sizeof *theta0);
        clipnn_train_loop_decode(got->loop, &L2, order2, ST_N, theta0, P);
        CHECK(L.step == L2.step && L.cursor == L2.cursor && memcmp(L.rng.s, L2.rng.s, sizeof L.rng.s) == 0);
        CHECK(L.epoch == L2.epoch && L.epoch_steps == L2.epoch_steps && L.epoch_clipped == L2.epoch_clipped &&
              L.clipped == L2.clipped && L.skipped == L2.skipped);
        CHECK(L.sum_lr == L2.sum_lr && L.sum_lr2 == L2.sum_lr2 && L.epoch_loss == L2.epoch_loss &&
              L.max_dist == L2.max_dist);
        CHECK(memcmp(order, order2, sizeof order) == 0);
        CHECK(memcmp(theta0, clipnn_model_params(m), P * sizeof *theta0) == 0);
        free(theta0);
    }
    clipnn_model_free(back);
    clipnn_train_state_free(got);

    /* A model-only file gives an empty state; a state-bearing file loads as
     * a plain model too. */
    CHECK_OK(clipnn_model_load(path, &back));
    CHECK(back && same_model(back, m));
    clipnn_model_free(back);
    CHECK_OK(clipnn_model_save(m, path));
    CHECK_OK(clipnn_checkpoint_load(path, &back, &got));
    CHECK(got && clipnn_train_state_steps(got) == 0 && got->loop == NULL);
    clipnn_model_free(back);
    clipnn_train_state_free(got);

    clipnn_train_state_free(st);
    clipnn_model_free(m);
    remove(path);
}

static void expect_state_refused(const char *path, clipnn_status want, const char *what, const char *needle) {
    clipnn_model *m = NULL;
    clipnn_train_state *st = NULL;
    clipnn_status s = clipnn_checkpoint_load(path, &m, &st);
    CHECK_MSG(s == want, "%s: status %d, expected %d: %s", what, (int)s, (int)want, clipnn_last_error());
    CHECK_MSG(m == NULL && st == NULL, "%s: outputs not reset", what);
    CHECK_MSG(strstr(clipnn_last_error(), path) != NULL, "%s: %s", what, clipnn_last_error());
    CHECK_MSG(!needle || strstr(clipnn_last_error(), needle) != NULL, "%s: %s", what, clipnn_last_error());
    clipnn_model_free(m);
    clipnn_train_state_free(st);
}

TEST(checkpoint_training_state_damage_and_forgeries_are_refused) {
    const char *path = check_tmp_path("state-ok.ckpt"), *bad = check_tmp_path("state-bad.ckpt");
    clipnn_model *m = model_a();
    clipnn_train_loop L;
    size_t order[ST_N];
    clipnn_train_state *st = made_state(m, &L, order);
    if (!st) return;
    CHECK_OK(clipnn_checkpoint_save(path, m, st));
    blob b = slurp(path);
    blob f = {malloc(b.len), b.len};

    for (size_t len = 0; len < b.len; len += 7) {
        spit(bad, b.data, len);
        expect_state_refused(bad, CLIPNN_ERR_TRUNCATED, "truncated", NULL);
    }
    uint64_t tran_len = 0, optm_len = 0;
    size_t tran = find_section(&b, "TRAN", &tran_len), optm = find_section(&b, "OPTM", &optm_len);
    CHECK(tran && optm && find_section(&b, "CLIP", NULL));
    if (!tran || !optm) goto done;

    /* A flipped bit in the shuffle order: damage, caught by the CRC. */
    memcpy(f.data, b.data, b.len);
    f.data[tran + 136] ^= 4;
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_CHECKSUM, "flipped order", NULL);

    /* Forged: an order that repeats an index, or points past the data,
     * would make the trainer read outside the training set. */
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_FORMAT, "repeated index", "not a permutation");
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + tran + 136, 1000000);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_FORMAT, "index past the data", "not a permutation");

    /* Forged counts: theta0 for another model, a shuffle position past the
     * data, an example count the section cannot hold, an optimizer state for
     * another model. */
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + tran + 128, 88);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_SHAPE, "theta0 size", "88 parameters");
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + tran + 40, ST_N + 1);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_FORMAT, "cursor", "shuffle position");
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + tran + 120, (uint64_t)1 << 61);
    reseal(&f);
    spit(bad, f.data, f.len);
    uint64_t before = clipnn_allocation_count();
    expect_state_refused(bad, CLIPNN_ERR_FORMAT, "example count", NULL);
    /* Only the model and the section payloads were allocated, nothing of 2^61. */
    CHECK(clipnn_allocation_count() - before < 20);
    memcpy(f.data, b.data, b.len);
    put_u64(f.data + optm + 8, 90);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_SHAPE, "optimizer size", "optimizer state for 90");

    /* A TRAN section without its OPTM: rename OPTM's tag to one readers skip. */
    memcpy(f.data, b.data, b.len);
    memcpy(f.data + optm - 12, "XOPT", 4);
    reseal(&f);
    spit(bad, f.data, f.len);
    expect_state_refused(bad, CLIPNN_ERR_FORMAT, "no OPTM", "OPTM");

done:
    free(f.data);
    free(b.data);
    clipnn_train_state_free(st);
    clipnn_model_free(m);
    remove(path);
    remove(bad);
}
