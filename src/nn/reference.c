/* The double-precision reference forward and backward: the dense head in
 * plain loops (no BLAS, no shortcuts), the recurrent front through the
 * double instance of the recurrent kernel body. Slow on purpose; it is the
 * oracle that the float32 path, the tests and the diagnosis compare
 * against. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

void clipnn_reference_forward(const clipnn_model *m, const double *theta, size_t batch, double *const *zs,
                              double *const *as) {
    for (size_t l = 0; l < m->n_layers; l++) {
        const clipnn_layer *Ly = &m->layers[l];
        for (size_t r = 0; r < batch; r++)
            for (size_t o = 0; o < Ly->out; o++) {
                size_t b = Ly->b_offset + o, w = Ly->w_offset + o * Ly->in;
                double s = theta ? theta[b] : (double)m->params[b];
                for (size_t i = 0; i < Ly->in; i++)
                    s += as[l][r * Ly->in + i] * (theta ? theta[w + i] : (double)m->params[w + i]);
                zs[l][r * Ly->out + o] = s;
                as[l + 1][r * Ly->out + o] = clipnn_act_eval_d(Ly->act, s);
            }
    }
}

/* Layer l's backward: delta ds[l] through the activation's derivative,
 * its parameter gradients added into grad (may be NULL), its input
 * gradient into da (may be NULL). */
static void reference_layer_backward(const clipnn_model *m, const double *theta, size_t l, size_t batch,
                                     double *const *zs, double *const *as, double *ds, double *grad, double *da) {
    const clipnn_layer *Ly = &m->layers[l];
    const double *W = theta + Ly->w_offset;
    for (size_t i = 0; i < batch * Ly->out; i++) ds[i] *= clipnn_act_deriv_d(Ly->act, zs[l][i]);
    if (grad)
        for (size_t r = 0; r < batch; r++)
            for (size_t o = 0; o < Ly->out; o++) {
                double d = ds[r * Ly->out + o];
                grad[Ly->b_offset + o] += d;
                for (size_t i = 0; i < Ly->in; i++) grad[Ly->w_offset + o * Ly->in + i] += d * as[l][r * Ly->in + i];
            }
    if (!da) return;
    for (size_t r = 0; r < batch; r++)
        for (size_t i = 0; i < Ly->in; i++) {
            double s = 0;
            for (size_t o = 0; o < Ly->out; o++) s += ds[r * Ly->out + o] * W[o * Ly->in + i];
            da[r * Ly->in + i] = s;
        }
}

/* One pass's buffers, in one block. Head: as[l] the input of dense layer l
 * (as[0] the head's input), zs[l] its z, ds[l] d loss / d z. Front: per
 * recurrent layer H, dH ([batch][steps][hidden]) and the kernel's work. */
typedef struct {
    double *block, *theta;
    double **zs, **as, **ds;
    double **H, **dH, **work;
    double *head_in, *head_dx;
    size_t rows;
} ref_pass;

static void ref_free(ref_pass *r) {
    clipnn_free(r->block), clipnn_free(r->zs), clipnn_free(r->as), clipnn_free(r->ds);
    clipnn_free(r->H), clipnn_free(r->dH), clipnn_free(r->work);
}

/* Doubles of the block: theta, the head's buffers, the front's. */
static size_t ref_size(const clipnn_model *m, size_t batch, size_t rows, size_t *work) {
    size_t total = m->n_params + rows * (m->n_rec ? 2 * m->layers[0].in : 0);
    for (size_t l = 0; l < m->n_layers; l++) total += 3 * rows * m->layers[l].out;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_shape s = m->rec[l].shape;
        s.batch = batch;
        (void)clipnn_rec_workspace_size(&s, &work[l]); /* the float workspace of this size exists */
        total += work[l] + 2 * batch * s.steps * s.hidden;
    }
    return total;
}

static clipnn_status ref_alloc(const clipnn_model *m, size_t batch, ref_pass *r) {
    memset(r, 0, sizeof *r);
    size_t L = m->n_layers, R = m->n_rec, work[64];
    if (R > 64) return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "reference: more than 64 recurrent layers");
    r->rows = clipnn_head_rows(m, batch);
    r->block = clipnn_alloc_array(ref_size(m, batch, r->rows, work), sizeof *r->block);
    r->zs = clipnn_alloc_array(L, sizeof *r->zs), r->as = clipnn_alloc_array(L + 1, sizeof *r->as);
    r->ds = clipnn_alloc_array(L, sizeof *r->ds);
    r->H = clipnn_alloc_array(R, sizeof *r->H), r->dH = clipnn_alloc_array(R, sizeof *r->dH);
    r->work = clipnn_alloc_array(R, sizeof *r->work);
    if (!r->block || !r->zs || !r->as || !r->ds || !r->H || !r->dH || !r->work) {
        ref_free(r);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "reference: out of memory");
    }
    double *p = r->block + m->n_params;
    r->theta = r->block;
    for (size_t l = 0; l < L; l++) {
        size_t n = r->rows * m->layers[l].out;
        r->zs[l] = p, p += n;
        r->as[l + 1] = p, p += n;
        r->ds[l] = p, p += n;
    }
    for (size_t l = 0; l < R; l++) {
        size_t n = batch * m->steps * m->rec[l].shape.hidden;
        r->H[l] = p, p += n;
        r->dH[l] = p, p += n;
        r->work[l] = p, p += work[l];
    }
    if (R) r->head_in = p, r->head_dx = p + r->rows * m->layers[0].in;
    return CLIPNN_OK;
}

static clipnn_rec_shape ref_shape(const clipnn_model *m, size_t l, size_t batch) {
    clipnn_rec_shape s = m->rec[l].shape;
    s.batch = batch;
    return s;
}

/* The front over x; the head's input (x itself for an MLP). */
static const double *ref_front_forward(const clipnn_model *m, ref_pass *r, const double *x, size_t batch) {
    if (!m->n_rec) return x;
    const double *in = x;
    size_t stride = m->step_dim;
    for (size_t l = 0; l < m->n_rec; l++) {
        clipnn_rec_shape s = ref_shape(m, l, batch);
        (void)clipnn_rec_forward_d(&s, r->theta + m->rec[l].p_offset, in, stride, NULL, NULL, r->H[l], NULL, NULL,
                                   r->work[l]);
        in = r->H[l], stride = s.hidden;
    }
    size_t h = m->rec[m->n_rec - 1].shape.hidden, T = m->steps;
    if (m->every_step) return r->H[m->n_rec - 1];
    for (size_t b = 0; b < batch; b++) memcpy(r->head_in + b * h, in + (b * T + T - 1) * h, h * sizeof(double));
    return r->head_in;
}

static void ref_front_backward(const clipnn_model *m, ref_pass *r, const double *x, size_t batch, double *grad,
                               double *dx) {
    for (size_t l = m->n_rec; l-- > 0;) {
        int top = l + 1 == m->n_rec;
        const double *dH = top ? (m->every_step ? r->head_dx : NULL) : r->dH[l];
        const double *dhT = top && !m->every_step ? r->head_dx : NULL;
        const double *in = l ? r->H[l - 1] : x;
        size_t stride = l ? m->rec[l - 1].shape.hidden : m->step_dim;
        clipnn_rec_shape s = ref_shape(m, l, batch);
        (void)clipnn_rec_backward_d(&s, r->theta + m->rec[l].p_offset, in, stride, dH, dhT, NULL, 0,
                                    grad ? grad + m->rec[l].p_offset : NULL, l ? r->dH[l - 1] : dx, NULL, NULL,
                                    r->work[l]);
    }
}

clipnn_status clipnn_reference_loss_grad(const clipnn_model *m, const double *params_override,
                                         const clipnn_loss_options *lo, const double *x,
                                         const double *y, size_t batch, double *loss_out,
                                         double *logits, double *grad, double *dx) {
    if (!m || !lo || !x || !y || batch == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "reference: NULL argument or empty batch");
    clipnn_status s = clipnn_loss_check_targets(lo, clipnn_model_n_outputs(m), NULL, y, clipnn_head_rows(m, batch));
    if (s) return s;
    ref_pass r;
    s = ref_alloc(m, batch, &r);
    if (s) return s;
    for (size_t i = 0; i < m->n_params; i++) r.theta[i] = params_override ? params_override[i] : (double)m->params[i];
    r.as[0] = (double *)ref_front_forward(m, &r, x, batch);
    clipnn_reference_forward(m, r.theta, r.rows, r.zs, r.as);
    size_t L = m->n_layers, k = m->layers[L - 1].out;
    if (logits) memcpy(logits, r.as[L], r.rows * k * sizeof *logits);
    double loss = clipnn_loss_forward_backward_d(lo, r.as[L], y, r.rows, k, r.ds[L - 1]);
    if (loss_out) *loss_out = loss;
    if (grad) memset(grad, 0, m->n_params * sizeof *grad);
    for (size_t l = L; l-- > 0;)
        reference_layer_backward(m, r.theta, l, r.rows, r.zs, r.as, r.ds[l], grad,
                                 l > 0 ? r.ds[l - 1] : m->n_rec ? r.head_dx : dx);
    if (m->n_rec && (grad || dx)) ref_front_backward(m, &r, x, batch, grad, dx);
    ref_free(&r);
    return CLIPNN_OK;
}
