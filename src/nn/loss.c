/* Losses on raw outputs: MSE (paper eq. 4), softmax cross-entropy on logits
 * (eq. 5/6), sigmoid binary cross-entropy on logits, and the CW margin. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

static const char *const loss_names[CLIPNN_LOSS_COUNT] = {"mse", "xent", "bce", "margin"};

CLIPNN_NAME_FUNCTIONS(clipnn_loss, clipnn_loss, loss_names, CLIPNN_LOSS_COUNT, "loss")

clipnn_status clipnn_loss_check_targets(const clipnn_loss_options *lo, size_t k, const float *yf, const double *yd,
                                        size_t rows) {
    if ((unsigned)lo->loss >= CLIPNN_LOSS_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "loss: unknown kind %d", (int)lo->loss);
    if (lo->loss != CLIPNN_LOSS_XENT && lo->loss != CLIPNN_LOSS_MARGIN) return CLIPNN_OK;
    if (lo->loss == CLIPNN_LOSS_MARGIN && k < 2)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "loss: margin needs at least 2 outputs");
    for (size_t r = 0; r < rows; r++) {
        double v = yf ? (double)yf[r] : yd[r];
        if (!clipnn_is_class_index(v, k))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "loss: target %g of row %zu is not a class of %zu outputs", v, r, k);
    }
    return CLIPNN_OK;
}

clipnn_loss_options clipnn_loss_options_default(void) {
    return (clipnn_loss_options){.loss = CLIPNN_LOSS_XENT, .kappa = 0.0, .want_params = 1};
}

#define REAL float
#define LOSS_FN loss_float
#include "nn/loss_kernel.h"
#undef REAL
#undef LOSS_FN

#define REAL double
#define LOSS_FN loss_double
#include "nn/loss_kernel.h"
#undef REAL
#undef LOSS_FN

double clipnn_loss_forward_backward(const clipnn_loss_options *lo, const float *z, const float *y,
                                    size_t B, size_t k, float *losses, float *dz) {
    return loss_float(lo, z, y, B, k, losses, dz);
}

double clipnn_loss_forward_backward_d(const clipnn_loss_options *lo, const double *z,
                                      const double *y, size_t B, size_t k, double *dz) {
    return loss_double(lo, z, y, B, k, NULL, dz);
}
