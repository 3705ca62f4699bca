/*
 * clipnn: clipped stochastic gradient descent for multilayer perceptrons,
 * input optimization, and diagnosis of zero / vanishing / exploding gradients.
 *
 * One public header. Handles are opaque; option structs are filled by their
 * *_default() constructor and then edited field by field. Every fallible
 * function returns a clipnn_status; clipnn_last_error() gives a one-line
 * explanation (naming the file and the problem where there is one) for the
 * last failure on the calling thread. The library never exits and never
 * prints unless a log callback is installed.
 *
 * Conventions (PyTorch's unless a formula of the SPEC says otherwise):
 *   - a dense layer computes z = a W^T + b with W stored row-major as
 *     [out][in] (row i = the incoming weights of output unit i), like
 *     torch.nn.Linear;
 *   - all parameters live in one contiguous float block, all gradients in
 *     another of the same layout: for each layer, W then b;
 *   - losses are means over the batch (MSE: over all elements);
 *   - targets are floats: class indices for CLIPNN_LOSS_XENT and
 *     CLIPNN_LOSS_MARGIN ([batch]), values for MSE and BCE ([batch][n_out]).
 */
#ifndef CLIPNN_H
#define CLIPNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLIPNN_VERSION_MAJOR 0
#define CLIPNN_VERSION_MINOR 1
#define CLIPNN_VERSION_PATCH 0

/* ------------------------------------------------------------------ status */

typedef enum {
    CLIPNN_OK = 0,
    CLIPNN_ERR_INVALID_ARG, /* an argument or option is out of its domain */
    CLIPNN_ERR_NOMEM,       /* allocation failed */
    CLIPNN_ERR_OVERFLOW,    /* a size computation would overflow */
    CLIPNN_ERR_IO,          /* a file could not be opened, read or written */
    CLIPNN_ERR_FORMAT,      /* a file is not of the expected format */
    CLIPNN_ERR_TRUNCATED,   /* a file ended early */
    CLIPNN_ERR_CHECKSUM,    /* a file's checksum does not match */
    CLIPNN_ERR_SHAPE,       /* shapes do not agree */
    CLIPNN_ERR_NONFINITE,   /* NaN or Inf met where it is not allowed */
    CLIPNN_ERR_UNSUPPORTED, /* valid request this build cannot serve */
    CLIPNN_ERR_STATE,       /* call made in the wrong state (e.g. batch > reserved) */
    CLIPNN_STATUS_COUNT
} clipnn_status;

const char *clipnn_strerror(clipnn_status status);
/* Detail of the last failure on this thread, e.g.
 * "data.csv: line 12, column 3: not a number: 'abc'". Never NULL. */
const char *clipnn_last_error(void);

/* Optional log sink for messages the library wants to tell (level 0 = info,
 * 1 = warning). NULL (the default) keeps the library silent. */
typedef void (*clipnn_log_fn)(int level, const char *message, void *user);
void clipnn_set_log(clipnn_log_fn fn, void *user);

/* Number of threads of the library's parallel passes (BLAS runs on one
 * slice per thread). n <= 0: one per online processor; at most
 * CLIPNN_MAX_THREADS. The default is 1. Results are bit-identical for a
 * given thread count. */
#define CLIPNN_MAX_THREADS 256
void clipnn_set_threads(int n);
int clipnn_get_threads(void);
const char *clipnn_blas_name(void); /* "openblas", "netlib" ... */

/* Number of heap allocations the library has made since start. Lets a
 * caller (and the tests) show that training steps allocate nothing. */
uint64_t clipnn_allocation_count(void);

/* ----------------------------------------------------------------- models */

typedef enum {
    CLIPNN_ACT_IDENTITY = 0,
    CLIPNN_ACT_SIGMOID,
    CLIPNN_ACT_TANH,
    CLIPNN_ACT_GELU, /* exact erf form, torch.nn.GELU() */
    CLIPNN_ACT_SOFTPLUS,
    CLIPNN_ACT_RELU,
    CLIPNN_ACT_COUNT
} clipnn_act;

const char *clipnn_act_name(clipnn_act act);
clipnn_status clipnn_act_parse(const char *name, clipnn_act *out);

typedef enum {
    CLIPNN_LOSS_MSE = 0, /* mean over all elements of (z - y)^2 (paper eq. 4) */
    CLIPNN_LOSS_XENT,    /* softmax cross-entropy on logits (eq. 5/6) */
    CLIPNN_LOSS_BCE,     /* sigmoid binary cross-entropy on logits */
    CLIPNN_LOSS_MARGIN,  /* CW margin max(z_y - max_{i!=y} z_i + kappa, 0) */
    CLIPNN_LOSS_COUNT
} clipnn_loss;

const char *clipnn_loss_name(clipnn_loss loss);
clipnn_status clipnn_loss_parse(const char *name, clipnn_loss *out);

typedef enum {
    CLIPNN_INIT_XAVIER = 0, /* Glorot uniform, bias 0 */
    CLIPNN_INIT_HE,         /* Kaiming normal (fan_in), bias 0 */
    CLIPNN_INIT_TORCH,      /* torch.nn.Linear default: U(+-1/sqrt(fan_in)) */
    CLIPNN_INIT_COUNT
} clipnn_init;

typedef struct clipnn_model clipnn_model;

/* widths[l] is the output width of layer l; acts[l] its activation. */
clipnn_status clipnn_model_create(clipnn_model **out, size_t n_inputs, size_t n_layers,
                                  const size_t *widths, const clipnn_act *acts);
void clipnn_model_free(clipnn_model *m);
/* Deep copy (parameters, not gradients or workspace). */
clipnn_status clipnn_model_clone(const clipnn_model *m, clipnn_model **out);

clipnn_status clipnn_model_init(clipnn_model *m, clipnn_init init, uint64_t seed);

size_t clipnn_model_n_inputs(const clipnn_model *m);
size_t clipnn_model_n_outputs(const clipnn_model *m);
size_t clipnn_model_n_layers(const clipnn_model *m);
size_t clipnn_model_layer_width(const clipnn_model *m, size_t layer);
clipnn_act clipnn_model_layer_act(const clipnn_model *m, size_t layer);
size_t clipnn_model_n_params(const clipnn_model *m);
float *clipnn_model_params(clipnn_model *m); /* [n_params] */
float *clipnn_model_grads(clipnn_model *m);  /* [n_params], same layout */

/* Parameter groups: one per layer tensor (W of layer l is group 2l, b is
 * group 2l+1). A unit is a row of W (rows x cols = out x in); a bias is one
 * unit of length out (rows = 1). */
typedef struct {
    size_t offset; /* into the params / grads block */
    size_t size;
    size_t rows, cols;
    size_t layer;
    int is_bias;
} clipnn_group;

size_t clipnn_model_n_groups(const clipnn_model *m);
clipnn_group clipnn_model_group(const clipnn_model *m, size_t index);

/* Size activation buffers for batches up to max_batch. Called once; training
 * steps never allocate. Forward/backward with a larger batch fail with
 * CLIPNN_ERR_STATE. */
clipnn_status clipnn_model_reserve(clipnn_model *m, size_t max_batch);

/* x: [batch][n_inputs]. *out points into the model's workspace:
 * [batch][n_outputs] raw outputs (logits), valid until the next call. */
clipnn_status clipnn_forward(clipnn_model *m, const float *x, size_t batch, const float **out);

typedef struct {
    clipnn_loss loss;
    double kappa;    /* CW margin */
    int want_params; /* fill the gradient block (default 1) */
} clipnn_loss_options;
clipnn_loss_options clipnn_loss_options_default(void);

/* Forward, loss and backward. Gradients of the batch-mean loss go to the
 * gradient block (overwritten, not accumulated); dx, when not NULL, receives
 * d(mean loss)/dx, [batch][n_inputs]. loss_out may be NULL. */
clipnn_status clipnn_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                               const float *y, size_t batch, double *loss_out, float *dx);

/* The same computation in double precision with plain loops (no BLAS): the
 * oracle for tests and the diagnosis. grad: [n_params] or NULL; dx:
 * [batch][n_inputs] or NULL; logits: [batch][n_outputs] or NULL. Parameters
 * are taken from the model (or from params_override when not NULL). */
clipnn_status clipnn_reference_loss_grad(const clipnn_model *m, const double *params_override,
                                         const clipnn_loss_options *lo, const double *x,
                                         const double *y, size_t batch, double *loss_out,
                                         double *logits, double *grad, double *dx);

/* Per-example losses of the last clipnn_loss_grad (batch entries). */
const float *clipnn_model_last_losses(const clipnn_model *m);

/* ----------------------------------------------------------------- norms */

/* p-norm of a flat vector accumulated in double. p >= 1; p = INFINITY for the
 * max norm. A NaN anywhere gives NaN, an Inf gives Inf. */
double clipnn_norm(const float *v, size_t n, double p);

/* Phase one of two-phase clipping: per-group norms into per_group
 * ([n_groups], may be NULL) and the total norm over all groups into *total
 * (may be NULL). Same semantics as torch.nn.utils.get_total_norm. */
clipnn_status clipnn_group_norms(const clipnn_model *m, const float *g, double p,
                                 double *per_group, double *total);

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
    CLIPNN_CLIP_PER_SAMPLE,     /* DP-SGD per-example clipping */
    CLIPNN_CLIP_COUNT
} clipnn_clip_rule;

const char *clipnn_clip_rule_name(clipnn_clip_rule rule);
clipnn_status clipnn_clip_rule_parse(const char *name, clipnn_clip_rule *out);

typedef enum {
    CLIPNN_NONFINITE_ERROR = 0, /* status, parameters untouched */
    CLIPNN_NONFINITE_SKIP,      /* no update, counted */
    CLIPNN_NONFINITE_PROPAGATE  /* what PyTorch does by default */
} clipnn_nonfinite;

typedef enum { CLIPNN_PROJECT_BALL = 0, CLIPNN_PROJECT_BOX } clipnn_project_kind;

typedef struct {
    clipnn_clip_rule rule;
    double lambda; /* threshold of norm rules; factor of adaptive rules */
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
    double noise_multiplier; /* sigma; noise std = sigma * lambda */
    uint64_t noise_seed;
} clipnn_clip_options;
clipnn_clip_options clipnn_clip_options_default(void);

/* What clipping did in one step (SPEC section 2). */
typedef struct {
    double pre_norm;   /* global norm of g before clipping (order p) */
    double post_norm;  /* after */
    double factor;     /* c(t) >= 1 for global rules; pre/post otherwise */
    double theta_norm; /* ||theta|| (order p) before the step when the rule reads it, else NaN */
    int clipped;       /* any part of g was changed */
    int skipped;       /* update dropped (non-finite policy skip) */
    int nonfinite;     /* pre-clip norm was not finite */
    uint64_t n_steps, n_clipped, n_skipped; /* running counts */
} clipnn_clip_record;

typedef struct clipnn_clipper clipnn_clipper;

clipnn_status clipnn_clipper_create(clipnn_clipper **out, const clipnn_model *m,
                                    const clipnn_clip_options *opts);
void clipnn_clipper_free(clipnn_clipper *c);
const clipnn_clip_options *clipnn_clipper_options(const clipnn_clipper *c);

/* Clip the model's gradient block in place (reads the parameters for
 * adaptive rules). On return *grad_scale holds a factor the optimizer must
 * still multiply the gradient by: 1 unless the rule is global and fusion
 * was asked (fuse != 0), in which case the gradient is left unscaled and the
 * factor 1/c is returned to be folded into the update. precomputed_norm,
 * when >= 0, is used as the global pre-clip norm instead of computing it
 * (e.g. a norm reduced elsewhere); NaN marks a step known to be non-finite
 * (say its loss overflowed while the gradient stayed finite), so that the
 * non-finite policy decides it; any negative value: compute the norm.
 * per_group_norms, when not NULL, receives
 * the pre-clip norm of each group ([n_groups]). Under the error policy a
 * non-finite norm returns CLIPNN_ERR_NONFINITE; under skip, rec->skipped is
 * set and the caller must not update. */
clipnn_status clipnn_clipper_apply(clipnn_clipper *c, clipnn_model *m, double precomputed_norm,
                                   int fuse, double *grad_scale, double *per_group_norms,
                                   clipnn_clip_record *rec);

/* Rules that act after the update (projection): call after the optimizer.
 * rec (may be NULL) is the step's record, marked clipped when theta moved. */
clipnn_status clipnn_clipper_after_update(clipnn_clipper *c, clipnn_model *m, clipnn_clip_record *rec);

/* Per-example 2-norms of the gradient of the last clipnn_loss_grad
 * (norms: [batch]), from ||a_i||^2 ||delta_i||^2 per dense layer: the
 * per-example gradients are never formed (DP-SGD, Opacus). */
clipnn_status clipnn_per_example_grad_norms(const clipnn_model *m, double *norms);

/* DP-SGD clipping of materialised per-example gradients g: [n_examples][n]
 * (Optax per_example_global_norm_clip): sum[n] = sum_i g_i / max(1, ||g_i|| / C);
 * C = 0 zeroes every example, C = inf changes none. n_clipped may be NULL. */
clipnn_status clipnn_clip_per_example(const float *g, size_t n_examples, size_t n, double C, float *sum,
                                      size_t *n_clipped);

/* Phase two on its own: g *= scale. */
void clipnn_scale(float *g, size_t n, float scale);

/* ------------------------------------------------------------ optimizers */

typedef enum { CLIPNN_OPT_SGD = 0, CLIPNN_OPT_ADAM } clipnn_opt_kind;

typedef struct {
    clipnn_opt_kind kind;
    double momentum;     /* SGD heavy-ball coefficient (torch.optim.SGD) */
    int nesterov;
    double weight_decay; /* decoupled: theta -= lr * wd * theta */
    double beta1, beta2, adam_eps;
} clipnn_optim_options;
clipnn_optim_options clipnn_optim_options_default(void);

typedef struct clipnn_optimizer clipnn_optimizer;
clipnn_status clipnn_optimizer_create(clipnn_optimizer **out, size_t n_params,
                                      const clipnn_optim_options *opts);
void clipnn_optimizer_free(clipnn_optimizer *o);
/* theta -= lr * update(grad_scale * g). Eq. 10 with grad_scale = 1/c(t). */
clipnn_status clipnn_optimizer_step(clipnn_optimizer *o, float *params, const float *grads,
                                    double lr, double grad_scale);
uint64_t clipnn_optimizer_steps(const clipnn_optimizer *o);

/* ------------------------------------------------------------- schedules */

typedef enum {
    CLIPNN_SCHED_CONST = 0,
    CLIPNN_SCHED_RM,     /* a0 / (1 + t/t0)^p, 0.5 < p <= 1 (assumption A2) */
    CLIPNN_SCHED_STEP,   /* a0 * gamma^floor(t/every) */
    CLIPNN_SCHED_COSINE  /* a0 * (1 + cos(pi t / total)) / 2 */
} clipnn_sched_kind;

typedef struct {
    clipnn_sched_kind kind;
    double a0;
    double t0, power;     /* RM */
    uint64_t every;       /* step */
    double gamma;         /* step */
    uint64_t total_steps; /* cosine */
} clipnn_schedule;
clipnn_schedule clipnn_schedule_default(void); /* constant 0.1 */
/* Parses "const", "rm:T0,P", "step:EVERY,GAMMA", "cosine"; a0 and
 * total_steps are left to the caller. */
clipnn_status clipnn_schedule_parse(const char *text, clipnn_schedule *out);
/* a(t), t = 0, 1, 2, ... */
double clipnn_schedule_lr(const clipnn_schedule *s, uint64_t t);

/* --------------------------------------------------------------- datasets */

typedef struct clipnn_dataset clipnn_dataset;

/* Input scaling, fitted on the training part and applied to both parts.
 * STANDARDIZE: (x - mean) / std per feature (population std; a constant
 * feature becomes 0). UNIT: to [0, 1]: image sets divided by their
 * full-scale pixel value (digits 16, IDX 255), other sets min-max per
 * feature (test values may fall outside). AUTO: the set's own default:
 * digits and CSV standardize; IDX and Fashion-MNIST unit (/255); spirals
 * and teacher none (already of order 1). Measured on the digits with the
 * tool's defaults (tanh 64-10, 20 epochs, 8 splits): test accuracy
 * standardize 97.1% (95.8-98.6), unit 97.0% (96.4-97.8), none 94.3%. */
typedef enum {
    CLIPNN_SCALE_NONE = 0,
    CLIPNN_SCALE_STANDARDIZE,
    CLIPNN_SCALE_UNIT,
    CLIPNN_SCALE_AUTO
} clipnn_scaling;

typedef struct {
    uint64_t seed;          /* synthetic sets and splits (1) */
    double test_fraction;   /* in [0, 1): split for sets without a test part (0.2) */
    clipnn_scaling scaling; /* fitted on train, applied to both (AUTO) */
    long target_column;     /* CSV: 0-based, negative counts from the end; -1 = last (default) */
    size_t synthetic_n;     /* spirals / teacher size (default 2000) */
} clipnn_data_options;
clipnn_data_options clipnn_data_options_default(void);

/* spec: "digits" | "fashion-mnist[:DIR]" | "idx:IMAGES,LABELS[,TIMAGES,TLABELS]"
 *     | "csv:PATH[,target=COLUMN|NAME][,task=classification|regression]"
 *     (COLUMN a number, negative from the end; NAME a cell of the header line)
 *     | "spirals" | "teacher".
 *   digits: built in (no file), 1797 rows, 64 pixels 0..16 (8x8), 10 classes.
 *   fashion-mnist: the four IDX files (.gz or plain) in DIR, default
 *     /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist);
 *     60000 train, 10000 test rows of 784 pixels (28x28), 10 classes.
 *   idx: MNIST-format files, plain or gzip; labels are classes 0..max.
 *   csv: numbers separated by commas, semicolons or blanks; blank lines and
 *     lines starting with '#' are skipped; the first line is a header, and
 *     skipped, when any of its cells is not a number. Targets are classes
 *     (remapped to 0..K-1 in increasing order) when they are all integers
 *     with at most 100 distinct values and at least two rows per value,
 *     else one regression target; task= forces either.
 *   spirals: two interleaved spirals, 2 features, 2 classes, synthetic_n rows.
 *   teacher: regression, 10 N(0,1) inputs, target = a random 10-32-1 tanh
 *     MLP's output (no noise), synthetic_n rows.
 * Sets without a test part (all but fashion-mnist and four-file idx) are
 * split by a shuffle seeded with opts->seed: round(n * test_fraction) rows
 * (at least one when the fraction is > 0) go to the test part, both parts
 * keep the file order; the split is the same whether or not test is asked
 * for. test_fraction 0 gives no test part (*test = NULL). opts may be NULL
 * (defaults). *test may be NULL when test is NULL. A set's name (in
 * messages) is its file path (the images' for IDX) or its spec name. */
clipnn_status clipnn_dataset_load(const char *spec, const clipnn_data_options *opts,
                                  clipnn_dataset **train, clipnn_dataset **test);
/* One file, unscaled and unsplit. classification < 0: decide from the
 * targets as above; 0: regression; > 0: classes. */
clipnn_status clipnn_dataset_load_csv(const char *path, long target_column, int classification,
                                      clipnn_dataset **out);
/* Raw pixel values 0..255; image shape from the header. */
clipnn_status clipnn_dataset_load_idx(const char *images, const char *labels,
                                      clipnn_dataset **out);
/* From caller arrays (copied). n_classes = 0 means regression with n_targets
 * targets per row; otherwise y holds class indices. */
clipnn_status clipnn_dataset_from_arrays(const float *x, const float *y, size_t n, size_t dim,
                                         size_t n_classes, size_t n_targets,
                                         clipnn_dataset **out);
void clipnn_dataset_free(clipnn_dataset *d);

size_t clipnn_dataset_n(const clipnn_dataset *d);
size_t clipnn_dataset_dim(const clipnn_dataset *d);
size_t clipnn_dataset_n_classes(const clipnn_dataset *d); /* 0 for regression */
size_t clipnn_dataset_n_targets(const clipnn_dataset *d); /* 1 for classification */
/* Image geometry when known (height, width, channels), else 0. */
void clipnn_dataset_image_shape(const clipnn_dataset *d, size_t *h, size_t *w, size_t *c);
const float *clipnn_dataset_x(const clipnn_dataset *d); /* [n][dim] */
const float *clipnn_dataset_y(const clipnn_dataset *d); /* [n][n_targets] */
const char *clipnn_dataset_name(const clipnn_dataset *d);

/* ----------------------------------------------------------------- training */

/* One row of the per-step record (SPEC sections 2 and 3). */
typedef struct {
    uint64_t step;
    double lr, sum_lr, sum_lr2;
    double loss;
    clipnn_clip_record clip;
    double dist_from_start; /* ||theta(t) - theta(0)|| after the step */
    double det_bound;       /* lambda * sum a(t) (classic clipping) */
    double lemma1_bound;    /* 2 exp(-2 M^2 / (sum a^2 lambda^2)), when M > 0 */
    const double *group_norms; /* [n_groups] pre-clip, when asked, else NULL */
} clipnn_step_record;

typedef struct {
    size_t epoch, n_epochs;
    double train_loss, test_loss, test_accuracy, clipped_fraction, seconds, samples_per_second;
} clipnn_epoch_record;

typedef struct {
    clipnn_optim_options optim;
    clipnn_schedule schedule;
    clipnn_clip_options clip;
    clipnn_loss_options loss;
    size_t batch;
    size_t epochs;
    uint64_t steps;    /* when > 0, overrides epochs */
    int replacement;   /* draw minibatches with replacement */
    uint64_t seed;
    int log_groups;    /* fill clipnn_step_record.group_norms */
    double stability_m; /* M of Lemma 1 (0: off) */
    int expected_grad; /* evaluate H(theta) and the mean gradient at the end */
    void (*on_step)(const clipnn_step_record *r, void *user);
    void (*on_epoch)(const clipnn_epoch_record *r, void *user);
    void *user;
    struct clipnn_train_state *state; /* resume from / save to (see checkpoints); NULL: none */
} clipnn_train_options;
clipnn_train_options clipnn_train_options_default(void);

typedef struct {
    uint64_t steps;
    double train_loss; /* mean over the last epoch's batches */
    double test_loss, test_accuracy;
    double seconds;
    int diverged;
    uint64_t diverged_step;
    double clipped_fraction;
    uint64_t skipped_steps;
    double max_dist_from_start;
    double expected_clipped_grad_norm; /* ||H(theta)||, when asked */
    double mean_grad_norm;             /* ||E g||, when asked */
} clipnn_train_result;

clipnn_status clipnn_train(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                           const clipnn_train_options *opts, clipnn_train_result *result);

/* Mean loss and accuracy (classification; accuracy NaN for regression). */
clipnn_status clipnn_evaluate(clipnn_model *m, const clipnn_dataset *d, const clipnn_loss_options *lo,
                              double *loss, double *accuracy);

/* ------------------------------------------------------------- checkpoints */

/* Magic, format version, architecture, parameters, CRC-32; written to a
 * temporary file, fsynced and renamed over path (an existing file at path is
 * left intact when anything fails). Layout: docs/formats.md. Loading refuses
 * a missing (IO), foreign (FORMAT), newer (UNSUPPORTED), truncated
 * (TRUNCATED), damaged (CHECKSUM) or inconsistent (FORMAT, SHAPE) file with
 * a message naming it. */
clipnn_status clipnn_model_save(const clipnn_model *m, const char *path);
clipnn_status clipnn_model_load(const char *path, clipnn_model **out);

/* Training state: everything besides the parameters that clipnn_train needs
 * to continue a run so that it follows the same trajectory, bit for bit, as
 * a run that was never interrupted: the step count, the minibatch RNG and
 * shuffle order, the optimizer's buffers, the clipper's state (histories,
 * EMAs, noise RNG), theta(0) and the running sums of the step record.
 * Give one to clipnn_train through clipnn_train_options.state: an empty
 * state starts a fresh run, a state that holds a run continues it (steps and
 * epochs then count the whole run, the part already done included, so the
 * same options finish the same run); when clipnn_train returns, the state
 * holds the run after its last step. A schedule whose length defaults to
 * the call's (cosine with total_steps 0) must be given the whole run's
 * total_steps when a run is split, or its first part follows a shorter
 * schedule. */
typedef struct clipnn_train_state clipnn_train_state;
clipnn_status clipnn_train_state_create(clipnn_train_state **out); /* empty */
void clipnn_train_state_free(clipnn_train_state *s);
uint64_t clipnn_train_state_steps(const clipnn_train_state *s); /* 0 when empty */

/* A checkpoint with the model and, when state is not NULL and holds a run,
 * the training state. */
clipnn_status clipnn_checkpoint_save(const char *path, const clipnn_model *m,
                                     const clipnn_train_state *state);
/* state may be NULL (the model only); otherwise *state receives the file's
 * training state, empty when the file holds none. */
clipnn_status clipnn_checkpoint_load(const char *path, clipnn_model **m,
                                     clipnn_train_state **state);

/* Optimizer state (step count, momentum or Adam moment buffers) as bytes,
 * little-endian, the OPTM section of docs/formats.md. state_save writes
 * exactly state_size bytes. state_load accepts only the state of an
 * optimizer of the same kind, buffers and parameter count, and leaves o
 * unchanged when it refuses. */
size_t clipnn_optimizer_state_size(const clipnn_optimizer *o);
void clipnn_optimizer_state_save(const clipnn_optimizer *o, void *buf);
clipnn_status clipnn_optimizer_state_load(clipnn_optimizer *o, const void *buf, size_t len);

/* The clipper's state (running counts, AutoClip history, ZClip EMAs, noise
 * RNG, theta(0) of the projection), the CLIP section; same contract as the
 * optimizer's (implemented in src/clip.c). */
size_t clipnn_clipper_state_size(const clipnn_clipper *c);
void clipnn_clipper_state_save(const clipnn_clipper *c, void *buf);
clipnn_status clipnn_clipper_state_load(clipnn_clipper *c, const void *buf, size_t len);

/* ------------------------------------------------------------------- files */

/* NumPy .npy (float32 little-endian, C order, 1 or 2 dimensions). cols == 0
 * means a 1-D array of rows elements, on writing and on reading; the data
 * then hold rows * max(cols, 1) floats (*data from clipnn_npy_read is
 * released with free()). Writing is atomic like checkpoints. Reading
 * refuses a missing (IO), foreign or malformed (FORMAT), truncated
 * (TRUNCATED), or other-dtype, Fortran-order or >2-D (UNSUPPORTED) file
 * with a message naming it. */
clipnn_status clipnn_npy_write(const char *path, const float *data, size_t rows, size_t cols);
clipnn_status clipnn_npy_read(const char *path, float **data, size_t *rows, size_t *cols);

/* ------------------------------------------------------ theory lab (src/lab*.c) */
/* @@lab-api */

/* Experiments that test the claims of the paper and the exercise (SPEC
 * section 4): each prints a table and one verdict line per claim,
 *   CLAIM <id>: HOLDS|FAILS|HOLDS UNDER <condition> (<deciding numbers>),
 * through the caller's write callback (nothing is printed without one), and
 * writes a CSV of its traces and an SVG plot per figure into out_dir when it
 * is set. docs/lab.md explains every claim and the bounds used. */
typedef void (*clipnn_lab_write_fn)(const char *text, void *user);

typedef struct {
    uint64_t seed;          /* every experiment is reproducible from it (default 1) */
    int quick;              /* reduced sizes: every claim still gets a verdict (tests) */
    const char *out_dir;    /* CSV + SVG files go here (must exist); NULL: none */
    const char *data_dir;   /* where breast_cancer.csv may be found; NULL or missing
                               file: the built-in digits are used instead */
    clipnn_lab_write_fn write; /* table and verdict text; NULL: silent */
    void *user;
} clipnn_lab_options;
clipnn_lab_options clipnn_lab_options_default(void);

size_t clipnn_lab_count(void);
const char *clipnn_lab_name(size_t index);    /* NULL past the end */
const char *clipnn_lab_summary(size_t index); /* one line */

typedef enum { CLIPNN_CLAIM_HOLDS = 0, CLIPNN_CLAIM_FAILS, CLIPNN_CLAIM_HOLDS_UNDER } clipnn_claim_verdict;
const char *clipnn_claim_verdict_name(clipnn_claim_verdict v); /* "HOLDS", "FAILS", "HOLDS UNDER" */

#define CLIPNN_LAB_MAX_CLAIMS 12
typedef struct {
    char id[32];
    clipnn_claim_verdict verdict;
    char condition[160]; /* for HOLDS UNDER, else "" */
    char numbers[480];   /* the measurements that decide it */
} clipnn_lab_claim;

typedef struct {
    size_t n_claims;
    clipnn_lab_claim claims[CLIPNN_LAB_MAX_CLAIMS];
    char data[96];  /* real data set used, "" when none */
    double seconds;
} clipnn_lab_result;

/* Runs experiment `name` (see clipnn_lab_name). result may be NULL. Fails
 * with INVALID_ARG for an unknown name, IO when out_dir cannot be written. */
clipnn_status clipnn_lab_run(const char *name, const clipnn_lab_options *opts,
                             clipnn_lab_result *result);

/* ------------------------------------ input optimization and attacks (src/inputopt.c, src/attack.c) */
/* @@inputopt-api */

/* What an input optimization or attack wants from the network. Every
 * objective is a value to MINIMIZE, per example:
 *   TARGET_CLASS, XENT    logsumexp(z) - z_t                          (>= 0)
 *   TARGET_CLASS, MARGIN  max(max_{i!=t} z_i - z_t + kappa, 0)        (0 once t leads by kappa)
 *   LEAVE_CLASS,  XENT    -(logsumexp(z) - z_y)   (the cross-entropy of the true class, maximized)
 *   LEAVE_CLASS,  MARGIN  max(z_y - max_{i!=y} z_i + kappa, 0)        (= CLIPNN_LOSS_MARGIN: 0 once
 *                                                                      another class leads by kappa)
 *   TARGET_OUTPUT, MSE    mean_j (z_j - v_j)^2                         (regression)
 *   TARGET_OUTPUT, BCE    mean_j of sigmoid cross-entropy on the logit z_j with target v_j
 *   MAXIMIZE_UNIT         -a   (a = activation of unit `unit` of layer `layer`, after its
 *                               activation function; layer = last layer: a logit)
 * The class t or y, or the vector v, comes per example in the y argument
 * (class indices as floats, [batch]; v: [batch][n_outputs]) as for
 * clipnn_loss_grad; MAXIMIZE_UNIT takes no y. */
typedef enum {
    CLIPNN_OBJ_TARGET_CLASS = 0,
    CLIPNN_OBJ_LEAVE_CLASS,
    CLIPNN_OBJ_TARGET_OUTPUT,
    CLIPNN_OBJ_MAXIMIZE_UNIT,
    CLIPNN_OBJ_COUNT
} clipnn_objective_kind;

typedef struct {
    clipnn_objective_kind kind;
    clipnn_loss loss;   /* XENT or MARGIN (class objectives), MSE or BCE (TARGET_OUTPUT) */
    double kappa;       /* margin confidence (default 0) */
    size_t layer, unit; /* MAXIMIZE_UNIT */
    double output_tol;  /* TARGET_OUTPUT is reached when the mean squared difference between
                           the prediction (z; sigmoid(z) for BCE) and v is <= output_tol (1e-4) */
} clipnn_objective;
clipnn_objective clipnn_objective_default(void); /* TARGET_CLASS, XENT */

/* Per-example objective values ([batch]) and, when dx is not NULL, the
 * gradient of each example's value with respect to its own input
 * ([batch][n_inputs], not divided by the batch), float32 path. reached
 * ([batch], may be NULL) receives 1 where the objective is met: the class
 * is the arg-max (with the margin at 0 for MARGIN), the output within
 * output_tol; never for MAXIMIZE_UNIT. */
clipnn_status clipnn_objective_grad(clipnn_model *m, const clipnn_objective *o, const float *x,
                                    const float *y, size_t batch, double *values, float *dx,
                                    int *reached);
/* The same for one example in double precision with plain loops: the
 * reference. logits ([n_outputs]) may be NULL. */
clipnn_status clipnn_objective_grad_d(const clipnn_model *m, const clipnn_objective *o,
                                      const double *x, const double *y, double *value, double *dx,
                                      double *logits);

/* Where the optimized input lives. The model sees (x - mean) / std feature
 * by feature (Foolbox's "preprocessing"), so that budgets and the box are
 * in the data's own units (pixels in [0, 1]) even for a model trained on
 * standardized inputs. mean and std NULL: the model sees x. */
typedef struct {
    double box_lo, box_hi; /* -INFINITY, INFINITY: no box */
    const float *mean, *std; /* [n_inputs] or NULL */
} clipnn_input_space;
clipnn_input_space clipnn_input_space_default(void); /* box [0, 1], no preprocessing */

typedef enum {
    CLIPNN_PARAM_PIXEL = 0, /* optimize x itself, projected onto the box after each step */
    CLIPNN_PARAM_TANH       /* optimize w with x = lo + (hi - lo) (tanh(w) + 1) / 2 (Carlini-Wagner) */
} clipnn_param;

typedef struct {
    size_t step;
    double value;     /* objective at this iterate */
    double grad_norm; /* 2-norm of the gradient in the optimized variable (x or w) */
    int reached;
} clipnn_inputopt_step;

typedef struct {
    clipnn_objective objective;
    clipnn_input_space space;
    clipnn_param param;
    size_t steps;          /* at most (default 1000) */
    double lr;             /* step size (default 0.1) */
    int normalize;         /* sign steps lr * sign(g): every coordinate moves by lr whatever the
                            * gradient's scale (default 1; 0: plain lr * g) */
    int backtrack;         /* a trial step that raises the objective is rejected and tried again from the
                            * last accepted iterate with half the step; accepted steps double it back up to
                            * lr (default 0: sign steps of a fixed lr reach targets faster on the piecewise-
                            * linear margin loss; 1 helps smooth objectives that need a precise end, such
                            * as a target output) */
    int stop_on_success;   /* default 1 */
    size_t stall_steps;    /* stop when the best value has not improved by ... (default 100) */
    double stall_tol;      /* ... more than stall_tol * (1 + |best|) over stall_steps steps (1e-6) */
    double grad_tol;       /* stop at once when the gradient norm is <= grad_tol (0: exactly zero) */
    void (*on_step)(const clipnn_inputopt_step *s, void *user);
    void *user;
} clipnn_inputopt_options;
clipnn_inputopt_options clipnn_inputopt_options_default(void);

typedef struct {
    size_t steps;          /* taken */
    int reached;           /* the kept iterate meets the objective */
    int stalled;           /* stopped by the stall rule or a zero gradient, not reached */
    double start_value, best_value;
    size_t best_step;
    double grad_norm;      /* at the last iterate */
} clipnn_inputopt_result;

/* Gradient descent on one input x ([n_inputs]): in, the start (inside the
 * box; with the tanh parametrization it is shrunk by 0.999999 before atanh
 * so that pixels at the bounds are not frozen); out, the best iterate seen
 * (a reached iterate beats one that is not; then the lower value). y: the
 * example's target as for clipnn_objective_grad (NULL for MAXIMIZE_UNIT). */
clipnn_status clipnn_optimize_input(clipnn_model *m, const clipnn_inputopt_options *o,
                                    const float *y, float *x, clipnn_inputopt_result *r);

typedef enum {
    CLIPNN_ATTACK_FGSM = 0,  /* one step x + eps sign(g) (Goodfellow et al. 2015) */
    CLIPNN_ATTACK_PGD_LINF,  /* Madry et al. 2018, steps along sign(g), projected on the L-inf ball */
    CLIPNN_ATTACK_PGD_L2,    /* steps along g / ||g||_2, projected on the L2 ball */
    CLIPNN_ATTACK_COUNT
} clipnn_attack_method;

const char *clipnn_attack_method_name(clipnn_attack_method m);
clipnn_status clipnn_attack_method_parse(const char *name, clipnn_attack_method *out);

/* One row of the per-step trace: means over the examples of the batch. */
typedef struct {
    size_t restart, step; /* step 0 = the start point */
    double loss;          /* the attack loss (cross-entropy or margin of the class, as maximized/minimized) */
    double grad_norm;     /* mean 2-norm of the input gradient */
    double success_rate;  /* fraction of the batch's examples already fooled at this iterate */
    size_t batch_index, batch_size;
    size_t first_example;       /* index of the batch's first example in the attacked set */
    /* per example of the batch ([batch_size]), valid during the call: */
    const double *example_loss;      /* the attack objective */
    const double *example_grad_norm; /* 2-norm of its input gradient */
    const int *example_fooled;       /* the iterate meets the attack's goal */
} clipnn_attack_step;

typedef struct {
    clipnn_attack_method method;
    double eps;            /* budget (L-inf or L2 radius) */
    double step;           /* step size; 0: max(2.5 eps / steps (Madry et al.), eps / 4) */
    size_t steps;          /* PGD iterations (default 40); FGSM ignores it */
    int random_start;      /* uniform in the L-inf ball, or uniform in the L2 ball */
    size_t restarts;       /* runs per example, the best one kept (default 1) */
    int targeted;          /* 1: reach target_class; 0: leave the true class */
    size_t target_class;
    clipnn_loss loss;      /* XENT or MARGIN */
    double kappa;
    clipnn_input_space space;
    int keep_last;         /* 1: return the last iterate (torchattacks); 0: the best (default) */
    size_t batch;          /* examples per forward pass (default 256) */
    uint64_t seed;
    void (*on_step)(const clipnn_attack_step *s, void *user);
    void *user;
} clipnn_attack_options;
clipnn_attack_options clipnn_attack_options_default(void);

typedef struct {
    size_t n;               /* examples attacked */
    size_t clean_correct;   /* classified right before the attack */
    size_t robust_correct;  /* classified right after it */
    size_t eligible;        /* examples the attack could succeed on: clean-correct ones
                               (untargeted), those whose label is not the target (targeted) */
    size_t successes;       /* eligible examples where it did */
    size_t zero_grad;       /* eligible, failed, and the input gradient was exactly 0 at the end */
    double clean_accuracy, robust_accuracy, success_rate;
    double mean_linf, mean_l2; /* distortion of the successful adversarial inputs (NaN: none) */
} clipnn_attack_result;

/* Attacks the n inputs x ([n][n_inputs], inside the box) with true labels
 * ([n], class indices). adv ([n][n_inputs], may be NULL) receives the
 * adversarial inputs; examples the attack does not touch (misclassified
 * ones for an untargeted attack) are copied unchanged. */
clipnn_status clipnn_attack(clipnn_model *m, const clipnn_attack_options *o, const float *x,
                            const float *labels, size_t n, float *adv, clipnn_attack_result *r);

/* Projections used by the attacks (exposed for tests and callers): delta
 * onto the L-inf or L2 ball of radius eps, then x0 + delta onto the box.
 * x and x0: [n]; x is overwritten. p = INFINITY or 2. */
void clipnn_project_budget(float *x, const float *x0, size_t n, double p, double eps, double lo,
                           double hi);

/* ------------------------------------------------------ diagnosis (src/diagnose.c) */
/* @@diagnose-api */

/* Why is the gradient zero? (SPEC section 6.) A diagnosis runs a fixed set
 * of tests at one point and reports every cause that applies, each with the
 * test that found it, its numbers and a remedy. */
typedef enum {
    CLIPNN_CAUSE_LOCAL_MINIMUM = 0,
    CLIPNN_CAUSE_SADDLE,
    CLIPNN_CAUSE_SATURATION,
    CLIPNN_CAUSE_PRECISION,
    CLIPNN_CAUSE_PARAMETRIZATION, /* box, tanh parametrization, dead ReLUs, ignored directions */
    CLIPNN_CAUSE_MASKING,         /* gradient-masking symptoms of an attack */
    CLIPNN_CAUSE_COUNT
} clipnn_cause;
const char *clipnn_cause_name(clipnn_cause c); /* "local-minimum", "saddle", ... */

#define CLIPNN_DIAG_MAX 24

typedef struct {
    clipnn_cause cause;
    char test[64];     /* the test that found it, e.g. "lanczos-curvature" */
    char numbers[320]; /* what it measured */
    char remedy[256];
} clipnn_finding;

typedef struct {
    char test[64];
    int passed;        /* 1: nothing wrong found by this test */
    char numbers[320];
} clipnn_check;

typedef struct {
    int stalled;             /* the gradient the optimizer sees is tiny (<= grad_tol) */
    int stationary;          /* the double reference gradient (in x) is tiny as well */
    int at_target;           /* the objective is met (model objectives) or within loss_tol of target */
    double value, value_ref; /* objective, float32 and double */
    double grad_norm;        /* the optimizer's gradient (float32, analytic or finite differences, in
                                the optimized variable, projected on the box) */
    double grad_norm_raw;    /* the same before projection */
    double grad_norm_ref;    /* double reference gradient in x */
    double min_curvature, max_curvature; /* extreme curvatures found (NaN: not probed) */
    double escape_decrease, escape_step; /* along the most negative curvature direction */
    size_t n_findings, n_checks;
    clipnn_finding findings[CLIPNN_DIAG_MAX];
    clipnn_check checks[CLIPNN_DIAG_MAX];
} clipnn_diagnosis;

/* 1 when d names cause c. */
int clipnn_diagnosis_has(const clipnn_diagnosis *d, clipnn_cause c);

/* A generic objective, for functions a model does not express exactly
 * (x1^2 - x2^2, the blog's quadratic): value and gradient in double (the
 * reference, required) and, optionally, in float32 as the optimizer
 * computes it (NULL: the double one rounded to float). */
typedef struct {
    size_t dim;
    double (*eval_d)(const double *x, double *grad, void *user);
    double (*eval_f)(const float *x, float *grad, void *user);
    void *user;
} clipnn_objective_fn;

typedef struct {
    clipnn_input_space space; /* box and preprocessing (default: no box) */
    clipnn_param param;       /* TANH: the point given is w, x = lo + (hi - lo)(tanh w + 1)/2 */
    double fd_step;           /* > 0: the optimizer's gradient is a float32 central difference
                                 with this step (the blog's 1e-7); 0: analytic */
    double grad_tol;          /* a gradient 2-norm at or below this is "tiny" (1e-6) */
    double target;            /* objective value that counts as reached (NaN: unknown;
                                 model objectives use their own rule) */
    double loss_tol;          /* value - target <= loss_tol counts as at the target (1e-6) */
    double curv_tol;          /* curvature beyond +-curv_tol is "non-zero" (1e-6) */
    size_t lanczos_steps;     /* Lanczos iterations on Hessian-vector products (30) */
    uint64_t seed;
} clipnn_diagnose_options;
clipnn_diagnose_options clipnn_diagnose_options_default(void);

/* Diagnose a generic objective at point (x, or w for TANH; [dim]). */
clipnn_status clipnn_diagnose_fn(const clipnn_objective_fn *f, const float *point,
                                 const clipnn_diagnose_options *o, clipnn_diagnosis *d);
/* Diagnose a model objective at point ([n_inputs]) for one example with
 * target y (as for clipnn_objective_grad): the generic tests plus the
 * model's own (saturated units, softmax margin, probability outputs,
 * logit shift, dead ReLUs, directions the model ignores, where in the
 * network the backward signal dies). */
clipnn_status clipnn_diagnose_model(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                    const float *point, const clipnn_diagnose_options *o,
                                    clipnn_diagnosis *d);

/* Gradient-masking checks of an attack over an epsilon grid (Athalye et al.
 * 2018, Carlini et al. 2019): robust[i], the fraction of examples the
 * iterative attack leaves unbroken at eps[i] (robust accuracy; for a
 * targeted attack the fraction not taken to the target), one_step[i] the
 * same for the one-step attack (eps increasing; one_step may be NULL), and
 * the success rate of an unbounded attack (NaN: not run).
 * Adds a MASKING finding for: iterative weaker than one-step, robust
 * accuracy rising with epsilon, unbounded attack below 100%. */
void clipnn_diagnose_masking(const double *eps, const double *robust, const double *one_step,
                             size_t n_eps, double unbounded_success, clipnn_diagnosis *d);

/* Empty diagnosis (no findings, no checks, NaN numbers). */
void clipnn_diagnosis_init(clipnn_diagnosis *d);

/* Built-in constructed cases, one per cause (src/diagnose_demo.c): each
 * builds its objective (a small hand-set model, or an exact function),
 * runs the optimization that stalls, and diagnoses where it stopped.
 * Names: local-minimum, saddle, saturation, bce-no-saturation, precision,
 * softmax-margin, box, tanh-param, dead-relu, ignored-directions. */
typedef struct {
    char description[320]; /* the construction */
    char run[320];         /* what the optimization did before the diagnosis */
    clipnn_cause expected; /* the cause the case shows (CLIPNN_CAUSE_COUNT: none, it does not stall) */
    clipnn_cause also;     /* a second cause that applies as well, else CLIPNN_CAUSE_COUNT */
} clipnn_demo_info;
size_t clipnn_diagnose_demo_count(void);
const char *clipnn_diagnose_demo_name(size_t i); /* NULL past the end */
clipnn_status clipnn_diagnose_demo(const char *name, clipnn_diagnosis *d, clipnn_demo_info *info);

/* ------------------------------------------------------------ images (src/png.c) */
/* @@png-api */

/* 8-bit PNG files through libpng. rgb: [h][w][3]; gray: [h][w]. */
clipnn_status clipnn_png_write_rgb(const char *path, const unsigned char *rgb, size_t h, size_t w);
/* A float image [h][w] shown in gray, lo -> black, hi -> white, each pixel
 * drawn as a zoom x zoom block. */
clipnn_status clipnn_png_write_gray(const char *path, const float *img, size_t h, size_t w,
                                    double lo, double hi, size_t zoom);
/* Diverging colour map for signed values: -amp blue, 0 white, +amp red
 * (values beyond clamp). */
void clipnn_colour_diverging(double v, double amp, unsigned char rgb[3]);
/* A perturbation [h][w] in the diverging map, zoomed, with a colour bar
 * (from -amp on the left to +amp on the right) under the image. */
clipnn_status clipnn_png_write_signed(const char *path, const float *img, size_t h, size_t w,
                                      double amp, size_t zoom);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_H */
