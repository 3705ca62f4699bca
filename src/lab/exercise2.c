/* sgd-exercise: exercise Q6 (clipped SGD is SGD with a step gamma_k that
 * depends on the sample), Q7 (the one-step bound in expectation) and the
 * exercise's definition of beta-smoothness as printed. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

/* ------------------------------------------------------------------ Q6 */

enum { Q6_D = 10 };

/* Clipped SGD on f = ||theta||^2 / 2 (d = 10) with g = theta + N(0, 4 I):
 * at every step the library's norm clipper (in place) against gamma_k g_k,
 * gamma_k = gamma min(1, c / ||g_k||). Returns the largest relative
 * deviation; *clipped counts the clipped steps. */
static double q6_run(lab_ctx *L, size_t T, size_t *clipped, clipnn_status *s) {
    const double gamma = 0.1, c = 7;
    clipnn_model *m = NULL;
    clipnn_clipper *cl = NULL;
    size_t width = 1;
    clipnn_act act = CLIPNN_ACT_IDENTITY;
    *s = clipnn_model_create(&m, Q6_D, 1, &width, &act);
    clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_NORM);
    co.lambda = c;
    if (!*s) *s = clipnn_clipper_create(&cl, m, &co);
    double th[Q6_D], g[Q6_D], worst = 0;
    for (size_t j = 0; j < Q6_D; j++) th[j] = 5;
    *clipped = 0;
    for (size_t k = 0; k < T && !*s; k++) {
        float *gr = clipnn_model_grads(m);
        for (size_t j = 0; j < Q6_D; j++) g[j] = (double)(float)(th[j] + 2 * clipnn_rng_normal(&L->rng));
        for (size_t j = 0; j < Q6_D; j++) gr[j] = (float)g[j];
        gr[Q6_D] = 0;
        *s = clipnn_clipper_apply(cl, m, -1, 0, NULL, NULL, NULL);
        double gk = gamma * lab_clip_factor(clipnn_nrm2_d(g, Q6_D), c), e = 0, ref = 0;
        *clipped += gk < gamma;
        for (size_t j = 0; j < Q6_D; j++) {
            double want = gk * g[j], got = gamma * (double)gr[j];
            e += (got - want) * (got - want), ref += want * want;
            th[j] -= want;
        }
        if (sqrt(e / ref) > worst) worst = sqrt(e / ref);
    }
    clipnn_clipper_free(cl);
    clipnn_model_free(m);
    return worst;
}

/* ------------------------------------------------------------------ Q7 */

/* Three beta-smooth functions of one variable: x^2/2 (beta 1), log cosh x
 * (beta 1), x^2/2 + 2 cos x (beta 3, not convex). */
static double q7_f(int which, double x, double *df) {
    switch (which) {
    case 0: *df = x; return 0.5 * x * x;
    case 1: *df = tanh(x); return fabs(x) + log1p(exp(-2 * fabs(x))) - log(2.0);
    default: *df = x - 2 * sin(x); return 0.5 * x * x + 2 * cos(x);
    }
}
static const double Q7_BETA[3] = {1, 1, 3};

/* Discrete noise laws (exact expectations): skewed +9/-1 (variance 9),
 * symmetric +-2 (4), five atoms (2.5). */
static const double N1V[2] = {9, -1}, N1P[2] = {0.1, 0.9}, N2V[2] = {2, -2}, N2P[2] = {0.5, 0.5},
                    N3V[5] = {-3, -1, 0, 1, 3}, N3P[5] = {0.1, 0.2, 0.4, 0.2, 0.1};

typedef struct {
    size_t checks, violations;
    double min_slack; /* smallest (rhs - lhs) / (|rhs| + |lhs|) */
} q7_result;

/* E f(x - gamma_k g) - f(x) against -E[gamma_k g] f'(x) + gamma^2 beta (c^2 + sigma^2) / 2 at one point. */
static void q7_point(q7_result *r, int fn, const lab_noise *z, double var, double x, double gamma, double c) {
    double df, fx = q7_f(fn, x, &df), Ef = 0, Estep = 0, dummy;
    for (size_t j = 0; j < z->k; j++) {
        double g = df + z->v[j], gk = gamma * lab_clip_factor(fabs(g), c);
        Ef += z->p[j] * q7_f(fn, x - gk * g, &dummy);
        Estep += z->p[j] * gk * g;
    }
    double lhs = Ef - fx, rhs = -Estep * df + gamma * gamma * Q7_BETA[fn] * (c * c + var) / 2;
    double tol = 1e-12 * (fabs(fx) + fabs(Ef) + 1); /* a few roundings of f */
    r->checks++;
    r->violations += lhs > rhs + tol;
    double slack = (rhs - lhs) / (fabs(rhs) + fabs(lhs) + 1e-300);
    if (slack < r->min_slack) r->min_slack = slack;
}

static q7_result q7_run(void) {
    const lab_noise laws[3] = {
        {.k = 2, .v = N1V, .p = N1P}, {.k = 2, .v = N2V, .p = N2P}, {.k = 5, .v = N3V, .p = N3P}};
    const double var[3] = {9, 4, 2.5}, cs[3] = {0.5, 2, 10}, gb[3] = {0.1, 1, 2};
    q7_result r = {0, 0, INFINITY};
    for (int fn = 0; fn < 3; fn++)
        for (int li = 0; li < 3; li++)
            for (int ci = 0; ci < 3; ci++)
                for (int gi = 0; gi < 3; gi++)
                    for (int i = 0; i <= 400; i++)
                        q7_point(&r, fn, &laws[li], var[li], -10 + 0.05 * i, gb[gi] / Q7_BETA[fn], cs[ci]);
    return r;
}

/* ---------------------------------------------------------- smoothness */

/* The printed definition: L(t') <= L(t) + grad L(t')^T (t - t') + beta/2 |t - t'|^2,
 * and the standard one with grad L(t): the largest violation of each over
 * pairs on a grid, for the three functions above. */
static void smoothness_run(double *printed_worst, double *standard_worst, double *at01) {
    *printed_worst = *standard_worst = -INFINITY;
    for (int fn = 0; fn < 3; fn++)
        for (int i = 0; i <= 80; i++)
            for (int j = 0; j <= 80; j++) {
                double t = -4 + 0.1 * i, tp = -4 + 0.1 * j, dt, dtp;
                double ft = q7_f(fn, t, &dt), ftp = q7_f(fn, tp, &dtp), q = Q7_BETA[fn] / 2 * (t - tp) * (t - tp);
                double vp = ftp - (ft + dtp * (t - tp) + q), vs = ftp - (ft + dt * (tp - t) + q);
                if (vp > *printed_worst) *printed_worst = vp;
                if (vs > *standard_worst) *standard_worst = vs;
            }
    double d0, d1, f0 = q7_f(0, 0, &d0), f1 = q7_f(0, 1, &d1);
    *at01 = f1 - (f0 + d1 * (0 - 1) + 0.5); /* x^2/2, theta = 0, theta' = 1 */
}

clipnn_status lab_sgd_exercise(lab_ctx *L) {
    size_t T = lab_size(L, 20000, 2000), clipped;
    clipnn_status s;
    double dev = q6_run(L, T, &clipped, &s);
    if (s) return s;
    /* float32: g rounded once before the test, then scaled (2^-24) and the norm's rounding: 8 x 2^-24 */
    const double tol = 8.0 / 16777216.0;
    lab_printf(L, "Q6: clipped SGD on ||theta||^2/2 (d = 10), g = theta + N(0, 4 I), gamma = 0.1, c = 7, %zu "
                  "steps (%zu "
                  "clipped): the library's norm clipper against gamma_k g_k, max relative deviation %.2g\n",
               T, clipped, dev);
    lab_claim(L, "Q6", dev <= tol && clipped > 0 && clipped < T ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "theta_{k+1} = theta_k - gamma_k g_k with gamma_k = gamma min(1, c/||g_k||), a random step: the "
              "library's "
              "clipper matches it within %.2g (float32 tolerance %.2g) over %zu stochastic steps, %zu clipped",
              dev, tol, T, clipped);
    q7_result r = q7_run();
    lab_printf(L, "Q7: exact expectations over 3 discrete noise laws, 3 beta-smooth functions (one not convex), "
                  "c in {0.5, "
                  "2, 10}, gamma beta in {0.1, 1, 2}, 401 points each: %zu checks, %zu violations, smallest relative "
                  "slack %.3g\n",
               r.checks, r.violations, r.min_slack);
    lab_claim(L, "Q7", r.violations == 0 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "E L(theta_{k+1}) - L(theta_k) <= -E[gamma_k g_k]^T grad L + gamma^2 beta (c^2 + sigma^2)/2: %zu exact "
              "checks (3 functions, 3 noise laws, c and gamma varied), %zu violations, smallest relative slack %.3g",
              r.checks, r.violations, r.min_slack);
    double pw, sw, at01;
    smoothness_run(&pw, &sw, &at01);
    lab_printf(L, "beta-smoothness: largest violation over pairs on [-4, 4]^2: as printed %.4g, standard form %.2g; "
                  "x^2/2 at theta = 0, theta' = 1: %.4g\n\n",
               pw, sw, at01);
    lab_claim(L, "smoothness-as-printed", pw > 1e-12 ? CLIPNN_CLAIM_FAILS : CLIPNN_CLAIM_HOLDS, NULL,
              "L(theta') <= L(theta) + grad L(theta')^T(theta - theta') + beta/2 ||theta - theta'||^2 is violated by "
              "x^2/2 (beta = 1) at theta = 0, theta' = 1 (0.5 <= -0.5 is false, gap %.3g) and by up to %.3g on a grid; "
              "with grad L(theta) and theta' - theta (the standard form) the largest violation is %.2g",
              at01, pw, sw);
    return CLIPNN_OK;
}
