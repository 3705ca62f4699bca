/* The theory lab: its own mathematics on cases with answers known by hand,
 * the SVG writer, the API, and `clipnn lab all --quick` giving every claim
 * a verdict line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "lab/lab.h"
#include "io/io.h"

/* Q8 by hand: xi = +9 (p = 0.1) or -1 (p = 0.9). For 0 < c < 9 and x near
 * 1 - c/9, x + 9 > c is clipped to c and x - 1 in [-c, c] is not, so
 * E clip(x + xi) = 0.1 c + 0.9 (x - 1) = 0 at x* = 1 - c/9. */
TEST(lab_q8_fixed_point_by_hand) {
    const double v[2] = {9, -1}, p[2] = {0.1, 0.9};
    lab_noise z = {.k = 2, .v = v, .p = p};
    const double cs[5] = {0.25, 0.5, 1, 2, 4};
    for (int i = 0; i < 5; i++) {
        double x = lab_noise_fixed_point(&z, cs[i], -20, 20);
        /* bisection to 1e-15 relative on [-20, 20] */
        CHECK_NEAR(x, 1 - cs[i] / 9, 1e-12);
        CHECK_NEAR(lab_noise_clipped_mean(&z, 1 - cs[i] / 9, cs[i]), 0, 1e-15);
    }
    /* c above both atoms' reach: no clipping near 0, unbiased, the root is the minimum 0 */
    CHECK_NEAR(lab_noise_fixed_point(&z, 50, -20, 20), 0, 1e-12);
}

/* E clip(x + sigma N) in closed form against a fine midpoint rule, and its
 * slope at 0 against P(|xi| <= c) = erf(c / (sigma sqrt 2)). */
TEST(lab_gaussian_clipped_mean) {
    lab_noise z = {.sigma = 0.7};
    const double c = 1.0;
    for (double x = -3; x <= 3; x += 0.75) {
        /* midpoint rule over +-12 sigma, 240000 cells: error ~ h^2/24 * (kink jumps of the derivative) ~ 1e-11 */
        double lo = -12 * z.sigma, h = 24 * z.sigma / 240000, s = 0;
        for (int i = 0; i < 240000; i++) {
            double u = lo + (i + 0.5) * h, y = x + u, cy = y > c ? c : y < -c ? -c : y;
            s += cy * exp(-0.5 * u * u / (z.sigma * z.sigma)) / (z.sigma * sqrt(2 * M_PI)) * h;
        }
        CHECK_NEAR(lab_noise_clipped_mean(&z, x, c), s, 1e-9);
    }
    double hs = 1e-4; /* central difference: error ~ hs^2 * third derivative (~1) */
    double slope = (lab_noise_clipped_mean(&z, hs, c) - lab_noise_clipped_mean(&z, -hs, c)) / (2 * hs);
    CHECK_NEAR(slope, erf(c / (z.sigma * sqrt(2))), 1e-7);
    CHECK_NEAR(lab_noise_clipped_mean(&z, 0, c), 0, 1e-15);
}

/* Q5 on f(x) = x^2/2 (beta = 1), gamma = 1, c = 1, x0 = 10: clipped steps of
 * length 1 give x_k = 10 - k until x = 1, then one plain step to 0. So
 * min_{k<K} |g_k| = 11 - K for K <= 10; the bound with f0 - f* = 50 is
 * max(sqrt(v), v) with v = 100 / K. */
TEST(lab_q5_bound_on_a_quadratic) {
    CHECK_NEAR(lab_q5_bound(50, 1, 1, 1), 100, 1e-12);
    CHECK_NEAR(lab_q5_bound(50, 1, 1, 400), 0.5, 1e-12); /* v = 0.25 < c^2: the sqrt(v) regime */
    CHECK_NEAR(lab_q5_bound(50, 1, INFINITY, 4), 5, 1e-12); /* no clipping: sqrt(2 gap / (gamma K)) */
    double x = 10, min_g = INFINITY;
    for (int K = 1; K <= 10; K++) {
        double g = x;
        if (fabs(g) < min_g) min_g = fabs(g);
        CHECK_NEAR(min_g, 11 - K, 1e-12);
        CHECK(min_g <= lab_q5_bound(50, 1, 1, K));
        x -= 1.0 * lab_clip_factor(fabs(g), 1) * g;
    }
    CHECK_NEAR(x, 0, 1e-15);
}

/* Lemma 1's deterministic bound: every clipped step is at most a(t) lambda
 * long, with equality for a gradient whose norm stays above lambda; with a
 * constant direction the distance is exactly lambda sum a(t) (= lambda H_T
 * for a(t) = 1/(1+t)). The stated bound at the one-step counterexample. */
TEST(lab_lemma1_deterministic_bound) {
    const double lambda = 2.5, g[3] = {3, 4, 12}; /* ||g|| = 13 > lambda */
    double th[3] = {0, 0, 0}, sum_a = 0;
    for (int t = 0; t < 1000; t++) {
        double a = 1.0 / (1 + t), f = lab_clip_factor(13, lambda);
        for (int i = 0; i < 3; i++) th[i] -= a * f * g[i];
        sum_a += a;
        CHECK_NEAR(clipnn_nrm2_d(th, 3), lambda * sum_a, 1e-12 * lambda * sum_a);
    }
    CHECK_NEAR(lab_clip_factor(1.0, lambda), 1.0, 0); /* below the threshold nothing changes */
    /* one step of length lambda, M = 0.9 lambda: the distance passes M surely, the stated bound says 0.396 */
    CHECK_NEAR(clipnn_lemma1_bound(0.9 * lambda, 1.0, lambda), 2 * exp(-2 * 0.81), 1e-15);
    CHECK(clipnn_lemma1_bound(0.9 * lambda, 1.0, lambda) < 0.4);
}

static void logistic_case(double *X, double *y, size_t n, size_t d) {
    clipnn_rng r;
    clipnn_rng_seed(&r, 7);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j + 1 < d; j++) X[i * d + j] = clipnn_rng_normal(&r);
        X[i * d + d - 1] = 1;
        y[i] = clipnn_rng_uniform(&r) < 0.5;
    }
}

/* The logistic loss's gradient against central differences (error ~ h^2 f''' ~ 1e-10)
 * and Newton's minimizer has a zero gradient. */
TEST(lab_logistic_gradient_and_minimum) {
    enum { N = 40, D = 4 };
    double X[N * D], y[N], w[D] = {0.3, -0.2, 0.5, 0.1}, g[D], wp[D], wstar[D], fstar;
    logistic_case(X, y, N, D);
    lab_logistic p = {X, y, N, D, 0.05};
    lab_logistic_fg(&p, w, g);
    for (size_t j = 0; j < D; j++) {
        const double h = 1e-5;
        memcpy(wp, w, sizeof w);
        wp[j] += h;
        double fp = lab_logistic_fg(&p, wp, NULL);
        wp[j] -= 2 * h;
        double fm = lab_logistic_fg(&p, wp, NULL);
        CHECK_NEAR(g[j], (fp - fm) / (2 * h), 1e-9);
    }
    CHECK_OK(lab_logistic_min(&p, wstar, &fstar));
    lab_logistic_fg(&p, wstar, g);
    CHECK(clipnn_nrm2_d(g, D) < 1e-12);
    CHECK(fstar <= lab_logistic_fg(&p, w, NULL));
}

static void diag_mv(const double *v, double *out, void *user) {
    const double *dg = user;
    for (int i = 0; i < 3; i++) out[i] = dg[i] * v[i];
}

TEST(lab_linear_algebra) {
    double A[9] = {4, 2, 0, 2, 5, 1, 0, 1, 3}, b[3] = {2, 3, 4}, x[3] = {2, 3, 4};
    CHECK(lab_cholesky_solve(A, x, 3) == 0);
    const double A0[9] = {4, 2, 0, 2, 5, 1, 0, 1, 3};
    for (int i = 0; i < 3; i++) CHECK_NEAR(A0[i * 3] * x[0] + A0[i * 3 + 1] * x[1] + A0[i * 3 + 2] * x[2], b[i], 1e-14);
    double notpd[4] = {1, 2, 2, 1}, bb[2] = {1, 1};
    CHECK(lab_cholesky_solve(notpd, bb, 2) == -1);
    double dg[3] = {1, 7, 3}, work[6];
    clipnn_rng r;
    clipnn_rng_seed(&r, 3);
    CHECK_NEAR(lab_power_iteration(diag_mv, dg, 3, 200, &r, work), 7, 1e-12); /* (3/7)^400 */
}

TEST(lab_log_points_are_sparse) {
    size_t n = 0;
    for (uint64_t k = 1; k <= 1000000; k++) n += lab_log_point(k) != 0;
    /* all of 1..99, then about 60 per decade over four decades */
    CHECK(n >= 99 + 4 * 55 && n <= 99 + 4 * 65);
    CHECK(lab_log_point(1) && lab_log_point(99) && lab_log_point(100));
}

TEST(lab_svg_plot_is_well_formed) {
    double x[5] = {1, 10, 100, 1000, 1e4}, y[5] = {1, 0.1, NAN, 1e-3, -1};
    clipnn_svg_series s[2] = {{"measured <a&b>", x, y, 5, 0, 0}, {"bound", x, x, 5, 0, 1}};
    clipnn_svg_axes ax = {"title", "steps", "norm", 1, 1};
    const char *path = check_tmp_path("lab.svg");
    CHECK_OK(clipnn_svg_line_plot(path, &ax, s, 2));
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = 0;
    fclose(f);
    CHECK(strstr(buf, "<svg") && strstr(buf, "</svg>\n"));
    CHECK(strstr(buf, "measured &lt;a&amp;b&gt;") != NULL); /* escaped legend text */
    CHECK(strstr(buf, "stroke-dasharray") != NULL);
    CHECK(strstr(buf, "(log scale)") != NULL);
    CHECK(strstr(buf, "1e-3") != NULL && strstr(buf, "1e4") != NULL); /* decade ticks */
    CHECK(strstr(buf, "nan") == NULL && strstr(buf, "inf") == NULL);
    /* the NaN and the negative value (on a log axis) break the first line into two */
    size_t lines = 0;
    for (const char *p = buf; (p = strstr(p, "<polyline")); p++) lines++;
    CHECK(lines == 3);
    CHECK(clipnn_svg_line_plot("/nonexistent/dir/x.svg", &ax, s, 2) == CLIPNN_ERR_IO);
}

static void collect(const char *text, void *user) {
    char *buf = user;
    size_t len = strlen(buf), add = strlen(text);
    if (len + add < 65536) memcpy(buf + len, text, add + 1);
}

TEST(lab_api) {
    CHECK(clipnn_lab_count() == 15);
    CHECK(clipnn_lab_name(clipnn_lab_count()) == NULL);
    CHECK(strcmp(clipnn_claim_verdict_name(CLIPNN_CLAIM_HOLDS_UNDER), "HOLDS UNDER") == 0);
    CHECK(clipnn_lab_run("no-such-lab", NULL, NULL) == CLIPNN_ERR_INVALID_ARG);
    static char text[65536];
    text[0] = 0;
    clipnn_lab_options o = clipnn_lab_options_default();
    o.quick = 1;
    o.write = collect;
    o.user = text;
    clipnn_lab_result r;
    CHECK_OK(clipnn_lab_run("l0l1", &o, &r));
    CHECK(r.n_claims == 3);
    CHECK(strstr(text, "CLAIM l0l1-gd-diverges: HOLDS (") != NULL);
    /* silent without a callback */
    clipnn_lab_options quiet = clipnn_lab_options_default();
    quiet.quick = 1;
    CHECK_OK(clipnn_lab_run("sgd-bias", &quiet, &r));
    CHECK(r.n_claims == 2 && r.claims[0].numbers[0] != 0);
    o.out_dir = "/nonexistent/dir";
    CHECK(clipnn_lab_run("l0l1", &o, &r) == CLIPNN_ERR_IO);
}

/* Every claim of docs/lab.md gets exactly one well-formed verdict line. */
TEST(lab_all_quick_gives_every_claim_a_verdict) {
    const char *out = NULL;
    int rc = check_run_tool("lab all --quick --json", &out);
    CHECK_MSG(rc == 0, "lab all --quick exited %d: %.500s", rc, out ? out : "");
    if (!out) return;
    static const char *const ids[] = {"Q2", "Q3", "Q4", "Q5", "Q8", "Q8-fixed-point", "Q9-as-printed", "Q9",
                                      "lemma1-eq14",
                                      "lemma1-deterministic", "lemma1-supermartingale", "thm1-classic",
                                      "thm1-adaptive", "thm1-remark", "lemma3", "l0l1-smooth", "l0l1-gd-diverges",
                                      "l0l1-clip-converges", "vanishing-larger-steps", "eq18-per-layer",
                                      "adaptive-faster", "claim2", "lemma2", "eq9-projection", "Q6", "Q7",
                                      "smoothness-as-printed", "bias-floor", "heavy-tail", "cliff",
                                      "cliff-unclipped-step", "cliff-clipped-step", "order-clipping-decides",
                                      "order-every-rule", "order-longer-harder", "addition-clipping-decides",
                                      "addition-every-rule", "addition-longer-harder", "local-clip-bias",
                                      "clip21-unbiased"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char want[64];
        snprintf(want, sizeof want, "\nCLAIM %s: ", ids[i]);
        const char *p = strstr(out, want);
        CHECK_MSG(p != NULL, "no verdict line for %s", ids[i]);
        if (!p) continue;
        p += strlen(want);
        int ok = !strncmp(p, "HOLDS (", 7) || !strncmp(p, "FAILS (", 7) || !strncmp(p, "HOLDS UNDER ", 12);
        CHECK_MSG(ok, "malformed verdict for %s: %.80s", ids[i], p);
        CHECK_MSG(strstr(p + 1, want) == NULL, "two verdict lines for %s", ids[i]);
    }
    size_t n = 0;
    for (const char *p = out; (p = strstr(p, "\nCLAIM ")); p++) n++;
    CHECK(n == sizeof ids / sizeof *ids);
    CHECK(strstr(out, "lab all: 15 experiments, 40 claims") != NULL);
    CHECK(strstr(out, "{\"seed\":1,") != NULL); /* the JSON line */
    /* the logistic regressions read the embedded breast cancer set, whatever the working directory */
    CHECK(strstr(out, "\"data\":\"breast cancer (569 x 30, malignant/benign)\"") != NULL);
    CHECK(check_run_tool("lab no-such-lab", NULL) == 2);
    CHECK(check_run_tool("lab", NULL) == 2);
}
