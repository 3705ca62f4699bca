/* Element-wise activations and their derivatives, float kernels and double
 * references. The smooth ones (sigmoid, tanh, GELU, softplus) satisfy the
 * paper's assumption A1; ReLU is there because users expect it. */
#include <math.h>
#include <string.h>

#include "nn/fast_math.h" /* builds the rest of this file with no-trapping-math */
#include "nn/nn.h"

static const char *const act_names[CLIPNN_ACT_COUNT] = {"identity", "sigmoid", "tanh",
                                                         "gelu",     "softplus", "relu"};

const char *clipnn_act_name(clipnn_act act) {
    return (unsigned)act < CLIPNN_ACT_COUNT ? act_names[act] : "unknown";
}

clipnn_status clipnn_act_parse(const char *name, clipnn_act *out) {
    if (name && !strcmp(name, "linear")) { /* Keras' name for the identity */
        *out = CLIPNN_ACT_IDENTITY;
        return CLIPNN_OK;
    }
    int i = clipnn_lookup_name(act_names, CLIPNN_ACT_COUNT, name, "activation");
    if (i < 0) return CLIPNN_ERR_INVALID_ARG;
    *out = (clipnn_act)i;
    return CLIPNN_OK;
}

/* torch.nn.Softplus returns x itself above this (beta = 1), which also keeps
 * exp() from overflowing. */
#define SOFTPLUS_THRESHOLD 20.0f

/* y[n] = act(x[n]); may be in place (y == x). */
CLIPNN_HOT_KERNEL void act_forward(clipnn_act act, float *y, const float *x, size_t n) {
    switch (act) {
    case CLIPNN_ACT_IDENTITY:
        if (y != x) memcpy(y, x, n * sizeof *y);
        break;
    case CLIPNN_ACT_SIGMOID:
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = clipnn_sigmoidf_fast(x[i]);
        break;
    case CLIPNN_ACT_TANH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = clipnn_tanhf_fast(x[i]);
        break;
    case CLIPNN_ACT_GELU:
        for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        break;
    case CLIPNN_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > SOFTPLUS_THRESHOLD ? x[i] : log1pf(expf(x[i]));
        break;
    case CLIPNN_ACT_RELU:
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    default: break;
    }
}

/* z[n] += b[n]; y[n] = act(z[n]). Called on one row's slice at a time, so
 * the second loop finds z in L1: one pass over memory. */
CLIPNN_HOT_KERNEL void bias_act_forward(clipnn_act act, float *z, float *y, const float *b, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) z[i] += b[i];
    act_forward(act, y, z, n);
}

/* d[n] *= act'(z[n]), with y[n] = act(z[n]) already computed; the output
 * form is used where it is exact (sigmoid, tanh, relu) as PyTorch does. */
CLIPNN_HOT_KERNEL void act_backward(clipnn_act act, float *d, const float *z, const float *y, size_t n) {
    switch (act) {
    case CLIPNN_ACT_IDENTITY: break;
    case CLIPNN_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) d[i] *= y[i] * (1.0f - y[i]);
        break;
    case CLIPNN_ACT_TANH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) d[i] *= 1.0f - y[i] * y[i];
        break;
    case CLIPNN_ACT_GELU: {
        const float inv_sqrt_2pi = 0.3989422804014327f;
        for (size_t i = 0; i < n; i++) {
            float x = z[i];
            float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
            d[i] *= cdf + x * inv_sqrt_2pi * expf(-0.5f * x * x);
        }
        break;
    }
    case CLIPNN_ACT_SOFTPLUS:
        for (size_t i = 0; i < n; i++)
            if (!(z[i] > SOFTPLUS_THRESHOLD)) d[i] *= clipnn_sigmoidf_fast(z[i]);
        break;
    case CLIPNN_ACT_RELU:
#pragma omp simd
        for (size_t i = 0; i < n; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
        break;
    default: break;
    }
}

/* The library's entries to the kernels above (one version per CPU level). */
void clipnn_act_forward(clipnn_act act, float *y, const float *x, size_t n) { act_forward(act, y, x, n); }

void clipnn_bias_act_forward(clipnn_act act, float *z, float *y, const float *b, size_t n) {
    bias_act_forward(act, z, y, b, n);
}

void clipnn_act_backward(clipnn_act act, float *d, const float *z, const float *y, size_t n) {
    act_backward(act, d, z, y, n);
}

static double sigmoid_d(double x) {
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* Double references: the smooth functions without float32's thresholds. */
double clipnn_act_eval_d(clipnn_act act, double x) {
    switch (act) {
    case CLIPNN_ACT_SIGMOID: return sigmoid_d(x);
    case CLIPNN_ACT_TANH: return tanh(x);
    case CLIPNN_ACT_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    case CLIPNN_ACT_SOFTPLUS: return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case CLIPNN_ACT_RELU: return x > 0 ? x : 0.0;
    default: return x;
    }
}

double clipnn_act_deriv_d(clipnn_act act, double x) {
    switch (act) {
    case CLIPNN_ACT_SIGMOID: {
        double s = sigmoid_d(x);
        return s * (1.0 - s);
    }
    case CLIPNN_ACT_TANH: {
        /* sech^2, accurate in the tails: 1 - tanh^2 cancels there (a
         * relative error of 1 once double tanh rounds to 1 past 19). */
        double c = cosh(x);
        return 1.0 / (c * c);
    }
    case CLIPNN_ACT_GELU: return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case CLIPNN_ACT_SOFTPLUS: return sigmoid_d(x);
    case CLIPNN_ACT_RELU: return x > 0 ? 1.0 : 0.0;
    default: return 1.0;
    }
}
