/* Clipping rules from the 2020s (docs/clipping.md gives each formula and
 * its source): AdaGC's per-tensor thresholds from an EMA of clipped norms,
 * SPAM's spike-aware clipping against Adam's second moment, ACClip's
 * coordinate-wise thresholds applied to a momentum, normalized SGD with
 * momentum (and its clipped variant), and Pascanu's random step for a
 * non-finite or huge norm. Each rule is a function of the table in
 * src/clip/clip.c; the ones that keep a momentum hand the optimizer their
 * step direction in the gradient block (pair them with plain SGD). */
#include <math.h>
#include <string.h>

#include "base/bytes_le.h"
#include "clip/clip.h"

/* The groups' post-clip accumulations read from g after a rule rewrote it,
 * then the whole's post norm and the summary factors. */
static void measure_rewritten(clipnn_clipper *c, clip_step *s) {
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(s->m, i);
        c->group_post_acc[i] = clipnn_norm_accumulate(s->g + grp.offset, grp.size, 2.0);
    }
    clipnn_clip_finish_groups(c, s);
}

/* ---------------------------------------------------------------- AdaGC */

/* The warm-up clips the global norm at adagc_abs (the reference code's
 * h = min(lambda_abs / (||g|| + 1e-8), 1)) and gamma_l starts at the
 * smallest clipped norm of group l seen in it. */
static void adagc_warmup(clipnn_clipper *c, clip_step *s) {
    clipnn_clip_apply_global(c, s, fmin(c->o.adagc_abs / (s->pre + 1e-8), 1.0));
    for (size_t i = 0; i < c->n_groups; i++) {
        double post = sqrt(c->group_post_acc[i]);
        c->gamma[i] = c->rule_steps == 1 || post < c->gamma[i] ? post : c->gamma[i];
    }
}

/* AdaGC (Wang et al. 2025): per group (a tensor), h_l = min(lambda gamma_l
 * / ||g_l||, 1), then gamma_l <- beta gamma_l + (1 - beta) ||h_l g_l||;
 * steps t = 1 .. adagc_warmup - 1 are the warm-up. */
clipnn_status clipnn_clip_rule_adagc(clipnn_clipper *c, clip_step *s) {
    c->rule_steps++;
    if (c->rule_steps < c->o.adagc_warmup) {
        adagc_warmup(c, s);
        return CLIPNN_OK;
    }
    for (size_t i = 0; i < c->n_groups; i++) {
        double norm = sqrt(c->group_acc[i]), limit = c->o.lambda * c->gamma[i];
        c->group_scale[i] = norm > limit ? limit / norm : 1.0;
    }
    clipnn_clip_apply_groups(c, s);
    const double beta = c->o.adagc_beta;
    for (size_t i = 0; i < c->n_groups; i++) c->gamma[i] = beta * c->gamma[i] + (1 - beta) * sqrt(c->group_post_acc[i]);
    return CLIPNN_OK;
}

/* ----------------------------------------------------------------- SPAM */

void clipnn_clipper_set_moment(clipnn_clipper *c, const float *v, uint64_t step, uint64_t reset_every) {
    if (!c) return;
    c->moment_v = v;
    c->moment_step = step;
    c->moment_reset = reset_every;
}

/* SPAM's reference code clips from its step spam_delay (1-based) on, and
 * after a moment reset once spam_delay steps have passed since it. */
static int spam_active(const clipnn_clipper *c) {
    uint64_t current = c->moment_step + 1, delay = c->o.spam_delay;
    if (current < delay) return 0;
    return c->moment_reset == 0 || current % c->moment_reset >= delay;
}

/* SPAM (Huang et al., ICLR 2025): where g_i^2 > theta v_i, g_i <-
 * sign(g_i) sqrt(theta v_i); in float, as the reference computes it. */
clipnn_status clipnn_clip_rule_spam(clipnn_clipper *c, clip_step *s) {
    if (!c->moment_v)
        return clipnn_fail(CLIPNN_ERR_STATE, "clip spam: no second moment to compare with (an adam or spam "
                                             "optimizer's, given by clipnn_clipper_set_moment)");
    const float theta = (float)c->o.lambda, *v = c->moment_v;
    if (!spam_active(c)) {
        clipnn_clip_apply_global(c, s, 1.0);
        return CLIPNN_OK;
    }
    size_t n_clipped = 0;
    for (size_t i = 0; i < c->n_params; i++) {
        float g = s->g[i];
        if (g * g > theta * v[i]) {
            s->g[i] = copysignf(sqrtf(v[i] * theta), g);
            n_clipped++;
        }
    }
    s->clipped = n_clipped > 0;
    measure_rewritten(c, s);
    return CLIPNN_OK;
}

/* --------------------------------------------------------------- ACClip */

/* |x|^alpha and its inverse, exact for the common orders. */
static double pow_alpha(double x, double alpha) { return alpha == 1 ? x : alpha == 2 ? x * x : pow(x, alpha); }
static double root_alpha(double x, double alpha) { return alpha == 1 ? x : alpha == 2 ? sqrt(x) : pow(x, 1 / alpha); }

/* ACClip (Zhang et al. 2020): m <- beta1 m + (1 - beta1) g, tau^alpha <-
 * beta2 tau^alpha + (1 - beta2) |g|^alpha, and the step direction
 * min(tau / (|m| + eps), 1) m replaces g (the optimizer: plain SGD). */
clipnn_status clipnn_clip_rule_acclip(clipnn_clipper *c, clip_step *s) {
    const double a = c->o.acclip_alpha, b1 = c->o.acclip_beta1, b2 = c->o.acclip_beta2, eps = c->o.acclip_eps;
    int clipped = 0;
    for (size_t i = 0; i < c->n_params; i++) {
        double g = s->g[i];
        float m = c->mom[i] = (float)(b1 * c->mom[i] + (1 - b1) * g);
        float ta = c->tau[i] = (float)(b2 * c->tau[i] + (1 - b2) * pow_alpha(fabs(g), a));
        double f = root_alpha(ta, a) / (fabs((double)m) + eps);
        if (f < 1) clipped = 1;
        s->g[i] = (float)(f < 1 ? f * m : m);
    }
    s->clipped = clipped;
    measure_rewritten(c, s);
    return CLIPNN_OK;
}

/* ------------------------------------------------------------- NSGD-M */

/* Normalized SGD with momentum (Cutkosky and Mehta 2020): m <- beta m +
 * (1 - beta) g, and m / ||m|| replaces g (0 while m is 0). The clipped
 * variant feeds min(1, lambda / ||g||) g into m. */
clipnn_status clipnn_clip_rule_nsgdm(clipnn_clipper *c, clip_step *s) {
    double in = 1.0;
    if (c->o.rule == CLIPNN_CLIP_NSGDM_CLIP && s->pre > c->o.lambda) {
        in = c->o.lambda / s->pre;
        s->clipped = 1;
    }
    const double beta = c->o.nsgdm_beta;
    double acc = 0;
    for (size_t i = 0; i < c->n_params; i++) {
        float m = c->mom[i] = (float)(beta * c->mom[i] + (1 - beta) * in * s->g[i]);
        acc += (double)m * m;
    }
    double inv = acc > 0 ? 1 / sqrt(acc) : 0;
    for (size_t i = 0; i < c->n_params; i++) s->g[i] = (float)(c->mom[i] * inv);
    measure_rewritten(c, s);
    return CLIPNN_OK;
}

/* ------------------------------------------------------ Pascanu's step */

void clipnn_clip_random_step(clipnn_clipper *c, clip_step *s) {
    double acc = 0;
    for (size_t i = 0; i < c->n_params; i++) {
        float z = (float)clipnn_rng_normal(&c->noise);
        s->g[i] = z;
        acc += (double)z * z;
    }
    float f = (float)(acc > 0 ? c->o.random_step / sqrt(acc) : 0);
    clipnn_scale(s->g, c->n_params, f);
    s->clipped = 1;
    measure_rewritten(c, s);
}

/* -------------------------------------------------------------- state */

static int keeps_momentum(clipnn_clip_rule r) {
    return r == CLIPNN_CLIP_ACCLIP || r == CLIPNN_CLIP_NSGDM || r == CLIPNN_CLIP_NSGDM_CLIP;
}

int clipnn_clip_rule_is_optimizer(clipnn_clip_rule rule) { return keeps_momentum(rule); }

clipnn_status clipnn_clip_modern_alloc(clipnn_clipper *c) {
    clipnn_clip_rule r = c->o.rule;
    int ok = 1;
    if (r == CLIPNN_CLIP_ADAGC) ok = (c->gamma = clipnn_alloc_array(c->n_groups, sizeof *c->gamma)) != NULL;
    if (keeps_momentum(r)) ok = (c->mom = clipnn_alloc_array(c->n_params, sizeof *c->mom)) != NULL;
    if (ok && r == CLIPNN_CLIP_ACCLIP) ok = (c->tau = clipnn_alloc_array(c->n_params, sizeof *c->tau)) != NULL;
    return ok ? CLIPNN_OK : CLIPNN_ERR_NOMEM;
}

void clipnn_clip_modern_free(clipnn_clipper *c) {
    clipnn_free(c->gamma);
    clipnn_free(c->mom);
    clipnn_free(c->tau);
}

/* After the common part: AdaGC u64 rule_steps, f64 gamma[n_groups];
 * acclip f32 m[n_params], f32 tau^alpha[n_params]; nsgdm(-clip) f32
 * m[n_params]. */
size_t clipnn_clip_modern_state_size(const clipnn_clipper *c) {
    return (c->gamma ? 8 + 8 * c->n_groups : 0) + (c->mom ? 4 * c->n_params : 0) + (c->tau ? 4 * c->n_params : 0);
}

void clipnn_clip_modern_state_save(const clipnn_clipper *c, unsigned char *p) {
    if (c->gamma) {
        le_put_u64(p, c->rule_steps);
        p += 8;
        for (size_t i = 0; i < c->n_groups; i++, p += 8) le_put_f64(p, c->gamma[i]);
    }
    if (c->mom) le_put_f32s(p, c->mom, c->n_params), p += 4 * c->n_params;
    if (c->tau) le_put_f32s(p, c->tau, c->n_params);
}

void clipnn_clip_modern_state_load(clipnn_clipper *c, const unsigned char *p) {
    if (c->gamma) {
        c->rule_steps = le_get_u64(p);
        p += 8;
        for (size_t i = 0; i < c->n_groups; i++, p += 8) c->gamma[i] = le_get_f64(p);
    }
    if (c->mom) le_get_f32s(c->mom, p, c->n_params), p += 4 * c->n_params;
    if (c->tau) le_get_f32s(c->tau, p, c->n_params);
}
