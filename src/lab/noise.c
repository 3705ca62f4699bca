/* noise-floor (Koloskova, Hendrikx, Stich, ICML 2023) and heavy-tail
 * (Zhang et al., NeurIPS 2020): clipped SGD on f(x) = x^2/2 (f'(x) = x)
 * with g = x + xi, E xi = 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lab.h"

static double clamp1(double u, double c) { return u > c ? c : u < -c ? -c : u; }

/* ---------------------------------------------------------- noise floor */

/* Two atoms, +a with probability p and -b with 1 - p, mean 0, variance a b
 * = sigma^2. */
typedef struct {
    double v[2], p[2];
    lab_noise z;
} two_point;

static void two_point_set(two_point *t, double sigma, double p) {
    t->v[0] = sigma * sqrt((1 - p) / p), t->v[1] = -sigma * sqrt(p / (1 - p));
    t->p[0] = p, t->p[1] = 1 - p;
    t->z = (lab_noise){.k = 2, .v = t->v, .p = t->p};
}

/* The floor: |f'| at the root of E clip(x + xi) = 0, the largest over the
 * two-point laws of variance sigma^2 (p on a log grid); *p_worst its p. */
static double worst_floor(double sigma, double c, double *p_worst) {
    double best = 0;
    two_point t;
    for (int i = 0; i <= 80; i++) {
        double p = pow(10, -8 + (double)i / 80 * (8 + log10(0.5))); /* 1e-8 .. 0.5 */
        two_point_set(&t, sigma, p);
        double x = lab_noise_fixed_point(&t.z, c, -(c + 10 * sigma), c + 10 * sigma);
        if (fabs(x) > best) best = fabs(x), *p_worst = p;
    }
    return best;
}

/* Mean of x over the second half of n constant-step clipped SGD steps from 0. */
static double sgd_mean(lab_ctx *L, const lab_noise *z, double c, double gamma, size_t n) {
    double x = 0, sum = 0;
    for (size_t k = 0; k < n; k++) {
        x -= gamma * clamp1(x + lab_noise_draw(z, &L->rng), c);
        if (k >= n / 2) sum += x;
    }
    return sum / (double)(n - n / 2);
}

clipnn_status lab_noise_floor(lab_ctx *L) {
    static const double CS[7] = {0.1, 0.3, 1, 3, 10, 30, 100};
    const double sigma = 1;
    double rmin = INFINITY, rmax = 0, pw[7], fl[7];
    lab_printf(L, "f(x) = x^2/2, g = x + xi, xi two-point of variance sigma^2 = 1 (the worst p), floor = |f'(x*)| "
                  "at the "
                  "root x* of E clip_c(x* + xi) = 0.\n%8s %10s %12s %16s %10s\n",
               "c", "worst p", "floor", "min(s, s^2/c)", "ratio");
    for (int i = 0; i < 7; i++) {
        fl[i] = worst_floor(sigma, CS[i], &pw[i]);
        double b = fmin(sigma, sigma * sigma / CS[i]), r = fl[i] / b;
        rmin = fmin(rmin, r), rmax = fmax(rmax, r);
        lab_printf(L, "%8g %10.3g %12.5g %16.5g %10.4f\n", CS[i], pw[i], fl[i], b, r);
    }
    const lab_noise gauss = {.sigma = sigma};
    double gfloor = fabs(lab_noise_fixed_point(&gauss, 1, -10, 10));
    /* SGD at c = 1 and c = 10, each at two constant steps: the iterates stop at the floor, not at 0 */
    int agree = 1;
    double worst_gap = 0, means[4];
    for (int k = 0; k < 4; k++) {
        int ci = k < 2 ? 2 : 4;
        double gamma = k % 2 ? 0.001 : 0.01;
        two_point t;
        two_point_set(&t, sigma, pw[ci]);
        double xs = lab_noise_fixed_point(&t.z, CS[ci], -20, 20);
        means[k] = sgd_mean(L, &t.z, CS[ci], gamma, lab_size(L, (size_t)(400 / gamma), (size_t)(40 / gamma)));
        /* stationary mean within O(gamma) of the drift's root, plus sampling error (about 0.1 x*) */
        double gap = fabs(means[k] - xs) / xs;
        worst_gap = fmax(worst_gap, gap);
        agree &= gap < 0.25;
    }
    lab_printf(L, "symmetric (Gaussian) noise, c = 1: floor %.2g. Clipped SGD, constant steps 0.01 and 0.001, mean "
                  "of the second half: c = 1: %.4f, %.4f (x* = %.4f); c = 10: %.4f, %.4f (x* = %.4f)\n\n",
               gfloor, means[0], means[1], fl[2], means[2], means[3], fl[4]);
    int holds = rmax <= 2.5 && rmin >= 0.1 && agree && gfloor < 1e-9;
    lab_claim(L, "bias-floor", holds ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "with noise of variance sigma^2 = 1 the gradient stops at a floor of order min(sigma, sigma^2/c): "
              "floor / min(sigma, sigma^2/c) in [%.3f, %.3f] for c = 0.1 .. 100 (floor %.3g at c = 0.1, %.3g at c = 1, "
              "%.3g at c = 100), under the bound 2.5; SGD at steps 0.01 and 0.001 stays there (largest relative gap "
              "to x* %.3f); symmetric noise has no floor (%.1g)",
              rmin, rmax, fl[0], fl[2], fl[6], worst_gap, gfloor);
    return CLIPNN_OK;
}

/* ----------------------------------------------------------- heavy tail */

/* Symmetric Pareto noise: sign * (U^(-1/alpha) - 1) * scale, mean 0; E|xi|^q
 * is finite exactly for q < alpha (alpha = 1.5: infinite variance). */
static double pareto(clipnn_rng *r, double alpha) {
    double u = 1 - clipnn_rng_uniform(r); /* (0, 1] */
    double m = pow(u, -1 / alpha) - 1;
    return clipnn_rng_uniform(r) < 0.5 ? -m : m;
}

typedef struct {
    double growth;  /* running mean of f(x_t) at T over at T/100 (median over runs) */
    double max_f;   /* largest f(x_t) met */
    double final_g; /* mean |f'(x_T)| over the runs */
} tail_run;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* R runs of T steps from x0 = 1: constant step gamma (c = INFINITY: plain
 * SGD), or decreasing steps a(t) = 0.5/(1+t/100)^0.75 when gamma = 0. */
static tail_run tail_runs(lab_ctx *L, double alpha, double c, double gamma, size_t R, size_t T) {
    tail_run out = {0, 0, 0};
    double growth[16];
    for (size_t r = 0; r < R && r < 16; r++) {
        double x = 1, sum = 0, early = 0;
        for (size_t t = 0; t < T; t++) {
            double a = gamma > 0 ? gamma : 0.5 / pow(1 + (double)t / 100, 0.75);
            x -= a * clamp1(x + pareto(&L->rng, alpha), c);
            sum += 0.5 * x * x;
            out.max_f = fmax(out.max_f, 0.5 * x * x);
            if (t + 1 == T / 100) early = sum / (double)(t + 1);
        }
        growth[r] = (sum / (double)T) / early;
        out.final_g += fabs(x) / (double)R;
    }
    qsort(growth, R, sizeof *growth, cmp_d);
    out.growth = growth[R / 2];
    return out;
}

clipnn_status lab_heavy_tail(lab_ctx *L) {
    size_t R = lab_size(L, 8, 4), T = lab_size(L, 1000000, 100000);
    const double gamma = 0.05, c = 1;
    tail_run sgd = tail_runs(L, 1.5, INFINITY, gamma, R, T), sgd4 = tail_runs(L, 4, INFINITY, gamma, R, T);
    tail_run clip = tail_runs(L, 1.5, c, gamma, R, T), clip_dec = tail_runs(L, 1.5, c, 0, R, T);
    lab_printf(L, "f(x) = x^2/2, g = x + xi, xi symmetric Pareto (tail index alpha), x0 = 1, %zu runs of %zu steps.\n"
                  "growth = running mean of f(x_t) at T over at T/100 (median over runs): it settles near 1 when E f "
                  "is finite.\n%-38s %12s %14s %14s\n",
               R, T, "", "growth", "max f(x_t)", "mean |f'(x_T)|");
    lab_printf(L, "%-38s %12.3g %14.3g %14.3g\n", "SGD, gamma = 0.05, alpha = 1.5", sgd.growth, sgd.max_f, sgd.final_g);
    lab_printf(L, "%-38s %12.3g %14.3g %14.3g\n", "SGD, gamma = 0.05, alpha = 4", sgd4.growth, sgd4.max_f,
               sgd4.final_g);
    lab_printf(L, "%-38s %12.3g %14.3g %14.3g\n", "clipped c = 1, gamma = 0.05, alpha = 1.5", clip.growth, clip.max_f,
               clip.final_g);
    lab_printf(L, "%-38s %12.3g %14.3g %14.3g\n\n", "clipped c = 1, decreasing, alpha = 1.5", clip_dec.growth,
               clip_dec.max_f, clip_dec.final_g);
    int holds = sgd.growth >= 2 && sgd4.growth <= 1.5 && clip.growth <= 1.5 && clip_dec.final_g <= 0.05 &&
                sgd.max_f > 100 * clip.max_f;
    lab_claim(L, "heavy-tail", holds ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "infinite-variance noise (alpha = 1.5): SGD's running mean of f keeps growing (x%.3g from T/100 to T = "
              "%zu; "
              "x%.3g with alpha = 4) and f reaches %.3g; clipped SGD (c = 1) stays below %.3g (growth x%.3g) and with "
              "decreasing steps ends at mean |f'| = %.3g",
              sgd.growth, T, sgd4.growth, sgd.max_f, clip.max_f, clip.growth, clip_dec.final_g);
    return CLIPNN_OK;
}
