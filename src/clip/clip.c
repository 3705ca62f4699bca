/* Gradient clipping: every rule of docs/clipping.md behind one clipper.
 *
 * A step has two phases, as torch's get_total_norm / clip_grads_with_norm_:
 * the pre-clip norms (per group, accumulated in double) and then the rule,
 * which either scales the gradient in place or, for a global factor with
 * fusion asked, hands 1/c to the optimizer. Adding a rule is adding one
 * function to `rules` below: it reads the step's norms and sets the factor
 * or scales the gradient, and fills post-clip norm and `clipped`.
 *
 * Post-clip norms are derived from the pre-clip accumulations and the
 * factors (a scaled group's accumulation scales by s^p), so no rule reads
 * the gradient a second time just to report. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "clip/clip.h"

/* ----------------------------------------------------------- names */

static const char *const rule_names[CLIPNN_CLIP_COUNT] = {
    [CLIPNN_CLIP_NONE] = "none",
    [CLIPNN_CLIP_VALUE] = "value",
    [CLIPNN_CLIP_NORM] = "norm",
    [CLIPNN_CLIP_NORM_TORCH] = "norm-torch",
    [CLIPNN_CLIP_NORM_GROUP] = "norm-group",
    [CLIPNN_CLIP_ADAPTIVE] = "adaptive",
    [CLIPNN_CLIP_ADAPTIVE_LAYER] = "adaptive-layer",
    [CLIPNN_CLIP_AGC] = "agc",
    [CLIPNN_CLIP_PROJECT] = "project",
    [CLIPNN_CLIP_PERCENTILE] = "percentile",
    [CLIPNN_CLIP_ZSCORE] = "zscore",
    [CLIPNN_CLIP_PER_SAMPLE] = "per-sample",
    [CLIPNN_CLIP_ADAGC] = "adagc",
    [CLIPNN_CLIP_SPAM] = "spam",
    [CLIPNN_CLIP_ACCLIP] = "acclip",
    [CLIPNN_CLIP_NSGDM] = "nsgdm",
    [CLIPNN_CLIP_NSGDM_CLIP] = "nsgdm-clip",
};

CLIPNN_NAME_FUNCTIONS(clipnn_clip_rule, clipnn_clip_rule, rule_names, CLIPNN_CLIP_COUNT, "clipping rule")

static const char *const nonfinite_names[CLIPNN_NONFINITE_COUNT] = {
    [CLIPNN_NONFINITE_ERROR] = "error",
    [CLIPNN_NONFINITE_SKIP] = "skip",
    [CLIPNN_NONFINITE_PROPAGATE] = "propagate",
    [CLIPNN_NONFINITE_RANDOM] = "random",
};

CLIPNN_NAME_FUNCTIONS(clipnn_nonfinite, clipnn_nonfinite, nonfinite_names, CLIPNN_NONFINITE_COUNT, "non-finite policy")

/* -------------------------------------------------------- defaults */

/* The lambda each rule starts from, the one place it is set; NaN: the rule
 * reads no lambda.
 * - norm family: 1, PyTorch's customary max_norm; on the digits MLP the
 *   pre-clip gradient norm is of order 1, so 1 clips the large steps only.
 * - adaptive (eq. 17/18): the update is at most lr * lambda * ||theta||
 *   (per layer for 18), so lambda is a relative step: 0.01 moves theta by
 *   at most 1% of its norm at lr 1. Measured on the digits MLP at the
 *   compare defaults (relu, 3 seeds): 0.01 trains to ~97% at lr 2 and 4,
 *   while 0.03 loses 6 points at lr 4 and 0.1 loses 10 to 40 points.
 * - agc: NFNets' default 0.01 (Brock et al. 2021, Optax).
 * - per-sample: C = 1 (Opacus examples' max_grad_norm).
 * - adagc: lambda_rel = 1.05, the reference code's default.
 * - spam: theta = 5000, the paper's and its code's default.
 * - nsgdm-clip: tau = 1, as the norm family.
 * acclip and nsgdm adapt their thresholds (or have none).
 * value, project, percentile and zscore have thresholds of their own
 * (value, project_radius, percentile, z_threshold), set in
 * clipnn_clip_options_default. */
static const double rule_lambda[CLIPNN_CLIP_COUNT] = {
    [CLIPNN_CLIP_NONE] = NAN,
    [CLIPNN_CLIP_VALUE] = NAN,
    [CLIPNN_CLIP_NORM] = 1.0,
    [CLIPNN_CLIP_NORM_TORCH] = 1.0,
    [CLIPNN_CLIP_NORM_GROUP] = 1.0,
    [CLIPNN_CLIP_ADAPTIVE] = 0.01,
    [CLIPNN_CLIP_ADAPTIVE_LAYER] = 0.01,
    [CLIPNN_CLIP_AGC] = 0.01,
    [CLIPNN_CLIP_PROJECT] = NAN,
    [CLIPNN_CLIP_PERCENTILE] = NAN,
    [CLIPNN_CLIP_ZSCORE] = NAN,
    [CLIPNN_CLIP_PER_SAMPLE] = 1.0,
    [CLIPNN_CLIP_ADAGC] = 1.05,
    [CLIPNN_CLIP_SPAM] = 5000.0,
    [CLIPNN_CLIP_ACCLIP] = NAN,
    [CLIPNN_CLIP_NSGDM] = NAN,
    [CLIPNN_CLIP_NSGDM_CLIP] = 1.0,
};

int clipnn_clip_rule_uses_lambda(clipnn_clip_rule rule) {
    return (unsigned)rule < CLIPNN_CLIP_COUNT && !isnan(rule_lambda[rule]);
}

clipnn_clip_options clipnn_clip_options_for(clipnn_clip_rule rule) {
    clipnn_clip_options o = clipnn_clip_options_default();
    /* An unknown rule is kept as given: clipnn_clipper_create names it. */
    o.rule = rule;
    if (clipnn_clip_rule_uses_lambda(rule)) o.lambda = rule_lambda[rule];
    return o;
}

clipnn_clip_options clipnn_clip_options_default(void) {
    clipnn_clip_options o;
    memset(&o, 0, sizeof o);
    o.rule = CLIPNN_CLIP_NONE;
    o.lambda = 1.0;
    o.p = 2.0;
    /* NFNets' floor of ||theta||, used by every adaptive rule. */
    o.eps = 1e-3;
    /* On the digits MLP at the compare defaults (relu, lr 4) a bound of 0.1
     * keeps every run finite at ~96% test accuracy. */
    o.value = 0.1;
    o.nonfinite = CLIPNN_NONFINITE_ERROR;
    o.project_kind = CLIPNN_PROJECT_BALL;
    /* The default digits run moves theta about 10 from theta(0): the ball
     * binds a run that wanders further. */
    o.project_radius = 10.0;
    o.project_center_initial = 1;
    o.box_lo = -1.0;
    o.box_hi = 1.0;
    /* AutoClip's paper reports p = 10 as a good default; 1000 steps of
     * history keep the selection cheap and still span several epochs of a
     * small data set. */
    o.percentile = 10.0;
    o.history_length = 1000;
    /* ZClip's published defaults. z_cap = 0: no hard cap. */
    o.z_threshold = 2.5;
    o.z_alpha = 0.97;
    o.z_cap = 0;
    o.z_warmup = 25;
    o.noise_multiplier = 0;
    o.noise_seed = 0;
    /* Pascanu et al. leave the size of the random step open: 0.01, a
     * hundredth of the norm family's threshold, moves theta by lr / 100. */
    o.nonfinite_bound = INFINITY;
    o.random_step = 0.01;
    /* The reference code's defaults of AdaGC and SPAM. */
    o.adagc_abs = 1.0;
    o.adagc_beta = 0.98;
    o.adagc_warmup = 100;
    o.spam_delay = 20;
    /* ACClip: the paper's beta1, beta2 and eps; alpha = 2 makes tau the
     * RMS of g (the paper takes alpha in (1, 2]). */
    o.acclip_alpha = 2.0;
    o.acclip_beta1 = 0.9;
    o.acclip_beta2 = 0.99;
    o.acclip_eps = 1e-5;
    o.nsgdm_beta = 0.9;
    return o;
}

/* Rules defined with Euclidean norms whatever p says. */
static int rule_is_euclidean(clipnn_clip_rule r) {
    return r == CLIPNN_CLIP_ADAPTIVE_LAYER || r == CLIPNN_CLIP_AGC || r == CLIPNN_CLIP_PER_SAMPLE ||
           r >= CLIPNN_CLIP_ADAGC;
}

/* Rules that rewrite g entry by entry (or replace it): the gradient must be
 * formed, never left to the update as unit factors. */
static int rule_rewrites_g(const clipnn_clip_options *o) {
    clipnn_clip_rule r = o->rule;
    return r == CLIPNN_CLIP_VALUE || r == CLIPNN_CLIP_PER_SAMPLE || (r >= CLIPNN_CLIP_SPAM && r < CLIPNN_CLIP_COUNT) ||
           o->nonfinite == CLIPNN_NONFINITE_RANDOM;
}

static double rule_order(const clipnn_clip_options *o) { return rule_is_euclidean(o->rule) ? 2.0 : o->p; }

double clipnn_clipper_norm_order(const clipnn_clipper *c) { return rule_order(&c->o); }

int clipnn_clipper_reads_theta_units(const clipnn_clipper *c) {
    clipnn_clip_rule r = c->o.rule;
    return r == CLIPNN_CLIP_ADAPTIVE_LAYER || r == CLIPNN_CLIP_AGC || (r == CLIPNN_CLIP_ADAPTIVE && c->o.p == 2);
}

int clipnn_clipper_reads_unit_norms_only(const clipnn_clipper *c) {
    return rule_order(&c->o) == 2 && !rule_rewrites_g(&c->o);
}

/* The options of the rules of src/clip/modern.c and of the random step. */
static clipnn_status check_modern_options(const clipnn_clip_options *o, const char *name) {
#define BAD(...) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, __VA_ARGS__)
#define IN01(x) ((x) >= 0 && (x) < 1)
    if (o->nonfinite == CLIPNN_NONFINITE_RANDOM && !(o->random_step >= 0 && isfinite(o->random_step)))
        BAD("clip: random step %g, want finite and >= 0", o->random_step);
    if (o->nonfinite == CLIPNN_NONFINITE_RANDOM && !(o->nonfinite_bound > 0))
        BAD("clip: non-finite bound %g, want > 0 (inf: none)", o->nonfinite_bound);
    switch (o->rule) {
    case CLIPNN_CLIP_ADAGC:
        if (!(o->lambda > 0 && o->adagc_abs > 0))
            BAD("clip adagc: lambda %g, abs %g, want > 0", o->lambda, o->adagc_abs);
        if (!IN01(o->adagc_beta)) BAD("clip adagc: beta %g, want in [0, 1)", o->adagc_beta);
        if (o->adagc_warmup < 2) BAD("clip adagc: warm-up %zu, want >= 2 steps (gamma starts there)", o->adagc_warmup);
        break;
    case CLIPNN_CLIP_SPAM:
        if (!(o->lambda > 0 && isfinite(o->lambda))) BAD("clip spam: theta %g, want finite and > 0", o->lambda);
        if (o->spam_delay < 1)
            BAD("clip spam: delay %zu, want >= 1 (the step of a reset must not clip)", o->spam_delay);
        break;
    case CLIPNN_CLIP_ACCLIP:
        if (!(o->acclip_alpha >= 1 && o->acclip_alpha <= 2))
            BAD("clip acclip: alpha %g, want in [1, 2]", o->acclip_alpha);
        if (!IN01(o->acclip_beta1) || !IN01(o->acclip_beta2))
            BAD("clip acclip: betas %g, %g, want in [0, 1)", o->acclip_beta1, o->acclip_beta2);
        if (!(o->acclip_eps > 0 && isfinite(o->acclip_eps))) BAD("clip acclip: eps %g, want > 0", o->acclip_eps);
        break;
    case CLIPNN_CLIP_NSGDM_CLIP:
        if (!(o->lambda > 0)) BAD("clip %s: lambda %g, want > 0", name, o->lambda);
        /* fall through */
    case CLIPNN_CLIP_NSGDM:
        if (!IN01(o->nsgdm_beta)) BAD("clip %s: beta %g, want in [0, 1)", name, o->nsgdm_beta);
        break;
    default: break;
    }
    return CLIPNN_OK;
#undef IN01
#undef BAD
}

static clipnn_status check_options(const clipnn_clip_options *o) {
#define BAD(...) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, __VA_ARGS__)
    if ((unsigned)o->rule >= CLIPNN_CLIP_COUNT) BAD("clip: unknown rule %d", (int)o->rule);
    const char *name = rule_names[o->rule];
    if (!(o->p >= 1)) BAD("clip %s: norm order p = %g, want p >= 1 or inf", name, o->p);
    if (rule_is_euclidean(o->rule) && o->p != 2)
        BAD("clip %s: defined with Euclidean norms, p = %g is not supported", name, o->p);
    if ((unsigned)o->nonfinite >= CLIPNN_NONFINITE_COUNT) BAD("clip: unknown non-finite policy %d", (int)o->nonfinite);
    switch (o->rule) {
    case CLIPNN_CLIP_VALUE:
        if (!(o->value >= 0)) BAD("clip value: bound %g, want >= 0", o->value);
        break;
    case CLIPNN_CLIP_NORM:
    case CLIPNN_CLIP_NORM_TORCH:
    case CLIPNN_CLIP_NORM_GROUP:
    case CLIPNN_CLIP_ADAPTIVE:
    case CLIPNN_CLIP_ADAPTIVE_LAYER:
    case CLIPNN_CLIP_AGC:
        if (!(o->lambda > 0)) BAD("clip %s: lambda %g, want > 0", name, o->lambda);
        if ((o->rule == CLIPNN_CLIP_ADAPTIVE || o->rule == CLIPNN_CLIP_ADAPTIVE_LAYER || o->rule == CLIPNN_CLIP_AGC) &&
            !(o->eps >= 0 && isfinite(o->eps)))
            BAD("clip %s: eps %g, want finite and >= 0", name, o->eps);
        break;
    case CLIPNN_CLIP_PROJECT:
        if (o->project_kind == CLIPNN_PROJECT_BALL && !(o->project_radius >= 0))
            BAD("clip project: radius %g, want >= 0", o->project_radius);
        if (o->project_kind == CLIPNN_PROJECT_BOX && !(o->box_lo <= o->box_hi))
            BAD("clip project: box [%g, %g] is empty", o->box_lo, o->box_hi);
        if (o->project_kind != CLIPNN_PROJECT_BALL && o->project_kind != CLIPNN_PROJECT_BOX)
            BAD("clip project: unknown kind %d", (int)o->project_kind);
        break;
    case CLIPNN_CLIP_PERCENTILE:
        if (!(o->percentile >= 0 && o->percentile <= 100)) BAD("clip percentile: %g, want in [0, 100]", o->percentile);
        if (o->history_length == 0 || o->history_length > ((size_t)1 << 24))
            BAD("clip percentile: history length %zu, want 1 to 2^24", o->history_length);
        break;
    case CLIPNN_CLIP_ZSCORE:
        if (!(o->z_threshold > 0)) BAD("clip zscore: threshold %g, want > 0", o->z_threshold);
        if (!(o->z_alpha >= 0 && o->z_alpha < 1)) BAD("clip zscore: alpha %g, want in [0, 1)", o->z_alpha);
        if (!(o->z_cap >= 0)) BAD("clip zscore: cap %g, want >= 0 (0: none)", o->z_cap);
        if (o->z_warmup < 2) BAD("clip zscore: warm-up %zu, want >= 2 steps", o->z_warmup);
        break;
    case CLIPNN_CLIP_PER_SAMPLE:
        if (!(o->lambda >= 0)) BAD("clip per-sample: C = %g, want >= 0", o->lambda);
        if (!(o->noise_multiplier >= 0 && isfinite(o->noise_multiplier)))
            BAD("clip per-sample: noise multiplier %g, want finite and >= 0", o->noise_multiplier);
        break;
    default: break;
    }
    return check_modern_options(o, name);
#undef BAD
}

/* ------------------------------------------------------ create / free */

void clipnn_clipper_free(clipnn_clipper *c) {
    if (!c) return;
    clipnn_free(c->group_acc);
    clipnn_free(c->group_scale);
    clipnn_free(c->group_post_acc);
    clipnn_free(c->group_factor);
    clipnn_free(c->theta0);
    clipnn_free(c->history);
    clipnn_free(c->scratch);
    clipnn_free(c->sample_norm);
    clipnn_clip_modern_free(c);
    clipnn_free(c);
}

clipnn_status clipnn_clipper_create(clipnn_clipper **out, const clipnn_model *m, const clipnn_clip_options *opts) {
    if (!out || !m || !opts) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip: NULL argument");
    *out = NULL;
    clipnn_status s = check_options(opts);
    if (s) return s;
    clipnn_clipper *c = clipnn_alloc_array(1, sizeof *c);
    if (!c) return clipnn_fail(CLIPNN_ERR_NOMEM, "clip: out of memory");
    c->o = *opts;
    c->n_params = m->n_params;
    c->n_groups = clipnn_model_n_groups(m);
    c->group_acc = clipnn_alloc_array(c->n_groups, sizeof *c->group_acc);
    c->group_scale = clipnn_alloc_array(c->n_groups, sizeof *c->group_scale);
    c->group_post_acc = clipnn_alloc_array(c->n_groups, sizeof *c->group_post_acc);
    c->group_factor = clipnn_alloc_array(c->n_groups, sizeof *c->group_factor);
    int ok = c->group_acc && c->group_scale && c->group_post_acc && c->group_factor;
    if (ok && opts->rule == CLIPNN_CLIP_PROJECT && opts->project_kind == CLIPNN_PROJECT_BALL &&
        opts->project_center_initial) {
        /* theta(0) is the parameters as they are when the clipper is made. */
        ok = (c->theta0 = clipnn_alloc_array(m->n_params, sizeof *c->theta0)) != NULL;
        if (ok) memcpy(c->theta0, m->params, m->n_params * sizeof *c->theta0);
    }
    if (ok && opts->rule == CLIPNN_CLIP_PERCENTILE) {
        c->history = clipnn_alloc_array(opts->history_length, sizeof *c->history);
        c->scratch = clipnn_alloc_array(opts->history_length, sizeof *c->scratch);
        ok = c->history && c->scratch;
    }
    if (ok && opts->rule == CLIPNN_CLIP_PER_SAMPLE) {
        c->sample_cap = m->max_batch ? m->max_batch : 1;
        ok = (c->sample_norm = clipnn_alloc_array(c->sample_cap, sizeof *c->sample_norm)) != NULL;
    }
    if (ok) ok = clipnn_clip_modern_alloc(c) == CLIPNN_OK;
    if (!ok) {
        clipnn_clipper_free(c);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "clip: out of memory for %zu parameters", m->n_params);
    }
    clipnn_rng_seed(&c->noise, opts->noise_seed ^ 0x6e6f697365ULL);
    *out = c;
    return CLIPNN_OK;
}

const clipnn_clip_options *clipnn_clipper_options(const clipnn_clipper *c) { return &c->o; }

void clipnn_clipper_skip_unformed_pre(clipnn_clipper *c, int skip) { c->skip_unformed_pre = skip; }

/* --------------------------------------------------- shared mechanics */

/* The divisor c = 1/factor of a factor <= 1 (NaN stays NaN, 0 gives +inf). */
static double divisor_of(double factor) { return factor > 0 || isnan(factor) ? 1.0 / factor : INFINITY; }

double clipnn_clip_summary_factor(double pre, double post) { return post > 0 ? pre / post : 1.0; }

/* A global factor 1/c <= 1: folded into the update when fused, applied to
 * g otherwise. Every group keeps its share: its norm scales by the factor. */
void clipnn_clip_apply_global(clipnn_clipper *c, clip_step *s, double factor) {
    /* A NaN factor (NaN norm under the propagate policy) is applied too:
     * torch's clamp(NaN, max=1) is NaN and every entry becomes NaN. */
    if (factor < 1 || isnan(factor)) {
        s->clipped = 1;
        if (s->fuse) s->grad_scale = factor;
        else clipnn_scale(s->g, c->n_params, (float)factor);
    }
    s->factor = divisor_of(factor);
    s->post = s->pre * factor;
    for (size_t i = 0; i < c->n_groups; i++) {
        c->group_post_acc[i] = clipnn_norm_scale_acc(c->group_acc[i], factor, s->p);
        c->group_factor[i] = s->factor;
    }
}

void clipnn_clip_finish_groups(clipnn_clipper *c, clip_step *s) {
    double post_acc = 0;
    for (size_t i = 0; i < c->n_groups; i++) {
        post_acc = clipnn_norm_combine(post_acc, c->group_post_acc[i], s->p);
        c->group_factor[i] = clipnn_clip_summary_factor(clipnn_norm_finish(c->group_acc[i], s->p),
                                                        clipnn_norm_finish(c->group_post_acc[i], s->p));
    }
    s->post = clipnn_norm_finish(post_acc, s->p);
    s->factor = clipnn_clip_summary_factor(s->pre, s->post);
}

/* Units [first, first + count) of group i: the rows of a weight, or the bias. */
static void group_units(const clipnn_model *m, size_t i, size_t *first, size_t *count) {
    *first = m->group_unit[i];
    *count = m->groups[i].is_bias ? 1 : m->groups[i].rows;
}

/* The accumulations acc[unit] of order p of group i's units, combined. */
static double group_combine(const clipnn_model *m, const double *acc, size_t i, double p) {
    size_t first, count;
    group_units(m, i, &first, &count);
    double a = 0;
    for (size_t u = first; u < first + count; u++) a = clipnn_norm_combine(a, acc[u], p);
    return a;
}

/* Per-group factors in c->group_scale, applied to g (or handed to the
 * optimizer per unit); post norms from the pre-clip accumulations, each
 * group's factor the divisor it was given. */
void clipnn_clip_apply_groups(clipnn_clipper *c, clip_step *s) {
    for (size_t i = 0; i < c->n_groups; i++) {
        double f = c->group_scale[i];
        if (f < 1) {
            clipnn_group grp = clipnn_model_group(s->m, i);
            if (s->unit_scale) {
                size_t first, count;
                group_units(s->m, i, &first, &count);
                for (size_t u = first; u < first + count; u++) s->unit_scale[u] = f;
            } else {
                clipnn_scale(s->g + grp.offset, grp.size, (float)f);
            }
            s->clipped = 1;
        }
        c->group_post_acc[i] = clipnn_norm_scale_acc(c->group_acc[i], f, s->p);
    }
    clipnn_clip_finish_groups(c, s);
    for (size_t i = 0; i < c->n_groups; i++) c->group_factor[i] = divisor_of(c->group_scale[i]);
}

/* c = max(norm / threshold, 1) as a factor 1/c; threshold 0 zeroes g. */
static double classic_factor(double norm, double threshold) {
    if (norm <= threshold) return 1.0;
    return threshold / norm;
}

/* ------------------------------------------------------------- rules */

static clipnn_status rule_none(clipnn_clipper *c, clip_step *s) {
    clipnn_clip_apply_global(c, s, 1.0);
    return CLIPNN_OK;
}

/* torch clip_grad_value_: clamp to [-v, v]. A group with no entry clamped
 * keeps its pre-clip accumulation, so that its factor is exactly 1. */
static clipnn_status rule_value(clipnn_clipper *c, clip_step *s) {
    float v = (float)c->o.value;
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(s->m, i);
        float *g = s->g + grp.offset;
        int clamped = 0;
        for (size_t j = 0; j < grp.size; j++) {
            float x = g[j];
            if (x > v) g[j] = v, clamped = 1;
            else if (x < -v) g[j] = -v, clamped = 1;
        }
        c->group_post_acc[i] = clamped ? clipnn_norm_accumulate(g, grp.size, s->p) : c->group_acc[i];
        s->clipped |= clamped;
    }
    clipnn_clip_finish_groups(c, s);
    return CLIPNN_OK;
}

/* Paper eq. 10-11: c = max(||g||_p / lambda, 1). */
static clipnn_status rule_norm(clipnn_clipper *c, clip_step *s) {
    clipnn_clip_apply_global(c, s, classic_factor(s->pre, c->o.lambda));
    return CLIPNN_OK;
}

/* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped
 * to 1, computed in float32 as torch does on float32 gradients. */
static clipnn_status rule_norm_torch(clipnn_clipper *c, clip_step *s) {
    if (s->pre > FLT_MAX && isfinite(s->pre)) {
        /* A norm past float32's range (torch's float32 norm would be inf and
         * zero g): the double norm still gives the right direction. */
        clipnn_clip_apply_global(c, s, c->o.lambda / s->pre);
        return CLIPNN_OK;
    }
    float coef = (float)c->o.lambda / ((float)s->pre + 1e-6f);
    clipnn_clip_apply_global(c, s, coef >= 1.0f ? 1.0 : (double)coef); /* NaN stays NaN, as torch.clamp */
    return CLIPNN_OK;
}

/* Keras clipnorm: classic clipping of each group on its own. */
static clipnn_status rule_norm_group(clipnn_clipper *c, clip_step *s) {
    for (size_t i = 0; i < c->n_groups; i++)
        c->group_scale[i] = classic_factor(clipnn_norm_finish(c->group_acc[i], s->p), c->o.lambda);
    clipnn_clip_apply_groups(c, s);
    return CLIPNN_OK;
}

/* Paper eq. 17: c = max(||g|| / (lambda max(||theta||, eps)), 1). */
static clipnn_status rule_adaptive(clipnn_clipper *c, clip_step *s) {
    if (s->theta_acc && s->p == 2) {
        double acc = 0;
        for (size_t i = 0; i < c->n_groups; i++) acc += group_combine(s->m, s->theta_acc, i, 2.0);
        s->theta_norm = sqrt(acc);
    } else {
        s->theta_norm = clipnn_norm(s->m->params, c->n_params, s->p);
    }
    double theta = s->theta_norm > c->o.eps ? s->theta_norm : c->o.eps;
    clipnn_clip_apply_global(c, s, classic_factor(s->pre, c->o.lambda * theta));
    return CLIPNN_OK;
}

/* Paper eq. 18: per group, Frobenius norms. */
static clipnn_status rule_adaptive_layer(clipnn_clipper *c, clip_step *s) {
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(s->m, i);
        double theta = s->theta_acc ? sqrt(group_combine(s->m, s->theta_acc, i, 2.0))
                                    : clipnn_norm(s->m->params + grp.offset, grp.size, 2.0);
        c->group_scale[i] = classic_factor(sqrt(c->group_acc[i]), c->o.lambda * (theta > c->o.eps ? theta : c->o.eps));
    }
    clipnn_clip_apply_groups(c, s);
    return CLIPNN_OK;
}

/* NFNets AGC, unit-wise (Optax adaptive_grad_clip): a unit is a row of W
 * (the incoming weights of one output neuron) or a whole bias vector;
 * m = lambda max(||W_i||, eps); if ||G_i|| > m, G_i *= m / max(||G_i||, 1e-6).
 * Here on the units of group i; returns the group's post-clip accumulation,
 * from the units' accumulations scaled by their factors (a group with no
 * unit scaled keeps its pre-clip one, so that its factor is exactly 1). */
static double agc_group(clipnn_clipper *c, clip_step *s, size_t i) {
    clipnn_group grp = clipnn_model_group(s->m, i);
    size_t unit0, n_units;
    group_units(s->m, i, &unit0, &n_units);
    double post_acc = 0;
    int scaled = 0;
    for (size_t r = 0; r < grp.rows; r++) {
        float *g = s->g + grp.offset + r * grp.cols;
        const float *w = s->m->params + grp.offset + r * grp.cols;
        double gacc = s->grad_acc ? s->grad_acc[unit0 + r] : clipnn_norm_accumulate(g, grp.cols, 2.0);
        double gn = sqrt(gacc);
        double wn = s->theta_acc ? sqrt(s->theta_acc[unit0 + r]) : clipnn_norm(w, grp.cols, 2.0);
        double limit = c->o.lambda * (wn > c->o.eps ? wn : c->o.eps);
        if (gn > limit) {
            double f = limit / (gn > 1e-6 ? gn : 1e-6);
            if (s->unit_scale) s->unit_scale[unit0 + r] = f;
            else clipnn_scale(g, grp.cols, (float)f);
            gacc *= f * f;
            scaled = 1;
        }
        post_acc += gacc;
    }
    s->clipped |= scaled;
    return scaled ? post_acc : c->group_acc[i];
}

static clipnn_status rule_agc(clipnn_clipper *c, clip_step *s) {
    size_t skip_from = c->o.agc_skip_last ? c->n_groups - 2 : c->n_groups;
    for (size_t i = 0; i < c->n_groups; i++)
        c->group_post_acc[i] = i < skip_from ? agc_group(c, s, i) : c->group_acc[i];
    clipnn_clip_finish_groups(c, s);
    return CLIPNN_OK;
}

/* Paper eq. 9: the gradient is left alone; theta is projected after the
 * update (clipnn_clipper_after_update). */
static clipnn_status rule_project(clipnn_clipper *c, clip_step *s) {
    clipnn_clip_apply_global(c, s, 1.0);
    return CLIPNN_OK;
}

/* k-th smallest of v[n] (0-based), by quickselect; v is reordered. */
static double select_kth(double *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j], v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* Percentile q in [0, 100] of v[n] with linear interpolation between order
 * statistics, numpy.percentile's default (the one AutoClip's code uses). */
double clipnn_percentile(double *v, size_t n, double q) {
    double pos = q / 100.0 * (double)(n - 1);
    size_t k = (size_t)floor(pos);
    double frac = pos - (double)k;
    double lo = select_kth(v, n, k);
    if (frac == 0 || k + 1 >= n) return lo;
    /* The next order statistic is the minimum of the part above k. */
    double hi = v[k + 1];
    for (size_t i = k + 2; i < n; i++)
        if (v[i] < hi) hi = v[i];
    return lo + frac * (hi - lo);
}

/* AutoClip: threshold = percentile of the pre-clip norms seen so far (the
 * last history_length of them, the current one included). */
static clipnn_status rule_percentile(clipnn_clipper *c, clip_step *s) {
    size_t cap = c->o.history_length;
    if (isfinite(s->pre)) {
        c->history[c->hist_pos] = s->pre;
        c->hist_pos = (c->hist_pos + 1) % cap;
        if (c->hist_count < cap) c->hist_count++;
    }
    if (c->hist_count == 0) {
        clipnn_clip_apply_global(c, s, 1.0);
        return CLIPNN_OK;
    }
    memcpy(c->scratch, c->history, c->hist_count * sizeof *c->scratch);
    double threshold = clipnn_percentile(c->scratch, c->hist_count, c->o.percentile);
    clipnn_clip_apply_global(c, s, classic_factor(s->pre, threshold));
    return CLIPNN_OK;
}

/* ZClip (Kumar et al. 2025; its reference code's default: mode "zscore",
 * clip option "adaptive_scaling", clip factor 1, eps 1e-6):
 * - warm-up: the raw norms of the first z_warmup steps give the mean and
 *   the population variance (Welford); only the hard cap clips;
 * - then z = (g - mean) / (sd + 1e-6); when z > t the norm is clipped to
 *   mean + t sd / (z / t) = mean + t^2 sd / z (the larger the spike, the
 *   harder the clip), and the EMAs (weight alpha on the past; the variance
 *   about the updated mean) take that value, else the raw norm;
 * - the hard cap z_cap (> 0) bounds the norm on top, without entering the
 *   statistics; like torch's clip_grad_norm_, the factor is
 *   limit / (g + 1e-6). */
static clipnn_status rule_zscore(clipnn_clipper *c, clip_step *s) {
    const double g = s->pre, t = c->o.z_threshold, eps = 1e-6;
    double limit = INFINITY;
    if (isfinite(g)) {
        if (c->z_seen < c->o.z_warmup) {
            c->z_seen++;
            double d = g - c->z_mean;
            c->z_mean += d / (double)c->z_seen;
            c->z_var += d * (g - c->z_mean); /* sum of squares until the warm-up ends */
            if (c->z_seen == c->o.z_warmup) c->z_var /= (double)c->z_seen;
        } else {
            double sd = sqrt(c->z_var);
            double z = (g - c->z_mean) / (sd + eps);
            double seen = g;
            if (z > t) limit = seen = c->z_mean + t * sd / (z / t);
            double a = c->o.z_alpha;
            c->z_mean = a * c->z_mean + (1 - a) * seen;
            double d = seen - c->z_mean;
            c->z_var = a * c->z_var + (1 - a) * d * d;
            c->z_seen++;
        }
    }
    if (c->o.z_cap > 0 && c->o.z_cap < limit) limit = c->o.z_cap;
    clipnn_clip_apply_global(c, s, g > limit ? limit / (g + eps) : 1.0);
    return CLIPNN_OK;
}

static const clip_rule_fn rules[CLIPNN_CLIP_COUNT] = {
    [CLIPNN_CLIP_NONE] = rule_none,
    [CLIPNN_CLIP_VALUE] = rule_value,
    [CLIPNN_CLIP_NORM] = rule_norm,
    [CLIPNN_CLIP_NORM_TORCH] = rule_norm_torch,
    [CLIPNN_CLIP_NORM_GROUP] = rule_norm_group,
    [CLIPNN_CLIP_ADAPTIVE] = rule_adaptive,
    [CLIPNN_CLIP_ADAPTIVE_LAYER] = rule_adaptive_layer,
    [CLIPNN_CLIP_AGC] = rule_agc,
    [CLIPNN_CLIP_PROJECT] = rule_project,
    [CLIPNN_CLIP_PERCENTILE] = rule_percentile,
    [CLIPNN_CLIP_ZSCORE] = rule_zscore,
    [CLIPNN_CLIP_PER_SAMPLE] = clipnn_clip_rule_per_sample,
    [CLIPNN_CLIP_ADAGC] = clipnn_clip_rule_adagc,
    [CLIPNN_CLIP_SPAM] = clipnn_clip_rule_spam,
    [CLIPNN_CLIP_ACCLIP] = clipnn_clip_rule_acclip,
    [CLIPNN_CLIP_NSGDM] = clipnn_clip_rule_nsgdm,
    [CLIPNN_CLIP_NSGDM_CLIP] = clipnn_clip_rule_nsgdm,
};

/* ------------------------------------------------------------- apply */

static clipnn_status check_apply(const clipnn_clipper *c, const clipnn_model *m) {
    if (!c || !m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip: NULL argument");
    if (m->n_params != c->n_params)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "clip: clipper made for %zu parameters, model has %zu", c->n_params,
                           m->n_params);
    if (c->o.rule == CLIPNN_CLIP_PER_SAMPLE) return clipnn_clip_per_sample_ready(m);
    return CLIPNN_OK;
}

static clipnn_status apply_step(clipnn_clipper *c, clip_step *sp, double precomputed_norm, double *grad_scale,
                                const clipnn_group_report *groups, clipnn_clip_record *rec);

clipnn_status clipnn_clipper_apply(clipnn_clipper *c, clipnn_model *m, double precomputed_norm, int fuse,
                                   double *grad_scale, double *per_group_norms, clipnn_clip_record *rec) {
    clipnn_status st = check_apply(c, m);
    if (st) return st;
    clip_step s = {.m = m, .g = m->grads, .p = rule_order(&c->o), .fuse = fuse, .grad_scale = 1.0,
                   .factor = 1.0, .theta_norm = NAN};
    const clipnn_group_report groups = {.pre = per_group_norms};
    return apply_step(c, &s, precomputed_norm, grad_scale, &groups, rec);
}

/* clipnn_train's step: g is what the clipnn_loss_grad_fused just before
 * produced, so phase one adds up the unit norms that backward computed
 * (grad_acc) instead of reading g again; theta_acc (may be NULL) holds
 * theta's unit sums of squares from the update before, and per-group and
 * per-unit factors go to unit_scale for the optimizer instead of a pass
 * over g. */
clipnn_status clipnn_clipper_apply_train(clipnn_clipper *c, clipnn_model *m, double precomputed_norm,
                                         const double *grad_acc, const double *theta_acc, double *unit_scale,
                                         double *grad_scale, const clipnn_group_report *groups,
                                         clipnn_clip_record *rec) {
    clipnn_status st = check_apply(c, m);
    if (st) return st;
    clip_step s = {.m = m, .g = m->grads, .p = rule_order(&c->o), .fuse = 1, .grad_scale = 1.0,
                   .factor = 1.0, .theta_norm = NAN, .grad_acc = grad_acc, .theta_acc = theta_acc,
                   .unit_scale = unit_scale};
    for (size_t u = 0; u < m->n_units; u++) unit_scale[u] = 1.0;
    return apply_step(c, &s, precomputed_norm, grad_scale, groups, rec);
}

/* Phase one: the pre-clip norms of every group in one pass (or from the
 * unit norms of the backward) into c->group_acc and pre (may be NULL);
 * returns the global accumulation. */
static double measure_groups(clipnn_clipper *c, clip_step *s, double *pre) {
    const clipnn_model *m = s->m;
    double acc = 0;
    if (s->pre_unmeasured) {
        /* only whether every example's norm is finite */
        clipnn_example_sqnorms(s->m, c->sample_norm);
        s->examples_acc = 0;
        for (size_t i = 0; i < s->m->ws.batch; i++) s->examples_acc += c->sample_norm[i];
        for (size_t i = 0; i < c->n_groups; i++) c->group_acc[i] = NAN;
    } else if (s->dw_unformed) {
        clipnn_example_unformed_group_sumsq(s->m, s->g, c->group_acc);
    }
    for (size_t i = 0; i < c->n_groups; i++) {
        clipnn_group grp = clipnn_model_group(m, i);
        if (!s->dw_unformed)
            c->group_acc[i] = s->grad_acc ? group_combine(m, s->grad_acc, i, s->p)
                                           : clipnn_norm_accumulate(m->grads + grp.offset, grp.size, s->p);
        acc = clipnn_norm_combine(acc, c->group_acc[i], s->p);
        if (pre) pre[i] = clipnn_norm_finish(c->group_acc[i], s->p);
    }
    return acc;
}

/* Phase two: the rule, or the non-finite policy when the norm is not
 * finite and the policy does not let the rule run (then every group keeps
 * its norm and has no factor, as the whole). */
static clipnn_status run_rule(clipnn_clipper *c, clip_step *s, clipnn_clip_record *r) {
    r->pre_norm = s->pre;
    r->nonfinite = !isfinite(s->pre_unmeasured ? s->examples_acc : s->pre);
    c->n_steps++;
    if (c->o.nonfinite == CLIPNN_NONFINITE_RANDOM && (r->nonfinite || s->pre > c->o.nonfinite_bound)) {
        clipnn_clip_random_step(c, s);
        r->post_norm = s->post;
        r->factor = s->factor;
        r->clipped = 1;
        c->n_clipped++;
        return CLIPNN_OK;
    }
    if (r->nonfinite && c->o.nonfinite != CLIPNN_NONFINITE_PROPAGATE) {
        r->post_norm = s->pre;
        r->factor = NAN;
        for (size_t i = 0; i < c->n_groups; i++) c->group_post_acc[i] = c->group_acc[i], c->group_factor[i] = NAN;
        if (c->o.nonfinite == CLIPNN_NONFINITE_ERROR) {
            c->n_steps--;
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "clip: the gradient norm is %g; parameters left untouched",
                               s->pre);
        }
        r->skipped = 1;
        c->n_skipped++;
        return CLIPNN_OK;
    }
    clipnn_status st = rules[c->o.rule](c, s);
    r->post_norm = s->post;
    r->factor = s->factor;
    r->clipped = s->clipped;
    c->n_clipped += (uint64_t)s->clipped;
    return st;
}

static clipnn_status apply_step(clipnn_clipper *c, clip_step *sp, double precomputed_norm, double *grad_scale,
                                const clipnn_group_report *groups, clipnn_clip_record *rec) {
    clip_step s = *sp;
    clipnn_model *m = s.m;
    s.dw_unformed = c->o.rule == CLIPNN_CLIP_PER_SAMPLE && (m->ws.holds & CLIPNN_WS_DW_PENDING);
    s.pre_unmeasured = s.dw_unformed && c->skip_unformed_pre && m->ws.batch <= c->sample_cap;
    double acc = measure_groups(c, &s, groups ? groups->pre : NULL);
    s.pre = precomputed_norm >= 0 || isnan(precomputed_norm) ? precomputed_norm : clipnn_norm_finish(acc, s.p);
    s.pre_acc = acc;

    clipnn_clip_record r;
    memset(&r, 0, sizeof r);
    clipnn_status st = run_rule(c, &s, &r);
    r.theta_norm = s.theta_norm;
    r.n_steps = c->n_steps;
    r.n_clipped = c->n_clipped;
    r.n_skipped = c->n_skipped;
    if (grad_scale) *grad_scale = s.grad_scale;
    if (!grad_scale && s.grad_scale != 1.0) clipnn_scale(m->grads, c->n_params, (float)s.grad_scale);
    for (size_t i = 0; groups && i < c->n_groups; i++) {
        if (groups->post) groups->post[i] = clipnn_norm_finish(c->group_post_acc[i], s.p);
        if (groups->factor) groups->factor[i] = c->group_factor[i];
    }
    if (rec) *rec = r;
    return st;
}

/* Projection of theta (eq. 9), after the optimizer's step. */
clipnn_status clipnn_clipper_after_update(clipnn_clipper *c, clipnn_model *m, clipnn_clip_record *rec) {
    if (!c || !m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip: NULL argument");
    if (c->o.rule != CLIPNN_CLIP_PROJECT) return CLIPNN_OK;
    float *theta = m->params;
    size_t n = c->n_params;
    int moved = 0;
    if (c->o.project_kind == CLIPNN_PROJECT_BOX) {
        float lo = (float)c->o.box_lo, hi = (float)c->o.box_hi;
        for (size_t i = 0; i < n; i++) {
            if (theta[i] < lo) theta[i] = lo, moved = 1;
            else if (theta[i] > hi) theta[i] = hi, moved = 1;
        }
    } else {
        double d2 = 0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)theta[i] - (c->theta0 ? (double)c->theta0[i] : 0.0);
            d2 += d * d;
        }
        double dist = sqrt(d2), R = c->o.project_radius;
        if (dist > R) {
            double f = R / dist;
            for (size_t i = 0; i < n; i++) {
                double centre = c->theta0 ? (double)c->theta0[i] : 0.0;
                theta[i] = (float)(centre + f * ((double)theta[i] - centre));
            }
            moved = 1;
        }
    }
    if (moved) {
        c->n_clipped++;
        if (rec) {
            rec->clipped = 1;
            rec->n_clipped = c->n_clipped;
        }
    }
    return CLIPNN_OK;
}
