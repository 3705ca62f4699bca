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

static clipnn_status run_gd(gd_problem *p, const double *x0, gd_run *r, lab_plot *rate,
                            size_t s_min, size_t s_bound, lab_plot *norms, size_t s_norm) {
    size_t d = p->d;
    double *x = clipnn_alloc_array(4 * d, sizeof *x), *g = x + d, *xn = g + d, *gn = xn + d;
    clipnn_model *carrier = NULL;
    clipnn_clipper *cl = NULL;
    clipnn_status st = x ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_NOMEM, "lab gd-clip: out of memory");
    size_t width = 1;
    clipnn_act act = CLIPNN_ACT_IDENTITY;
    if (!st) st = clipnn_model_create(&carrier, d, 1, &width, &act);
    clipnn_clip_options co = clipnn_clip_options_default();
    co.rule = CLIPNN_CLIP_NORM;
    co.lambda = isinf(r->c) ? 1e300 : r->c;
    if (!st) st = clipnn_clipper_create(&cl, carrier, &co);
    if (st) goto done;
    memcpy(x, x0, d * sizeof *x);
    const double beta = p->beta, gamma = r->gamma_beta / beta;
    double f = p->fg(p, x, g);
    r->f0 = f;
    r->g0 = r->min_g = r->max_g = clipnn_nrm2_d(g, d);
    double gap = f - p->f_low, S = 0;
    size_t increases = 0, k;
    for (k = 0; k < r->K; k++) {
        double gk = clipnn_nrm2_d(g, d);
        if (!isfinite(gk) || gk > 1e30) { /* past float range: the clipper check would overflow */
            r->diverged = 1;
            break;
        }
        if (gk < r->min_g) r->min_g = gk;
        if (gk > r->max_g) r->max_g = gk;
        double factor = lab_clip_factor(gk, r->c), gk_step = gamma * factor; /* Q2: gamma_k */
        r->clipped += factor < 1;
        double dev = clipper_deviation(cl, carrier, g, d, factor, &st);
        if (st) goto done;
        r->q2_checked++;
        if (dev > r->q2_max_dev) r->q2_max_dev = dev;
        for (size_t i = 0; i < d; i++) xn[i] = x[i] - gk_step * g[i];
        double fn = p->fg(p, xn, gn);
        if ((st = p->status)) goto done;
        /* Q3: f(x_{k+1}) - f(x_k) <= -gamma_k (1 - gamma_k beta / 2) ||g_k||^2, up to the
         * rounding of two evaluations of f (relative 1e-12 covers sums of ~1e3 terms) */
        double lhs = fn - f, rhs = -gk_step * (1 - gk_step * beta / 2) * gk * gk;
        double tol = 1e-12 * (fabs(f) + fabs(fn)) + 1e-300;
        if (lhs > rhs + tol) r->q3_violations++;
        double slack = (rhs - lhs) / (fabs(rhs) + tol);
        if (k == 0 || slack < r->q3_worst) r->q3_worst = slack;
        increases += fn > f;
        /* Q4: sum_{j<=k} gamma_j ||g_j||^2 against 2 (f0 - f*) and 2 (f0 - f_{k+1}) */
        S += gk_step * gk * gk;
        if (gap > 0 && S / (2 * gap) > r->q4_ratio) r->q4_ratio = S / (2 * gap);
        if (S > 2 * gap * (1 + 1e-12) && !r->q4_first_violation) r->q4_first_violation = k + 1;
        double tele = 2 * (r->f0 - fn);
        if (tele > 0 && S / tele > r->q4_tele_ratio) r->q4_tele_ratio = S / tele;
        /* Q5: min_{j<=k} ||g_j|| under the rate bound with K = k + 1 */
        double bound = lab_q5_bound(gap, gamma, r->c, (double)(k + 1));
        if (r->min_g / bound > r->q5_ratio) r->q5_ratio = r->min_g / bound;
        double dx = gk_step * gk;
        if (dx > 0) {
            double e = 0;
            for (size_t i = 0; i < d; i++) e += (gn[i] - g[i]) * (gn[i] - g[i]);
            if (sqrt(e) / dx > r->secant_max) r->secant_max = sqrt(e) / dx;
        }
        if (lab_log_point(k + 1)) {
            if (rate) {
                lab_plot_add(rate, s_min, (double)(k + 1), r->min_g);
                lab_plot_add(rate, s_bound, (double)(k + 1), bound);
            }
            if (norms) lab_plot_add(norms, s_norm, (double)(k + 1), gk);
        }
        memcpy(x, xn, d * sizeof *x);
        memcpy(g, gn, d * sizeof *g);
        f = fn;
    }
    r->fK = f;
    r->f_increase_frac = k ? (double)increases / (double)k : 0;
    if (!r->diverged && !isfinite(f)) r->diverged = 1;
done:
    clipnn_clipper_free(cl);
    clipnn_model_free(carrier);
    clipnn_free(x);
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
    snprintf(p->name, sizeof p->name, "logistic (%s)", n == 569 ? "breast cancer" : "digits even/odd");
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

clipnn_status lab_gd_clip(lab_ctx *L) {
    enum { NP = 3 };
    gd_problem P[NP];
    memset(P, 0, sizeof P);
    const size_t dq = 20;
    double diag[20], xq[20];
    double *X = NULL, *y = NULL, *work = NULL, *mx = NULL, *my = NULL, *xm = NULL, *xl = NULL;
    lab_plot rate, norms;
    lab_plot_init(&rate, "gd-clip: min_{k<K} ||grad f(x_k)|| and the rate bound of Q4/Q5 (gamma = 1/beta)",
                  "K (steps)", "gradient norm", 1, 1);
    lab_plot_init(&norms, "gd-clip: ||grad f(x_k)|| on the quadratic for several gamma*beta", "k (steps)",
                  "||grad f(x_k)||", 1, 1);
    clipnn_status s = make_quadratic(L, &P[0], diag, xq, dq);
    if (!s) s = make_logistic(L, &P[1], 0, &X, &y, &work);
    if (!s) s = make_mlp(L, &P[2], lab_size(L, 256, 64), &mx, &my, &xm);
    if (!s && !(xl = clipnn_alloc_array(P[1].d, sizeof *xl))) s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    if (s) goto done;
    const double *x0[NP] = {xq, xl, xm};
    size_t K[NP] = {lab_size(L, 3000, 300), lab_size(L, 3000, 300), lab_size(L, 1500, 60)};

    lab_printf(L, "Clipped GD x_{k+1} = x_k - gamma C(grad f(x_k)), C(g) = g min(1, c/||g||); c = ||grad f(x0)||/10\n");
    for (size_t i = 0; i < NP; i++)
        lab_printf(L, "  %-24s d=%-4zu beta=%-10.4g (%s); %s: %.6g\n", P[i].name, P[i].d, P[i].beta,
                   P[i].beta_how, P[i].f_low_how, P[i].f_low);
    lab_printf(L, "\n%-24s %5s %8s %6s %7s %5s %10s %8s %8s %8s %10s %10s\n", "problem", "g*b", "c", "K",
               "clipped", "Q3bad", "Q3slack", "Q4ratio", "Q4tele", "Q5ratio", "|g0|", "min|g|");
    gd_run main_runs[NP];
    double q2_dev = 0;
    size_t q2_n = 0, q3_bad = 0, q3_n = 0;
    for (size_t i = 0; i < NP; i++) {
        double *gtmp = clipnn_alloc_array(P[i].d, sizeof *gtmp);
        if (!gtmp) {
            s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
            goto done;
        }
        P[i].fg(&P[i], x0[i], gtmp);
        double c = clipnn_nrm2_d(gtmp, P[i].d) / 10;
        clipnn_free(gtmp);
        main_runs[i] = (gd_run){.gamma_beta = 1, .c = c, .K = K[i]};
        char nm[64];
        snprintf(nm, sizeof nm, "%.40s: min |g|", P[i].name);
        size_t smin = lab_plot_series(&rate, nm);
        snprintf(nm, sizeof nm, "%.40s: bound", P[i].name);
        size_t sb = lab_plot_companion(&rate, nm);
        size_t sn = i == 0 ? lab_plot_series(&norms, "gamma*beta = 1, clipped") : 0;
        s = run_gd(&P[i], x0[i], &main_runs[i], &rate, smin, sb, i == 0 ? &norms : NULL, sn);
        if (s) goto done;
        print_run(L, &P[i], &main_runs[i]);
        if (main_runs[i].q2_max_dev > q2_dev) q2_dev = main_runs[i].q2_max_dev;
        q2_n += main_runs[i].q2_checked;
        q3_bad += main_runs[i].q3_violations;
        q3_n += main_runs[i].K;
    }
    /* step sizes past 1/beta on the quadratic */
    const double gb[3] = {1.9, 2.5, 2.5};
    gd_run big[3];
    for (size_t j = 0; j < 3; j++) {
        big[j] = (gd_run){.gamma_beta = gb[j], .c = j == 2 ? INFINITY : main_runs[0].c, .K = K[0]};
        char nm[64];
        snprintf(nm, sizeof nm, "gamma*beta = %.1f, %s", gb[j], j == 2 ? "no clipping" : "clipped");
        size_t sn = lab_plot_series(&norms, nm);
        s = run_gd(&P[0], x0[0], &big[j], NULL, 0, 0, &norms, sn);
        if (s) goto done;
        print_run(L, &P[0], &big[j]);
        q3_bad += big[j].q3_violations;
        q3_n += big[j].K;
    }
    lab_printf(L, "Q3bad: steps where the descent inequality failed; Q3slack: smallest (rhs-lhs)/|rhs|;\n"
                  "Q4ratio: max_K sum_{k<K} gamma_k|g_k|^2 / (2(f0-f*)); Q4tele: the same against 2(f0-f_K);\n"
                  "Q5ratio: max_K min_{k<K}|g_k| / bound_K (bound of docs/lab.md); MLP: largest secant curvature "
                  "on the path %.4g vs beta %.4g\n",
              main_runs[2].secant_max, P[2].beta);
    lab_printf(L, "gamma > 2/beta: clipped run: f rose at %.0f%% of steps, |g| stays in [%.3g, %.3g], sum passes "
                  "2(f0-f*) at K=%zu; unclipped run: |g| %s from %.3g to %.3g\n\n",
              100 * big[1].f_increase_frac, big[1].min_g, big[1].max_g, big[1].q4_first_violation,
              big[2].diverged ? "diverged" : "went", big[2].g0, big[2].max_g);

    lab_claim(L, "Q2", q2_dev <= 8 * 0x1p-24 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "library clipper step vs gamma*min(1,c/|g|)*g: max relative deviation %.2g over %zu steps "
              "(float32 tolerance %.2g), %zu/%zu/%zu steps clipped",
              q2_dev, q2_n, 8 * 0x1p-24, main_runs[0].clipped, main_runs[1].clipped, main_runs[2].clipped);
    lab_claim(L, "Q3", q3_bad == 0 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "%zu violations in %zu steps over 3 problems and gamma*beta in {1, 1.9, 2.5}; smallest relative "
              "slack %.3g (quadratic), %.3g (logistic), %.3g (MLP, beta estimated)",
              q3_bad, q3_n, main_runs[0].q3_worst, main_runs[1].q3_worst, main_runs[2].q3_worst);
    int q4_ok = 1, q5_ok = 1;
    for (size_t i = 0; i < NP; i++) {
        q4_ok &= main_runs[i].q4_ratio <= 1 + 1e-12 && main_runs[i].q4_tele_ratio <= 1 + 1e-9;
        q5_ok &= main_runs[i].q5_ratio <= 1 + 1e-12;
    }
    lab_claim(L, "Q4", q4_ok ? CLIPNN_CLAIM_HOLDS_UNDER : CLIPNN_CLAIM_FAILS, "gamma <= 1/beta",
              "max_K sum/(2(f0-f*)) = %.4f, %.4f, %.4f at gamma=1/beta (quadratic, logistic, MLP); "
              "%.4f at gamma=1.9/beta; %.4g at gamma=2.5/beta (passes 1 at K=%zu)",
              main_runs[0].q4_ratio, main_runs[1].q4_ratio, main_runs[2].q4_ratio, big[0].q4_ratio, big[1].q4_ratio,
              big[1].q4_first_violation);
    lab_claim(L, "Q5", q5_ok ? CLIPNN_CLAIM_HOLDS_UNDER : CLIPNN_CLAIM_FAILS, "gamma <= 1/beta",
              "max_K min|g|/bound_K = %.3f, %.3f, %.3f; min|g| fell %.3g->%.3g, %.3g->%.3g, %.3g->%.3g; at "
              "gamma=2.5/beta clipped min|g| stalls at %.3g (ratio to bound %.3g), unclipped %s",
              main_runs[0].q5_ratio, main_runs[1].q5_ratio, main_runs[2].q5_ratio, main_runs[0].g0, main_runs[0].min_g,
              main_runs[1].g0, main_runs[1].min_g, main_runs[2].g0, main_runs[2].min_g, big[1].min_g, big[1].q5_ratio,
              big[2].diverged ? "diverges" : "does not diverge");
    s = lab_plot_save(L, &rate, "rate");
    if (!s) s = lab_plot_save(L, &norms, "large-step");
done:
    lab_plot_free(&rate);
    lab_plot_free(&norms);
    clipnn_model_free(P[2].mlp);
    clipnn_free(X), clipnn_free(y), clipnn_free(work), clipnn_free(mx), clipnn_free(my), clipnn_free(xm);
    clipnn_free(xl);
    return s;
}
