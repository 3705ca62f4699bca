/* Float32 exp, tanh and sigmoid that vectorize (glibc's expf and tanhf are a
 * call per element, about a third of a small layer's step time). Shared by
 * the activations and the recurrent gates. */
#ifndef CLIPNN_FAST_MATH_H
#define CLIPNN_FAST_MATH_H

/* These functions and the element loops that call them select with
 * comparisons. GCC will not turn a float comparison into a vector select
 * while it must preserve floating-point exception flags, which nothing
 * here reads, so the rest of every file that includes this header builds
 * with no-trapping-math (the functions here and their callers must share
 * the option, or they are not inlined). Values are unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^y for 0 <= y <= 88 (the caller clamps): Cephes' method, y = k ln 2 + r
 * with a degree-6 polynomial in r and 2^k built in the exponent bits. k =
 * round(y / ln 2) by adding 1.5 * 2^23: the integer lands in the low
 * mantissa bits and is read back with integer arithmetic (a float to int
 * conversion would stop GCC from vectorizing the loop). Within 2 ulp. */
static inline float clipnn_expf_fast(float y) {
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
    return p * two_k;
}

/* tanh: an odd polynomial below |x| = 0.625, else 1 - 2 / (e^{2|x|} + 1).
 * Both branches are computed and one selected, so the loop has no
 * branches. Within 2 ulp of the exact tanh.
 *
 * The tails are exactly +-1 as for the correctly rounded tanh: 1 - tanh|x|
 * = 2 / (e^{2|x|} + 1) drops below half the ulp under 1 (2^-25) past
 * |x| = 13 ln 2 = 9.0109, where 1 - q then rounds to 1 and the backward's
 * 1 - y^2 is 0. |x| is clamped (so that e^{2|x|} stays finite) at
 * CLIPNN_TANH_CLAMP, past that point: a clamp below it would leave the tails
 * at 1 - 2^-24 and a saturated unit passing a derivative of 1.2e-7. */
#define CLIPNN_TANH_CLAMP 10.0f
static inline float clipnn_tanhf_fast(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (clipnn_expf_fast(2.0f * (ax < CLIPNN_TANH_CLAMP ? ax : CLIPNN_TANH_CLAMP)) + 1.0f);
    big = x < 0.0f ? -big : big;
    float t = ax < 0.625f ? small : big;
    return x == x ? t : x; /* NaN stays NaN */
}

/* 1 / (1 + e^-x) from E = e^|x|: 1 / (1 + E) below 0 (relative accuracy
 * down to tiny values), 1 - 1 / (1 + E) above. Within 3 ulp for x >= -80,
 * within 2^-23 absolute everywhere (|x| is clamped at 88, where the result
 * is 1 or below 1e-38). */
static inline float clipnn_sigmoidf_fast(float x) {
    float ax = fabsf(x);
    float e = clipnn_expf_fast(ax < 88.0f ? ax : 88.0f);
    float low = 1.0f / (1.0f + e);
    float s = x < 0.0f ? low : 1.0f - low;
    return x == x ? s : x;
}

#endif
