/* gd-clip (exercise Q2-Q5): deterministic GD with clipping on beta-smooth
 * losses, every inequality checked at every step, in double. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

typedef struct gd_problem gd_problem;
struct gd_problem {
    char name[48];
    size_t d;
    double beta, f_low; /* smoothness constant used; f* or a lower bound of f */
    char beta_how[96], f_low_how[48];
    double (*fg)(gd_problem *p, const double *x, double *g); /* f(x), g = grad f(x) */
    clipnn_status status;                                    /* first failure inside fg */
    const double *diag;                                      /* quadratic: Hessian eigenvalues */
    lab_logistic lr;                                         /* logistic */
    size_t n;                                                /* MLP: examples */
    clipnn_model *mlp; /* MLP: the architecture; parameters come from x */
    const double *mx, *my;
    clipnn_loss_options lo;
};

/* ------------------------------------------------------------ the losses */

static double quad_fg(gd_problem *p, const double *x, double *g) {
    double f = 0;
    for (size_t i = 0; i < p->d; i++) {
        g[i] = p->diag[i] * x[i];
        f += 0.5 * p->diag[i] * x[i] * x[i];
    }
    return f;
}

static double logistic_fg(gd_problem *p, const double *w, double *g) { return lab_logistic_fg(&p->lr, w, g); }

static double mlp_fg(gd_problem *p, const double *x, double *g) {
    double loss = NAN;
    clipnn_status s = clipnn_reference_loss_grad(p->mlp, x, &p->lo, p->mx, p->my, p->n, &loss, NULL, g, NULL);
    if (s && !p->status) p->status = s;
    return s ? NAN : loss;
}

/* ------------------------------------------------------------ curvature */

static void gram_mv(const double *v, double *out, void *user) {
    const lab_logistic *p = &((gd_problem *)user)->lr;
    size_t n = p->n, d = p->d;
    memset(out, 0, d * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        double z = clipnn_dot_d(p->X + i * d, v, d);
        for (size_t j = 0; j < d; j++) out[j] += z * p->X[i * d + j];
    }
    for (size_t j = 0; j < d; j++) out[j] /= (double)n;
}

typedef struct {
    gd_problem *p;
    const double *x;
    double *xp, *gp, *gm;
} hvp_ctx;

/* H v by central differences of the gradient: error ~ h^2 * third derivative. */
static void hvp_fd(const double *v, double *out, void *user) {
    hvp_ctx *c = user;
    size_t d = c->p->d;
    const double h = 1e-5;
    for (size_t i = 0; i < d; i++) c->xp[i] = c->x[i] + h * v[i];
    c->p->fg(c->p, c->xp, c->gp);
    for (size_t i = 0; i < d; i++) c->xp[i] = c->x[i] - h * v[i];
    c->p->fg(c->p, c->xp, c->gm);
    for (size_t i = 0; i < d; i++) out[i] = (c->gp[i] - c->gm[i]) / (2 * h);
}

/* -------------------------------------------------------------- one run */

typedef struct {
    double gamma_beta, c; /* gamma * beta; threshold (INFINITY: no clipping) */
    size_t K;
    /* measured */
    size_t clipped, q3_violations, q2_checked;
    double q2_max_dev, q3_worst, q4_ratio, q4_tele_ratio, q5_ratio;
    double g0, min_g, f0, fK, f_increase_frac, max_g, secant_max;
    size_t q4_first_violation; /* K where the sum first passes 2 (f0 - f_low); 0: never */
    int diverged;
} gd_run;

/* The library's clipper on g (carried by a 1-output linear model with d
 * inputs), in place and fused; returns the larger relative deviation from
 * the exercise's gamma_k / gamma = min(1, c / ||g||). */
static double clipper_deviation(clipnn_clipper *cl, clipnn_model *carrier, const double *g, size_t d,
                                double factor, clipnn_status *st) {
    float *cg = clipnn_model_grads(carrier);
    double dev = 0, ref = 0, scale = 1;
    clipnn_clip_record rec;
    for (int fuse = 0; fuse <= 1 && !*st; fuse++) {
        for (size_t i = 0; i < d; i++) cg[i] = (float)g[i];
        cg[d] = 0;
        *st = clipnn_clipper_apply(cl, carrier, -1, fuse, &scale, NULL, &rec);
        if (*st) break;
        double e = 0;
        ref = 0;
        for (size_t i = 0; i < d; i++) {
            double want = factor * (double)(float)g[i], got = scale * (double)cg[i];
            e += (got - want) * (got - want);
            ref += want * want;
        }
        double rel = ref > 0 ? sqrt(e / ref) : sqrt(e);
        if (rel > dev) dev = rel;
    }
    return dev;
}

/* One run's vectors (x, its gradient g, the next point xn and its
 * gradient gn), the library's clipper with its carrier model, and the sums
 * the checks keep. */
typedef struct {
    double *x, *g, *xn, *gn;
    clipnn_model *carrier;
    clipnn_clipper *cl;
    double gamma, f, gap, S; /* step size, f(x), f0 - f_low, sum of gamma_k ||g_k||^2 */
    size_t increases;        /* steps where f rose */
} gd_state;

static void close_gd(gd_state *w) {
    clipnn_clipper_free(w->cl);
    clipnn_model_free(w->carrier);
    clipnn_free(w->x);
}

static clipnn_status open_gd(gd_state *w, const gd_problem *p, const gd_run *r) {
    size_t d = p->d;
    memset(w, 0, sizeof *w);
    w->x = clipnn_alloc_array(4 * d, sizeof *w->x);
    if (!w->x) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    w->g = w->x + d, w->xn = w->g + d, w->gn = w->xn + d;
    size_t width = 1;
    clipnn_act act = CLIPNN_ACT_IDENTITY;
    clipnn_status st = clipnn_model_create(&w->carrier, d, 1, &width, &act);
    clipnn_clip_options co = clipnn_clip_options_default();
    co.rule = CLIPNN_CLIP_NORM;
    co.lambda = isinf(r->c) ? 1e300 : r->c;
    if (!st) st = clipnn_clipper_create(&w->cl, w->carrier, &co);
    w->gamma = r->gamma_beta / p->beta;
    return st;
}

/* Q3 to Q5 and the secant curvature at step k, from x_k (f, g: gk =
 * ||g_k||, step gk_step) to x_{k+1} (fn, w->gn). Returns the Q5 bound. */
static double check_step(const gd_problem *p, gd_run *r, gd_state *w, size_t k, double fn, double gk,
                         double gk_step) {
    const double f = w->f, beta = p->beta;
    /* Q3: f(x_{k+1}) - f(x_k) <= -gamma_k (1 - gamma_k beta / 2) ||g_k||^2, up to the
     * rounding of two evaluations of f (relative 1e-12 covers sums of ~1e3 terms) */
    double lhs = fn - f, rhs = -gk_step * (1 - gk_step * beta / 2) * gk * gk;
    double tol = 1e-12 * (fabs(f) + fabs(fn)) + 1e-300;
    if (lhs > rhs + tol) r->q3_violations++;
    double slack = (rhs - lhs) / (fabs(rhs) + tol);
    if (k == 0 || slack < r->q3_worst) r->q3_worst = slack;
    w->increases += fn > f;
    /* Q4: sum_{j<=k} gamma_j ||g_j||^2 against 2 (f0 - f*) and 2 (f0 - f_{k+1}) */
    w->S += gk_step * gk * gk;
    if (w->gap > 0 && w->S / (2 * w->gap) > r->q4_ratio) r->q4_ratio = w->S / (2 * w->gap);
    if (w->S > 2 * w->gap * (1 + 1e-12) && !r->q4_first_violation) r->q4_first_violation = k + 1;
    double tele = 2 * (r->f0 - fn);
    if (tele > 0 && w->S / tele > r->q4_tele_ratio) r->q4_tele_ratio = w->S / tele;
    /* Q5: min_{j<=k} ||g_j|| under the rate bound with K = k + 1 */
    double bound = lab_q5_bound(w->gap, w->gamma, r->c, (double)(k + 1));
    if (r->min_g / bound > r->q5_ratio) r->q5_ratio = r->min_g / bound;
    double dx = gk_step * gk;
    if (dx > 0) {
        double e = 0;
        for (size_t i = 0; i < p->d; i++) e += (w->gn[i] - w->g[i]) * (w->gn[i] - w->g[i]);
        if (sqrt(e) / dx > r->secant_max) r->secant_max = sqrt(e) / dx;
    }
    return bound;
}

/* Where a run's traces go: the rate plot (min |g| and the bound), the norms plot. */
typedef struct {
    lab_plot *rate, *norms;
    size_t s_min, s_bound, s_norm;
} gd_plots;

/* Step k of clipped GD: Q2 (the library's clipper), the step, the checks.
 * Returns 0 to go on, 1 when the gradient has left float range. */
static int gd_step(gd_problem *p, gd_run *r, gd_state *w, size_t k, const gd_plots *pl, clipnn_status *st) {
    size_t d = p->d;
    double gk = clipnn_nrm2_d(w->g, d);
    if (!isfinite(gk) || gk > 1e30) { /* past float range: the clipper check would overflow */
        r->diverged = 1;
        return 1;
    }
    if (gk < r->min_g) r->min_g = gk;
    if (gk > r->max_g) r->max_g = gk;
    double factor = lab_clip_factor(gk, r->c), gk_step = w->gamma * factor; /* Q2: gamma_k */
    r->clipped += factor < 1;
    double dev = clipper_deviation(w->cl, w->carrier, w->g, d, factor, st);
    if (*st) return 1;
    r->q2_checked++;
    if (dev > r->q2_max_dev) r->q2_max_dev = dev;
    for (size_t i = 0; i < d; i++) w->xn[i] = w->x[i] - gk_step * w->g[i];
    double fn = p->fg(p, w->xn, w->gn);
    if ((*st = p->status)) return 1;
    double bound = check_step(p, r, w, k, fn, gk, gk_step);
    if (lab_log_point(k + 1)) {
        if (pl->rate) {
            lab_plot_add(pl->rate, pl->s_min, (double)(k + 1), r->min_g);
            lab_plot_add(pl->rate, pl->s_bound, (double)(k + 1), bound);
        }
        if (pl->norms) lab_plot_add(pl->norms, pl->s_norm, (double)(k + 1), gk);
    }
    memcpy(w->x, w->xn, d * sizeof *w->x);
    memcpy(w->g, w->gn, d * sizeof *w->g);
    w->f = fn;
    return 0;
}

static clipnn_status run_gd(gd_problem *p, const double *x0, gd_run *r, const gd_plots *pl) {
    gd_state w;
    clipnn_status st = open_gd(&w, p, r);
    if (st) {
        close_gd(&w);
        return st;
    }
    memcpy(w.x, x0, p->d * sizeof *w.x);
    w.f = p->fg(p, w.x, w.g);
    r->f0 = w.f;
    r->g0 = r->min_g = r->max_g = clipnn_nrm2_d(w.g, p->d);
    w.gap = w.f - p->f_low;
    size_t k;
    for (k = 0; k < r->K; k++)
        if (gd_step(p, r, &w, k, pl, &st)) break;
    if (!st) {
        r->fK = w.f;
        r->f_increase_frac = k ? (double)w.increases / (double)k : 0;
        if (!r->diverged && !isfinite(w.f)) r->diverged = 1;
    }
    close_gd(&w);
    return st;
}

static void print_run(lab_ctx *L, const gd_problem *p, const gd_run *r) {
    char c[32];
    if (isinf(r->c)) snprintf(c, sizeof c, "none");
    else snprintf(c, sizeof c, "%.3g", r->c);
    lab_printf(L, "%-24s %5.2f %8s %6zu %7zu %5zu %10.3g %8.4g %8.4g %8.4g %10.3g %10.3g%s\n", p->name,
               r->gamma_beta, c, r->K, r->clipped, r->q3_violations, r->q3_worst, r->q4_ratio, r->q4_tele_ratio,
               r->q5_ratio, r->g0, r->min_g, r->diverged ? "  diverged" : "");
}

/* ------------------------------------------------------------ problems */

static clipnn_status make_quadratic(lab_ctx *L, gd_problem *p, double *diag, double *x0, size_t d) {
    const double beta = 10, kappa = 100;
    for (size_t i = 0; i < d; i++) diag[i] = beta * pow(kappa, -(double)i / (double)(d - 1));
    for (size_t i = 0; i < d; i++) x0[i] = 10 * clipnn_rng_normal(&L->rng);
    *p = (gd_problem){.d = d, .beta = beta, .f_low = 0, .fg = quad_fg, .diag = diag};
    snprintf(p->name, sizeof p->name, "quadratic kappa=%g", kappa);
    snprintf(p->beta_how, sizeof p->beta_how, "exact: largest Hessian eigenvalue");
    snprintf(p->f_low_how, sizeof p->f_low_how, "f* (exact)");
    return CLIPNN_OK;
}

static clipnn_status make_logistic(lab_ctx *L, gd_problem *p, size_t max_n, double **X, double **y,
                                   double **work) {
    size_t n, d;
    const char *name;
    clipnn_status s = lab_logistic_data(L, max_n, X, y, &n, &d, &name);
    if (s) return s;
    *p = (gd_problem){.d = d, .fg = logistic_fg, .lr = {.X = *X, .y = *y, .n = n, .d = d, .mu = 1e-3}};
    snprintf(p->name, sizeof p->name, "logistic (breast cancer)");
    *work = clipnn_alloc_array(2 * d, sizeof **work);
    if (!*work) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    /* the logistic loss has f'' <= 1/4, so beta = lambda_max(X^T X / n) / 4 + mu */
    double lmax = lab_power_iteration(gram_mv, p, d, 500, &L->rng, *work);
    p->beta = lmax / 4 * (1 + 1e-9) + p->lr.mu;
    snprintf(p->beta_how, sizeof p->beta_how, "lambda_max(X^T X/n)/4 + mu, n=%zu, d=%zu, mu=%g", n, d, p->lr.mu);
    double *wstar = clipnn_alloc_array(d, sizeof *wstar);
    s = wstar ? lab_logistic_min(&p->lr, wstar, &p->f_low) : clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    clipnn_free(wstar);
    snprintf(p->f_low_how, sizeof p->f_low_how, "f* (Newton)");
    return s;
}

static clipnn_status make_mlp(lab_ctx *L, gd_problem *p, size_t n, double **xd, double **yd, double **x0) {
    clipnn_data_options o = clipnn_data_options_default();
    o.test_fraction = 0;
    o.scaling = CLIPNN_SCALE_STANDARDIZE;
    o.seed = L->opt->seed;
    clipnn_dataset *ds = NULL;
    clipnn_status s = clipnn_dataset_load("digits", &o, &ds, NULL);
    if (s) return s;
    size_t dim = clipnn_dataset_dim(ds);
    if (n > clipnn_dataset_n(ds)) n = clipnn_dataset_n(ds);
    *xd = clipnn_alloc_array(n * dim, sizeof **xd);
    *yd = clipnn_alloc_array(n, sizeof **yd);
    size_t widths[2] = {8, 10};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    if (!*xd || !*yd) s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    if (!s) s = clipnn_model_create(&p->mlp, dim, 2, widths, acts);
    if (!s) s = clipnn_model_init(p->mlp, CLIPNN_INIT_XAVIER, L->opt->seed);
    if (!s) {
        for (size_t i = 0; i < n * dim; i++) (*xd)[i] = clipnn_dataset_x(ds)[i];
        for (size_t i = 0; i < n; i++) (*yd)[i] = clipnn_dataset_y(ds)[i];
        p->d = clipnn_model_n_params(p->mlp);
        *x0 = clipnn_alloc_array(p->d, sizeof **x0);
        if (!*x0) s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    }
    clipnn_dataset_free(ds);
    if (s) return s;
    for (size_t i = 0; i < p->d; i++) (*x0)[i] = clipnn_model_params(p->mlp)[i];
    p->fg = mlp_fg;
    p->mx = *xd, p->my = *yd, p->n = n;
    p->lo = clipnn_loss_options_default();
    p->lo.loss = CLIPNN_LOSS_XENT;
    p->f_low = 0;
    snprintf(p->name, sizeof p->name, "MLP 64-8-10 tanh");
    snprintf(p->f_low_how, sizeof p->f_low_how, "lower bound of f* (cross-entropy >= 0)");
    /* beta: twice the largest |eigenvalue| of the Hessian at x0 (power iteration on finite-
     * difference Hessian-vector products); the run reports the largest
     * secant curvature met on the way, which tells whether it was enough */
    double *w = clipnn_alloc_array(5 * p->d, sizeof *w);
    if (!w) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    hvp_ctx hc = {p, *x0, w + 2 * p->d, w + 3 * p->d, w + 4 * p->d};
    double lmax = lab_power_iteration(hvp_fd, &hc, p->d, lab_size(L, 30, 10), &L->rng, w);
    clipnn_free(w);
    p->beta = 2 * lmax;
    snprintf(p->beta_how, sizeof p->beta_how,
             "estimated: 2 x largest |eigenvalue| of the Hessian at x0 (%.4g), digits n=%zu", lmax, n);
    return p->status;
}

/* ------------------------------------------------------------ experiment */

enum { NP = 3, NBIG = 3 };

/* The experiment: three problems, their runs at gamma = 1/beta, the
 * large-step runs on the quadratic, the plots and the totals. */
typedef struct {
    gd_problem P[NP];
    double diag[20], xq[20];
    double *X, *y, *work, *mx, *my, *xm, *xl;
    const double *x0[NP];
    size_t K[NP];
    lab_plot rate, norms;
    gd_run main_runs[NP], big[NBIG];
    double q2_dev;
    size_t q2_n, q3_bad, q3_n;
} gd_exp;

static clipnn_status make_problems(lab_ctx *L, gd_exp *e) {
    lab_plot_init(&e->rate, "gd-clip: min_{k<K} ||grad f(x_k)|| and the rate bound of Q4/Q5 (gamma = 1/beta)",
                  "K (steps)", "gradient norm", 1, 1);
    lab_plot_init(&e->norms, "gd-clip: ||grad f(x_k)|| on the quadratic for several gamma*beta", "k (steps)",
                  "||grad f(x_k)||", 1, 1);
    clipnn_status s = make_quadratic(L, &e->P[0], e->diag, e->xq, 20);
    if (!s) s = make_logistic(L, &e->P[1], 0, &e->X, &e->y, &e->work);
    if (!s) s = make_mlp(L, &e->P[2], lab_size(L, 256, 64), &e->mx, &e->my, &e->xm);
    if (!s && !(e->xl = clipnn_alloc_array(e->P[1].d, sizeof *e->xl)))
        s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    e->x0[0] = e->xq, e->x0[1] = e->xl, e->x0[2] = e->xm;
    e->K[0] = lab_size(L, 3000, 300), e->K[1] = lab_size(L, 3000, 300), e->K[2] = lab_size(L, 1500, 60);
    return s;
}

static void free_problems(gd_exp *e) {
    lab_plot_free(&e->rate);
    lab_plot_free(&e->norms);
    clipnn_model_free(e->P[2].mlp);
    clipnn_free(e->X), clipnn_free(e->y), clipnn_free(e->work), clipnn_free(e->mx), clipnn_free(e->my);
    clipnn_free(e->xm), clipnn_free(e->xl);
}

static void print_problems(lab_ctx *L, const gd_exp *e) {
    lab_printf(L, "Clipped GD x_{k+1} = x_k - gamma C(grad f(x_k)), C(g) = g min(1, c/||g||); c = ||grad f(x0)||/10\n");
    for (size_t i = 0; i < NP; i++)
        lab_printf(L, "  %-24s d=%-4zu beta=%-10.4g (%s); %s: %.6g\n", e->P[i].name, e->P[i].d, e->P[i].beta,
                   e->P[i].beta_how, e->P[i].f_low_how, e->P[i].f_low);
    lab_printf(L, "\n%-24s %5s %8s %6s %7s %5s %10s %8s %8s %8s %10s %10s\n", "problem", "g*b", "c", "K",
               "clipped", "Q3bad", "Q3slack", "Q4ratio", "Q4tele", "Q5ratio", "|g0|", "min|g|");
}

/* Problem i at gamma = 1/beta with c = ||grad f(x0)|| / 10. */
static clipnn_status run_main(lab_ctx *L, gd_exp *e, size_t i) {
    gd_problem *p = &e->P[i];
    double *gtmp = clipnn_alloc_array(p->d, sizeof *gtmp);
    if (!gtmp) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    p->fg(p, e->x0[i], gtmp);
    double c = clipnn_nrm2_d(gtmp, p->d) / 10;
    clipnn_free(gtmp);
    gd_run *r = &e->main_runs[i];
    *r = (gd_run){.gamma_beta = 1, .c = c, .K = e->K[i]};
    char nm[64];
    gd_plots pl = {.rate = &e->rate, .norms = i == 0 ? &e->norms : NULL};
    snprintf(nm, sizeof nm, "%.40s: min |g|", p->name);
    pl.s_min = lab_plot_series(&e->rate, nm);
    snprintf(nm, sizeof nm, "%.40s: bound", p->name);
    pl.s_bound = lab_plot_companion(&e->rate, nm);
    pl.s_norm = i == 0 ? lab_plot_series(&e->norms, "gamma*beta = 1, clipped") : 0;
    clipnn_status s = run_gd(p, e->x0[i], r, &pl);
    if (s) return s;
    print_run(L, p, r);
    if (r->q2_max_dev > e->q2_dev) e->q2_dev = r->q2_max_dev;
    e->q2_n += r->q2_checked;
    e->q3_bad += r->q3_violations;
    e->q3_n += r->K;
    return CLIPNN_OK;
}

/* Step sizes past 1/beta on the quadratic, clipped and not. */
static clipnn_status run_large_steps(lab_ctx *L, gd_exp *e) {
    const double gb[NBIG] = {1.9, 2.5, 2.5};
    for (size_t j = 0; j < NBIG; j++) {
        gd_run *r = &e->big[j];
        *r = (gd_run){.gamma_beta = gb[j], .c = j == 2 ? INFINITY : e->main_runs[0].c, .K = e->K[0]};
        char nm[64];
        snprintf(nm, sizeof nm, "gamma*beta = %.1f, %s", gb[j], j == 2 ? "no clipping" : "clipped");
        gd_plots pl = {.norms = &e->norms, .s_norm = lab_plot_series(&e->norms, nm)};
        clipnn_status s = run_gd(&e->P[0], e->x0[0], r, &pl);
        if (s) return s;
        print_run(L, &e->P[0], r);
        e->q3_bad += r->q3_violations;
        e->q3_n += r->K;
    }
    return CLIPNN_OK;
}

static void print_notes(lab_ctx *L, const gd_exp *e) {
    const gd_run *big = e->big;
    lab_printf(L, "Q3bad: steps where the descent inequality failed; Q3slack: smallest (rhs-lhs)/|rhs|;\n"
                  "Q4ratio: max_K sum_{k<K} gamma_k|g_k|^2 / (2(f0-f*)); Q4tele: the same against 2(f0-f_K);\n"
                  "Q5ratio: max_K min_{k<K}|g_k| / bound_K (bound of docs/lab.md); MLP: largest secant curvature "
                  "on the path %.4g vs beta %.4g\n",
              e->main_runs[2].secant_max, e->P[2].beta);
    lab_printf(L, "gamma > 2/beta: clipped run: f rose at %.0f%% of steps, |g| stays in [%.3g, %.3g], sum passes "
                  "2(f0-f*) at K=%zu; unclipped run: |g| %s from %.3g to %.3g\n\n",
              100 * big[1].f_increase_frac, big[1].min_g, big[1].max_g, big[1].q4_first_violation,
              big[2].diverged ? "diverged" : "went", big[2].g0, big[2].max_g);
}

static void claims_q2_q3(lab_ctx *L, const gd_exp *e) {
    const gd_run *mr = e->main_runs;
    lab_claim(L, "Q2", e->q2_dev <= 8 * 0x1p-24 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "library clipper step vs gamma*min(1,c/|g|)*g: max relative deviation %.2g over %zu steps "
              "(float32 tolerance %.2g), %zu/%zu/%zu steps clipped",
              e->q2_dev, e->q2_n, 8 * 0x1p-24, mr[0].clipped, mr[1].clipped, mr[2].clipped);
    lab_claim(L, "Q3", e->q3_bad == 0 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "%zu violations in %zu steps over 3 problems and gamma*beta in {1, 1.9, 2.5}; smallest relative "
              "slack %.3g (quadratic), %.3g (logistic), %.3g (MLP, beta estimated)",
              e->q3_bad, e->q3_n, mr[0].q3_worst, mr[1].q3_worst, mr[2].q3_worst);
}

static void claims_q4_q5(lab_ctx *L, const gd_exp *e) {
    const gd_run *mr = e->main_runs, *big = e->big;
    int q4_ok = 1, q5_ok = 1;
    for (size_t i = 0; i < NP; i++) {
        q4_ok &= mr[i].q4_ratio <= 1 + 1e-12 && mr[i].q4_tele_ratio <= 1 + 1e-9;
        q5_ok &= mr[i].q5_ratio <= 1 + 1e-12;
    }
    lab_claim(L, "Q4", q4_ok ? CLIPNN_CLAIM_HOLDS_UNDER : CLIPNN_CLAIM_FAILS, "gamma <= 1/beta",
              "max_K sum/(2(f0-f*)) = %.4f, %.4f, %.4f at gamma=1/beta (quadratic, logistic, MLP); "
              "%.4f at gamma=1.9/beta; %.4g at gamma=2.5/beta (passes 1 at K=%zu)",
              mr[0].q4_ratio, mr[1].q4_ratio, mr[2].q4_ratio, big[0].q4_ratio, big[1].q4_ratio,
              big[1].q4_first_violation);
    lab_claim(L, "Q5", q5_ok ? CLIPNN_CLAIM_HOLDS_UNDER : CLIPNN_CLAIM_FAILS, "gamma <= 1/beta",
              "max_K min|g|/bound_K = %.3f, %.3f, %.3f; min|g| fell %.3g->%.3g, %.3g->%.3g, %.3g->%.3g; at "
              "gamma=2.5/beta clipped min|g| stalls at %.3g (ratio to bound %.3g), unclipped %s",
              mr[0].q5_ratio, mr[1].q5_ratio, mr[2].q5_ratio, mr[0].g0, mr[0].min_g, mr[1].g0, mr[1].min_g, mr[2].g0,
              mr[2].min_g, big[1].min_g, big[1].q5_ratio, big[2].diverged ? "diverges" : "does not diverge");
}

clipnn_status lab_gd_clip(lab_ctx *L) {
    gd_exp e;
    memset(&e, 0, sizeof e);
    clipnn_status s = make_problems(L, &e);
    if (!s) print_problems(L, &e);
    for (size_t i = 0; i < NP && !s; i++) s = run_main(L, &e, i);
    if (!s) s = run_large_steps(L, &e);
    if (!s) {
        print_notes(L, &e);
        claims_q2_q3(L, &e);
        claims_q4_q5(L, &e);
        s = lab_plot_save(L, &e.rate, "rate");
    }
    if (!s) s = lab_plot_save(L, &e.norms, "large-step");
    free_problems(&e);
    return s;
}
