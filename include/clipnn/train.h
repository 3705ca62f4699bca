/* clipnn: Training: optimizers, schedules, the training loop with its telemetry, checkpoints and resume. */
#ifndef CLIPNN_PUBLIC_TRAIN_H
#define CLIPNN_PUBLIC_TRAIN_H

#include "clipnn/clip.h"
#include "clipnn/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ optimizers */

typedef enum { CLIPNN_OPT_SGD = 0, CLIPNN_OPT_ADAM, CLIPNN_OPT_SPAM, CLIPNN_OPT_COUNT } clipnn_opt_kind;

/* "sgd", "adam", "spam". parse fails with INVALID_ARG and a message listing the
 * valid names. */
CLIPNN_API const char *clipnn_opt_kind_name(clipnn_opt_kind kind);
CLIPNN_API clipnn_status clipnn_opt_kind_parse(const char *name, clipnn_opt_kind *out);

typedef struct {
    clipnn_opt_kind kind;
    double momentum;     /* SGD heavy-ball coefficient (torch.optim.SGD) */
    int nesterov;
    double weight_decay; /* decoupled: theta -= lr * wd * theta */
    double beta1, beta2, adam_eps;
    /* spam (Adam as the SPAM reference code writes it: eps added to sqrt(v)
     * before the bias correction): both moments zeroed before the update
     * of every step k with (k + 1) % reset_every == 0 (0: never), the step
     * scaled by a cosine warm-up of reset_warmup steps after each reset. */
    uint64_t reset_every, reset_warmup;
} clipnn_optim_options;
CLIPNN_API clipnn_optim_options clipnn_optim_options_default(void);

/* An optimizer for n_params parameters (its moment buffers zero, its step
 * count 0) with a copy of opts, which are checked. */
typedef struct clipnn_optimizer clipnn_optimizer;
CLIPNN_API clipnn_status clipnn_optimizer_create(clipnn_optimizer **out, size_t n_params,
                                      const clipnn_optim_options *opts);
CLIPNN_API void clipnn_optimizer_free(clipnn_optimizer *o);
/* theta -= lr * update(grad_scale * g). Eq. 10 with grad_scale = 1/c(t). */
CLIPNN_API clipnn_status clipnn_optimizer_step(clipnn_optimizer *o, float *params, const float *grads,
                                    double lr, double grad_scale);
CLIPNN_API uint64_t clipnn_optimizer_steps(const clipnn_optimizer *o);
/* The second moment of adam and spam ([n_params], what the next update
 * decays), NULL for sgd: what clipnn_clipper_set_moment takes. */
CLIPNN_API const float *clipnn_optimizer_second_moment(const clipnn_optimizer *o);

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
CLIPNN_API clipnn_schedule clipnn_schedule_default(void); /* constant 0.1 */
/* "const", "rm", "step", "cosine": the name clipnn_schedule_parse reads
 * before the kind's parameters. */
CLIPNN_API const char *clipnn_sched_kind_name(clipnn_sched_kind kind);
/* Parses "const", "rm:T0,P", "step:EVERY,GAMMA", "cosine"; a0 and
 * total_steps are left to the caller. */
CLIPNN_API clipnn_status clipnn_schedule_parse(const char *text, clipnn_schedule *out);
/* a(t), t = 0, 1, 2, ... */
CLIPNN_API double clipnn_schedule_lr(const clipnn_schedule *s, uint64_t t);

/* ----------------------------------------------------------------- training */

/* One row of the per-step record, given to on_step after every step that
 * completes, skipped ones included (a step that ends the run with an error
 * or a divergence is not reported). Steps count from the start of the run,
 * across resumes.
 *
 *   step            t, 0-based.
 *   lr              a(t), the schedule's step size for this step.
 *   sum_lr, sum_lr2 sum of a(s) and of a(s)^2 over the steps taken so far,
 *                   this one included; skipped steps add nothing.
 *   loss            mean loss of the step's minibatch at the parameters
 *                   before the update (the value clipnn_loss_grad returned).
 *   clip            the clipper's record of the step (clipnn_clip_record),
 *                   with theta_norm filled in for every rule: adaptive,
 *                   ||theta||_p before the update (what the rule read);
 *                   every other rule, ||theta||_p after the update (p of the
 *                   clipping options), at the steps record_params names
 *                   (NaN at the others).
 *   dist_from_start ||theta(t+1) - theta(0)||_2 after the step, theta(0) the
 *                   parameters when the run started (its first part when
 *                   resumed), at the steps record_params names (NaN at
 *                   the others).
 *   det_bound       lambda * sum_lr: Lemma 1's deterministic bound on
 *                   dist_from_start for classic clipping (norm, p = 2),
 *                   whose steps are at most a(t) lambda long; for other
 *                   rules it is the same number and bounds nothing.
 *   lemma1_bound    2 exp(-2 M^2 / (sum_lr2 lambda^2)) with M = stability_m
 *                   (eq. 14's bound on P(dist_from_start > M)); NaN when
 *                   stability_m is 0 or no step was taken yet.
 *   group_norms, group_post_norms, group_factors
 *                   when log_groups is set, [n_groups] arrays in the order
 *                   of clipnn_model_group (else NULL), valid during the
 *                   on_step call only; norms of the rule's order q, as in
 *                   clipnn_clip_record. The clipper gives them as it clips:
 *                   the model's gradient block after the step need not hold
 *                   the clipped gradient (a factor may be left to the
 *                   update), so norms read from it are not these.
 *     group_norms       each group's norm before clipping;
 *     group_post_norms  its norm in the gradient the update uses. Both
 *                       combine into the whole's norms (sum of q-th powers,
 *                       then the q-th root; the largest for q = inf) up to
 *                       rounding: clip.pre_norm and clip.post_norm, except
 *                       where those are NaN for a loss that was not finite;
 *     group_factors     global rules: clip.factor, the one c(t) of every
 *                       group; norm-group, adaptive-layer and adagc (after
 *                       its warm-up): the group's own divisor c_l >= 1
 *                       (+inf when its threshold is 0); value, agc,
 *                       per-sample, spam, acclip, nsgdm, nsgdm-clip and a
 *                       random step: the group's pre / post (1 when post
 *                       is 0), a summary as clip.factor is.
 *                   A step the non-finite policy kept the rule from: every
 *                   group's post norm is its pre norm and its factor NaN,
 *                   as in clip. */
typedef struct {
    uint64_t step;
    double lr, sum_lr, sum_lr2;
    double loss;
    clipnn_clip_record clip;
    double dist_from_start; /* ||theta(t+1) - theta(0)||_2 after the step */
    double det_bound;       /* lambda * sum_lr (classic clipping) */
    double lemma1_bound;    /* 2 exp(-2 M^2 / (sum_lr2 lambda^2)), when M > 0, else NaN */
    const double *group_norms;      /* [n_groups] pre-clip, when asked, else NULL; valid during on_step */
    const double *group_post_norms; /* [n_groups] post-clip, likewise */
    const double *group_factors;    /* [n_groups] each group's factor, likewise */
    uint64_t total_steps;     /* steps of the whole run (its part already done included) */
    uint64_t steps_per_epoch; /* steps of one epoch (step / steps_per_epoch is the 0-based epoch) */
    /* Recurrent telemetry, at the steps the options ask for it (else NULL
     * and 0), valid during the on_step call only:
     *   rec_radius       the spectral radius of every gate block of every
     *                    recurrent layer's W_hh (clipnn_model_rec_radius),
     *                    layer after layer, each layer's
     *                    clipnn_model_layer_gates blocks in order, at the
     *                    parameters this step's gradient was taken at;
     *   time_grad_norms  [n recurrent layers][time_grad_steps]: the 2-norm
     *                    of d loss / d h_t of each layer at each step t of
     *                    the pass (the whole [batch][hidden] state, the
     *                    step's mean loss, before clipping): what reaches
     *                    h_t from the loss at t and from every later step.
     *                    With truncated backpropagation t counts the
     *                    window's steps, and those the gradient does not
     *                    reach are 0. */
    const double *rec_radius;
    const double *time_grad_norms;
    size_t time_grad_steps;
    size_t batch_size; /* examples in the step's (logical) batch: varies under Poisson sampling, may be 0 */
    double epsilon;    /* a private run: epsilon after this step (as clipnn_epoch_record's); otherwise NaN */
} clipnn_step_record;

/* One row per epoch, given to on_epoch at the end of every epoch (and
 * after a last step that falls mid-epoch; not for the epoch in progress
 * when control stops the run).
 *   epoch             1-based number of the epoch the row closes;
 *   n_epochs          epochs of the run (steps rounded up to whole epochs
 *                     when steps is set);
 *   train_loss        mean of the minibatch losses of the epoch's steps
 *                     that were not skipped (NaN when all were);
 *   test_loss, test_accuracy  on the whole test set after the epoch (NaN
 *                     without a test set; accuracy NaN for regression);
 *   clipped_fraction  the epoch's clipped steps / its steps;
 *   seconds           since the start of this clipnn_train call;
 *   samples_per_second  steps of this call x batch / seconds;
 *   train_accuracy    running accuracy: the rows of the epoch's steps that
 *                     were not skipped which the model classified right at
 *                     that step's forward (before its update), over those
 *                     rows; NaN for regression, for a model with an output
 *                     at every step, and when every step was skipped. Like
 *                     train_loss, an epoch that a resume splits counts from
 *                     the resume for it;
 *   epsilon, delta    a private run (per-sample clipping with noise): the
 *                     (epsilon, delta)-DP of every step taken so far, the
 *                     resumed run's earlier steps included (clipnn/privacy.h;
 *                     a guarantee under Poisson sampling only); otherwise
 *                     NaN. */
typedef struct {
    size_t epoch, n_epochs;
    double train_loss, test_loss, test_accuracy, clipped_fraction, seconds, samples_per_second;
    double train_accuracy;
    double epsilon, delta;
} clipnn_epoch_record;

/* How the examples of a step are drawn (without replacement; the
 * replacement option draws uniformly with replacement instead).
 *   AUTO     POISSON for per-sample clipping with noise (DP-SGD), SHUFFLE
 *            otherwise;
 *   SHUFFLE  a shuffled pass cut into batches of `batch` (the last may be
 *            shorter);
 *   POISSON  every example joins each step independently with probability
 *            q = batch / n: the batch size varies (binomial, mean batch, may
 *            be 0) and an epoch is ceil(n / batch) steps. Per-sample
 *            clipping only. The privacy accountant's guarantee assumes it. */
typedef enum {
    CLIPNN_SAMPLING_AUTO = 0,
    CLIPNN_SAMPLING_SHUFFLE,
    CLIPNN_SAMPLING_POISSON,
    CLIPNN_SAMPLING_COUNT
} clipnn_sampling;
/* "auto", "shuffle", "poisson"; parse fails with INVALID_ARG listing them. */
CLIPNN_API const char *clipnn_sampling_name(clipnn_sampling s);
CLIPNN_API clipnn_status clipnn_sampling_parse(const char *name, clipnn_sampling *out);

/* Where a run over several processes clips (clipnn_train_options.clip_where):
 *   GLOBAL  the slices' gradients are averaged, then clip.rule clips the
 *           global gradient, as one process would.
 *   LOCAL   each process clips its own slice's mean gradient g_i with the
 *           norm rule (g_i min(1, lambda / ||g_i||)) before the average;
 *           the average is then not clipped again. A biased estimate when
 *           the processes' gradients differ.
 *   CLIP21  error feedback: each process keeps a vector e_i (zero at the
 *           start), sets e_i <- e_i + clip_lambda(g_i - e_i) and sends e_i;
 *           the update uses the average of the e_i, not clipped again.
 * LOCAL and CLIP21 need an MPI job (a build with MPI) and clip.rule norm
 * with p = 2; CLIP21's e_i are saved with the run's state (gathered to
 * process 0), so a run with it resumes on the same number of processes. */
typedef enum {
    CLIPNN_CLIP_WHERE_GLOBAL = 0,
    CLIPNN_CLIP_WHERE_LOCAL,
    CLIPNN_CLIP_WHERE_CLIP21,
    CLIPNN_CLIP_WHERE_COUNT
} clipnn_clip_where;
/* "global", "local", "clip21"; parse fails with INVALID_ARG listing them. */
CLIPNN_API const char *clipnn_clip_where_name(clipnn_clip_where w);
CLIPNN_API clipnn_status clipnn_clip_where_parse(const char *name, clipnn_clip_where *out);

/* The steps whose record (clipnn_step_record) carries the figures that
 * read every parameter: dist_from_start (the update reads theta(0) beside
 * theta, one more stream of the parameters' size, a large part of a step
 * at small batches) and clip.theta_norm of the rules that do not read
 * ||theta|| themselves (the update sums theta's squares; for p other than
 * 2 a pass over the parameters).
 *   EVERY_STEP  every record (the default);
 *   EPOCH_ENDS  the records of the steps t with (t + 1) a multiple of
 *               steps_per_epoch (those that end an epoch) and of the run's
 *               last step; the others hold NaN there, and their updates
 *               take neither figure. */
typedef enum { CLIPNN_RECORD_EVERY_STEP = 0, CLIPNN_RECORD_EPOCH_ENDS, CLIPNN_RECORD_COUNT } clipnn_record_steps;

/* What the caller of a running clipnn_train asks between steps: the
 * answer of clipnn_train_options.control, flags or'ed together. */
enum {
    CLIPNN_TRAIN_CONTINUE = 0,
    CLIPNN_TRAIN_SAVE = 1, /* capture the run into state and give it to on_save */
    CLIPNN_TRAIN_STOP = 2  /* end the run after this step */
};

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
    int log_groups;    /* fill clipnn_step_record's group_norms, group_post_norms, group_factors */
    /* Recurrent telemetry in clipnn_step_record (nothing for a model
     * without recurrent layers, and no cost when 0): rec_radius at the
     * steps t with t % log_radius_every == 0; time_grad_norms at the steps
     * t with t % log_time_grad_every == 0 and at the n_log_time_grad_steps
     * steps listed in log_time_grad_steps. */
    uint64_t log_radius_every;
    uint64_t log_time_grad_every;
    const uint64_t *log_time_grad_steps;
    size_t n_log_time_grad_steps;
    double stability_m; /* M of Lemma 1 (0: off) */
    int expected_grad; /* evaluate H(theta) and the mean gradient at the end */
    /* Truncated backpropagation through time, TBPTT(k1, k2) as Williams
     * and Peng and Sutskever define it, for models with recurrent layers
     * (sequences of T steps): each batch is processed in chunks of k1
     * steps (the last one shorter when k1 does not divide T); after each
     * chunk a parameter update, one step of the run, is made with the
     * gradient of the chunk's loss (the mean over its sequences and steps)
     * backpropagated through the last k2 steps up to the chunk's end. With
     * k2 > k1 those steps reach back into the chunks before (never before
     * the batch's first step): they are forwarded again with the current
     * parameters from the state the previous update's forward left at the
     * first of them, a constant; with k2 < k1 the chunk's earlier steps are
     * constants (their outputs still reach the dense layers' gradient).
     * The state is carried from chunk to chunk without gradient. Full
     * BPTT is k1 = k2 = T, the default (0, 0), and gives the same results
     * bit for bit. A many-to-one model has a loss at the last step only, so
     * it takes k1 = T alone (an error otherwise) and k2 <= T truncates its
     * gradient to the last k2 steps. Steps and epochs count updates: an
     * epoch of b batches has b ceil(T / k1) steps. Needs k1 <= T and
     * k2 <= T; per-sample clipping refuses these options. */
    size_t bptt_chunk; /* k1 (0: T) */
    size_t bptt_steps; /* k2 (0: k1) */
    /* A stream: consecutive batches are consecutive segments of the same
     * sequences, and each batch starts from the state (every layer's h, and
     * c for an LSTM) the last one ended with, without gradient (the state
     * of the first batch of each epoch is zero). The rows of the training
     * set are taken in their order, as one long sequence cut into segments
     * of T steps: split into `batch` streams of floor(n / batch)
     * consecutive rows (the rows past batch x floor(n / batch) are not
     * used), batch j holds row j of every stream. No shuffling; refused
     * with replacement. Evaluation still starts every row from zero. */
    int carry_state;
    /* Per-sample clipping of a dense model, one batch per step (no Poisson
     * sampling or physical batches), forms each weight gradient once,
     * from the rescaled deltas; the gradient before clipping is never
     * formed, and the step record's pre-clip norms (clip.pre_norm,
     * group_norms) take Gram matrices of every layer's rows, a cost
     * comparable to the clipping itself. They are measured
     * only when someone can read them: on_step or log_groups set, and this
     * flag not set; otherwise they are NaN (as are clip.factor and
     * group_factors), and the non-finite policy judges the per-example
     * norms. The update is the same either way. */
    int per_sample_skip_pre_norm;
    /* DP-SGD (clip.rule per-sample): the sampling (AUTO: Poisson when
     * clip.noise_multiplier > 0); physical_batch > 0 splits each logical
     * batch into physical ones of at most that many examples, each clipped
     * per example, the noise added once to the logical batch's sum (default
     * 0: one physical batch under shuffling; under Poisson, batch plus four
     * standard deviations of its size, a batch drawn larger taking more
     * physical batches, none dropped). Under Poisson sampling the update's
     * gradient is (sum of clipped per-example gradients + N(0, (sigma C)^2 I))
     * / batch, the expected batch size (Opacus's convention), otherwise the
     * same over the batch's own size. dp_delta: the delta of the reported
     * epsilon (0: clipnn_dp_default_delta of the training set). */
    clipnn_sampling sampling;
    size_t physical_batch;
    double dp_delta;
    void (*on_step)(const clipnn_step_record *r, void *user);
    clipnn_record_steps record_params; /* which records carry dist_from_start and theta_norm (with on_step) */
    void (*on_epoch)(const clipnn_epoch_record *r, void *user);
    void *user;
    struct clipnn_train_state *state; /* resume from / save to (see checkpoints); NULL: none */
    /* Control of a running training, for periodic checkpoints and a stop on
     * request (a signal handler's flag: the library installs no handler).
     * When set, control(user) is asked after every step, after on_step and,
     * at an epoch's end, on_epoch; it answers CLIPNN_TRAIN_* flags.
     *   SAVE: state (which must be set, else the flag is ignored) is filled
     *         with the run as it is after this step, as clipnn_train leaves
     *         it when it returns, and on_save(m, state, user) is called with
     *         the model holding the parameters after the step; a checkpoint
     *         written there resumes on the same trajectory. Capturing
     *         allocates.
     *   STOP: the run ends after this step, as after its last one (state
     *         filled, result figures so far) with result->stopped set; the
     *         epoch in progress is not reported (a resumed run completes
     *         it) and expected_grad is not evaluated. Ignored at the last
     *         step. */
    int (*control)(void *user);
    void (*on_save)(const clipnn_model *m, const struct clipnn_train_state *state, void *user);
    clipnn_clip_where clip_where; /* in an MPI job: where the gradient is clipped (default GLOBAL) */
} clipnn_train_options;
/* A private run (per-sample clipping) that is to reach target_epsilon at
 * the options' delta (0: the default for n examples) after its planned
 * steps (steps, or epochs of ceil(n / batch)): sets
 * o->clip.noise_multiplier to the smallest noise that does, by
 * clipnn_dp_noise_for_epsilon at q = batch / n. A target no noise reaches,
 * or a rule other than per-sample, fails with INVALID_ARG and one line. */
CLIPNN_API clipnn_status clipnn_train_noise_for_epsilon(clipnn_train_options *o, size_t n, double target_epsilon);

/* What `clipnn train` runs with no options: SGD with momentum 0.9, a
 * constant step of 0.05, norm clipping at lambda 1 (the rest of clip as
 * clipnn_clip_options_for gives it; clip.noise_seed equal to seed, as the
 * tool sets it), cross-entropy, batch 32, 20 shuffled epochs, seed 1; no
 * telemetry, callbacks or state. The defaults of the parts on their own
 * (clipnn_optim_options_default: plain SGD; clipnn_schedule_default: 0.1;
 * clipnn_clip_options_default: no clipping) are each part's neutral
 * setting, not this recipe. Outside these options the tool picks the loss
 * from the data (mse for regression targets) and the model: one hidden
 * layer of 64 tanh units, Xavier initialisation seeded with seed. */
CLIPNN_API clipnn_train_options clipnn_train_options_default(void);

typedef struct {
    uint64_t steps;
    double train_loss; /* mean over the last epoch's batches */
    double test_loss, test_accuracy;
    double seconds;
    int diverged;
    uint64_t diverged_step;
    double clipped_fraction;
    uint64_t skipped_steps;
    /* The largest dist_from_start the step records carried (the run's
     * earlier parts included when resumed): every step's, or the epoch
     * ends' under CLIPNN_RECORD_EPOCH_ENDS; 0 without on_step. */
    double max_dist_from_start;
    double expected_clipped_grad_norm; /* ||H(theta)||, when asked */
    double mean_grad_norm;             /* ||E g||, when asked */
    /* A private run: (epsilon, delta) after the last step, the sampling rate
     * q = batch / n and the sampling the run used (SHUFFLE or POISSON; the
     * epsilon is a guarantee under POISSON only); NaN, NaN, NaN, AUTO otherwise. */
    double epsilon, delta, sampling_rate;
    clipnn_sampling sampling;
    int stopped;                       /* ended early by control's CLIPNN_TRAIN_STOP */
} clipnn_train_result;

/* Refuses, with one line stating the estimate, a run of clipnn_train with
 * these options whose parameters, gradients, optimizer state and copies of
 * the initial parameters would pass the memory limit; clipnn_train makes
 * the same check, this call lets a caller make it before initialising
 * the parameters (which touches every one of them). */
CLIPNN_API clipnn_status clipnn_train_check_memory(const clipnn_model *m, const clipnn_train_options *o);

/* Trains m in place on train with opts, evaluating on test (may be NULL)
 * after every epoch. The data must fit the model and the loss (inputs,
 * classes or targets, per-step targets for a many-to-many model: SHAPE
 * otherwise); the steps allocate nothing. A run that diverges (a
 * non-finite loss, gradient or update) ends with result->diverged set:
 * with CLIPNN_ERR_NONFINITE and the parameters of the step before under the
 * error policy, with CLIPNN_OK under propagate; the skip policy skips such
 * steps and goes on. result is filled in either case. In an MPI job train
 * may hold this process's shard of the training set (loaded with
 * clipnn_data_options.shard = rank, .shards = size) or all of it; outside
 * a job a shard is refused (INVALID_ARG). */
CLIPNN_API clipnn_status clipnn_train(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                           const clipnn_train_options *opts, clipnn_train_result *result);

/* A threshold from the gradients themselves: trains a copy of m for
 * `steps` steps with opts (the same initial weights, batches and optimizer;
 * no clipping, non-finite steps skipped, no callbacks or state), takes each
 * step's pre-clip gradient norm (of order opts->clip.p) and returns their
 * q-quantile (0 < q <= 1; numpy's linear interpolation) in *lambda. The
 * warm-up moves the copy with opts->schedule: a0 = 0 measures the
 * minibatch gradients at the initial parameters. m is left as it was.
 * Fails with NONFINITE when no step had a finite norm. */
CLIPNN_API clipnn_status clipnn_auto_lambda(const clipnn_model *m, const clipnn_dataset *train,
                                            const clipnn_train_options *opts, uint64_t steps, double q,
                                            double *lambda);

/* Mean loss and accuracy (classification; accuracy NaN for regression). */
CLIPNN_API clipnn_status clipnn_evaluate(clipnn_model *m, const clipnn_dataset *d, const clipnn_loss_options *lo,
                              double *loss, double *accuracy);

/* ------------------------------------------------------------- checkpoints */

/* Magic, format version, architecture, parameters, CRC-32; written to a
 * temporary file, fsynced and renamed over path (an existing file at path is
 * left intact when anything fails). Layout: docs/formats.md. The format
 * version written is the oldest that holds the file's content, so that
 * older builds read what they can use: 1 for a model without recurrent
 * layers, 2 with them, 3 for a training state of a run with truncated
 * backpropagation through time or a carried state (bptt_chunk, bptt_steps,
 * carry_state). Loading reads every version up to this build's and refuses
 * a missing (IO), foreign (FORMAT), newer (UNSUPPORTED), truncated
 * (TRUNCATED), damaged (CHECKSUM) or inconsistent (FORMAT, SHAPE) file with
 * a message naming it. */
CLIPNN_API clipnn_status clipnn_model_save(const clipnn_model *m, const char *path);
CLIPNN_API clipnn_status clipnn_model_load(const char *path, clipnn_model **out);

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
CLIPNN_API clipnn_status clipnn_train_state_create(clipnn_train_state **out); /* empty */
CLIPNN_API void clipnn_train_state_free(clipnn_train_state *s);
CLIPNN_API uint64_t clipnn_train_state_steps(const clipnn_train_state *s); /* 0 when empty */

/* A checkpoint with the model and, when state is not NULL and holds a run,
 * the training state. */
CLIPNN_API clipnn_status clipnn_checkpoint_save(const char *path, const clipnn_model *m,
                                     const clipnn_train_state *state);
/* state may be NULL (the model only); otherwise *state receives the file's
 * training state, empty when the file holds none. */
CLIPNN_API clipnn_status clipnn_checkpoint_load(const char *path, clipnn_model **m,
                                     clipnn_train_state **state);
/* The same with the record of the model's data (clipnn_data_info): saved
 * when info is not NULL; on loading, *info (when info is not NULL)
 * receives the file's record, or NULL when it has none. */
CLIPNN_API clipnn_status clipnn_checkpoint_save_info(const char *path, const clipnn_model *m,
                                                     const clipnn_train_state *state, const clipnn_data_info *info);
CLIPNN_API clipnn_status clipnn_checkpoint_load_info(const char *path, clipnn_model **m,
                                                     clipnn_train_state **state, clipnn_data_info **info);

/* What the privacy accountant of a state (a private run's, restored from a
 * checkpoint or left by clipnn_train) says: epsilon at the run's delta after
 * its steps, at its sampling rate and noise multiplier, and whether its
 * batches were Poisson-sampled (else the epsilon is no guarantee). A state
 * of a run that was not private: CLIPNN_ERR_STATE. */
typedef struct {
    double epsilon, delta, sampling_rate, noise_multiplier;
    uint64_t steps;
    int poisson;
} clipnn_privacy_spent;
CLIPNN_API clipnn_status clipnn_train_state_privacy(const clipnn_train_state *s, clipnn_privacy_spent *out);

/* Optimizer state (step count, momentum or Adam moment buffers) as bytes,
 * little-endian, the OPTM section of docs/formats.md. state_save writes
 * exactly state_size bytes. state_load accepts only the state of an
 * optimizer of the same kind, buffers and parameter count, and leaves o
 * unchanged when it refuses. */
CLIPNN_API size_t clipnn_optimizer_state_size(const clipnn_optimizer *o);
CLIPNN_API void clipnn_optimizer_state_save(const clipnn_optimizer *o, void *buf);
CLIPNN_API clipnn_status clipnn_optimizer_state_load(clipnn_optimizer *o, const void *buf, size_t len);

/* The clipper's state (running counts, AutoClip history, ZClip EMAs, noise
 * RNG, theta(0) of the projection), the CLIP section of docs/formats.md;
 * same contract as the optimizer's. */
CLIPNN_API size_t clipnn_clipper_state_size(const clipnn_clipper *c);
CLIPNN_API void clipnn_clipper_state_save(const clipnn_clipper *c, void *buf);
/* The threshold a saved run chose with clipnn_auto_lambda (its clipper's
 * auto_quantile > 0): 1 and lambda, quantile and warm-up steps when the
 * state holds one, else 0 (outputs untouched). */
CLIPNN_API int clipnn_train_state_auto_lambda(const clipnn_train_state *s, double *lambda, double *quantile,
                                              uint64_t *steps);
CLIPNN_API clipnn_status clipnn_clipper_state_load(clipnn_clipper *c, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_TRAIN_H */
