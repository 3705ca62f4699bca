/* sgd-bias (exercise Q8) and sgd-condition (exercise Q9): one-dimensional
 * SGD with clipping on f(x) = x^2 / 2 (beta = 1, f'(x) = x) with
 * stochastic gradient g = x + xi, E xi = 0. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

/* xi = +9 with probability 0.1, -1 with probability 0.9: mean zero, skewed. */
static const double SKEW_V[2] = {9.0, -1.0}, SKEW_P[2] = {0.1, 0.9};

static double clip1(double u, double c) { return u > c ? c : u < -c ? -c : u; }

typedef struct {
    double mean, se; /* average of x over the second half, batch-means standard error */
    double last;     /* x at the end */
} sgd_stats;

/* x_{k+1} = x_k - a(k) clip_c(x_k + xi_k) from x0 for n steps; a(k) = gamma
 * when sched is NULL. Statistics over the second half; running averages of
 * x go to the plot when asked. */
static sgd_stats run_sgd(const lab_noise *z, double c, double gamma, const clipnn_schedule *sched, double x0,
                         size_t n, clipnn_rng *rng, lab_plot *p, size_t series) {
    enum { NB = 20 };
    double x = x0, bsum[NB] = {0}, run = 0;
    size_t half = n / 2, per = (n - half) / NB;
    for (size_t k = 0; k < n; k++) {
        double a = sched ? clipnn_schedule_lr(sched, k) : gamma;
        x -= a * clip1(x + lab_noise_draw(z, rng), c);
        run += x;
        if (k >= half && per) {
            size_t b = (k - half) / per;
            if (b < NB) bsum[b] += x;
        }
        if (p && lab_log_point(k + 1)) lab_plot_add(p, series, (double)(k + 1), run / (double)(k + 1));
    }
    sgd_stats s = {.last = x};
    double m = 0, v = 0;
    for (int b = 0; b < NB; b++) m += bsum[b] / (double)per;
    m /= NB;
    for (int b = 0; b < NB; b++) v += (bsum[b] / (double)per - m) * (bsum[b] / (double)per - m);
    s.mean = m;
    s.se = sqrt(v / (NB - 1) / NB);
    return s;
}

/* The sgd-bias experiment: the noise, the plot and what the rows show. */
typedef struct {
    lab_noise skew;
    lab_plot plot;
    double min_ratio, worst_gap, worst_tol, away;
    double x_at[4], obs_at[4]; /* predicted root and observed mean at the smallest step, per c */
    int agree;
    double worst_unclipped, worst_unclipped_se;
} bias_exp;

static const double BIAS_C[4] = {0.5, 1, 2, 4}, BIAS_GAMMA[3] = {0.1, 0.01, 0.001};

/* Steps for step size gamma: 200 / gamma, at least 200000 (20 / gamma when quick). */
static size_t bias_steps(lab_ctx *L, double gamma) {
    size_t n = (size_t)(200 / gamma);
    return lab_size(L, n > 200000 ? n : 200000, (size_t)(20 / gamma));
}

/* At the smallest step: how far the mean stays from the minimum 0 and from
 * the predicted root xs (first: |mean| at the largest step). */
static void judge_smallest_step(bias_exp *b, size_t ci, double gamma, const sgd_stats *s, double xs, double first) {
    b->obs_at[ci] = s->mean;
    /* distance from the true minimum 0 in units of the allowance below */
    if (fabs(s->mean) / (gamma + 4 * s->se) < b->away) b->away = fabs(s->mean) / (gamma + 4 * s->se);
    double r = fabs(s->mean) / first;
    if (r < b->min_ratio) b->min_ratio = r;
    /* the iterates' mean differs from the root by O(gamma) (curvature of the clipped drift)
     * plus sampling error: allow gamma + 4 s.e. */
    double tol = gamma + 4 * s->se;
    if (fabs(s->mean - xs) > tol) b->agree = 0;
    if (fabs(s->mean - xs) > b->worst_gap) b->worst_gap = fabs(s->mean - xs), b->worst_tol = tol;
}

/* Threshold c = BIAS_C[ci] at every step size: the predicted root against
 * the observed mean. */
static void clipped_rows(lab_ctx *L, bias_exp *b, size_t ci) {
    double xs = lab_noise_fixed_point(&b->skew, BIAS_C[ci], -20, 20);
    b->x_at[ci] = xs;
    double first = NAN;
    for (size_t gi = 0; gi < 3; gi++) {
        size_t n = bias_steps(L, BIAS_GAMMA[gi]);
        int plotted = ci == 1 && gi == 2;
        size_t series = plotted ? lab_plot_series(&b->plot, "clipped, c = 1, gamma = 0.001") : 0;
        sgd_stats s = run_sgd(&b->skew, BIAS_C[ci], BIAS_GAMMA[gi], NULL, 0.0, n, &L->rng, plotted ? &b->plot : NULL,
                              series);
        if (plotted) {
            size_t sx = lab_plot_companion(&b->plot, "predicted x*, c = 1");
            lab_plot_add(&b->plot, sx, 1, xs);
            lab_plot_add(&b->plot, sx, (double)n, xs);
        }
        lab_printf(L, "%6.2g %8.3g %10.5f %10.5f %12.5f %10.2g %10.2g\n", BIAS_C[ci], BIAS_GAMMA[gi], xs, xs, s.mean,
                   s.se, fabs(s.mean - xs));
        if (gi == 0) first = fabs(s.mean);
        /* bounded away from zero however small the step: |f'| at the smallest step against the largest */
        if (gi == 2) judge_smallest_step(b, ci, BIAS_GAMMA[gi], &s, xs, first);
    }
}

/* Without clipping: SGD with constant steps is linear here, its mean is the minimum 0. */
static void unclipped_rows(lab_ctx *L, bias_exp *b) {
    lab_printf(L, "no clipping:\n");
    for (size_t gi = 0; gi < 3; gi++) {
        size_t n = bias_steps(L, BIAS_GAMMA[gi]);
        int plotted = gi == 2;
        size_t series = plotted ? lab_plot_series(&b->plot, "no clipping, gamma = 0.001") : 0;
        sgd_stats s = run_sgd(&b->skew, INFINITY, BIAS_GAMMA[gi], NULL, 0.0, n, &L->rng, plotted ? &b->plot : NULL,
                              series);
        lab_printf(L, "%6s %8.3g %10.5f %10.5f %12.5f %10.2g %10.2g\n", "inf", BIAS_GAMMA[gi], 0.0, 0.0, s.mean, s.se,
                   fabs(s.mean));
        if (fabs(s.mean) / (s.se + 1e-300) > b->worst_unclipped / (b->worst_unclipped_se + 1e-300))
            b->worst_unclipped = fabs(s.mean), b->worst_unclipped_se = s.se;
    }
}

/* Decreasing steps: the iterate itself converges, to x*, not to 0. */
static sgd_stats robbins_monro_run(lab_ctx *L, const bias_exp *b) {
    clipnn_schedule rm = clipnn_schedule_default();
    rm.kind = CLIPNN_SCHED_RM;
    rm.a0 = 0.5, rm.t0 = 100, rm.power = 0.75;
    size_t n_rm = lab_size(L, 1000000, 20000);
    sgd_stats srm = run_sgd(&b->skew, 1.0, 0, &rm, 0.0, n_rm, &L->rng, NULL, 0);
    lab_printf(L, "Robbins-Monro a(t) = 0.5/(1+t/100)^0.75, c = 1, %zu steps: last iterate %.5f, x* = %.5f\n\n", n_rm,
               srm.last, b->x_at[1]);
    return srm;
}

static void bias_claims(lab_ctx *L, const bias_exp *b, const sgd_stats *srm) {
    lab_claim(L, "Q8", b->min_ratio > 0.5 && b->away > 10 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "at gamma = 0.001 clipped SGD settles at x = %.4f, %.4f, %.4f, %.4f for c = 0.5, 1, 2, 4, where "
              "f'(x) = x != 0 (>= %.0f x (gamma + 4 s.e.) from 0); |f'| at gamma=0.001 over |f'| at gamma=0.1 >= %.3f; "
              "without clipping the mean "
              "is %.2g (+- %.1g); decreasing steps end at %.4f",
              b->obs_at[0], b->obs_at[1], b->obs_at[2], b->obs_at[3], b->away, b->min_ratio, b->worst_unclipped,
              b->worst_unclipped_se, srm->last);
    lab_claim(L, "Q8-fixed-point", b->agree ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "root of E[clip(x+xi)]=0: x* = %.4f, %.4f, %.4f, %.4f (= 1 - c/9 by hand); largest |observed - x*| "
              "at gamma=0.001 is %.2g (allowed gamma + 4 s.e. = %.2g); Robbins-Monro run ends %.2g from x*",
              b->x_at[0], b->x_at[1], b->x_at[2], b->x_at[3], b->worst_gap, b->worst_tol,
              fabs(srm->last - b->x_at[1]));
}

clipnn_status lab_sgd_bias(lab_ctx *L) {
    bias_exp b = {.skew = {.k = 2, .v = SKEW_V, .p = SKEW_P}, .min_ratio = INFINITY, .away = INFINITY, .agree = 1};
    lab_plot_init(&b.plot, "sgd-bias: running average of x_k, f(x) = x^2/2, xi = +9 (p=0.1) or -1 (p=0.9)",
                  "k (steps)", "mean of x_1..x_k", 1, 0);
    lab_printf(L, "f(x) = x^2/2 (beta = 1), g = x + xi, xi = +9 w.p. 0.1, -1 w.p. 0.9 (E xi = 0); start x0 = 0 "
                  "(the minimum).\nPredicted: the root x* of E[clip_c(x* + xi)] = 0; observed: mean of the second "
                  "half of the iterates (+- batch-means standard error).\n\n");
    lab_printf(L, "%6s %8s %10s %10s %12s %10s %10s\n", "c", "gamma", "x*", "f'(x*)", "observed", "s.e.",
               "|obs-x*|");
    for (size_t ci = 0; ci < 4; ci++) clipped_rows(L, &b, ci);
    unclipped_rows(L, &b);
    sgd_stats srm = robbins_monro_run(L, &b);
    bias_claims(L, &b, &srm);
    clipnn_status s = lab_plot_save(L, &b.plot, "average");
    lab_plot_free(&b.plot);
    return s;
}

/* -------------------------------------------------------------- Q9 */

/* E[C(g)] f'(x) / f'(x)^2 = E[clip(x + xi)] / x: the exercise's condition
 * (scale-free form, docs/lab.md) asks for >= 1/2. Minimum over 0 < |x| <= xmax. */
static double condition_min(const lab_noise *z, double c, double xmax) {
    double m = INFINITY;
    for (int i = 1; i <= 4000; i++) {
        double x = xmax * (double)i / 4000.0;
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            double r = lab_noise_clipped_mean(z, sgn * x, c) / (sgn * x);
            if (r < m) m = r;
        }
    }
    double r0 = lab_noise_clipped_mean(z, 1e-7, c) / 1e-7;
    return r0 < m ? r0 : m;
}

enum { COND_MAX_DECADES = 8 };

/* The runs of the sgd-condition experiment for one noise law. */
typedef struct {
    clipnn_schedule rm;
    size_t R, T;
    double c, x0;
    double *xs; /* [R] the runs' iterates */
    lab_plot plot;
} cond_exp;

/* R runs under noise law z: mean |f'(x_t)| at every decade into mean_at
 * (returns how many), the condition ratio over the visited |x| into *ratio. */
static size_t condition_runs(lab_ctx *L, cond_exp *e, const lab_noise *z, const char *name, double *mean_at,
                             double *ratio) {
    size_t series = lab_plot_series(&e->plot, name);
    for (size_t r = 0; r < e->R; r++) e->xs[r] = e->x0;
    double xmax = e->x0, sum = 0;
    size_t dec = 0;
    for (size_t t = 0; t < e->T; t++) {
        double a = clipnn_schedule_lr(&e->rm, t);
        sum = 0;
        for (size_t r = 0; r < e->R; r++) {
            e->xs[r] -= a * clip1(e->xs[r] + lab_noise_draw(z, &L->rng), e->c);
            if (fabs(e->xs[r]) > xmax) xmax = fabs(e->xs[r]);
            sum += fabs(e->xs[r]);
        }
        if (lab_log_point(t + 1)) lab_plot_add(&e->plot, series, (double)(t + 1), sum / (double)e->R);
        for (size_t p = 10; p <= e->T; p *= 10)
            if (t + 1 == p && dec < COND_MAX_DECADES) mean_at[dec++] = sum / (double)e->R;
    }
    *ratio = condition_min(z, e->c, xmax);
    lab_printf(L, "%-20s %8.3g", name, *ratio);
    for (size_t k = 0; k < dec; k++) lab_printf(L, " %14.4g", mean_at[k]);
    lab_printf(L, "\n");
    return dec;
}

static void condition_header(lab_ctx *L, const cond_exp *e) {
    lab_printf(L, "f(x) = x^2/2, g = x + xi, c = %g, x0 = %g, a(t) = 0.5/(1+t/10)^0.75, %zu runs of %zu steps.\n"
                  "ratio = E[clip(g)] f'(x) / f'(x)^2, its minimum over the visited |x| (condition of Q9: >= 1/2).\n\n",
              e->c, e->x0, e->R, e->T);
    lab_printf(L, "%-20s %8s", "noise", "ratio");
    for (size_t t = 10; t <= e->T; t *= 10) {
        char head[32];
        snprintf(head, sizeof head, "|f'| t=%zu", t);
        lab_printf(L, " %14s", head);
    }
    lab_printf(L, "\n");
}

/* Q9 as printed: a constant step gamma = 1/beta = 1 and c = 10 with N(0, 1)
 * noise. The condition E[gamma_k g_k] f'(x) >= f'(x)^2 / 2 holds at every x
 * (clipping at 10 is almost never active, so the ratio is about 1), yet
 * x_{k+1} = x_k - (x_k + xi_k) = -xi_k: |f'| stays at E|xi| = sqrt(2/pi).
 * FAILS when the condition held along the runs and the mean |f'| over the
 * last decade of steps did not fall below half of the decade before (nor
 * below 0.1); HOLDS when the gradient went to zero after all. */
static void q9_as_printed(lab_ctx *L) {
    const lab_noise z = {.sigma = 1.0};
    const double gamma = 1.0, c = 10.0, x0 = 1.8;
    size_t R = lab_size(L, 16, 4), T = lab_size(L, 100000, 10000);
    double xmax = x0, win[2] = {0, 0}; /* sums of |f'| over steps [T/100, T/10) and [T/10, T) */
    for (size_t r = 0; r < R; r++) {
        double x = x0;
        for (size_t t = 0; t < T; t++) {
            x -= gamma * clip1(x + lab_noise_draw(&z, &L->rng), c);
            if (fabs(x) > xmax) xmax = fabs(x);
            if (t >= T / 100) win[t >= T / 10] += fabs(x);
        }
    }
    double prev = win[0] / (double)(R * (T / 10 - T / 100)), last = win[1] / (double)(R * (T - T / 10));
    double ratio = gamma * condition_min(&z, c, xmax); /* the step stays inside the expectation */
    int fails = ratio >= 0.5 && last >= 0.5 * prev && last >= 0.1;
    lab_printf(L, "as printed: gamma = 1/beta = %g, c = %g, N(0,1) noise, %zu runs of %zu steps: ratio >= %.4f, "
                  "mean |f'| %.4f over [T/100, T/10), %.4f over [T/10, T) (E|xi| = %.4f)\n\n",
               gamma, c, R, T, ratio, prev, last, sqrt(2 / M_PI));
    lab_claim(L, "Q9-as-printed", fails ? CLIPNN_CLAIM_FAILS : CLIPNN_CLAIM_HOLDS, NULL,
              "constant step gamma = 1/beta = 1, c = 10, N(0,1) noise: condition ratio E[gamma_k g_k] f'/f'^2 >= %.4f "
              "at every visited |x| <= %.3g, yet mean |f'(x_t)| = %.3f over the last decade of %zu steps (%.3f the "
              "decade before; E|xi| = %.3f): the gradient does not go to zero",
              ratio, xmax, last, T, prev, sqrt(2 / M_PI));
}

clipnn_status lab_sgd_condition(lab_ctx *L) {
    const lab_noise laws[3] = {{.sigma = 0.5}, {.sigma = 3.0}, {.k = 2, .v = SKEW_V, .p = SKEW_P}};
    const char *names[3] = {"Gaussian sigma=0.5", "Gaussian sigma=3", "skewed +9/-1 (Q8)"};
    cond_exp e = {.rm = clipnn_schedule_default(), .R = lab_size(L, 16, 4), .T = lab_size(L, 1000000, 10000), .c = 1,
                  .x0 = 1.8};
    e.rm.kind = CLIPNN_SCHED_RM;
    e.rm.a0 = 0.5, e.rm.t0 = 10, e.rm.power = 0.75;
    lab_plot_init(&e.plot, "sgd-condition: mean |f'(x_t)| over runs, a(t) = 0.5/(1+t/10)^0.75, c = 1", "t (steps)",
                  "mean |f'(x_t)|", 1, 1);
    condition_header(L, &e);
    double mean_at[3][COND_MAX_DECADES], ratio[3];
    if (!(e.xs = clipnn_alloc_array(e.R, sizeof *e.xs)))
        return clipnn_fail(CLIPNN_ERR_NOMEM, "lab sgd-condition: out of memory");
    size_t n_dec = 0;
    for (int li = 0; li < 3; li++) n_dec = condition_runs(L, &e, &laws[li], names[li], mean_at[li], &ratio[li]);
    clipnn_free(e.xs);
    lab_printf(L, "\n");
    int decreasing = 1;
    for (size_t k = 1; k < n_dec; k++) decreasing &= mean_at[0][k] < mean_at[0][k - 1];
    double last = mean_at[0][n_dec - 1];
    q9_as_printed(L);
    int holds = ratio[0] >= 0.5 && decreasing && last <= 0.05 * e.x0;
    lab_claim(L, "Q9", holds ? CLIPNN_CLAIM_HOLDS_UNDER : CLIPNN_CLAIM_FAILS,
              "decreasing steps (sum a = inf, sum a^2 < inf) and the condition with the step factored out",
              "Gaussian noise sigma=0.5, c=1: condition ratio >= %.3f along the runs; mean |f'(x_t)| %.3g at t=10 "
              "-> %.3g at t=%zu, falling at every decade; contrast: sigma=3 (ratio %.3f, condition broken) still "
              "reaches %.3g, skewed noise (ratio %.3g) stays at %.3g",
              ratio[0], mean_at[0][0], last, e.T, ratio[1], mean_at[1][n_dec - 1], ratio[2], mean_at[2][n_dec - 1]);
    clipnn_status s = lab_plot_save(L, &e.plot, "gradient");
    lab_plot_free(&e.plot);
    return s;
}
