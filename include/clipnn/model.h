/* clipnn: Models (multilayer perceptrons, recurrent networks): creation, initialization, forward, loss and
 * gradient, and vector norms. */
#ifndef CLIPNN_PUBLIC_MODEL_H
#define CLIPNN_PUBLIC_MODEL_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

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

CLIPNN_API const char *clipnn_act_name(clipnn_act act);
CLIPNN_API clipnn_status clipnn_act_parse(const char *name, clipnn_act *out);

typedef enum {
    CLIPNN_LOSS_MSE = 0, /* (z - y)^2, mean over all elements (examples x outputs) (eq. 4) */
    CLIPNN_LOSS_XENT,    /* softmax cross-entropy on logits, mean over the examples (eq. 5/6) */
    CLIPNN_LOSS_BCE,     /* sigmoid binary cross-entropy on logits, mean over all elements (examples x outputs) */
    CLIPNN_LOSS_MARGIN,  /* CW margin max(z_y - max_{i!=y} z_i + kappa, 0), mean over the examples */
    CLIPNN_LOSS_COUNT
} clipnn_loss;

CLIPNN_API const char *clipnn_loss_name(clipnn_loss loss);
CLIPNN_API clipnn_status clipnn_loss_parse(const char *name, clipnn_loss *out);

typedef enum {
    CLIPNN_INIT_XAVIER = 0, /* Glorot uniform, bias 0 */
    CLIPNN_INIT_HE,         /* Kaiming normal (fan_in), bias 0 */
    CLIPNN_INIT_TORCH,      /* torch.nn.Linear default: U(+-1/sqrt(fan_in)) */
    CLIPNN_INIT_COUNT
} clipnn_init;

/* "xavier", "he", "torch"; parse also takes "glorot" and "kaiming", and
 * fails with INVALID_ARG and a message listing the valid names. */
CLIPNN_API const char *clipnn_init_name(clipnn_init init);
CLIPNN_API clipnn_status clipnn_init_parse(const char *name, clipnn_init *out);

typedef struct clipnn_model clipnn_model;

/* widths[l] is the output width of layer l; acts[l] its activation. */
CLIPNN_API clipnn_status clipnn_model_create(clipnn_model **out, size_t n_inputs, size_t n_layers,
                                  const size_t *widths, const clipnn_act *acts);
CLIPNN_API void clipnn_model_free(clipnn_model *m);
/* Deep copy (parameters, not gradients or workspace). */
CLIPNN_API clipnn_status clipnn_model_clone(const clipnn_model *m, clipnn_model **out);

/* Layer kinds. A recurrent layer is exactly PyTorch's (batch_first): rnn is
 * nn.RNN with tanh (rnn-relu: with relu), lstm nn.LSTM (gates i, f, g, o),
 * gru nn.GRU (gates r, z, n); each has the tensors W_ih [G h][in], W_hh
 * [G h][h], b_ih [G h], b_hh [G h] (G = 1, 4, 3 gates, h its width), its
 * state starts at zero for every sequence (clipnn_train can instead carry
 * it from batch to batch: carry_state). */
typedef enum {
    CLIPNN_LAYER_DENSE = 0,
    CLIPNN_LAYER_RNN,      /* Elman, tanh */
    CLIPNN_LAYER_RNN_RELU, /* Elman, relu */
    CLIPNN_LAYER_LSTM,
    CLIPNN_LAYER_GRU,
    CLIPNN_LAYER_COUNT
} clipnn_layer_kind;

/* "dense", "rnn", "rnn-relu", "lstm", "gru". */
CLIPNN_API const char *clipnn_layer_kind_name(clipnn_layer_kind kind);
CLIPNN_API clipnn_status clipnn_layer_kind_parse(const char *name, clipnn_layer_kind *out);

typedef struct {
    clipnn_layer_kind kind;
    size_t width; /* units of a dense layer, hidden size h of a recurrent one */
    clipnn_act act; /* dense layers only */
} clipnn_layer_spec;

/* A model over sequences: each input row is steps x step_dim values, step
 * after step ([batch][steps][step_dim], batch_first). The recurrent layers
 * come first (stacked: each reads the h_t of the one before), then at least
 * one dense layer. every_step = 0: the dense layers read the last step's h
 * (many-to-one: n_outputs values per example); 1: they read every step's h
 * (many-to-many: [steps][n_outputs] per example, and the loss is the mean
 * over examples x steps, PyTorch's on the flattened [batch * steps] rows).
 * With no recurrent layer this is clipnn_model_create with steps x
 * step_dim inputs. */
typedef struct {
    size_t steps, step_dim;
    int every_step;
} clipnn_seq_shape;

CLIPNN_API clipnn_status clipnn_model_create_seq(clipnn_model **out, const clipnn_seq_shape *seq, size_t n_layers,
                                                 const clipnn_layer_spec *layers);

/* Dense layers by init; recurrent layers by PyTorch's default,
 * U(+-1/sqrt(h)) for all four tensors, whatever init says. */
CLIPNN_API clipnn_status clipnn_model_init(clipnn_model *m, clipnn_init init, uint64_t seed);

typedef enum {
    CLIPNN_RECURRENT_INIT_TORCH = 0,  /* keep U(+-1/sqrt(h)) */
    CLIPNN_RECURRENT_INIT_ORTHOGONAL, /* each gate's h x h block of W_hh orthogonal (torch.nn.init.orthogonal_) */
    CLIPNN_RECURRENT_INIT_SCALED,     /* W_hh's blocks scaled to spectral radius `radius` */
    CLIPNN_RECURRENT_INIT_SPARSE,     /* a few N(0, 1) weights per row, then scaled to `radius` */
    CLIPNN_RECURRENT_INIT_COUNT
} clipnn_recurrent_init;

/* "torch", "orthogonal", "scaled", "sparse". */
CLIPNN_API const char *clipnn_recurrent_init_name(clipnn_recurrent_init how);
CLIPNN_API clipnn_status clipnn_recurrent_init_parse(const char *name, clipnn_recurrent_init *out);

/* Re-initialises every recurrent layer's W_hh (after clipnn_model_init):
 * orthogonal draws a Gaussian matrix per gate block and keeps the Q of its
 * QR factorisation (signs fixed by R's diagonal), scaled divides each block
 * by its spectral radius (power iteration on the block) and multiplies by
 * radius (> 0 and finite; read by scaled and sparse). sparse is
 * clipnn_model_init_recurrent_sparse with CLIPNN_SPARSE_CONNECTIONS. A model
 * without recurrent layers is left unchanged. */
CLIPNN_API clipnn_status clipnn_model_init_recurrent(clipnn_model *m, clipnn_recurrent_init how, double radius,
                                                     uint64_t seed);
/* The sparse initialisation of Martens (2010), which Sutskever et al. (2013)
 * and Pascanu et al. (2013) give recurrent networks: in each gate's h x h
 * block of W_hh, every row (a unit's incoming weights) gets `connections`
 * nonzero weights N(0, 1) in columns drawn without replacement (all h
 * columns when connections >= h), the rest zero; the block is then scaled
 * to spectral radius `radius` as scaled does. connections >= 1. */
#define CLIPNN_SPARSE_CONNECTIONS 15
CLIPNN_API clipnn_status clipnn_model_init_recurrent_sparse(clipnn_model *m, size_t connections, double radius,
                                                            uint64_t seed);

/* Gate blocks of recurrent layer `layer`'s W_hh ([G h][h], G blocks of
 * h x h): 1 (rnn, rnn-relu), 4 (lstm: i, f, g, o), 3 (gru: r, z, n); 0 for
 * a dense layer or past the last. */
CLIPNN_API size_t clipnn_model_layer_gates(const clipnn_model *m, size_t layer);
/* The spectral radius (largest |eigenvalue|) of gate block `gate` of
 * recurrent layer `layer`'s W_hh, by power iteration in double from a fixed
 * start: the mean growth of log ||W v|| over 2000 products after 200, which
 * also converges when the largest eigenvalues are a complex pair. The
 * stacked W_hh of an LSTM or GRU is not square and has no eigenvalues;
 * each block is what clipnn_model_init_recurrent scales. */
CLIPNN_API clipnn_status clipnn_model_rec_radius(const clipnn_model *m, size_t layer, size_t gate, double *out);

/* Values per input row (steps x step_dim for a model over sequences), and
 * outputs per output row (per step for a many-to-many model). */
CLIPNN_API size_t clipnn_model_n_inputs(const clipnn_model *m);
CLIPNN_API size_t clipnn_model_n_outputs(const clipnn_model *m);
/* Layers are counted front to back, recurrent layers first. For a
 * recurrent layer the width is h and the activation tanh (rnn, lstm, gru)
 * or relu (rnn-relu). */
CLIPNN_API size_t clipnn_model_n_layers(const clipnn_model *m);
CLIPNN_API size_t clipnn_model_layer_width(const clipnn_model *m, size_t layer);
CLIPNN_API clipnn_act clipnn_model_layer_act(const clipnn_model *m, size_t layer);
CLIPNN_API clipnn_layer_kind clipnn_model_layer_kind(const clipnn_model *m, size_t layer);
/* The input shape: steps 0 (and step_dim n_inputs) for a model without
 * recurrent layers. */
CLIPNN_API clipnn_seq_shape clipnn_model_seq_shape(const clipnn_model *m);
/* Output rows per example: steps for a many-to-many model, else 1. */
CLIPNN_API size_t clipnn_model_output_steps(const clipnn_model *m);
CLIPNN_API size_t clipnn_model_n_params(const clipnn_model *m);
/* The parameter and gradient blocks, [n_params] each (layout: clipnn_group).
 * Both keep their address from clipnn_model_create to clipnn_model_free;
 * the parameters change in place (init, training, optimizer steps,
 * projection), the gradients are overwritten by clipnn_loss_grad (with
 * want_params) and scaled in place by clipping. */
CLIPNN_API float *clipnn_model_params(clipnn_model *m); /* [n_params] */
CLIPNN_API float *clipnn_model_grads(clipnn_model *m);  /* [n_params], same layout */

/* Parameter groups: one per tensor, in the block's order: W_ih, W_hh, b_ih,
 * b_hh of each recurrent layer, then W and b of each dense layer (for an MLP
 * W of layer l is group 2l, b group 2l+1). A unit is a row of a weight
 * (rows x cols = out x in); a bias is one unit of length out (rows = 1).
 * layer counts as clipnn_model_n_layers does. */
typedef struct {
    size_t offset; /* into the params / grads block */
    size_t size;
    size_t rows, cols;
    size_t layer;
    int is_bias;
} clipnn_group;

/* 4 per recurrent layer, 2 per dense layer; group index (all zero past
 * the last). */
CLIPNN_API size_t clipnn_model_n_groups(const clipnn_model *m);
CLIPNN_API clipnn_group clipnn_model_group(const clipnn_model *m, size_t index);

/* The workspace. Each model holds one workspace: the activations of the
 * last forward and, after clipnn_loss_grad, the backward's deltas and the
 * per-example losses. Some calls read what an earlier call left there:
 *
 *   clipnn_per_example_grad_norms    needs clipnn_loss_grad with want_params
 *                                    or dx as the last call that wrote it;
 *   clipnn_clipper_apply, rule       needs clipnn_loss_grad with want_params
 *     CLIPNN_CLIP_PER_SAMPLE         as the last call that wrote it;
 *   clipnn_model_last_losses         the losses of the last clipnn_loss_grad.
 *
 * The first two refuse with CLIPNN_ERR_STATE, saying which call must come
 * first, when another call wrote the workspace since; they read the result
 * for the batch of that clipnn_loss_grad (one entry per example). The
 * calls that overwrite the workspace: clipnn_forward, clipnn_loss_grad,
 * clipnn_model_reserve when it grows the workspace (so does a forward or
 * clipnn_loss_grad of a batch larger than reserved), every call that runs
 * the model (evaluation, training, input optimisation, attacks, diagnosis),
 * and per-sample clipping, which rescales the deltas it reads: it consumes
 * the backward (a second clipping or the per-example norms need a new
 * clipnn_loss_grad). Changing the parameters or the gradient block
 * invalidates nothing: the deltas stay those of the parameters at the
 * backward. The model keeps a pointer to the x of the last forward, not a
 * copy: the calls above read the first layer's input from it, so x must
 * stay allocated and unchanged until they have run. */

/* Size the workspace for batches up to max_batch. Called once before
 * training, training steps never allocate. A forward or clipnn_loss_grad of
 * a larger batch grows the workspace itself (an allocation). Growing
 * discards what the workspace held; a max_batch within the current size
 * changes nothing. */
CLIPNN_API clipnn_status clipnn_model_reserve(clipnn_model *m, size_t max_batch);

/* x: [batch][n_inputs] (with recurrent layers each row is [steps][step_dim]).
 * *out points into the model's workspace: the raw outputs (logits),
 * [batch][n_outputs], or [batch][steps][n_outputs] for a model that gives
 * an output at every step (clipnn_model_output_steps rows per example);
 * valid until the next call that overwrites the workspace. */
CLIPNN_API clipnn_status clipnn_forward(clipnn_model *m, const float *x, size_t batch, const float **out);

typedef struct {
    clipnn_loss loss;
    double kappa;    /* CW margin */
    int want_params; /* fill the gradient block (default 1) */
} clipnn_loss_options;
CLIPNN_API clipnn_loss_options clipnn_loss_options_default(void);

/* Forward, loss and backward. y: one target row per output row, as
 * clipnn_forward's rows: [batch] class indices or [batch][n_outputs]
 * values, [batch][steps] or [batch][steps][n_outputs] for a model that
 * gives an output at every step (a class index that names no output is
 * refused with CLIPNN_ERR_SHAPE). Gradients of the mean loss (over the
 * output rows; over all their elements for MSE and BCE) go to the gradient
 * block when lo->want_params (overwritten, not accumulated); dx, when not
 * NULL, receives d(mean loss)/dx, [batch][n_inputs]. *loss_out (may be
 * NULL) receives the mean loss. The workspace then holds the deltas of
 * every layer when want_params or dx asked for them (the calls that read
 * them are listed above). */
CLIPNN_API clipnn_status clipnn_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                               const float *y, size_t batch, double *loss_out, float *dx);

/* The same computation in double precision with plain loops (no BLAS): the
 * oracle for tests and the diagnosis. y as for clipnn_loss_grad (checked
 * the same way); grad: [n_params] or NULL; dx: [batch][n_inputs] or NULL;
 * logits: clipnn_forward's rows ([batch][n_outputs] or
 * [batch][steps][n_outputs]) or NULL. Parameters are taken from the model
 * (or from params_override when not NULL). */
CLIPNN_API clipnn_status clipnn_reference_loss_grad(const clipnn_model *m, const double *params_override,
                                         const clipnn_loss_options *lo, const double *x,
                                         const double *y, size_t batch, double *loss_out,
                                         double *logits, double *grad, double *dx);

/* Per-row losses of the last clipnn_loss_grad (one made by clipnn_train
 * included): one entry per output row of its batch (per example, or per
 * example and step for a model that gives an output at every step; with
 * truncated backpropagation, per output row of the chunk), each the row's
 * loss (for MSE and BCE the mean over its outputs), so that their mean is
 * the batch loss. Valid until the next clipnn_loss_grad or until the workspace
 * grows (a forward leaves them); NULL when there are none. */
CLIPNN_API const float *clipnn_model_last_losses(const clipnn_model *m);

/* ----------------------------------------------------------------- norms */

/* p-norm of a flat vector accumulated in double. p >= 1; p = INFINITY for the
 * max norm. A NaN anywhere gives NaN, an Inf gives Inf. */
CLIPNN_API double clipnn_norm(const float *v, size_t n, double p);

/* Phase one of two-phase clipping: per-group norms into per_group
 * ([n_groups], may be NULL) and the total norm over all groups into *total
 * (may be NULL). Same semantics as torch.nn.utils.get_total_norm. */
CLIPNN_API clipnn_status clipnn_group_norms(const clipnn_model *m, const float *g, double p,
                                 double *per_group, double *total);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_MODEL_H */
