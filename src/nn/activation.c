/* Element-wise activations and their derivatives, float kernels and double
 * references. The smooth ones (sigmoid, tanh, GELU, softplus) satisfy the
 * paper's assumption A1; ReLU is there because users expect it. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/nn.h"

/* The element-wise loops select with comparisons (ReLU, the two ranges of
 * tanh). GCC will not turn a float comparison into a vector select while
 * it must preserve floating-point exception flags, which nothing here
 * reads: without this, no activation loop vectorizes (checked with
 * -fopt-info-vec). Values are unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

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

/* tanh in float32 that vectorizes (glibc's tanhf is a call per element,
 * about a third of a small layer's step time). Cephes' method: an odd
 * polynomial below |x| = 0.625, else 1 - 2 / (e^{2|x|} + 1) with e^y from
 * y = k ln 2 + r, a degree-6 polynomial in r and 2^k built in the exponent
 * bits; +-1 beyond |x| = 9 where float tanh rounds to 1. Both branches are
 * computed and one selected, so the loop has no branches. Error within
 * 2 ulp of the exact tanh (checked against double tanh in the tests). */
static inline float tanh_fast(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float y = 2.0f * (ax < 9.0f ? ax : 9.0f);
    /* k = round(y / ln 2) by adding 1.5 * 2^23: the integer lands in the
     * low mantissa bits, read back with integer arithmetic (a float to int
     * conversion would stop GCC from vectorizing the loop). */
    float shifted = y * 1.44269504088896341f + 12582912.0f;
    int32_t kbits;
    memcpy(&kbits, &shifted, sizeof kbits);
    int32_t ki = kbits - 0x4b400000;
    float k = shifted - 12582912.0f;
    float r = y - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (ki + 127) << 23;
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    float big = 1.0f - 2.0f / (p * two_k + 1.0f);
    big = x < 0.0f ? -big : big;
    float t = ax < 0.625f ? small : big;
    return x == x ? t : x; /* NaN stays NaN */
}

static float sigmoidf(float x) {
    /* Two branches so that exp never overflows. */
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* y[n] = act(x[n]); may be in place (y == x). */
CLIPNN_HOT_KERNEL void act_forward(clipnn_act act, float *y, const float *x, size_t n) {
    switch (act) {
    case CLIPNN_ACT_IDENTITY:
        if (y != x) memcpy(y, x, n * sizeof *y);
        break;
    case CLIPNN_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoidf(x[i]);
        break;
    case CLIPNN_ACT_TANH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) y[i] = tanh_fast(x[i]);
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
            if (!(z[i] > SOFTPLUS_THRESHOLD)) d[i] *= sigmoidf(z[i]);
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
        double t = tanh(x);
        return 1.0 - t * t;
    }
    case CLIPNN_ACT_GELU: return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    case CLIPNN_ACT_SOFTPLUS: return sigmoid_d(x);
    case CLIPNN_ACT_RELU: return x > 0 ? 1.0 : 0.0;
    default: return 1.0;
    }
}
