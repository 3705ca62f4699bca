/* The double-precision reference forward and backward: plain loops, no
 * BLAS, no shortcuts. Slow on purpose; it is the oracle that the float32
 * path, the tests and the diagnosis compare against. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

clipnn_status clipnn_reference_loss_grad(const clipnn_model *m, const double *params_override,
                                         const clipnn_loss_options *lo, const double *x,
                                         const double *y, size_t batch, double *loss_out,
                                         double *logits, double *grad, double *dx) {
    if (!m || !lo || !x || !y || batch == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "reference: NULL argument or empty batch");
    size_t L = m->n_layers;
    /* acts[l] holds the input of layer l (acts[0] = x) and zs[l] its z. */
    size_t total = 0;
    for (size_t l = 0; l < L; l++) total += 3 * batch * m->layers[l].out;
    total += m->n_params;
    double *block = clipnn_alloc_array(total, sizeof *block);
    double **zs = clipnn_alloc_array(L, sizeof *zs), **as = clipnn_alloc_array(L + 1, sizeof *as);
    double **ds = clipnn_alloc_array(L, sizeof *ds);
    if (!block || !zs || !as || !ds) {
        clipnn_free(block), clipnn_free(zs), clipnn_free(as), clipnn_free(ds);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "reference: out of memory");
    }
    double *theta = block, *p = block + m->n_params;
    for (size_t i = 0; i < m->n_params; i++)
        theta[i] = params_override ? params_override[i] : (double)m->params[i];
    as[0] = (double *)x;
    for (size_t l = 0; l < L; l++) {
        size_t n = batch * m->layers[l].out;
        zs[l] = p, p += n;
        as[l + 1] = p, p += n;
        ds[l] = p, p += n;
    }
    for (size_t l = 0; l < L; l++) {
        const clipnn_layer *Ly = &m->layers[l];
        const double *W = theta + Ly->w_offset, *b = theta + Ly->b_offset;
        for (size_t r = 0; r < batch; r++)
            for (size_t o = 0; o < Ly->out; o++) {
                double s = b[o];
                for (size_t i = 0; i < Ly->in; i++) s += as[l][r * Ly->in + i] * W[o * Ly->in + i];
                zs[l][r * Ly->out + o] = s;
                as[l + 1][r * Ly->out + o] = clipnn_act_eval_d(Ly->act, s);
            }
    }
    size_t k = m->layers[L - 1].out;
    if (logits) memcpy(logits, as[L], batch * k * sizeof *logits);
    double loss = clipnn_loss_forward_backward_d(lo, as[L], y, batch, k, ds[L - 1]);
    if (loss_out) *loss_out = loss;
    if (grad) memset(grad, 0, m->n_params * sizeof *grad);
    for (size_t l = L; l-- > 0;) {
        const clipnn_layer *Ly = &m->layers[l];
        const double *W = theta + Ly->w_offset;
        for (size_t i = 0; i < batch * Ly->out; i++) ds[l][i] *= clipnn_act_deriv_d(Ly->act, zs[l][i]);
        if (grad)
            for (size_t r = 0; r < batch; r++)
                for (size_t o = 0; o < Ly->out; o++) {
                    double d = ds[l][r * Ly->out + o];
                    grad[Ly->b_offset + o] += d;
                    for (size_t i = 0; i < Ly->in; i++)
                        grad[Ly->w_offset + o * Ly->in + i] += d * as[l][r * Ly->in + i];
                }
        double *da = l > 0 ? ds[l - 1] : dx;
        if (!da) continue;
        for (size_t r = 0; r < batch; r++)
            for (size_t i = 0; i < Ly->in; i++) {
                double s = 0;
                for (size_t o = 0; o < Ly->out; o++) s += ds[l][r * Ly->out + o] * W[o * Ly->in + i];
                da[r * Ly->in + i] = s;
            }
    }
    clipnn_free(block), clipnn_free(zs), clipnn_free(as), clipnn_free(ds);
    return CLIPNN_OK;
}
