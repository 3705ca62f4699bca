/* The clip places in a build without MPI: names parsed and printed, and
 * local or clip21 refused by clipnn_train with one line (one process clips
 * its whole gradient); their formulas are tested under mpirun
 * (tests/mpi/clip_where.c). */
#include <string.h>

#include "check.h"
#include "clipnn.h"

TEST(clip_where_names_round_trip) {
    for (int w = 0; w < CLIPNN_CLIP_WHERE_COUNT; w++) {
        clipnn_clip_where back = CLIPNN_CLIP_WHERE_COUNT;
        CHECK(clipnn_clip_where_parse(clipnn_clip_where_name((clipnn_clip_where)w), &back) == CLIPNN_OK);
        CHECK(back == (clipnn_clip_where)w);
    }
    clipnn_clip_where out;
    CHECK(clipnn_clip_where_parse("everywhere", &out) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "global, local or clip21") != NULL);
    CHECK(clipnn_clip_where_parse(NULL, &out) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strcmp(clipnn_clip_where_name(CLIPNN_CLIP_WHERE_COUNT), "?") == 0);
    CHECK(clipnn_train_options_default().clip_where == CLIPNN_CLIP_WHERE_GLOBAL);
}

TEST(clip_where_local_needs_a_job) {
    const size_t widths[1] = {2};
    const clipnn_act acts[1] = {CLIPNN_ACT_IDENTITY};
    const float x[2] = {0, 1}, y[4] = {0, 0, 6, 6};
    clipnn_model *m = NULL;
    clipnn_dataset *d = NULL;
    CHECK(clipnn_model_create(&m, 1, 1, widths, acts) == CLIPNN_OK);
    CHECK(clipnn_dataset_from_arrays(x, y, 2, 1, 0, 2, &d) == CLIPNN_OK);
    if (!m || !d) return;
    clipnn_train_options o = clipnn_train_options_default();
    o.clip.rule = CLIPNN_CLIP_NORM, o.loss.loss = CLIPNN_LOSS_MSE, o.batch = 2, o.steps = 3;
    clipnn_train_result r;
    const float before = clipnn_model_params(m)[0];
    for (int w = CLIPNN_CLIP_WHERE_LOCAL; w < CLIPNN_CLIP_WHERE_COUNT; w++) {
        o.clip_where = (clipnn_clip_where)w;
        CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
        CHECK(strstr(clipnn_last_error(), "needs an MPI job") != NULL);
        CHECK(clipnn_model_params(m)[0] == before);
    }
    o.clip_where = CLIPNN_CLIP_WHERE_GLOBAL;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_OK);
    clipnn_dataset_free(d);
    clipnn_model_free(m);
}
