/* The theory lab: registry of experiments, verdict lines, traces (CSV and
 * SVG), and the small mathematics the experiments share. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lab/lab.h"
#include "io/io.h"

typedef struct {
    const char *name, *summary;
    clipnn_status (*run)(lab_ctx *L);
} lab_entry;

static const lab_entry LABS[] = {
    {"gd-clip", "exercise Q2-Q5: clipped GD on beta-smooth losses, descent inequality, sum and rate bounds",
     lab_gd_clip},
    {"sgd-bias", "exercise Q8: skewed mean-zero noise, clipped SGD settles where the gradient is not zero",
     lab_sgd_bias},
    {"sgd-condition", "exercise Q9: as printed (constant step) it fails; with decreasing steps the gradient goes to 0",
     lab_sgd_condition},
    {"stability", "paper Lemma 1: Monte Carlo of P(||theta(t)-theta(0)|| > M) against the stated bound",
     lab_stability},
    {"fixed-point", "paper Theorem 1, Lemma 3 and the remark: the zero of H(theta)=E[g/c] versus E[g]",
     lab_fixed_point},
    {"l0l1", "Zhang et al. 2020: f(x)=x^4, fixed-step GD diverges from far starts, clipped GD converges",
     lab_l0l1},
    {"clip-scale", "paper, after eq. 17-18: clipping never lengthens a step; adaptive is faster only if ||theta|| > 1",
     lab_clip_scale},
    {"growth", "paper Claim 2, Lemma 2 and eq. 9: linear growth of the adaptive step, continuity of H, projection",
     lab_growth},
    {"sgd-exercise", "exercise Q6, Q7 and its definition of beta-smoothness as printed", lab_sgd_exercise},
    {"noise-floor", "Koloskova et al. 2023: with noise, clipped SGD stops at a floor of order min(sigma, sigma^2/c)",
     lab_noise_floor},
    {"heavy-tail", "Zhang et al. 2020: infinite-variance noise, SGD blows up, clipped SGD converges", lab_heavy_tail},
    {"rnn-cliff", "Pascanu et al. 2013: a cliff in a tanh RNN's loss along W_hh, an unclipped and a clipped step at it",
     lab_rnn_cliff},
    {"rnn-temporal-order", "Pascanu et al. 2013: a tanh RNN on temporal order, success over seeds and T per rule",
     lab_rnn_temporal_order},
    {"rnn-addition", "Pascanu et al. 2013: the same on the addition task (success: squared error < 0.04)",
     lab_rnn_addition},
    {"local-clip", "Khirirat et al. 2023: workers clipping their own gradients move the fixed point, Clip21 does not",
     lab_local_clip},
};
#define N_LABS (sizeof LABS / sizeof *LABS)

clipnn_lab_options clipnn_lab_options_default(void) {
    return (clipnn_lab_options){.seed = 1, .quick = 0, .out_dir = NULL, .write = NULL,
                                .user = NULL};
}

size_t clipnn_lab_count(void) { return N_LABS; }
const char *clipnn_lab_name(size_t i) { return i < N_LABS ? LABS[i].name : NULL; }
const char *clipnn_lab_summary(size_t i) { return i < N_LABS ? LABS[i].summary : NULL; }

const char *clipnn_claim_verdict_name(clipnn_claim_verdict v) {
    switch (v) {
    case CLIPNN_CLAIM_HOLDS: return "HOLDS";
    case CLIPNN_CLAIM_FAILS: return "FAILS";
    case CLIPNN_CLAIM_HOLDS_UNDER: return "HOLDS UNDER";
    }
    return "?";
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a: a fixed, portable stream per experiment */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

clipnn_status clipnn_lab_run(const char *name, const clipnn_lab_options *opts, clipnn_lab_result *result) {
    if (!name) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "lab: no experiment name");
    const lab_entry *e = NULL;
    for (size_t i = 0; i < N_LABS; i++)
        if (!strcmp(LABS[i].name, name)) e = &LABS[i];
    if (!e) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "lab: unknown experiment '%s' (see 'clipnn lab list')", name);
    clipnn_lab_options def = clipnn_lab_options_default();
    clipnn_lab_result local;
    lab_ctx L = {.opt = opts ? opts : &def, .res = result ? result : &local, .name = e->name};
    memset(L.res, 0, sizeof *L.res);
    clipnn_rng_seed(&L.rng, L.opt->seed ^ name_hash(e->name));
    double t0 = clipnn_now_seconds();
    lab_printf(&L, "== %s: %s\n", e->name, e->summary);
    if (L.opt->quick) lab_printf(&L, "(quick: reduced sizes; verdicts may differ from the full run)\n");
    clipnn_status s = e->run(&L);
    L.res->seconds = clipnn_now_seconds() - t0;
    return s;
}

/* ----------------------------------------------------------------- text */

void lab_printf(lab_ctx *L, const char *fmt, ...) {
    if (!L->opt->write) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    L->opt->write(buf, L->opt->user);
}

void lab_claim(lab_ctx *L, const char *id, clipnn_claim_verdict v, const char *condition, const char *fmt,
               ...) {
    clipnn_lab_result *r = L->res;
    clipnn_lab_claim tmp, *c = r->n_claims < CLIPNN_LAB_MAX_CLAIMS ? &r->claims[r->n_claims++] : &tmp;
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->verdict = v;
    snprintf(c->condition, sizeof c->condition, "%s", v == CLIPNN_CLAIM_HOLDS_UNDER && condition ? condition : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->numbers, sizeof c->numbers, fmt, ap);
    va_end(ap);
    lab_printf(L, "CLAIM %s: %s%s%s (%s)\n", c->id, clipnn_claim_verdict_name(v), c->condition[0] ? " " : "",
               c->condition, c->numbers);
}

size_t lab_size(const lab_ctx *L, size_t full, size_t quick) { return L->opt->quick ? quick : full; }

int lab_log_point(uint64_t k) {
    if (k < 100) return 1;
    /* keep k when it is the first integer at or past a point 10^(e/60) of the grid */
    double e = floor(log10((double)k) * 60.0);
    return k == (uint64_t)ceil(pow(10.0, e / 60.0) - 1e-9);
}

/* --------------------------------------------------------------- traces */

void lab_plot_init(lab_plot *p, const char *title, const char *xlabel, const char *ylabel, int logx,
                   int logy) {
    memset(p, 0, sizeof *p);
    snprintf(p->title, sizeof p->title, "%s", title);
    snprintf(p->xlabel, sizeof p->xlabel, "%s", xlabel);
    snprintf(p->ylabel, sizeof p->ylabel, "%s", ylabel);
    p->logx = logx;
    p->logy = logy;
}

size_t lab_plot_series(lab_plot *p, const char *name) {
    size_t i = p->n_series < LAB_MAX_SERIES ? p->n_series++ : LAB_MAX_SERIES - 1;
    snprintf(p->series[i].name, sizeof p->series[i].name, "%s", name);
    p->series[i].dashed = 0;
    p->series[i].color = i == 0 ? 0 : p->series[i - 1].color + 1;
    return i;
}

size_t lab_plot_companion(lab_plot *p, const char *name) {
    size_t i = lab_plot_series(p, name);
    p->series[i].dashed = 1;
    p->series[i].color = i == 0 ? 0 : p->series[i - 1].color;
    return i;
}

void lab_plot_add(lab_plot *p, size_t si, double x, double y) {
    lab_series *s = &p->series[si];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = clipnn_realloc_array(s->x, cap, sizeof *nx);
        if (!nx) {
            p->nomem = 1;
            return;
        }
        s->x = nx;
        double *ny = clipnn_realloc_array(s->y, cap, sizeof *ny);
        if (!ny) {
            p->nomem = 1;
            return;
        }
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

void lab_plot_free(lab_plot *p) {
    for (size_t i = 0; i < LAB_MAX_SERIES; i++) {
        clipnn_free(p->series[i].x);
        clipnn_free(p->series[i].y);
        p->series[i].x = p->series[i].y = NULL;
        p->series[i].n = p->series[i].cap = 0;
    }
}

clipnn_status lab_plot_save(lab_ctx *L, const lab_plot *p, const char *base) {
    if (!L->opt->out_dir) return CLIPNN_OK;
    if (p->nomem) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab %s: out of memory for the %s trace", L->name, base);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%s.csv", L->opt->out_dir, L->name, base);
    FILE *f;
    clipnn_status s = clipnn_output_open(path, &f);
    if (s) return s;
    fprintf(f, "series,x,y\n");
    for (size_t i = 0; i < p->n_series; i++)
        for (size_t j = 0; j < p->series[i].n; j++)
            fprintf(f, "\"%s\",%.17g,%.17g\n", p->series[i].name, p->series[i].x[j], p->series[i].y[j]);
    if ((s = clipnn_output_close(f, "trace"))) return s;
    clipnn_svg_series ss[LAB_MAX_SERIES];
    for (size_t i = 0; i < p->n_series; i++)
        ss[i] = (clipnn_svg_series){p->series[i].name, p->series[i].x, p->series[i].y, p->series[i].n,
                                    p->series[i].color, p->series[i].dashed};
    clipnn_svg_axes ax = {p->title, p->xlabel, p->ylabel, p->logx, p->logy};
    snprintf(path, sizeof path, "%s/%s-%s.svg", L->opt->out_dir, L->name, base);
    return clipnn_svg_line_plot(path, &ax, ss, p->n_series);
}

/* ----------------------------------------------------------- small math */

double lab_clip_factor(double norm, double c) { return norm > c ? c / norm : 1.0; }

int lab_cholesky_solve(double *A, double *b, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (size_t k = 0; k < j; k++) d -= A[j * n + k] * A[j * n + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        A[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double s = A[i * n + j];
            for (size_t k = 0; k < j; k++) s -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = s / d;
        }
    }
    for (size_t i = 0; i < n; i++) { /* L z = b */
        double s = b[i];
        for (size_t k = 0; k < i; k++) s -= A[i * n + k] * b[k];
        b[i] = s / A[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { /* L^T x = z */
        double s = b[i];
        for (size_t k = i + 1; k < n; k++) s -= A[k * n + i] * b[k];
        b[i] = s / A[i * n + i];
    }
    return 0;
}

double lab_power_iteration(lab_matvec_fn mv, void *user, size_t n, size_t iters, clipnn_rng *rng,
                           double *work) {
    double *v = work, *w = work + n, lam = 0;
    for (size_t i = 0; i < n; i++) v[i] = clipnn_rng_normal(rng);
    double nv = clipnn_nrm2_d(v, n);
    for (size_t i = 0; i < n; i++) v[i] /= nv;
    for (size_t it = 0; it < iters; it++) {
        mv(v, w, user);
        /* ||A v|| with ||v|| = 1: a lower estimate that rises to the spectral norm, the
         * largest |eigenvalue|, whatever its sign (a Hessian may have negative ones) */
        lam = clipnn_nrm2_d(w, n);
        if (!(lam > 0)) return 0;
        for (size_t i = 0; i < n; i++) v[i] = w[i] / lam;
    }
    return lam;
}

/* --------------------------------------------------------------- data */

clipnn_status lab_logistic_data(lab_ctx *L, size_t max_n, double **Xo, double **yo, size_t *no,
                                size_t *dout, const char **name) {
    clipnn_data_options o = clipnn_data_options_default();
    o.test_fraction = 0;
    o.scaling = CLIPNN_SCALE_NONE; /* standardized below, with constant columns dropped */
    clipnn_dataset *ds = NULL;
    clipnn_status s = clipnn_dataset_load("breast-cancer", &o, &ds, NULL);
    if (s) return s;
    *name = "breast cancer (569 x 30, malignant/benign)";
    size_t n = clipnn_dataset_n(ds), dim = clipnn_dataset_dim(ds);
    if (max_n && n > max_n) n = max_n;
    const float *x = clipnn_dataset_x(ds), *lab = clipnn_dataset_y(ds);
    double *mean = clipnn_alloc_array(2 * dim, sizeof *mean), *sd = mean ? mean + dim : NULL;
    size_t *keep = clipnn_alloc_array(dim + 1, sizeof *keep), d = 0;
    double *X = NULL, *y = NULL;
    if (!mean || !keep) {
        s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
        goto done;
    }
    for (size_t j = 0; j < dim; j++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++) m += x[i * dim + j];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) v += (x[i * dim + j] - m) * (x[i * dim + j] - m);
        mean[j] = m;
        sd[j] = sqrt(v / (double)n);
        if (sd[j] > 1e-12) keep[d++] = j; /* a constant column would only duplicate the intercept */
    }
    X = clipnn_alloc_array(n * (d + 1), sizeof *X);
    y = clipnn_alloc_array(n, sizeof *y);
    if (!X || !y) {
        s = clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < d; k++) {
            size_t j = keep[k];
            X[i * (d + 1) + k] = (x[i * dim + j] - mean[j]) / sd[j];
        }
        X[i * (d + 1) + d] = 1.0;
        y[i] = lab[i] != 0 ? 1.0 : 0.0; /* 0 malignant, 1 benign */
    }
    *Xo = X, *yo = y, *no = n, *dout = d + 1;
    X = y = NULL;
    snprintf(L->res->data, sizeof L->res->data, "%s", *name);
done:
    clipnn_free(X), clipnn_free(y), clipnn_free(mean), clipnn_free(keep);
    clipnn_dataset_free(ds);
    return s;
}

/* ------------------------------------------------------------- logistic */

/* log(1 + e^z) without overflow */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
double lab_sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

double lab_logistic_fg(const lab_logistic *p, const double *w, double *g) {
    size_t n = p->n, d = p->d;
    double f = 0;
    if (g) memset(g, 0, d * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        const double *xi = p->X + i * d;
        double z = clipnn_dot_d(xi, w, d);
        f += softplus(z) - p->y[i] * z;
        if (g) {
            double r = lab_sigmoid(z) - p->y[i];
            for (size_t j = 0; j < d; j++) g[j] += r * xi[j];
        }
    }
    f /= (double)n;
    if (g)
        for (size_t j = 0; j < d; j++) g[j] = g[j] / (double)n + p->mu * w[j];
    return f + 0.5 * p->mu * clipnn_dot_d(w, w, d);
}

clipnn_status lab_logistic_min(const lab_logistic *p, double *w, double *fstar) {
    size_t d = p->d, n = p->n;
    double *g = clipnn_alloc_array(d * (d + 2), sizeof *g), *A = g + d, *wn = A + d * d;
    if (!g) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab: out of memory");
    memset(w, 0, d * sizeof *w);
    double f = lab_logistic_fg(p, w, g);
    for (int it = 0; it < 60 && clipnn_nrm2_d(g, d) > 1e-13; it++) {
        memset(A, 0, d * d * sizeof *A);
        for (size_t i = 0; i < n; i++) {
            const double *xi = p->X + i * d;
            double s = lab_sigmoid(clipnn_dot_d(xi, w, d)), wt = s * (1 - s) / (double)n;
            for (size_t a = 0; a < d; a++)
                for (size_t b = 0; b <= a; b++) A[a * d + b] += wt * xi[a] * xi[b];
        }
        for (size_t a = 0; a < d; a++) {
            A[a * d + a] += p->mu;
            for (size_t b = 0; b < a; b++) A[b * d + a] = A[a * d + b];
        }
        if (lab_cholesky_solve(A, g, d)) break; /* g now holds the Newton direction */
        double t = 1, fn = f;
        for (int ls = 0; ls < 40; ls++, t *= 0.5) {
            for (size_t j = 0; j < d; j++) wn[j] = w[j] - t * g[j];
            fn = lab_logistic_fg(p, wn, NULL);
            if (fn <= f) break;
        }
        memcpy(w, wn, d * sizeof *w);
        f = lab_logistic_fg(p, w, g);
    }
    *fstar = f;
    clipnn_free(g);
    return CLIPNN_OK;
}

/* ---------------------------------------------------------- noise laws */

static double clamp(double u, double c) { return u > c ? c : u < -c ? -c : u; }

double lab_noise_clipped_mean(const lab_noise *z, double x, double c) {
    if (z->k > 0) {
        double s = 0;
        for (size_t j = 0; j < z->k; j++) s += z->p[j] * clamp(x + z->v[j], c);
        return s;
    }
    if (!(z->sigma > 0)) return clamp(x, c);
    /* Y = x + sigma N(0,1): E clip(Y) = c P(Y > c) - c P(Y < -c) + E[Y; |Y| <= c] */
    double a = (-c - x) / z->sigma, b = (c - x) / z->sigma;
    double Pa = 0.5 * erfc(-a / M_SQRT2), Pb = 0.5 * erfc(-b / M_SQRT2);
    double pa = exp(-0.5 * a * a) / sqrt(2 * M_PI), pb = exp(-0.5 * b * b) / sqrt(2 * M_PI);
    return c * (0.5 * erfc(b / M_SQRT2)) - c * Pa + x * (Pb - Pa) + z->sigma * (pa - pb);
}

double lab_noise_fixed_point(const lab_noise *z, double c, double lo, double hi) {
    for (int it = 0; it < 200 && hi - lo > 1e-15 * (1 + fabs(lo) + fabs(hi)); it++) {
        double mid = 0.5 * (lo + hi);
        if (lab_noise_clipped_mean(z, mid, c) > 0) hi = mid;
        else lo = mid;
    }
    return 0.5 * (lo + hi);
}

double lab_noise_draw(const lab_noise *z, clipnn_rng *r) {
    if (z->k == 0) return z->sigma * clipnn_rng_normal(r);
    double u = clipnn_rng_uniform(r), acc = 0;
    for (size_t j = 0; j + 1 < z->k; j++) {
        acc += z->p[j];
        if (u < acc) return z->v[j];
    }
    return z->v[z->k - 1];
}

/* ---------------------------------------------------------------- bounds */

double lab_q5_bound(double gap, double gamma, double c, double K) {
    double v = 2.0 * gap / (gamma * K);
    double a = sqrt(v), b = isinf(c) ? 0.0 : v / c;
    return a > b ? a : b;
}
