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

/* Per-example gradient norms of the last clipnn_loss_grad without forming
 * the per-example gradients. The backward's gradients are of the mean loss,
 * sum_b g_b / B with g_b the gradient of example b's own loss, hence the B. */
clipnn_status clipnn_per_example_grad_norms(const clipnn_model *m, double *norms) {
    if (!m || !norms) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "per-example norms: NULL argument");
    clipnn_status st = clipnn_workspace_require(m, CLIPNN_WS_ACTIVATIONS | CLIPNN_WS_DELTAS, "per-example norms",
                                                "clipnn_loss_grad (with want_params or dx)");
    if (st) return st;
    size_t B = m->ws.batch;
    clipnn_example_sqnorms(m, norms);
    for (size_t i = 0; i < B; i++) norms[i] = (double)B * sqrt(norms[i]);
    return CLIPNN_OK;
}

clipnn_status clipnn_clip_per_sample_ready(const clipnn_model *m) {
    return clipnn_workspace_require(m, CLIPNN_WS_ACTIVATIONS | CLIPNN_WS_DELTAS | CLIPNN_WS_GRADS,
                                    "per-sample clipping", "clipnn_loss_grad (with want_params)");
}

/* The per-example norms in sample_norm[n] become their factors; any below 1? */
static int example_factors(clipnn_clipper *c, size_t n) {
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        c->sample_norm[i] = per_example_factor(c->sample_norm[i], c->o.lambda);
        any |= c->sample_norm[i] < 1;
    }
    return any;
}

/* Gaussian noise of std sigma on every entry of the step's gradient (none
 * for sigma 0), then the post-clip norms of the groups: recomputed when the
 * gradient changed, else those before. */
static void add_noise_finish(clipnn_clipper *c, clip_step *s, double sigma, int changed) {
    if (sigma > 0 && isfinite(sigma))
        for (size_t j = 0; j < c->n_params; j++) s->g[j] += (float)(sigma * clipnn_rng_normal(&c->noise));
    changed = changed || sigma > 0;
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(s->m, i);
        c->group_post_acc[i] = changed ? clipnn_norm_accumulate(s->g + grp.offset, grp.size, 2.0) : c->group_acc[i];
    }
    clipnn_clip_finish_groups(c, s);
}

/* In an MPI job: each process clips its own rows' examples and forms their
 * share of the clipped mean; the shares are summed over the processes and
 * the noise, of the global batch, added once to the sum (every process
 * draws the same from the same stream). */
static clipnn_status per_sample_in_job(clipnn_clipper *c, clip_step *s) {
    clipnn_model *m = s->m;
    size_t rows = clipnn_dist_rows(), B = clipnn_dist_batch();
    int any = 0;
    if (rows) {
        clipnn_status st = rows <= c->sample_cap ? clipnn_per_example_grad_norms(m, c->sample_norm)
                                                 : clipnn_fail(CLIPNN_ERR_STATE, "clip per-sample: batch not reserved");
        if (st) return st;
        any = example_factors(c, rows);
        clipnn_example_reweight(m, c->sample_norm, s->g);
        clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, rows, "per-sample clipping");
    }
    clipnn_dist_sum_slices(s->g, c->n_params);
    s->clipped = clipnn_dist_agree(any);
    add_noise_finish(c, s, c->o.noise_multiplier * c->o.lambda / (double)B, 1);
    return CLIPNN_OK;
}

/* DP-SGD: the mean of the per-example gradients, each scaled by
 * min(1, C / ||g_b||), formed again from the backward's rows scaled by
 * those factors; then Gaussian noise of std sigma C on the sum, i.e.
 * sigma C / B on the mean. */
clipnn_status clipnn_clip_rule_per_sample(clipnn_clipper *c, clip_step *s) {
    clipnn_model *m = s->m;
    if (clipnn_dist_active()) return per_sample_in_job(c, s);
    size_t B = m->ws.batch;
    if (B > c->sample_cap) {
        /* Only when the caller did not reserve the batch before creating
         * the clipper; clipnn_train does, so its steps never come here. */
        double *grown = clipnn_realloc_array(c->sample_norm, B, sizeof *grown);
        if (!grown) return clipnn_fail(CLIPNN_ERR_NOMEM, "clip per-sample: out of memory for batch %zu", B);
        c->sample_norm = grown;
        c->sample_cap = B;
    }
    clipnn_status st = clipnn_per_example_grad_norms(m, c->sample_norm);
    if (st) return st;
    double C = c->o.lambda;
    int any = example_factors(c, B);
    double sigma = c->o.noise_multiplier * C / (double)B;
    if (any) clipnn_example_reweight(m, c->sample_norm, s->g);
    /* The deltas are now the clipped gradient's and g carries the noise:
     * neither is the backward's any more (a second clipping or the
     * per-example norms would read the clipped step). */
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, B, "per-sample clipping");
    s->clipped = any;
    int changed = any || sigma > 0;
    add_noise_finish(c, s, sigma, any);
    if (!changed) s->post = s->pre, s->factor = clipnn_clip_summary_factor(s->pre, s->post);
    return CLIPNN_OK;
}
