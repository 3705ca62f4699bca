/* A three-layer MLP (tanh, then hidden2_act, identity output) with Xavier
 * weights, for the training tests (test_alloc.c, test_fused_step.c). */
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

#endif
