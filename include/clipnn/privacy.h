/* clipnn: the privacy of DP-SGD: a Renyi-DP accountant for the subsampled Gaussian mechanism. */
#ifndef CLIPNN_PUBLIC_PRIVACY_H
#define CLIPNN_PUBLIC_PRIVACY_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One step of DP-SGD is the sampled Gaussian mechanism: every example joins
 * the batch independently with probability q (Poisson sampling), each
 * example's gradient is clipped to norm C, and Gaussian noise of standard
 * deviation sigma C is added to their sum (sigma: the noise multiplier).
 * Its Renyi differential privacy at order alpha > 1 (I. Mironov, K. Talwar,
 * L. Zhang, "Renyi Differential Privacy of the Sampled Gaussian Mechanism",
 * 2019) is log(A_alpha) / (alpha - 1), with A_alpha the exact binomial sum
 * at integer orders and the paper's two-sided series at fractional ones;
 * q = 1 is the Gaussian mechanism, alpha / (2 sigma^2). RDP adds up over
 * steps, and the total at the best order converts to (epsilon, delta)-DP by
 *     epsilon = rdp - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha)
 * (B. Balle et al., "Hypothesis Testing Interpretations and Renyi
 * Differential Privacy", 2020; Opacus's get_privacy_spent). All sums are
 * taken in log space in double precision, so no term overflows.
 *
 * The guarantee is for the add/remove-one-example neighbouring relation and
 * holds only when the batches are drawn by Poisson sampling as above. */

/* The orders alpha of the grid: 1.1, 1.2, ..., 10.9 (Opacus's default
 * grid), 12, 13, ..., 63, then 128, 256, 512 and 1024. Returns their count;
 * *orders (may be NULL) receives a static array of them. */
CLIPNN_API size_t clipnn_dp_orders(const double **orders);

/* RDP of one step at every order of the grid into rdp[clipnn_dp_orders()]:
 * 0 when q = 0, +inf when sigma = 0. Needs q in [0, 1] and sigma >= 0
 * (INVALID_ARG otherwise). */
CLIPNN_API clipnn_status clipnn_dp_rdp(double q, double sigma, double *rdp);

/* The smallest epsilon over the orders for a total RDP rdp[clipnn_dp_orders()]
 * at delta in (0, 1): *epsilon and the order that gives it (*order, may be
 * NULL); +inf (order NaN) when every order's RDP is infinite. */
CLIPNN_API clipnn_status clipnn_dp_epsilon_of_rdp(const double *rdp, double delta, double *epsilon, double *order);

/* (epsilon, delta) of `steps` steps of the sampled Gaussian mechanism with
 * sampling rate q and noise multiplier sigma: clipnn_dp_rdp times steps,
 * then clipnn_dp_epsilon_of_rdp. best_order may be NULL. */
CLIPNN_API clipnn_status clipnn_dp_epsilon(double q, double sigma, uint64_t steps, double delta, double *epsilon,
                                           double *best_order);

/* The smallest noise multiplier (to a relative 1e-10) whose epsilon after
 * `steps` steps at sampling rate q and delta is at most target_epsilon, by
 * bisection on clipnn_dp_epsilon (as Opacus's get_noise_multiplier, to a
 * finer tolerance). A target no noise up to 1e6 can meet (below what the
 * grid's largest order gives as sigma grows) fails with INVALID_ARG and
 * one line saying so. */
CLIPNN_API clipnn_status clipnn_dp_noise_for_epsilon(double q, uint64_t steps, double delta, double target_epsilon,
                                                     double *sigma);

/* The delta a training set of n examples gets by default: 1/n rounded down
 * to a power of ten (60000 -> 1e-5, 1797 -> 1e-4). */
CLIPNN_API double clipnn_dp_default_delta(size_t n);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_PRIVACY_H */
