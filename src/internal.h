/* Private declarations shared by the library's source files. Not installed. */
#ifndef CLIPNN_INTERNAL_H
#define CLIPNN_INTERNAL_H

#include "clipnn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- errors */

/* Record a one-line detail for clipnn_last_error() and return status. */
clipnn_status clipnn_fail(clipnn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Index of name in names[n]; -1 (and "unknown WHAT 'name' (names...)" as
 * the last error) when it is not there. The parsers of enum names share it. */
int clipnn_lookup_name(const char *const *names, size_t n, const char *name, const char *what);

/* --------------------------------------------------------- allocation */

/* All library allocations go through these so that they can be counted
 * (clipnn_allocation_count) and overflow-checked. */
void *clipnn_alloc(size_t bytes);                  /* malloc, counted */
void *clipnn_alloc_array(size_t count, size_t size); /* zeroed; NULL on overflow */
void *clipnn_realloc_array(void *p, size_t count, size_t size);
void clipnn_free(void *p);
/* a * b into *out; 0 on success, -1 on overflow. */
int clipnn_mul_size(size_t a, size_t b, size_t *out);
int clipnn_add_size(size_t a, size_t b, size_t *out);

/* ---------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: fast, reproducible everywhere. */
typedef struct {
    uint64_t s[4];
} clipnn_rng;

void clipnn_rng_seed(clipnn_rng *r, uint64_t seed);
uint64_t clipnn_rng_next(clipnn_rng *r);
double clipnn_rng_uniform(clipnn_rng *r);          /* [0, 1) */
uint64_t clipnn_rng_below(clipnn_rng *r, uint64_t n); /* [0, n), unbiased */
double clipnn_rng_normal(clipnn_rng *r);           /* N(0, 1) */
void clipnn_rng_shuffle(clipnn_rng *r, size_t *items, size_t n);

/* ------------------------------------------------------------- models */

typedef struct {
    size_t in, out;
    clipnn_act act;
    size_t w_offset; /* W: [out][in] at params + w_offset */
    size_t b_offset; /* b: [out]     at params + b_offset */
    size_t unit_base; /* units (rows of W, then b as one unit): [unit_base, unit_base + out] */
} clipnn_layer;

struct clipnn_model {
    size_t n_inputs;
    size_t n_layers;
    clipnn_layer *layers; /* [n_layers] */
    size_t n_params;
    float *params; /* [n_params] */
    float *grads;  /* [n_params] */

    /* Workspace, sized by clipnn_model_reserve for max_batch rows. */
    size_t max_batch;
    float *workspace;  /* one block holding everything below */
    float **pre;       /* pre[l]: [max_batch][out_l] z = a W^T + b */
    float **post;      /* post[l]: [max_batch][out_l] act(z); == pre[l] for identity */
    float **delta;     /* delta[l]: [max_batch][out_l] d loss / d z_l */
    float *losses;     /* [max_batch] per-example losses of the last call */
    const float *last_input; /* x of the last forward, [batch][n_inputs] */
    size_t last_batch;
    /* Norms fused into the backward (src/model.c): when row_acc_order > 0,
     * clipnn_loss_grad leaves in row_acc[unit] the accumulation
     * (clipnn_norm_accumulate, order row_acc_order) of each unit of the
     * gradient (a row of dW, or a whole db), computed by the thread that
     * wrote the row while it is in its cache. */
    double row_acc_order;
    double *row_acc; /* [n_units] */
    size_t n_units;  /* sum over layers of out + 1 */
    /* Set by clipnn_train around a batch-of-one step whose clipping reads
     * only the unit norms: the backward leaves dW (= d a^T) unwritten and
     * clipnn_optimizer_step_units forms each row from delta and the layer
     * input instead (saves writing and re-reading every weight gradient). */
    int lazy_rank1;
};

/* Input of layer l for the last forward: x for l = 0, post[l-1] otherwise. */
const float *clipnn_layer_input(const clipnn_model *m, size_t l);

/* ------------------------------------------------ kernels (src/dense.c) */

/* dW[out][in] = dz[B][out]^T a[B][in];  db[out] = sum_B dz;
 * da[B][in] = dz[B][out] W[out][in] (skipped when da is NULL). */
void clipnn_dense_backward(float *dW, float *db, float *da, const float *dz, const float *a,
                           const float *W, size_t B, size_t in, size_t out);

/* Threaded form: the layer's units are split among threads at the fixed
 * boundaries of clipnn_chunk; each call below does one thread's slice with
 * a single-threaded BLAS. */
void clipnn_chunk(size_t n, int t, int T, size_t *lo, size_t *hi);
int clipnn_threads_for_macs(size_t macs); /* threads for a layer-by-layer pass of that many multiply-adds */
/* Barrier for the threads of one parallel region (src/dense.c): zero it
 * before the region, every thread calls clipnn_barrier_wait(b, team size). */
typedef struct {
    _Atomic int count, gen;
} clipnn_barrier;
void clipnn_barrier_wait(clipnn_barrier *b, int n);
/* Work below which model passes run on one thread (2^17 multiply-adds;
 * updates: a sixteenth of it in parameters). Tests set 0 to run the split
 * kernels on small models. */
extern size_t clipnn_parallel_macs;
int clipnn_thread_id(void);    /* omp_get_thread_num, 0 without OpenMP */
int clipnn_thread_count(void); /* omp_get_num_threads, 1 without OpenMP */
/* z[B][lo:hi) = a[B][in] W[lo:hi][in]^T (no bias; z rows of stride out) */
void clipnn_dense_forward_cols(float *z, const float *a, const float *W, size_t B, size_t in, size_t out,
                               size_t lo, size_t hi);
/* dW[lo:hi][in] = dz[B][lo:hi)^T a[B][in]; db[lo:hi) = sum_B dz (either may be NULL) */
void clipnn_dense_weight_grad_rows(float *dW, float *db, const float *dz, const float *a, size_t B, size_t in,
                                   size_t out, size_t lo, size_t hi);
/* da[B][lo:hi) = dz[B][out] W[out][lo:hi) (da rows of stride in) */
void clipnn_dense_input_grad_cols(float *da, const float *dz, const float *W, size_t B, size_t in, size_t out,
                                  size_t lo, size_t hi);

/* -------------------------------------------- kernels (src/activation.c) */

/* z[n] += b[n]; y[n] = act(z[n]) in one pass (y may be z). */
void clipnn_bias_act_forward(clipnn_act act, float *z, float *y, const float *b, size_t n);

/* y[n] = act(x[n]); may be in place. */
void clipnn_act_forward(clipnn_act act, float *y, const float *x, size_t n);
/* d[n] *= act'(z) given z = pre-activation and y = act(z). */
void clipnn_act_backward(clipnn_act act, float *d, const float *z, const float *y, size_t n);
double clipnn_act_eval_d(clipnn_act act, double x);  /* double reference */
double clipnn_act_deriv_d(clipnn_act act, double x); /* double reference */

/* ------------------------------------------------ kernels (src/loss.c) */

/* Per-example losses into losses[B]; d loss_mean / dz into dz[B][k] (may be
 * NULL); returns the batch mean (double accumulation). z: [B][k]. */
double clipnn_loss_forward_backward(const clipnn_loss_options *lo, const float *z, const float *y,
                                    size_t B, size_t k, float *losses, float *dz);
/* The same in double (reference path). */
double clipnn_loss_forward_backward_d(const clipnn_loss_options *lo, const double *z,
                                      const double *y, size_t B, size_t k, double *dz);

/* ---------------------------------------------------------------- norms */

/* Sum of |v_i|^p in double (p finite) or max |v_i| (p infinite). */
double clipnn_norm_accumulate(const float *v, size_t n, double p);
/* Sum of squares with float partial sums of 8 terms (relative error
 * <= 5e-7), for the unit norms of the backward. */
double clipnn_sumsq_blocked(const float *v, size_t n);
/* Turn an accumulated value into the norm (the p-th root). */
double clipnn_norm_finish(double acc, double p);
/* Combine two accumulations of the same p. */
double clipnn_norm_combine(double a, double b, double p);
/* The accumulation of the same vector scaled by s >= 0. */
double clipnn_norm_scale_acc(double acc, double s, double p);

/* Percentile q in [0, 100] of v[n] (n >= 1), numpy's linear interpolation;
 * v is reordered (src/clip.c). */
double clipnn_percentile(double *v, size_t n, double q);

/* ----------------------------------------------------------- optimizer */

struct clipnn_optimizer {
    clipnn_optim_options opts;
    size_t n;
    uint64_t steps; /* updates taken (t of Adam's bias correction) */
    float *m;       /* SGD momentum buffer or Adam first moment, [n] or NULL */
    float *v;       /* Adam second moment, [n] or NULL */
};

/* The clipping step of clipnn_train (src/clip.c): clipnn_clipper_apply
 * with fuse = 1 on a gradient block that is exactly what the last
 * clipnn_loss_grad produced, with unit norms from that backward when it
 * computed them (m->row_acc_order = the rule's order), theta's unit sums
 * of squares from the last update (theta_acc, or NULL when theta changed
 * since) and per-unit factors left in unit_scale ([n_units]). */
clipnn_status clipnn_clipper_apply_train(clipnn_clipper *c, clipnn_model *m, double precomputed_norm,
                                         const double *theta_acc, double *unit_scale, double *grad_scale,
                                         double *per_group_norms, clipnn_clip_record *rec);
/* The norm order the clipper's rule reads (2 for the Euclidean rules). */
double clipnn_clipper_norm_order(const clipnn_clipper *c);
/* The rule reads ||theta|| unit by unit (rows of W, biases): the update can
 * sum theta's squares while it writes theta (clipnn_optimizer_step_units). */
int clipnn_clipper_reads_theta_units(const clipnn_clipper *c);
/* The rule reads only 2-norms of units and acts through unit factors, never
 * through the gradient's entries: a batch-of-one backward may leave
 * dW = d a^T unformed (clipnn_model.lazy_rank1). */
int clipnn_clipper_reads_unit_norms_only(const clipnn_clipper *c);

/* The update of clipnn_train (src/optim.c): clipnn_optimizer_step on
 * m->params with m->grads, unit by unit (rows of W, bias vectors), the
 * gradient of unit u scaled by grad_scale * unit_scale[u] (unit_scale may
 * be NULL); theta_acc ([n_units], may be NULL) receives the sum of squares
 * of every unit after the update. */
clipnn_status clipnn_optimizer_step_units(clipnn_optimizer *o, clipnn_model *m, double lr, double grad_scale,
                                          const double *unit_scale, double *theta_acc);

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

/* ------------------------------------------- atomic files (src/checkpoint.c) */

/* Writes the contents of a file; returns 0 or the errno of a failed write. */
typedef int (*clipnn_fill_fn)(FILE *f, void *user);
/* Write path atomically: fill() writes PATH.tmp.XXXXXX beside it, which is
 * flushed, fsynced and renamed over path, then the directory is fsynced. On
 * failure the temporary file is removed, an existing path is left as it was,
 * and the IO message says "PATH: <what> not saved (...)". */
clipnn_status clipnn_write_atomic(const char *path, const char *what, clipnn_fill_fn fill, void *user);

/* ----------------------------------------------------------- threading */

int clipnn_threads_for(size_t work); /* threads worth using for `work` element ops */
void clipnn_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- built-in */

/* The 8x8 digits CSV (gzip), embedded at build time. */
extern const unsigned char clipnn_digits_csv_gz[];
extern const unsigned char clipnn_digits_csv_gz_end[];

#endif
