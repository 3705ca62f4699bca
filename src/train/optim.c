/* Optimizers over the flat parameter block: SGD (eq. 10) with momentum and
 * Nesterov as torch.optim.SGD defines them, Adam as torch.optim.Adam, and
 * decoupled weight decay (AdamW's form) for both. The clipping factor 1/c(t)
 * arrives as grad_scale so that clipping costs no extra pass. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "train/train.h"
#include "nn/sumsq_kernel.h"

/* The update loops select with a float comparison (guarded below) and
 * Adam takes a square root: GCC turns them into a vector blend and
 * vsqrtps only when it need not preserve floating-point exception flags
 * and errno, which nothing here reads. Without this the momentum and Adam
 * loops run one element at a time (a momentum step over 235k parameters:
 * 330 us instead of ~40). Values are unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

static const char *const opt_kind_names[CLIPNN_OPT_COUNT] = {
    [CLIPNN_OPT_SGD] = "sgd",
    [CLIPNN_OPT_ADAM] = "adam",
    [CLIPNN_OPT_SPAM] = "spam",
};

CLIPNN_NAME_FUNCTIONS(clipnn_opt_kind, clipnn_opt_kind, opt_kind_names, CLIPNN_OPT_COUNT, "optimizer")

clipnn_optim_options clipnn_optim_options_default(void) {
    return (clipnn_optim_options){.kind = CLIPNN_OPT_SGD, .momentum = 0.0, .nesterov = 0,
                                  .weight_decay = 0.0, .beta1 = 0.9, .beta2 = 0.999,
                                  .adam_eps = 1e-8, .reset_every = 500, .reset_warmup = 150};
}

clipnn_status clipnn_optimizer_create(clipnn_optimizer **out, size_t n_params,
                                      const clipnn_optim_options *opts) {
    if (!out || !opts) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: NULL argument");
    *out = NULL;
    const int adam = opts->kind == CLIPNN_OPT_ADAM || opts->kind == CLIPNN_OPT_SPAM;
    if ((unsigned)opts->kind >= CLIPNN_OPT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: unknown kind %d", (int)opts->kind);
    if (!(opts->momentum >= 0 && opts->momentum < 1))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: momentum %g not in [0, 1)", opts->momentum);
    if (opts->nesterov && opts->momentum == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: Nesterov needs a momentum > 0");
    if (!(opts->weight_decay >= 0 && isfinite(opts->weight_decay)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: weight decay %g < 0", opts->weight_decay);
    if (adam &&
        !(opts->beta1 >= 0 && opts->beta1 < 1 && opts->beta2 >= 0 && opts->beta2 < 1 && opts->adam_eps > 0))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: Adam needs 0 <= beta < 1 and eps > 0");
    clipnn_optimizer *o = clipnn_alloc_array(1, sizeof *o);
    if (!o) return clipnn_fail(CLIPNN_ERR_NOMEM, "optimizer: out of memory");
    o->opts = *opts;
    o->n = n_params;
    int need_m = adam || opts->momentum > 0;
    if (need_m) o->m = clipnn_alloc_aligned_array(n_params, sizeof *o->m);
    if (adam) o->v = clipnn_alloc_aligned_array(n_params, sizeof *o->v);
    if ((need_m && !o->m) || (adam && !o->v)) {
        clipnn_optimizer_free(o);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "optimizer: out of memory for %zu parameters", n_params);
    }
    *out = o;
    return CLIPNN_OK;
}

void clipnn_optimizer_free(clipnn_optimizer *o) {
    if (!o) return;
    clipnn_free_aligned(o->m);
    clipnn_free_aligned(o->v);
    clipnn_free(o);
}

uint64_t clipnn_optimizer_steps(const clipnn_optimizer *o) { return o->steps; }

const float *clipnn_optimizer_second_moment(const clipnn_optimizer *o) { return o ? o->v : NULL; }

/* p[n] -= lr * (s g[n]) with momentum / Nesterov buffer m[n] (or NULL).
 * The loops are marked simd: at -O2 GCC vectorizes only loops whose trip
 * count it knows, and these are memory-bound streams. */
/* A parameter whose update would leave float range (or meet a NaN) keeps
 * its value, and the update reports it: no NaN or Inf is ever written into
 * the parameters, at the cost of one compare and blend per element in
 * loops bound by memory. Returns the number of such parameters. */
static inline float guarded(float old, float updated, int *bad) {
    int ok = fabsf(updated) <= FLT_MAX;
    *bad += !ok;
    return ok ? updated : old;
}

/* The SGD step's settings, for the inlined loops; with rank1 (a constant
 * where it is set) the gradient read is d times the one given. */
typedef struct {
    float lr, s, mu;
    int nesterov, first;
    int rank1;
    float d;
} sgd_args;

SUMSQ_INLINE int sgd_body(float *restrict p, const float *restrict g, float *restrict m, size_t n, float lr, float s,
                          float mu, int nesterov, int first) {
    int bad = 0;
    if (!m) {
#pragma omp simd reduction(+ : bad)
        for (size_t i = 0; i < n; i++) p[i] = guarded(p[i], p[i] - lr * (s * g[i]), &bad);
        return bad;
    }
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        /* torch.optim.SGD starts the buffer at the first gradient. */
        float buf = first ? gi : mu * m[i] + gi;
        m[i] = buf;
        p[i] = guarded(p[i], p[i] - lr * (nesterov ? gi + mu * buf : buf), &bad);
    }
    return bad;
}

CLIPNN_HOT_KERNEL int sgd_update(float *restrict p, const float *restrict g, float *restrict m, size_t n, float lr,
                                 float s, float mu, int nesterov, int first) {
    return sgd_body(p, g, m, n, lr, s, mu, nesterov, first);
}

/* A unit's sums while SGD writes it (clipnn_update_sums), in the blocks of
 * src/nn/sumsq_kernel.h: each step of 64 parameters is summed right after
 * it is written, still in L1, so that the sums are clipnn_sumsq_blocked's
 * and clipnn_sumsq_diff_blocked's of the updated unit, bit for bit,
 * without a second pass over it. */
typedef int clipnn_i32x16 __attribute__((vector_size(64)));

/* A unit's sums so far (whole blocks folded in) and its count of updates
 * out of float range per lane. */
typedef struct {
    clipnn_f64x8 s, d;
    clipnn_i32x16 bad;
} unit_acc;

/* sgd_body on 16 parameters in vector registers, the same float
 * operations lane by lane: a step out of float range keeps the old value
 * and counts in *bad (here a lane count, not a reduction per call, which
 * cost more than the update itself on steps of 64). */
SUMSQ_INLINE void sgd16(float *p, const float *g, float *m, const sgd_args *a, clipnn_i32x16 *bad,
                        clipnn_f32x16 *out) {
    clipnn_f32x16 pv, gv, step;
    memcpy(&pv, p, sizeof pv);
    memcpy(&gv, g, sizeof gv);
    if (a->rank1) gv = a->d * gv; /* the float products the backward would have stored */
    gv = a->s * gv;
    if (m) {
        clipnn_f32x16 mv, buf;
        memcpy(&mv, m, sizeof mv);
        buf = a->first ? gv : a->mu * mv + gv;
        memcpy(m, &buf, sizeof buf);
        step = a->nesterov ? gv + a->mu * buf : buf;
    } else {
        step = gv;
    }
    clipnn_f32x16 upd = pv - a->lr * step;
    clipnn_i32x16 ub, pb;
    memcpy(&ub, &upd, sizeof ub);
    memcpy(&pb, &pv, sizeof pb);
    clipnn_i32x16 ok = (ub & 0x7fffffff) <= 0x7f7fffff; /* |upd| <= FLT_MAX: -1, else 0 (NaN, inf) */
    ub = (ub & ok) | (pb & ~ok);
    *bad += ok + 1;
    memcpy(p, &ub, sizeof ub);
    memcpy(out, &ub, sizeof ub);
}

/* sgd16 with the new values' squares (and squared distances from c) added
 * to accumulator s (d) from the registers, the same arithmetic as
 * sumsq_add16 reading them back. */
SUMSQ_INLINE void sgd16_summed(float *p, const float *g, float *m, const float *c, const sgd_args *a,
                               clipnn_i32x16 *bad, clipnn_f32x16 *s, clipnn_f32x16 *d, const int want_s,
                               const int want_d) {
    clipnn_f32x16 x;
    sgd16(p, g, m, a, bad, &x);
    if (want_s) *s += x * x;
    if (want_d) {
        clipnn_f32x16 y;
        memcpy(&y, c, sizeof y);
        x -= y;
        *d += x * x;
    }
}

/* A unit's last, partial step of k < 64 parameters at p (gradient g,
 * momentum m or NULL, theta0 c): updated, then summed back from L1 into
 * the block's accumulators. Inlined: a call would reach a copy built for
 * the baseline CPU (no target clones), through a vzeroupper, at every
 * unit. */
SUMSQ_INLINE int sgd_partial_step(float *p, const float *g, float *m, const float *c, size_t k, const sgd_args *a,
                                   clipnn_i32x16 *badv, clipnn_sumsq_block *bs, clipnn_sumsq_block *bd,
                                   const int want_s, const int want_d) {
    size_t whole = k - k % 16;
    int bad = 0;
    clipnn_f32x16 x;
    float formed[SUMSQ_STEP];
    sgd_args plain = *a;
    if (a->rank1) {
        for (size_t q = 0; q < k; q++) formed[q] = a->d * g[q];
        g = formed, plain.rank1 = 0, a = &plain;
    }
    for (size_t q = 0; q < whole; q += 16) sgd16(p + q, g + q, m ? m + q : NULL, a, badv, &x);
    for (size_t q = whole; q < k; q++) /* the last few, one at a time */
        bad += sgd_body(p + q, g + q, m ? m + q : NULL, 1, a->lr, a->s, a->mu, a->nesterov, a->first);
    if (want_s) sumsq_add_step(bs, p, p, k, 0);
    if (want_d) sumsq_add_step(bd, p, c, k, 1);
    return bad;
}

/* SGD on p[0..n) (gradient g, or d g with rank1; momentum m when has_m,
 * else NULL; c: theta0 at p) from a block boundary of the unit, summed on
 * the way in the blocks of src/nn/sumsq_kernel.h. The whole steps of a
 * block add into eight plain local vectors and the settings are copied
 * into locals: what has its address taken, or may alias the parameters
 * written, goes through memory at every step (the accumulators' stores
 * doubled the stores of a loop that the stores bound). want_s, want_d,
 * has_m and rank1 are constants at every call, so that each combination
 * is its own loop. */
SUMSQ_INLINE int sgd_summed(float *p, const float *g, float *m, const float *c, size_t n, const sgd_args *a,
                            unit_acc *u, const int want_s, const int want_d, const int has_m, const int rank1) {
    sgd_args args = *a;
    args.rank1 = rank1;
    int bad = 0;
    clipnn_i32x16 badv = {0};
    for (size_t i = 0; i < n;) {
        size_t whole = (n - i) / SUMSQ_STEP;
        if (whole > SUMSQ_STEPS) whole = SUMSQ_STEPS;
        clipnn_f32x16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};
        for (size_t step = 0; step < whole; step++, i += SUMSQ_STEP) {
            float *mi = has_m ? m + i : NULL;
            sgd16_summed(p + i, g + i, mi, c + i, &args, &badv, &s0, &d0, want_s, want_d);
            sgd16_summed(p + i + 16, g + i + 16, has_m ? mi + 16 : NULL, c + i + 16, &args, &badv, &s1, &d1, want_s,
                         want_d);
            sgd16_summed(p + i + 32, g + i + 32, has_m ? mi + 32 : NULL, c + i + 32, &args, &badv, &s2, &d2, want_s,
                         want_d);
            sgd16_summed(p + i + 48, g + i + 48, has_m ? mi + 48 : NULL, c + i + 48, &args, &badv, &s3, &d3, want_s,
                         want_d);
        }
        clipnn_sumsq_block bs = {s0, s1, s2, s3}, bd = {d0, d1, d2, d3};
        if (whole < SUMSQ_STEPS && i < n) { /* the unit ends in this block, with a partial step */
            bad += sgd_partial_step(p + i, g + i, has_m ? m + i : NULL, c + i, n - i, &args, &badv, &bs, &bd,
                                    want_s, want_d);
            i = n;
        }
        if (want_s) sumsq_fold(&u->s, &bs);
        if (want_d) sumsq_fold(&u->d, &bd);
    }
    u->bad += badv;
    return bad;
}

/* sgd_summed with the sums asked for as constants. */
SUMSQ_INLINE int sgd_summed_sums(float *p, const float *g, float *m, const float *c, size_t n, const sgd_args *a,
                                 unit_acc *u, int want_s, int want_d, const int has_m, const int rank1) {
    if (want_s && want_d) return sgd_summed(p, g, m, c, n, a, u, 1, 1, has_m, rank1);
    if (want_s) return sgd_summed(p, g, m, c, n, a, u, 1, 0, has_m, rank1);
    return sgd_summed(p, g, m, c, n, a, u, 0, 1, has_m, rank1);
}

/* sgd_summed with every flag as a constant (a->rank1 chooses the
 * gradient's form). */
SUMSQ_INLINE int sgd_summed_any(float *p, const float *g, float *m, const float *c, size_t n, const sgd_args *a,
                                unit_acc *u, int want_s, int want_d) {
    if (m) return a->rank1 ? sgd_summed_sums(p, g, m, c, n, a, u, want_s, want_d, 1, 1)
                           : sgd_summed_sums(p, g, m, c, n, a, u, want_s, want_d, 1, 0);
    return a->rank1 ? sgd_summed_sums(p, g, NULL, c, n, a, u, want_s, want_d, 0, 1)
                    : sgd_summed_sums(p, g, NULL, c, n, a, u, want_s, want_d, 0, 0);
}

/* Adam as torch.optim.Adam (1.13, single tensor): bias corrections folded
 * into the step size and the denominator, eps added after the sqrt. */
CLIPNN_HOT_KERNEL int adam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                                  size_t n, float lr, float s, float b1, float b2, float eps, uint64_t t) {
    float bc1 = (float)(1.0 - pow(b1, (double)t));
    float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
    float step = lr / bc1;
    int bad = 0;
#pragma omp simd reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float gi = s * g[i];
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + gi * gi * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = guarded(p[i], p[i] - step * (m[i] / denom), &bad);
    }
    return bad;
}

/* One contiguous range [lo, lo + len) of the block, its gradient at g
 * ([len]): decoupled weight decay (shrink before the gradient step), then
 * the rule's update with the gradient scaled by s. */
CLIPNN_HOT_KERNEL int update_span(const clipnn_optimizer *o, float *params, const float *g, size_t lo, size_t len,
                                  double lr, float s, int first) {
    const clipnn_optim_options *op = &o->opts;
    float *p = params + lo;
    if (op->weight_decay > 0) {
        float keep = (float)(1.0 - lr * op->weight_decay);
#pragma omp simd
        for (size_t i = 0; i < len; i++) p[i] *= keep;
    }
    float *m = o->m ? o->m + lo : NULL;
    if (op->kind == CLIPNN_OPT_SPAM)
        return clipnn_spam_update(p, g, m, o->v + lo, len, (float)(lr * o->step_scale), s, (float)op->beta1,
                                  (float)op->beta2, (float)op->adam_eps, o->steps);
    if (op->kind == CLIPNN_OPT_ADAM)
        return adam_update(p, g, m, o->v + lo, len, (float)lr, s, (float)op->beta1, (float)op->beta2,
                           (float)op->adam_eps, o->steps);
    return sgd_update(p, g, m, len, (float)lr, s, (float)op->momentum, op->nesterov, first);
}

static int update_range(const clipnn_optimizer *o, float *params, const float *grads, size_t lo, size_t len,
                        double lr, float s, int first) {
    return update_span(o, params, grads + lo, lo, len, lr, s, first);
}

/* Row off..off+len of W when the batch-of-one backward left dW unwritten
 * (clipnn_fused_opts.lazy_rank1): its gradient d a (a: [len]) is formed in an
 * L1-sized buffer, the same float products the backward would have
 * stored, so the update is bit for bit the one from the stored gradient
 * while dW is never written to memory and read back. */
CLIPNN_HOT_KERNEL int update_rank1(const clipnn_optimizer *o, float *params, size_t off, size_t len, float d,
                                   const float *a, double lr, float s, int first) {
    float buf[1024];
    int bad = 0;
    for (size_t c = 0; c < len; c += 1024) {
        size_t n = len - c < 1024 ? len - c : 1024;
#pragma omp simd
        for (size_t i = 0; i < n; i++) buf[i] = d * a[c + i];
        bad += update_span(o, params, buf, off + c, n, lr, s, first);
    }
    return bad;
}

/* Does the unit's update sum as it writes? Plain SGD (with or without
 * momentum) does; Adam and weight decay update first and sum after. */
static int sums_fused(const clipnn_optimizer *o) {
    return o->opts.kind == CLIPNN_OPT_SGD && !(o->opts.weight_decay > 0);
}

/* SGD of the unit off..off + len with its sums: the gradient g ([len]), or
 * when g is NULL d a (a: [len]), the products update_rank1 forms, here in
 * registers (a buffer written and read back cost more than the sums). */
CLIPNN_HOT_KERNEL int sgd_unit_summed(const clipnn_optimizer *o, float *params, const float *g, float d,
                                      const float *a, size_t off, size_t len, const sgd_args *args,
                                      const clipnn_update_sums *sums, size_t unit) {
    unit_acc u;
    memset(&u, 0, sizeof u);
    const int want_s = sums->theta_acc != NULL, want_d = sums->dist_acc != NULL;
    const float *c = want_d ? sums->theta0 + off : params + off; /* unread without distances */
    float *p = params + off, *m = o->m ? o->m + off : NULL;
    sgd_args with = *args;
    with.rank1 = g == NULL, with.d = d;
    int bad = sgd_summed_any(p, g ? g : a, m, c, len, &with, &u, want_s, want_d);
    for (int l = 0; l < 16; l++) bad += u.bad[l];
    if (want_s) sums->theta_acc[unit] = sumsq_total(&u.s);
    if (want_d) sums->dist_acc[unit] = sumsq_total(&u.d);
    return bad;
}

static clipnn_status overflow_status(long long bad) {
    if (!bad) return CLIPNN_OK;
    return clipnn_fail(CLIPNN_ERR_NONFINITE,
                       "optimizer: the update of %lld parameters left float range; they kept their values", bad);
}

clipnn_status clipnn_optimizer_step(clipnn_optimizer *o, float *params, const float *grads,
                                    double lr, double grad_scale) {
    if (!isfinite(lr) || lr < 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: step size %g", lr);
    size_t n = o->n;
    int first = o->steps == 0;
    clipnn_spam_begin_step(o);
    o->steps++;
    /* Chunks split at fixed boundaries: the result does not depend on the
     * number of threads, element-wise updates have no reductions. */
    const size_t chunk = 16384;
    size_t n_chunks = (n + chunk - 1) / chunk;
    int threads = clipnn_threads_for(n);
    long long bad = 0;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1) reduction(+ : bad)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * chunk, len = n - lo < chunk ? n - lo : chunk;
        bad += update_range(o, params, grads, lo, len, lr, (float)grad_scale, first);
    }
    return overflow_status(bad);
}

/* The sums of unit u (parameters off..off + n) asked for, right after
 * the update wrote them. */
static void unit_sums(const clipnn_update_sums *sums, const float *params, size_t u, size_t off, size_t n) {
    if (sums->theta_acc) sums->theta_acc[u] = clipnn_sumsq_blocked(params + off, n);
    if (sums->dist_acc) sums->dist_acc[u] = clipnn_sumsq_diff_blocked(params + off, sums->theta0 + off, n);
}

void clipnn_update_sums_fill(const clipnn_update_sums *sums, const clipnn_model *m) {
    for (size_t g = 0; g < m->n_groups; g++) {
        const clipnn_group *G = &m->groups[g];
        for (size_t j = 0; j < G->rows; j++)
            unit_sums(sums, m->params, m->group_unit[g] + j, G->offset + j * G->cols, G->cols);
    }
}

/* The update of clipnn_train, unit by unit (a row of W, a bias vector) so
 * that per-unit clipping factors cost nothing and each thread updates the
 * rows it formed in the backward (same clipnn_chunk split), while they are
 * still in its cache. The sums are read from L1 right after writing the
 * unit: the parameter norms the adaptive rules need at the next step and
 * the step record's norms, without a pass over memory. */
clipnn_status clipnn_optimizer_step_units(clipnn_optimizer *o, clipnn_model *m, const clipnn_fused_opts *f,
                                          double lr, double grad_scale, const double *unit_scale,
                                          const clipnn_update_sums *sums) {
    if (!isfinite(lr) || lr < 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer: step size %g", lr);
    if (o->n != m->n_params)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "optimizer: made for %zu parameters, the model has %zu", o->n,
                           m->n_params);
    int first = o->steps == 0;
    clipnn_spam_begin_step(o);
    o->steps++;
    const int lazy = m->n_rec == 0 && clipnn_fused_dw_unformed(f, m->ws.batch);
    /* A memory stream: a second thread pays for the parallel region from
     * about 8k parameters (see clipnn_threads_for_macs). */
    int threads = o->n * 16 >= clipnn_parallel_macs ? clipnn_threads_for(o->n) : 1;
    const int fused_sums = sums_fused(o);
    long long bad = 0;
#pragma omp parallel num_threads(threads) if (threads > 1) reduction(+ : bad)
    {
        int t = clipnn_thread_id(), T = clipnn_thread_count();
        for (size_t g = 0; g < m->n_groups; g++) {
            const clipnn_group *G = &m->groups[g];
            /* a weight's rows split as the backward split them; a bias
             * goes to the thread with the last rows */
            size_t lo = 0, hi = 1;
            if (!G->is_bias) clipnn_chunk(G->rows, t, T, &lo, &hi);
            else if (t != T - 1) continue;
            size_t dense = G->layer - m->n_rec; /* the head's layer of a dense group */
            for (size_t j = lo; j < hi; j++) {
                size_t u = m->group_unit[g] + j, off = G->offset + j * G->cols;
                double s = unit_scale ? grad_scale * unit_scale[u] : grad_scale;
                const float *a = lazy && !G->is_bias ? clipnn_layer_input(m, dense) : NULL;
                if (sums && fused_sums) {
                    sgd_args args = {(float)lr, (float)s, (float)o->opts.momentum, o->opts.nesterov, first, 0, 0.0f};
                    bad += sgd_unit_summed(o, m->params, a ? NULL : m->grads + off, a ? m->delta[dense][j] : 0.0f,
                                           a, off, G->cols, &args, sums, u);
                    continue;
                }
                if (a)
                    bad += update_rank1(o, m->params, off, G->cols, m->delta[dense][j], a, lr, (float)s, first);
                else
                    bad += update_range(o, m->params, m->grads, off, G->cols, lr, (float)s, first);
                if (sums) unit_sums(sums, m->params, u, off, G->cols);
            }
        }
    }
    return overflow_status(bad);
}
