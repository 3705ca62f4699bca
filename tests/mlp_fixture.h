/* Small MLPs with Xavier weights for the training tests. */
#ifndef CLIPNN_MLP_FIXTURE_H
#define CLIPNN_MLP_FIXTURE_H

#include "check.h"
#include "clipnn.h"

static inline clipnn_model *fixture_mlp(size_t in, size_t h1, size_t h2, size_t out, clipnn_act hidden2_act,
                                        uint64_t seed) {
    size_t widths[] = {h1, h2, out};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, hidden2_act, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, in, 3, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, seed));
    return m;
}

/* One tanh hidden layer of h units, identity output, Xavier weights. */
static inline clipnn_model *fixture_mlp1(size_t in, size_t h, size_t out, uint64_t seed) {
    size_t widths[] = {h, out};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, in, 2, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, seed));
    return m;
}

#endif
