/* Training: the loop, optimizers, schedules, the training state and
 * checkpoints. Private; builds on clip, nn and base. */
#ifndef CLIPNN_TRAIN_H
#define CLIPNN_TRAIN_H

#include "clip/clip.h"

/* ----------------------------------------------------------- optimizer */

struct clipnn_optimizer {
    clipnn_optim_options opts;
    size_t n;
    uint64_t steps; /* updates taken (t of Adam's bias correction) */
    float *m;       /* SGD momentum buffer or Adam first moment, [n] or NULL */
    float *v;       /* Adam second moment, [n] or NULL */
    double step_scale; /* spam: the warm-up's factor of the current step (1 otherwise) */
};

/* What the update of clipnn_train sums per unit while it writes theta,
 * each read from L1 right after the unit is written (NULL: not wanted):
 * theta_acc[u], the sum of squares of unit u after the update (the
 * adaptive rules' ||theta|| at the next step, the step record's
 * theta_norm); dist_acc[u], the sum of (theta - theta0)^2 over unit u (the
 * step record's distance from the start; needs theta0, [n_params]). */
typedef struct {
    double *theta_acc, *dist_acc; /* [n_units] each */
    const float *theta0;
} clipnn_update_sums;

/* The same sums of m's parameters as they are, by the same kernels (so
 * that a run resumed before its first update reports what the run never
 * interrupted reports). */
void clipnn_update_sums_fill(const clipnn_update_sums *sums, const clipnn_model *m);

/* SPAM (src/train/spam.c): the resets and warm-up factor of the coming
 * step (before o->steps counts it); the update of one span, t the 1-based
 * step; the factor 1 - dr after k steps (0-based) of a run. */
void clipnn_spam_begin_step(clipnn_optimizer *o);
int clipnn_spam_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                       float lr, float s, float b1, float b2, float eps, uint64_t t);
double clipnn_spam_warmup_scale(uint64_t k, uint64_t reset_every, uint64_t warmup);

/* The update of clipnn_train (src/train/optim.c): clipnn_optimizer_step on
 * m->params with m->grads, unit by unit (rows of W, bias vectors), the
 * gradient of unit u scaled by grad_scale * unit_scale[u] (unit_scale may
 * be NULL), with the sums asked for (sums may be NULL). f: the options the
 * last backward was given (clipnn_loss_grad_fused; NULL for none), which
 * say whether it left the weight gradients for the update to form. */
clipnn_status clipnn_optimizer_step_units(clipnn_optimizer *o, clipnn_model *m, const clipnn_fused_opts *f,
                                          double lr, double grad_scale, const double *unit_scale,
                                          const clipnn_update_sums *sums);

/* ------------------------------------------------------------ schedules */

/* The tail bound of the paper's Lemma 1 (eq. 14) on the deviation of the
 * clipped iterates: 2 exp(-2 M^2 / (sum_a2 lambda^2)), sum_a2 = sum of
 * a(t)^2 (schedule.c). The training log and the lab both report it. */
double clipnn_lemma1_bound(double M, double sum_a2, double lambda);

/* ------------------------------ recurrent telemetry (src/train/rec_telemetry.c) */

/* What a run's steps report of its recurrent layers (clipnn_train_options
 * log_radius_every, log_time_grad_every, log_time_grad_steps): the buffers,
 * allocated when the run opens (none for what is not asked, nothing for a
 * model without recurrent layers), and what the current step measured. */
typedef struct {
    const clipnn_train_options *o;
    double *radius, *scratch; /* [gate blocks], [2 max hidden] */
    clipnn_dh_trace trace;    /* [max_batch][steps][hidden] per layer */
    double *norms;            /* [layers][steps] */
    int radius_now, grad_now; /* the current step measures them */
} clipnn_rec_telemetry;

clipnn_status clipnn_rec_telemetry_open(clipnn_rec_telemetry *t, const clipnn_train_options *o,
                                        const clipnn_model *m, size_t max_batch);
void clipnn_rec_telemetry_close(clipnn_rec_telemetry *t);
/* Before step `step`'s gradient: the radii when due, and f->trace set when
 * the step's d loss / d h_t are due (NULL otherwise). */
void clipnn_rec_telemetry_begin(clipnn_rec_telemetry *t, const clipnn_model *m, uint64_t step,
                                clipnn_fused_opts *f);
/* After the gradient: the norms of the trace; f->trace back to NULL. */
void clipnn_rec_telemetry_end(clipnn_rec_telemetry *t, const clipnn_model *m, clipnn_fused_opts *f);
/* The step record's rec_radius, time_grad_norms and time_grad_steps. */
void clipnn_rec_telemetry_fill(const clipnn_rec_telemetry *t, clipnn_step_record *rec);

/* ------------------------------------- training state (src/train/train_state.c) */

/* The payloads of a checkpoint's OPTM, CLIP and TRAN sections, kept as bytes
 * so that a state read from a file is checked once and then restored into
 * the optimizer and clipper that clipnn_train creates. */
struct clipnn_train_state {
    unsigned char *optim, *clip, *loop; /* NULL when absent; loop == NULL: empty state */
    unsigned char *bptt;                /* BPTT section: a run with truncated BPTT or a carried state; or NULL */
    unsigned char *priv;                /* PRIV section: the privacy accountant of a private run; or NULL */
    size_t optim_len, clip_len, loop_len, bptt_len, priv_len;
    unsigned char *epch; /* EPCH section: the sums of the epoch in progress that TRAN lacks; or NULL */
    size_t epch_len;
    unsigned char *feed; /* FEED section: a job's Clip21 vectors (src/dist/clip21_state.c); or NULL */
    size_t feed_len;
    char source[256]; /* file it was read from, named in messages ("" if none) */
};

/* Variables of clipnn_train's loop that a resumed run continues. */
typedef struct {
    uint64_t step;   /* steps taken; the next step is t = step */
    clipnn_rng rng;  /* minibatch draws */
    size_t cursor;   /* position in the current shuffled pass */
    uint64_t epoch, epoch_steps, epoch_clipped, clipped, skipped;
    double sum_lr, sum_lr2, epoch_loss, max_dist;
} clipnn_train_loop;

/* Truncated BPTT and the carried state of a run (clipnn_train_options
 * bptt_chunk, bptt_steps, carry_state): the options as resolved and the
 * capacity of the buffers, fixed for the run; the loop variables a resumed
 * run continues. */
typedef struct {
    uint64_t k1, k2, carry;      /* steps per chunk, steps back, carried state (0 or 1) */
    uint64_t chunks;             /* chunks per batch, ceil(T / k1) */
    size_t max_batch, state_width; /* sequences per batch at most; state floats per sequence */
    size_t chunk;                /* the next step's chunk of the current batch (0: the next step draws one) */
    size_t batch;                /* sequences of the current batch (0: none drawn yet) */
    size_t *idx;                 /* [max_batch] its rows */
    float *state;                /* [max_batch][state_width] the state the next chunk starts from */
} clipnn_bptt_loop;

/* A run's truncated BPTT and carried state (src/train/bptt.c). */
typedef struct {
    int on;                     /* the options ask for it: chunks go through clipnn_loss_grad_window */
    size_t T, step_dim, y_step; /* steps, x values per step, targets per step (many-to-many) */
    clipnn_bptt_loop loop;      /* what a saved state holds */
    float *next;                /* [max_batch][state_width] the state the chunk's forward leaves */
    float *xw, *yw;             /* the chunk's window of the batch's x, its targets */
    /* In a job: the batch's lanes (positions in loop.idx) this process
     * computes, and their states packed [own] as the window takes them. */
    size_t own, *lanes;
    float *own_in, *own_out;
} clipnn_bptt_run;

/* Are the options' truncation and carried state possible for m? */
clipnn_status clipnn_bptt_check(const clipnn_train_options *o, const clipnn_model *m);
/* Resolves the options and allocates for batches of up to max_batch
 * sequences of y_row targets each (b->on = 0 and nothing allocated when
 * the options ask for neither; then loop.chunks = 1). */
clipnn_status clipnn_bptt_open(clipnn_bptt_run *b, const clipnn_train_options *o, const clipnn_model *m,
                               size_t max_batch, size_t y_row);
void clipnn_bptt_close(clipnn_bptt_run *b);
/* A new batch, rows idx[batch], gathered by the caller: its first chunk
 * next; the state zero unless carried from the batch before in the same
 * pass over the data. */
void clipnn_bptt_new_batch(clipnn_bptt_run *b, const size_t *idx, size_t batch, int new_pass);
/* In a job: the lanes of the current batch this process owns; their rows
 * of the set it holds into rows[] (loop.batch of room); their count. */
size_t clipnn_bptt_own_lanes(clipnn_bptt_run *b, size_t *rows);
/* Loss and gradient of the current chunk of the batch xb, yb (the whole
 * sequences, as gathered); the state it leaves for the next goes to next. */
clipnn_status clipnn_bptt_loss_grad(clipnn_bptt_run *b, clipnn_model *m, const clipnn_loss_options *lo,
                                    const float *xb, const float *yb, const clipnn_fused_opts *f, double *loss);
/* After the chunk's step: its state becomes the one carried; the next chunk. */
void clipnn_bptt_advance(clipnn_bptt_run *b);

/* The BPTT payload (src/train/train_state.c), written only for a run that uses
 * these options: encode allocates *out ([*len]); check tells whether a
 * payload is well formed (errors name `path`); decode restores a payload
 * that check accepted into a run of the same options and capacity, or
 * fails with SHAPE or INVALID_ARG naming `origin`. */
clipnn_status clipnn_bptt_loop_encode(const clipnn_bptt_loop *b, unsigned char **out, size_t *len);
clipnn_status clipnn_bptt_loop_check(const unsigned char *p, size_t len, const char *path);
clipnn_status clipnn_bptt_loop_decode(const unsigned char *p, clipnn_bptt_loop *b, size_t n, const char *origin);

/* The TRAN payload (src/train/train_state.c): encode allocates *out ([*len]);
 * decode and examples read a payload that clipnn_train_state_validate
 * accepted. */
clipnn_status clipnn_train_loop_encode(const clipnn_train_loop *loop, const size_t *order, size_t n,
                                       const float *theta0, size_t n_params, unsigned char **out,
                                       size_t *len);
void clipnn_train_loop_decode(const unsigned char *p, clipnn_train_loop *loop, size_t *order, size_t n,
                              float *theta0, size_t n_params);
uint64_t clipnn_train_loop_examples(const unsigned char *p);

/* ------------------------------------------ private runs (src/train/private.c) */

/* The accountant of a private run: the RDP of one step at every order and
 * the total of the steps taken (composition adds them). */
typedef struct {
    int on;
    int poisson; /* the run's batches are Poisson-sampled (what the guarantee needs) */
    double q, sigma, delta;
    size_t n_orders;
    double *step_rdp, *rdp; /* [n_orders] */
    uint64_t steps;
} clipnn_dp_state;

/* on = 0 and nothing allocated when sigma is 0 (no noise, no privacy). */
clipnn_status clipnn_dp_open(clipnn_dp_state *d, double q, double sigma, double delta);
void clipnn_dp_close(clipnn_dp_state *d);
void clipnn_dp_step(clipnn_dp_state *d);
/* epsilon at d->delta of the steps taken (NaN when off). */
double clipnn_dp_spent(const clipnn_dp_state *d);
/* The PRIV payload: encode allocates *out; check tells whether a payload is
 * well formed (errors name `path`); decode restores it into an accountant
 * opened for the same sampling rate and noise, or fails naming origin. */
clipnn_status clipnn_dp_encode(const clipnn_dp_state *d, unsigned char **out, size_t *len);
clipnn_status clipnn_dp_check(const unsigned char *p, size_t len, const char *path);
clipnn_status clipnn_dp_decode(const unsigned char *p, clipnn_dp_state *d, const char *origin);

/* The sampling a run uses (AUTO resolved), and whether the options allow
 * it (Poisson: per-sample clipping, no replacement, no carried state). */
clipnn_sampling clipnn_train_sampling_of(const clipnn_train_options *o);
clipnn_status clipnn_train_check_sampling(const clipnn_train_options *o);

/* Poisson sampling of n rows at rate q by geometric gaps: the gap before
 * the next included row; fill writes the rows from *next on into idx (at
 * most cap, the gaps drawn as it goes) and returns their count. */
size_t clipnn_poisson_gap(clipnn_rng *rng, double q, size_t n);
size_t clipnn_poisson_fill(clipnn_rng *rng, double q, size_t n, size_t *next, size_t *idx, size_t cap);

/* (src/train/resume.c) Store a run into s (allocates: call outside the steps); s is unchanged on
 * failure. order: [n] the shuffle permutation; theta0: [n_params]; bptt:
 * NULL for a run without truncated BPTT or carried state. */
clipnn_status clipnn_train_state_capture(clipnn_train_state *s, const clipnn_train_loop *loop,
                                         const size_t *order, size_t n, const float *theta0,
                                         size_t n_params, const clipnn_optimizer *o,
                                         const clipnn_clipper *c, const clipnn_bptt_loop *bptt);
/* The accountant of a private run into s's PRIV payload (after capture);
 * restore_privacy puts it back, or fails when the saved run and this one
 * differ in being private. */
clipnn_status clipnn_train_state_capture_privacy(clipnn_train_state *s, const clipnn_dp_state *d);
clipnn_status clipnn_train_state_restore_privacy(const clipnn_train_state *s, clipnn_dp_state *d);
/* The running sums of the epoch in progress that the TRAN section does not
 * hold (the EPCH section), so that a resumed run reports the epoch an
 * uninterrupted run reports: its skipped steps, and the rows its steps
 * classified right out of the rows they read (over every process). */
typedef struct {
    uint64_t skipped, correct, rows;
} clipnn_epoch_sums;
/* Into s's EPCH payload (after capture); restore_epoch gives zeros for a
 * state without one (written by an earlier build: the epoch then counts
 * from the resume). */
clipnn_status clipnn_train_state_capture_epoch(clipnn_train_state *s, const clipnn_epoch_sums *e);
void clipnn_train_state_restore_epoch(const clipnn_train_state *s, clipnn_epoch_sums *e);
/* EPCH payload p[len] checked against the TRAN payload tran (validated). */
clipnn_status clipnn_epoch_sums_check(const unsigned char *p, size_t len, const unsigned char *tran,
                                      const char *path);
/* A job's Clip21 vectors into s's FEED payload (after capture; NULL when
 * the place is not clip21 or on processes other than 0); restore_feed
 * gives this process its own back, or fails as clipnn_dist_restore_feed. */
clipnn_status clipnn_train_state_capture_feed(clipnn_train_state *s);
clipnn_status clipnn_train_state_restore_feed(const clipnn_train_state *s);
/* Put the run held by s (not empty) back into the loop variables, order,
 * theta0, o, c and bptt (NULL as for capture); fails with SHAPE when the
 * data or model do not match, INVALID_ARG when the run was made with other
 * truncation or carried-state options. */
clipnn_status clipnn_train_state_restore(const clipnn_train_state *s, clipnn_train_loop *loop,
                                         size_t *order, size_t n, float *theta0,
                                         size_t n_params, clipnn_optimizer *o, clipnn_clipper *c,
                                         clipnn_bptt_loop *bptt);
/* Is an OPTM payload well formed for n_params parameters? (src/train/optim_state.c;
 * used before any optimizer exists, errors name `path`.) */
clipnn_status clipnn_optimizer_state_check(const void *buf, size_t len, size_t n_params,
                                           const char *path);
/* Check the sections of a state read from `path` against a model of
 * n_params parameters (FORMAT / SHAPE naming the file). */
clipnn_status clipnn_train_state_validate(const clipnn_train_state *s, size_t n_params,
                                          const char *path);

#endif
