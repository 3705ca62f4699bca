/* The Renyi-DP accountant of DP-SGD: RDP of the sampled Gaussian mechanism
 * (Mironov, Talwar, Zhang 2019) at a grid of orders, its conversion to
 * (epsilon, delta) (Balle et al. 2020) and the noise a target epsilon needs.
 * Everything is in log space: A_alpha reaches e^(alpha^2 / (2 sigma^2)),
 * far past double range at the large orders. */
#include <math.h>

#include "clip/clip.h"

/* Opacus's default grid (1 + x / 10 for x = 1..99, then 12..63) and four
 * larger orders, which a small epsilon at a large noise needs. */
#define N_ORDERS 155
static const double orders[N_ORDERS] = {
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1, 3.2,
    3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2, 5.3, 5.4,
    5.5, 5.6, 5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0, 7.1, 7.2, 7.3, 7.4, 7.5, 7.6,
    7.7, 7.8, 7.9, 8.0, 8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, 9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8,
    9.9, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 128, 256, 512, 1024};

size_t clipnn_dp_orders(const double **out) {
    if (out) *out = orders;
    return N_ORDERS;
}

/* log(e^a + e^b) and log(e^a - e^b) (a >= b), -inf standing for log 0. */
static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + log1p(exp(lo - hi));
}

static double log_sub(double a, double b) {
    if (b == -INFINITY) return a;
    if (!(a > b)) return -INFINITY; /* rounding left nothing */
    return a + log1p(-exp(b - a));
}

/* log(erfc(x)), also where erfc(x) underflows: the asymptotic series
 * erfc(x) = e^(-x^2) / (x sqrt(pi)) sum_k (-1)^k (2k-1)!! / (2x^2)^k, whose
 * terms past the sixth are below 1e-16 of the first for x >= 20. */
static double log_erfc(double x) {
    if (x < 20) return log(erfc(x));
    double r = 1 / (2 * x * x), term = 1, sum = 1;
    for (int k = 1; k <= 6; k++) {
        term *= -(2 * k - 1) * r;
        sum += term;
    }
    return -x * x - log(x) - 0.5 * log(3.14159265358979323846) + log(sum);
}

/* log A_alpha at an integer order: sum_i C(alpha, i) q^i (1-q)^(alpha-i) e^((i^2 - i) / (2 sigma^2)). */
static double log_a_integer(double q, double sigma, int alpha) {
    double acc = -INFINITY, lq = log(q), l1q = log1p(-q), s2 = 2 * sigma * sigma;
    double lbin = 0; /* log C(alpha, i), built term by term */
    for (int i = 0; i <= alpha; i++) {
        if (i > 0) lbin += log((double)(alpha - i + 1)) - log((double)i);
        acc = log_add(acc, lbin + i * lq + (alpha - i) * l1q + ((double)i * i - i) / s2);
    }
    return acc;
}

/* log A_alpha at a fractional order: the paper's series split at z0, each
 * half weighted by a Gaussian tail; the binomial coefficients of a
 * fractional order change sign past alpha, so each term is added or taken
 * away. Stops when both halves' terms fall below e^-30 of one. */
static double log_a_fractional(double q, double sigma, double alpha) {
    double a0 = -INFINITY, a1 = -INFINITY, lq = log(q), l1q = log1p(-q), s2 = 2 * sigma * sigma;
    double z0 = sigma * sigma * log(1 / q - 1) + 0.5, rt = sqrt(2.0) * sigma;
    double lbin = 0; /* log |C(alpha, i)| */
    int sign = 1;
    for (int i = 0;; i++) {
        if (i > 0) {
            double f = alpha - i + 1;
            lbin += log(fabs(f)) - log((double)i);
            if (f < 0) sign = -sign;
        }
        double j = alpha - i;
        double s0 = lbin + i * lq + j * l1q + ((double)i * i - i) / s2 + log(0.5) + log_erfc((i - z0) / rt);
        double s1 = lbin + j * lq + i * l1q + (j * j - j) / s2 + log(0.5) + log_erfc((z0 - j) / rt);
        a0 = sign > 0 ? log_add(a0, s0) : log_sub(a0, s0);
        a1 = sign > 0 ? log_add(a1, s1) : log_sub(a1, s1);
        if ((s0 > s1 ? s0 : s1) < -30 || i > 100000) break;
    }
    return log_add(a0, a1);
}

static double rdp_at(double q, double sigma, double alpha) {
    if (q == 0) return 0;
    if (sigma == 0) return INFINITY;
    if (q == 1) return alpha / (2 * sigma * sigma);
    double la = alpha == floor(alpha) ? log_a_integer(q, sigma, (int)alpha) : log_a_fractional(q, sigma, alpha);
    return la / (alpha - 1);
}

clipnn_status clipnn_dp_rdp(double q, double sigma, double *rdp) {
    if (!rdp) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: NULL argument");
    if (!(q >= 0 && q <= 1)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: sampling rate %g, want 0 to 1", q);
    if (!(sigma >= 0) || !isfinite(sigma))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: noise multiplier %g, want a finite number >= 0", sigma);
    for (size_t k = 0; k < N_ORDERS; k++) rdp[k] = rdp_at(q, sigma, orders[k]);
    return CLIPNN_OK;
}

clipnn_status clipnn_dp_epsilon_of_rdp(const double *rdp, double delta, double *epsilon, double *order) {
    if (!rdp || !epsilon) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: NULL argument");
    if (!(delta > 0 && delta < 1))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: delta %g, want 0 < delta < 1", delta);
    double best = INFINITY, best_order = NAN;
    for (size_t k = 0; k < N_ORDERS; k++) {
        double a = orders[k];
        double eps = rdp[k] - (log(delta) + log(a)) / (a - 1) + log((a - 1) / a);
        if (eps < best) best = eps, best_order = a;
    }
    *epsilon = best;
    if (order) *order = best_order;
    return CLIPNN_OK;
}

clipnn_status clipnn_dp_epsilon(double q, double sigma, uint64_t steps, double delta, double *epsilon,
                                double *best_order) {
    double rdp[N_ORDERS];
    clipnn_status s = clipnn_dp_rdp(q, sigma, rdp);
    if (s) return s;
    for (size_t k = 0; k < N_ORDERS; k++) rdp[k] = steps ? rdp[k] * (double)steps : 0;
    return clipnn_dp_epsilon_of_rdp(rdp, delta, epsilon, best_order);
}

/* Opacus's search: double sigma until the target is met, then bisect. */
clipnn_status clipnn_dp_noise_for_epsilon(double q, uint64_t steps, double delta, double target, double *sigma) {
    if (!sigma) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: NULL argument");
    if (!(target > 0) || !isfinite(target))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: target epsilon %g, want a finite number > 0", target);
    const double max_sigma = 1e6;
    double lo = 0, hi = 1, eps;
    clipnn_status s;
    for (;;) {
        if ((s = clipnn_dp_epsilon(q, hi, steps, delta, &eps, NULL))) return s;
        if (eps <= target) break;
        if (hi >= max_sigma)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: no noise multiplier up to %g reaches epsilon %g at "
                               "delta %g over %llu steps at sampling rate %g (%g at most)", max_sigma, target, delta,
                               (unsigned long long)steps, q, eps);
        lo = hi;
        hi *= 2;
    }
    while (hi - lo > 1e-10 * hi) {
        double mid = 0.5 * (lo + hi);
        if ((s = clipnn_dp_epsilon(q, mid, steps, delta, &eps, NULL))) return s;
        if (eps <= target) hi = mid;
        else lo = mid;
    }
    *sigma = hi;
    return CLIPNN_OK;
}

double clipnn_dp_default_delta(size_t n) {
    double delta = 1;
    for (double p = 1; p < (double)n; p *= 10) delta /= 10;
    return delta;
}
