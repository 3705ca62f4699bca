/* The constructed cases of the diagnosis through time: tanh RNNs whose
 * gradient vanishes (spectral radius 0.3 over 50 steps), explodes (radius
 * 1.5 over 40 steps in the linear regime) or neither (orthogonal W_hh over
 * 8 steps). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diagnose/diagnose.h"

enum { DEMO_HIDDEN = 16, DEMO_SEED = 3 };

/* A tanh RNN of 16 units over `steps` steps of one value and 2 logits,
 * Xavier and PyTorch's initialisation, then W_hh by `how`. */
static clipnn_status demo_rnn(clipnn_model **m, size_t steps, clipnn_recurrent_init how, double radius) {
    clipnn_layer_spec ls[] = {{CLIPNN_LAYER_RNN, DEMO_HIDDEN, CLIPNN_ACT_IDENTITY},
                              {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {steps, 1, 0};
    clipnn_status s = clipnn_model_create_seq(m, &seq, 2, ls);
    if (!s) s = clipnn_model_init(*m, CLIPNN_INIT_XAVIER, DEMO_SEED);
    if (!s) s = clipnn_model_init_recurrent(*m, how, radius, DEMO_SEED);
    return s;
}

/* Zero biases of the recurrent layer (W_ih, W_hh, b_ih, b_hh: groups 2, 3). */
static void zero_rec_biases(clipnn_model *m) {
    for (size_t g = 2; g < 4; g++) {
        clipnn_group G = clipnn_model_group(m, g);
        memset(clipnn_model_params(m) + G.offset, 0, G.size * sizeof(float));
    }
}

clipnn_status clipnn_demo_through_time(int variant, clipnn_model **m, float *x, size_t cap, clipnn_demo_info *info) {
    static const size_t steps[3] = {50, 40, 8};
    static const char *const what[3] = {
        "a tanh RNN of 16 units, W_hh scaled to spectral radius 0.3, over 50 steps of x_t = sin(0.3 t), 2 logits; "
        "target class 0: each step back multiplies the gradient by at most 0.3",
        "a tanh RNN of 16 units, W_hh scaled to spectral radius 1.5, zero biases, over 40 steps of x_t = 0 (h stays "
        "0, tanh' = 1: the linear regime), 2 logits; target class 0",
        "a tanh RNN of 16 units, W_hh orthogonal (spectral radius 1), over 8 steps of x_t = sin(0.3 t), 2 logits; "
        "target class 0"};
    static const clipnn_cause expect[3] = {CLIPNN_CAUSE_VANISHING_THROUGH_TIME, CLIPNN_CAUSE_EXPLODING_THROUGH_TIME,
                                           CLIPNN_CAUSE_COUNT};
    if (variant < 0 || variant > 2 || steps[variant] > cap)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "demo: no recurrent case %d", variant);
    clipnn_recurrent_init how = variant == 2 ? CLIPNN_RECURRENT_INIT_ORTHOGONAL : CLIPNN_RECURRENT_INIT_SCALED;
    clipnn_status s = demo_rnn(m, steps[variant], how, variant == 1 ? 1.5 : 0.3);
    if (s) return s;
    if (variant == 1) zero_rec_biases(*m);
    for (size_t t = 0; t < steps[variant]; t++) x[t] = variant == 1 ? 0.0f : (float)sin(0.3 * (double)(t + 1));
    info->expected = expect[variant];
    info->also = CLIPNN_CAUSE_COUNT;
    snprintf(info->description, sizeof info->description, "%s", what[variant]);
    snprintf(info->run, sizeof info->run, "no optimization: the diagnosis at the input as constructed");
    return CLIPNN_OK;
}
