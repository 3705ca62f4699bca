/* The clipper's insides, shared by src/clip/clip.c (the rules and the step),
 * src/clip/per_sample.c (DP-SGD) and src/clip/state.c (the CLIP section). */
#ifndef CLIPNN_CLIP_INTERNAL_H
#define CLIPNN_CLIP_INTERNAL_H

#include "nn/nn.h"

struct clipnn_clipper {
    clipnn_clip_options o;
    size_t n_params, n_groups;
    double *group_acc;   /* [n_groups] pre-clip accumulations (order of the rule) */
    double *group_scale; /* [n_groups] factors of per-group rules */
    double *group_post_acc; /* [n_groups] post-clip accumulations: what the rule left of each group */
    double *group_factor;   /* [n_groups] each group's factor, as clipnn_group_report gives it */
    float *theta0;       /* [n_params] projection centre theta(0), or NULL */
    double *history;     /* [history_length] AutoClip ring of pre-clip norms */
    double *scratch;     /* [history_length] percentile selection */
    size_t hist_count, hist_pos;
    double z_mean, z_var; /* ZClip EMAs (Welford sums during the warm-up) */
    uint64_t z_seen;
    clipnn_rng noise;     /* DP-SGD noise */
    int skip_unformed_pre; /* per-sample, one-backward step: no pre-clip norms (clipnn_clipper_skip_unformed_pre) */
    double *sample_norm;  /* [sample_cap] per-example norms */
    size_t sample_cap;
    uint64_t n_steps, n_clipped, n_skipped;
    /* the rules of src/clip/modern.c */
    double *gamma;        /* [n_groups] AdaGC's EMAs of the clipped norms */
    uint64_t rule_steps;  /* AdaGC: steps the rule ran (its warm-up counts them) */
    float *mom, *tau;     /* [n_params] momentum (acclip, nsgdm), tau^alpha (acclip) */
    const float *moment_v; /* spam: the optimizer's second moment (clipnn_clipper_set_moment) */
    uint64_t moment_step, moment_reset;
};

/* What a rule sees and says for one step. */
typedef struct {
    clipnn_model *m;
    float *g;          /* [n_params] the gradient block */
    double p;          /* order of pre/post */
    double pre_acc;    /* global pre-clip accumulation */
    double pre;        /* global pre-clip norm */
    int fuse;
    double grad_scale; /* out: factor left to the optimizer (1 unless fused) */
    double post;       /* out: post-clip norm */
    double factor;     /* out: c(t), or pre/post for non-global rules */
    double theta_norm; /* out when the rule computes it, else NaN */
    int clipped;       /* out */
    /* clipnn_train's step (clipnn_clipper_apply_train), else NULL: */
    const double *grad_acc;  /* [n_units] accumulations of g's units from the backward */
    const double *theta_acc; /* [n_units] sums of squares of theta's units from the last update */
    double *unit_scale;      /* [n_units] out: per-unit factors left to the optimizer */
    int dw_unformed;         /* per-sample after a backward that left only the deltas (CLIPNN_WS_DW_PENDING) */
    int pre_unmeasured;      /* dw_unformed and the pre-clip norms skipped: pre is NaN */
    double examples_acc;     /* then the sum of the per-example squared norms (finite or not) */
} clip_step;

typedef clipnn_status (*clip_rule_fn)(clipnn_clipper *c, clip_step *s);

/* pre / post as a factor where no single divisor exists: 1 when post is 0. */
double clipnn_clip_summary_factor(double pre, double post);
/* The rule left c->group_post_acc: each group's factor (the summary), the
 * post-clip norm of the whole and its factor. */
void clipnn_clip_finish_groups(clipnn_clipper *c, clip_step *s);

/* Per-group telemetry of one step, each [n_groups] or NULL (not wanted):
 * the pre-clip norms, the post-clip norms of the gradient the update uses
 * and the factors, all in the rule's order, as the clipper knows them
 * (clipnn_step_record says what each is for every rule). */
typedef struct {
    double *pre, *post, *factor;
} clipnn_group_report;

/* DP-SGD per-example clipping (src/clip/per_sample.c). */
clipnn_status clipnn_clip_rule_per_sample(clipnn_clipper *c, clip_step *s);
/* CLIPNN_OK when the model's workspace holds what per-sample clipping reads
 * (a clipnn_loss_grad with parameter gradients, not clipped yet), else
 * CLIPNN_ERR_STATE. */
clipnn_status clipnn_clip_per_sample_ready(const clipnn_model *m);

/* A logical DP-SGD step over several physical batches (src/clip/per_sample.c).
 * accumulate, after each physical batch's clipnn_loss_grad: adds the batch's
 * unclipped per-example gradients to pre_sum and its clipped ones to sum
 * ([n_params] each; first: the step's first physical batch, which sets the
 * sums instead of adding to them), *n_clipped the examples it clipped (no
 * noise). finish, once (the sums zero for a step that drew no example):
 * the gradient block becomes (sum + Gaussian noise of std sigma C per
 * entry) / denom, from the clipper's noise RNG, with the step's record and
 * the clipper's counts; a step whose unclipped gradient or loss (loss_finite
 * 0) was not finite goes to the non-finite policy (error: NONFINITE, nothing
 * written; skip, and random, whose step would not be private: rec->skipped,
 * nothing written). */
clipnn_status clipnn_clip_per_sample_accumulate(clipnn_clipper *c, clipnn_model *m, int first, double *pre_sum,
                                                double *sum, size_t *n_clipped);
clipnn_status clipnn_clip_per_sample_finish(clipnn_clipper *c, clipnn_model *m, const double *pre_sum,
                                            const double *sum, double denom, int loss_finite, int clipped,
                                            clipnn_clip_record *rec);
/* The same for a logical batch that is one physical batch (of batch
 * examples), without the sums: only, after its clipnn_loss_grad, clips the
 * gradient block in place and gives the unclipped sum's norm; finish_only
 * as finish, the clipped sum being batch times the gradient block. */
clipnn_status clipnn_clip_per_sample_only(clipnn_clipper *c, clipnn_model *m, double *pre_norm, size_t *n_clipped);
clipnn_status clipnn_clip_per_sample_finish_only(clipnn_clipper *c, clipnn_model *m, double pre_norm, double batch,
                                                 double denom, int loss_finite, int clipped,
                                                 clipnn_clip_record *rec);

/* The rules of src/clip/modern.c. */
clipnn_status clipnn_clip_rule_adagc(clipnn_clipper *c, clip_step *s);
clipnn_status clipnn_clip_rule_spam(clipnn_clipper *c, clip_step *s);
clipnn_status clipnn_clip_rule_acclip(clipnn_clipper *c, clip_step *s);
clipnn_status clipnn_clip_rule_nsgdm(clipnn_clipper *c, clip_step *s);
/* Their state: allocation at create (0 or NOMEM's status), bytes of the
 * CLIP section after the common part, save / load of those bytes. */
clipnn_status clipnn_clip_modern_alloc(clipnn_clipper *c);
void clipnn_clip_modern_free(clipnn_clipper *c);
size_t clipnn_clip_modern_state_size(const clipnn_clipper *c);
void clipnn_clip_modern_state_save(const clipnn_clipper *c, unsigned char *p);
void clipnn_clip_modern_state_load(clipnn_clipper *c, const unsigned char *p);
/* Pascanu's random step in place of g ([n_params]): a Gaussian direction
 * of 2-norm c->o.random_step from the noise generator; fills the groups'
 * post-clip accumulations and s->post. */
void clipnn_clip_random_step(clipnn_clipper *c, clip_step *s);
/* Per-group factors in c->group_scale applied (src/clip/clip.c). */
void clipnn_clip_apply_groups(clipnn_clipper *c, clip_step *s);
/* A global factor <= 1 applied or left to the optimizer (src/clip/clip.c). */
void clipnn_clip_apply_global(clipnn_clipper *c, clip_step *s, double factor);

/* The auto-lambda record of a CLIP section (src/clip/state.c): 1 and its
 * values when present, else 0. */
int clipnn_clip_state_auto_lambda(const void *buf, size_t len, double *lambda, double *quantile, uint64_t *steps);

/* Percentile q in [0, 100] of v[n] (n >= 1), numpy's linear interpolation;
 * v is reordered (src/clip/clip.c). */
double clipnn_percentile(double *v, size_t n, double q);


/* The clipping step of clipnn_train (src/clip/clip.c): clipnn_clipper_apply
 * with fuse = 1 on a gradient block that is exactly what the last
 * clipnn_loss_grad_fused produced, with the unit norms that backward
 * computed in the rule's order (grad_acc, [n_units]: m->row_acc after
 * unit_norm_order = clipnn_clipper_norm_order; NULL: read the gradient),
 * theta's unit sums of squares from the last update (theta_acc, or NULL
 * when theta changed since) and per-unit factors left in unit_scale
 * ([n_units]). groups (may be NULL) receives the per-group telemetry: the
 * gradient block itself may be left unscaled or unformed, so its norms
 * after the step are not the clipped ones. */
clipnn_status clipnn_clipper_apply_train(clipnn_clipper *c, clipnn_model *m, double precomputed_norm,
                                         const double *grad_acc, const double *theta_acc, double *unit_scale,
                                         double *grad_scale, const clipnn_group_report *groups,
                                         clipnn_clip_record *rec);
/* Per-sample clipping after a backward that left only the deltas: skip
 * the pre-clip norms (NaN in the record; the non-finite policy judges the
 * per-example norms), which cost Gram matrices of every layer's rows. */
void clipnn_clipper_skip_unformed_pre(clipnn_clipper *c, int skip);
/* The norm order the clipper's rule reads (2 for the Euclidean rules). */
double clipnn_clipper_norm_order(const clipnn_clipper *c);
/* The rule reads ||theta|| unit by unit (rows of W, biases): the update can
 * sum theta's squares while it writes theta (clipnn_optimizer_step_units). */
int clipnn_clipper_reads_theta_units(const clipnn_clipper *c);
/* The rule reads only 2-norms of units and acts through unit factors, never
 * through the gradient's entries: a batch-of-one backward may leave
 * dW = d a^T unformed (clipnn_fused_opts.lazy_rank1). */
int clipnn_clipper_reads_unit_norms_only(const clipnn_clipper *c);

#endif
