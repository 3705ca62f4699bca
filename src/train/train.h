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
};

/* The update of clipnn_train (src/optim.c): clipnn_optimizer_step on
 * m->params with m->grads, unit by unit (rows of W, bias vectors), the
 * gradient of unit u scaled by grad_scale * unit_scale[u] (unit_scale may
 * be NULL); theta_acc ([n_units], may be NULL) receives the sum of squares
 * of every unit after the update. f: the options the last backward was
 * given (clipnn_loss_grad_fused; NULL for none), which say whether it left
 * the weight gradients for the update to form. */
clipnn_status clipnn_optimizer_step_units(clipnn_optimizer *o, clipnn_model *m, const clipnn_fused_opts *f,
                                          double lr, double grad_scale, const double *unit_scale, double *theta_acc);

/* ------------------------------------------------------------ schedules */

/* The tail bound of the paper's Lemma 1 (eq. 14) on the deviation of the
 * clipped iterates: 2 exp(-2 M^2 / (sum_a2 lambda^2)), sum_a2 = sum of
 * a(t)^2 (schedule.c). The training log and the lab both report it. */
double clipnn_lemma1_bound(double M, double sum_a2, double lambda);

/* ------------------------------------- training state (src/train_state.c) */

/* The payloads of a checkpoint's OPTM, CLIP and TRAN sections, kept as bytes
 * so that a state read from a file is checked once and then restored into
 * the optimizer and clipper that clipnn_train creates. */
struct clipnn_train_state {
    unsigned char *optim, *clip, *loop; /* NULL when absent; loop == NULL: empty state */
    size_t optim_len, clip_len, loop_len;
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

/* The TRAN payload (src/train_state.c): encode allocates *out ([*len]);
 * decode and examples read a payload that clipnn_train_state_validate
 * accepted. */
clipnn_status clipnn_train_loop_encode(const clipnn_train_loop *loop, const size_t *order, size_t n,
                                       const float *theta0, size_t n_params, unsigned char **out,
                                       size_t *len);
void clipnn_train_loop_decode(const unsigned char *p, clipnn_train_loop *loop, size_t *order, size_t n,
                              float *theta0, size_t n_params);
uint64_t clipnn_train_loop_examples(const unsigned char *p);

/* (src/resume.c) Store a run into s (allocates: call outside the steps); s is unchanged on
 * failure. order: [n] the shuffle permutation; theta0: [n_params]. */
clipnn_status clipnn_train_state_capture(clipnn_train_state *s, const clipnn_train_loop *loop,
                                         const size_t *order, size_t n, const float *theta0,
                                         size_t n_params, const clipnn_optimizer *o,
                                         const clipnn_clipper *c);
/* Put the run held by s (not empty) back into the loop variables, order,
 * theta0, o and c; fails with SHAPE when the data or model do not match. */
clipnn_status clipnn_train_state_restore(const clipnn_train_state *s, clipnn_train_loop *loop,
                                         size_t *order, size_t n, float *theta0,
                                         size_t n_params, clipnn_optimizer *o, clipnn_clipper *c);
/* Is an OPTM payload well formed for n_params parameters? (src/optim_state.c;
 * used before any optimizer exists, errors name `path`.) */
clipnn_status clipnn_optimizer_state_check(const void *buf, size_t len, size_t n_params,
                                           const char *path);
/* Check the sections of a state read from `path` against a model of
 * n_params parameters (FORMAT / SHAPE naming the file). */
clipnn_status clipnn_train_state_validate(const clipnn_train_state *s, size_t n_params,
                                          const char *path);

#endif
