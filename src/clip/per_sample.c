/* DP-SGD: per-example clipping without per-example gradients (Abadi et
 * al. 2016, Opacus), and clipping of materialised per-example gradients
 * (Optax per_example_global_norm_clip). */
#include <math.h>
#include <string.h>

#include "clip/clip.h"
#include "dist/dist.h"

/* Per-example factor of DP-SGD (Abadi et al.; Optax per_example_global_norm_clip):
 * g_i / max(1, ||g_i|| / C), with C = 0 zeroing every example and C = inf
 * leaving all alone. */
static double per_example_factor(double norm, double C) {
    if (!(norm > C)) return 1.0;
    return C / norm;
}

clipnn_status clipnn_clip_per_example(const float *g, size_t n_examples, size_t n, double C, float *sum,
                                      size_t *n_clipped) {
    if (!g || !sum) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip per-example: NULL argument");
    if (!(C >= 0)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip per-example: C = %g, want >= 0", C);
    memset(sum, 0, n * sizeof *sum);
    size_t clipped = 0;
    for (size_t i = 0; i < n_examples; i++) {
        const float *gi = g + i * n;
        double f = per_example_factor(clipnn_norm(gi, n, 2.0), C);
        clipped += f < 1;
        for (size_t j = 0; j < n; j++) sum[j] += (float)(f * (double)gi[j]);
    }
    if (n_clipped) *n_clipped = clipped;
    return CLIPNN_OK;
}

/* The per-example norms from clipnn_example_sqnorms's squares (in place). */
static void norms_from_sq(size_t B, double *sq) {
    for (size_t i = 0; i < B; i++) sq[i] = (double)B * sqrt(sq[i]);
}

/* Per-example gradient norms of the last clipnn_loss_grad without forming
 * the per-example gradients. The backward's gradients are of the mean loss,
 * sum_b g_b / B with g_b the gradient of example b's own loss, hence the B. */
clipnn_status clipnn_per_example_grad_norms(const clipnn_model *m, double *norms) {
    if (!m || !norms) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "per-example norms: NULL argument");
    clipnn_status st = clipnn_workspace_require(m, CLIPNN_WS_ACTIVATIONS | CLIPNN_WS_DELTAS, "per-example norms",
                                                "clipnn_loss_grad (with want_params or dx)");
    if (st) return st;
    clipnn_example_sqnorms(m, norms);
    norms_from_sq(m->ws.batch, norms);
    return CLIPNN_OK;
}

clipnn_status clipnn_clip_per_sample_ready(const clipnn_model *m) {
    /* clipnn_train's one-backward step leaves the gradient to be formed here */
    unsigned grads = m->ws.holds & CLIPNN_WS_DW_PENDING ? CLIPNN_WS_DW_PENDING : CLIPNN_WS_GRADS;
    return clipnn_workspace_require(m, CLIPNN_WS_ACTIVATIONS | CLIPNN_WS_DELTAS | grads, "per-sample clipping",
                                    "clipnn_loss_grad (with want_params)");
}

/* Room for B examples in c->sample_norm. */
static clipnn_status sample_room(clipnn_clipper *c, size_t B) {
    if (B <= c->sample_cap) return CLIPNN_OK;
    /* Only when the caller did not reserve the batch before creating the
     * clipper; clipnn_train does, so its steps never come here. */
    double *grown = clipnn_realloc_array(c->sample_norm, B, sizeof *grown);
    if (!grown) return clipnn_fail(CLIPNN_ERR_NOMEM, "clip per-sample: out of memory for batch %zu", B);
    c->sample_norm = grown;
    c->sample_cap = B;
    return CLIPNN_OK;
}

/* c->sample_norm holds B per-example norms: the factors min(1, C / norm)
 * in their place; returns how many are below 1. */
static size_t factors_from_norms(clipnn_clipper *c, size_t B) {
    size_t clipped = 0;
    for (size_t i = 0; i < B; i++) {
        double f = per_example_factor(c->sample_norm[i], c->o.lambda);
        c->sample_norm[i] = f;
        clipped += f < 1;
    }
    return clipped;
}

/* Per-example factors min(1, C / ||g_b||) of the last backward's batch into
 * c->sample_norm, the block g rebuilt from the backward's rows scaled by
 * them when any is below 1 (the mean of the clipped per-example gradients);
 * returns how many examples were clipped. */
static clipnn_status clip_examples(clipnn_clipper *c, clipnn_model *m, float *g, size_t *n_clipped) {
    size_t B = m->ws.batch;
    clipnn_status st = sample_room(c, B);
    if (!st) st = clipnn_per_example_grad_norms(m, c->sample_norm);
    if (st) return st;
    size_t clipped = factors_from_norms(c, B);
    if (clipped) clipnn_example_reweight(m, c->sample_norm, g);
    /* The deltas are now the clipped gradient's: not the backward's any
     * more (a second clipping or the per-example norms would read the
     * clipped step). */
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, B, "per-sample clipping");
    *n_clipped = clipped;
    return CLIPNN_OK;
}

/* Gaussian noise of std sigma on every entry of the step's gradient (none
 * for sigma 0), then the post-clip norms of the groups: recomputed when the
 * gradient changed, else those before. */
static void add_noise_finish(clipnn_clipper *c, clip_step *s, double sigma, int changed) {
    if (sigma > 0 && isfinite(sigma)) clipnn_normal_scale(clipnn_rng_next(&c->noise), 1, sigma, 1, s->g, c->n_params);
    changed = changed || sigma > 0;
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(s->m, i);
        c->group_post_acc[i] = changed ? clipnn_norm_accumulate(s->g + grp.offset, grp.size, 2.0) : c->group_acc[i];
    }
    clipnn_clip_finish_groups(c, s);
}

/* In an MPI job: each process clips its own rows' examples and forms their
 * share of the clipped mean (the block holds the summed gradient: it is
 * formed again from the rows even when none is clipped); the shares are
 * summed over the processes and the noise, of the global batch, added once
 * to the sum (every process draws the same from the same stream). */
static clipnn_status per_sample_in_job(clipnn_clipper *c, clip_step *s) {
    size_t rows = clipnn_dist_rows(), clipped = 0;
    if (rows) {
        clipnn_status st = clip_examples(c, s->m, s->g, &clipped);
        if (st) return st;
        if (!clipped) clipnn_example_reweight(s->m, c->sample_norm, s->g); /* factors all 1 */
    }
    clipnn_dist_sum_slices(s->g, c->n_params);
    s->clipped = clipnn_dist_agree(clipped > 0);
    add_noise_finish(c, s, c->o.noise_multiplier * c->o.lambda / (double)clipnn_dist_batch(), 1);
    return CLIPNN_OK;
}

/* DP-SGD: the mean of the per-example gradients, each scaled by
 * min(1, C / ||g_b||), formed again from the backward's rows scaled by
 * those factors; then Gaussian noise of std sigma C on the sum, i.e.
 * sigma C / B on the mean. */
/* clipnn_train's one-backward step (s->dw_unformed): the factors from the
 * deltas (the squares already taken when the step skips the pre-clip
 * norms), every dW formed once from the scaled deltas with its rows' sums
 * of squares (the post-clip norms; from the pre-clip Gram matrices where
 * the layer took them, so that a group no factor touched keeps its norm). */
static clipnn_status per_sample_one_pass(clipnn_clipper *c, clip_step *s) {
    clipnn_model *m = s->m;
    size_t B = m->ws.batch;
    clipnn_status st = sample_room(c, B); /* a step that skipped the pre-clip norms has the squares already */
    if (!st && s->pre_unmeasured) norms_from_sq(B, c->sample_norm);
    else if (!st) st = clipnn_per_example_grad_norms(m, c->sample_norm);
    if (st) return st;
    size_t clipped = factors_from_norms(c, B);
    clipnn_example_reweight_once(m, c->sample_norm, s->g, c->group_post_acc);
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, B, "per-sample clipping");
    double sigma = c->o.noise_multiplier * c->o.lambda / (double)B;
    s->clipped = clipped > 0;
    if (sigma > 0 && isfinite(sigma)) {
        add_noise_finish(c, s, sigma, 1);
        return CLIPNN_OK;
    }
    if (!s->pre_unmeasured) clipnn_example_unformed_group_post(m, c->sample_norm, c->group_post_acc);
    clipnn_clip_finish_groups(c, s);
    return CLIPNN_OK;
}

clipnn_status clipnn_clip_rule_per_sample(clipnn_clipper *c, clip_step *s) {
    clipnn_model *m = s->m;
    if (clipnn_dist_active()) return per_sample_in_job(c, s);
    if (s->dw_unformed) return per_sample_one_pass(c, s);
    size_t B = m->ws.batch, clipped;
    clipnn_status st = clip_examples(c, m, s->g, &clipped);
    if (st) return st;
    int any = clipped > 0;
    double sigma = c->o.noise_multiplier * c->o.lambda / (double)B;
    s->clipped = any;
    int changed = any || sigma > 0;
    add_noise_finish(c, s, sigma, any);
    if (!changed) s->post = s->pre, s->factor = clipnn_clip_summary_factor(s->pre, s->post);
    return CLIPNN_OK;
}

/* sums (first: set) += B g: the unclipped or the clipped per-example
 * gradients of a physical batch of B examples, g their mean. */
CLIPNN_HOT_KERNEL void add_scaled(double *sum, const float *g, size_t n, double B, int first) {
    if (first) {
#pragma omp simd
        for (size_t j = 0; j < n; j++) sum[j] = B * (double)g[j];
    } else {
#pragma omp simd
        for (size_t j = 0; j < n; j++) sum[j] += B * (double)g[j];
    }
}

/* One physical batch of a logical step: the unclipped and the clipped
 * per-example gradients of the last backward added to pre_sum and sum
 * (B times the backward's means). */
clipnn_status clipnn_clip_per_sample_accumulate(clipnn_clipper *c, clipnn_model *m, int first, double *pre_sum,
                                                double *sum, size_t *n_clipped) {
    clipnn_status st = clipnn_clip_per_sample_ready(m);
    if (st) return st;
    double B = (double)m->ws.batch;
    add_scaled(pre_sum, m->grads, c->n_params, B, first);
    if ((st = clip_examples(c, m, m->grads, n_clipped))) return st;
    add_scaled(sum, m->grads, c->n_params, B, first);
    return CLIPNN_OK;
}

CLIPNN_HOT_KERNEL double sum_squares(const double *v, size_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t j = 0; j < n; j++) s += v[j] * v[j];
    return s;
}

/* g = (sum + std z) / denom with z standard normal per entry (a stream of
 * its own each step), or sum / denom without noise; sum NULL: the gradient
 * block holds the sum / batch. */
static void noisy_mean(clipnn_clipper *c, float *g, const double *sum, double batch, double std, double denom) {
    size_t n = c->n_params;
    double inv = 1 / denom;
    if (std > 0 && sum) clipnn_normal_mean(clipnn_rng_next(&c->noise), std, inv, sum, g, n);
    else if (std > 0) clipnn_normal_scale(clipnn_rng_next(&c->noise), batch, std, inv, g, n);
    else if (sum) {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = (float)(sum[j] * inv);
    } else {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = (float)(batch * (double)g[j] * inv);
    }
}

/* The step of finish and finish_only: pre_norm the unclipped mean's norm,
 * the clipped sum in sum or (NULL) batch times the gradient block. */
static clipnn_status finish_step(clipnn_clipper *c, clipnn_model *m, double pre_norm, const double *sum,
                                 double batch, double denom, int loss_finite, int clipped, clipnn_clip_record *rec) {
    memset(rec, 0, sizeof *rec);
    rec->pre_norm = pre_norm;
    rec->theta_norm = NAN;
    rec->nonfinite = !isfinite(rec->pre_norm) || !loss_finite;
    c->n_steps++;
    if (rec->nonfinite && c->o.nonfinite != CLIPNN_NONFINITE_PROPAGATE) {
        rec->post_norm = rec->pre_norm;
        rec->factor = NAN;
        if (c->o.nonfinite == CLIPNN_NONFINITE_ERROR) {
            c->n_steps--;
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "clip: the gradient norm is %g; parameters left untouched",
                               rec->pre_norm);
        }
        rec->skipped = 1;
        c->n_skipped++;
    } else {
        noisy_mean(c, m->grads, sum, batch, c->o.noise_multiplier * c->o.lambda, denom);
        rec->post_norm = clipnn_norm(m->grads, c->n_params, 2.0);
        rec->factor = clipnn_clip_summary_factor(rec->pre_norm, rec->post_norm);
        rec->clipped = clipped;
        c->n_clipped += (uint64_t)(clipped != 0);
    }
    rec->n_steps = c->n_steps, rec->n_clipped = c->n_clipped, rec->n_skipped = c->n_skipped;
    return CLIPNN_OK;
}

/* The logical step: g = (sum + N(0, (sigma C)^2 I)) / denom into the
 * model's gradient block, and the record (pre_norm: the unclipped mean's
 * norm, pre_sum / denom). The non-finite policy decides a step whose
 * unclipped gradient or loss was not finite. */
clipnn_status clipnn_clip_per_sample_finish(clipnn_clipper *c, clipnn_model *m, const double *pre_sum,
                                            const double *sum, double denom, int loss_finite, int clipped,
                                            clipnn_clip_record *rec) {
    return finish_step(c, m, sqrt(sum_squares(pre_sum, c->n_params)) / denom, sum, 0, denom, loss_finite, clipped,
                       rec);
}

/* A logical batch of one physical batch: the clipped sum is B times the
 * gradient block, taken from there when the noise is added (the same
 * double arithmetic as through a sum), and the unclipped sum's norm from
 * the block before clipping: no [n_params] sums written or read. */
clipnn_status clipnn_clip_per_sample_only(clipnn_clipper *c, clipnn_model *m, double *pre_norm, size_t *n_clipped) {
    clipnn_status st = clipnn_clip_per_sample_ready(m);
    if (st) return st;
    *pre_norm = (double)m->ws.batch * clipnn_norm(m->grads, c->n_params, 2.0);
    return clip_examples(c, m, m->grads, n_clipped);
}

clipnn_status clipnn_clip_per_sample_finish_only(clipnn_clipper *c, clipnn_model *m, double pre_norm, double batch,
                                                 double denom, int loss_finite, int clipped,
                                                 clipnn_clip_record *rec) {
    return finish_step(c, m, pre_norm / denom, NULL, batch, denom, loss_finite, clipped, rec);
}
