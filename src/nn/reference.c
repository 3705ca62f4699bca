/* The double-precision reference forward and backward: plain loops, no
 * BLAS, no shortcuts. Slow on purpose; it is the oracle that the float32
 * path, the tests and the diagnosis compare against. */
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

/* theta ([n_params]), then per layer its z, output and delta ([batch][out] each). */
typedef struct {
    double *block, *theta;
    double **zs, **as, **ds; /* [L], [L + 1], [L] */
} reference_space;

static void free_reference_space(reference_space *r) {
    clipnn_free(r->block), clipnn_free(r->zs), clipnn_free(r->as), clipnn_free(r->ds);
}

static clipnn_status alloc_reference_space(const clipnn_model *m, const double *params_override, const double *x,
                                           size_t batch, reference_space *r) {
    size_t L = m->n_layers, total = m->n_params;
    for (size_t l = 0; l < L; l++) total += 3 * batch * m->layers[l].out;
    r->block = clipnn_alloc_array(total, sizeof *r->block);
    r->zs = clipnn_alloc_array(L, sizeof *r->zs), r->as = clipnn_alloc_array(L + 1, sizeof *r->as);
    r->ds = clipnn_alloc_array(L, sizeof *r->ds);
    if (!r->block || !r->zs || !r->as || !r->ds) {
        free_reference_space(r);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "reference: out of memory");
    }
    double *p = r->block + m->n_params;
    r->theta = r->block;
    for (size_t i = 0; i < m->n_params; i++) r->theta[i] = params_override ? params_override[i] : (double)m->params[i];
    r->as[0] = (double *)x;
    for (size_t l = 0; l < L; l++) {
        size_t n = batch * m->layers[l].out;
        r->zs[l] = p, p += n;
        r->as[l + 1] = p, p += n;
        r->ds[l] = p, p += n;
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_reference_loss_grad(const clipnn_model *m, const double *params_override,
                                         const clipnn_loss_options *lo, const double *x,
                                         const double *y, size_t batch, double *loss_out,
                                         double *logits, double *grad, double *dx) {
    if (!m || !lo || !x || !y || batch == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "reference: NULL argument or empty batch");
    reference_space R = {0};
    clipnn_status s = alloc_reference_space(m, params_override, x, batch, &R);
    if (s) return s;
    size_t L = m->n_layers, k = m->layers[L - 1].out;
    clipnn_reference_forward(m, R.theta, batch, R.zs, R.as);
    if (logits) memcpy(logits, R.as[L], batch * k * sizeof *logits);
    double loss = clipnn_loss_forward_backward_d(lo, R.as[L], y, batch, k, R.ds[L - 1]);
    if (loss_out) *loss_out = loss;
    if (grad) memset(grad, 0, m->n_params * sizeof *grad);
    for (size_t l = L; l-- > 0;)
        reference_layer_backward(m, R.theta, l, batch, R.zs, R.as, R.ds[l], grad, l > 0 ? R.ds[l - 1] : dx);
    free_reference_space(&R);
    return CLIPNN_OK;
}
