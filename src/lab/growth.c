/* growth: Claim 2 (the adaptive update grows at most linearly in
 * ||theta||), Lemma 2 (H = E[g/c] is Marchaud: continuous, linear growth)
 * and the projected scheme eq. 9 (stable, not always optimal). */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

/* ------------------------------------------------------------- Claim 2 */

enum { CL2_D = 8 };

/* The library's adaptive clipper (eq. 17) on a carrier model whose
 * parameters are theta: the norm of the clipped gradient. */
static double adaptive_post_norm(clipnn_clipper *cl, clipnn_model *m, const double *th, const double *g,
                                 clipnn_status *s) {
    float *p = clipnn_model_params(m), *gr = clipnn_model_grads(m);
    for (size_t j = 0; j < CL2_D; j++) p[j] = (float)th[j], gr[j] = (float)g[j];
    p[CL2_D] = gr[CL2_D] = 0;
    clipnn_clip_record rec;
    *s = clipnn_clipper_apply(cl, m, -1, 0, NULL, NULL, &rec);
    return *s ? NAN : clipnn_norm(gr, CL2_D + 1, 2);
}

typedef struct {
    double K;         /* lambda eps v lambda v 1 */
    double max_ratio; /* max ||g/c|| / (K (1 + ||theta||)) */
    double slope_big; /* ||g/c|| / ||theta|| far out */
    size_t points;
} claim2_result;

/* Points theta = r u on random rays, r from 1e-4 to 1e6, with the gradient
 * of a quartic loss (||g|| ~ r^3, far faster than linear). */
static clipnn_status claim2_run(lab_ctx *L, claim2_result *out) {
    const double lambda = 0.5, eps = 1e-3;
    clipnn_model *m = NULL;
    clipnn_clipper *cl = NULL;
    size_t width = 1;
    clipnn_act act = CLIPNN_ACT_IDENTITY;
    clipnn_status s = clipnn_model_create(&m, CL2_D, 1, &width, &act);
    clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_ADAPTIVE);
    co.lambda = lambda, co.eps = eps;
    if (!s) s = clipnn_clipper_create(&cl, m, &co);
    memset(out, 0, sizeof *out);
    out->K = fmax(fmax(lambda * eps, lambda), 1.0);
    for (int ray = 0; ray < 20 && !s; ray++) {
        double u[CL2_D], th[CL2_D], g[CL2_D];
        for (size_t j = 0; j < CL2_D; j++) u[j] = clipnn_rng_normal(&L->rng);
        double nu = clipnn_nrm2_d(u, CL2_D);
        for (double e10 = -4; e10 <= 6 && !s; e10 += 0.25) {
            double r = pow(10, e10);
            for (size_t j = 0; j < CL2_D; j++) th[j] = r * u[j] / nu, g[j] = 4 * pow(th[j], 3) + 1e-3 * u[j];
            double post = adaptive_post_norm(cl, m, th, g, &s), tn = clipnn_nrm2_d(th, CL2_D);
            double ratio = post / (out->K * (1 + tn));
            if (ratio > out->max_ratio) out->max_ratio = ratio;
            if (e10 == 6 && post / tn > out->slope_big) out->slope_big = post / tn;
            out->points++;
        }
    }
    clipnn_clipper_free(cl);
    clipnn_model_free(m);
    return s;
}

/* ------------------------------------------------------------- Lemma 2 */

/* One hidden unit, f(x) = v act(w x), squared loss over three examples,
 * classic clipping (lambda) per example: H(w, v) into H[2]. */
static void tiny_H(int relu, double w, double v, double *H) {
    static const double xs[3] = {-1, 1, 2}, ys[3] = {1, 2, -1};
    const double lambda = 5;
    H[0] = H[1] = 0;
    for (int i = 0; i < 3; i++) {
        double z = w * xs[i], a = relu ? (z > 0 ? z : 0) : tanh(z), da = relu ? (z > 0) : 1 - tanh(z) * tanh(z);
        double r = 2 * (v * a - ys[i]), g[2] = {r * v * da * xs[i], r * a}, gn = hypot(g[0], g[1]);
        double f = lab_clip_factor(gn, lambda);
        H[0] += f * g[0] / 3, H[1] += f * g[1] / 3;
    }
}

/* ||H(w0 + h, v) - H(w0 - h, v)|| for h = 1e-1 .. 1e-9 at w0 = 0 (where
 * w x = 0 for every example): the smallest value (at the smallest h). */
static double jump_at_zero(int relu, double *at_big) {
    double H1[2], H2[2], last = 0;
    for (int k = 1; k <= 9; k++) {
        double h = pow(10, -k);
        tiny_H(relu, h, 1.5, H1);
        tiny_H(relu, -h, 1.5, H2);
        last = hypot(H1[0] - H2[0], H1[1] - H2[1]);
        if (k == 1) *at_big = last;
    }
    return last;
}

/* ---------------------------------------------------------- projection */

typedef struct {
    double max_norm, end_dist, opt_norm;
} proj_run;

/* Projected SGD (eq. 9) onto the ball of radius R about 0, f = ||theta -
 * target||^2 / 2 in d = 4 with N(0, 1) noise, a(t) = a0/(1+t/100). */
static proj_run projected_sgd(lab_ctx *L, double target_norm, double a0, double R, size_t T) {
    double th[4] = {0}, tg[4] = {target_norm, 0, 0, 0};
    proj_run out = {0, 0, target_norm};
    for (size_t t = 0; t < T; t++) {
        double a = a0 / (1 + (double)t / 100);
        for (int j = 0; j < 4; j++) th[j] -= a * (th[j] - tg[j] + clipnn_rng_normal(&L->rng));
        double n = clipnn_nrm2_d(th, 4);
        if (n > R)
            for (int j = 0; j < 4; j++) th[j] *= R / n;
        n = clipnn_nrm2_d(th, 4);
        if (n > out.max_norm) out.max_norm = n;
    }
    double d[4];
    for (int j = 0; j < 4; j++) d[j] = th[j] - tg[j];
    out.end_dist = clipnn_nrm2_d(d, 4);
    return out;
}

/* --------------------------------------------------------------- claims */

static void growth_claims(lab_ctx *L, const claim2_result *c2) {
    lab_printf(L, "Claim 2, the library's adaptive clipper (lambda = 0.5, eps = 1e-3), %zu points on 20 rays, "
                  "||theta|| "
                  "from 1e-4 to 1e6, quartic loss (||g|| ~ ||theta||^3):\n  max ||g/c|| / (K (1 + ||theta||)) = %.6f "
                  "with K = lambda eps v lambda v 1 = %g; ||g/c|| / ||theta|| at ||theta|| = 1e6: %.6f (= lambda: "
                  "linear growth, no bound)\n",
              c2->points, c2->max_ratio, c2->K, c2->slope_big);
    /* float32 parameters and gradients: a few units of 2^-24 */
    lab_claim(L, "claim2", c2->max_ratio <= 1 + 1e-6 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "library's eq. 17 clipper at %zu points with ||theta|| in [1e-4, 1e6] and ||g|| ~ ||theta||^3: max "
              "||g/c|| / (K(1+||theta||)) = %.6f <= 1 (K = %g); the bound is linear, not constant: ||g/c||/||theta|| "
              "= %.4f at ||theta|| = 1e6",
              c2->points, c2->max_ratio, c2->K, c2->slope_big);
    double big_t, big_r, jump_t = jump_at_zero(0, &big_t), jump_r = jump_at_zero(1, &big_r);
    lab_printf(L, "Lemma 2, one unit f = v act(w x), 3 examples, classic lambda = 5: ||H(h, v) - H(-h, v)|| at h = 0.1 "
                  "and 1e-9:\n  tanh (A1 holds) %.3g -> %.3g; ReLU (A1 fails) %.3g -> %.3g\n",
               big_t, jump_t, big_r, jump_r);
    clipnn_claim_verdict v2 = jump_t > 1e-6 ? CLIPNN_CLAIM_FAILS
                              : jump_r > 1e-3 ? CLIPNN_CLAIM_HOLDS_UNDER
                                              : CLIPNN_CLAIM_HOLDS;
    lab_claim(L, "lemma2", v2, "A1 (twice differentiable activations; with ReLU and finite data H jumps)",
              "H = E[g/c] continuous with tanh: ||H(h) - H(-h)|| %.3g at h = 0.1 -> %.2g at h = 1e-9; linear growth "
              "from Claim 2 (ratio %.4f <= 1); with ReLU at w x = 0 the jump stays %.3g at h = 1e-9",
              big_t, jump_t, c2->max_ratio, jump_r);
    size_t T = lab_size(L, 100000, 10000);
    proj_run in = projected_sgd(L, 2, 0.5, 5, T), out = projected_sgd(L, 8, 0.5, 5, T),
             wild = projected_sgd(L, 8, 3.0, 5, T);
    lab_printf(L, "Eq. 9, projected SGD onto ||theta|| <= R = 5, f = ||theta - theta*||^2/2 + N(0,1) noise, "
                  "%zu steps:\n"
                  "  ||theta*|| = 2: max ||theta|| %.6g, ends %.3g from theta*; ||theta*|| = 8: max %.6g, ends %.4g "
                  "from theta* (||theta*|| - R = 3); a0 = 3 (|1 - a(t)| > 1 for 50 steps: they expand): max %.6g\n\n",
               T, in.max_norm, in.end_dist, out.max_norm, out.end_dist, wild.max_norm);
    int stable = in.max_norm <= 5 * (1 + 1e-12) && out.max_norm <= 5 * (1 + 1e-12) && wild.max_norm <= 5 * (1 + 1e-12);
    int optimal_inside = in.end_dist < 0.1, suboptimal_outside = fabs(out.end_dist - 3) < 0.1;
    lab_claim(L, "eq9-projection",
              stable && optimal_inside && suboptimal_outside ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "stable: ||theta_t|| <= R = 5 at every step of every run (max %.6g, also with steps a(t) > 2 that "
              "expand unprojected); not always optimal: with theta* outside the ball it ends %.3g from theta* "
              "(||theta*|| - "
              "R = 3), inside %.3g",
              fmax(fmax(in.max_norm, out.max_norm), wild.max_norm), out.end_dist, in.end_dist);
}

clipnn_status lab_growth(lab_ctx *L) {
    claim2_result c2;
    clipnn_status s = claim2_run(L, &c2);
    if (!s) growth_claims(L, &c2);
    return s;
}
