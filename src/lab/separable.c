/* Theorem 1 without bounded iterates: clipped SGD on separable logistic
 * regression with no regularisation. A1 and A2 hold, yet H(theta) = E[g/c]
 * has no zero: with u a separating direction (s_i x_i.u > 0 for every
 * example, s_i = 2 y_i - 1), every per-example gradient (sigma(x_i.theta) -
 * y_i) x_i has a strictly negative component along u, and so has any
 * positive weighting of them, H included. The iterates can then converge
 * nowhere (a limit would be a zero of the continuous H); they drift off. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

enum { SEP_N = 200, SEP_D = 5 };

typedef struct {
    double X[SEP_N * SEP_D], y[SEP_N], u[SEP_D];
    int adaptive;
    double lambda, eps;
} sep_problem;

/* Gaussian features with a last column of ones; labels from the sign of
 * x.u, keeping only points at distance >= 0.1 from the separating plane. */
static void sep_data(lab_ctx *L, sep_problem *p) {
    double nu = 0;
    for (size_t j = 0; j < SEP_D; j++) p->u[j] = j + 1 < SEP_D ? 1.0 / (double)(j + 1) : 0.0, nu += p->u[j] * p->u[j];
    for (size_t j = 0; j < SEP_D; j++) p->u[j] /= sqrt(nu);
    for (size_t i = 0; i < SEP_N;) {
        double *x = p->X + i * SEP_D;
        for (size_t j = 0; j + 1 < SEP_D; j++) x[j] = clipnn_rng_normal(&L->rng);
        x[SEP_D - 1] = 1.0;
        double m = clipnn_dot_d(x, p->u, SEP_D);
        if (fabs(m) < 0.1) continue;
        p->y[i++] = m > 0;
    }
}

/* g/c for example i at theta (eq. 11 or 17) into out. */
static void clipped_grad(const sep_problem *p, const double *th, size_t i, double *out) {
    const double *x = p->X + i * SEP_D;
    double r = lab_sigmoid(clipnn_dot_d(x, th, SEP_D)) - p->y[i];
    for (size_t j = 0; j < SEP_D; j++) out[j] = r * x[j];
    double gn = clipnn_nrm2_d(out, SEP_D), tn = clipnn_nrm2_d(th, SEP_D);
    double thr = p->adaptive ? p->lambda * (tn > p->eps ? tn : p->eps) : p->lambda;
    double f = lab_clip_factor(gn, thr);
    for (size_t j = 0; j < SEP_D; j++) out[j] *= f;
}

/* H(theta) = mean of g/c over the examples. */
static void sep_H(const sep_problem *p, const double *th, double *H) {
    double g[SEP_D];
    memset(H, 0, SEP_D * sizeof *H);
    for (size_t i = 0; i < SEP_N; i++) {
        clipped_grad(p, th, i, g);
        for (size_t j = 0; j < SEP_D; j++) H[j] += g[j] / SEP_N;
    }
}

clipnn_status lab_separable_run(lab_ctx *L, int adaptive, lab_unbounded *out) {
    sep_problem p = {.adaptive = adaptive, .lambda = adaptive ? 0.05 : 0.5, .eps = 1e-3};
    sep_data(L, &p);
    clipnn_schedule sched = clipnn_schedule_default();
    sched.kind = CLIPNN_SCHED_RM;
    sched.a0 = 0.5, sched.t0 = 1000, sched.power = 1;
    size_t T = lab_size(L, 1000000, 100000);
    double th[SEP_D] = {0}, g[SEP_D], H[SEP_D];
    memset(out, 0, sizeof *out);
    out->T = T;
    out->uH_max = -INFINITY;
    size_t k = 0;
    for (size_t t = 0; t < T; t++) {
        clipped_grad(&p, th, (size_t)clipnn_rng_below(&L->rng, SEP_N), g);
        double a = clipnn_schedule_lr(&sched, t);
        for (size_t j = 0; j < SEP_D; j++) th[j] -= a * g[j];
        if (t + 1 != T / 1000 && t + 1 != T / 100 && t + 1 != T / 10 && t + 1 != T) continue;
        sep_H(&p, th, H);
        double uH = clipnn_dot_d(p.u, H, SEP_D);
        if (uH > out->uH_max) out->uH_max = uH;
        out->norm_at[k++] = clipnn_nrm2_d(th, SEP_D);
        out->H_T = clipnn_nrm2_d(H, SEP_D);
    }
    out->unbounded = 1;
    for (size_t j = 1; j < 4; j++) out->unbounded &= out->norm_at[j] > 1.05 * out->norm_at[j - 1];
    lab_printf(L, "separable, no regularisation, %s lambda = %g, %zu steps: ||theta|| = %.3g, %.3g, %.3g, %.3g at "
                  "T/1000, T/100, T/10, T; largest u.H = %.3g (< 0: no zero of H); ||H(theta_T)|| = %.3g\n",
               adaptive ? "adaptive" : "classic", p.lambda, T, out->norm_at[0], out->norm_at[1], out->norm_at[2],
               out->norm_at[3], out->uH_max, out->H_T);
    return CLIPNN_OK;
}
