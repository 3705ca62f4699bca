/* Models: construction, parameter layout, groups, initialisation, the
 * workspace, forward and backward. A model is a front of recurrent layers
 * (src/nn/sequence.c, none for an MLP) and a head of dense layers.
 * Parameters sit in one block and gradients in another (the front's tensors,
 * then W and b for each dense layer) so that optimizers and clipping are
 * flat loops. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

static const char *const kind_names[CLIPNN_LAYER_COUNT] = {"dense", "rnn", "rnn-relu", "lstm", "gru"};

CLIPNN_NAME_FUNCTIONS(clipnn_layer_kind, clipnn_layer_kind, kind_names, CLIPNN_LAYER_COUNT, "layer kind")

static const clipnn_cell cell_of_kind[CLIPNN_LAYER_COUNT] = {
    [CLIPNN_LAYER_RNN] = CLIPNN_CELL_RNN_TANH, [CLIPNN_LAYER_RNN_RELU] = CLIPNN_CELL_RNN_RELU,
    [CLIPNN_LAYER_LSTM] = CLIPNN_CELL_LSTM, [CLIPNN_LAYER_GRU] = CLIPNN_CELL_GRU};

/* What a list of layers makes: the recurrent layers (a prefix), the number
 * of parameters, groups and units; every size checked. */
typedef struct {
    size_t n_rec, n_params, n_groups, n_units;
} model_size;

static clipnn_status size_layer(const clipnn_layer_spec *L, size_t l, size_t in, model_size *z) {
    const size_t max_dim = (size_t)1 << 30; /* BLAS takes int dimensions */
    if ((unsigned)L->kind >= CLIPNN_LAYER_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu has unknown kind %d", l, (int)L->kind);
    if (L->width == 0 || L->width > max_dim)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu has width %zu", l, L->width);
    size_t n = 0, rows = L->width;
    if (L->kind == CLIPNN_LAYER_DENSE) {
        if ((unsigned)L->act >= CLIPNN_ACT_COUNT)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu has unknown activation %d", l, (int)L->act);
        if (clipnn_mul_size(in, L->width, &n) || clipnn_add_size(n, L->width, &n))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: parameter count overflows");
        z->n_groups += 2;
    } else {
        if (l != z->n_rec)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: layer %zu (%s) follows a dense layer; recurrent "
                               "layers come first", l, clipnn_layer_kind_name(L->kind));
        clipnn_rec_params off;
        clipnn_status s = clipnn_rec_param_layout(cell_of_kind[L->kind], in, L->width, &off);
        if (s) return s;
        n = off.total;
        rows = 2 * clipnn_cell_gates(cell_of_kind[L->kind]) * L->width;
        z->n_rec++;
        z->n_groups += 4;
    }
    if (clipnn_add_size(z->n_params, n, &z->n_params) || clipnn_add_size(z->n_units, rows + 1, &z->n_units))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: parameter count overflows");
    if (L->kind != CLIPNN_LAYER_DENSE) z->n_units++; /* two biases */
    return CLIPNN_OK;
}

static clipnn_status size_model(const clipnn_seq_shape *seq, size_t n_layers, const clipnn_layer_spec *ls,
                                size_t *n_inputs, model_size *z) {
    memset(z, 0, sizeof *z);
    if (!seq || !ls || n_layers == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: needs at least one layer");
    if (seq->steps == 0 || seq->step_dim == 0 || clipnn_mul_size(seq->steps, seq->step_dim, n_inputs) ||
        *n_inputs > ((size_t)1 << 30))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: inputs of %zu steps of %zu values", seq->steps,
                           seq->step_dim);
    size_t in = seq->step_dim;
    for (size_t l = 0; l < n_layers; l++) {
        if (l == 0 && ls[0].kind == CLIPNN_LAYER_DENSE) in = *n_inputs; /* an MLP reads the whole row */
        clipnn_status s = size_layer(&ls[l], l, in, z);
        if (s) return s;
        in = ls[l].width;
    }
    if (z->n_rec == n_layers)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: the recurrent layers need a dense layer after them");
    return CLIPNN_OK;
}

/* Bytes of a model's parameters and gradients and of its per-layer,
 * per-group and per-unit tables; refused past the memory limit before any
 * of it is allocated. */
static clipnn_status check_model_memory(size_t n_layers, const model_size *z) {
    double bytes = (double)sizeof(clipnn_model) + 2.0 * (double)z->n_params * sizeof(float) +
                   (double)n_layers * (sizeof(clipnn_layer) + 3 * sizeof(float *)) +
                   (double)z->n_rec * sizeof(clipnn_rec_layer) +
                   (double)z->n_groups * (sizeof(clipnn_group) + sizeof(size_t)) +
                   (double)z->n_units * sizeof(double);
    char what[96];
    snprintf(what, sizeof what, "model: %zu layers, %zu parameters,", n_layers, z->n_params);
    return clipnn_check_memory(bytes, what);
}

static clipnn_status alloc_model(clipnn_model *m, size_t n_dense, const model_size *z) {
    m->n_layers = n_dense;
    m->n_rec = z->n_rec;
    m->n_params = z->n_params;
    m->n_groups = z->n_groups;
    m->n_units = z->n_units;
    m->layers = clipnn_alloc_array(n_dense, sizeof *m->layers);
    m->rec = clipnn_alloc_array(z->n_rec, sizeof *m->rec);
    m->params = clipnn_alloc_aligned_array(z->n_params, sizeof *m->params);
    m->grads = clipnn_alloc_aligned_array(z->n_params, sizeof *m->grads);
    m->groups = clipnn_alloc_array(z->n_groups, sizeof *m->groups);
    m->group_unit = clipnn_alloc_array(z->n_groups, sizeof *m->group_unit);
    m->pre = clipnn_alloc_array(n_dense, sizeof *m->pre);
    m->post = clipnn_alloc_array(n_dense, sizeof *m->post);
    m->delta = clipnn_alloc_array(n_dense, sizeof *m->delta);
    m->row_acc = clipnn_alloc_array(z->n_units, sizeof *m->row_acc);
    if (!m->layers || !m->rec || !m->params || !m->grads || !m->groups || !m->group_unit || !m->pre || !m->post ||
        !m->delta || !m->row_acc)
        return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for %zu parameters", z->n_params);
    return CLIPNN_OK;
}

/* Appends a group (the next tensor of the block) for public layer index l. */
static void add_group(clipnn_model *m, size_t *g, size_t *offset, size_t *unit, size_t l, size_t rows, size_t cols,
                      int is_bias) {
    m->groups[*g] = (clipnn_group){*offset, rows * cols, rows, cols, l, is_bias};
    m->group_unit[*g] = *unit;
    *offset += rows * cols;
    *unit += is_bias ? 1 : rows;
    (*g)++;
}

static void lay_out_recurrent(clipnn_model *m, const clipnn_layer_spec *ls, size_t *g, size_t *offset, size_t *unit) {
    size_t in = m->step_dim;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_layer *R = &m->rec[l];
        R->shape = (clipnn_rec_shape){cell_of_kind[ls[l].kind], in, ls[l].width, 0, m->steps};
        (void)clipnn_rec_param_layout(R->shape.cell, in, ls[l].width, &R->off); /* checked by size_model */
        R->p_offset = *offset;
        size_t gh = clipnn_cell_gates(R->shape.cell) * ls[l].width;
        add_group(m, g, offset, unit, l, gh, in, 0);
        add_group(m, g, offset, unit, l, gh, ls[l].width, 0);
        add_group(m, g, offset, unit, l, 1, gh, 1);
        add_group(m, g, offset, unit, l, 1, gh, 1);
        in = ls[l].width;
    }
}

static void lay_out_dense(clipnn_model *m, const clipnn_layer_spec *ls, size_t *g, size_t *offset, size_t *unit) {
    size_t in = m->n_rec ? ls[m->n_rec - 1].width : m->n_inputs;
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer_spec *S = &ls[m->n_rec + l];
        clipnn_layer *L = &m->layers[l];
        *L = (clipnn_layer){.in = in, .out = S->width, .act = S->act, .unit_base = *unit};
        L->w_offset = *offset;
        add_group(m, g, offset, unit, m->n_rec + l, S->width, in, 0);
        L->b_offset = *offset;
        add_group(m, g, offset, unit, m->n_rec + l, 1, S->width, 1);
        in = S->width;
    }
}

clipnn_status clipnn_model_create_seq(clipnn_model **out, const clipnn_seq_shape *seq, size_t n_layers,
                                      const clipnn_layer_spec *layers) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: NULL argument");
    *out = NULL;
    size_t n_inputs;
    model_size z;
    clipnn_status s = size_model(seq, n_layers, layers, &n_inputs, &z);
    if (!s) s = check_model_memory(n_layers, &z);
    if (s) return s;
    clipnn_model *m = clipnn_alloc_array(1, sizeof *m);
    if (!m) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory");
    if ((s = alloc_model(m, n_layers - z.n_rec, &z))) {
        clipnn_model_free(m);
        return s;
    }
    m->n_inputs = n_inputs;
    m->steps = z.n_rec ? seq->steps : 0;
    m->step_dim = z.n_rec ? seq->step_dim : n_inputs;
    m->every_step = z.n_rec ? seq->every_step != 0 : 0;
    size_t g = 0, offset = 0, unit = 0;
    lay_out_recurrent(m, layers, &g, &offset, &unit);
    lay_out_dense(m, layers, &g, &offset, &unit);
    *out = m;
    return CLIPNN_OK;
}

clipnn_status clipnn_model_create(clipnn_model **out, size_t n_inputs, size_t n_layers,
                                  const size_t *widths, const clipnn_act *acts) {
    if (!out || !widths || !acts) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: NULL argument");
    *out = NULL;
    if (n_inputs == 0 || n_layers == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: needs at least one input and one layer");
    clipnn_layer_spec *ls = clipnn_alloc_array(n_layers, sizeof *ls);
    if (!ls) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory");
    for (size_t l = 0; l < n_layers; l++) ls[l] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, widths[l], acts[l]};
    clipnn_seq_shape seq = {1, n_inputs, 0};
    clipnn_status s = clipnn_model_create_seq(out, &seq, n_layers, ls);
    clipnn_free(ls);
    return s;
}

void clipnn_model_free(clipnn_model *m) {
    if (!m) return;
    clipnn_free(m->layers);
    clipnn_free(m->rec);
    clipnn_free_aligned(m->params);
    clipnn_free_aligned(m->grads);
    clipnn_free(m->groups);
    clipnn_free(m->group_unit);
    clipnn_free(m->pre);
    clipnn_free(m->post);
    clipnn_free(m->delta);
    clipnn_free(m->row_acc);
    clipnn_free_aligned(m->workspace);
    clipnn_free(m->example_sq);
    clipnn_free(m->gram);
    clipnn_free(m);
}

/* The layer list a model was made from; *specs from clipnn_alloc. */
clipnn_status clipnn_model_specs(const clipnn_model *m, clipnn_layer_spec **specs, clipnn_seq_shape *seq) {
    size_t n = m->n_rec + m->n_layers;
    clipnn_layer_spec *ls = clipnn_alloc_array(n, sizeof *ls);
    if (!ls) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory");
    for (size_t l = 0; l < n; l++)
        ls[l] = (clipnn_layer_spec){clipnn_model_layer_kind(m, l), clipnn_model_layer_width(m, l),
                                    clipnn_model_layer_act(m, l)};
    *seq = m->n_rec ? (clipnn_seq_shape){m->steps, m->step_dim, m->every_step} : (clipnn_seq_shape){1, m->n_inputs, 0};
    *specs = ls;
    return CLIPNN_OK;
}

clipnn_status clipnn_model_clone(const clipnn_model *m, clipnn_model **out) {
    clipnn_layer_spec *ls;
    clipnn_seq_shape seq;
    clipnn_status s = clipnn_model_specs(m, &ls, &seq);
    if (s) return s;
    s = clipnn_model_create_seq(out, &seq, m->n_rec + m->n_layers, ls);
    if (s == CLIPNN_OK) memcpy((*out)->params, m->params, m->n_params * sizeof *m->params);
    clipnn_free(ls);
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

static void init_dense(const clipnn_layer *L, float *W, float *b, clipnn_init init, clipnn_rng *rng) {
    double fan_in = (double)L->in, fan_out = (double)L->out;
    size_t nw = L->in * L->out;
    switch (init) {
    case CLIPNN_INIT_XAVIER: {
        double bound = sqrt(6.0 / (fan_in + fan_out));
        for (size_t i = 0; i < nw; i++) W[i] = (float)(bound * (2.0 * clipnn_rng_uniform(rng) - 1.0));
        memset(b, 0, L->out * sizeof *b);
        break;
    }
    case CLIPNN_INIT_HE: {
        double std = sqrt(2.0 / fan_in);
        for (size_t i = 0; i < nw; i++) W[i] = (float)(std * clipnn_rng_normal(rng));
        memset(b, 0, L->out * sizeof *b);
        break;
    }
    default: { /* CLIPNN_INIT_TORCH */
        double bound = 1.0 / sqrt(fan_in);
        for (size_t i = 0; i < nw; i++) W[i] = (float)(bound * (2.0 * clipnn_rng_uniform(rng) - 1.0));
        for (size_t i = 0; i < L->out; i++) b[i] = (float)(bound * (2.0 * clipnn_rng_uniform(rng) - 1.0));
    }
    }
}

clipnn_status clipnn_model_init(clipnn_model *m, clipnn_init init, uint64_t seed) {
    if ((unsigned)init >= CLIPNN_INIT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: unknown initialisation %d", (int)init);
    clipnn_rng rng;
    clipnn_rng_seed(&rng, seed);
    clipnn_front_init(m, &rng);
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        init_dense(L, m->params + L->w_offset, m->params + L->b_offset, init, &rng);
    }
    return CLIPNN_OK;
}

static clipnn_layer_kind kind_of_cell(clipnn_cell c) {
    for (int k = 0; k < CLIPNN_LAYER_COUNT; k++)
        if (k != CLIPNN_LAYER_DENSE && cell_of_kind[k] == c) return (clipnn_layer_kind)k;
    return CLIPNN_LAYER_DENSE;
}

size_t clipnn_model_n_inputs(const clipnn_model *m) { return m->n_inputs; }
size_t clipnn_model_n_outputs(const clipnn_model *m) { return m->layers[m->n_layers - 1].out; }
size_t clipnn_model_n_layers(const clipnn_model *m) { return m->n_rec + m->n_layers; }
size_t clipnn_model_layer_width(const clipnn_model *m, size_t layer) {
    if (layer < m->n_rec) return m->rec[layer].shape.hidden;
    return layer - m->n_rec < m->n_layers ? m->layers[layer - m->n_rec].out : 0;
}
clipnn_act clipnn_model_layer_act(const clipnn_model *m, size_t layer) {
    if (layer < m->n_rec) return m->rec[layer].shape.cell == CLIPNN_CELL_RNN_RELU ? CLIPNN_ACT_RELU : CLIPNN_ACT_TANH;
    return layer - m->n_rec < m->n_layers ? m->layers[layer - m->n_rec].act : CLIPNN_ACT_IDENTITY;
}
clipnn_layer_kind clipnn_model_layer_kind(const clipnn_model *m, size_t layer) {
    return layer < m->n_rec ? kind_of_cell(m->rec[layer].shape.cell) : CLIPNN_LAYER_DENSE;
}
clipnn_seq_shape clipnn_model_seq_shape(const clipnn_model *m) {
    return (clipnn_seq_shape){m->steps, m->step_dim, m->every_step};
}
size_t clipnn_model_output_steps(const clipnn_model *m) { return m->every_step ? m->steps : 1; }
size_t clipnn_head_rows(const clipnn_model *m, size_t batch) { return m->every_step ? batch * m->steps : batch; }
size_t clipnn_model_n_params(const clipnn_model *m) { return m->n_params; }
float *clipnn_model_params(clipnn_model *m) { return m->params; }
float *clipnn_model_grads(clipnn_model *m) { return m->grads; }
size_t clipnn_model_n_groups(const clipnn_model *m) { return m->n_groups; }

clipnn_group clipnn_model_group(const clipnn_model *m, size_t index) {
    clipnn_group g = {0};
    return index < m->n_groups ? m->groups[index] : g;
}

const float *clipnn_model_last_losses(const clipnn_model *m) {
    return m && m->ws.losses_batch ? m->losses : NULL;
}

const float *clipnn_layer_input(const clipnn_model *m, size_t l) {
    return l == 0 ? m->head_input : m->post[l - 1];
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

/* Floats of the head's buffers for max_rows rows: losses, pre, delta, and
 * post when the activation is not the identity; and the gradient of the
 * head's input when there is a front. */
static clipnn_status head_size(const clipnn_model *m, size_t max_rows, size_t *floats) {
    size_t per_row = 1;
    for (size_t l = 0; l < m->n_layers; l++)
        per_row += m->layers[l].out * (m->layers[l].act == CLIPNN_ACT_IDENTITY ? 2 : 3);
    if (m->n_rec) per_row += m->layers[0].in;
    if (clipnn_mul_size(per_row, max_rows, floats))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    return CLIPNN_OK;
}

static void place_head(clipnn_model *m, size_t max_rows, float *ws) {
    m->losses = ws;
    ws += max_rows;
    for (size_t l = 0; l < m->n_layers; l++) {
        size_t n = m->layers[l].out * max_rows;
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
    m->head_dx = m->n_rec ? ws : NULL;
}

size_t clipnn_rows_within(const clipnn_model *m, size_t max_batch, double bytes) {
    size_t head, front;
    if (head_size(m, m->every_step ? m->steps : 1, &head) || clipnn_front_size(m, 1, &front)) return 1;
    double per_row = ((double)head + (double)front) * sizeof(float);
    double rows = floor(bytes / per_row);
    return rows >= (double)max_batch ? max_batch : rows >= 1 ? (size_t)rows : 1;
}

clipnn_status clipnn_model_reserve(clipnn_model *m, size_t max_batch) {
    if (max_batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "model: batch size 0");
    if (max_batch <= m->max_batch) return CLIPNN_OK;
    if (max_batch > ((size_t)1 << 30))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: batch %zu is too large", max_batch);
    size_t max_rows, head, front, floats;
    if (clipnn_mul_size(max_batch, m->every_step ? m->steps : 1, &max_rows))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    clipnn_status s = head_size(m, max_rows, &head);
    if (!s) s = clipnn_front_size(m, max_batch, &front);
    if (!s && clipnn_add_size(head, front, &floats))
        s = clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: workspace size overflows");
    char what[96];
    snprintf(what, sizeof what, "model: a workspace for a batch of %zu, with the parameters,", max_batch);
    if (!s) s = clipnn_check_memory((double)floats * sizeof(float) + 2.0 * (double)m->n_params * sizeof(float), what);
    if (!s) s = clipnn_example_scratch_reserve(m, max_batch);
    if (s) return s;
    float *ws = clipnn_alloc_aligned_array(floats, sizeof *ws);
    if (!ws) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for a batch of %zu", max_batch);
    clipnn_free_aligned(m->workspace);
    m->workspace = ws;
    m->max_batch = max_batch;
    place_head(m, max_rows, ws);
    clipnn_front_place(m, max_batch, ws + head);
    m->last_input = m->head_input = NULL;
    m->ws.losses_batch = 0;
    clipnn_workspace_mark(m, 0, 0, NULL);
    return CLIPNN_OK;
}

/* Threads worth using for one pass over the head with this many rows. */
static int model_threads(const clipnn_model *m, size_t rows) {
    size_t head_params = m->n_params - m->layers[0].w_offset;
    return clipnn_threads_for_macs(rows * head_params);
}

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

/* The front (recurrent layers) over x; the head's input after it. */
static const float *run_front(clipnn_model *m, const float *x, size_t batch) {
    m->last_input = x;
    m->head_input = x;
    if (m->n_rec) clipnn_front_forward(m, x, batch);
    return m->head_input;
}

static clipnn_status forward(clipnn_model *m, const float *x, size_t batch) {
    clipnn_status s = forward_check(m, x, batch);
    if (s) return s;
    const float *a = run_front(m, x, batch);
    size_t rows = clipnn_head_rows(m, batch);
    int threads = model_threads(m, rows);
    clipnn_workspace_mark(m, CLIPNN_WS_ACTIVATIONS, batch, "clipnn_forward");
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    forward_slice(m, a, rows, clipnn_thread_id(), clipnn_thread_count(), &bar);
    return CLIPNN_OK;
}

clipnn_status clipnn_forward(clipnn_model *m, const float *x, size_t batch, const float **out) {
    clipnn_status s = forward(m, x, batch);
    if (s == CLIPNN_OK && out) *out = m->post[m->n_layers - 1];
    return s;
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
    if (f && f->deltas_only) want_params = 0, dx = NULL; /* the deltas down to layer 0, nothing else */
    const int down_to_0 = f && f->deltas_only;
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
                for (size_t j = lo; j < hi; j++)
                    m->row_acc[L->unit_base + j] = clipnn_sumsq_blocked(dW + j * L->in, L->in);
            } else if (order > 0) {
                for (size_t j = lo; j < hi; j++)
                    m->row_acc[L->unit_base + j] = clipnn_norm_accumulate(dW + j * L->in, L->in, order);
            }
        }
        float *da = l > 0 ? m->delta[l - 1] : dx;
        if (!da || (!want_params && !dx && !down_to_0)) break; /* nothing further down is wanted */
        clipnn_barrier_wait(bar, T);
        /* Every thread's rows of this layer are written: its W and b, and all above, are final. */
        if (t == 0 && want_params && !lazy && f && f->grads_final) f->grads_final(f->grads_final_user, L->w_offset);
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
    if (want_params && f && f->deltas_only) holds |= CLIPNN_WS_DW_PENDING;
    else if (want_params && !clipnn_fused_dw_unformed(f, batch)) holds |= CLIPNN_WS_GRADS;
    clipnn_workspace_mark(m, holds, batch, "clipnn_loss_grad");
    m->ws.losses_batch = batch;
}

clipnn_status clipnn_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                               const float *y, size_t batch, double *loss_out, float *dx) {
    return clipnn_loss_grad_fused(m, lo, x, y, batch, NULL, loss_out, dx);
}

/* The unit norms of the fused step that the head's backward does not
 * leave: the dense biases, and every unit of the front (read from the
 * gradient block after BPTT). */
static void finish_unit_norms(clipnn_model *m, double order) {
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        m->row_acc[L->unit_base + L->out] = clipnn_norm_accumulate(m->grads + L->b_offset, L->out, order);
    }
    for (size_t g = 0; g < 4 * m->n_rec; g++) {
        const clipnn_group *G = &m->groups[g];
        for (size_t r = 0; r < G->rows; r++)
            m->row_acc[m->group_unit[g] + r] = clipnn_norm_accumulate(m->grads + G->offset + r * G->cols,
                                                                      G->cols, order);
    }
}

/* The front's forward: over whole sequences from zero states, or over a
 * window (w not NULL). */
static const float *pass_front(clipnn_model *m, const float *x, size_t batch, const clipnn_window *w) {
    if (!w) return run_front(m, x, batch);
    clipnn_front_forward_window(m, x, batch, w);
    return m->head_input;
}

/* Forward, loss and backward of the head, then of the front (w: over a
 * window, which leaves the gradient only). */
static clipnn_status loss_grad_pass(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                    size_t batch, const clipnn_fused_opts *f, const clipnn_window *w,
                                    double *loss_out, float *dx) {
    clipnn_fused_opts front_f; /* a front leaves every dW formed */
    if (f && m->n_rec)
        front_f = (clipnn_fused_opts){f->unit_norm_order, 0, f->trace, 0, f->grads_final, f->grads_final_user},
        f = &front_f;
    size_t rows = w ? clipnn_window_rows(m, batch, w) : clipnn_head_rows(m, batch);
    clipnn_status s = clipnn_loss_check_targets(lo, clipnn_model_n_outputs(m), y, NULL, rows);
    if (!s) s = forward_check(m, x, batch);
    if (s) return s;
    size_t last = m->n_layers - 1, k = m->layers[last].out;
    double loss = 0;
    const float *a = pass_front(m, x, batch, w);
    int threads = model_threads(m, rows);
    int want_back = lo->want_params || dx || (f && f->trace);
    float *head_dx = m->n_rec ? (want_back ? m->head_dx : NULL) : dx;
    if (w) clipnn_workspace_mark(m, CLIPNN_WS_GRADS, batch, "clipnn_train (truncated backpropagation)");
    else mark_backward(m, lo->want_params, dx != NULL, batch, f);
    m->ws.losses_batch = rows;
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = clipnn_thread_id(), T = clipnn_thread_count();
        forward_slice(m, a, rows, t, T, &bar);
        /* delta[last] first holds d loss / d output, then d loss / d z. */
        if (t == 0)
            loss = clipnn_loss_forward_backward(lo, m->post[last], y, rows, k, m->losses, m->delta[last]);
        clipnn_barrier_wait(&bar, T);
        backward_slice(m, lo->want_params, f, head_dx, rows, t, T, &bar);
    }
    clipnn_dh_trace *trace = f ? f->trace : NULL;
    if (w) clipnn_front_backward_window(m, batch, w, trace);
    else if (m->n_rec && want_back) clipnn_front_backward(m, batch, lo->want_params, dx, trace);
    const double order = f ? f->unit_norm_order : 0;
    if (lo->want_params && order > 0 && !(f && f->deltas_only)) finish_unit_norms(m, order);
    if (lo->want_params && f && f->grads_final && !f->deltas_only && !clipnn_fused_dw_unformed(f, batch))
        f->grads_final(f->grads_final_user, 0); /* the whole block, the front's and layer 0's included */
    if (loss_out) *loss_out = loss;
    return CLIPNN_OK;
}

clipnn_status clipnn_loss_grad_fused(clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                                     const float *y, size_t batch, const clipnn_fused_opts *f, double *loss_out,
                                     float *dx) {
    if (!lo || !y) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: NULL options or targets");
    return loss_grad_pass(m, lo, x, y, batch, f, NULL, loss_out, dx);
}

static clipnn_status check_window(const clipnn_model *m, const clipnn_window *w) {
    if (!m->n_rec) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: a window of steps needs recurrent layers");
    if (w->steps == 0 || w->steps > m->steps || w->back == 0 || w->back > w->steps || w->carry_at > w->steps ||
        w->loss_from >= w->steps || (!m->every_step && w->loss_from))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: window of %zu steps (loss from %zu, %zu back, state "
                           "after %zu) in sequences of %zu", w->steps, w->loss_from, w->back, w->carry_at, m->steps);
    return CLIPNN_OK;
}

clipnn_status clipnn_loss_grad_window(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                      size_t batch, const clipnn_window *w, const clipnn_fused_opts *f,
                                      double *loss_out) {
    if (!lo || !y || !w) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: NULL options, targets or window");
    if (!lo->want_params) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: a window is for parameter gradients");
    clipnn_status s = check_window(m, w);
    return s ? s : loss_grad_pass(m, lo, x, y, batch, f, w, loss_out, NULL);
}
