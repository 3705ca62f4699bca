/* Per-example gradients for DP-SGD (Abadi et al. 2016, Opacus), from what
 * the last backward left in the workspace, never forming an example's
 * gradient block:
 *
 * - norms: a dense layer that sees one row per example has the gradient
 *   delta_i a_i^T (+ delta_i for the bias), of squared norm
 *   ||delta_i||^2 (||a_i||^2 + 1); one that sees an example's T rows (the
 *   head of a many-to-many model) and a recurrent layer (a weight shared by
 *   the steps) take the ghost norm sum_{t,s} (a_t . a_s)(d_t . d_s) or the
 *   materialised sum_t d_t a_t^T, whichever is cheaper;
 * - the re-weighted gradient: every gradient is linear in the rows that the
 *   backward formed it from (the dense layers' deltas, the recurrent layers'
 *   gate gradients), and each row belongs to one example, so scaling
 *   example b's rows by its factor and forming the gradient again gives
 *   sum_b factor_b g_b, without a second forward or backpropagation
 *   through time. */
#include <cblas.h>
#include <string.h>

#include "nn/nn.h"

/* The head's rows per example: every step's when it reads every step. */
static size_t rows_per_example(const clipnn_model *m) { return m->every_step ? m->steps : 1; }

/* Floats of norm scratch: the widest shared weight of the front and, for a
 * head with T rows per example, of the head. */
static clipnn_status norm_scratch_size(const clipnn_model *m, size_t max_batch, size_t *floats) {
    size_t most = 0, n;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_shape shape = m->rec[l].shape;
        shape.batch = max_batch;
        clipnn_status s = clipnn_rec_norm_scratch_size(&shape, &n);
        if (s) return s;
        most = n > most ? n : most;
    }
    for (size_t l = 0; l < m->n_layers && rows_per_example(m) > 1; l++) {
        const clipnn_layer *L = &m->layers[l];
        clipnn_status s = clipnn_shared_norm_scratch_size(m->steps, L->in, L->out, &n);
        if (s) return s;
        most = n > most ? n : most;
    }
    *floats = most;
    return CLIPNN_OK;
}

clipnn_status clipnn_example_scratch_reserve(clipnn_model *m, size_t max_batch) {
    if (!m->n_rec) return CLIPNN_OK;
    size_t floats, doubles, bytes;
    clipnn_status s = norm_scratch_size(m, max_batch, &floats);
    if (s) return s;
    if (clipnn_mul_size(max_batch, 4, &doubles) || clipnn_mul_size(floats, sizeof(float), &bytes) ||
        clipnn_add_size(bytes, doubles * sizeof(double), &bytes))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "model: per-example norm scratch overflows");
    double *block = clipnn_alloc(bytes);
    if (!block) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for a batch of %zu", max_batch);
    clipnn_free(m->example_sq);
    m->example_sq = block;
    m->norm_scratch = (float *)(block + doubles);
    return CLIPNN_OK;
}

/* Examples lo..hi of a head that sees one row per example: ||delta_i||^2
 * (||a_i||^2 + 1) of every layer, the sums of squares in float partials
 * (clipnn_sumsq_blocked, as the unit norms). */
static void dense_sqnorms(const clipnn_model *m, size_t lo, size_t hi, double *sq) {
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        const float *a = clipnn_layer_input(m, l), *d = m->delta[l];
        for (size_t i = lo; i < hi; i++)
            sq[i] += clipnn_sumsq_blocked(d + i * L->out, L->out) * (clipnn_sumsq_blocked(a + i * L->in, L->in) + 1.0);
    }
}

/* Every example's rows are its own: threads take whole examples, as many
 * as the backward that left the rows had. */
static void head_sqnorms(const clipnn_model *m, size_t B, double *sq) {
    const size_t R = rows_per_example(m);
    if (R == 1) {
        int threads = clipnn_threads_for_macs(B * (m->n_params - m->layers[0].w_offset));
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            size_t lo, hi;
            clipnn_chunk(B, clipnn_thread_id(), clipnn_thread_count(), &lo, &hi);
            dense_sqnorms(m, lo, hi, sq);
        }
        return;
    }
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        const float *a = clipnn_layer_input(m, l), *d = m->delta[l];
        for (size_t i = 0; i < B; i++)
            sq[i] += clipnn_shared_dense_sqnorm(R, a + i * R * L->in, L->in, d + i * R * L->out, L->out,
                                                m->norm_scratch);
    }
}

static void front_sqnorms(const clipnn_model *m, size_t B, double *sq) {
    for (size_t l = 0; l < m->n_rec; l++) {
        const clipnn_rec_layer *R = &m->rec[l];
        clipnn_rec_shape shape = R->shape;
        shape.batch = B;
        size_t stride;
        const float *in = clipnn_front_layer_input(m, l, &stride);
        /* the shape was checked when the workspace was sized */
        (void)clipnn_rec_example_sqnorms(&shape, in, stride, R->work, m->norm_scratch, m->example_sq);
        for (size_t b = 0; b < B; b++) {
            const double *t = m->example_sq + 4 * b;
            sq[b] += t[0] + t[1] + t[2] + t[3];
        }
    }
}

void clipnn_example_sqnorms(const clipnn_model *m, double *sq) {
    size_t B = m->ws.batch;
    for (size_t i = 0; i < B; i++) sq[i] = 0;
    head_sqnorms(m, B, sq);
    front_sqnorms(m, B, sq);
}

static void head_reweight(clipnn_model *m, size_t B, const double *factor, float *g) {
    const size_t R = rows_per_example(m);
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        float *d = m->delta[l];
        for (size_t i = 0; i < B; i++) clipnn_scale(d + i * R * L->out, R * L->out, (float)factor[i]);
        clipnn_dense_backward(g + L->w_offset, g + L->b_offset, NULL, d, clipnn_layer_input(m, l),
                              m->params + L->w_offset, B * R, L->in, L->out);
    }
}

static void front_reweight(clipnn_model *m, size_t B, const double *factor, float *g) {
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_layer *R = &m->rec[l];
        clipnn_rec_shape shape = R->shape;
        shape.batch = B;
        size_t stride;
        const float *in = clipnn_front_layer_input(m, l, &stride);
        float *grad = g + R->p_offset;
        memset(grad, 0, R->off.total * sizeof *grad);
        (void)clipnn_rec_scale_examples(&shape, factor, R->work);
        (void)clipnn_rec_param_grads(&shape, in, stride, R->work, grad);
    }
}

void clipnn_example_reweight(clipnn_model *m, const double *factor, float *g) {
    size_t B = m->ws.batch;
    head_reweight(m, B, factor, g);
    front_reweight(m, B, factor, g);
}

/* ------------------------------------------ one backward (book-keeping) */

/* Per-sample clipping in one backward (Bu et al., "Differentially private
 * optimization on large model at small cost", ICML 2023): the backward
 * through the activations reads W, never dW, so every layer's deltas are
 * known before any weight gradient; the per-example norms come from them
 * (head_sqnorms), the deltas are scaled, and each dW is formed once
 * (clipnn_example_reweight). The gradient before clipping is never formed:
 * its norms (the clipping record's pre-clip norms) come from the Gram
 * matrices of each layer's rows, ||sum_i d_i a_i^T||^2 = sum_{i,j}
 * (a_i . a_j)(d_i . d_j), where that is cheaper than forming dW. */

int clipnn_example_one_pass_ok(const clipnn_model *m) { return m->n_rec == 0 && rows_per_example(m) == 1; }

/* Is the Gram form (in double, two dsyrk: B^2 (in + out) / 2 multiply-adds
 * at half float speed) cheaper than forming dW (B in out)? */
static int gram_cheaper(size_t B, size_t in, size_t out) { return B * (in + out) < in * out; }

/* Doubles of the Gram scratch for batches of up to cap rows: two B x B
 * matrices per layer (kept from the pre-clip norms to the post-clip ones)
 * and the double copies of a layer's rows. */
static size_t gram_doubles(const clipnn_model *m, size_t cap) {
    size_t widest = 0;
    for (size_t l = 0; l < m->n_layers; l++)
        if (m->layers[l].in + m->layers[l].out > widest) widest = m->layers[l].in + m->layers[l].out;
    return 2 * m->n_layers * cap * cap + cap * widest;
}

clipnn_status clipnn_example_gram_reserve(clipnn_model *m, size_t max_batch) {
    size_t cap = 0;
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        for (size_t b = cap + 1; b <= max_batch && gram_cheaper(b, L->in, L->out); b++) cap = b;
    }
    if (cap <= m->gram_cap) return CLIPNN_OK;
    double *g = clipnn_alloc_array(gram_doubles(m, cap), sizeof *g);
    if (!g) return clipnn_fail(CLIPNN_ERR_NOMEM, "model: out of memory for the Gram matrices of %zu rows", cap);
    clipnn_free(m->gram);
    m->gram = g;
    m->gram_cap = cap;
    return CLIPNN_OK;
}

/* Does layer l of the last backward take the Gram form? */
static int layer_gram(const clipnn_model *m, size_t l) {
    size_t B = m->ws.batch;
    return B <= m->gram_cap && gram_cheaper(B, m->layers[l].in, m->layers[l].out);
}

/* From the upper triangles of a layer's two B x B Gram matrices
 * (row-major, rows of a and of d), each example's share weighted by f_i
 * (NULL: 1): ||dW||^2 = sum_{i,j} f_i f_j ga_ij gd_ij and into *bias
 * ||db||^2 = sum_{i,j} f_i f_j gd_ij. */
static double gram_pair_sum(const double *ga, const double *gd, size_t B, const double *f, double *bias) {
    double w = 0, b = 0;
    for (size_t i = 0; i < B; i++) {
        double wd = 0, bd = 0, fi = f ? f[i] : 1.0;
        for (size_t j = i + 1; j < B; j++) {
            double fj = f ? f[j] : 1.0;
            wd += fj * ga[i * B + j] * gd[i * B + j];
            bd += fj * gd[i * B + j];
        }
        w += fi * (2 * wd + fi * ga[i * B + i] * gd[i * B + i]);
        b += fi * (2 * bd + fi * gd[i * B + i]);
    }
    *bias = b;
    return w;
}

/* The Gram matrix of the B rows of v ([B][n] floats), in double. */
static void gram_of(const float *v, size_t B, size_t n, double *copy, double *gram) {
    for (size_t i = 0; i < B * n; i++) copy[i] = (double)v[i];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)B, (int)n, 1.0, copy, (int)n, 0.0, gram, (int)B);
}

/* Sum of the rows' sums of squares of W ([rows][cols]), in row order: the
 * same sums as clipnn_example_reweight_once takes of the rows it forms, so
 * that a layer no example's factor changed has the same norm before and
 * after clipping. */
static double rows_sumsq(const float *W, size_t rows, size_t cols) {
    double s = 0;
    for (size_t j = 0; j < rows; j++) s += clipnn_sumsq_blocked(W + j * cols, cols);
    return s;
}

void clipnn_example_unformed_group_sumsq(clipnn_model *m, float *g, double *acc) {
    size_t B = m->ws.batch;
    double *copy = m->gram + 2 * m->n_layers * m->gram_cap * m->gram_cap;
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        const float *a = clipnn_layer_input(m, l), *d = m->delta[l];
        size_t gw = 2 * l; /* the layer's W group, then its b (a dense model) */
        if (layer_gram(m, l)) {
            double *ga = m->gram + 2 * l * B * B, *gd = ga + B * B;
            gram_of(a, B, L->in, copy, ga);
            gram_of(d, B, L->out, copy, gd);
            acc[gw] = gram_pair_sum(ga, gd, B, NULL, &acc[gw + 1]);
            continue;
        }
        float *dW = g + L->w_offset, *db = g + L->b_offset;
        clipnn_dense_backward(dW, db, NULL, d, a, m->params + L->w_offset, B, L->in, L->out);
        acc[gw] = rows_sumsq(dW, L->out, L->in);
        acc[gw + 1] = clipnn_sumsq_blocked(db, L->out);
    }
}

void clipnn_example_unformed_group_post(const clipnn_model *m, const double *factor, double *acc) {
    size_t B = m->ws.batch;
    for (size_t l = 0; l < m->n_layers; l++) {
        if (!layer_gram(m, l)) continue;
        const double *ga = m->gram + 2 * l * B * B, *gd = ga + B * B;
        acc[2 * l] = gram_pair_sum(ga, gd, B, factor, &acc[2 * l + 1]);
    }
}

/* Thread t of T: its units of every layer: their columns of the deltas
 * scaled by the examples' factors, then their rows of dW and db formed from
 * them, and the rows' sums of squares, while the rows are in its cache; no
 * barrier, every delta is known and a thread reads only its own columns. */
static void form_rows(clipnn_model *m, const double *factor, float *g, size_t B, int t, int T) {
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        size_t lo, hi;
        clipnn_chunk(L->out, t, T, &lo, &hi);
        if (hi <= lo) continue;
        for (size_t i = 0; i < B; i++) clipnn_scale(m->delta[l] + i * L->out + lo, hi - lo, (float)factor[i]);
        float *dW = g + L->w_offset;
        clipnn_dense_weight_grad_rows(dW, g + L->b_offset, m->delta[l], clipnn_layer_input(m, l), B, L->in, L->out,
                                      lo, hi);
        for (size_t j = lo; j < hi; j++) m->row_acc[L->unit_base + j] = clipnn_sumsq_blocked(dW + j * L->in, L->in);
    }
}

void clipnn_example_reweight_once(clipnn_model *m, const double *factor, float *g, double *group_acc) {
    size_t B = m->ws.batch;
    int threads = clipnn_threads_for_macs(B * (m->n_params - m->layers[0].w_offset));
#pragma omp parallel num_threads(threads) if (threads > 1)
    form_rows(m, factor, g, B, clipnn_thread_id(), clipnn_thread_count());
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *L = &m->layers[l];
        double w = 0;
        for (size_t j = 0; j < L->out; j++) w += m->row_acc[L->unit_base + j];
        group_acc[2 * l] = w;
        group_acc[2 * l + 1] = clipnn_sumsq_blocked(g + L->b_offset, L->out);
    }
}
