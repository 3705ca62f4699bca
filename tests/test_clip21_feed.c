/* Clip21's error-feedback vectors in a checkpoint (the FEED section): kept
 * byte for byte through a save and a load, checked against the model when
 * read, and refused on a resume by a run that is not a clip21 job. The job
 * itself (gathering, giving each process its own back) is tested under
 * mpirun in tests/mpi. */
#include <stdlib.h>
#include <string.h>

#include "base/bytes_le.h"
#include "check.h"
#include "clipnn.h"
#include "dist/dist.h"
#include "train/train.h" /* to put a FEED payload into a training state */

enum { ROWS = 8, DIM = 2, CLASSES = 2 };

static clipnn_model *tiny_model(void) {
    size_t widths[] = {3, CLASSES};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, DIM, 2, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    return m;
}

static clipnn_dataset *tiny_data(void) {
    float x[ROWS * DIM], y[ROWS];
    for (int i = 0; i < ROWS; i++)
        x[2 * i] = (float)i / ROWS, x[2 * i + 1] = 1 - (float)i / ROWS, y[i] = (float)(i % 2);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, ROWS, DIM, CLASSES, 0, &d));
    return d;
}

/* A payload of N vectors of n floats (process r's entry j is r - j / 8),
 * declaring `declared_n` parameters; NULL when out of memory. */
static unsigned char *feed_payload(uint64_t N, size_t n, uint64_t declared_n, size_t *len) {
    *len = 16 + 4 * (size_t)N * n;
    unsigned char *p = clipnn_alloc(*len);
    if (!p) return NULL;
    le_put_u64(p, N), le_put_u64(p + 8, declared_n);
    for (size_t r = 0; r < N; r++)
        for (size_t j = 0; j < n; j++) le_put_f32(p + 16 + 4 * (r * n + j), (float)r - (float)j / 8);
    return p;
}

/* A state of 3 trained steps of m on d, with payload p[len] as its FEED. */
static clipnn_train_state *state_with_feed(clipnn_model *m, clipnn_dataset *d, unsigned char *p, size_t len) {
    clipnn_train_state *st = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = 3, o.batch = 4, o.state = st;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    if (st) st->feed = p, st->feed_len = len;
    else clipnn_free(p);
    return st;
}

TEST(clip21_feed_survives_save_and_load) {
    const char *path = check_tmp_path("feed.ckpt");
    clipnn_model *m = tiny_model(), *back = NULL;
    clipnn_dataset *d = tiny_data();
    if (!m || !d) return;
    size_t P = clipnn_model_n_params(m), len = 0;
    unsigned char *p = feed_payload(2, P, P, &len);
    clipnn_train_state *st = state_with_feed(m, d, p, len), *got = NULL;
    CHECK_OK(clipnn_checkpoint_save(path, m, st));
    CHECK_OK(clipnn_checkpoint_load(path, &back, &got));
    CHECK(got && got->feed_len == len && p && memcmp(got->feed, p, len) == 0);
    /* the plain build (or a job with another place) does not take the vectors up */
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = 6, o.batch = 4, o.state = got;
    clipnn_train_result res;
    CHECK(back && got && clipnn_train(back, d, NULL, &o, &res) == CLIPNN_ERR_INVALID_ARG);
    CHECK_MSG(strstr(clipnn_last_error(), "continue it with --clip-where clip21") != NULL, "%s", clipnn_last_error());
    clipnn_train_state_free(got), clipnn_model_free(back);
    clipnn_train_state_free(st), clipnn_model_free(m), clipnn_dataset_free(d);
    remove(path);
}

/* A FEED that does not fit the model is refused when the file is read
 * (saved as it is: the writer does not judge the payloads). */
static void expect_feed_refused(uint64_t N, size_t n, uint64_t declared_n, const char *needle) {
    const char *path = check_tmp_path("feed-bad.ckpt");
    clipnn_model *m = tiny_model(), *back = NULL;
    clipnn_dataset *d = tiny_data();
    if (!m || !d) return;
    size_t len = 0;
    unsigned char *p = feed_payload(N, n, declared_n, &len);
    clipnn_train_state *st = state_with_feed(m, d, p, len), *got = NULL;
    CHECK_OK(clipnn_checkpoint_save(path, m, st));
    CHECK(clipnn_checkpoint_load(path, &back, &got) == CLIPNN_ERR_FORMAT && !back && !got);
    CHECK_MSG(strstr(clipnn_last_error(), needle) && strstr(clipnn_last_error(), path), "%s", clipnn_last_error());
    CHECK_OK(clipnn_model_load(path, &back)); /* the model itself still loads */
    clipnn_model_free(back);
    clipnn_train_state_free(st), clipnn_model_free(m), clipnn_dataset_free(d);
    remove(path);
}

TEST(clip21_feed_that_does_not_fit_is_refused) {
    clipnn_model *m = tiny_model();
    if (!m) return;
    size_t P = clipnn_model_n_params(m);
    clipnn_model_free(m);
    expect_feed_refused(2, P + 1, P + 1, "for 18 parameters, the model has 17");
    expect_feed_refused(2, P, P - 1, "the model has 17");
    expect_feed_refused(3, P - 1, P, "does not hold 3 vectors of 17 floats"); /* 3 of 16 floats written */
    expect_feed_refused(0, P, P, "does not hold 0 vectors");
    unsigned char h[16];
    le_put_u64(h, (uint64_t)1 << 62), le_put_u64(h + 8, P); /* N * n overflows: refused before any use */
    CHECK(clipnn_dist_check_feed(h, sizeof h, P, "forged") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_dist_check_feed(h, 15, P, "forged") == CLIPNN_ERR_FORMAT);
}
