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

/* Number of threads used by OpenMP regions and by OpenBLAS when present.
 * Results are bit-identical for a given thread count. */
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
 * (e.g. a norm reduced elsewhere). per_group_norms, when not NULL, receives
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
 * digits and CSV standardize (a tanh MLP reaches ~97% on the digits
 * standardized, ~83% at [0, 1]); IDX and Fashion-MNIST unit (/255);
 * spirals and teacher none (already of order 1). */
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
 *     | "csv:PATH[,target=COLUMN][,task=classification|regression]"
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

/* ------------------------------------ input optimization and attacks (src/inputopt.c, src/attack.c) */
/* @@inputopt-api */

/* ------------------------------------------------------ diagnosis (src/diagnose.c) */
/* @@diagnose-api */

/* ------------------------------------------------------------ images (src/png.c) */
/* @@png-api */

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_H */
