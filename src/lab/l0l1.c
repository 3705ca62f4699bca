/* l0l1 (Zhang, He, Sra, Jadbabaie 2020): f(x) = x^4 is not beta-smooth
 * (f'' = 12 x^2 is unbounded) but is (L0, L1)-smooth, |f''| <= L0 + L1 |f'|.
 * Fixed-step GD diverges from far starts; clipped GD converges from all. */
#include <math.h>

#include "lab/lab.h"

static double fprime(double x) { return 4 * x * x * x; }

/* Iterations of x <- x - eta * min(1, c/|f'(x)|) f'(x) until |f'(x)| <= tol;
 * 0 when |x| passed 1e100 (diverged), cap + 1 when the cap was reached. */
static uint64_t iterate(double x, double eta, double c, double tol, uint64_t cap, lab_plot *p, size_t series) {
    for (uint64_t k = 0; k < cap; k++) {
        double g = fprime(x);
        /* the diverging runs are cut at 1e12 in the plot, so that the converging ones stay visible */
        if (p && lab_log_point(k + 1) && fabs(x) < 1e12) lab_plot_add(p, series, (double)(k + 1), fabs(x));
        if (fabs(g) <= tol) return k;
        if (!(fabs(x) < 1e100)) return 0;
        x -= eta * lab_clip_factor(fabs(g), c) * g;
    }
    return cap + 1;
}

static void print_iters(lab_ctx *L, uint64_t k, uint64_t cap) {
    if (k == 0) lab_printf(L, " %12s", "diverges");
    else if (k > cap) lab_printf(L, " %12s", "> cap");
    else lab_printf(L, " %12llu", (unsigned long long)k);
}

static const double L0L1_X0[6] = {1, 3, 10, 100, 1000, 10000};

/* The experiment's settings and what the starts show. */
typedef struct {
    double eta, c, tol, L0, L1;
    uint64_t cap;
    lab_plot plot;
    double worst, fpp_max; /* largest f''/(L0 + L1|f'|), largest f'' on the grid */
    int below_ok, above_ok, clip_ok, fixed_fails;
    uint64_t clip_max;
} l0l1_exp;

/* (L0, L1)-smoothness on a log grid of |x|, and the growth of f''. */
static void check_smoothness(lab_ctx *L, l0l1_exp *e) {
    for (int i = -600; i <= 600; i++) {
        double x = pow(10, i / 100.0), r = 12 * x * x / (e->L0 + e->L1 * fabs(fprime(x)));
        if (r > e->worst) e->worst = r;
        if (12 * x * x > e->fpp_max) e->fpp_max = 12 * x * x;
    }
    lab_printf(L, "f(x) = x^4: max over |x| in [1e-6, 1e6] of f''/(L0 + L1|f'|) with L0 = %g, L1 = %g: %.4f; f'' "
                  "reaches %.3g there (no global beta).\n",
               e->L0, e->L1, e->worst, e->fpp_max);
    lab_printf(L, "Fixed step eta diverges from x0 exactly when eta > eta_crit(x0) = 1/(2 x0^2): then |x1| = |x0| "
                  "|1 - 4 eta x0^2| > |x0| and every later step grows too.\n");
    lab_printf(L, "Iterations to |f'(x)| <= %g (cap %llu):\n\n", e->tol, (unsigned long long)e->cap);
    lab_printf(L, "%8s %12s %12s %12s %12s %12s %12s\n", "x0", "eta_crit", "GD 0.99crit", "GD 1.01crit", "GD eta=0.1",
               "clip eta=0.1", "x0/(eta c)");
}

/* GD from x0 with c (INFINITY: fixed step), traced in the plot when asked. */
static uint64_t traced_run(l0l1_exp *e, double x0, double c, int plotted) {
    size_t series = 0;
    if (plotted) {
        char nm[64];
        snprintf(nm, sizeof nm, isinf(c) ? "fixed step, x0 = %g" : "clipped, x0 = %g", x0);
        series = lab_plot_series(&e->plot, nm);
    }
    return iterate(x0, e->eta, c, e->tol, e->cap, plotted ? &e->plot : NULL, series);
}

/* Start x0: just below and above the critical step, the fixed step, clipped. */
static void start_row(lab_ctx *L, l0l1_exp *e, int i) {
    double x0 = L0L1_X0[i], crit = 1 / (2 * x0 * x0);
    uint64_t below = iterate(x0, 0.99 * crit, INFINITY, e->tol, e->cap, NULL, 0);
    uint64_t above = iterate(x0, 1.01 * crit, INFINITY, e->tol, e->cap, NULL, 0);
    int plotted = i == 2 || i == 5;
    uint64_t fixed = traced_run(e, x0, INFINITY, plotted);
    uint64_t clipped = traced_run(e, x0, e->c, plotted);
    lab_printf(L, "%8g %12.3g", x0, crit);
    print_iters(L, below, e->cap);
    print_iters(L, above, e->cap);
    print_iters(L, fixed, e->cap);
    print_iters(L, clipped, e->cap);
    lab_printf(L, " %12.0f\n", x0 / (e->eta * e->c));
    /* below the critical step: converges (possibly slower than the cap for huge x0) or at least does not diverge */
    e->below_ok &= below != 0;
    e->above_ok &= above == 0;
    e->clip_ok &= clipped != 0 && clipped <= e->cap;
    e->fixed_fails += fixed == 0;
    if (clipped > e->clip_max && clipped <= e->cap) e->clip_max = clipped;
}

static void l0l1_claims(lab_ctx *L, const l0l1_exp *e) {
    lab_claim(L, "l0l1-smooth", e->worst <= 1 + 1e-12 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "f''/(12 + 3|f'|) <= %.4f on |x| in [1e-6, 1e6] while f'' reaches %.3g", e->worst, e->fpp_max);
    lab_claim(L, "l0l1-gd-diverges", e->below_ok && e->above_ok ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "for every x0 in {1, 3, 10, 100, 1e3, 1e4}: eta = 1.01/(2 x0^2) diverges, 0.99/(2 x0^2) does not; "
              "the fixed eta = 0.1 diverges from %d of 6 starts",
              e->fixed_fails);
    lab_claim(L, "l0l1-clip-converges", e->clip_ok ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "clipped GD (eta = 0.1, c = 1) reached |f'| <= %g from every start, in at most %llu iterations "
              "(about x0/(eta c) + a constant)",
              e->tol, (unsigned long long)e->clip_max);
}

clipnn_status lab_l0l1(lab_ctx *L) {
    l0l1_exp e = {.eta = 0.1, .c = 1, .tol = 1e-3, .L0 = 12, .L1 = 3, .cap = lab_size(L, 10000000, 1000000),
                  .below_ok = 1, .above_ok = 1, .clip_ok = 1};
    lab_plot_init(&e.plot, "l0l1: |x_k| for f(x) = x^4, GD with eta = 0.1 (clipped at c = 1 or not)", "k (steps)",
                  "|x_k|", 1, 1);
    check_smoothness(L, &e);
    for (int i = 0; i < 6; i++) start_row(L, &e, i);
    lab_printf(L, "(\"> cap\": still converging, too slowly: the step that is safe at x0 is tiny near 0.)\n\n");
    l0l1_claims(L, &e);
    clipnn_status s = lab_plot_save(L, &e.plot, "iterates");
    lab_plot_free(&e.plot);
    return s;
}
