/* Private declarations shared by input optimization (src/inputopt/inputopt.c), the
 * attacks (src/inputopt/attack.c) and the diagnosis (src/diagnose/diagnose.c). */
#ifndef CLIPNN_INPUTOPT_INTERNAL_H
#define CLIPNN_INPUTOPT_INTERNAL_H

#include "nn/nn.h"

/* Checks an objective against a model (kind, loss, layer and unit). */
clipnn_status clipnn_objective_check(const clipnn_model *m, const clipnn_objective *o);
/* Checks a space (box order, finite std); dim = the model's inputs. */
clipnn_status clipnn_space_check(const clipnn_input_space *s);

/* x ([B][dim], data space) into the model's input out ([B][dim]). */
void clipnn_space_to_model(const clipnn_input_space *s, const float *x, size_t B, size_t dim,
                           float *out);
/* The model's input for x ([B][dim], data space): x itself when the space
 * has no mean and std (no copy), else x converted into out. */
const float *clipnn_space_model_input(const clipnn_input_space *s, const float *x, size_t B, size_t dim,
                                      float *out);
/* x into the box [lo, hi], as (float)fmin(fmax(x, lo), hi) (a NaN goes to
 * lo), written out so that the loops around it vectorize (they need
 * no-trapping-math for the blends: see src/inputopt/attack.h). */
static inline float clipnn_box_clamp(float x, double lo, double hi) {
    double v = (double)x;
    return (float)(!(v >= lo) ? lo : v > hi ? hi : v);
}

/* A gradient in the model's input ([B][dim]) into the data space, in place. */
void clipnn_space_grad(const clipnn_input_space *s, float *g, size_t B, size_t dim);

/* d value / d x ([batch][n_inputs]) from d value / d a_top already in the
 * top layer's deltas of the last forward (input gradient only). */
void clipnn_objective_backward(clipnn_model *m, size_t top, size_t batch, float *dx);

/* clipnn_objective_grad at inputs x given in the data space; dx in the
 * data space too. xm: scratch [B][dim]. */
clipnn_status clipnn_objective_grad_space(clipnn_model *m, const clipnn_objective *o,
                                          const clipnn_input_space *s, const float *x,
                                          const float *y, size_t B, double *values, float *dx,
                                          int *reached, float *xm);

/* The backward signal of the double path, layer by layer: the norm of
 * d value / d a_l (the layer's output), of d value / d z_l (after the
 * activation's derivative) and of d value / d a_{l-1} (after the dense
 * layer's transpose). Layers above the objective's layer stay 0. */
typedef struct {
    double out_norm, pre_norm, in_norm;
} clipnn_signal;

/* clipnn_objective_grad_d with the signal per layer (signal: [n_layers] or
 * NULL) and the pre-activations z_l of every layer (pre: concatenated
 * [sum of widths] or NULL). x is the model's input (double). */
clipnn_status clipnn_objective_trace_d(const clipnn_model *m, const clipnn_objective *o,
                                       const double *x, const double *y, double *value,
                                       double *dx, double *logits, clipnn_signal *signal,
                                       double *pre);

#endif
