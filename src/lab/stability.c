/* stability (paper Lemma 1, eq. 12-16): Monte Carlo of clipped SGD,
 * P(max_{t<=T} ||theta(t) - theta(0)|| > M) next to the bound the paper
 * states, the deterministic bound lambda * sum a(t), and the martingale
 * property the proof relies on. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

enum { DIM = 5, NM = 8 };

/* Multiples of lambda tried as M in the search for the smallest counterexample. */
static const double M_GRID[NM - 1] = {0.75, 0.9, 1.5, 2, 3, 5, 10};

typedef struct {
    const char *name;
    clipnn_schedule s;
} sched_case;

/* sum_{t >= 0} a(t)^2: partial sum plus the integral of the power-law tail */
static double series_a2(const clipnn_schedule *s) {
    const uint64_t N = 100000; /* the tail integral's relative error is O(1/N) of a tail that is itself small */
    double sum = 0;
    for (uint64_t t = 0; t < N; t++) {
        double a = clipnn_schedule_lr(s, t);
        sum += a * a;
    }
    double p2 = 2 * s->power;
    return sum + s->a0 * s->a0 * pow(s->t0, p2) * pow((double)N + s->t0, 1 - p2) / (p2 - 1);
}

/* uniform in the ball of radius r in DIM dimensions */
static void ball(clipnn_rng *rng, double r, double *v) {
    double n = 0;
    for (int i = 0; i < DIM; i++) v[i] = clipnn_rng_normal(rng), n += v[i] * v[i];
    double scale = r * pow(clipnn_rng_uniform(rng), 1.0 / DIM) / sqrt(n);
    for (int i = 0; i < DIM; i++) v[i] *= scale;
}

typedef struct {
    int linear; /* 1: g = w + xi, ||w|| = 3 lambda, ||xi|| <= lambda (||g|| >= 2 lambda always);
                   0: g = theta - x, x ~ N(0, lambda^2 I) (a loss with a minimum) */
    double lambda;
    size_t R, T;
    /* measured */
    uint64_t *first; /* [R][NM]: first step t (1-based) with distance > M_j; T+1: never */
    double Ms[NM];   /* M_0: the row's M (eq. 14 bound 1e-3 at T), then M_GRID * lambda */
    double det_ratio_max, max_dist, mean_first_increment;
    size_t max_dist_run_count; /* runs that exceeded M_0 */
} mc_row;

static void simulate(lab_ctx *L, const clipnn_schedule *s, mc_row *row, lab_plot *dist, size_t s_mean) {
    double w[DIM] = {0}, th[DIM], g[DIM], xi[DIM];
    w[0] = 3 * row->lambda;
    double *mean_dist = NULL;
    if (dist && !(mean_dist = clipnn_alloc_array(row->T, sizeof *mean_dist))) dist->nomem = 1;
    double incr = 0;
    for (size_t r = 0; r < row->R; r++) {
        memset(th, 0, sizeof th);
        uint64_t *first = row->first + r * NM;
        for (int j = 0; j < NM; j++) first[j] = row->T + 1;
        double sum_a = 0;
        for (size_t t = 0; t < row->T; t++) {
            if (row->linear) {
                ball(&L->rng, row->lambda, xi);
                for (int i = 0; i < DIM; i++) g[i] = w[i] + xi[i];
            } else {
                for (int i = 0; i < DIM; i++) g[i] = th[i] - row->lambda * clipnn_rng_normal(&L->rng);
            }
            double gn = clipnn_nrm2_d(g, DIM), c = gn > row->lambda ? gn / row->lambda : 1; /* eq. 11 */
            double a = clipnn_schedule_lr(s, t);
            for (int i = 0; i < DIM; i++) th[i] -= a * g[i] / c; /* eq. 10 */
            if (t == 0) incr += a * gn / c;
            sum_a += a;
            double d = clipnn_nrm2_d(th, DIM); /* theta(0) = 0 */
            if (d / (row->lambda * sum_a) > row->det_ratio_max) row->det_ratio_max = d / (row->lambda * sum_a);
            if (d > row->max_dist) row->max_dist = d;
            for (int j = 0; j < NM; j++)
                if (first[j] > row->T && d > row->Ms[j] * (1 + 1e-12)) first[j] = t + 1; /* not rounding */
            if (mean_dist) mean_dist[t] += d / (double)row->R;
        }
        row->max_dist_run_count += first[0] <= row->T;
    }
    row->mean_first_increment = incr / (double)row->R / (clipnn_schedule_lr(s, 0) * row->lambda);
    if (mean_dist) {
        for (size_t t = 0; t < row->T; t++)
            if (lab_log_point(t + 1)) lab_plot_add(dist, s_mean, (double)(t + 1), mean_dist[t]);
        clipnn_free(mean_dist);
    }
}

/* Smallest t at which the Monte Carlo estimate of P(max_{u<=t} dist > M_j),
 * less its Hoeffding margin, exceeds the eq. 14 bound at t; 0 when none. */
static size_t first_counterexample(const mc_row *row, const clipnn_schedule *s, int j, double margin, double *p_out,
                                   double *bound_out) {
    double sum_a2 = 0;
    for (size_t t = 1; t <= row->T; t++) {
        double a = clipnn_schedule_lr(s, t - 1);
        sum_a2 += a * a;
        size_t hit = 0;
        for (size_t r = 0; r < row->R; r++) hit += row->first[r * NM + (size_t)j] <= t;
        double p = (double)hit / (double)row->R, b = clipnn_lemma1_bound(row->Ms[j], sum_a2, row->lambda);
        if (p - margin > b) {
            *p_out = p;
            *bound_out = b;
            return t;
        }
    }
    return 0;
}

/* The experiment: schedules, sizes, plots, and what the rows add up to
 * (the deterministic ratio, the first increments, the smallest
 * counterexample to eq. 14). */
typedef struct {
    sched_case sc[3];
    double full_a2[3]; /* sum over all t of a(t)^2 */
    size_t R, T;
    double delta, margin;
    lab_plot pp, dp;
    mc_row row;
    double det_max, min_incr, worst_p_minus_b, quad_max_p;
    size_t n_fail_rows, n_rows;
    size_t best_t;
    double best_M, best_p, best_b, best_lambda;
    const char *best_s;
} stab_ctx;

static void init_schedules(sched_case sc[3]) {
    for (int i = 0; i < 3; i++) {
        sc[i].s = clipnn_schedule_default();
        sc[i].s.kind = CLIPNN_SCHED_RM;
    }
    sc[0].name = "1/(1+t)", sc[0].s.a0 = 1, sc[0].s.t0 = 1, sc[0].s.power = 1;
    sc[1].name = "(1+t)^-0.6", sc[1].s.a0 = 1, sc[1].s.t0 = 1, sc[1].s.power = 0.6;
    sc[2].name = "0.1/(1+t/100)", sc[2].s.a0 = 0.1, sc[2].s.t0 = 100, sc[2].s.power = 1;
}

static clipnn_status init_stability(lab_ctx *L, stab_ctx *c) {
    memset(c, 0, sizeof *c);
    init_schedules(c->sc);
    c->R = lab_size(L, 200, 40), c->T = lab_size(L, 2000, 300);
    c->delta = 1e-3, c->margin = sqrt(log(1 / c->delta) / (2.0 * (double)c->R)); /* Hoeffding, 1 - delta */
    lab_plot_init(&c->pp, "stability: P(max_{u<=t} ||theta(u)-theta(0)|| > M), linear loss, M = 2 lambda, vs eq. 14",
                  "t (steps)", "probability", 1, 1);
    lab_plot_init(&c->dp, "stability: mean ||theta(t)-theta(0)|| / lambda, linear loss, vs lambda sum a", "t (steps)",
                  "distance / lambda", 1, 1);
    for (int k = 0; k < 3; k++) c->full_a2[k] = series_a2(&c->sc[k].s);
    c->min_incr = INFINITY, c->worst_p_minus_b = -1, c->best_s = "";
    c->row.first = clipnn_alloc_array(c->R * NM, sizeof *c->row.first);
    return c->row.first ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_NOMEM, "lab stability: out of memory");
}

static void print_intro(lab_ctx *L, const stab_ctx *c) {
    lab_printf(L,
               "Clipped SGD theta(t+1) = theta(t) - a(t) g/c, c = max(||g||/lambda, 1), theta(0) = 0, d = %d, %zu runs "
               "of T = %zu steps.\nlinear: g = w + xi, ||w|| = 3 lambda, xi uniform in the lambda-ball, so ||g|| >= "
               "2 lambda and every step is a(t) lambda long;\nquadratic: g = theta - x, x ~ N(0, lambda^2 I).\n"
               "M: where the eq. 14 bound at T is %.0e. P: fraction of runs with max_t ||theta(t)-theta(0)|| > M "
               "(Hoeffding margin %.3f at 1-%.0e).\n\n",
               DIM, c->R, c->T, c->delta, c->margin, c->delta);
    lab_printf(L, "%-9s %-14s %6s %8s %8s %10s %10s %10s %8s\n", "loss", "a(t)", "lambda", "M", "sum a^2",
               "eq14 bound", "eq15 bound", "lambda*Sa", "P");
}

/* A fresh row (the runs' buffer kept): M_0 where the eq. 14 bound at T is
 * delta, then the grid. */
static void reset_row(stab_ctx *c, int lin, double lambda, double sum_a2) {
    mc_row *row = &c->row;
    uint64_t *keep = row->first;
    memset(row, 0, sizeof *row);
    row->first = keep;
    row->linear = lin, row->lambda = lambda, row->R = c->R, row->T = c->T;
    row->Ms[0] = row->lambda * sqrt(sum_a2 * log(2 / c->delta) / 2);
    for (int j = 1; j < NM; j++) row->Ms[j] = M_GRID[j - 1] * row->lambda;
}

/* The plotted row's other curves: lambda sum a, and P against the eq. 14
 * bound at M = 2 lambda. */
static void plot_row(stab_ctx *c, const sched_case *sc) {
    char nm[64];
    snprintf(nm, sizeof nm, "lambda sum a, a(t) = %s", sc->name);
    size_t sd = lab_plot_companion(&c->dp, nm);
    snprintf(nm, sizeof nm, "P, a(t) = %s", sc->name);
    size_t sp = lab_plot_series(&c->pp, nm);
    snprintf(nm, sizeof nm, "eq. 14 bound, a(t) = %s", sc->name);
    size_t sb = lab_plot_companion(&c->pp, nm);
    double sa = 0, sa2 = 0;
    for (size_t t = 1; t <= c->T; t++) {
        double a = clipnn_schedule_lr(&sc->s, t - 1);
        sa += a, sa2 += a * a;
        if (!lab_log_point(t)) continue;
        lab_plot_add(&c->dp, sd, (double)t, sa);
        size_t hit = 0;
        for (size_t r = 0; r < c->R; r++) hit += c->row.first[r * NM + 4] <= t; /* M = M_GRID[3] lambda = 2 lambda */
        lab_plot_add(&c->pp, sp, (double)t, (double)hit / (double)c->R);
        double b = clipnn_lemma1_bound(c->row.Ms[4], sa2, c->row.lambda);
        if (b >= 1e-12) lab_plot_add(&c->pp, sb, (double)t, b); /* keep the axis readable */
    }
}

/* The smallest counterexample over the row's values of M. */
static void search_counterexample(stab_ctx *c, const sched_case *sc) {
    const mc_row *row = &c->row;
    for (int j = 0; j < NM; j++) {
        double pj, bj;
        size_t t = first_counterexample(row, &sc->s, j, c->margin, &pj, &bj);
        if (t && (c->best_t == 0 || t < c->best_t || (t == c->best_t && bj < c->best_b))) {
            c->best_t = t, c->best_M = row->Ms[j] / row->lambda, c->best_p = pj, c->best_b = bj;
            c->best_s = sc->name, c->best_lambda = row->lambda;
        }
    }
}

/* The table row: P(max distance > M_0) against eq. 14 and eq. 15. */
static void report_row(lab_ctx *L, stab_ctx *c, int k, double sum_a, double sum_a2) {
    const mc_row *row = &c->row;
    double p = (double)row->max_dist_run_count / (double)c->R;
    double b14 = clipnn_lemma1_bound(row->Ms[0], sum_a2, row->lambda);
    double b15 = clipnn_lemma1_bound(row->Ms[0], c->full_a2[k], row->lambda);
    int fails = p - c->margin > b14;
    c->n_fail_rows += fails;
    c->n_rows++;
    if (!row->linear && p > c->quad_max_p) c->quad_max_p = p;
    if (p - b14 > c->worst_p_minus_b) c->worst_p_minus_b = p - b14;
    lab_printf(L, "%-9s %-14s %6g %8.3g %8.4g %10.2g %10.2g %10.4g %8.3f%s\n", row->linear ? "linear" : "quadratic",
               c->sc[k].name, row->lambda, row->Ms[0], sum_a2, b14, b15, row->lambda * sum_a, p,
               fails ? "  > bound" : "");
    if (row->det_ratio_max > c->det_max) c->det_max = row->det_ratio_max;
    if (row->mean_first_increment < c->min_incr) c->min_incr = row->mean_first_increment;
}

/* The Monte Carlo of one loss, schedule k and lambda. */
static void run_row(lab_ctx *L, stab_ctx *c, double lambda, int k, int lin, int plot_this) {
    const sched_case *sc = &c->sc[k];
    double sum_a = 0, sum_a2 = 0;
    for (size_t t = 0; t < c->T; t++) {
        double a = clipnn_schedule_lr(&sc->s, t);
        sum_a += a, sum_a2 += a * a;
    }
    reset_row(c, lin, lambda, sum_a2);
    size_t s_mean = 0;
    if (plot_this) {
        char nm[64];
        snprintf(nm, sizeof nm, "mean distance, a(t) = %s", sc->name);
        s_mean = lab_plot_series(&c->dp, nm);
    }
    simulate(L, &sc->s, &c->row, plot_this ? &c->dp : NULL, s_mean);
    if (plot_this) plot_row(c, sc);
    report_row(L, c, k, sum_a, sum_a2);
    search_counterexample(c, sc);
}

/* The paper's own numbers (eq. 16): a(t) = 1/t, lambda = 30, M = 2^10. On
 * the linear loss with xi = 0 every step has length a(t) lambda in one
 * direction, so the distance is lambda * H_T: it passes M once the
 * harmonic number H_T > M / lambda. Then a(t) = (1+t)^-0.6 at the same
 * lambda and M, simulation-free: the step *t06 where the distance passes
 * M and the eq. 14 exponent *exp06 there. */
static void paper_numbers(lab_ctx *L, const clipnn_schedule *s06, uint64_t *t06, double *exp06) {
    const double lam = 30, M = 1024, euler = 0.5772156649015329;
    double H_needed = M / lam, T_paper = exp(H_needed - euler);
    double paper_bound_exp = -2 * M * M / (M_PI * M_PI / 6 * lam * lam);
    double sa = 0, sa2 = 0;
    *t06 = 0;
    while (lam * sa <= M) {
        double a = clipnn_schedule_lr(s06, (*t06)++);
        sa += a, sa2 += a * a;
    }
    *exp06 = -2 * M * M / (sa2 * lam * lam);
    lab_printf(L,
               "\nPaper's numbers (eq. 16): a(t) = 1/t, lambda = 30, M = 2^10: bound 2 exp(%.1f); on the linear loss "
               "without noise ||theta(T)-theta(0)|| = lambda H_T > M from T = %.3g steps on, with probability 1.\n"
               "Same lambda and M with a(t) = (1+t)^-0.6 (also Robbins-Monro): distance > M after T = %llu steps, "
               "where the eq. 14 bound is 2 exp(%.1f).\n\n",
               paper_bound_exp, T_paper, (unsigned long long)*t06, *exp06);
}

static void stability_claims(lab_ctx *L, const stab_ctx *c, uint64_t t06, double exp06) {
    lab_claim(L, "lemma1-eq14", c->n_fail_rows ? CLIPNN_CLAIM_FAILS : CLIPNN_CLAIM_HOLDS, NULL,
              "P > bound + margin in %zu of %zu settings; smallest counterexample: a(t) = %s, lambda = %g, M = %g "
              "lambda, T = %zu step%s: P = %.3f vs bound %.3g; paper's lambda=30, M=1024 with a(t)=(1+t)^-0.6: "
              "P = 1 after %llu steps vs bound 2e^(%.0f); quadratic loss: P <= %.3f",
              c->n_fail_rows, c->n_rows, c->best_s, c->best_lambda, c->best_M, c->best_t, c->best_t == 1 ? "" : "s",
              c->best_p, c->best_b, (unsigned long long)t06, exp06, c->quad_max_p);
    lab_claim(L, "lemma1-deterministic", c->det_max <= 1 + 1e-12 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "max over all runs and steps of ||theta(t)-theta(0)|| / (lambda sum_{s<t} a(s)) = %.12f; so "
              "P(blow-up past M before T) = 0 whenever M >= lambda sum_{t<T} a(t)",
              c->det_max);
    lab_claim(L, "lemma1-supermartingale", c->min_incr > 0 ? CLIPNN_CLAIM_FAILS : CLIPNN_CLAIM_HOLDS, NULL,
              "M_{s+1} - M_s = a(s)||g/c|| >= 0 by construction; measured mean first increment >= %.3f a(0) lambda "
              "> 0, so (M_s) is a submartingale and Azuma's inequality needs the centred sum",
              c->min_incr);
}

clipnn_status lab_stability(lab_ctx *L) {
    stab_ctx c;
    clipnn_status st = init_stability(L, &c);
    if (st) {
        lab_plot_free(&c.pp);
        lab_plot_free(&c.dp);
        return st;
    }
    print_intro(L, &c);
    const double lambdas[2] = {1, 30};
    for (int li = 0; li < 2; li++)
        for (int k = 0; k < 3; k++)
            for (int lin = 1; lin >= 0; lin--) run_row(L, &c, lambdas[li], k, lin, lin && li == 0);
    clipnn_free(c.row.first);
    uint64_t t06;
    double exp06;
    paper_numbers(L, &c.sc[1].s, &t06, &exp06);
    stability_claims(L, &c, t06, exp06);
    st = lab_plot_save(L, &c.pp, "probability");
    if (!st) st = lab_plot_save(L, &c.dp, "distance");
    lab_plot_free(&c.pp);
    lab_plot_free(&c.dp);
    return st;
}
