/* Why is the gradient zero? Each cause of SPEC section 6 has a test that
 * measures it at the point where an optimization stopped; a cause is named
 * only when its test finds it, with the numbers and a remedy.
 *
 * The point is looked at through two gradients: the one the optimizer used
 * (float32, analytic or a float32 finite difference, in the optimized
 * variable, projected on the box) and the double reference in x. "Stalled"
 * is about the first, "stationary" about the second: a stall at a point
 * that is not stationary is a precision or parametrization matter, never a
 * minimum or a saddle. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "inputopt_internal.h"

static const char *const cause_names[CLIPNN_CAUSE_COUNT] = {
    "local-minimum", "saddle", "saturation", "precision", "parametrization", "masking"};

const char *clipnn_cause_name(clipnn_cause c) {
    return (unsigned)c < CLIPNN_CAUSE_COUNT ? cause_names[c] : "unknown";
}

clipnn_diagnose_options clipnn_diagnose_options_default(void) {
    clipnn_diagnose_options o;
    memset(&o, 0, sizeof o);
    o.space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    o.param = CLIPNN_PARAM_PIXEL;
    o.grad_tol = 1e-6;
    o.target = NAN;
    o.loss_tol = 1e-6;
    o.curv_tol = 1e-6;
    o.lanczos_steps = 30;
    o.seed = 1;
    return o;
}

void clipnn_diagnosis_init(clipnn_diagnosis *d) {
    memset(d, 0, sizeof *d);
    d->value = d->value_ref = NAN;
    d->grad_norm = d->grad_norm_raw = d->grad_norm_ref = NAN;
    d->min_curvature = d->max_curvature = NAN;
    d->escape_decrease = d->escape_step = NAN;
}

int clipnn_diagnosis_has(const clipnn_diagnosis *d, clipnn_cause c) {
    for (size_t i = 0; i < d->n_findings; i++)
        if (d->findings[i].cause == c) return 1;
    return 0;
}

static void add_finding(clipnn_diagnosis *d, clipnn_cause cause, const char *test, const char *remedy,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_finding(clipnn_diagnosis *d, clipnn_cause cause, const char *test, const char *remedy,
                        const char *fmt, ...) {
    if (d->n_findings >= CLIPNN_DIAG_MAX) return;
    clipnn_finding *f = &d->findings[d->n_findings++];
    f->cause = cause;
    snprintf(f->test, sizeof f->test, "%s", test);
    snprintf(f->remedy, sizeof f->remedy, "%s", remedy);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->numbers, sizeof f->numbers, fmt, ap);
    va_end(ap);
}

static void add_check(clipnn_diagnosis *d, const char *test, int passed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_check(clipnn_diagnosis *d, const char *test, int passed, const char *fmt, ...) {
    if (d->n_checks >= CLIPNN_DIAG_MAX) return;
    clipnn_check *c = &d->checks[d->n_checks++];
    snprintf(c->test, sizeof c->test, "%s", test);
    c->passed = passed;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->numbers, sizeof c->numbers, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------- problems */

/* An objective in x (the data space) seen two ways. */
typedef struct {
    size_t n;
    double (*eval_d)(void *ctx, const double *x, double *g); /* g may be NULL */
    double (*eval_f)(void *ctx, const float *x, float *g);   /* g may be NULL */
    void *ctx;
} problem;

typedef struct {
    const clipnn_objective_fn *f;
    double *scratch_d; /* [n] */
    float *scratch_f;  /* [n] */
} fn_ctx;

static double fn_eval_d(void *ctx, const double *x, double *g) {
    fn_ctx *c = ctx;
    return c->f->eval_d(x, g ? g : c->scratch_d, c->f->user);
}

static double fn_eval_f(void *ctx, const float *x, float *g) {
    fn_ctx *c = ctx;
    size_t n = c->f->dim;
    if (c->f->eval_f) return c->f->eval_f(x, g ? g : c->scratch_f, c->f->user);
    /* No float32 path: the double one rounded, as a float32 caller would see it. */
    double *xd = c->scratch_d;
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    double *gd = xd + n;
    double v = c->f->eval_d(xd, gd, c->f->user);
    if (g)
        for (size_t i = 0; i < n; i++) g[i] = (float)gd[i];
    return (double)(float)v;
}

typedef struct {
    clipnn_model *m;
    const clipnn_objective *obj;
    const clipnn_input_space *space;
    const float *yf;
    double *yd;    /* [targets] */
    double *xd;    /* [n] model input, double */
    float *xm;     /* [n] scratch */
    float *gf;     /* [n] scratch */
    clipnn_signal *signal;  /* [n_layers], filled by the last eval_d */
    double *pre;   /* [sum of widths] */
    double *logits;
    clipnn_status status; /* first failure of a callback */
} model_ctx;

static double model_eval_d(void *ctx, const double *x, double *g) {
    model_ctx *c = ctx;
    size_t n = c->m->n_inputs;
    const clipnn_input_space *s = c->space;
    for (size_t i = 0; i < n; i++) c->xd[i] = s->mean ? (x[i] - s->mean[i]) / s->std[i] : x[i];
    double v = NAN;
    clipnn_status st = clipnn_objective_trace_d(c->m, c->obj, c->xd, c->yd, &v, g, c->logits, c->signal, c->pre);
    if (st && !c->status) c->status = st;
    if (g && s->std)
        for (size_t i = 0; i < n; i++) g[i] /= s->std[i];
    return v;
}

static double model_eval_f(void *ctx, const float *x, float *g) {
    model_ctx *c = ctx;
    double v = NAN;
    clipnn_status st = clipnn_objective_grad_space(c->m, c->obj, c->space, x, c->yf, 1, &v, g, NULL, c->xm);
    if (st && !c->status) c->status = st;
    return v;
}

/* ------------------------------------------------------- linear algebra */

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Eigenvalues (ascending order not needed) and vectors of a symmetric k x k
 * matrix A (destroyed) by cyclic Jacobi rotations; V: [k][k], column j the
 * vector of eigenvalue A[j][j]. k is small (Lanczos steps). */
static void jacobi_eigen(double *A, double *V, size_t k) {
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) V[i * k + j] = i == j;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0;
        for (size_t i = 0; i < k; i++)
            for (size_t j = i + 1; j < k; j++) off += A[i * k + j] * A[i * k + j];
        if (off < 1e-30) break;
        for (size_t p = 0; p < k; p++)
            for (size_t q = p + 1; q < k; q++) {
                double apq = A[p * k + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (A[q * k + q] - A[p * k + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t r = 0; r < k; r++) {
                    double arp = A[r * k + p], arq = A[r * k + q];
                    A[r * k + p] = c * arp - s * arq;
                    A[r * k + q] = s * arp + c * arq;
                }
                for (size_t r = 0; r < k; r++) {
                    double apr = A[p * k + r], aqr = A[q * k + r];
                    A[p * k + r] = c * apr - s * aqr;
                    A[q * k + r] = s * apr + c * aqr;
                }
                for (size_t r = 0; r < k; r++) {
                    double vrp = V[r * k + p], vrq = V[r * k + q];
                    V[r * k + p] = c * vrp - s * vrq;
                    V[r * k + q] = s * vrp + c * vrq;
                }
            }
    }
}

/* Hessian-vector product by a central difference of the double gradient:
 * error ~ h^2 |third derivative|; Hv into out. tmp: [3n]. */
static void hvp(problem *P, const double *x, const double *v, double h, double *out, double *tmp) {
    size_t n = P->n;
    double *xp = tmp, *gp = tmp + n, *gm = tmp + 2 * n;
    for (size_t i = 0; i < n; i++) xp[i] = x[i] + h * v[i];
    P->eval_d(P->ctx, xp, gp);
    for (size_t i = 0; i < n; i++) xp[i] = x[i] - h * v[i];
    P->eval_d(P->ctx, xp, gm);
    for (size_t i = 0; i < n; i++) out[i] = (gp[i] - gm[i]) / (2 * h);
}

/* Lanczos with full reorthogonalisation on Hessian-vector products: the
 * extreme curvatures and the direction of the lowest. Returns the number
 * of steps taken; dir: [n] unit vector. */
static size_t lanczos(problem *P, const double *x, size_t steps, uint64_t seed, double h, double *lmin,
                      double *lmax, double *dir, double *work) {
    size_t n = P->n, k = steps < n ? steps : n;
    double *Q = work;              /* [k][n] */
    double *w = Q + k * n;         /* [n] */
    double *tmp = w + n;           /* [3n] */
    double *T = tmp + 3 * n;       /* [k][k] */
    double *V = T + k * k;         /* [k][k] */
    clipnn_rng rng;
    clipnn_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) Q[i] = clipnn_rng_normal(&rng);
    double nq = sqrt(dot(Q, Q, n));
    for (size_t i = 0; i < n; i++) Q[i] /= nq;
    memset(T, 0, k * k * sizeof *T);
    size_t m = 0;
    for (size_t j = 0; j < k; j++) {
        m = j + 1;
        double *q = Q + j * n;
        hvp(P, x, q, h, w, tmp);
        double alpha = dot(w, q, n);
        T[j * k + j] = alpha;
        /* Full reorthogonalisation (twice is enough) keeps the Ritz
         * values honest in floating point. */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i <= j; i++) {
                double c = dot(w, Q + i * n, n);
                for (size_t t = 0; t < n; t++) w[t] -= c * Q[i * n + t];
            }
        double beta = sqrt(dot(w, w, n));
        if (j + 1 == k || beta < 1e-12 * (fabs(alpha) + 1e-300) || beta < 1e-200) break;
        T[j * k + j + 1] = T[(j + 1) * k + j] = beta;
        for (size_t t = 0; t < n; t++) Q[(j + 1) * n + t] = w[t] / beta;
    }
    /* the leading m x m block, compacted in place (destinations never pass their sources) */
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) T[i * m + j] = T[i * k + j];
    jacobi_eigen(T, V, m);
    size_t imin = 0, imax = 0;
    for (size_t i = 1; i < m; i++) {
        if (T[i * m + i] < T[imin * m + imin]) imin = i;
        if (T[i * m + i] > T[imax * m + imax]) imax = i;
    }
    *lmin = T[imin * m + imin];
    *lmax = T[imax * m + imax];
    for (size_t t = 0; t < n; t++) {
        double s = 0;
        for (size_t i = 0; i < m; i++) s += V[i * m + imin] * Q[i * n + t];
        dir[t] = s;
    }
    double nd = sqrt(dot(dir, dir, n));
    if (nd > 0)
        for (size_t t = 0; t < n; t++) dir[t] /= nd;
    return m;
}

/* The largest components of a unit direction, as "x2 = 1.000, x7 = -0.12". */
static void describe_direction(const double *dir, size_t n, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    int taken[3] = {-1, -1, -1};
    for (int r = 0; r < 3 && (size_t)r < n; r++) {
        int best = -1;
        for (size_t i = 0; i < n; i++) {
            if ((int)i == taken[0] || (int)i == taken[1]) continue;
            if (best < 0 || fabs(dir[i]) > fabs(dir[best])) best = (int)i;
        }
        if (best < 0 || fabs(dir[best]) < 1e-3) break;
        taken[r] = best;
        used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0, "%sx%d = %.3f", r ? ", " : "", best + 1,
                                 dir[best]);
        if (used >= cap) break;
    }
}

/* ------------------------------------------------------ the generic tests */

typedef struct {
    int known;   /* the objective knows whether it is reached */
    int reached;
} target_state;

static int at_target(const clipnn_diagnose_options *o, const target_state *ts, double value) {
    if (ts->known) return ts->reached;
    return !isnan(o->target) && value - o->target <= o->loss_tol;
}

static double norm2f(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

/* Everything that does not need a model. work: [8n + 3 + lanczos space]. */
static clipnn_status diagnose_problem(problem *P, const float *point, const clipnn_diagnose_options *o,
                                      const target_state *ts, double tiny, clipnn_diagnosis *d) {
    const size_t n = P->n;
    const double lo = o->space.box_lo, hi = o->space.box_hi, half = (hi - lo) / 2;
    const int tanh_param = o->param == CLIPNN_PARAM_TANH;
    if (tanh_param && !(isfinite(lo) && isfinite(hi)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: the tanh parametrization needs a finite box");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(point[i]))
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "diagnose: coordinate %zu of the point is %g", i, (double)point[i]);
    if (!(o->grad_tol >= 0) || !(o->curv_tol >= 0) || !(o->fd_step >= 0))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: grad_tol, curv_tol and fd_step must be >= 0");
    size_t k = o->lanczos_steps < n ? o->lanczos_steps : n;
    if (k == 0) k = 1;
    size_t nwork = 8 * n + (k * n + 4 * n + 2 * k * k);
    double *work = clipnn_alloc_array(nwork, sizeof *work);
    float *fw = clipnn_alloc_array(4 * n, sizeof *fw);
    if (!work || !fw) {
        clipnn_free(work), clipnn_free(fw);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory for %zu inputs", n);
    }
    double *x = work, *gd = x + n, *chain = gd + n, *dir = chain + n, *xt = dir + n, *lw = work + 8 * n;
    float *xf = fw, *gf = fw + n, *gopt = fw + 2 * n, *xp = fw + 3 * n;
    for (size_t i = 0; i < n; i++) {
        double w = point[i];
        double th = tanh(w);
        x[i] = tanh_param ? lo + half * (th + 1) : w;
        chain[i] = tanh_param ? half * (1 - th * th) : 1.0;
        xf[i] = (float)x[i];
    }
    /* the gradient the optimizer used */
    d->value = P->eval_f(P->ctx, xf, gf);
    if (o->fd_step > 0) {
        const float h = (float)o->fd_step;
        for (size_t i = 0; i < n; i++) {
            memcpy(xp, xf, n * sizeof *xp);
            xp[i] = xf[i] + h;
            float fp = (float)P->eval_f(P->ctx, xp, NULL);
            xp[i] = xf[i] - h;
            float fm = (float)P->eval_f(P->ctx, xp, NULL);
            gf[i] = (fp - fm) / (2.0f * h);
        }
    }
    size_t pinned = 0;
    double pinned_sq = 0;
    for (size_t i = 0; i < n; i++) gopt[i] = (float)(gf[i] * chain[i]);
    d->grad_norm_raw = norm2f(gopt, n);
    for (size_t i = 0; i < n; i++)
        if (!tanh_param && ((xf[i] <= lo && gopt[i] > 0) || (xf[i] >= hi && gopt[i] < 0))) {
            pinned++;
            pinned_sq += (double)gopt[i] * gopt[i];
            gopt[i] = 0;
        }
    d->grad_norm = norm2f(gopt, n);
    d->value_ref = P->eval_d(P->ctx, x, gd);
    d->grad_norm_ref = sqrt(dot(gd, gd, n));
    d->stalled = d->grad_norm <= tiny;
    d->stationary = d->grad_norm_ref <= tiny;
    const int reached = at_target(o, ts, d->value_ref);
    d->at_target = reached;

    /* ---- numerical precision */
    double diff = 0, maxd = 0;
    int f_zero = 1, d_nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        diff += ((double)gf[i] - gd[i]) * ((double)gf[i] - gd[i]);
        f_zero &= gf[i] == 0.0f;
        d_nonzero |= gd[i] != 0.0;
        maxd = fmax(maxd, fabs(gd[i]));
    }
    diff = sqrt(diff);
    /* off: wrong by more than 1% and by more than a hundredth of "tiny" (so
     * that rounding noise at a minimum is not called a cause) */
    const int off = diff > 1e-2 * d->grad_norm_ref && diff > 1e-2 * tiny;
    if (o->fd_step > 0) {
        size_t lost = 0;
        double worst = 0, xmax = 0;
        for (size_t i = 0; i < n; i++) {
            float up = xf[i] + (float)o->fd_step;
            double err = fabs(((double)up - xf[i]) - o->fd_step) / o->fd_step;
            lost += err > 0.1;
            worst = fmax(worst, err);
            xmax = fmax(xmax, fabs(xf[i]));
        }
        double spacing = xmax > 0 ? (double)nextafterf((float)xmax, INFINITY) - xmax : FLT_MIN;
        double good = cbrt(FLT_EPSILON) * fmax(1.0, xmax);
        if (off || lost) {
            char rem[256];
            snprintf(rem, sizeof rem,
                     "use the analytic (backpropagated) gradient; if differences are needed, take a step near "
                     "cbrt(eps32) * max(1, |x|) = %.2g in float32, or evaluate in double",
                     good);
            add_finding(d, CLIPNN_CAUSE_PRECISION, "finite-difference-step", rem,
                        "step h = %.3g at |x| up to %.4g, where float32 numbers are %.3g apart: x + h is off by up to "
                        "%.0f%% of h in %zu of %zu coordinates; the central difference gives |g| = %.4g, the double "
                        "gradient |g| = %.4g",
                        o->fd_step, xmax, spacing, 100 * worst, lost, n, norm2f(gf, n), d->grad_norm_ref);
        } else {
            add_check(d, "finite-difference-step", 1, "step %.3g resolves x in float32; difference %.3g from the double gradient",
                      o->fd_step, diff);
        }
    } else if (f_zero && d_nonzero) {
        add_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double",
                    "the true gradient is below float32's range here (smallest float 1.4e-45): use a loss whose "
                    "gradient does not vanish (the CW margin), or evaluate the loss and its gradient in double",
                    "the float32 gradient is exactly 0 in all %zu coordinates; the double reference gradient has norm "
                    "%.4g (largest component %.4g)",
                    n, d->grad_norm_ref, maxd);
    } else if (off) {
        add_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double",
                    "float32 loses the gradient here: evaluate in double, or rescale the objective (shift logits, "
                    "subtract constants) so that the quantities that matter are not differences of large numbers",
                    "float32 gradient norm %.4g, double %.4g, difference %.4g (%.2g relative)", norm2f(gf, n),
                    d->grad_norm_ref, diff, diff / fmax(d->grad_norm_ref, DBL_MIN));
    } else {
        add_check(d, "float32-vs-double", 1, "float32 gradient norm %.4g, double %.4g, difference %.3g", norm2f(gf, n),
                  d->grad_norm_ref, diff);
    }

    /* ---- parametrization: the box and the tanh map */
    if (!tanh_param && (isfinite(lo) || isfinite(hi))) {
        int explains = pinned > 0 && d->stalled && d->grad_norm_raw > tiny;
        if (explains)
            add_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "box-pinned",
                        "a KKT point of the box-constrained problem: the objective keeps improving outside the box. "
                        "Widen the box if it is not a real constraint; otherwise this is the constrained optimum (a "
                        "different start or objective may lead elsewhere)",
                        "%zu of %zu coordinates sit on the box [%g, %g] with the descent direction pointing out; they "
                        "carry gradient norm %.4g of %.4g, and %.3g is left after projection",
                        pinned, n, lo, hi, sqrt(pinned_sq), d->grad_norm_raw, d->grad_norm);
        else
            add_check(d, "box-pinned", 1, "%zu of %zu coordinates pinned on the box [%g, %g] (gradient %.3g of %.3g)", pinned,
                      n, lo, hi, sqrt(pinned_sq), d->grad_norm_raw);
    }
    if (tanh_param) {
        size_t sat = 0;
        double wmax = 0, gx = 0;
        for (size_t i = 0; i < n; i++) {
            if (chain[i] < 1e-4 * half) sat++;
            wmax = fmax(wmax, fabs(point[i]));
            gx += (double)gf[i] * gf[i];
        }
        gx = sqrt(gx);
        if (sat > 0 && d->stalled && gx > tiny)
            add_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "tanh-saturated",
                        "re-initialise w = atanh(0.999999 (2 (x - lo)/(hi - lo) - 1)) so that |w| <= 7.25, and keep "
                        "the step small; or optimize x directly with a box projection",
                        "%zu of %zu coordinates have |w| > 5.3 (dx/dw below 1e-4 of its peak; |w| up to %.3g): the "
                        "gradient is %.4g in x but %.4g in w",
                        sat, n, wmax, gx, d->grad_norm);
        else
            add_check(d, "tanh-saturated", 1, "%zu of %zu coordinates saturated (|w| up to %.3g)", sat, n, wmax);
    }

    /* ---- curvature: only a stationary point can be a minimum or a saddle */
    if (d->stationary) {
        double xs = 0;
        for (size_t i = 0; i < n; i++) xs = fmax(xs, fabs(x[i]));
        double h = 1e-4 * fmax(1.0, xs);
        double lmin, lmax;
        size_t used = lanczos(P, x, k, o->seed, h, &lmin, &lmax, dir, lw);
        d->min_curvature = lmin;
        d->max_curvature = lmax;
        char where[128];
        describe_direction(dir, n, where, sizeof where);
        if (lmin < -o->curv_tol) {
            /* how far along the escape direction the objective keeps falling */
            double best = 0, best_t = 0;
            for (int sign = -1; sign <= 1; sign += 2)
                for (double t = 1e-3; t <= 1.0 + 1e-12; t *= 10) {
                    int inside = 1;
                    for (size_t i = 0; i < n; i++) {
                        xt[i] = x[i] + sign * t * dir[i];
                        inside &= xt[i] >= lo && xt[i] <= hi;
                    }
                    if (!inside) continue;
                    double dec = d->value_ref - P->eval_d(P->ctx, xt, NULL);
                    if (dec > best) best = dec, best_t = sign * t;
                }
            d->escape_decrease = best;
            d->escape_step = best_t;
            add_finding(d, CLIPNN_CAUSE_SADDLE, "lanczos-curvature",
                        "step along the escape direction (or add noise, or restart from a perturbed point): the "
                        "gradient has no component along it, so gradient descent from here cannot leave",
                        "gradient norm %.3g; Lanczos (%zu steps on Hessian-vector products, central differences h = "
                        "%.2g) finds curvature %.4g along the unit direction (%s); a step of %.3g along it lowers the "
                        "objective by %.4g (largest curvature %.4g)",
                        d->grad_norm_ref, used, h, lmin, where, best_t, best, lmax);
        } else if (lmax > o->curv_tol) {
            char nums[320];
            snprintf(nums, sizeof nums,
                     "gradient norm %.3g; curvature in [%.4g, %.4g] over %zu Lanczos directions, none negative "
                     "(tolerance %.1g); value %.6g%s",
                     d->grad_norm_ref, lmin, lmax, used, o->curv_tol, d->value_ref,
                     reached                 ? ", at its target"
                     : ts->known || !isnan(o->target) ? ", above its target"
                                             : " (target unknown)");
            add_finding(d, CLIPNN_CAUSE_LOCAL_MINIMUM, "lanczos-curvature",
                        reached ? "converged: a minimum where the objective has reached its target; nothing to fix"
                                : "a local minimum: restart from other points (random restarts), change the starting "
                                  "point or the objective (e.g. the margin loss)",
                        "%s", nums);
        } else {
            add_check(d, "lanczos-curvature", 1,
                      "flat: curvature in [%.3g, %.3g] over %zu directions, within +-%.1g (no minimum, no saddle)", lmin,
                      lmax, used, o->curv_tol);
        }
    } else {
        add_check(d, "stationarity", 1,
                  "the double gradient has norm %.4g > %.3g: not a stationary point, so neither a minimum nor a saddle",
                  d->grad_norm_ref, tiny);
    }
    clipnn_free(work);
    clipnn_free(fw);
    return CLIPNN_OK;
}

clipnn_status clipnn_diagnose_fn(const clipnn_objective_fn *f, const float *point,
                                 const clipnn_diagnose_options *o, clipnn_diagnosis *d) {
    if (!f || !f->eval_d || !point || !o || !d || f->dim == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: NULL argument or empty objective");
    clipnn_status s = clipnn_space_check(&o->space);
    if (s) return s;
    if (o->space.mean) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: a function takes no preprocessing");
    clipnn_diagnosis_init(d);
    fn_ctx c = {f, clipnn_alloc_array(2 * f->dim, sizeof(double)), clipnn_alloc_array(f->dim, sizeof(float))};
    if (!c.scratch_d || !c.scratch_f) {
        clipnn_free(c.scratch_d), clipnn_free(c.scratch_f);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory");
    }
    problem P = {f->dim, fn_eval_d, fn_eval_f, &c};
    target_state ts = {0, 0};
    s = diagnose_problem(&P, point, o, &ts, o->grad_tol, d);
    clipnn_free(c.scratch_d), clipnn_free(c.scratch_f);
    return s;
}

/* ------------------------------------------------------- the model's tests */

/* An input gradient below this fraction of the signal at the top layer has
 * vanished on the way down. */
#define VANISHING 1e-5

static double act_deriv_peak(clipnn_act a) { return a == CLIPNN_ACT_SIGMOID ? 0.25 : 1.0; }

/* -ln of float32's smallest subnormal and smallest normal number: the
 * softmax margins past which exp(-margin) is 0, or inexact, in float32. */
#define LN_FLT_TRUE_MIN 103.2789
#define LN_FLT_MIN 87.3365

static void model_tests(model_ctx *c, const clipnn_diagnose_options *o, int reached, clipnn_diagnosis *d,
                        const double *x) {
    clipnn_model *m = c->m;
    const clipnn_objective *obj = c->obj;
    const size_t L = m->n_layers, k = clipnn_model_n_outputs(m);
    const int stuck = d->stalled || d->stationary;
    /* the double pass again at the point, for the signal and pre-activations */
    model_eval_d(c, x, NULL);
    size_t top = obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? obj->layer : L - 1;

    /* where the backward signal dies */
    char trail[320];
    size_t used = (size_t)snprintf(trail, sizeof trail, "d/d(top output) %.3g", c->signal[top].out_norm);
    for (size_t l = top + 1; l-- > 0 && used < sizeof trail;)
        used += (size_t)snprintf(trail + used, sizeof trail - used, "; layer %zu %s: %.3g -> %.3g, dense: %.3g", l,
                                 clipnn_act_name(m->layers[l].act), c->signal[l].out_norm, c->signal[l].pre_norm,
                                 c->signal[l].in_norm);
    add_check(d, "backward-signal", 1, "%s", trail);

    size_t off = 0;
    int found_sat = 0, found_dead = 0, found_ignored = 0;
    for (size_t l = 0; l <= top; l++) {
        const clipnn_layer *Ly = &m->layers[l];
        const double *z = c->pre + off;
        off += Ly->out;
        const clipnn_signal *sg = &c->signal[l];
        if (Ly->act == CLIPNN_ACT_SIGMOID || Ly->act == CLIPNN_ACT_TANH) {
            size_t sat = 0;
            double zmax = 0;
            for (size_t u = 0; u < Ly->out; u++) {
                double dv = clipnn_act_deriv_d(Ly->act, z[u]) / act_deriv_peak(Ly->act);
                sat += dv < 1e-4;
                zmax = fmax(zmax, fabs(z[u]));
            }
            int kills = sg->out_norm > 0 && sg->pre_norm <= 1e-3 * sg->out_norm;
            if (sat && kills && stuck && !reached && !found_sat) {
                found_sat = 1;
                int output = l == L - 1 && Ly->act == CLIPNN_ACT_SIGMOID;
                add_finding(d, CLIPNN_CAUSE_SATURATION, output ? "saturated-output" : "saturated-units",
                            output ? "the model outputs probabilities through a sigmoid, and a loss on probabilities "
                                     "(MSE) saturates when the output is confidently wrong: use the logits with "
                                     "sigmoid cross-entropy (BCE on logits, gradient sigmoid(z) - y), or start elsewhere"
                                   : "saturated hidden units: start from another point, rescale the input, or use a "
                                     "non-saturating activation (ReLU, GELU) in the model",
                            "layer %zu (%s%s): %zu of %zu units saturated (derivative below 1e-4 of its peak, |z| up to "
                            "%.3g); the backward signal is %.4g at the layer's output and %.4g after its derivative; "
                            "objective %.6g, not at its target",
                            l, clipnn_act_name(Ly->act), output ? ", the output layer" : "", sat, Ly->out, zmax,
                            sg->out_norm, sg->pre_norm, d->value_ref);
            } else {
                add_check(d, "saturated-units", 1, "layer %zu (%s): %zu of %zu units saturated, signal %.3g -> %.3g", l,
                          clipnn_act_name(Ly->act), sat, Ly->out, sg->out_norm, sg->pre_norm);
            }
        } else if (Ly->act == CLIPNN_ACT_RELU) {
            size_t dead = 0;
            double zbest = -INFINITY;
            for (size_t u = 0; u < Ly->out; u++) {
                dead += z[u] <= 0;
                zbest = fmax(zbest, z[u]);
            }
            int kills = sg->out_norm > 0 && sg->pre_norm == 0;
            if (kills && stuck && !reached && !found_dead) {
                found_dead = 1;
                add_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "dead-relu",
                            "no small change of the input reaches an active unit: start from another point (random "
                            "start), or use a smooth activation (GELU, softplus) whose gradient never vanishes exactly",
                            "layer %zu: %zu of %zu ReLU units inactive for this input (largest pre-activation %.4g); the "
                            "backward signal is %.4g at the layer's output and exactly 0 after it",
                            l, dead, Ly->out, zbest, sg->out_norm);
            } else {
                add_check(d, "dead-relu", 1, "layer %zu: %zu of %zu ReLU units inactive", l, dead, Ly->out);
            }
        }
        /* the dense transpose: a signal the weights do not pass on */
        double scale = 0;
        const float *W = m->params + Ly->w_offset;
        for (size_t i = 0; i < Ly->in * Ly->out; i++) scale += (double)W[i] * W[i];
        scale = sqrt(scale);
        if (sg->pre_norm > 0 && sg->in_norm <= 1e-9 * sg->pre_norm * scale && stuck && !reached && !found_ignored) {
            found_ignored = 1;
            add_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "ignored-directions",
                        "the change the objective wants lies in directions the weights do not see (the null space of "
                        "W^T): no input change can produce it; change the objective or the model",
                        "layer %zu: the signal %.4g after the activation becomes %.3g through W^T (||W|| = %.3g)", l,
                        sg->pre_norm, sg->in_norm, scale);
        }
    }
    /* input features the first layer ignores entirely */
    {
        const clipnn_layer *L0 = &m->layers[0];
        const float *W = m->params + L0->w_offset;
        size_t ignored = 0;
        for (size_t i = 0; i < L0->in; i++) {
            int zero = 1;
            for (size_t u = 0; u < L0->out && zero; u++) zero = W[u * L0->in + i] == 0.0f;
            ignored += zero;
        }
        add_check(d, "ignored-inputs", 1, "%zu of %zu input features have all-zero first-layer weights (the model "
                  "cannot see them)", ignored, L0->in);
    }
    /* probability outputs */
    if (m->layers[L - 1].act == CLIPNN_ACT_SIGMOID)
        add_check(d, "probability-output", 0, "the last layer is a sigmoid: the model outputs probabilities, and losses "
                  "on them saturate when confidently wrong");
    /* the softmax */
    int cls = obj->kind == CLIPNN_OBJ_TARGET_CLASS || obj->kind == CLIPNN_OBJ_LEAVE_CLASS;
    if (cls && obj->loss == CLIPNN_LOSS_XENT) {
        size_t y = (size_t)c->yd[0], other = y == 0 ? 1 : 0;
        for (size_t j = 0; j < k; j++)
            if (j != y && c->logits[j] > c->logits[other]) other = j;
        double margin = c->logits[y] - c->logits[other];
        double dz = c->signal[L - 1].out_norm;
        if (stuck && !reached && dz <= o->grad_tol) {
            char range[160] = "";
            if (fabs(margin) > LN_FLT_TRUE_MIN)
                snprintf(range, sizeof range, ", below float32's smallest number (margins past %.1f): exactly 0 in float32",
                         LN_FLT_TRUE_MIN);
            else if (fabs(margin) > LN_FLT_MIN)
                snprintf(range, sizeof range, ", a float32 subnormal (margins past %.1f) with few digits left", LN_FLT_MIN);
            add_finding(d, CLIPNN_CAUSE_SATURATION, "softmax-margin",
                        "the cross-entropy saturates once one class leads by this much: use the CW margin loss "
                        "(gradient +-1 on two logits whatever the margin), or compute the loss in double / log space",
                        "class %zu leads class %zu by %.4g logits, so the softmax gradient is about exp(-%.4g) = %.3g%s; "
                        "d objective / d logits has norm %.3g",
                        margin > 0 ? y : other, margin > 0 ? other : y, fabs(margin), fabs(margin), exp(-fabs(margin)),
                        range, dz);
        }
        else
            add_check(d, "softmax-margin", 1, "margin of class %zu over the best other: %.4g logits; d/d logits %.3g", y,
                      margin, dz);
    }
    /* logit shift: a constant added to every logit must change nothing */
    if (cls && m->layers[L - 1].act == CLIPNN_ACT_IDENTITY) {
        clipnn_model *mc = NULL;
        float *xf = c->xm, *g0 = c->gf;
        if (clipnn_model_clone(m, &mc) == CLIPNN_OK) {
            size_t n = m->n_inputs;
            float *g1 = clipnn_alloc_array(2 * n, sizeof *g1), *xs = g1 ? g1 + n : NULL;
            if (g1) {
                for (size_t i = 0; i < n; i++) xs[i] = (float)x[i];
                double v0 = NAN, v1 = NAN;
                clipnn_objective_grad_space(m, obj, c->space, xs, c->yf, 1, &v0, g0, NULL, xf);
                const double shift = 64.0;
                float *b = mc->params + mc->layers[L - 1].b_offset;
                for (size_t j = 0; j < k; j++) b[j] += (float)shift;
                clipnn_objective_grad_space(mc, obj, c->space, xs, c->yf, 1, &v1, g1, NULL, xf);
                double gd = 0, gn = 0;
                for (size_t i = 0; i < n; i++) {
                    gd += ((double)g1[i] - g0[i]) * ((double)g1[i] - g0[i]);
                    gn += (double)g0[i] * g0[i];
                }
                gd = sqrt(gd), gn = sqrt(gn);
                /* Rounding z + 64 in float32 moves each logit by up to
                 * ulp(|z| + 64) / 2; the loss may move by as much. */
                double zmax = 0;
                for (size_t j = 0; j < k; j++) zmax = fmax(zmax, fabs(c->logits[j]));
                double tol = 4 * FLT_EPSILON * (zmax + shift);
                int changed = fabs(v1 - v0) > tol + 1e-6 * fabs(v0) || (gd > 1e-2 * gn && gd > o->grad_tol);
                if (changed)
                    add_finding(d, CLIPNN_CAUSE_PRECISION, "logit-shift",
                                "the result depends on a constant shift of the logits, which mathematically changes "
                                "nothing: float32 is losing digits to the logits' common offset; recentre the logits "
                                "(subtract their mean through the last bias) or evaluate in double",
                                "adding %.0f to every logit changes the objective by %.3g (allowed %.2g) and the "
                                "gradient by %.3g (norm %.3g)",
                                shift, fabs(v1 - v0), tol, gd, gn);
                else
                    add_check(d, "logit-shift", 1, "adding %.0f to every logit changes the objective by %.3g and the "
                              "gradient by %.3g", shift, fabs(v1 - v0), gd);
                clipnn_free(g1);
            }
            clipnn_model_free(mc);
        }
    }
}

/* A flat stretch where the network kills the signal (saturated units, dead
 * ReLUs, ignored directions) may curve upwards a little, but it is that
 * flatness, not a minimum of the objective, that stops the descent: the
 * local-minimum finding becomes a check. */
static void demote_plateau_minimum(clipnn_diagnosis *d) {
    int flat = 0;
    for (size_t i = 0; i < d->n_findings; i++) {
        const char *t = d->findings[i].test;
        flat |= !strcmp(t, "saturated-units") || !strcmp(t, "saturated-output") || !strcmp(t, "dead-relu") ||
                !strcmp(t, "ignored-directions");
    }
    if (!flat) return;
    size_t w = 0;
    for (size_t i = 0; i < d->n_findings; i++) {
        if (d->findings[i].cause == CLIPNN_CAUSE_LOCAL_MINIMUM) {
            add_check(d, "lanczos-curvature", 1, "no negative curvature (%.3g to %.3g), but the network's own flatness "
                      "found below explains the stall better than a minimum", d->min_curvature, d->max_curvature);
            continue;
        }
        d->findings[w++] = d->findings[i];
    }
    d->n_findings = w;
}

clipnn_status clipnn_diagnose_model(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                    const float *point, const clipnn_diagnose_options *o,
                                    clipnn_diagnosis *d) {
    if (!m || !obj || !point || !o || !d) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: NULL argument");
    clipnn_status s = clipnn_objective_check(m, obj);
    if (!s) s = clipnn_space_check(&o->space);
    if (s) return s;
    if (obj->kind != CLIPNN_OBJ_MAXIMIZE_UNIT && !y) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: target missing");
    clipnn_diagnosis_init(d);
    const size_t n = m->n_inputs, L = m->n_layers, k = clipnn_model_n_outputs(m);
    size_t widths = 0;
    for (size_t l = 0; l < L; l++) widths += m->layers[l].out;
    size_t ny = obj->kind == CLIPNN_OBJ_TARGET_OUTPUT ? k : 1;
    model_ctx c = {0};
    c.m = m, c.obj = obj, c.space = &o->space, c.yf = y;
    double *dblock = clipnn_alloc_array(ny + 2 * n + widths + k, sizeof *dblock);
    float *fblock = clipnn_alloc_array(2 * n, sizeof *fblock);
    c.signal = clipnn_alloc_array(L, sizeof *c.signal);
    if (!dblock || !fblock || !c.signal) {
        clipnn_free(dblock), clipnn_free(fblock), clipnn_free(c.signal);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory");
    }
    c.yd = dblock, c.xd = dblock + ny, c.pre = c.xd + n, c.logits = c.pre + widths;
    double *x = c.logits + k;
    c.xm = fblock, c.gf = fblock + n;
    for (size_t j = 0; j < ny && y; j++) c.yd[j] = y[j];
    problem P = {n, model_eval_d, model_eval_f, &c};
    /* whether the objective is met, from the float32 path at the point */
    const double lo = o->space.box_lo, hi = o->space.box_hi;
    for (size_t i = 0; i < n; i++)
        x[i] = o->param == CLIPNN_PARAM_TANH ? lo + (hi - lo) / 2 * (tanh((double)point[i]) + 1) : point[i];
    for (size_t i = 0; i < n; i++) c.xm[i] = (float)x[i];
    int reached = 0;
    double v;
    float *xs = c.gf; /* scratch: the point in x, float */
    memcpy(xs, c.xm, n * sizeof *xs);
    s = clipnn_objective_grad_space(m, obj, &o->space, xs, y, 1, &v, NULL, &reached, c.xm);
    target_state ts = {obj->kind != CLIPNN_OBJ_MAXIMIZE_UNIT, reached};
    /* Tiny for a network: at most grad_tol, or less than VANISHING of the
     * signal the objective sends into the top layer (the network loses
     * the rest on the way down). */
    double tiny = o->grad_tol;
    if (!s) {
        model_eval_d(&c, x, NULL);
        size_t top = obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? obj->layer : L - 1;
        tiny = fmax(tiny, VANISHING * c.signal[top].out_norm);
    }
    if (!s) s = diagnose_problem(&P, point, o, &ts, tiny, d);
    if (!s) s = c.status;
    if (!s) {
        model_tests(&c, o, reached, d, x);
        s = c.status;
    }
    if (!s) demote_plateau_minimum(d);
    clipnn_free(dblock), clipnn_free(fblock), clipnn_free(c.signal);
    return s;
}

/* ------------------------------------------------------------ masking */

void clipnn_diagnose_masking(const double *eps, const double *robust, const double *one_step,
                             size_t n_eps, double unbounded_success, clipnn_diagnosis *d) {
    int weaker = 0, rising = 0;
    for (size_t i = 0; i < n_eps; i++) {
        if (one_step && robust[i] > one_step[i] && !weaker) {
            weaker = 1;
            add_finding(d, CLIPNN_CAUSE_MASKING, "iterative-vs-one-step",
                        "an iterative attack must be at least as strong as one step: its gradients are misleading "
                        "(masked). Check the attack's loss (use the margin loss), its step size, and try more steps "
                        "and restarts before trusting the robustness",
                        "at eps %.4g the iterative attack leaves %.4f of the examples unbroken, the one-step attack "
                        "only %.4f",
                        eps[i], robust[i], one_step[i]);
        }
        if (i > 0 && robust[i] > robust[i - 1] && !rising) {
            rising = 1;
            add_finding(d, CLIPNN_CAUSE_MASKING, "monotone-in-epsilon",
                        "a larger budget contains every smaller one, so accuracy cannot rise with epsilon under a "
                        "working attack: the attack fails to use its budget (step size, masking)",
                        "%.4f of the examples unbroken at eps %.4g but %.4f at the larger eps %.4g", robust[i - 1], eps[i - 1],
                        robust[i], eps[i]);
        }
    }
    if (!weaker && one_step) add_check(d, "iterative-vs-one-step", 1, "iterative at least as strong at every epsilon");
    if (!rising) add_check(d, "monotone-in-epsilon", 1, "the unbroken fraction never rises with epsilon");
    if (!isnan(unbounded_success)) {
        if (unbounded_success < 1.0)
            add_finding(d, CLIPNN_CAUSE_MASKING, "unbounded-attack",
                        "with a budget that covers the whole box any input can be reached, so a working attack "
                        "succeeds every time: gradients are masked or the attack is broken",
                        "an unbounded attack succeeds on %.2f%% of the examples, not 100%%", 100 * unbounded_success);
        else
            add_check(d, "unbounded-attack", 1, "an unbounded attack succeeds on 100%% of the examples");
    }
}
