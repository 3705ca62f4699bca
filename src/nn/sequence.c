/* The recurrent front of a model: its buffers, the forward over the steps,
 * backpropagation through time into the gradient block, and the
 * initialisations of its tensors. The kernels are in recurrent.c; the dense
 * head that follows is model.c's. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

static size_t last_hidden(const clipnn_model *m) { return m->rec[m->n_rec - 1].shape.hidden; }

/* Per layer: H and dH ([batch][steps][hidden]) and the kernel's workspace;
 * the last step's h for a many-to-one head. */
clipnn_status clipnn_front_size(const clipnn_model *m, size_t max_batch, size_t *floats) {
    *floats = 0;
    size_t total = 0, n;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_shape shape = m->rec[l].shape;
        shape.batch = max_batch;
        clipnn_status s = clipnn_rec_workspace_size(&shape, &n);
        if (s) return s;
        size_t seq;
        if (clipnn_mul_size(max_batch * shape.steps, shape.hidden, &seq) || clipnn_add_size(total, n, &total) ||
            clipnn_add_size(total, 2 * seq, &total))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    }
    if (m->n_rec && !m->every_step && clipnn_add_size(total, max_batch * last_hidden(m), &total))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    *floats = total;
    return CLIPNN_OK;
}

void clipnn_front_place(clipnn_model *m, size_t max_batch, float *block) {
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_layer *R = &m->rec[l];
        clipnn_rec_shape shape = R->shape;
        shape.batch = max_batch;
        size_t n = 0, seq = max_batch * shape.steps * shape.hidden;
        (void)clipnn_rec_workspace_size(&shape, &n); /* checked by clipnn_front_size */
        R->H = block;
        R->dH = block + seq;
        R->work = block + 2 * seq;
        block += 2 * seq + n;
    }
    m->head_in = m->n_rec && !m->every_step ? block : NULL;
}

/* Layer l's input: x ([batch][steps][step_dim]) or the layer below's H. */
static const float *layer_input(const clipnn_model *m, size_t l, size_t *stride) {
    *stride = l ? m->rec[l - 1].shape.hidden : m->step_dim;
    return l ? m->rec[l - 1].H : m->last_input;
}

const float *clipnn_front_layer_input(const clipnn_model *m, size_t l, size_t *stride) {
    return layer_input(m, l, stride);
}

void clipnn_front_forward(clipnn_model *m, const float *x, size_t batch) {
    m->last_input = x;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_layer *R = &m->rec[l];
        size_t stride;
        const float *in = layer_input(m, l, &stride);
        R->shape.batch = batch;
        /* the shape was checked when the workspace was sized */
        (void)clipnn_rec_forward(&R->shape, m->params + R->p_offset, in, stride, NULL, NULL, R->H, NULL, NULL,
                                 R->work);
    }
    const clipnn_rec_layer *top = &m->rec[m->n_rec - 1];
    if (m->every_step) {
        m->head_input = top->H;
        return;
    }
    /* many-to-one: the head reads h_T of each sequence */
    size_t h = top->shape.hidden, T = m->steps;
    for (size_t b = 0; b < batch; b++) memcpy(m->head_in + b * h, top->H + (b * T + T - 1) * h, h * sizeof(float));
    m->head_input = m->head_in;
}

size_t clipnn_front_trace_floats(const clipnn_model *m, size_t batch, size_t steps) {
    size_t n = 0;
    for (size_t l = 0; l < m->n_rec; l++) n += m->rec[l].shape.hidden;
    return n * batch * steps;
}

/* Layer l's share of a trace of `batch` sequences of `steps` steps (its
 * rows [batch][steps][hidden] after the layers below); NULL: no trace. */
static float *trace_rows(const clipnn_model *m, clipnn_dh_trace *tr, size_t batch, size_t steps, size_t l) {
    if (!tr) return NULL;
    tr->batch = batch, tr->steps = steps;
    size_t off = 0;
    for (size_t i = 0; i < l; i++) off += batch * steps * m->rec[i].shape.hidden;
    return tr->dh + off;
}

void clipnn_front_backward(clipnn_model *m, size_t batch, int want_params, float *dx, clipnn_dh_trace *tr) {
    for (size_t l = m->n_rec; l-- > 0;) {
        clipnn_rec_layer *R = &m->rec[l];
        int top = l + 1 == m->n_rec;
        /* d loss / d h_t: the head's gradient (every step, or only h_T as
         * the carried gradient), else what the layer above left in dH */
        const float *dH = top ? (m->every_step ? m->head_dx : NULL) : R->dH;
        const float *dhT = top && !m->every_step ? m->head_dx : NULL;
        float *grad = want_params ? m->grads + R->p_offset : NULL;
        if (grad) memset(grad, 0, R->off.total * sizeof *grad);
        float *below = l ? m->rec[l - 1].dH : dx;
        if (!grad && !below && !tr) break; /* nothing further down is wanted */
        size_t stride;
        const float *in = layer_input(m, l, &stride);
        R->shape.batch = batch;
        (void)clipnn_rec_backward_trace(&R->shape, m->params + R->p_offset, in, stride, dH, dhT, NULL, 0, grad,
                                        below, NULL, NULL, R->work, trace_rows(m, tr, batch, m->steps, l));
    }
}

void clipnn_front_init(clipnn_model *m, clipnn_rng *rng) {
    for (size_t l = 0; l < m->n_rec; l++) {
        const clipnn_rec_layer *R = &m->rec[l];
        double bound = 1.0 / sqrt((double)R->shape.hidden);
        float *p = m->params + R->p_offset;
        for (size_t i = 0; i < R->off.total; i++) p[i] = (float)(bound * (2.0 * clipnn_rng_uniform(rng) - 1.0));
    }
}

/* ------------------------------------------------ windows (truncated BPTT) */

static int is_lstm(const clipnn_rec_layer *R) { return R->shape.cell == CLIPNN_CELL_LSTM; }

size_t clipnn_front_state_floats(const clipnn_model *m, size_t batch) {
    size_t n = 0;
    for (size_t l = 0; l < m->n_rec; l++) n += m->rec[l].shape.hidden * (is_lstm(&m->rec[l]) ? 2 : 1);
    return n * batch;
}

/* Where layer l's h starts in a state block of `batch` sequences (its c
 * follows, batch x hidden further). */
static size_t state_offset(const clipnn_model *m, size_t batch, size_t l) {
    size_t off = 0;
    for (size_t i = 0; i < l; i++) off += batch * m->rec[i].shape.hidden * (is_lstm(&m->rec[i]) ? 2 : 1);
    return off;
}

static clipnn_rec_shape window_shape(const clipnn_model *m, size_t l, size_t batch, const clipnn_window *w) {
    clipnn_rec_shape s = m->rec[l].shape;
    s.batch = batch;
    s.steps = w->steps;
    return s;
}

size_t clipnn_window_rows(const clipnn_model *m, size_t batch, const clipnn_window *w) {
    return m->every_step ? batch * (w->steps - w->loss_from) : batch;
}

/* state_out := every layer's state after carry_at steps of the window just
 * forwarded (the state it started from when carry_at is 0). */
static void carry_state(const clipnn_model *m, size_t batch, const clipnn_window *w) {
    if (w->carry_at == 0) {
        size_t n = clipnn_front_state_floats(m, batch);
        if (!w->state_in) memset(w->state_out, 0, n * sizeof *w->state_out);
        else if (w->state_in != w->state_out) memcpy(w->state_out, w->state_in, n * sizeof *w->state_out);
        return;
    }
    for (size_t l = 0; l < m->n_rec; l++) {
        const clipnn_rec_layer *R = &m->rec[l];
        clipnn_rec_shape s = window_shape(m, l, batch, w);
        float *h = w->state_out + state_offset(m, batch, l);
        (void)clipnn_rec_state_after(&s, R->H, R->work, w->carry_at, h, h + batch * s.hidden); /* checked */
    }
}

void clipnn_slice_steps(float *dst, const float *src, size_t batch, size_t steps, size_t width, size_t from,
                        size_t to) {
    size_t n = (to - from) * width;
    for (size_t b = 0; b < batch; b++) memcpy(dst + b * n, src + (b * steps + from) * width, n * sizeof *dst);
}

/* H [batch][steps][h] := rows [batch][steps - from][h] on the steps from
 * `from`, zeros before (the inverse of slicing the steps [from, steps)). */
static void scatter_steps(float *H, const float *rows, size_t batch, size_t steps, size_t from, size_t h) {
    size_t n = steps - from;
    for (size_t b = 0; b < batch; b++) {
        memset(H + b * steps * h, 0, from * h * sizeof *H);
        memcpy(H + (b * steps + from) * h, rows + b * n * h, n * h * sizeof *H);
    }
}

/* The head reads the rows with a loss: the last step (many-to-one), every
 * step, or the steps from loss_from, gathered into the top layer's dH,
 * which its backward needs only after the head's. */
static void window_head_input(clipnn_model *m, size_t batch, const clipnn_window *w) {
    clipnn_rec_layer *top = &m->rec[m->n_rec - 1];
    size_t h = top->shape.hidden, T = w->steps;
    if (!m->every_step) {
        for (size_t b = 0; b < batch; b++) memcpy(m->head_in + b * h, top->H + (b * T + T - 1) * h, h * sizeof(float));
        m->head_input = m->head_in;
    } else if (w->loss_from == 0) {
        m->head_input = top->H;
    } else {
        clipnn_slice_steps(top->dH, top->H, batch, T, h, w->loss_from, T);
        m->head_input = top->dH;
    }
}

void clipnn_front_forward_window(clipnn_model *m, const float *x, size_t batch, const clipnn_window *w) {
    m->last_input = x;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_layer *R = &m->rec[l];
        size_t stride;
        const float *in = layer_input(m, l, &stride);
        clipnn_rec_shape s = window_shape(m, l, batch, w);
        const float *h0 = w->state_in ? w->state_in + state_offset(m, batch, l) : NULL;
        /* the shape fits the workspace (steps <= the model's), checked by clipnn_loss_grad_window */
        (void)clipnn_rec_forward(&s, m->params + R->p_offset, in, stride, h0, h0 ? h0 + batch * s.hidden : NULL, R->H,
                                 NULL, NULL, R->work);
    }
    /* after every layer's forward, so that state_out may be state_in */
    if (w->state_out) carry_state(m, batch, w);
    window_head_input(m, batch, w);
}

void clipnn_front_backward_window(clipnn_model *m, size_t batch, const clipnn_window *w, clipnn_dh_trace *tr) {
    clipnn_rec_layer *top = &m->rec[m->n_rec - 1];
    const float *dH_top = m->every_step ? m->head_dx : NULL;
    if (m->every_step && w->loss_from) {
        scatter_steps(top->dH, m->head_dx, batch, w->steps, w->loss_from, top->shape.hidden);
        dH_top = top->dH;
    }
    for (size_t l = m->n_rec; l-- > 0;) {
        clipnn_rec_layer *R = &m->rec[l];
        int is_top = l + 1 == m->n_rec;
        float *grad = m->grads + R->p_offset;
        memset(grad, 0, R->off.total * sizeof *grad);
        size_t stride;
        const float *in = layer_input(m, l, &stride);
        clipnn_rec_shape s = window_shape(m, l, batch, w);
        (void)clipnn_rec_backward_trace(&s, m->params + R->p_offset, in, stride, is_top ? dH_top : R->dH,
                                        is_top && !m->every_step ? m->head_dx : NULL, NULL, w->back, grad,
                                        l ? m->rec[l - 1].dH : NULL, NULL, NULL, R->work,
                                        trace_rows(m, tr, batch, w->steps, l));
    }
}

/* ------------------------------------------------ recurrent initialisation */

static const char *const rinit_names[CLIPNN_RECURRENT_INIT_COUNT] = {"torch", "orthogonal", "scaled", "sparse"};

CLIPNN_NAME_FUNCTIONS(clipnn_recurrent_init, clipnn_recurrent_init, rinit_names,
                      CLIPNN_RECURRENT_INIT_COUNT, "recurrent initialisation")

/* a[n][n] := Q of the QR factorisation of a Gaussian draw (modified
 * Gram-Schmidt on the columns, in double), each column's sign that of R's
 * diagonal, as torch.nn.init.orthogonal_ does. q: [n][n] scratch. */
static void orthogonal_block(float *a, size_t n, size_t lda, double *q, clipnn_rng *rng) {
    for (size_t i = 0; i < n * n; i++) q[i] = clipnn_rng_normal(rng);
    for (size_t j = 0; j < n; j++) {
        for (size_t k = 0; k < j; k++) {
            double d = 0;
            for (size_t i = 0; i < n; i++) d += q[i * n + k] * q[i * n + j];
            for (size_t i = 0; i < n; i++) q[i * n + j] -= d * q[i * n + k];
        }
        double norm = 0;
        for (size_t i = 0; i < n; i++) norm += q[i * n + j] * q[i * n + j];
        norm = sqrt(norm); /* R's diagonal entry: positive, so Q keeps its sign */
        for (size_t i = 0; i < n; i++) q[i * n + j] /= norm;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) a[i * lda + j] = (float)q[i * n + j];
}

/* a[n][n] (row stride lda) := `connections` N(0, 1) weights per row in
 * columns drawn without replacement (a partial shuffle), zeros elsewhere.
 * cols: [n] scratch. */
static void sparse_block(float *a, size_t n, size_t lda, size_t connections, size_t *cols, clipnn_rng *rng) {
    size_t k = connections < n ? connections : n;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) a[i * lda + j] = 0, cols[j] = j;
        for (size_t j = 0; j < k; j++) {
            size_t pick = j + (size_t)clipnn_rng_below(rng, n - j), c = cols[pick];
            cols[pick] = cols[j], cols[j] = c;
            a[i * lda + c] = (float)clipnn_rng_normal(rng);
        }
    }
}

static clipnn_status check_recurrent_init(const clipnn_model *m, clipnn_recurrent_init how, double radius) {
    if (!m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent init: NULL model");
    if ((unsigned)how >= CLIPNN_RECURRENT_INIT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent init: unknown kind %d", (int)how);
    int reads_radius = how == CLIPNN_RECURRENT_INIT_SCALED || how == CLIPNN_RECURRENT_INIT_SPARSE;
    if (reads_radius && !(radius > 0 && isfinite(radius)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent init: spectral radius %g, want > 0", radius);
    return CLIPNN_OK;
}

/* Every gate block of every recurrent layer's W_hh drawn or rescaled as
 * `how` says (connections: sparse only). */
static clipnn_status init_recurrent_blocks(clipnn_model *m, clipnn_recurrent_init how, size_t connections,
                                           double radius, uint64_t seed) {
    size_t hmax = 0;
    for (size_t l = 0; l < m->n_rec; l++) hmax = m->rec[l].shape.hidden > hmax ? m->rec[l].shape.hidden : hmax;
    double *scratch = clipnn_alloc_array(hmax * hmax + 2 * hmax, sizeof *scratch);
    size_t *cols = clipnn_alloc_array(hmax, sizeof *cols);
    if (!scratch || !cols) {
        clipnn_free(scratch);
        clipnn_free(cols);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "recurrent init: out of memory");
    }
    clipnn_rng rng;
    clipnn_rng_seed(&rng, seed);
    for (size_t l = 0; l < m->n_rec; l++) {
        const clipnn_rec_layer *R = &m->rec[l];
        size_t h = R->shape.hidden, G = clipnn_cell_gates(R->shape.cell);
        for (size_t g = 0; g < G; g++) {
            float *block = m->params + R->p_offset + R->off.w_hh + g * h * h;
            if (how == CLIPNN_RECURRENT_INIT_ORTHOGONAL) {
                orthogonal_block(block, h, h, scratch, &rng);
                continue;
            }
            if (how == CLIPNN_RECURRENT_INIT_SPARSE) sparse_block(block, h, h, connections, cols, &rng);
            double rho = clipnn_spectral_radius(block, h, h, scratch, scratch + hmax, &rng);
            double f = rho > 0 ? radius / rho : 0;
            for (size_t i = 0; i < h * h; i++) block[i] = (float)(block[i] * f);
        }
    }
    clipnn_free(scratch);
    clipnn_free(cols);
    return CLIPNN_OK;
}

clipnn_status clipnn_model_init_recurrent(clipnn_model *m, clipnn_recurrent_init how, double radius, uint64_t seed) {
    clipnn_status s = check_recurrent_init(m, how, radius);
    if (s || how == CLIPNN_RECURRENT_INIT_TORCH || m->n_rec == 0) return s;
    return init_recurrent_blocks(m, how, CLIPNN_SPARSE_CONNECTIONS, radius, seed);
}

clipnn_status clipnn_model_init_recurrent_sparse(clipnn_model *m, size_t connections, double radius, uint64_t seed) {
    clipnn_status s = check_recurrent_init(m, CLIPNN_RECURRENT_INIT_SPARSE, radius);
    if (!s && connections == 0)
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent init: sparse with 0 connections per unit, want >= 1");
    if (s || m->n_rec == 0) return s;
    return init_recurrent_blocks(m, CLIPNN_RECURRENT_INIT_SPARSE, connections, radius, seed);
}
