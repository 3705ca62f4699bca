/* Why is the gradient zero? Each cause (docs/input-optimization.md) has a test that
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

#include "diagnose/diagnose.h"

static const char *const cause_names[CLIPNN_CAUSE_COUNT] = {
    "local-minimum", "saddle", "saturation", "precision", "parametrization", "masking",
    "vanishing-through-time", "exploding-through-time"};

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
    d->time_ratio = d->rec_radius = NAN;
}

int clipnn_diagnosis_has(const clipnn_diagnosis *d, clipnn_cause c) {
    for (size_t i = 0; i < d->n_findings; i++)
        if (d->findings[i].cause == c) return 1;
    return 0;
}

void clipnn_diag_finding(clipnn_diagnosis *d, clipnn_cause cause, const char *test, const char *remedy,
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

void clipnn_diag_check(clipnn_diagnosis *d, const char *test, int passed, const char *fmt, ...) {
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

/* ------------------------------------------------------- linear algebra */

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

/* The extreme eigenvalues of the leading m x m block of the tridiagonal
 * T ([k][k], overwritten) and the Ritz vector of the lowest, from the
 * Lanczos basis Q ([m][n]), as a unit vector into dir. V: [m][m]. */
static void ritz_extremes(double *T, double *V, const double *Q, size_t m, size_t k, size_t n, double *lmin,
                          double *lmax, double *dir) {
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
    double nd = clipnn_nrm2_d(dir, n);
    if (nd > 0)
        for (size_t t = 0; t < n; t++) dir[t] /= nd;
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
    double nq = clipnn_nrm2_d(Q, n);
    for (size_t i = 0; i < n; i++) Q[i] /= nq;
    memset(T, 0, k * k * sizeof *T);
    size_t m = 0;
    for (size_t j = 0; j < k; j++) {
        m = j + 1;
        double *q = Q + j * n;
        hvp(P, x, q, h, w, tmp);
        double alpha = clipnn_dot_d(w, q, n);
        T[j * k + j] = alpha;
        /* Full reorthogonalisation (twice is enough) keeps the Ritz
         * values honest in floating point. */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i <= j; i++) {
                double c = clipnn_dot_d(w, Q + i * n, n);
                for (size_t t = 0; t < n; t++) w[t] -= c * Q[i * n + t];
            }
        double beta = clipnn_nrm2_d(w, n);
        if (j + 1 == k || beta < 1e-12 * (fabs(alpha) + 1e-300) || beta < 1e-200) break;
        T[j * k + j + 1] = T[(j + 1) * k + j] = beta;
        for (size_t t = 0; t < n; t++) Q[(j + 1) * n + t] = w[t] / beta;
    }
    ritz_extremes(T, V, Q, m, k, n, lmin, lmax, dir);
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


static int at_target(const clipnn_diagnose_options *o, const target_state *ts, double value) {
    if (ts->known) return ts->reached;
    return !isnan(o->target) && value - o->target <= o->loss_tol;
}

/* The point under diagnosis as the generic tests see it: x (the tanh map
 * applied) in double and float32, the optimizer's gradient (gopt, in the
 * optimized variable, projected on the box; gf, in x) and the double
 * reference gd, with the scratch the curvature probe needs. */
typedef struct {
    problem *P;
    const clipnn_diagnose_options *o;
    const target_state *ts;
    const float *point;
    double tiny;
    clipnn_diagnosis *d;
    size_t n, k; /* dimension, Lanczos steps */
    double lo, hi, half;
    int tanh_param, reached;
    double *work, *x, *gd, *chain, *dir, *xt, *lw;
    float *fw, *xf, *gf, *gopt, *xp;
    size_t pinned;    /* coordinates on the box whose descent points out */
    double pinned_sq; /* their share of the squared gradient */
} probe;

static clipnn_status check_point(const probe *p) {
    if (p->tanh_param && !(isfinite(p->lo) && isfinite(p->hi)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: the tanh parametrization needs a finite box");
    for (size_t i = 0; i < p->n; i++)
        if (!isfinite(p->point[i]))
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "diagnose: coordinate %zu of the point is %g", i,
                               (double)p->point[i]);
    const clipnn_diagnose_options *o = p->o;
    if (!(o->grad_tol >= 0) || !(o->curv_tol >= 0) || !(o->fd_step >= 0))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: grad_tol, curv_tol and fd_step must be >= 0");
    return CLIPNN_OK;
}

/* work: [8n] for the vectors and the Lanczos space; fw: [4n]. */
static clipnn_status alloc_probe(probe *p) {
    size_t n = p->n, k = p->o->lanczos_steps < n ? p->o->lanczos_steps : n;
    p->k = k ? k : 1;
    size_t nwork = 8 * n + (p->k * n + 4 * n + 2 * p->k * p->k);
    p->work = clipnn_alloc_array(nwork, sizeof *p->work);
    p->fw = clipnn_alloc_array(4 * n, sizeof *p->fw);
    if (!p->work || !p->fw) {
        clipnn_free(p->work), clipnn_free(p->fw);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory for %zu inputs", n);
    }
    p->x = p->work, p->gd = p->x + n, p->chain = p->gd + n, p->dir = p->chain + n, p->xt = p->dir + n;
    p->lw = p->work + 8 * n;
    p->xf = p->fw, p->gf = p->fw + n, p->gopt = p->fw + 2 * n, p->xp = p->fw + 3 * n;
    return CLIPNN_OK;
}

/* x from the point (through the tanh map), and dx/dw. */
static void map_point(probe *p) {
    for (size_t i = 0; i < p->n; i++) {
        double w = p->point[i];
        double th = tanh(w);
        p->x[i] = p->tanh_param ? p->lo + p->half * (th + 1) : w;
        p->chain[i] = p->tanh_param ? p->half * (1 - th * th) : 1.0;
        p->xf[i] = (float)p->x[i];
    }
}

/* gf: the float32 gradient in x, analytic or a central difference of step
 * fd_step as the optimizer took it. */
static void float_gradient(probe *p) {
    const size_t n = p->n;
    p->d->value = p->P->eval_f(p->P->ctx, p->xf, p->gf);
    if (!(p->o->fd_step > 0)) return;
    const float h = (float)p->o->fd_step;
    for (size_t i = 0; i < n; i++) {
        memcpy(p->xp, p->xf, n * sizeof *p->xp);
        p->xp[i] = p->xf[i] + h;
        float fp = (float)p->P->eval_f(p->P->ctx, p->xp, NULL);
        p->xp[i] = p->xf[i] - h;
        float fm = (float)p->P->eval_f(p->P->ctx, p->xp, NULL);
        p->gf[i] = (fp - fm) / (2.0f * h);
    }
}

/* The two gradients and what they say: stalled (the optimizer's is tiny),
 * stationary (the double one is), at the target. */
static void measure_gradients(probe *p) {
    clipnn_diagnosis *d = p->d;
    const size_t n = p->n;
    float_gradient(p);
    for (size_t i = 0; i < n; i++) p->gopt[i] = (float)(p->gf[i] * p->chain[i]);
    d->grad_norm_raw = clipnn_norm(p->gopt, n, 2.0);
    for (size_t i = 0; i < n; i++)
        if (!p->tanh_param && ((p->xf[i] <= p->lo && p->gopt[i] > 0) || (p->xf[i] >= p->hi && p->gopt[i] < 0))) {
            p->pinned++;
            p->pinned_sq += (double)p->gopt[i] * p->gopt[i];
            p->gopt[i] = 0;
        }
    d->grad_norm = clipnn_norm(p->gopt, n, 2.0);
    d->value_ref = p->P->eval_d(p->P->ctx, p->x, p->gd);
    d->grad_norm_ref = clipnn_nrm2_d(p->gd, n);
    d->stalled = d->grad_norm <= p->tiny;
    d->stationary = d->grad_norm_ref <= p->tiny;
    p->reached = at_target(p->o, p->ts, d->value_ref);
    d->at_target = p->reached;
}

/* Does float32 resolve x + h - x for the finite-difference step? */
static void test_fd_step(probe *p, int off, double diff) {
    const clipnn_diagnose_options *o = p->o;
    size_t lost = 0;
    double worst = 0, xmax = 0;
    for (size_t i = 0; i < p->n; i++) {
        float up = p->xf[i] + (float)o->fd_step;
        double err = fabs(((double)up - p->xf[i]) - o->fd_step) / o->fd_step;
        lost += err > 0.1;
        worst = fmax(worst, err);
        xmax = fmax(xmax, fabs(p->xf[i]));
    }
    double spacing = xmax > 0 ? (double)nextafterf((float)xmax, INFINITY) - xmax : FLT_MIN;
    double good = cbrt(FLT_EPSILON) * fmax(1.0, xmax);
    if (!off && !lost) {
        clipnn_diag_check(p->d, "finite-difference-step", 1,
                          "step %.3g resolves x in float32; difference %.3g from the double gradient", o->fd_step,
                          diff);
        return;
    }
    char rem[256];
    snprintf(rem, sizeof rem,
             "use the analytic (backpropagated) gradient; if differences are needed, take a step near "
             "cbrt(eps32) * max(1, |x|) = %.2g in float32, or evaluate in double",
             good);
    clipnn_diag_finding(p->d, CLIPNN_CAUSE_PRECISION, "finite-difference-step", rem,
                        "step h = %.3g at |x| up to %.4g, where float32 numbers are %.3g apart: x + h is off by up to "
                        "%.0f%% of h in %zu of %zu coordinates; the central difference gives |g| = %.4g, the double "
                        "gradient |g| = %.4g",
                        o->fd_step, xmax, spacing, 100 * worst, lost, p->n, clipnn_norm(p->gf, p->n, 2.0),
                        p->d->grad_norm_ref);
}

/* Numerical precision: the float32 gradient against the double one. */
static void test_precision(probe *p) {
    clipnn_diagnosis *d = p->d;
    const size_t n = p->n;
    double diff = 0, maxd = 0;
    int f_zero = 1, d_nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        diff += ((double)p->gf[i] - p->gd[i]) * ((double)p->gf[i] - p->gd[i]);
        f_zero &= p->gf[i] == 0.0f;
        d_nonzero |= p->gd[i] != 0.0;
        maxd = fmax(maxd, fabs(p->gd[i]));
    }
    diff = sqrt(diff);
    /* off: wrong by more than 1% and by more than a hundredth of "tiny" (so
     * that rounding noise at a minimum is not called a cause) */
    const int off = diff > 1e-2 * d->grad_norm_ref && diff > 1e-2 * p->tiny;
    const double gf_norm = clipnn_norm(p->gf, n, 2.0);
    if (p->o->fd_step > 0) {
        test_fd_step(p, off, diff);
    } else if (f_zero && d_nonzero && p->reached) {
        clipnn_diag_check(d, "float32-vs-double", 1,
                          "the float32 gradient is exactly 0, the double one %.4g, but the objective is met: nothing "
                          "to fix", d->grad_norm_ref);
    } else if (f_zero && d_nonzero) {
        char rem[400];
        clipnn_diag_float_zero_remedy(p->ts, maxd, rem, sizeof rem);
        clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double", rem,
                    "the float32 gradient is exactly 0 in all %zu coordinates; the double reference gradient has norm "
                    "%.4g (largest component %.4g)",
                    n, d->grad_norm_ref, maxd);
    } else if (off) {
        clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double",
                    "float32 loses the gradient here: evaluate in double, or rescale the objective (shift logits, "
                    "subtract constants) so that the quantities that matter are not differences of large numbers",
                    "float32 gradient norm %.4g, double %.4g, difference %.4g (%.2g relative)", gf_norm,
                    d->grad_norm_ref, diff, diff / fmax(d->grad_norm_ref, DBL_MIN));
    } else {
        clipnn_diag_check(d, "float32-vs-double", 1, "float32 gradient norm %.4g, double %.4g, difference %.3g",
                          gf_norm, d->grad_norm_ref, diff);
    }
}

/* Parametrization: coordinates held on the box by the projection. */
static void test_box(probe *p) {
    clipnn_diagnosis *d = p->d;
    int explains = p->pinned > 0 && d->stalled && d->grad_norm_raw > p->tiny;
    if (explains)
        clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "box-pinned",
                    "a KKT point of the box-constrained problem: the objective keeps improving outside the box. "
                    "Widen the box if it is not a real constraint; otherwise this is the constrained optimum (a "
                    "different start or objective may lead elsewhere)",
                    "%zu of %zu coordinates sit on the box [%g, %g] with the descent direction pointing out; they "
                    "carry gradient norm %.4g of %.4g, and %.3g is left after projection",
                    p->pinned, p->n, p->lo, p->hi, sqrt(p->pinned_sq), d->grad_norm_raw, d->grad_norm);
    else
        clipnn_diag_check(d, "box-pinned", 1,
                          "%zu of %zu coordinates pinned on the box [%g, %g] (gradient %.3g of %.3g)", p->pinned, p->n,
                          p->lo, p->hi, sqrt(p->pinned_sq), d->grad_norm_raw);
}

/* Parametrization: the tanh map flattened (dx/dw tiny). */
static void test_tanh(probe *p) {
    clipnn_diagnosis *d = p->d;
    size_t sat = 0;
    double wmax = 0, gx = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->chain[i] < 1e-4 * p->half) sat++;
        wmax = fmax(wmax, fabs(p->point[i]));
        gx += (double)p->gf[i] * p->gf[i];
    }
    gx = sqrt(gx);
    if (sat > 0 && d->stalled && gx > p->tiny)
        clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "tanh-saturated",
                    "re-initialise w = atanh(0.999999 (2 (x - lo)/(hi - lo) - 1)) so that |w| <= 7.25, and keep "
                    "the step small; or optimize x directly with a box projection",
                    "%zu of %zu coordinates have |w| > 5.3 (dx/dw below 1e-4 of its peak; |w| up to %.3g): the "
                    "gradient is %.4g in x but %.4g in w",
                    sat, p->n, wmax, gx, d->grad_norm);
    else
        clipnn_diag_check(d, "tanh-saturated", 1, "%zu of %zu coordinates saturated (|w| up to %.3g)", sat, p->n, wmax);
}

/* How far along the escape direction (dir, either sign, steps 1e-3 to 1
 * inside the box) the objective keeps falling: the best decrease and its
 * signed step into d. */
static void escape_search(probe *p) {
    double best = 0, best_t = 0;
    for (int sign = -1; sign <= 1; sign += 2)
        for (double t = 1e-3; t <= 1.0 + 1e-12; t *= 10) {
            int inside = 1;
            for (size_t i = 0; i < p->n; i++) {
                p->xt[i] = p->x[i] + sign * t * p->dir[i];
                inside &= p->xt[i] >= p->lo && p->xt[i] <= p->hi;
            }
            if (!inside) continue;
            double dec = p->d->value_ref - p->P->eval_d(p->P->ctx, p->xt, NULL);
            if (dec > best) best = dec, best_t = sign * t;
        }
    p->d->escape_decrease = best;
    p->d->escape_step = best_t;
}

static void report_minimum(probe *p, double lmin, double lmax, size_t used) {
    clipnn_diagnosis *d = p->d;
    char nums[320];
    snprintf(nums, sizeof nums,
             "gradient norm %.3g; curvature in [%.4g, %.4g] over %zu Lanczos directions, none negative "
             "(tolerance %.1g); value %.6g%s",
             d->grad_norm_ref, lmin, lmax, used, p->o->curv_tol, d->value_ref,
             p->reached                                ? ", at its target"
             : p->ts->known || !isnan(p->o->target) ? ", above its target"
                                                       : " (target unknown)");
    clipnn_diag_finding(d, CLIPNN_CAUSE_LOCAL_MINIMUM, "lanczos-curvature",
                        clipnn_diag_minimum_remedy(p->ts, p->reached), "%s", nums);
}

/* Curvature at a stationary point (Lanczos): a saddle, a minimum, or flat. */
static void test_curvature(probe *p) {
    clipnn_diagnosis *d = p->d;
    double xs = 0;
    for (size_t i = 0; i < p->n; i++) xs = fmax(xs, fabs(p->x[i]));
    double h = 1e-4 * fmax(1.0, xs);
    double lmin, lmax;
    size_t used = lanczos(p->P, p->x, p->k, p->o->seed, h, &lmin, &lmax, p->dir, p->lw);
    d->min_curvature = lmin;
    d->max_curvature = lmax;
    char where[128];
    describe_direction(p->dir, p->n, where, sizeof where);
    if (lmin < -p->o->curv_tol) {
        escape_search(p);
        clipnn_diag_finding(d, CLIPNN_CAUSE_SADDLE, "lanczos-curvature",
                    "step along the escape direction (or add noise, or restart from a perturbed point): the "
                    "gradient has no component along it, so gradient descent from here cannot leave",
                    "gradient norm %.3g; Lanczos (%zu steps on Hessian-vector products, central differences h = "
                    "%.2g) finds curvature %.4g along the unit direction (%s); a step of %.3g along it lowers the "
                    "objective by %.4g (largest curvature %.4g)",
                    d->grad_norm_ref, used, h, lmin, where, d->escape_step, d->escape_decrease, lmax);
    } else if (lmax > p->o->curv_tol) {
        report_minimum(p, lmin, lmax, used);
    } else {
        clipnn_diag_check(d, "lanczos-curvature", 1,
                  "flat: curvature in [%.3g, %.3g] over %zu directions, within +-%.1g (no minimum, no saddle)", lmin,
                  lmax, used, p->o->curv_tol);
    }
}

/* Everything that does not need a model. */
clipnn_status clipnn_diagnose_problem(problem *P, const float *point, const clipnn_diagnose_options *o,
                                      const target_state *ts, double tiny, clipnn_diagnosis *d) {
    probe p = {.P = P, .o = o, .ts = ts, .point = point, .tiny = tiny, .d = d, .n = P->n,
               .lo = o->space.box_lo, .hi = o->space.box_hi, .tanh_param = o->param == CLIPNN_PARAM_TANH};
    p.half = (p.hi - p.lo) / 2;
    clipnn_status s = check_point(&p);
    if (!s) s = alloc_probe(&p);
    if (s) return s;
    map_point(&p);
    measure_gradients(&p);
    test_precision(&p);
    if (!p.tanh_param && (isfinite(p.lo) || isfinite(p.hi))) test_box(&p);
    if (p.tanh_param) test_tanh(&p);
    /* only a stationary point can be a minimum or a saddle */
    if (d->stationary)
        test_curvature(&p);
    else
        clipnn_diag_check(d, "stationarity", 1,
                  "the double gradient has norm %.4g > %.3g: not a stationary point, so neither a minimum nor a saddle",
                  d->grad_norm_ref, tiny);
    clipnn_free(p.work);
    clipnn_free(p.fw);
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
    target_state ts = {0, 0, 0};
    s = clipnn_diagnose_problem(&P, point, o, &ts, o->grad_tol, d);
    clipnn_free(c.scratch_d), clipnn_free(c.scratch_f);
    return s;
}

/* ------------------------------------------------------------ masking */

void clipnn_diagnose_masking(const double *eps, const double *robust, const double *one_step,
                             size_t n_eps, double unbounded_success, clipnn_diagnosis *d) {
    int weaker = 0, rising = 0;
    for (size_t i = 0; i < n_eps; i++) {
        if (one_step && robust[i] > one_step[i] && !weaker) {
            weaker = 1;
            clipnn_diag_finding(d, CLIPNN_CAUSE_MASKING, "iterative-vs-one-step",
                        "an iterative attack must be at least as strong as one step: its gradients are misleading "
                        "(masked). Check the attack's loss (use the margin loss), its step size, and try more steps "
                        "and restarts before trusting the robustness",
                        "at eps %.4g the iterative attack leaves %.4f of the examples unbroken, the one-step attack "
                        "only %.4f",
                        eps[i], robust[i], one_step[i]);
        }
        if (i > 0 && robust[i] > robust[i - 1] && !rising) {
            rising = 1;
            clipnn_diag_finding(
                d, CLIPNN_CAUSE_MASKING, "monotone-in-epsilon",
                "a larger budget contains every smaller one, so accuracy cannot rise with epsilon under a "
                "working attack: the attack fails to use its budget (step size, masking)",
                "%.4f of the examples unbroken at eps %.4g but %.4f at the larger eps %.4g", robust[i - 1], eps[i - 1],
                robust[i], eps[i]);
        }
    }
    if (!weaker && one_step)
        clipnn_diag_check(d, "iterative-vs-one-step", 1, "iterative at least as strong at every epsilon");
    if (!rising) clipnn_diag_check(d, "monotone-in-epsilon", 1, "the unbroken fraction never rises with epsilon");
    if (!isnan(unbounded_success)) {
        if (unbounded_success < 1.0)
            clipnn_diag_finding(d, CLIPNN_CAUSE_MASKING, "unbounded-attack",
                        "with a budget that covers the whole box any input can be reached, so a working attack "
                        "succeeds every time: gradients are masked or the attack is broken",
                        "an unbounded attack succeeds on %.2f%% of the examples, not 100%%", 100 * unbounded_success);
        else
            clipnn_diag_check(d, "unbounded-attack", 1, "an unbounded attack succeeds on 100%% of the examples");
    }
}
