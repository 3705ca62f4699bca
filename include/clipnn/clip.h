/* clipnn: Gradient clipping: every rule behind one clipper handle, two-phase norms, per-example norms. */
#ifndef CLIPNN_PUBLIC_CLIP_H
#define CLIPNN_PUBLIC_CLIP_H

#include "clipnn/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------- clipping */

typedef enum {
    CLIPNN_CLIP_NONE = 0,
    CLIPNN_CLIP_VALUE,          /* g_i clamped to [-value, value] */
    CLIPNN_CLIP_NORM,           /* c = max(||g||_p / lambda, 1)   (eq. 10-11) */
    CLIPNN_CLIP_NORM_TORCH,     /* g *= min(lambda / (||g|| + 1e-6), 1) */
    CLIPNN_CLIP_NORM_GROUP,     /* per group c_l = max(||g_l|| / lambda, 1) */
    CLIPNN_CLIP_ADAPTIVE,       /* c = max(||g|| / (lambda max(||theta||, eps)), 1)  (eq. 17) */
    CLIPNN_CLIP_ADAPTIVE_LAYER, /* per group, Frobenius norms (eq. 18) */
    CLIPNN_CLIP_AGC,            /* unit-wise adaptive (NFNets) */
    CLIPNN_CLIP_PROJECT,        /* plain step, then projection of theta (eq. 9) */
    CLIPNN_CLIP_PERCENTILE,     /* AutoClip */
    CLIPNN_CLIP_ZSCORE,         /* ZClip */
    CLIPNN_CLIP_PER_SAMPLE,     /* DP-SGD per-example clipping (an example: a row of x, a whole sequence) */
    CLIPNN_CLIP_ADAGC,          /* per group, c_l = max(||g_l|| / (lambda gamma_l), 1), gamma_l: EMA of clipped norms */
    CLIPNN_CLIP_SPAM,           /* per coordinate, g_i^2 <= lambda v_i (v: Adam's second moment) */
    CLIPNN_CLIP_ACCLIP,         /* the step is min(tau / (|m| + eps), 1) m, tau^alpha an EMA of |g|^alpha */
    CLIPNN_CLIP_NSGDM,          /* the step is m / ||m||, m an EMA of g */
    CLIPNN_CLIP_NSGDM_CLIP,     /* the same with g clipped to norm lambda before it enters m */
    CLIPNN_CLIP_COUNT
} clipnn_clip_rule;

CLIPNN_API const char *clipnn_clip_rule_name(clipnn_clip_rule rule);
CLIPNN_API clipnn_status clipnn_clip_rule_parse(const char *name, clipnn_clip_rule *out);

/* What a step does when its gradient norm (or loss) is not finite. */
typedef enum {
    CLIPNN_NONFINITE_ERROR = 0, /* status, parameters untouched */
    CLIPNN_NONFINITE_SKIP,      /* no update, counted */
    CLIPNN_NONFINITE_PROPAGATE, /* what PyTorch does by default */
    CLIPNN_NONFINITE_RANDOM,    /* a small random step instead (Pascanu et al.), also above a bound */
    CLIPNN_NONFINITE_COUNT
} clipnn_nonfinite;

/* "error", "skip", "propagate", "random". parse fails with INVALID_ARG and a message
 * listing the valid names. */
CLIPNN_API const char *clipnn_nonfinite_name(clipnn_nonfinite policy);
CLIPNN_API clipnn_status clipnn_nonfinite_parse(const char *name, clipnn_nonfinite *out);

typedef enum { CLIPNN_PROJECT_BALL = 0, CLIPNN_PROJECT_BOX } clipnn_project_kind;

typedef struct {
    clipnn_clip_rule rule;
    double lambda; /* threshold of norm rules; factor of adaptive rules; C of per-sample */
    double p;      /* norm order, >= 1, INFINITY allowed (default 2) */
    double eps;    /* adaptive rules: floor of ||theta|| */
    double value;  /* CLIPNN_CLIP_VALUE bound */
    clipnn_nonfinite nonfinite;
    int agc_skip_last; /* leave the last layer unclipped (NFNets) */
    /* projection (eq. 9) */
    clipnn_project_kind project_kind;
    double project_radius;       /* ball radius R */
    int project_center_initial;  /* 1: centre theta(0); 0: centre 0 */
    double box_lo, box_hi;       /* box bounds */
    /* AutoClip */
    double percentile;     /* in [0, 100] */
    size_t history_length; /* bounded history of pre-clip norms */
    /* ZClip */
    double z_threshold, z_alpha, z_cap;
    size_t z_warmup;
    /* per-sample (DP-SGD) */
    double noise_multiplier; /* sigma: noise std sigma * lambda on the sum, sigma * lambda / batch on the mean */
    uint64_t noise_seed;
    /* non-finite policy random: a norm above nonfinite_bound (inf: none)
     * counts as non-finite; the step taken instead is a Gaussian direction
     * of 2-norm random_step, drawn from the noise generator. */
    double nonfinite_bound, random_step;
    /* AdaGC: lambda is lambda_rel; warm-up of adagc_warmup steps clipping
     * the global norm at adagc_abs; EMA weight adagc_beta on the past. */
    double adagc_abs, adagc_beta;
    size_t adagc_warmup;
    /* SPAM: lambda is theta; no clipping in the first spam_delay steps
     * after the start and after each reset of the optimizer's moments. */
    size_t spam_delay;
    /* ACClip: tau^alpha <- beta2 tau^alpha + (1 - beta2) |g|^alpha,
     * m <- beta1 m + (1 - beta1) g. */
    double acclip_alpha, acclip_beta1, acclip_beta2, acclip_eps;
    /* NSGD-M (and its clipped variant): m <- beta m + (1 - beta) g. */
    double nsgdm_beta;
    /* When lambda was chosen by clipnn_auto_lambda: the quantile (> 0) and
     * the warm-up's steps, kept with the clipper's state so that a
     * checkpoint says how lambda was set; 0: lambda was given. */
    double auto_quantile;
    uint64_t auto_steps;
} clipnn_clip_options;
/* No clipping (rule NONE); every other field at its default: p 2, eps
 * 1e-3, value bound 0.1, projection onto the ball of radius 10 around
 * theta(0), AutoClip percentile 10 over 1000 norms, ZClip's published
 * settings (threshold 2.5, alpha 0.97, warm-up 25, no cap), no DP noise,
 * non-finite policy error. lambda is 1, the threshold of the norm rules;
 * a caller that picks a rule should start from clipnn_clip_options_for. */
CLIPNN_API clipnn_clip_options clipnn_clip_options_default(void);
/* The defaults for one rule, the ones the clipnn tool uses: the defaults
 * above with rule set and lambda at the rule's own default: 1 for norm,
 * norm-torch, norm-group and per-sample (C), 0.01 for adaptive,
 * adaptive-layer and agc (a step relative to ||theta||). An unknown rule
 * is kept, and refused by clipnn_clipper_create. */
CLIPNN_API clipnn_clip_options clipnn_clip_options_for(clipnn_clip_rule rule);
/* 1 when the rule reads lambda (the norm rules, the adaptive ones, agc and
 * per-sample); value, project, percentile and zscore have thresholds of
 * their own. */
CLIPNN_API int clipnn_clip_rule_uses_lambda(clipnn_clip_rule rule);

/* What clipping did in one step: filled by clipnn_clipper_apply, completed
 * by clipnn_clipper_after_update for the projection.
 *
 * Norms are over the whole gradient block (every group), of the rule's
 * order q: q = 2 for adaptive-layer, agc, per-sample, adagc, spam, acclip,
 * nsgdm and nsgdm-clip (rules defined with Euclidean norms, which refuse
 * p != 2), q = p for every other rule.
 * "Global rules" are none, norm, norm-torch, adaptive, project, percentile
 * and zscore: one factor for the whole gradient.
 *
 *   pre_norm    ||g||_q before clipping, or the precomputed_norm the caller
 *               gave (>= 0, or NaN). per-sample: the norm of the batch-mean
 *               gradient before any example is clipped (NaN in a training
 *               step that skips it: clipnn_train_options
 *               per_sample_skip_pre_norm).
 *   post_norm   ||g||_q of the gradient the update uses:
 *                 global rules: pre_norm / factor, whether the factor was
 *                 applied to g or left to the optimizer in *grad_scale;
 *                 project: pre_norm (g is left alone);
 *                 value: the norm of the clamped g;
 *                 norm-group, adaptive-layer, agc: from the pre-clip norms
 *                 of the groups (agc: units) and the factors given to them;
 *                 per-sample: the norm of the mean of the clipped
 *                 per-example gradients plus the noise (pre_norm when no
 *                 example was clipped and there is no noise);
 *                 adagc: as norm-group after its warm-up, as a global
 *                 rule during it; spam: the norm of the clipped g;
 *                 acclip, nsgdm, nsgdm-clip: the norm of the step
 *                 direction they put in g's place (1 for nsgdm);
 *                 a random step (non-finite policy random): its norm.
 *   factor      global rules: c(t) >= 1 (eq. 10-11), the divisor of the
 *               step: 1 when nothing was clipped, +inf when the threshold is
 *               0 and g is zeroed, NaN for a NaN pre_norm under the
 *               propagate policy. Other rules: pre_norm / post_norm (1 when post_norm
 *               is 0), a summary and not a divisor any part of g was given;
 *               per-sample's includes the noise, so it can be below 1,
 *               and so can those of the rules that give the step.
 *   theta_norm  adaptive: ||theta||_p before the step, the value the rule
 *               divided by (before its eps floor); every other rule: NaN.
 *               clipnn_train's step record fills the NaN in (see
 *               clipnn_step_record).
 *   clipped     1 when the rule changed part of g: global rules when factor
 *               > 1 or NaN, value when an entry was clamped, per-group and
 *               per-unit rules when a group or unit was scaled, per-sample
 *               when an example's norm exceeded C (noise alone does not
 *               count), project when clipnn_clipper_after_update moved
 *               theta, acclip when a coordinate's min(tau / (|m| + eps), 1)
 *               was below 1, nsgdm-clip when g was clipped into m (nsgdm
 *               never), every step the random policy replaced.
 *   skipped     1 when the skip policy dropped a non-finite step: the caller
 *               must not update.
 *   nonfinite   1 when pre_norm is NaN or infinite, whatever the policy.
 *   n_steps, n_clipped, n_skipped: counts over the clipper's life (they
 *               travel with its state): steps applied (one refused under the
 *               error policy is not counted), steps clipped, steps skipped.
 * When pre_norm is not finite and the policy is error or skip, the rule does
 * not run: post_norm = pre_norm, factor = NaN, theta_norm = NaN, clipped =
 * 0, g untouched. */
typedef struct {
    double pre_norm;   /* ||g||_q before clipping (q: 2 for adaptive-layer, agc, per-sample; else p) */
    double post_norm;  /* ||g||_q of the gradient the update uses */
    double factor;     /* c(t) >= 1 for global rules; pre_norm / post_norm otherwise */
    double theta_norm; /* adaptive: ||theta||_p before the step; other rules: NaN */
    int clipped;       /* any part of g was changed (project: theta was moved) */
    int skipped;       /* update dropped (non-finite policy skip) */
    int nonfinite;     /* pre-clip norm was not finite */
    uint64_t n_steps, n_clipped, n_skipped; /* running counts */
} clipnn_clip_record;

typedef struct clipnn_clipper clipnn_clipper;

/* A clipper for the gradients of m (its groups and parameter count) with
 * a copy of opts, which are checked (INVALID_ARG for a value out of its
 * domain). The projection's centre theta(0) is m's parameters at this
 * call; the per-sample rule sizes its per-example buffer for m's reserved
 * batch. The clipper keeps no pointer to m; clipnn_clipper_apply refuses a
 * model of another parameter count (SHAPE). clipnn_clipper_options returns
 * its copy of opts. */
CLIPNN_API clipnn_status clipnn_clipper_create(clipnn_clipper **out, const clipnn_model *m,
                                    const clipnn_clip_options *opts);
CLIPNN_API void clipnn_clipper_free(clipnn_clipper *c);
CLIPNN_API const clipnn_clip_options *clipnn_clipper_options(const clipnn_clipper *c);

/* Clip the model's gradient block in place (reads the parameters for
 * adaptive rules). On return *grad_scale holds a factor the optimizer must
 * still multiply the gradient by: 1 unless the rule is global and fusion
 * was asked (fuse != 0), in which case the gradient is left unscaled and the
 * factor 1/c is returned to be folded into the update. precomputed_norm,
 * when >= 0, is used as the global pre-clip norm instead of computing it
 * (e.g. a norm reduced elsewhere); NaN marks a step known to be non-finite
 * (say its loss overflowed while the gradient stayed finite), so that the
 * non-finite policy decides it; any negative value: compute the norm.
 * grad_scale NULL: the factor is applied to g whatever fuse says.
 * per_group_norms, when not NULL, receives the pre-clip norm of each group
 * ([n_groups] entries, the rule's order q as in clipnn_clip_record). rec
 * may be NULL. Under the error policy a non-finite norm returns
 * CLIPNN_ERR_NONFINITE; under skip, rec->skipped is set and the caller must
 * not update. The per-sample rule reads the model's workspace instead of
 * only the gradient block: it needs clipnn_loss_grad with want_params as
 * the last call that wrote the workspace (else CLIPNN_ERR_STATE), rebuilds
 * the gradient block from that backward's deltas (and, for recurrent
 * layers, its gradients of every step) scaled per example, without a
 * second forward or backward, and consumes them (see the workspace, beside
 * clipnn_model_reserve). It allocates nothing when the model's batch was
 * reserved before the clipper was created. */
CLIPNN_API clipnn_status clipnn_clipper_apply(clipnn_clipper *c, clipnn_model *m, double precomputed_norm,
                                   int fuse, double *grad_scale, double *per_group_norms,
                                   clipnn_clip_record *rec);

/* Rules that act after the update (projection): call after the optimizer.
 * rec (may be NULL) is the step's record, marked clipped when theta moved. */
CLIPNN_API clipnn_status clipnn_clipper_after_update(clipnn_clipper *c, clipnn_model *m, clipnn_clip_record *rec);

/* The optimizer's second moment v ([n_params], Adam's exp_avg_sq before
 * this step's update) that the spam rule compares g^2 with, for the next
 * clipnn_clipper_apply: step is the 0-based index of the update about to
 * be made, reset_every the optimizer's period of moment resets (0: none).
 * The clipper keeps the pointer, never writes through it; spam refuses to
 * apply without it (CLIPNN_ERR_STATE). clipnn_train gives it at every step. */
CLIPNN_API void clipnn_clipper_set_moment(clipnn_clipper *c, const float *v, uint64_t step, uint64_t reset_every);
/* 1 when the rule keeps its own momentum and hands the optimizer the step
 * direction itself (acclip, nsgdm, nsgdm-clip): pair it with plain SGD. */
CLIPNN_API int clipnn_clip_rule_is_optimizer(clipnn_clip_rule rule);

/* Per-example 2-norms for the batch of the last clipnn_loss_grad: norms
 * receives one entry per example of that batch ([batch]), the 2-norm of the
 * gradient of that example's own loss (not divided by the batch size) with
 * respect to every parameter. An example is a row of x: for a model with
 * recurrent layers a whole sequence, whose loss is the mean over its steps
 * when the model reads every step (clipnn_loss_grad of that row alone).
 * The per-example gradients are never formed (DP-SGD, Opacus): a dense
 * layer that sees one row per example gives (||a_i||^2 + 1) ||delta_i||^2;
 * a weight shared by the steps of a sequence (a recurrent layer's, a dense
 * layer's reading every step) gives the ghost norm
 * sum_{t,s} (a_t . a_s)(d_t . d_s) or that tensor's gradient for the one
 * example, whichever is cheaper. Needs that clipnn_loss_grad, with
 * want_params or dx, as the last call that wrote the model's workspace;
 * after any other (a forward, per-sample clipping, a growth) it fails with
 * CLIPNN_ERR_STATE and writes nothing. */
CLIPNN_API clipnn_status clipnn_per_example_grad_norms(const clipnn_model *m, double *norms);

/* DP-SGD clipping of materialised per-example gradients g: [n_examples][n]
 * (Optax per_example_global_norm_clip): sum[n] = sum_i g_i / max(1, ||g_i|| / C)
 * (n entries written); C = 0 zeroes every example, C = inf changes none.
 * *n_clipped (may be NULL) receives how many examples were scaled. */
CLIPNN_API clipnn_status clipnn_clip_per_example(const float *g, size_t n_examples, size_t n, double C, float *sum,
                                      size_t *n_clipped);

/* Phase two on its own: g *= scale. */
CLIPNN_API void clipnn_scale(float *g, size_t n, float scale);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_CLIP_H */
