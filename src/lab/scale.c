/* clip-scale: what clipping does to the size of a step.
 *
 * The paper says clipping combats vanishing gradients and that very small
 * weights are updated with larger steps (abstract, introduction, after
 * eq. 18), and that adaptive clipping (eq. 17) is faster than classic
 * (eq. 11). Both rules divide the gradient by c(t) = max(., 1) >= 1, so no
 * rule of the paper can make a step longer than the plain gradient step:
 * the lab measures it with the library's clippers on a tanh MLP whose first
 * layer's gradient vanishes, and measures where adaptive clipping is faster
 * than classic (only where ||theta|| > 1: its step is min(||g||, lambda
 * max(||theta||, eps)) against min(||g||, lambda)). */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

enum { SC_RULES = 3, SC_MAX_GROUPS = 16 };
static const clipnn_clip_rule SC_RULE[SC_RULES] = {CLIPNN_CLIP_NORM, CLIPNN_CLIP_ADAPTIVE, CLIPNN_CLIP_ADAPTIVE_LAYER};
static const double SC_LAMBDA[SC_RULES] = {0.1, 0.001, 0.001};
static const char *const SC_NAME[SC_RULES] = {"classic (eq. 11)", "adaptive (eq. 17)", "per layer (eq. 18)"};

/* float32 rounding of a scaled gradient and of two norms: a few units of 2^-24 */
#define SC_ROUND (8.0 / 16777216.0)

typedef struct {
    clipnn_dataset *ds;
    clipnn_model *m;
    clipnn_clipper *cl[SC_RULES];
    float *g0;                      /* [P] the unclipped gradient */
    double gn0[SC_MAX_GROUPS], gn1[SC_MAX_GROUPS];
    size_t G, last_w;               /* groups; the last layer's weight group */
    double max_ratio[SC_RULES];     /* largest ||clipped g_l|| / ||g_l|| over steps and groups */
    double l1_min[SC_RULES];        /* smallest ratio on the first layer's weights */
    double l1_vs_global;            /* largest eq. 18 / eq. 17 ratio on the first layer's weights */
    double vanish0, vanishT;        /* RMS gradient per weight, first layer over last, first and last step */
    size_t clipped[SC_RULES], steps;
} scale_exp;

static clipnn_status open_scale(lab_ctx *L, scale_exp *e) {
    memset(e, 0, sizeof *e);
    clipnn_data_options o = clipnn_data_options_default();
    o.test_fraction = 0;
    o.scaling = CLIPNN_SCALE_STANDARDIZE;
    size_t widths[5] = {32, 32, 32, 32, 10};
    clipnn_act acts[5] = {CLIPNN_ACT_TANH, CLIPNN_ACT_TANH, CLIPNN_ACT_TANH, CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_status s = clipnn_dataset_load("digits", &o, &e->ds, NULL);
    if (!s) s = clipnn_model_create(&e->m, clipnn_dataset_dim(e->ds), 5, widths, acts);
    if (!s) s = clipnn_model_init(e->m, CLIPNN_INIT_XAVIER, L->opt->seed);
    if (!s) s = clipnn_model_reserve(e->m, 32);
    if (s) return s;
    size_t P = clipnn_model_n_params(e->m);
    float *th = clipnn_model_params(e->m);
    clipnn_group w1 = clipnn_model_group(e->m, 0);
    for (size_t i = 0; i < w1.size; i++) th[w1.offset + i] *= 30.0f; /* saturated first layer: its gradient vanishes */
    e->G = clipnn_model_n_groups(e->m), e->last_w = e->G - 2;
    if (!(e->g0 = clipnn_alloc_array(P, sizeof *e->g0))) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    for (int r = 0; r < SC_RULES && !s; r++) {
        clipnn_clip_options co = clipnn_clip_options_for(SC_RULE[r]);
        co.lambda = SC_LAMBDA[r]; /* thresholds that clip on most steps here */
        s = clipnn_clipper_create(&e->cl[r], e->m, &co);
        e->l1_min[r] = INFINITY;
    }
    return s;
}

static void close_scale(scale_exp *e) {
    for (int r = 0; r < SC_RULES; r++) clipnn_clipper_free(e->cl[r]);
    clipnn_free(e->g0);
    clipnn_model_free(e->m);
    clipnn_dataset_free(e->ds);
}

/* Clips the saved gradient with rule r; records the per-group ratios;
 * returns the first layer's ratio. */
static double clip_and_compare(scale_exp *e, int r, clipnn_status *s) {
    size_t P = clipnn_model_n_params(e->m);
    float *g = clipnn_model_grads(e->m);
    memcpy(g, e->g0, P * sizeof *g);
    clipnn_clip_record rec;
    *s = clipnn_clipper_apply(e->cl[r], e->m, -1, 0, NULL, NULL, &rec);
    if (!*s) *s = clipnn_group_norms(e->m, g, 2, e->gn1, NULL);
    if (*s) return NAN;
    e->clipped[r] += rec.clipped != 0;
    for (size_t l = 0; l < e->G; l++)
        if (e->gn0[l] > 0 && e->gn1[l] / e->gn0[l] > e->max_ratio[r]) e->max_ratio[r] = e->gn1[l] / e->gn0[l];
    double r1 = e->gn1[0] / e->gn0[0];
    if (r1 < e->l1_min[r]) e->l1_min[r] = r1;
    return r1;
}

/* Step t: the gradient of a batch, every rule applied to it, then an SGD
 * step with the eq. 18 gradient (the last rule applied). */
static clipnn_status scale_step(scale_exp *e, size_t t, double a) {
    size_t n = clipnn_dataset_n(e->ds), dim = clipnn_dataset_dim(e->ds), B = 32, i0 = (t * B) % (n - B);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    clipnn_status s = clipnn_loss_grad(e->m, &lo, clipnn_dataset_x(e->ds) + i0 * dim, clipnn_dataset_y(e->ds) + i0, B,
                                       NULL, NULL);
    size_t P = clipnn_model_n_params(e->m);
    if (!s) memcpy(e->g0, clipnn_model_grads(e->m), P * sizeof *e->g0);
    if (!s) s = clipnn_group_norms(e->m, e->g0, 2, e->gn0, NULL);
    if (s) return s;
    clipnn_group g1 = clipnn_model_group(e->m, 0), gl = clipnn_model_group(e->m, e->last_w);
    double v = (e->gn0[0] / sqrt((double)g1.size)) / (e->gn0[e->last_w] / sqrt((double)gl.size)); /* per weight */
    if (t == 0) e->vanish0 = v;
    e->vanishT = v;
    double r1[SC_RULES];
    for (int r = 0; r < SC_RULES && !s; r++) r1[r] = clip_and_compare(e, r, &s);
    if (s) return s;
    if (r1[2] / r1[1] > e->l1_vs_global) e->l1_vs_global = r1[2] / r1[1];
    float *th = clipnn_model_params(e->m);
    const float *g = clipnn_model_grads(e->m);
    for (size_t j = 0; j < P; j++) th[j] -= (float)a * g[j];
    e->steps++;
    return CLIPNN_OK;
}

static void scale_claims_steps(lab_ctx *L, const scale_exp *e) {
    lab_printf(L, "MLP 64-32-32-32-32-10 tanh on the digits, Xavier, first layer's weights times 30, batch 32, SGD "
                  "a = 0.1 with eq. 18, %zu steps;\nRMS gradient per weight, first layer over last layer: %.3g at the "
                  "start, %.3g at the end.\n",
               e->steps, e->vanish0, e->vanishT);
    lab_printf(L, "%-26s %14s %22s %22s\n", "rule, lambda", "steps clipped", "max ||C(g)_l||/||g_l||",
               "min on layer 1 weights");
    for (int r = 0; r < SC_RULES; r++)
        lab_printf(L, "%-18s %-7g %14zu %22.9f %22.4g\n", SC_NAME[r], SC_LAMBDA[r], e->clipped[r], e->max_ratio[r],
                   e->l1_min[r]);
    double worst = 0;
    for (int r = 0; r < 2; r++) worst = e->max_ratio[r] > worst ? e->max_ratio[r] : worst;
    lab_claim(L, "vanishing-larger-steps", worst > 1 + SC_ROUND ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "c(t) >= 1 in eq. 11 and 17: over %zu steps of a tanh MLP whose first-layer gradient per weight is %.2g "
              "of the last layer's, no rule lengthened any layer's step: max ||C(g)_l||/||g_l|| = %.7f (eq. 11, "
              "clipped %zu "
              "steps), %.7f (eq. 17, clipped %zu); first layer's step shrunk to %.3g and %.3g of the plain step",
              e->steps, e->vanish0, e->max_ratio[0], e->clipped[0], e->max_ratio[1], e->clipped[1], e->l1_min[0],
              e->l1_min[1]);
    lab_claim(L, "eq18-per-layer", e->max_ratio[2] > 1 + SC_ROUND ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "per-layer adaptive clipping (eq. 18) never lengthened a layer's step (max ratio %.7f, %zu of %zu steps "
              "clipped); it spares the first layer compared with eq. 17 (its step up to %.3g times eq. 17's) but "
              "leaves the vanishing gradient as it is: first/last layer RMS gradient %.3g -> %.3g",
              e->max_ratio[2], e->clipped[2], e->steps, e->l1_vs_global, e->vanish0, e->vanishT);
}

/* ------------------------------------------------- adaptive against classic */

/* Clipped GD (eq. 10, constant a) on f = ||theta - target||^2 / 2 in d = 2
 * until ||g|| <= 1e-6 (at most cap steps); returns the steps, and the
 * smallest and largest ||theta|| met. */
static size_t gd_steps(int adaptive, const double *th0, const double *target, double lambda, double *nmin,
                       double *nmax) {
    const double a = 0.5, eps = 1e-3;
    const size_t cap = 10000000;
    double th[2] = {th0[0], th0[1]};
    *nmin = INFINITY, *nmax = 0;
    for (size_t k = 0; k < cap; k++) {
        double g[2] = {th[0] - target[0], th[1] - target[1]}, gn = hypot(g[0], g[1]), tn = hypot(th[0], th[1]);
        if (tn < *nmin) *nmin = tn;
        if (tn > *nmax) *nmax = tn;
        if (gn <= 1e-6) return k;
        double thr = adaptive ? lambda * (tn > eps ? tn : eps) : lambda, f = lab_clip_factor(gn, thr);
        th[0] -= a * f * g[0], th[1] -= a * f * g[1];
    }
    return cap;
}

static void adaptive_faster(lab_ctx *L) {
    const double lambda = 0.1;
    const double big0[2] = {40, 0}, big_t[2] = {0, 20}, small0[2] = {0.8, 0}, small_t[2] = {0, 0.8};
    double n0, n1, m0, m1;
    size_t big_c = gd_steps(0, big0, big_t, lambda, &n0, &n1), big_a = gd_steps(1, big0, big_t, lambda, &n0, &n1);
    size_t small_c = gd_steps(0, small0, small_t, lambda, &m0, &m1),
           small_a = gd_steps(1, small0, small_t, lambda, &m0, &m1);
    lab_printf(L,
               "\nClipped GD, a = 0.5, lambda = %g (both rules), f = ||theta - theta*||^2/2, steps to ||g|| <= 1e-6:\n",
               lambda);
    lab_printf(L, "  large weights (||theta|| in [%.3g, %.3g]): classic %zu, adaptive %zu\n", n0, n1, big_c, big_a);
    lab_printf(L, "  small weights (||theta|| in [%.3g, %.3g]): classic %zu, adaptive %zu\n\n", m0, m1, small_c,
               small_a);
    clipnn_claim_verdict v = big_a < big_c && small_a > small_c   ? CLIPNN_CLAIM_HOLDS_UNDER
                             : big_a < big_c && small_a <= small_c ? CLIPNN_CLAIM_HOLDS
                                                                   : CLIPNN_CLAIM_FAILS;
    lab_claim(L, "adaptive-faster", v, "||theta|| > 1 (with the same lambda its step min(||g||, lambda ||theta||) "
              "exceeds classic's min(||g||, lambda) only there)",
              "same lambda = %g: with ||theta|| in [%.3g, %.3g] adaptive needs %zu steps, classic %zu; with ||theta|| "
              "in [%.3g, %.3g] adaptive needs %zu, classic %zu",
              lambda, n0, n1, big_a, big_c, m0, m1, small_a, small_c);
}

clipnn_status lab_clip_scale(lab_ctx *L) {
    scale_exp e;
    clipnn_status s = open_scale(L, &e);
    size_t T = lab_size(L, 400, 60);
    for (size_t t = 0; t < T && !s; t++) s = scale_step(&e, t, 0.1);
    if (!s) scale_claims_steps(L, &e);
    close_scale(&e);
    if (!s) adaptive_faster(L);
    return s;
}
