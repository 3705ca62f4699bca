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

clipnn_status lab_l0l1(lab_ctx *L) {
    const double x0s[6] = {1, 3, 10, 100, 1000, 10000};
    const double eta = 0.1, c = 1, tol = 1e-3, L0 = 12, L1 = 3;
    const uint64_t cap = lab_size(L, 10000000, 1000000);
    lab_plot plot;
    lab_plot_init(&plot, "l0l1: |x_k| for f(x) = x^4, GD with eta = 0.1 (clipped at c = 1 or not)", "k (steps)",
                  "|x_k|", 1, 1);
    /* (L0, L1)-smoothness with L0 = 12, L1 = 3 on a log grid of |x|, and the growth of f'' */
    double worst = 0, fpp_max = 0;
    for (int i = -600; i <= 600; i++) {
        double x = pow(10, i / 100.0), r = 12 * x * x / (L0 + L1 * fabs(fprime(x)));
        if (r > worst) worst = r;
        if (12 * x * x > fpp_max) fpp_max = 12 * x * x;
    }
    lab_printf(L, "f(x) = x^4: max over |x| in [1e-6, 1e6] of f''/(L0 + L1|f'|) with L0 = %g, L1 = %g: %.4f; f'' "
                  "reaches %.3g there (no global beta).\n",
               L0, L1, worst, fpp_max);
    lab_printf(L, "Fixed step eta diverges from x0 exactly when eta > eta_crit(x0) = 1/(2 x0^2): then |x1| = |x0| "
                  "|1 - 4 eta x0^2| > |x0| and every later step grows too.\n");
    lab_printf(L, "Iterations to |f'(x)| <= %g (cap %llu):\n\n", tol, (unsigned long long)cap);
    lab_printf(L, "%8s %12s %12s %12s %12s %12s %12s\n", "x0", "eta_crit", "GD 0.99crit", "GD 1.01crit", "GD eta=0.1",
               "clip eta=0.1", "x0/(eta c)");
    int below_ok = 1, above_ok = 1, clip_ok = 1, fixed_fails = 0;
    uint64_t clip_max = 0;
    for (int i = 0; i < 6; i++) {
        double x0 = x0s[i], crit = 1 / (2 * x0 * x0);
        uint64_t below = iterate(x0, 0.99 * crit, INFINITY, tol, cap, NULL, 0);
        uint64_t above = iterate(x0, 1.01 * crit, INFINITY, tol, cap, NULL, 0);
        char nm[64];
        size_t s1 = 0, s2 = 0;
        if (i == 2 || i == 5) {
            snprintf(nm, sizeof nm, "fixed step, x0 = %g", x0);
            s1 = lab_plot_series(&plot, nm);
        }
        uint64_t fixed = iterate(x0, eta, INFINITY, tol, cap, i == 2 || i == 5 ? &plot : NULL, s1);
        if (i == 2 || i == 5) {
            snprintf(nm, sizeof nm, "clipped, x0 = %g", x0);
            s2 = lab_plot_series(&plot, nm);
        }
        uint64_t clipped = iterate(x0, eta, c, tol, cap, i == 2 || i == 5 ? &plot : NULL, s2);
        lab_printf(L, "%8g %12.3g", x0, crit);
        print_iters(L, below, cap);
        print_iters(L, above, cap);
        print_iters(L, fixed, cap);
        print_iters(L, clipped, cap);
        lab_printf(L, " %12.0f\n", x0 / (eta * c));
        /* below the critical step: converges (possibly slower than the cap for huge x0) or at least does not diverge */
        below_ok &= below != 0;
        above_ok &= above == 0;
        clip_ok &= clipped != 0 && clipped <= cap;
        fixed_fails += fixed == 0;
        if (clipped > clip_max && clipped <= cap) clip_max = clipped;
    }
    lab_printf(L, "(\"> cap\": still converging, too slowly: the step that is safe at x0 is tiny near 0.)\n\n");
    lab_claim(L, "l0l1-smooth", worst <= 1 + 1e-12 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "f''/(12 + 3|f'|) <= %.4f on |x| in [1e-6, 1e6] while f'' reaches %.3g", worst, fpp_max);
    lab_claim(L, "l0l1-gd-diverges", below_ok && above_ok ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "for every x0 in {1, 3, 10, 100, 1e3, 1e4}: eta = 1.01/(2 x0^2) diverges, 0.99/(2 x0^2) does not; "
              "the fixed eta = 0.1 diverges from %d of 6 starts",
              fixed_fails);
    lab_claim(L, "l0l1-clip-converges", clip_ok ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "clipped GD (eta = 0.1, c = 1) reached |f'| <= %g from every start, in at most %llu iterations "
              "(about x0/(eta c) + a constant)",
              tol, (unsigned long long)clip_max);
    clipnn_status s = lab_plot_save(L, &plot, "iterates");
    lab_plot_free(&plot);
    return s;
}
