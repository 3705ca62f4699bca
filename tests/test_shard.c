/* A training set loaded as one shard of a data-parallel job
 * (clipnn_data_options.shard, .shards): each shard holds exactly its rows
 * of the whole set, scaled with the whole set's statistics, and no more
 * memory than they take; IDX images are read for the shard alone; a shard
 * cannot be trained on by one process. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "clipnn.h"

#define SHARDS 3

static const char *scratch(const char *name) {
    static char pool[16][512];
    static int slot;
    char *out = pool[slot++ % 16];
    snprintf(out, sizeof pool[0], "%s", check_tmp_path(name));
    return out;
}

static const char *write_file(const char *name, const void *p, size_t n, int gz) {
    const char *path = scratch(name);
    if (gz) {
        gzFile g = gzopen(path, "wb");
        if (g) gzwrite(g, p, (unsigned)n), gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        if (f) fwrite(p, 1, n, f), fclose(f);
    }
    return path;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The shard's rows against rows [first, first + n) of the whole set, bit
 * for bit, and the memory its arrays take: at most the rows' bytes plus
 * the allocator's rounding. */
static void check_shard_of(const clipnn_dataset *whole, const clipnn_dataset *part, size_t k) {
    size_t n = clipnn_dataset_n(whole), first, total, dim = clipnn_dataset_dim(whole);
    clipnn_dataset_shard_range(part, &first, &total);
    size_t lo = n * k / SHARDS, hi = n * (k + 1) / SHARDS, rows = clipnn_dataset_n(part);
    CHECK_MSG(total == n && first == lo && rows == hi - lo, "shard %zu: rows %zu..%zu of %zu, want %zu..%zu of %zu", k,
              first, first + rows, total, lo, hi, n);
    if (rows != hi - lo) return;
    CHECK(memcmp(clipnn_dataset_x(part), clipnn_dataset_x(whole) + lo * dim, rows * dim * sizeof(float)) == 0);
    CHECK(memcmp(clipnn_dataset_y(part), clipnn_dataset_y(whole) + lo, rows * sizeof(float)) == 0);
    CHECK(clipnn_dataset_n_classes(part) == clipnn_dataset_n_classes(whole));
    size_t held = malloc_usable_size((void *)clipnn_dataset_x(part));
    CHECK_MSG(held < (rows * dim + 64) * sizeof(float), "shard %zu: x takes %zu bytes for %zu rows of %zu", k, held,
              rows, dim);
}

/* Each shard of a set against the whole load (with these options). */
static void check_shards(const char *spec, clipnn_data_options o) {
    clipnn_dataset *whole = NULL, *part = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &o, &whole, NULL));
    if (!whole) return;
    size_t first, total;
    clipnn_dataset_shard_range(whole, &first, &total);
    CHECK(first == 0 && total == clipnn_dataset_n(whole));
    for (size_t k = 0; k < SHARDS; k++) {
        o.shard = k, o.shards = SHARDS;
        CHECK_OK(clipnn_dataset_load(spec, &o, &part, NULL));
        if (part) check_shard_of(whole, part, k);
        clipnn_dataset_free(part);
        part = NULL;
    }
    clipnn_dataset_free(whole);
}

TEST(shard_csv_rows_and_statistics_of_the_whole_set) {
    /* the digits: split, then standardized with the whole training part's statistics */
    check_shards("digits", clipnn_data_options_default());
    clipnn_data_options o = clipnn_data_options_default();
    o.shard = 3, o.shards = SHARDS;
    clipnn_dataset *d = NULL;
    CHECK(clipnn_dataset_load("digits", &o, &d, NULL) == CLIPNN_ERR_INVALID_ARG && d == NULL);
    CHECK(strstr(clipnn_last_error(), "shard 3 of 3") != NULL);
}

/* 11 images of 3x4, pixel j of image i = 5 i + j; labels i mod 7 but the
 * largest class (9) only in image 0 (shard 0): every shard has 10 classes. */
static void write_idx(int gz, size_t extra, size_t cut, const char **images, const char **labels) {
    enum { N = 11, DIM = 12 };
    unsigned char im[16 + N * DIM + 8], lb[8 + N];
    put_be32(im, 0x803), put_be32(im + 4, N), put_be32(im + 8, 3), put_be32(im + 12, 4);
    for (size_t i = 0; i < N * DIM + 8; i++) im[16 + i] = (unsigned char)(5 * (i / DIM) + i % DIM);
    put_be32(lb, 0x801), put_be32(lb + 4, N);
    for (size_t i = 0; i < N; i++) lb[8 + i] = (unsigned char)(i ? i % 7 : 9);
    *images = write_file(gz ? "shard_im.gz" : "shard_im", im, 16 + N * DIM + extra - cut, gz);
    *labels = write_file("shard_lb", lb, sizeof lb, 0);
}

TEST(shard_idx_read_alone) {
    for (int gz = 0; gz < 2; gz++) {
        const char *im, *lb;
        write_idx(gz, 0, 0, &im, &lb);
        char spec[1200];
        snprintf(spec, sizeof spec, "idx:%s,%s,%s,%s", im, lb, im, lb);
        clipnn_data_options o = clipnn_data_options_default();
        check_shards(spec, o); /* unit (/255): each shard's bytes read alone */
        o.scaling = CLIPNN_SCALE_STANDARDIZE;
        check_shards(spec, o); /* the whole part's statistics: read whole, then cut */
        clipnn_dataset *d = NULL;
        o = clipnn_data_options_default();
        o.shard = 0, o.shards = SHARDS;
        /* a file cut short after shard 0's rows, or longer than its header, is still refused */
        write_idx(gz, 0, 5, &im, &lb);
        CHECK(clipnn_dataset_load(spec, &o, &d, NULL) == CLIPNN_ERR_TRUNCATED && d == NULL);
        CHECK_MSG(strstr(clipnn_last_error(), "truncated: 143 of the 148 bytes") != NULL, "%s", clipnn_last_error());
        write_idx(gz, 3, 0, &im, &lb);
        CHECK(clipnn_dataset_load(spec, &o, &d, NULL) == CLIPNN_ERR_FORMAT && d == NULL);
        CHECK_MSG(strstr(clipnn_last_error(), "longer than its header") != NULL, "%s", clipnn_last_error());
    }
}

TEST(shard_refused_by_one_process) {
    clipnn_data_options o = clipnn_data_options_default();
    o.shard = 1, o.shards = SHARDS;
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load("digits", &o, &tr, &te));
    if (!tr || !te) return;
    CHECK(clipnn_dataset_n(te) == 359); /* the test part stays whole */
    clipnn_model *m = NULL;
    size_t widths[1] = {10};
    clipnn_act acts[1] = {CLIPNN_ACT_IDENTITY};
    CHECK_OK(clipnn_model_create(&m, 64, 1, widths, acts));
    clipnn_train_options to = clipnn_train_options_default();
    to.steps = 2;
    clipnn_train_result r;
    if (m) {
        CHECK(clipnn_train(m, tr, te, &to, &r) == CLIPNN_ERR_INVALID_ARG);
        CHECK_MSG(strstr(clipnn_last_error(), "one process trains on the whole set") != NULL, "%s",
                  clipnn_last_error());
    }
    clipnn_model_free(m);
    clipnn_dataset_free(tr), clipnn_dataset_free(te);
}
