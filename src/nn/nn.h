/* The network: model object, dense and activation kernels, losses, the
 * double reference path, vector norms. Private; builds on base. */
#ifndef CLIPNN_NN_H
#define CLIPNN_NN_H

#include "base/base.h"

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
    double *row_acc; /* [n_units] unit norms of the last clipnn_loss_grad_fused that asked for them */
    size_t n_units;  /* sum over layers of out + 1 */
};

/* Input of layer l for the last forward: x for l = 0, post[l-1] otherwise. */
const float *clipnn_layer_input(const clipnn_model *m, size_t l);

/* What clipnn_train's fused step asks of one backward; given per call, so
 * that no call leaves a mode on the model for another to read. */
typedef struct {
    /* > 0: leave in m->row_acc[unit] the accumulation (clipnn_norm_accumulate,
     * this order) of each unit of the gradient (a row of dW, or a whole
     * db), computed by the thread that wrote the row while it is in its
     * cache. 0: no unit norms. */
    double unit_norm_order;
    /* For a batch-of-one step whose clipping reads only the unit 2-norms:
     * leave dW (= d a^T) unwritten; clipnn_optimizer_step_units, given the
     * same options, forms each row from delta and the layer input instead
     * (saves writing and re-reading every weight gradient). */
    int lazy_rank1;
} clipnn_fused_opts;

/* Does a backward of `batch` rows under f (may be NULL) leave dW unformed? */
int clipnn_fused_dw_unformed(const clipnn_fused_opts *f, size_t batch);

/* clipnn_loss_grad with the fused step's options (f NULL: none). */
clipnn_status clipnn_loss_grad_fused(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                                     const float *y, size_t batch, const clipnn_fused_opts *f, double *loss_out,
                                     float *dx);

/* ------------------------------------------------ kernels (src/dense.c) */

/* dW[out][in] = dz[B][out]^T a[B][in];  db[out] = sum_B dz;
 * da[B][in] = dz[B][out] W[out][in] (skipped when da is NULL). */
void clipnn_dense_backward(float *dW, float *db, float *da, const float *dz, const float *a,
                           const float *W, size_t B, size_t in, size_t out);

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

/* ------------------------------------------- reference (src/reference.c) */

/* The reference's forward in double with plain loops: zs[l] (z of layer l)
 * and as[l + 1] (its activations) for batch rows, from the input as[0];
 * the weights from theta ([n_params]), or the model's own when NULL. */
void clipnn_reference_forward(const clipnn_model *m, const double *theta, size_t batch, double *const *zs,
                              double *const *as);

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

/* p >= 1 or p = inf: an order the norms accept. */
int clipnn_norm_order_valid(double p);

/* ------------------------------------------------- vectors (vector.c) */

/* Index of the first largest of z[k]. */
size_t clipnn_argmax(const float *z, size_t k);
/* sum a_i b_i and its square root for b = a, in plain order. */
double clipnn_dot_d(const double *a, const double *b, size_t n);
double clipnn_nrm2_d(const double *a, size_t n);

#endif
