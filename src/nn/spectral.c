/* The spectral radius of a square block, by power iteration in double:
 * the recurrent initialisation scales W_hh with it, the training log and
 * the diagnosis report it. */
#include <math.h>

#include "nn/nn.h"

/* The mean growth log ||A v|| of a unit vector over many steps after a
 * burn-in converges to log max |eigenvalue| also when the dominant
 * eigenvalues are a complex pair (a rotation), where the ratio of
 * successive norms of plain power iteration oscillates. */
double clipnn_spectral_radius(const float *a, size_t n, size_t lda, double *v, double *w, clipnn_rng *rng) {
    const int burn = 200, steps = 2000;
    for (size_t i = 0; i < n; i++) v[i] = clipnn_rng_normal(rng);
    double log_sum = 0;
    for (int it = 0; it < burn + steps; it++) {
        double norm = 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < n; j++) s += (double)a[i * lda + j] * v[j];
            w[i] = s;
            norm += s * s;
        }
        norm = sqrt(norm);
        if (!(norm > 0)) return 0;
        for (size_t i = 0; i < n; i++) v[i] = w[i] / norm;
        if (it >= burn) log_sum += log(norm);
    }
    return exp(log_sum / steps);
}

size_t clipnn_model_layer_gates(const clipnn_model *m, size_t layer) {
    return m && layer < m->n_rec ? clipnn_cell_gates(m->rec[layer].shape.cell) : 0;
}

/* Every measurement starts from the same vector, so that the same W_hh
 * gives the same number. */
#define RADIUS_START_SEED 1

double clipnn_rec_block_radius(const clipnn_model *m, size_t layer, size_t gate, double *scratch) {
    const clipnn_rec_layer *R = &m->rec[layer];
    size_t h = R->shape.hidden;
    clipnn_rng rng;
    clipnn_rng_seed(&rng, RADIUS_START_SEED);
    return clipnn_spectral_radius(m->params + R->p_offset + R->off.w_hh + gate * h * h, h, h, scratch, scratch + h,
                                  &rng);
}

clipnn_status clipnn_model_rec_radius(const clipnn_model *m, size_t layer, size_t gate, double *out) {
    if (!m || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "spectral radius: NULL argument");
    if (gate >= clipnn_model_layer_gates(m, layer))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "spectral radius: layer %zu has no recurrent gate block %zu", layer,
                           gate);
    double *scratch = clipnn_alloc_array(2 * m->rec[layer].shape.hidden, sizeof *scratch);
    if (!scratch) return clipnn_fail(CLIPNN_ERR_NOMEM, "spectral radius: out of memory");
    *out = clipnn_rec_block_radius(m, layer, gate, scratch);
    clipnn_free(scratch);
    return CLIPNN_OK;
}
