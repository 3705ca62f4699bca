/* The network: model object, dense and activation kernels, losses, the
 * double reference path, vector norms. Private; builds on base. */
#ifndef CLIPNN_NN_H
#define CLIPNN_NN_H

#include "base/base.h"

/* ------------------------------------ recurrent kernels (recurrent.c) */

/* Recurrent cells, exactly torch.nn.RNN (tanh, relu), nn.LSTM and nn.GRU with
 * batch_first = True. G = gates per cell (1, 1, 4, 3). A layer's parameters
 * are one block [W_ih [G h][in], W_hh [G h][h], b_ih [G h], b_hh [G h]]
 * (torch's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 in order),
 * gate blocks in torch's order: LSTM i, f, g, o; GRU r, z, n. */
typedef enum {
    CLIPNN_CELL_RNN_TANH = 0, /* h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) */
    CLIPNN_CELL_RNN_RELU,     /* the same with relu */
    CLIPNN_CELL_LSTM,         /* c_t = f c_{t-1} + i g, h_t = o tanh(c_t) */
    CLIPNN_CELL_GRU,          /* n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1} */
    CLIPNN_CELL_COUNT
} clipnn_cell;

const char *clipnn_cell_name(clipnn_cell cell); /* "rnn-tanh", "rnn-relu", "lstm", "gru" */
clipnn_status clipnn_cell_parse(const char *name, clipnn_cell *out);
size_t clipnn_cell_gates(clipnn_cell cell); /* G; 0 for an invalid cell */

/* One recurrent layer over one chunk of B sequences of T steps. */
typedef struct {
    clipnn_cell cell;
    size_t in;     /* features of x_t */
    size_t hidden; /* h */
    size_t batch;  /* B */
    size_t steps;  /* T */
} clipnn_rec_shape;

/* Offsets of the four tensors in a layer's parameter (and gradient) block. */
typedef struct {
    size_t w_ih, w_hh, b_ih, b_hh, total;
} clipnn_rec_params;

clipnn_status clipnn_rec_param_layout(clipnn_cell cell, size_t in, size_t hidden, clipnn_rec_params *out);
/* Elements (floats, or doubles for the _d kernels) of the workspace that a
 * forward and the backward after it share: the gate activations, h_{t-1}
 * of every step, c_t (LSTM) or W_hn h_{t-1} + b_hn (GRU), and the carried
 * gradients. Checks the shape and that every BLAS dimension fits an int. */
clipnn_status clipnn_rec_workspace_size(const clipnn_rec_shape *s, size_t *elements);
/* Elements of the scratch that clipnn_rec_example_sqnorms needs. */
clipnn_status clipnn_rec_norm_scratch_size(const clipnn_rec_shape *s, size_t *elements);

/* Forward over the chunk. x: row (b, t) at x + (b T + t) x_stride, x_stride
 * >= in (so x may be a strided view). h0, c0: [B][h] initial state, NULL =
 * zeros. Writes H [B][T][h] (every h_t), the final state hT, cT [B][h]
 * (either may be NULL) to carry into the next chunk, and the caches of the
 * backward into work (so each layer of a stack has its own workspace). The
 * c arguments here and below are the LSTM's cell state, ignored by the
 * other cells. No allocation. The float forward, backward and
 * clipnn_rec_param_grads run on the library's threads (at most one per 64
 * hidden units) when a step's recurrent product (B G h^2 multiply-adds)
 * reaches 2 clipnn_parallel_macs, on all of them when clipnn_parallel_macs
 * is 0; results depend on the thread count only (the _d kernels: one
 * thread). */
clipnn_status clipnn_rec_forward(const clipnn_rec_shape *s, const float *params, const float *x, size_t x_stride,
                                 const float *h0, const float *c0, float *H, float *hT, float *cT, float *work);
/* Backpropagation through time over the chunk of the last forward on work
 * (whose caches it consumes: run the forward again before another backward).
 * dH [B][T][h]: d loss / d h_t from above (NULL = zero: only dhT feeds in);
 * dhT, dcT: the gradient carried back from a later chunk (NULL = zero).
 * last_steps: the gradient flows back through the last last_steps steps
 * only (0 = all T); earlier steps are constants, their dH is ignored, their
 * dx rows are 0 and dh0 = dc0 = 0. Adds (+=) into grad, a block of the
 * parameters' layout (NULL: no parameter gradients); writes dx [B][T][in] (contiguous) and dh0, dc0 [B][h],
 * each skipped when NULL. */
clipnn_status clipnn_rec_backward(const clipnn_rec_shape *s, const float *params, const float *x, size_t x_stride,
                                  const float *dH, const float *dhT, const float *dcT, size_t last_steps,
                                  float *grad, float *dx, float *dh0, float *dc0, float *work);
/* clipnn_rec_backward that also writes trace [B][T][h] (NULL: not wanted):
 * d loss / d h_t of every step, the whole of it (dH of the step and what
 * flows back from the steps after), as the backward forms it; the rows of
 * steps before the last last_steps are 0. */
clipnn_status clipnn_rec_backward_trace(const clipnn_rec_shape *s, const float *params, const float *x,
                                        size_t x_stride, const float *dH, const float *dhT, const float *dcT,
                                        size_t last_steps, float *grad, float *dx, float *dh0, float *dc0,
                                        float *work, float *trace);
/* The state after the first t steps (1 <= t <= steps) of the last forward
 * on work, whose H it wrote: h_t [B][h] into h and, for an LSTM, c_t into c
 * (may be NULL). A backward leaves both readable. */
clipnn_status clipnn_rec_state_after(const clipnn_rec_shape *s, const float *H, const float *work, size_t t, float *h,
                                     float *c);
/* After a backward: the squared Frobenius norm of each example's gradient,
 * per tensor: sqnorms[b][4] = W_ih, W_hh, b_ih, b_hh of example b alone (an
 * example's gradient is its sum over steps). x as given to the forward;
 * scratch sized by clipnn_rec_norm_scratch_size. */
clipnn_status clipnn_rec_example_sqnorms(const clipnn_rec_shape *s, const float *x, size_t x_stride,
                                         const float *work, float *scratch, double *sqnorms);
/* After a backward: scales every row of example b in work that the
 * parameter gradients are formed from by factor[b] (b < batch), as if that
 * example's d loss / d H had been scaled by it; consumes the backward's
 * gradients for anything else. */
clipnn_status clipnn_rec_scale_examples(const clipnn_rec_shape *s, const double *factor, float *work);
/* After a backward (and any clipnn_rec_scale_examples): adds (+=) into grad
 * the parameter gradients formed from work, what the backward added. x as
 * given to the forward. */
clipnn_status clipnn_rec_param_grads(const clipnn_rec_shape *s, const float *x, size_t x_stride, const float *work,
                                     float *grad);
/* Elements of the scratch for the per-example squared norm of a weight
 * [nd][na] shared by `steps` rows (the larger of the ghost and the
 * materialised form); fails when a size overflows or a BLAS int cannot
 * hold it. */
clipnn_status clipnn_shared_norm_scratch_size(size_t steps, size_t na, size_t nd, size_t *elements);
/* ||sum_t d_t a_t^T||_F^2 + ||sum_t d_t||^2: the squared norm of one
 * example's gradient of a dense layer (weight and bias) applied to its
 * `steps` rows, a [steps][na] and d [steps][nd] contiguous; in double, by
 * the ghost or the materialised form, whichever is cheaper. scratch: sized
 * by clipnn_shared_norm_scratch_size. */
double clipnn_shared_dense_sqnorm(size_t steps, const float *a, size_t na, const float *d, size_t nd,
                                  float *scratch);

/* The same three in double (the reference path; one kernel body with the
 * float path). */
clipnn_status clipnn_rec_forward_d(const clipnn_rec_shape *s, const double *params, const double *x, size_t x_stride,
                                   const double *h0, const double *c0, double *H, double *hT, double *cT,
                                   double *work);
clipnn_status clipnn_rec_backward_d(const clipnn_rec_shape *s, const double *params, const double *x,
                                    size_t x_stride, const double *dH, const double *dhT, const double *dcT,
                                    size_t last_steps, double *grad, double *dx, double *dh0, double *dc0,
                                    double *work);
clipnn_status clipnn_rec_backward_trace_d(const clipnn_rec_shape *s, const double *params, const double *x,
                                          size_t x_stride, const double *dH, const double *dhT, const double *dcT,
                                          size_t last_steps, double *grad, double *dx, double *dh0, double *dc0,
                                          double *work, double *trace);
clipnn_status clipnn_rec_example_sqnorms_d(const clipnn_rec_shape *s, const double *x, size_t x_stride,
                                           const double *work, double *scratch, double *sqnorms);

/* The spectral radius of a[n][n] (row stride lda) by power iteration in
 * double from a start drawn from rng. v, w: [n] scratch. */
double clipnn_spectral_radius(const float *a, size_t n, size_t lda, double *v, double *w, clipnn_rng *rng);

/* ------------------------------------------------------------- models */

/* What the workspace holds (bits of clipnn_workspace.holds). */
enum {
    CLIPNN_WS_ACTIVATIONS = 1, /* pre and post of every layer */
    CLIPNN_WS_DELTAS = 2,      /* delta of every layer: d mean-loss / dz of a clipnn_loss_grad */
    CLIPNN_WS_GRADS = 4,       /* the gradient block is that backward's, every entry written */
    CLIPNN_WS_DW_PENDING = 8,  /* a parameter backward left its gradient for per-sample clipping to form */
};

/* The record of what the workspace holds, kept so that a call reading what
 * an earlier call left checks it (clipnn_workspace_require) instead of
 * reading whatever the last forward wrote. */
typedef struct {
    unsigned holds;       /* CLIPNN_WS_* bits */
    size_t batch;         /* rows written by that call */
    const char *writer;   /* the call that wrote it last (for messages), NULL: none since sized */
    uint64_t generation;  /* bumped by every call that overwrites the workspace */
    size_t losses_batch;  /* entries of losses from the last clipnn_loss_grad, 0: none */
} clipnn_workspace;

typedef struct {
    size_t in, out;
    clipnn_act act;
    size_t w_offset; /* W: [out][in] at params + w_offset */
    size_t b_offset; /* b: [out]     at params + b_offset */
    size_t unit_base; /* units (rows of W, then b as one unit): [unit_base, unit_base + out] */
} clipnn_layer;

/* A recurrent layer of the model's front; its four tensors (W_ih, W_hh,
 * b_ih, b_hh) sit at params + p_offset in the kernel's layout. */
typedef struct {
    clipnn_rec_shape shape;  /* cell, in, hidden; batch and steps are set per pass */
    clipnn_rec_params off;   /* the tensors' offsets inside the layer's block */
    size_t p_offset;         /* the layer's block in params and grads */
    float *H;                /* [max_batch][steps][hidden] h_t of the last pass */
    float *dH;               /* [max_batch][steps][hidden] d loss / d h_t from above */
    float *work;             /* the kernel's workspace (caches of the last forward) */
} clipnn_rec_layer;

/* A model is a front of n_rec recurrent layers over x rows read as
 * [steps][step_dim] (none for an MLP), then a head of n_layers dense
 * layers over the last step's h (or every step's, every_step). */
struct clipnn_model {
    size_t n_inputs;
    size_t n_layers;      /* dense layers of the head */
    clipnn_layer *layers; /* [n_layers] */
    size_t n_rec;         /* recurrent layers of the front, 0 for an MLP */
    clipnn_rec_layer *rec; /* [n_rec] */
    size_t steps, step_dim; /* x rows as [steps][step_dim] (an MLP: 1 step of n_inputs) */
    int every_step;       /* the head reads h_t of every step (its rows: batch x steps) */
    size_t n_params;
    float *params; /* [n_params] */
    float *grads;  /* [n_params] */
    size_t n_groups;
    clipnn_group *groups; /* [n_groups] every tensor: the front's four per layer, then W and b per dense layer */
    size_t *group_unit;   /* [n_groups] first unit of each group (a row of a weight, or a whole bias) */

    /* Workspace, sized by clipnn_model_reserve for max_batch rows. */
    size_t max_batch;
    float *workspace;  /* one block holding everything below */
    float **pre;       /* pre[l]: [max_rows][out_l] z = a W^T + b */
    float **post;      /* post[l]: [max_rows][out_l] act(z); == pre[l] for identity */
    float **delta;     /* delta[l]: [max_rows][out_l] d loss / d z_l */
    float *losses;     /* [max_rows] per-row losses of the last clipnn_loss_grad */
    float *head_in;    /* [max_batch][hidden] the last step's h, for a many-to-one head */
    float *head_dx;    /* [max_rows][hidden] d loss / d (the head's input) */
    const float *last_input; /* x of the last forward, [ws.batch][n_inputs] (the caller's memory) */
    const float *head_input; /* the dense head's input in the last pass (x for an MLP) */
    clipnn_workspace ws;
    double *row_acc; /* [n_units] unit norms of the last clipnn_loss_grad_fused that asked for them */
    size_t n_units;  /* units of every group */
    /* Scratch of the per-example norms (src/nn/per_example.c), sized with
     * the workspace; NULL for an MLP, which needs none. */
    double *example_sq;  /* [4 max_batch] a recurrent layer's per-example squared norms, per tensor */
    float *norm_scratch; /* behind example_sq in the same block */
    /* Gram matrices of a dense layer's rows ([2][gram_cap][gram_cap]), for
     * the norms of a gradient left unformed (clipnn_example_gram_reserve). */
    double *gram;
    size_t gram_cap;
};

/* The layer list and input shape a model was made from (*specs: [layers],
 * from clipnn_alloc, for clipnn_model_create_seq). */
clipnn_status clipnn_model_specs(const clipnn_model *m, clipnn_layer_spec **specs, clipnn_seq_shape *seq);

/* Rows the head runs for a batch: batch, or batch x steps for every_step. */
size_t clipnn_head_rows(const clipnn_model *m, size_t batch);

/* The recurrent front (src/nn/sequence.c). */
/* Floats of the front's buffers for max_batch sequences (0 for an MLP). */
clipnn_status clipnn_front_size(const clipnn_model *m, size_t max_batch, size_t *floats);
/* The largest batch up to max_batch (at least 1) whose workspace takes at
 * most bytes: evaluation goes in chunks of it, so that a deep, thin model
 * does not get a workspace far larger than itself. */
size_t clipnn_rows_within(const clipnn_model *m, size_t max_batch, double bytes);
/* Points the front's buffers into block, which holds clipnn_front_size floats. */
void clipnn_front_place(clipnn_model *m, size_t max_batch, float *block);
/* Where a backward leaves d loss / d h_t of every recurrent layer: dh,
 * the layers one after the other, each [batch][steps][hidden] (floats:
 * clipnn_front_trace_floats); the backward sets batch and steps to the
 * pass it traced (steps: a window's). */
typedef struct {
    float *dh;
    size_t batch, steps;
} clipnn_dh_trace;
size_t clipnn_front_trace_floats(const clipnn_model *m, size_t batch, size_t steps);
/* Runs the front over x [batch][n_inputs]; sets m->head_input. */
void clipnn_front_forward(clipnn_model *m, const float *x, size_t batch);
/* BPTT from m->head_dx (d loss / d the head's input) into m->grads (when
 * want_params), dx ([batch][n_inputs]) and tr (NULL: not wanted). */
void clipnn_front_backward(clipnn_model *m, size_t batch, int want_params, float *dx, clipnn_dh_trace *tr);
/* The front's initialisation: PyTorch's U(+-1/sqrt(hidden)) for all four tensors. */
void clipnn_front_init(clipnn_model *m, clipnn_rng *rng);
/* Recurrent layer l's input in the last pass: x or the layer below's H,
 * its rows *stride apart. */
const float *clipnn_front_layer_input(const clipnn_model *m, size_t l, size_t *stride);

/* Per-example gradients (src/nn/per_example.c), for DP-SGD: read what the
 * last backward left in the workspace (m->ws.batch examples; an example is
 * one row of an MLP, one whole sequence of a recurrent model, all its steps
 * when the head reads every step). */
/* Sizes the scratch of the per-example norms for max_batch examples;
 * nothing for an MLP. Called by clipnn_model_reserve. */
clipnn_status clipnn_example_scratch_reserve(clipnn_model *m, size_t max_batch);
/* sq[b] = the squared 2-norm of example b's share of the gradient of the
 * mean loss (every tensor), without forming it. */
void clipnn_example_sqnorms(const clipnn_model *m, double *sq);
/* g = the gradient of the last backward with example b's share scaled by
 * factor[b]: every tensor re-formed from the workspace, whose deltas are
 * scaled in place (consumed). */
void clipnn_example_reweight(clipnn_model *m, const double *factor, float *g);
/* Can the backward of this model leave its weight gradients unformed for
 * per-example clipping (clipnn_fused_opts.deltas_only)? A dense model with
 * one row per example. */
int clipnn_example_one_pass_ok(const clipnn_model *m);
/* Sizes m->gram for batches of up to max_batch rows (no more than the
 * batch below which a Gram matrix is ever the cheaper way). */
clipnn_status clipnn_example_gram_reserve(clipnn_model *m, size_t max_batch);
/* acc[group] = the squared 2-norm of every group (W, b of each dense layer)
 * of the gradient of the last backward, which left only the deltas
 * (deltas_only): per layer from the Gram matrices of its rows (B^2 (in +
 * out) / 2 multiply-adds) or, where that costs more than forming dW (B in
 * out), by forming dW into g and reading it. */
void clipnn_example_unformed_group_sumsq(clipnn_model *m, float *g, double *acc);
/* The groups' squared norms of the gradient with example i's share scaled
 * by factor[i], from the same Gram matrices, for the layers that took them
 * (so that a group no example's factor touched keeps its pre-clip norm
 * exactly); the other layers' entries of acc are left as they are. */
void clipnn_example_unformed_group_post(const clipnn_model *m, const double *factor, double *acc);
/* clipnn_example_reweight for a backward that left only the deltas (a
 * dense model): the deltas scaled, every dW and db formed once into g in
 * one parallel pass (the backward's split of rows), and each group's
 * squared norm (W, b of each layer) into group_acc, from the rows' sums of
 * squares taken while they are in cache. */
void clipnn_example_reweight_once(clipnn_model *m, const double *factor, float *g, double *group_acc);

/* A window of truncated backpropagation through time: one pass of the
 * front over `steps` steps from a given state, the loss on some of its
 * steps and the gradient through the last `back` of them (the steps before
 * are constants). Steps count from the window's first; its input x is
 * [batch][steps][step_dim]. */
typedef struct {
    size_t steps;          /* steps forwarded, 1 to the model's */
    size_t loss_from;      /* many-to-many: the steps [loss_from, steps) have targets; many-to-one: 0, the last step */
    size_t back;           /* the gradient flows back through the last `back` steps, 1 to steps */
    const float *state_in; /* every layer's state before the first step (layout below); NULL: zeros */
    float *state_out;      /* receives every layer's state after carry_at steps; may be state_in; NULL: not wanted */
    size_t carry_at;       /* 0 to steps */
} clipnn_window;

/* The state of the front for `batch` sequences, layer after layer: h
 * [batch][hidden], then for an LSTM c [batch][hidden]. Its floats: */
size_t clipnn_front_state_floats(const clipnn_model *m, size_t batch);
/* The front over window w of x; sets m->head_input to the rows with a loss
 * and writes w->state_out. */
void clipnn_front_forward_window(clipnn_model *m, const float *x, size_t batch, const clipnn_window *w);
/* BPTT of that window from m->head_dx into m->grads (and tr, NULL: none). */
void clipnn_front_backward_window(clipnn_model *m, size_t batch, const clipnn_window *w, clipnn_dh_trace *tr);
/* dst [batch][to - from][width] = the steps [from, to) of each sequence of
 * src [batch][steps][width]. */
void clipnn_slice_steps(float *dst, const float *src, size_t batch, size_t steps, size_t width, size_t from,
                        size_t to);
/* Rows the head runs for window w: batch, or batch x its steps with a loss. */
size_t clipnn_window_rows(const clipnn_model *m, size_t batch, const clipnn_window *w);

/* clipnn_model_rec_radius of a valid layer and gate with the caller's
 * scratch ([2 hidden]): no allocation. */
double clipnn_rec_block_radius(const clipnn_model *m, size_t layer, size_t gate, double *scratch);

/* Input of layer l for the last forward: x for l = 0, post[l-1] otherwise. */
const float *clipnn_layer_input(const clipnn_model *m, size_t l);

/* Record that the workspace now holds `holds` (CLIPNN_WS_* bits) for batch
 * rows, written by the call named writer; bumps the generation. */
void clipnn_workspace_mark(clipnn_model *m, unsigned holds, size_t batch, const char *writer);
/* CLIPNN_OK when the workspace holds every bit of need; otherwise
 * CLIPNN_ERR_STATE with one line: who refuses, which call must come first,
 * and which call wrote the workspace last. */
clipnn_status clipnn_workspace_require(const clipnn_model *m, unsigned need, const char *who, const char *first);

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
    /* Not NULL: the front's backward leaves d loss / d h_t there. */
    clipnn_dh_trace *trace;
    /* Per-sample clipping in one backward (clipnn_example_one_pass_ok):
     * leave every layer's delta and form no weight or bias gradient (and
     * no unit norms); the clipper forms each once from the rescaled
     * deltas. */
    int deltas_only;
    /* Not NULL: called by the calling thread while the backward runs, each
     * time grads[from, n_params) has reached its final value (after each
     * dense layer's W and b, top layer first, then from = 0 at the end), so
     * that a caller can start sending that part while the rest is computed
     * (the data-parallel all-reduce). Not called for a gradient left
     * unformed (lazy_rank1 with dW unwritten, deltas_only). */
    void (*grads_final)(void *user, size_t from);
    void *grads_final_user;
} clipnn_fused_opts;

/* Does a backward of `batch` rows under f (may be NULL) leave dW unformed? */
int clipnn_fused_dw_unformed(const clipnn_fused_opts *f, size_t batch);

/* clipnn_loss_grad with the fused step's options (f NULL: none). */
clipnn_status clipnn_loss_grad_fused(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                                     const float *y, size_t batch, const clipnn_fused_opts *f, double *loss_out,
                                     float *dx);

/* clipnn_loss_grad_fused over window w of a model with recurrent layers:
 * the mean loss of the window's rows with a loss, y [rows][n_outputs]
 * (clipnn_window_rows), and its parameter gradient (lo->want_params must
 * be set). The workspace then holds the gradient only: the per-example
 * calls refuse it. */
clipnn_status clipnn_loss_grad_window(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                      size_t batch, const clipnn_window *w, const clipnn_fused_opts *f,
                                      double *loss_out);

/* ------------------------------------------------ kernels (src/nn/dense.c) */

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

/* -------------------------------------------- kernels (src/nn/activation.c) */

/* z[n] += b[n]; y[n] = act(z[n]) in one pass (y may be z). */
void clipnn_bias_act_forward(clipnn_act act, float *z, float *y, const float *b, size_t n);

/* y[n] = act(x[n]); may be in place. */
void clipnn_act_forward(clipnn_act act, float *y, const float *x, size_t n);
/* d[n] *= act'(z) given z = pre-activation and y = act(z). */
void clipnn_act_backward(clipnn_act act, float *d, const float *z, const float *y, size_t n);
double clipnn_act_eval_d(clipnn_act act, double x);  /* double reference */
double clipnn_act_deriv_d(clipnn_act act, double x); /* double reference */

/* ------------------------------------------- reference (src/nn/reference.c) */

/* The reference's forward in double with plain loops: zs[l] (z of layer l)
 * and as[l + 1] (its activations) for batch rows, from the input as[0];
 * the weights from theta ([n_params]), or the model's own when NULL. */
void clipnn_reference_forward(const clipnn_model *m, const double *theta, size_t batch, double *const *zs,
                              double *const *as);

/* ------------------------------------------------ kernels (src/nn/loss.c) */

/* What the loss kernels assume of their targets, checked once per call:
 * a known loss kind, class indices (xent, margin) that name one of k
 * outputs, margin with at least 2 outputs. The targets of rows rows in
 * float (yf) or double (yd, when yf is NULL). */
clipnn_status clipnn_loss_check_targets(const clipnn_loss_options *lo, size_t k, const float *yf, const double *yd,
                                        size_t rows);
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
 * <= 6e-7), for the unit norms of the backward and of theta. */
double clipnn_sumsq_blocked(const float *v, size_t n);
/* The same for the squared distance sum (v_i - c_i)^2 (the float
 * differences add one rounding: <= 7e-7). */
double clipnn_sumsq_diff_blocked(const float *v, const float *c, size_t n);
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
