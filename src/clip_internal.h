/* The clipper's insides, shared by src/clip.c (the rules and the step),
 * src/clip_per_sample.c (DP-SGD) and src/clip_state.c (the CLIP section). */
#ifndef CLIPNN_CLIP_INTERNAL_H
#define CLIPNN_CLIP_INTERNAL_H

#include "internal.h"

struct clipnn_clipper {
    clipnn_clip_options o;
    size_t n_params, n_groups;
    double *group_acc;   /* [n_groups] pre-clip accumulations (order of the rule) */
    double *group_scale; /* [n_groups] factors of per-group rules */
    float *theta0;       /* [n_params] projection centre theta(0), or NULL */
    double *history;     /* [history_length] AutoClip ring of pre-clip norms */
    double *scratch;     /* [history_length] percentile selection */
    size_t hist_count, hist_pos;
    double z_mean, z_var; /* ZClip EMAs (Welford sums during the warm-up) */
    uint64_t z_seen;
    clipnn_rng noise;     /* DP-SGD noise */
    double *sample_norm;  /* [sample_cap] per-example norms */
    size_t sample_cap;
    uint64_t n_steps, n_clipped, n_skipped;
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
} clip_step;

typedef clipnn_status (*clip_rule_fn)(clipnn_clipper *c, clip_step *s);

/* DP-SGD per-example clipping (src/clip_per_sample.c). */
clipnn_status clipnn_clip_rule_per_sample(clipnn_clipper *c, clip_step *s);

#endif
