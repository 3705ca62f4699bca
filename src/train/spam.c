/* The SPAM optimizer (Huang et al., ICLR 2025) as its reference code
 * writes it: Adam with eps added to sqrt(v) and the bias corrections folded
 * into the step size, both moments zeroed every reset_every steps, and a
 * cosine warm-up of the step after each reset. Its spike-aware clipping is
 * the clipper's spam rule, which reads this optimizer's v. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "train/train.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

/* The reference's warm-up factor 1 - dr(c) at c steps after the last reset,
 * dr(c) = 0.99 (1 + cos(pi c / (W + 1))) / 2 for c < W (torch's
 * CosineAnnealingLR from 0.99 over W + 1 epochs), 0 after. Its resets of
 * the warm-up fall at the steps r >= 1 with (r + 1) % reset_every == 0,
 * those of the moments also at r = 0. */
double clipnn_spam_warmup_scale(uint64_t k, uint64_t reset_every, uint64_t warmup) {
    if (reset_every == 0) return 1.0;
    uint64_t r = (k + 1) / reset_every * reset_every;
    if (r < 2) return 1.0; /* no reset of the warm-up at or before k */
    uint64_t c = k - (r - 1);
    if (c >= warmup) return 1.0;
    const double pi = 3.14159265358979323846;
    return 1.0 - 0.99 * (1.0 + cos(pi * (double)c / (double)(warmup + 1))) / 2.0;
}

void clipnn_spam_begin_step(clipnn_optimizer *o) {
    const clipnn_optim_options *op = &o->opts;
    o->step_scale = 1.0;
    if (op->kind != CLIPNN_OPT_SPAM || op->reset_every == 0) return;
    uint64_t k = o->steps;
    if ((k + 1) % op->reset_every == 0) {
        memset(o->m, 0, o->n * sizeof *o->m);
        memset(o->v, 0, o->n * sizeof *o->v);
    }
    o->step_scale = clipnn_spam_warmup_scale(k, op->reset_every, op->reset_warmup);
}

CLIPNN_HOT_KERNEL int spam_kernel(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                                  size_t n, float step, float s, float b1, float b2, float c1, float c2, float eps) {
    int bad = 0;
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        m[i] = m[i] * b1 + gi * c1;
        v[i] = v[i] * b2 + gi * gi * c2;
        float upd = p[i] - step * (m[i] / (sqrtf(v[i]) + eps));
        int ok = fabsf(upd) <= FLT_MAX; /* as every update: no NaN or Inf is written */
        bad += !ok;
        p[i] = ok ? upd : p[i];
    }
    return bad;
}

int clipnn_spam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                       float lr, float s, float b1, float b2, float eps, uint64_t t) {
    /* the reference's step size: lr sqrt(1 - b2^t) / (1 - b1^t), in double */
    float step = (float)((double)lr * sqrt(1.0 - pow(b2, (double)t)) / (1.0 - pow(b1, (double)t)));
    return spam_kernel(p, g, m, v, n, step, s, b1, b2, (float)(1.0 - (double)b1), (float)(1.0 - (double)b2), eps);
}
