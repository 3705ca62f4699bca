/* Sequential MLP: construction, parameter layout, workspace, forward and
 * backward. Parameters sit in one block and gradients in another (W then b
 * for each layer) so that optimizers and clipping are flat loops. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

clipnn_status clipnn_model_create(clipnn_model **out, size_t n_inputs, size_t n_layers,
                                  const size_t *widths, const clipnn_act *acts) {
    if (!out || !widths || !acts) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: NULL argument");
    *out = NULL;
    if (n_inputs == 0 || n_layers == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: needs at least one input and one layer");
    /* BLAS takes int dimensions. */
    const size_t max_dim = (size_t)1 << 30;
    if (n_inputs > max_dim) return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: %zu inputs is too many", n_inputs);
    size_t n_params = 0, in = n_inputs;
    for (size_t l = 0; l < n_layers; l++) {
        if (widths[l] == 0 || widths[l] > max_dim)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu has width %zu", l, widths[l]);
        if ((unsigned)acts[l] >= CLIPNN_ACT_COUNT)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu has unknown activation %d", l,
                               (int)acts[l]);
        size_t w, wb;
        if (clipnn_mul_size(in, widths[l], &w) || clipnn_add_size(w, widths[l], &wb) ||
            clipnn_add_size(n_params, wb, &n_params))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: parameter count overflows");
        in = widths[l];
    }
    clipnn_model *m = clipnn_alloc_array(1, sizeof *m);
    if (!m) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory");
    m->n_inputs = n_inputs;
    m->n_layers = n_layers;
    m->n_params = n_params;
    m->layers = clipnn_alloc_array(n_layers, sizeof *m->layers);
    m->params = clipnn_alloc_array(n_params, sizeof *m->params);
    m->grads = clipnn_alloc_array(n_params, sizeof *m->grads);
    m->pre = clipnn_alloc_array(n_layers, sizeof *m->pre);
    m->post = clipnn_alloc_array(n_layers, sizeof *m->post);
    m->delta = clipnn_alloc_array(n_layers, sizeof *m->delta);
    size_t units = 0;
    for (size_t l = 0; l < n_layers; l++) units += widths[l] + 1;
    m->n_units = units;
    m->row_acc = clipnn_alloc_array(units, sizeof *m->row_acc);
    if (!m->layers || !m->params || !m->grads || !m->pre || !m->post || !m->delta || !m->row_acc) {
        clipnn_model_free(m);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for %zu parameters", n_params);
    }
    size_t offset = 0, unit = 0;
    in = n_inputs;
    for (size_t l = 0; l < n_layers; l++) {
        clipnn_layer *L = &m->layers[l];
        L->unit_base = unit;
        unit += widths[l] + 1;
        L->in = in;
        L->out = widths[l];
        L->act = acts[l];
        L->w_offset = offset;
        L->b_offset = offset + in * widths[l];
        offset = L->b_offset + widths[l];
        in = widths[l];
    }
    *out = m;
    return CLIPNN_OK;
}

void clipnn_model_free(clipnn_model *m) {
    if (!m) return;
    clipnn_free(m->layers);
    clipnn_free(m->params);
    clipnn_free(m->grads);
    clipnn_free(m->pre);
    clipnn_free(m->post);
    clipnn_free(m->delta);
    clipnn_free(m->row_acc);
    clipnn_free(m->workspace);
    clipnn_free(m);
}

clipnn_status clipnn_model_clone(const clipnn_model *m, clipnn_model **out) {
    size_t widths_buf[64], *widths = widths_buf;
    clipnn_act acts_buf[64], *acts = acts_buf;
    if (m->n_layers > 64) {
        widths = clipnn_alloc_array(m->n_layers, sizeof *widths);
        acts = clipnn_alloc_array(m->n_layers, sizeof *acts);
    }
    clipnn_status s = CLIPNN_ERR_NOMEM;
    if (widths && acts) {
        for (size_t l = 0; l < m->n_layers; l++) {
            widths[l] = m->layers[l].out;
            acts[l] = m->layers[l].act;
        }
        s = clipnn_model_create(out, m->n_inputs, m->n_layers, widths, acts);
        if (s == CLIPNN_OK) memcpy((*out)->params, m->params, m->n_params * sizeof *m->params);
    }
    if (widths != widths_buf) clipnn_free(widths);
    if (acts != acts_buf) clipnn_free(acts);
    if (s == CLIPNN_ERR_NOMEM) clipnn_fail(s, "model: out of memory while cloning");
    return s;
}

static const char *const init_names[CLIPNN_INIT_COUNT] = {
    [CLIPNN_INIT_XAVIER] = "xavier",
    [CLIPNN_INIT_HE] = "he",
    [CLIPNN_INIT_TORCH] = "torch",
};

const char *clipnn_init_name(clipnn_init init) {
    return (unsigned)init < CLIPNN_INIT_COUNT ? init_names[init] : "unknown";
}

clipnn_status clipnn_init_parse(const char *name, clipnn_init *out) {
    /* the other names the literature and the frameworks use */
    if (name && !strcmp(name, "glorot")) name = "xavier";
    if (name && !strcmp(name, "kaiming")) name = "he";
    int i = clipnn_lookup_name(init_names, CLIPNN_INIT_COUNT, name, "initialisation");
    if (i < 0) return CLIPNN_ERR_INVALID_ARG;
    *out = (clipnn_init)i;
    return CLIPNN_OK;
}

clipnn_status clipnn_model_init(clipnn_model *m, clipnn_init init, uint64_t seed) {
    if ((unsigned)init >= CLIPNN_INIT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: unknown initialisation %d", (int)init);
    clipnn_rng rng;
    clipnn_rng_seed(&rng, seed);
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        float *W = m->params + L->w_offset, *b = m->params + L->b_offset;
        double fan_in = (double)L->in, fan_out = (double)L->out;
        size_t nw = L->in * L->out;
        switch (init) {
        case CLIPNN_INIT_XAVIER: {
            double bound = sqrt(6.0 / (fan_in + fan_out));
            for (size_t i = 0; i < nw; i++) W[i] = (float)(bound * (2.0 * clipnn_rng_uniform(&rng) - 1.0));
            memset(b, 0, L->out * sizeof *b);
            break;
        }
        case CLIPNN_INIT_HE: {
            double std = sqrt(2.0 / fan_in);
            for (size_t i = 0; i < nw; i++) W[i] = (float)(std * clipnn_rng_normal(&rng));
            memset(b, 0, L->out * sizeof *b);
            break;
        }
        default: { /* CLIPNN_INIT_TORCH */
            double bound = 1.0 / sqrt(fan_in);
            for (size_t i = 0; i < nw; i++) W[i] = (float)(bound * (2.0 * clipnn_rng_uniform(&rng) - 1.0));
            for (size_t i = 0; i < L->out; i++) b[i] = (float)(bound * (2.0 * clipnn_rng_uniform(&rng) - 1.0));
        }
        }
    }
    return CLIPNN_OK;
}

size_t clipnn_model_n_inputs(const clipnn_model *m) { return m->n_inputs; }
size_t clipnn_model_n_outputs(const clipnn_model *m) { return m->layers[m->n_layers - 1].out; }
size_t clipnn_model_n_layers(const clipnn_model *m) { return m->n_layers; }
size_t clipnn_model_layer_width(const clipnn_model *m, size_t layer) {
    return layer < m->n_layers ? m->layers[layer].out : 0;
}
clipnn_act clipnn_model_layer_act(const clipnn_model *m, size_t layer) {
    return layer < m->n_layers ? m->layers[layer].act : CLIPNN_ACT_IDENTITY;
}
size_t clipnn_model_n_params(const clipnn_model *m) { return m->n_params; }
float *clipnn_model_params(clipnn_model *m) { return m->params; }
float *clipnn_model_grads(clipnn_model *m) { return m->grads; }
size_t clipnn_model_n_groups(const clipnn_model *m) { return 2 * m->n_layers; }

clipnn_group clipnn_model_group(const clipnn_model *m, size_t index) {
    clipnn_group g = {0};
    if (index >= 2 * m->n_layers) return g;
    const clipnn_layer *L = &m->layers[index / 2];
    g.layer = index / 2;
    g.is_bias = (int)(index % 2);
    if (g.is_bias) {
        g.offset = L->b_offset;
        g.rows = 1;
        g.cols = L->out;
    } else {
        g.offset = L->w_offset;
        g.rows = L->out;
        g.cols = L->in;
    }
    g.size = g.rows * g.cols;
    return g;
}

const float *clipnn_model_last_losses(const clipnn_model *m) {
    return m && m->ws.losses_batch ? m->losses : NULL;
}

const float *clipnn_layer_input(const clipnn_model *m, size_t l) {
    return l == 0 ? m->last_input : m->post[l - 1];
}

void clipnn_workspace_mark(clipnn_model *m, unsigned holds, size_t batch, const char *writer) {
    m->ws.holds = holds;
    m->ws.batch = batch;
    m->ws.writer = writer;
    m->ws.generation++;
}

clipnn_status clipnn_workspace_require(const clipnn_model *m, unsigned need, const char *who, const char *first) {
    if ((m->ws.holds & need) == need) return CLIPNN_OK;
    if (!m->ws.writer)
        return clipnn_fail(CLIPNN_ERR_STATE, "%s: call %s first; nothing has run on the model since its workspace "
                           "was sized", who, first);
    return clipnn_fail(CLIPNN_ERR_STATE, "%s: call %s first; the model's workspace holds what %s left (batch %zu)",
                       who, first, m->ws.writer, m->ws.batch);
}

clipnn_status clipnn_model_reserve(clipnn_model *m, size_t max_batch) {
    if (max_batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: batch size 0");
    if (max_batch <= m->max_batch) return CLIPNN_OK;
    if (max_batch > ((size_t)1 << 30))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: batch %zu is too large", max_batch);
    /* pre, delta, and post when the activation is not the identity. */
    size_t floats = max_batch, per_row;
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t copies = m->layers[l].act == CLIPNN_ACT_IDENTITY ? 2 : 3;
        if (clipnn_mul_size(m->layers[l].out, copies, &per_row) ||
            clipnn_mul_size(per_row, max_batch, &per_row) || clipnn_add_size(floats, per_row, &floats))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    }
    float *ws = clipnn_alloc_array(floats, sizeof *ws);
    if (!ws) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for a batch of %zu", max_batch);
    clipnn_free(m->workspace);
    m->workspace = ws;
    m->max_batch = max_batch;
    m->losses = ws;
    ws += max_batch;
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n = m->layers[l].out * max_batch;
        m->pre[l] = ws;
        ws += n;
        m->delta[l] = ws;
        ws += n;
        if (m->layers[l].act == CLIPNN_ACT_IDENTITY) {
            m->post[l] = m->pre[l];
        } else {
            m->post[l] = ws;
            ws += n;
        }
    }
    m->last_input = NULL;
    m->ws.losses_batch = 0;
    clipnn_workspace_mark(m, 0, 0, NULL);
    return CLIPNN_OK;
}

/* Threads worth using for one pass over the model with this batch. */
static int model_threads(const clipnn_model *m, size_t batch) { return clipnn_threads_for_macs(batch * m->n_params); }

/* Thread t of T: its slice of every layer's units, bias and activation
 * fused into the pass that follows the product while the slice is in L1;
 * a barrier between layers (the next one reads all of this one). */
static void forward_slice(clipnn_model *m, const float *x, size_t batch, int t, int T, clipnn_barrier *bar) {
    const float *a = x;
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        size_t lo, hi;
        clipnn_chunk(L->out, t, T, &lo, &hi);
        clipnn_dense_forward_cols(m->pre[l], a, m->params + L->w_offset, batch, L->in, L->out, lo, hi);
        for (size_t r = 0; r < batch && hi > lo; r++)
            clipnn_bias_act_forward(L->act, m->pre[l] + r * L->out + lo, m->post[l] + r * L->out + lo,
                                    m->params + L->b_offset + lo, hi - lo);
        a = m->post[l];
        clipnn_barrier_wait(bar, T);
    }
}

static clipnn_status forward_check(clipnn_model *m, const float *x, size_t batch) {
    if (!x || batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "forward: empty batch");
    if (batch > m->max_batch) {
        /* Growing allocates; training reserves its batch up front so that
         * its steps never come here. */
        clipnn_status s = clipnn_model_reserve(m, batch);
        if (s) return s;
    }
    return CLIPNN_OK;
}

static clipnn_status forward(clipnn_model *m, const float *x, size_t batch) {
    clipnn_status s = forward_check(m, x, batch);
    if (s) return s;
    int threads = model_threads(m, batch);
    m->last_input = x;
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, batch, "clipnn_forward");
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    forward_slice(m, x, batch, clipnn_thread_id(), clipnn_thread_count(), &bar);
    return CLIPNN_OK;
}

clipnn_status clipnn_forward(clipnn_model *m, const float *x, size_t batch, const float **out) {
    clipnn_status s = forward(m, x, batch);
    if (s == CLIPNN_OK && out) *out = m->post[m->n_layers - 1];
    return s;
}

/* Class indices must name an output; checked once per call (B values). */
static clipnn_status check_targets(const clipnn_model *m, const clipnn_loss_options *lo,
                                   const float *y, size_t batch) {
    if ((unsigned)lo->loss >= CLIPNN_LOSS_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: unknown kind %d", (int)lo->loss);
    if (lo->loss != CLIPNN_LOSS_XENT && lo->loss != CLIPNN_LOSS_MARGIN) return CLIPNN_OK;
    size_t k = clipnn_model_n_outputs(m);
    if (lo->loss == CLIPNN_LOSS_MARGIN && k < 2)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "loss: margin needs at least 2 outputs");
    for (size_t r = 0; r < batch; r++)
        if (!(y[r] >= 0.0f && y[r] < (float)k && y[r] == floorf(y[r])))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "loss: target %g of example %zu is not a class of %zu outputs",
                               (double)y[r], r, k);
    return CLIPNN_OK;
}

/* Backward for thread t of T. Thread t owns the same units as in the
 * forward: it scales its columns of delta[l] by act', forms its rows of
 * dW and db (and their norms, when asked, while the rows are in its
 * cache); after a barrier (da reads every column of delta[l]) it forms its
 * columns of da, which are its own units of layer l - 1, so the next layer
 * needs no barrier before its activation pass. */
static void backward_slice(clipnn_model *m, int want_params, const clipnn_fused_opts *f, float *dx, size_t batch,
                           int t, int T, clipnn_barrier *bar) {
    const double order = f ? f->unit_norm_order : 0;
    const int lazy = clipnn_fused_dw_unformed(f, batch);
    for (size_t l = m->n_layers; l-- > 0;) {
        const clipnn_layer *L = &m->layers[l];
        size_t lo, hi;
        clipnn_chunk(L->out, t, T, &lo, &hi);
        float *d = m->delta[l];
        for (size_t r = 0; r < batch && hi > lo; r++)
            clipnn_act_backward(L->act, d + r * L->out + lo, m->pre[l] + r * L->out + lo,
                                m->post[l] + r * L->out + lo, hi - lo);
        const float *a = clipnn_layer_input(m, l);
        if (want_params) {
            float *dW = m->grads + L->w_offset;
            clipnn_dense_weight_grad_rows(lazy ? NULL : dW, m->grads + L->b_offset, d, a, batch, L->in, L->out, lo,
                                          hi);
            if (order == 2 && batch == 1) {
                /* Row j of a batch-of-one dW is d_j a: its squared norm is
                 * d_j^2 ||a||^2, no second read of dW. */
                double aa = clipnn_norm_accumulate(a, L->in, 2.0);
                for (size_t j = lo; j < hi; j++) m->row_acc[L->unit_base + j] = (double)d[j] * (double)d[j] * aa;
            } else if (order == 2) {
                for (size_t j = lo; j < hi; j++) m->row_acc[L->unit_base + j] = clipnn_sumsq_blocked(dW + j * L->in, L->in);
            } else if (order > 0) {
                for (size_t j = lo; j < hi; j++)
                    m->row_acc[L->unit_base + j] = clipnn_norm_accumulate(dW + j * L->in, L->in, order);
            }
        }
        float *da = l > 0 ? m->delta[l - 1] : dx;
        if (!da || (!want_params && !dx)) break; /* nothing further down is wanted */
        clipnn_barrier_wait(bar, T);
        clipnn_chunk(L->in, t, T, &lo, &hi);
        clipnn_dense_input_grad_cols(da, d, m->params + L->w_offset, batch, L->in, L->out, lo, hi);
    }
}

int clipnn_fused_dw_unformed(const clipnn_fused_opts *f, size_t batch) {
    return f && f->lazy_rank1 && batch == 1 && f->unit_norm_order == 2;
}

/* What clipnn_loss_grad leaves: the backward stops after the top layer
 * when neither parameter gradients nor dx are wanted, and a batch-of-one
 * step of clipnn_train (lazy_rank1) leaves dW unwritten. */
static void mark_backward(clipnn_model *m, int want_params, int want_dx, size_t batch, const clipnn_fused_opts *f) {
    unsigned holds = CLIPNN_WS_ACTIVATIONS;
    if (want_params || want_dx) holds |= CLIPNN_WS_DELTAS;
    if (want_params && !clipnn_fused_dw_unformed(f, batch)) holds |= CLIPNN_WS_GRADS;
    clipnn_workspace_mark(m, holds, batch, "clipnn_loss_grad");
    m->ws.losses_batch = batch;
}

clipnn_status clipnn_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                               const float *y, size_t batch, double *loss_out, float *dx) {
    return clipnn_loss_grad_fused(m, lo, x, y, batch, NULL, loss_out, dx);
}

clipnn_status clipnn_loss_grad_fused(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                                     const float *y, size_t batch, const clipnn_fused_opts *f, double *loss_out,
                                     float *dx) {
    if (!lo || !y) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: NULL options or targets");
    clipnn_status s = check_targets(m, lo, y, batch);
    if (!s) s = forward_check(m, x, batch);
    if (s) return s;
    size_t last = m->n_layers - 1, k = m->layers[last].out;
    double loss = 0;
    int threads = model_threads(m, batch);
    m->last_input = x; /* the first layer's input, read by the backward */
    mark_backward(m, lo->want_params, dx != NULL, batch, f);
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = clipnn_thread_id(), T = clipnn_thread_count();
        forward_slice(m, x, batch, t, T, &bar);
        /* delta[last] first holds d loss / d output, then d loss / d z. */
        if (t == 0)
            loss = clipnn_loss_forward_backward(lo, m->post[last], y, batch, k, m->losses, m->delta[last]);
        clipnn_barrier_wait(&bar, T);
        backward_slice(m, lo->want_params, f, dx, batch, t, T, &bar);
    }
    const double order = f ? f->unit_norm_order : 0;
    if (lo->want_params && order > 0)
        for (size_t l = 0; l < m->n_layers; l++) {
            const clipnn_layer *L = &m->layers[l];
            m->row_acc[L->unit_base + L->out] = clipnn_norm_accumulate(m->grads + L->b_offset, L->out, order);
        }
    if (loss_out) *loss_out = loss;
    return CLIPNN_OK;
}
