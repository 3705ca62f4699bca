/* Optimizers over the flat parameter block: SGD (eq. 10) with momentum and
 * Nesterov as torch.optim.SGD defines them, Adam as torch.optim.Adam, and
 * decoupled weight decay (AdamW's form) for both. The clipping factor 1/c(t)
 * arrives as grad_scale so that clipping costs no extra pass. */
#include <math.h>
#include <string.h>

#include "internal.h"

clipnn_optim_options clipnn_optim_options_default(void) {
    return (clipnn_optim_options){.kind = CLIPNN_OPT_SGD, .momentum = 0.0, .nesterov = 0,
                                  .weight_decay = 0.0, .beta1 = 0.9, .beta2 = 0.999,
                                  .adam_eps = 1e-8};
}

clipnn_status clipnn_optimizer_create(clipnn_optimizer **out, size_t n_params,
                                      const clipnn_optim_options *opts) {
    if (!out || !opts) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: NULL argument");
    *out = NULL;
    if (opts->kind != CLIPNN_OPT_SGD && opts->kind != CLIPNN_OPT_ADAM)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: unknown kind %d", (int)opts->kind);
    if (!(opts->momentum >= 0 && opts->momentum < 1))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: momentum %g not in [0, 1)", opts->momentum);
    if (opts->nesterov && opts->momentum == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: Nesterov needs a momentum > 0");
    if (!(opts->weight_decay >= 0 && isfinite(opts->weight_decay)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: weight decay %g < 0", opts->weight_decay);
    if (opts->kind == CLIPNN_OPT_ADAM &&
        !(opts->beta1 >= 0 && opts->beta1 < 1 && opts->beta2 >= 0 && opts->beta2 < 1 && opts->adam_eps > 0))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: Adam needs 0 <= beta < 1 and eps > 0");
    clipnn_optimizer *o = clipnn_alloc_array(1, sizeof *o);
    if (!o) return clipnn_fail(CLIPNN_ERR_NOMEM, "optimizer: out of memory");
    o->opts = *opts;
    o->n = n_params;
    int need_m = opts->kind == CLIPNN_OPT_ADAM || opts->momentum > 0;
    if (need_m) o->m = clipnn_alloc_array(n_params, sizeof *o->m);
    if (opts->kind == CLIPNN_OPT_ADAM) o->v = clipnn_alloc_array(n_params, sizeof *o->v);
    if ((need_m && !o->m) || (opts->kind == CLIPNN_OPT_ADAM && !o->v)) {
        clipnn_optimizer_free(o);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "optimizer: out of memory for %zu parameters", n_params);
    }
    *out = o;
    return CLIPNN_OK;
}

void clipnn_optimizer_free(clipnn_optimizer *o) {
    if (!o) return;
    clipnn_free(o->m);
    clipnn_free(o->v);
    clipnn_free(o);
}

uint64_t clipnn_optimizer_steps(const clipnn_optimizer *o) { return o->steps; }

/* p[n] -= lr * (s g[n]) with momentum / Nesterov buffer m[n] (or NULL).
 * The loops are marked simd: at -O2 GCC vectorizes only loops whose trip
 * count it knows, and these are memory-bound streams. */
static void sgd_update(float *restrict p, const float *restrict g, float *restrict m, size_t n, float lr,
                       float s, float mu, int nesterov, int first) {
    if (!m) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) p[i] -= lr * (s * g[i]);
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        /* torch.optim.SGD starts the buffer at the first gradient. */
        float buf = first ? gi : mu * m[i] + gi;
        m[i] = buf;
        p[i] -= lr * (nesterov ? gi + mu * buf : buf);
    }
}

/* Adam as torch.optim.Adam (1.13, single tensor): bias corrections folded
 * into the step size and the denominator, eps added after the sqrt. */
static void adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                        size_t n, float lr, float s, float b1, float b2, float eps, uint64_t t) {
    float bc1 = (float)(1.0 - pow(b1, (double)t));
    float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
    float step = lr / bc1;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + gi * gi * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step * (m[i] / denom);
    }
}

clipnn_status clipnn_optimizer_step(clipnn_optimizer *o, float *params, const float *grads,
                                    double lr, double grad_scale) {
    if (!isfinite(lr) || lr < 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: step size %g", lr);
    const clipnn_optim_options *op = &o->opts;
    size_t n = o->n;
    int first = o->steps == 0;
    o->steps++;
    if (op->weight_decay > 0) {
        /* Decoupled (Loshchilov and Hutter): shrink before the gradient step. */
        float keep = (float)(1.0 - lr * op->weight_decay);
#pragma omp simd
        for (size_t i = 0; i < n; i++) params[i] *= keep;
    }
    /* Chunks split at fixed boundaries: the result does not depend on the
     * number of threads, element-wise updates have no reductions. */
    const size_t chunk = 16384;
    size_t n_chunks = (n + chunk - 1) / chunk;
    int threads = clipnn_threads_for(n);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * chunk, len = n - lo < chunk ? n - lo : chunk;
        float *m = o->m ? o->m + lo : NULL;
        if (op->kind == CLIPNN_OPT_ADAM)
            adam_update(params + lo, grads + lo, m, o->v + lo, len, (float)lr, (float)grad_scale,
                        (float)op->beta1, (float)op->beta2, (float)op->adam_eps, o->steps);
        else
            sgd_update(params + lo, grads + lo, m, len, (float)lr, (float)grad_scale,
                       (float)op->momentum, op->nesterov, first);
    }
    return CLIPNN_OK;
}
