/* DP-SGD: per-example clipping without per-example gradients (Abadi et
 * al. 2016, Opacus), and clipping of materialised per-example gradients
 * (Optax per_example_global_norm_clip). */
#include <math.h>
#include <string.h>

#include "clip/clip.h"

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

/* DP-SGD: the mean of the per-example gradients, each scaled by
 * min(1, C / ||g_b||), formed again from the backward's rows scaled by
 * those factors; then Gaussian noise of std sigma C on the sum, i.e.
 * sigma C / B on the mean. */
clipnn_status clipnn_clip_rule_per_sample(clipnn_clipper *c, clip_step *s) {
    clipnn_model *m = s->m;
    size_t B = m->ws.batch;
    if (B > c->sample_cap) {
        /* Only when the caller did not reserve the batch before creating
         * the clipper; clipnn_train does, so its steps never come here. */
        double *grown = clipnn_realloc_array(c->sample_norm, B, sizeof *grown);
        if (!grown) return clipnn_fail(CLIPNN_ERR_NOMEM, "clip per-sample: out of memory for batch %zu", B);
        c->sample_norm = grown;
        c->sample_cap = B;
    }
    /* a step that skipped the pre-clip norms has the squares already */
    clipnn_status st = CLIPNN_OK;
    if (s->pre_unmeasured) norms_from_sq(B, c->sample_norm);
    else st = clipnn_per_example_grad_norms(m, c->sample_norm);
    if (st) return st;
    double C = c->o.lambda;
    int any = 0;
    for (size_t i = 0; i < B; i++) {
        double f = per_example_factor(c->sample_norm[i], C);
        c->sample_norm[i] = f;
        any |= f < 1;
    }
    double sigma = c->o.noise_multiplier * C / (double)B;
    /* after a one-backward step the gradient is formed here, clipped or not */
    if (s->dw_unformed) clipnn_example_reweight_once(m, c->sample_norm, s->g, c->group_post_acc);
    else if (any) clipnn_example_reweight(m, c->sample_norm, s->g);
    /* The deltas are now the clipped gradient's and g carries the noise:
     * neither is the backward's any more (a second clipping or the
     * per-example norms would read the clipped step). */
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, B, "per-sample clipping");
    if (sigma > 0 && isfinite(sigma))
        for (size_t j = 0; j < c->n_params; j++) s->g[j] += (float)(sigma * clipnn_rng_normal(&c->noise));
    s->clipped = any;
    int changed = any || sigma > 0;
    int noise = sigma > 0 && isfinite(sigma);
    if (s->dw_unformed && !s->pre_unmeasured && !noise)
        clipnn_example_unformed_group_post(m, c->sample_norm, c->group_post_acc);
    else if (!s->dw_unformed || noise) /* else the rows' sums of the reweighting */
        for (size_t i = 0; i < c->n_groups; i++) {
            clipnn_group grp = clipnn_model_group(m, i);
            c->group_post_acc[i] = changed ? clipnn_norm_accumulate(s->g + grp.offset, grp.size, 2.0) : c->group_acc[i];
        }
    clipnn_clip_finish_groups(c, s);
    if (!changed && !s->pre_unmeasured) s->post = s->pre, s->factor = clipnn_clip_summary_factor(s->pre, s->post);
    return CLIPNN_OK;
}
