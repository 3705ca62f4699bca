/* The recurrent model the recurrent tests share: `layers` recurrent layers
 * of one kind, a dense tanh layer of 4 units, a dense output layer of
 * `classes`, over `steps` steps of `in` values, Xavier-initialised with
 * seed 7. */
#ifndef CLIPNN_TEST_REC_FIXTURE_H
#define CLIPNN_TEST_REC_FIXTURE_H

#include "check.h"
#include "clipnn.h"

static inline clipnn_model *rec_fixture_model(clipnn_layer_kind kind, size_t layers, size_t in, size_t hidden,
                                              size_t steps, size_t classes, int every_step) {
    clipnn_layer_spec ls[4];
    size_t n = 0;
    for (size_t l = 0; l < layers && l < 2; l++) ls[n++] = (clipnn_layer_spec){kind, hidden, CLIPNN_ACT_IDENTITY};
    ls[n++] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, 4, CLIPNN_ACT_TANH};
    ls[n++] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, classes, CLIPNN_ACT_IDENTITY};
    clipnn_seq_shape seq = {steps, in, every_step};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, n, ls));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 7));
    return m;
}

#endif
