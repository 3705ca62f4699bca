/* Datasets and .npy arrays: the built-in digits, CSV and IDX files good and
 * bad (every bad file refused with its own status and a message naming it),
 * the seeded split, scaling fitted on the training part, synthetic sets made
 * by seed, and bit-identical .npy round trips. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "clipnn.h"

/* ------------------------------------------------------------- helpers */

/* A scratch path that stays valid for the whole test (check_tmp_path
 * recycles its buffers after a few calls). */
static const char *tmp(const char *name) {
    static char pool[64][512];
    static int slot;
    char *out = pool[slot++ % 64];
    snprintf(out, sizeof pool[0], "%s", check_tmp_path(name));
    return out;
}

static int contains(const unsigned char *hay, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return 1;
    return 0;
}

static const char *write_bytes(const char *name, const void *p, size_t n) {
    const char *path = tmp(name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
    return path;
}

static const char *write_text(const char *name, const char *text) { return write_bytes(name, text, strlen(text)); }

static const char *write_gz(const char *name, const void *p, size_t n) {
    const char *path = tmp(name);
    gzFile g = gzopen(path, "wb");
    if (!g) return path;
    if (n) gzwrite(g, p, (unsigned)n);
    gzclose(g);
    return path;
}

/* Status `status` with a message naming path (and containing want, unless NULL). */
static void check_refused(const char *file, int line, const char *expr, clipnn_status st, clipnn_status status,
                          const char *path, const char *want) {
    const char *msg = clipnn_last_error();
    if (st != status)
        check_fail(file, line, "%s: status %d (%s), want %d: %s", expr, (int)st, clipnn_strerror(st), (int)status,
                   msg);
    if (!strstr(msg, path)) check_fail(file, line, "%s: message does not name %s: %s", expr, path, msg);
    if (want && !strstr(msg, want)) check_fail(file, line, "%s: message lacks '%s': %s", expr, want, msg);
}
#define CHECK_REFUSED(expr, status, path, want) check_refused(__FILE__, __LINE__, #expr, (expr), status, path, want)

static clipnn_data_options raw_options(void) {
    clipnn_data_options o = clipnn_data_options_default();
    o.scaling = CLIPNN_SCALE_NONE;
    o.test_fraction = 0;
    return o;
}

/* -------------------------------------------------------------- digits */

TEST(data_digits_builtin_rows_features_classes_and_split) {
    clipnn_dataset *tr = NULL, *te = NULL;
    clipnn_data_options o = clipnn_data_options_default();
    CHECK_OK(clipnn_dataset_load("digits", &o, &tr, &te));
    if (!tr || !te) return;
    /* 0.2 * 1797 = 359.4 -> 359 test rows */
    CHECK(clipnn_dataset_n(te) == 359);
    CHECK(clipnn_dataset_n(tr) + clipnn_dataset_n(te) == 1797);
    CHECK(clipnn_dataset_dim(tr) == 64 && clipnn_dataset_dim(te) == 64);
    CHECK(clipnn_dataset_n_classes(tr) == 10 && clipnn_dataset_n_classes(te) == 10);
    CHECK(clipnn_dataset_n_targets(tr) == 1);
    size_t h, w, c;
    clipnn_dataset_image_shape(tr, &h, &w, &c);
    CHECK(h == 8 && w == 8 && c == 1);
    CHECK(strcmp(clipnn_dataset_name(tr), "digits") == 0);
    /* Default scaling standardizes with the training part's statistics:
     * each training feature then has mean 0 and std 1 (0 if constant). */
    const float *x = clipnn_dataset_x(tr);
    size_t n = clipnn_dataset_n(tr);
    for (size_t j = 0; j < 64; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s += x[i * 64 + j];
        s /= (double)n;
        for (size_t i = 0; i < n; i++) s2 += (x[i * 64 + j] - s) * (x[i * 64 + j] - s);
        double sd = sqrt(s2 / (double)n);
        /* float32 rounding of values of size ~10: mean error ~1e-6 */
        CHECK_NEAR(s, 0.0, 1e-5);
        CHECK_MSG(fabs(sd - 1) < 1e-5 || sd == 0, "feature %zu: std %g", j, sd);
    }
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
}

TEST(data_digits_raw_values_follow_the_file) {
    clipnn_dataset *all = NULL;
    clipnn_data_options o = raw_options();
    clipnn_dataset *te = (clipnn_dataset *)1;
    CHECK_OK(clipnn_dataset_load("digits", &o, &all, &te));
    CHECK(te == NULL); /* test fraction 0: no test part */
    if (!all) return;
    CHECK(clipnn_dataset_n(all) == 1797);
    /* The first rows of data/digits.csv.gz: 0,0,5,13,9,1,... label 0, then labels 1, 2. */
    const float *x = clipnn_dataset_x(all), *y = clipnn_dataset_y(all);
    CHECK(x[0] == 0 && x[2] == 5 && x[3] == 13 && x[4] == 9 && x[5] == 1);
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 2);
    int count[10] = {0};
    float lo = 1e9f, hi = -1e9f;
    for (size_t i = 0; i < 1797; i++) {
        CHECK(y[i] >= 0 && y[i] <= 9 && y[i] == floorf(y[i]));
        if (y[i] >= 0 && y[i] <= 9) count[(int)y[i]]++;
    }
    for (size_t i = 0; i < 1797 * 64; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    CHECK(lo == 0 && hi == 16);
    for (int k = 0; k < 10; k++) CHECK_MSG(count[k] >= 170 && count[k] <= 190, "class %d: %d rows", k, count[k]);
    clipnn_dataset_free(all);
}

/* The embedded breast cancer set is data/breast_cancer.csv.gz: 569 rows of
 * 30 unscaled features, class 0 (malignant) 212 times, 1 (benign) 357. */
TEST(data_breast_cancer_builtin_follows_the_file) {
    clipnn_dataset *all = NULL;
    clipnn_data_options o = raw_options();
    CHECK_OK(clipnn_dataset_load("breast-cancer", &o, &all, NULL));
    if (!all) return;
    CHECK(clipnn_dataset_n(all) == 569 && clipnn_dataset_dim(all) == 30);
    CHECK(clipnn_dataset_n_classes(all) == 2 && clipnn_dataset_n_targets(all) == 1);
    CHECK(strcmp(clipnn_dataset_name(all), "breast-cancer") == 0);
    size_t h, w, c;
    clipnn_dataset_image_shape(all, &h, &w, &c);
    CHECK(h == 0 && w == 0 && c == 0);
    /* First row of the file: 17.99,10.38,122.8,1001,... worst radius 25.38 (column 20), class 0. */
    const float *x = clipnn_dataset_x(all), *y = clipnn_dataset_y(all);
    CHECK(x[0] == 17.99f && x[1] == 10.38f && x[2] == 122.8f && x[3] == 1001.0f && x[20] == 25.38f);
    size_t benign = 0;
    for (size_t i = 0; i < 569; i++) benign += y[i] == 1;
    CHECK_MSG(benign == 357, "%zu benign rows", benign);
    clipnn_dataset_free(all);
    /* the default split: round(0.2 * 569) = 114 test rows */
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load("breast-cancer", NULL, &tr, &te));
    if (tr && te) CHECK(clipnn_dataset_n(tr) == 455 && clipnn_dataset_n(te) == 114);
    clipnn_dataset_free(tr), clipnn_dataset_free(te);
}

TEST(data_split_is_seeded_and_independent_of_asking_for_test) {
    clipnn_data_options o = clipnn_data_options_default();
    clipnn_dataset *a = NULL, *at = NULL, *b = NULL, *c = NULL, *ct = NULL;
    CHECK_OK(clipnn_dataset_load("digits", &o, &a, &at));
    CHECK_OK(clipnn_dataset_load("digits", &o, &b, NULL));
    o.seed = 2;
    CHECK_OK(clipnn_dataset_load("digits", &o, &c, &ct));
    if (!a || !b || !c) return;
    size_t bytes = clipnn_dataset_n(a) * 64 * sizeof(float);
    CHECK(clipnn_dataset_n(a) == clipnn_dataset_n(b));
    CHECK(memcmp(clipnn_dataset_x(a), clipnn_dataset_x(b), bytes) == 0);
    CHECK(clipnn_dataset_n(c) == clipnn_dataset_n(a));
    CHECK(memcmp(clipnn_dataset_y(a), clipnn_dataset_y(c), clipnn_dataset_n(a) * sizeof(float)) != 0);
    clipnn_dataset_free(a), clipnn_dataset_free(at), clipnn_dataset_free(b);
    clipnn_dataset_free(c), clipnn_dataset_free(ct);
}

TEST(data_unit_scaling_of_digits_divides_by_16) {
    clipnn_data_options o = raw_options();
    clipnn_dataset *raw = NULL, *unit = NULL;
    CHECK_OK(clipnn_dataset_load("digits", &o, &raw, NULL));
    o.scaling = CLIPNN_SCALE_UNIT;
    CHECK_OK(clipnn_dataset_load("digits", &o, &unit, NULL));
    if (!raw || !unit) return;
    const float *r = clipnn_dataset_x(raw), *u = clipnn_dataset_x(unit);
    size_t bad = 0;
    for (size_t i = 0; i < 1797 * 64; i++) bad += u[i] != r[i] / 16.0f; /* exact: power of two */
    CHECK(bad == 0);
    clipnn_dataset_free(raw), clipnn_dataset_free(unit);
}

/* ----------------------------------------------------------------- CSV */

TEST(data_csv_header_target_column_and_class_remap) {
    const char *with = write_text("good_header.csv", "a,b,label\n1,2,5\n3,4.5,7\n-1,0,5\n2,2,9\n0.5,1,7\n8,1,9\n");
    const char *without = write_text("good_plain.csv", "1,2,5\n3,4.5,7\n-1,0,5\n2,2,9\n0.5,1,7\n8,1,9\n");
    clipnn_dataset *a = NULL, *b = NULL;
    CHECK_OK(clipnn_dataset_load_csv(with, -1, -1, &a));
    CHECK_OK(clipnn_dataset_load_csv(without, -1, -1, &b));
    if (!a || !b) return;
    CHECK(clipnn_dataset_n(a) == 6 && clipnn_dataset_n(b) == 6);
    CHECK(clipnn_dataset_dim(a) == 2);
    CHECK(clipnn_dataset_n_classes(a) == 3); /* 5, 7, 9 -> 0, 1, 2 */
    CHECK(memcmp(clipnn_dataset_x(a), clipnn_dataset_x(b), 12 * sizeof(float)) == 0);
    const float *x = clipnn_dataset_x(a), *y = clipnn_dataset_y(a);
    CHECK(x[2] == 3 && x[3] == 4.5f && x[4] == -1);
    CHECK(y[0] == 0 && y[1] == 1 && y[2] == 0 && y[3] == 2 && y[4] == 1 && y[5] == 2);
    CHECK(strcmp(clipnn_dataset_name(a), with) == 0);
    clipnn_dataset_free(a), clipnn_dataset_free(b);

    /* target = first column: 1, 3, -1, 2, 0.5, 8 are not integers -> regression */
    CHECK_OK(clipnn_dataset_load_csv(with, 0, -1, &a));
    if (a) {
        CHECK(clipnn_dataset_n_classes(a) == 0 && clipnn_dataset_n_targets(a) == 1);
        CHECK(clipnn_dataset_y(a)[4] == 0.5f);
        CHECK(clipnn_dataset_x(a)[0] == 2 && clipnn_dataset_x(a)[1] == 5);
        clipnn_dataset_free(a);
    }
    /* the same through a spec, column counted from the end */
    clipnn_data_options o = raw_options();
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s,target=-3", with);
    CHECK_OK(clipnn_dataset_load(spec, &o, &a, NULL));
    if (a) {
        CHECK(clipnn_dataset_y(a)[1] == 3 && clipnn_dataset_x(a)[3] == 7);
        clipnn_dataset_free(a);
    }
    /* the target named in the header line (quotes and blanks around a name are dropped) */
    const char *quoted = write_text("good_quoted.csv", "\"a\", b ,\"label\"\n1,2,5\n3,4.5,7\n-1,0,5\n2,2,9\n");
    snprintf(spec, sizeof spec, "csv:%s,target=b", quoted);
    CHECK_OK(clipnn_dataset_load(spec, &o, &a, NULL));
    if (a) {
        CHECK(clipnn_dataset_y(a)[1] == 4.5f && clipnn_dataset_x(a)[2] == 3 && clipnn_dataset_x(a)[3] == 7);
        clipnn_dataset_free(a);
    }
    snprintf(spec, sizeof spec, "csv:%s,target=nosuch", quoted);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &a, NULL), CLIPNN_ERR_INVALID_ARG, quoted, "no column named 'nosuch'");
    snprintf(spec, sizeof spec, "csv:%s,target=label", without);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &a, NULL), CLIPNN_ERR_INVALID_ARG, without, "no header line");
    /* integer targets forced to be a regression */
    snprintf(spec, sizeof spec, "csv:%s,task=regression", with);
    CHECK_OK(clipnn_dataset_load(spec, &o, &a, NULL));
    if (a) {
        CHECK(clipnn_dataset_n_classes(a) == 0 && clipnn_dataset_y(a)[3] == 9);
        clipnn_dataset_free(a);
    }
}

TEST(data_csv_blank_separated_gzip_comments_and_crlf) {
    const char *text = "# x1 x2 y\r\n1 2\t0\r\n\r\n  3  4 1\r\n5 6 0\r\n7 8 1\r\n";
    const char *path = write_gz("blank.csv.gz", text, strlen(text));
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load_csv(path, -1, -1, &d));
    if (!d) return;
    CHECK(clipnn_dataset_n(d) == 4 && clipnn_dataset_dim(d) == 2 && clipnn_dataset_n_classes(d) == 2);
    CHECK(clipnn_dataset_x(d)[2] == 3 && clipnn_dataset_x(d)[7] == 8 && clipnn_dataset_y(d)[3] == 1);
    clipnn_dataset_free(d);
}

TEST(data_csv_unit_scaling_is_minmax_fitted_on_train) {
    /* 10 rows, feature 0 = 0..9, feature 1 = 10 * that; 5 rows go to test */
    char text[512] = "";
    for (int i = 0; i < 10; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d,%d,%.1f\n", i, 10 * i, 0.5 * i);
        strcat(text, row);
    }
    const char *path = write_text("minmax.csv", text);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", path);
    clipnn_data_options o = clipnn_data_options_default();
    o.scaling = CLIPNN_SCALE_UNIT;
    o.test_fraction = 0.5;
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &o, &tr, &te));
    if (!tr || !te) return;
    CHECK(clipnn_dataset_n(tr) == 5 && clipnn_dataset_n(te) == 5);
    CHECK(clipnn_dataset_n_classes(tr) == 0); /* 0.5 steps: regression */
    for (int j = 0; j < 2; j++) {
        float lo = 1e9f, hi = -1e9f;
        for (size_t i = 0; i < 5; i++) {
            float v = clipnn_dataset_x(tr)[i * 2 + j];
            lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
        CHECK(lo == 0 && hi == 1);
    }
    /* test rows use the training fit: feature 0 and 1 agree after scaling */
    for (size_t i = 0; i < 5; i++)
        CHECK_NEAR(clipnn_dataset_x(te)[2 * i], clipnn_dataset_x(te)[2 * i + 1], 1e-6);
    clipnn_dataset_free(tr), clipnn_dataset_free(te);
}

TEST(data_csv_bad_files_are_refused_naming_the_file) {
    clipnn_dataset *d = NULL;
    const char *missing = tmp("no_such_file.csv");
    CHECK_REFUSED(clipnn_dataset_load_csv(missing, -1, -1, &d), CLIPNN_ERR_IO, missing, NULL);
    static const struct {
        const char *name, *text;
        long target;
        int classification;
        clipnn_status status;
        const char *want;
    } cases[] = {
        {"notnum.csv", "1,2,0\n3,4,1\n5,abc,0\n", -1, -1, CLIPNN_ERR_FORMAT, "line 3, column 2: not a number: 'abc'"},
        {"nan.csv", "1,2,0\n3,nan,1\n", -1, -1, CLIPNN_ERR_NONFINITE, "line 2, column 2"},
        {"inf.csv", "1,2,0\n3,4,1\n1e39,0,0\n", -1, -1, CLIPNN_ERR_NONFINITE, "line 3, column 1"},
        {"ragged.csv", "1,2,0\n3,4,1\n5,0\n", -1, -1, CLIPNN_ERR_FORMAT, "line 3"},
        {"emptycell.csv", "1,2,0\n3,,1\n", -1, -1, CLIPNN_ERR_FORMAT, "empty"},
        {"headeronly.csv", "a,b,c\n", -1, -1, CLIPNN_ERR_FORMAT, "no data"},
        {"onecol.csv", "1\n2\n", -1, -1, CLIPNN_ERR_FORMAT, NULL},
        {"fracclass.csv", "1,2,0\n3,4,1.5\n", -1, 1, CLIPNN_ERR_FORMAT, "line 2"},
        {"target.csv", "1,2,0\n3,4,1\n", 3, -1, CLIPNN_ERR_INVALID_ARG, "target column"},
        {"target.csv", "1,2,0\n3,4,1\n", -4, -1, CLIPNN_ERR_INVALID_ARG, "target column"},
    };
    const char *p;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = write_text(cases[i].name, cases[i].text);
        CHECK_REFUSED(clipnn_dataset_load_csv(p, cases[i].target, cases[i].classification, &d), cases[i].status, p,
                      cases[i].want);
    }
    const char nul[] = "1,2,0\n3\0,4,1\n";
    p = write_bytes("binary.csv", nul, sizeof nul - 1);
    CHECK_REFUSED(clipnn_dataset_load_csv(p, -1, -1, &d), CLIPNN_ERR_FORMAT, p, NULL);
    /* a gzip stream cut short */
    char big[8192];
    size_t len = 0;
    for (int i = 0; len + 32 < sizeof big; i++) len += (size_t)snprintf(big + len, sizeof big - len, "%d,%d,%d\n", i, i * 7 % 13, i % 2);
    p = write_gz("cut.csv.gz", big, len);
    FILE *f = fopen(p, "rb");
    unsigned char gz[8192];
    size_t glen = f ? fread(gz, 1, sizeof gz, f) : 0;
    if (f) fclose(f);
    p = write_bytes("cut.csv.gz", gz, glen / 2);
    CHECK_REFUSED(clipnn_dataset_load_csv(p, -1, -1, &d), CLIPNN_ERR_TRUNCATED, p, NULL);
    /* damaged gzip data (a flipped byte in the deflate stream) */
    gz[glen / 2] ^= 0x55;
    p = write_bytes("bad.csv.gz", gz, glen);
    clipnn_status st = clipnn_dataset_load_csv(p, -1, -1, &d);
    CHECK_MSG(st == CLIPNN_ERR_FORMAT || st == CLIPNN_ERR_TRUNCATED, "damaged gzip: %d %s", st, clipnn_last_error());
    CHECK(strstr(clipnn_last_error(), p) != NULL);
    CHECK(d == NULL);
    /* the dispatcher passes the file's message through */
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", missing);
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_REFUSED(clipnn_dataset_load(spec, NULL, &tr, &te), CLIPNN_ERR_IO, missing, NULL);
    CHECK(tr == NULL && te == NULL);
}

/* ----------------------------------------------------------------- IDX */

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* n images of r x c, pixel k of image i = (7 i + k) mod 256, into buf;
 * returns the length. */
static size_t idx_images(unsigned char *buf, uint32_t n, uint32_t r, uint32_t c) {
    be32(buf, 0x803), be32(buf + 4, n), be32(buf + 8, r), be32(buf + 12, c);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < (size_t)r * c; k++) buf[16 + i * r * c + k] = (unsigned char)((7 * i + k) % 256);
    return 16 + (size_t)n * r * c;
}

static size_t idx_labels(unsigned char *buf, uint32_t n, const unsigned char *lab) {
    be32(buf, 0x801), be32(buf + 4, n);
    memcpy(buf + 8, lab, n);
    return 8 + (size_t)n;
}

TEST(data_idx_plain_and_gzip_files) {
    unsigned char im[256], lb[64];
    const unsigned char lab[5] = {3, 0, 1, 3, 2};
    size_t ni = idx_images(im, 5, 2, 3), nl = idx_labels(lb, 5, lab);
    const char *ip = write_bytes("im.idx", im, ni), *lp = write_bytes("lb.idx", lb, nl);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load_idx(ip, lp, &d));
    if (!d) return;
    CHECK(clipnn_dataset_n(d) == 5 && clipnn_dataset_dim(d) == 6 && clipnn_dataset_n_classes(d) == 4);
    size_t h, w, c;
    clipnn_dataset_image_shape(d, &h, &w, &c);
    CHECK(h == 2 && w == 3 && c == 1);
    CHECK(clipnn_dataset_x(d)[4 * 6 + 5] == (float)((7 * 4 + 5) % 256));
    CHECK(clipnn_dataset_y(d)[3] == 3 && clipnn_dataset_y(d)[4] == 2);
    CHECK(strcmp(clipnn_dataset_name(d), ip) == 0);
    clipnn_dataset_free(d);

    /* gzip, and a four-file spec giving a test part, scaled /255 by default */
    const char *igz = write_gz("im.idx.gz", im, ni), *lgz = write_gz("lb.idx.gz", lb, nl);
    unsigned char tim[256], tlb[64];
    const unsigned char tlab[2] = {4, 1}; /* class 4 only in the test part */
    size_t tni = idx_images(tim, 2, 2, 3), tnl = idx_labels(tlb, 2, tlab);
    const char *tip = write_gz("tim.idx.gz", tim, tni), *tlp = write_bytes("tlb.idx", tlb, tnl);
    char spec[8400];
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", igz, lgz, tip, tlp);
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load(spec, NULL, &tr, &te));
    if (!tr || !te) return;
    CHECK(clipnn_dataset_n(tr) == 5 && clipnn_dataset_n(te) == 2);
    CHECK(clipnn_dataset_n_classes(tr) == 5 && clipnn_dataset_n_classes(te) == 5);
    CHECK(clipnn_dataset_x(tr)[4 * 6 + 5] == (float)((7 * 4 + 5) % 256) / 255.0f);
    CHECK(clipnn_dataset_x(te)[1 * 6 + 2] == (float)(7 + 2) / 255.0f);
    clipnn_dataset_free(tr), clipnn_dataset_free(te);

    /* fashion-mnist:DIR finds the Debian file names (here gzipped) */
    const char *dir = tmp("fashion");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    write_gz("fashion/train-images-idx3-ubyte.gz", im, ni);
    write_gz("fashion/train-labels-idx1-ubyte.gz", lb, nl);
    write_gz("fashion/t10k-images-idx3-ubyte.gz", tim, tni);
    write_bytes("fashion/t10k-labels-idx1-ubyte", tlb, tnl); /* plain also found */
    snprintf(spec, sizeof spec, "fashion-mnist:%s", dir);
    CHECK_OK(clipnn_dataset_load(spec, NULL, &tr, &te));
    if (tr && te) {
        CHECK(clipnn_dataset_n(tr) == 5 && clipnn_dataset_n(te) == 2);
        CHECK(strcmp(clipnn_dataset_name(tr), "fashion-mnist") == 0);
    }
    clipnn_dataset_free(tr), clipnn_dataset_free(te);
    snprintf(spec, sizeof spec, "fashion-mnist:%s/none", dir);
    CHECK_REFUSED(clipnn_dataset_load(spec, NULL, &tr, &te), CLIPNN_ERR_IO, "train-images-idx3-ubyte", NULL);
}

TEST(data_idx_bad_files_are_refused_naming_the_file) {
    unsigned char im[256], lb[64], bad[256];
    const unsigned char lab[5] = {0, 1, 2, 1, 0};
    size_t ni = idx_images(im, 5, 2, 3), nl = idx_labels(lb, 5, lab);
    const char *ip = write_bytes("ok_im.idx", im, ni), *lp = write_bytes("ok_lb.idx", lb, nl);
    clipnn_dataset *d = NULL;
    const char *missing = tmp("no_such.idx");
    CHECK_REFUSED(clipnn_dataset_load_idx(missing, lp, &d), CLIPNN_ERR_IO, missing, NULL);
    /* labels given as images and the other way round: wrong magic */
    CHECK_REFUSED(clipnn_dataset_load_idx(lp, lp, &d), CLIPNN_ERR_FORMAT, lp, "magic");
    CHECK_REFUSED(clipnn_dataset_load_idx(ip, ip, &d), CLIPNN_ERR_FORMAT, ip, "magic");
    /* the last pixel missing */
    const char *p = write_bytes("short_im.idx", im, ni - 1);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_TRUNCATED, p, NULL);
    /* cut inside the header */
    p = write_bytes("hdr_im.idx", im, 10);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_TRUNCATED, p, "header");
    /* one byte too many */
    memcpy(bad, im, ni);
    bad[ni] = 9;
    p = write_bytes("long_im.idx", bad, ni + 1);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_FORMAT, p, NULL);
    /* a header claiming 2^32 - 1 images of 28 x 28 in a tiny file: refused
     * from the bytes present, nothing that size allocated */
    memcpy(bad, im, ni);
    be32(bad + 4, 0xffffffffu), be32(bad + 8, 28), be32(bad + 12, 28);
    p = write_bytes("huge_im.idx", bad, ni);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_TRUNCATED, p, NULL);
    /* zero rows */
    memcpy(bad, im, ni);
    be32(bad + 8, 0);
    p = write_bytes("zero_im.idx", bad, 16);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_FORMAT, p, NULL);
    /* 4 labels for 5 images */
    unsigned char lb4[64];
    size_t nl4 = idx_labels(lb4, 4, lab);
    p = write_bytes("four_lb.idx", lb4, nl4);
    CHECK_REFUSED(clipnn_dataset_load_idx(ip, p, &d), CLIPNN_ERR_SHAPE, p, NULL);
    /* gzip stream cut short */
    const char *gzp = write_gz("cut_im.idx.gz", im, ni);
    FILE *f = fopen(gzp, "rb");
    unsigned char gz[512];
    size_t glen = f ? fread(gz, 1, sizeof gz, f) : 0;
    if (f) fclose(f);
    p = write_bytes("cut_im.idx.gz", gz, glen - 12);
    CHECK_REFUSED(clipnn_dataset_load_idx(p, lp, &d), CLIPNN_ERR_TRUNCATED, p, NULL);
    /* test images of another size than the training ones */
    unsigned char tim[256];
    size_t tni = idx_images(tim, 5, 3, 2);
    const char *tip = write_bytes("other_im.idx", tim, tni);
    char spec[8400];
    snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", ip, lp, tip, lp);
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_REFUSED(clipnn_dataset_load(spec, NULL, &tr, &te), CLIPNN_ERR_SHAPE, tip, NULL);
    CHECK(tr == NULL && te == NULL && d == NULL);
    snprintf(spec, sizeof spec, "idx:%s,%s,%s", ip, lp, tip);
    CHECK(clipnn_dataset_load(spec, NULL, &tr, &te) == CLIPNN_ERR_INVALID_ARG);
}

/* ------------------------------------------------------------ synthetic */

TEST(data_synthetic_sets_are_determined_by_the_seed) {
    const char *names[2] = {"spirals", "teacher"};
    for (int k = 0; k < 2; k++) {
        clipnn_data_options o = clipnn_data_options_default();
        o.synthetic_n = 500;
        clipnn_dataset *a = NULL, *at = NULL, *b = NULL, *bt = NULL, *c = NULL, *ct = NULL;
        CHECK_OK(clipnn_dataset_load(names[k], &o, &a, &at));
        CHECK_OK(clipnn_dataset_load(names[k], &o, &b, &bt));
        o.seed = 7;
        CHECK_OK(clipnn_dataset_load(names[k], &o, &c, &ct));
        if (!a || !b || !c || !at) continue;
        size_t n = clipnn_dataset_n(a), dim = clipnn_dataset_dim(a);
        CHECK(n + clipnn_dataset_n(at) == 500 && clipnn_dataset_n(at) == 100);
        CHECK(memcmp(clipnn_dataset_x(a), clipnn_dataset_x(b), n * dim * sizeof(float)) == 0);
        CHECK(memcmp(clipnn_dataset_y(a), clipnn_dataset_y(b), n * sizeof(float)) == 0);
        CHECK(memcmp(clipnn_dataset_x(a), clipnn_dataset_x(c), n * dim * sizeof(float)) != 0);
        const float *x = clipnn_dataset_x(a), *y = clipnn_dataset_y(a);
        if (k == 0) {
            CHECK(dim == 2 && clipnn_dataset_n_classes(a) == 2);
            size_t ones = 0;
            for (size_t i = 0; i < n; i++) {
                ones += y[i] == 1;
                /* radius t < 1 plus noise 0.02: more than 1.2 is a 10-sigma event */
                CHECK(hypot(x[2 * i], x[2 * i + 1]) < 1.2);
            }
            CHECK(ones > n / 2 - 40 && ones < n / 2 + 40);
        } else {
            CHECK(dim == 10 && clipnn_dataset_n_classes(a) == 0 && clipnn_dataset_n_targets(a) == 1);
            double s = 0, s2 = 0;
            for (size_t i = 0; i < n; i++) s += y[i], s2 += (double)y[i] * y[i];
            double sd = sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n));
            CHECK_MSG(sd > 0.1 && sd < 3, "teacher targets std %g", sd);
        }
        clipnn_dataset_free(a), clipnn_dataset_free(at), clipnn_dataset_free(b);
        clipnn_dataset_free(bt), clipnn_dataset_free(c), clipnn_dataset_free(ct);
    }
}

TEST(data_options_and_arrays_are_validated) {
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK(clipnn_dataset_load("nonsense", NULL, &tr, &te) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "nonsense") != NULL);
    clipnn_data_options o = clipnn_data_options_default();
    o.test_fraction = 1;
    CHECK(clipnn_dataset_load("digits", &o, &tr, &te) == CLIPNN_ERR_INVALID_ARG);
    o.test_fraction = NAN;
    CHECK(clipnn_dataset_load("digits", &o, &tr, &te) == CLIPNN_ERR_INVALID_ARG);
    CHECK(tr == NULL && te == NULL);

    float x[6] = {1, 2, 3, 4, 5, 6}, y[3] = {0, 2, 1};
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, 3, 2, 3, 1, &d));
    if (d) {
        x[0] = 99; /* copied, not borrowed */
        CHECK(clipnn_dataset_x(d)[0] == 1 && clipnn_dataset_y(d)[1] == 2 && clipnn_dataset_n_classes(d) == 3);
        clipnn_dataset_free(d);
    }
    y[1] = 3;
    CHECK(clipnn_dataset_from_arrays(x, y, 3, 2, 3, 1, &d) == CLIPNN_ERR_INVALID_ARG);
    y[1] = 0.5f;
    CHECK(clipnn_dataset_from_arrays(x, y, 3, 2, 3, 1, &d) == CLIPNN_ERR_INVALID_ARG);
    CHECK_OK(clipnn_dataset_from_arrays(x, y, 3, 2, 0, 1, &d)); /* as a regression it is fine */
    clipnn_dataset_free(d);
    x[3] = NAN;
    CHECK(clipnn_dataset_from_arrays(x, y, 3, 2, 0, 1, &d) == CLIPNN_ERR_NONFINITE);
    CHECK(d == NULL);
}

/* ----------------------------------------------------------------- npy */

TEST(npy_round_trip_is_bit_identical) {
    float v[12];
    uint32_t bits[12] = {0x00000000u, 0x80000000u, 0x00000001u, 0x7f7fffffu, 0xff800000u, 0x7fc01234u,
                         0x3f800000u, 0xbf000000u, 0x00800000u, 0x7f800000u, 0x40490fdbu, 0xc2f6e979u};
    memcpy(v, bits, sizeof v);
    const char *p2 = tmp("a2.npy"), *p1 = tmp("a1.npy");
    CHECK_OK(clipnn_npy_write(p2, v, 3, 4));
    CHECK_OK(clipnn_npy_write(p1, v, 12, 0));
    float *r = NULL;
    size_t rows = 0, cols = 0;
    CHECK_OK(clipnn_npy_read(p2, &r, &rows, &cols));
    CHECK(rows == 3 && cols == 4 && r && memcmp(r, v, sizeof v) == 0);
    free(r);
    r = NULL;
    CHECK_OK(clipnn_npy_read(p1, &r, &rows, &cols));
    CHECK(rows == 12 && cols == 0 && r && memcmp(r, v, sizeof v) == 0);
    free(r);
    /* The layout numpy.load expects: magic, version 1.0, a header padded so
     * the data start at a multiple of 64, ending in a newline. */
    FILE *f = fopen(p2, "rb");
    unsigned char head[512];
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    CHECK(n >= 10 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hl = (size_t)head[8] | (size_t)head[9] << 8;
    CHECK(n == 10 + hl + sizeof v && (10 + hl) % 64 == 0 && head[10 + hl - 1] == '\n');
    CHECK(contains(head, n, "'shape': (3, 4)"));
    CHECK(contains(head, n, "'descr': '<f4'"));
    /* an empty array */
    CHECK_OK(clipnn_npy_write(p1, NULL, 0, 5));
    r = NULL;
    CHECK_OK(clipnn_npy_read(p1, &r, &rows, &cols));
    CHECK(rows == 0);
    free(r);
}

/* A v1.0 file with the given dict and data bytes. */
static const char *npy_file_with(const char *name, const char *dict, const void *data, size_t data_bytes) {
    unsigned char buf[4096];
    size_t dl = strlen(dict), total = 10 + dl + 1, padded = (total + 63) / 64 * 64;
    if (padded + data_bytes > sizeof buf) return tmp(name);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((padded - 10) & 0xff), buf[9] = (unsigned char)((padded - 10) >> 8);
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, ' ', padded - 11 - dl);
    buf[padded - 1] = '\n';
    memcpy(buf + padded, data, data_bytes);
    return write_bytes(name, buf, padded + data_bytes);
}

/* A v1.0 file with the given dict and n data bytes of value 0. */
static const char *npy_file(const char *name, const char *dict, size_t data_bytes) {
    unsigned char buf[512];
    size_t dl = strlen(dict), total = 10 + dl + 1, padded = (total + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((padded - 10) & 0xff), buf[9] = (unsigned char)((padded - 10) >> 8);
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, ' ', padded - 11 - dl);
    buf[padded - 1] = '\n';
    memset(buf + padded, 0, data_bytes);
    return write_bytes(name, buf, padded + data_bytes);
}

TEST(npy_bad_files_are_refused_naming_the_file) {
    float *r = NULL;
    size_t rows, cols;
    const char *p = tmp("none.npy");
    CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), CLIPNN_ERR_IO, p, NULL);
    p = write_text("text.npy", "hello, this is not an array\n");
    CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), CLIPNN_ERR_FORMAT, p, NULL);
    p = write_bytes("empty.npy", "", 0);
    CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), CLIPNN_ERR_FORMAT, p, NULL);
    /* files with a well-formed prefix: the header dict and the data length vary */
    static const struct {
        const char *name, *dict;
        size_t data_bytes;
        clipnn_status status;
        const char *want;
    } cases[] = {
        {"c8.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2), }", 32, CLIPNN_ERR_UNSUPPORTED, "<c8"},
        {"obj.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, CLIPNN_ERR_UNSUPPORTED, "|O"},
        {"wide.npy", "{'descr': '|i8', 'fortran_order': False, 'shape': (2,), }", 16, CLIPNN_ERR_UNSUPPORTED, "|i8"},
        {"be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, CLIPNN_ERR_UNSUPPORTED, ">f4"},
        {"fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, CLIPNN_ERR_UNSUPPORTED,
         "Fortran"},
        {"3d.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", 32, CLIPNN_ERR_UNSUPPORTED, NULL},
        {"short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, CLIPNN_ERR_TRUNCATED, NULL},
        {"short8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 40, CLIPNN_ERR_TRUNCATED, NULL},
        {"long.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, CLIPNN_ERR_FORMAT, NULL},
        {"huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000), }", 8,
         CLIPNN_ERR_TRUNCATED, NULL},
        {"garbled.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, CLIPNN_ERR_FORMAT, "header"},
        {"noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", 8, CLIPNN_ERR_FORMAT, "shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = npy_file(cases[i].name, cases[i].dict, cases[i].data_bytes);
        CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), cases[i].status, p, cases[i].want);
    }
    /* header length beyond the end of the file */
    p = write_bytes("cuthdr.npy", "\x93NUMPY\x01\x00\x76\x00{'descr'", 18);
    CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), CLIPNN_ERR_TRUNCATED, p, NULL);
    p = write_bytes("cutmagic.npy", "\x93NUM", 4);
    CHECK_REFUSED(clipnn_npy_read(p, &r, &rows, &cols), CLIPNN_ERR_TRUNCATED, p, NULL);
    CHECK(r == NULL);
    /* writing into a directory that does not exist */
    float v[2] = {1, 2};
    p = tmp("no_dir/out.npy");
    CHECK_REFUSED(clipnn_npy_write(p, v, 2, 0), CLIPNN_ERR_IO, p, NULL);
}

/* ------------------------------------------------------------ the tool */

TEST(data_bad_files_through_the_tool_exit_3_naming_the_file) {
    static const struct {
        const char *name, *text, *want;
    } cases[] = {{"tool_nan.csv", "1,2,0\n3,nan,1\n", "line 2, column 2"},
                 {"tool_word.csv", "1,2,0\n3,x,1\n", "line 2, column 2"},
                 {"tool_ragged.csv", "1,2,0\n3,1\n", "line 2"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = write_text(cases[i].name, cases[i].text);
        char args[4200];
        snprintf(args, sizeof args, "train --quiet --data csv:%s", p);
        const char *out = NULL;
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 3, "%s: exit %d: %s", cases[i].name, rc, out ? out : "");
        CHECK_MSG(out && strstr(out, p) && strstr(out, cases[i].want), "%s: %s", cases[i].name, out ? out : "");
    }
    unsigned char im[256];
    size_t ni = idx_images(im, 5, 2, 3);
    const char *ip = write_bytes("tool_im.idx", im, ni - 3);
    char args[4200];
    snprintf(args, sizeof args, "train --quiet --data idx:%s,%s", ip, ip);
    const char *out = NULL;
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 3 && out && strstr(out, ip) && strstr(out, "truncated"), "exit %d: %s", rc, out ? out : "");
}

/* ------------------------------------------------------- damaged files */

/* Mutated copies of valid files (bytes changed, cut at random lengths): each
 * read must come back with a status, never crash or read out of bounds (the
 * sanitizer build checks the latter), and a success must be self-consistent. */
TEST(data_randomly_damaged_files_never_crash) {
    unsigned char good[3][1024], buf[1024];
    size_t glen[3];
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i * 0.25f - 2;
    const char *np = tmp("fuzz_src.npy");
    CHECK_OK(clipnn_npy_write(np, v, 4, 6));
    FILE *f = fopen(np, "rb");
    glen[0] = f ? fread(good[0], 1, sizeof good[0], f) : 0;
    if (f) fclose(f);
    glen[1] = idx_images(good[1], 4, 3, 5);
    const char *csv = "a,b,c\n1,2,0\n3.5,-4,1\n5e-3,6,0\n7,8,1\n";
    glen[2] = strlen(csv);
    memcpy(good[2], csv, glen[2]);
    unsigned char lb[64];
    const unsigned char lab[4] = {1, 0, 2, 1};
    const char *lp = write_bytes("fuzz_lb.idx", lb, idx_labels(lb, 4, lab));
    uint64_t state = 12345;
    size_t ok_count = 0, refused = 0;
    for (int round = 0; round < 600; round++) {
        int kind = round % 3;
        size_t n = glen[kind];
        memcpy(buf, good[kind], n);
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int flips = (int)(state >> 60) % 4;
        for (int k = 0; k < flips; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            buf[(state >> 33) % n] = (unsigned char)(state >> 17);
        }
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        if ((state >> 62) == 0) n = (size_t)((state >> 20) % (n + 1)); /* cut a quarter of the time */
        int gz = round % 2;
        const char *p = gz ? write_gz("fuzz.bin", buf, n) : write_bytes("fuzz.bin", buf, n);
        clipnn_status st;
        if (kind == 0) {
            float *r = NULL;
            size_t rows = 99, cols = 99;
            st = clipnn_npy_read(p, &r, &rows, &cols);
            if (st == CLIPNN_OK) CHECK(rows * (cols ? cols : 1) <= 24 + 64); /* bounded by the bytes present */
            free(r);
        } else {
            clipnn_dataset *d = NULL;
            st = kind == 1 ? clipnn_dataset_load_idx(p, lp, &d) : clipnn_dataset_load_csv(p, -1, -1, &d);
            if (st == CLIPNN_OK) {
                CHECK(d && clipnn_dataset_n(d) >= 1 && clipnn_dataset_n(d) <= 16);
                const float *x = clipnn_dataset_x(d);
                for (size_t i = 0; d && i < clipnn_dataset_n(d) * clipnn_dataset_dim(d); i++) CHECK(isfinite(x[i]));
            } else {
                CHECK(d == NULL);
            }
            clipnn_dataset_free(d);
        }
        CHECK_MSG(st == CLIPNN_OK || strstr(clipnn_last_error(), p), "status %d without the file name: %s", st,
                  clipnn_last_error());
        if (st == CLIPNN_OK)
            ok_count++;
        else
            refused++;
    }
    /* the mix exercised both outcomes */
    CHECK(ok_count > 20 && refused > 100);
}

/* The real Fashion-MNIST test part when Debian's dataset-fashion-mnist is
 * installed (10000 images, 1000 of each of the 10 classes); nothing to check
 * otherwise. Only the test files: the training ones take seconds under the
 * sanitizers. */
TEST(data_fashion_mnist_test_part_when_installed) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char im[256], lb[256];
    snprintf(im, sizeof im, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lb, sizeof lb, "%s/t10k-labels-idx1-ubyte.gz", dir);
    FILE *f = fopen(im, "rb");
    if (!f) return;
    fclose(f);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load_idx(im, lb, &d));
    if (!d) return;
    size_t h, w, c;
    clipnn_dataset_image_shape(d, &h, &w, &c);
    CHECK(clipnn_dataset_n(d) == 10000 && clipnn_dataset_dim(d) == 784 && h == 28 && w == 28 && c == 1);
    CHECK(clipnn_dataset_n_classes(d) == 10);
    int count[10] = {0};
    for (size_t i = 0; i < 10000; i++) {
        float y = clipnn_dataset_y(d)[i];
        if (y >= 0 && y < 10) count[(int)y]++;
    }
    for (int k = 0; k < 10; k++) CHECK_MSG(count[k] == 1000, "class %d: %d images", k, count[k]);
    float hi = 0;
    for (size_t i = 0; i < 10000 * 784; i++) hi = clipnn_dataset_x(d)[i] > hi ? clipnn_dataset_x(d)[i] : hi;
    CHECK(hi == 255);
    clipnn_dataset_free(d);
}

/* Little-endian integers and doubles as numpy writes them, each read back
 * as the float of the same value; shapes of up to three dimensions. */
TEST(npy_reads_integer_and_double_arrays_of_up_to_three_dimensions) {
    const int64_t i8[3] = {0, 7, -3};
    const uint8_t u1[4] = {0, 1, 200, 255};
    const double f8[12] = {0.5, -1.25, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1e300};
    const int16_t i2[2] = {-32768, 32767};
    float *v = NULL;
    size_t shape[CLIPNN_NPY_MAX_DIMS], ndim = 9;
    const char *p = npy_file_with("i8.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, 24);
    CHECK_OK(clipnn_npy_read_nd(p, &v, shape, &ndim));
    CHECK(ndim == 1 && shape[0] == 3 && shape[1] == 0 && v && v[0] == 0 && v[1] == 7 && v[2] == -3);
    free(v);
    p = npy_file_with("u1.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", u1, 4);
    CHECK_OK(clipnn_npy_read_nd(p, &v, shape, &ndim));
    CHECK(ndim == 2 && shape[0] == 2 && shape[1] == 2 && v && v[2] == 200 && v[3] == 255);
    free(v);
    p = npy_file_with("f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, 2), }", f8, 96);
    CHECK_OK(clipnn_npy_read_nd(p, &v, shape, &ndim));
    CHECK(ndim == 3 && shape[0] == 2 && shape[1] == 3 && shape[2] == 2);
    CHECK(v && v[0] == 0.5f && v[1] == -1.25f && v[10] == 11.0f && isinf(v[11]));
    free(v);
    p = npy_file_with("i2.npy", "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", i2, 4);
    CHECK_OK(clipnn_npy_read_nd(p, &v, shape, &ndim));
    CHECK(v && v[0] == -32768.0f && v[1] == 32767.0f);
    free(v);
    /* 2-D only through the two-dimensional reader */
    size_t rows, cols;
    p = npy_file_with("f8b.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, 2), }", f8, 96);
    CHECK_REFUSED(clipnn_npy_read(p, &v, &rows, &cols), CLIPNN_ERR_UNSUPPORTED, p, "3-dimensional");
    p = npy_file("4d.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 2), }", 8);
    CHECK_REFUSED(clipnn_npy_read_nd(p, &v, shape, &ndim), CLIPNN_ERR_UNSUPPORTED, p, "4-dimensional");
}

/* Four sequences of 3 steps of 2 features; labels per sequence. */
static const float seq_x[4][3][2] = {{{1, 2}, {3, 4}, {5, 6}},
                                     {{7, 8}, {9, 10}, {11, 12}},
                                     {{-1, -2}, {-3, -4}, {-5, -6}},
                                     {{0, 0}, {0, 1}, {1, 0}}};

static const char *seq_x_file(const char *name) {
    return npy_file_with(name, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3, 2), }", seq_x, sizeof seq_x);
}

TEST(data_npy_sequences_keep_their_steps_and_labels) {
    const int64_t labels[4] = {2, 0, 1, 2};
    char spec[1024];
    snprintf(spec, sizeof spec, "npy:%s,%s", seq_x_file("sx.npy"),
             npy_file_with("sy.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", labels, 32));
    clipnn_data_options o = raw_options();
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &o, &d, NULL));
    if (!d) return;
    size_t T, D;
    clipnn_dataset_seq_shape(d, &T, &D);
    CHECK(clipnn_dataset_n(d) == 4 && clipnn_dataset_dim(d) == 6 && T == 3 && D == 2);
    CHECK(clipnn_dataset_n_classes(d) == 3 && clipnn_dataset_n_targets(d) == 1);
    CHECK(clipnn_dataset_target_steps(d) == 0);
    CHECK(memcmp(clipnn_dataset_x(d), seq_x, sizeof seq_x) == 0);
    CHECK(clipnn_dataset_y(d)[0] == 2 && clipnn_dataset_y(d)[3] == 2);
    clipnn_dataset_free(d);
    /* a split keeps the geometry */
    clipnn_dataset *tr = NULL, *te = NULL;
    o.test_fraction = 0.25;
    CHECK_OK(clipnn_dataset_load(spec, &o, &tr, &te));
    if (tr && te) {
        clipnn_dataset_seq_shape(te, &T, &D);
        CHECK(clipnn_dataset_n(tr) == 3 && clipnn_dataset_n(te) == 1 && T == 3 && D == 2);
    }
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
}

TEST(data_npy_targets_per_step_and_row_sequential_images) {
    float y[4][3][1];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 3; t++) y[i][t][0] = seq_x[i][t][0] + seq_x[i][t][1];
    char spec[1024];
    snprintf(spec, sizeof spec, "npy:%s,%s", seq_x_file("px.npy"),
             npy_file_with("py.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3, 1), }", y, sizeof y));
    clipnn_data_options o = raw_options();
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &o, &d, NULL));
    if (d) {
        CHECK(clipnn_dataset_n_classes(d) == 0 && clipnn_dataset_n_targets(d) == 3);
        CHECK(clipnn_dataset_target_steps(d) == 3 && clipnn_dataset_y(d)[5] == 23);
    }
    clipnn_dataset_free(d);
    /* the built-in digits are 8 steps of 8 pixels */
    CHECK_OK(clipnn_dataset_load("digits", &o, &d, NULL));
    size_t T = 0, D = 0;
    if (d) clipnn_dataset_seq_shape(d, &T, &D);
    CHECK(T == 8 && D == 8);
    clipnn_dataset_free(d);
}

TEST(data_npy_bad_sequence_files_are_refused_naming_the_file) {
    clipnn_data_options o = raw_options();
    clipnn_dataset *d = NULL;
    char spec[2048];
    const char *x = seq_x_file("bx.npy");
    const int64_t three[3] = {0, 1, 0}, four[4] = {0, 1, 0, 1};
    const char *y3 = npy_file_with("b3.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", three, 24);
    snprintf(spec, sizeof spec, "npy:%s,%s", x, y3);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_SHAPE, y3, "3 targets");
    /* a non-finite input names the file and the row */
    float bad[4][3][2];
    memcpy(bad, seq_x, sizeof bad);
    bad[2][1][0] = NAN;
    const char *xn = npy_file_with("bn.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3, 2), }", bad,
                                   sizeof bad);
    const char *y4 = npy_file_with("b4.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", four, 32);
    snprintf(spec, sizeof spec, "npy:%s,%s", xn, y4);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_NONFINITE, xn, "row 2");
    /* per-step targets for another number of steps */
    float y2[4][2][1] = {{{0}}};
    const char *ys = npy_file_with("bs.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 1), }", y2,
                                   sizeof y2);
    snprintf(spec, sizeof spec, "npy:%s,%s", x, ys);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_SHAPE, ys, "2 steps");
    /* 1-D inputs, and classes asked of fractional labels */
    snprintf(spec, sizeof spec, "npy:%s,%s", y4, y4);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_SHAPE, y4, "want [n][features]");
    const float frac[4] = {0.5f, 1, 0, 1};
    const char *yf = npy_file_with("bf.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", frac, 16);
    snprintf(spec, sizeof spec, "npy:%s,%s,task=classification", x, yf);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_SHAPE, yf, "integer label");
    /* a missing file, and a ragged (object) array */
    snprintf(spec, sizeof spec, "npy:%s,%s", x, tmp("nonexistent.npy"));
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_IO, tmp("nonexistent.npy"), NULL);
    const char *ragged = npy_file("rag.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", 32);
    snprintf(spec, sizeof spec, "npy:%s,%s", ragged, y4);
    CHECK_REFUSED(clipnn_dataset_load(spec, &o, &d, NULL), CLIPNN_ERR_UNSUPPORTED, ragged, "|O");
    CHECK(d == NULL);
}
