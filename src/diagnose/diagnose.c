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

#include "diagnose/diagnose.h"

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

/* Everything that does not need a model. work: [8n + 3 + lanczos space]. */
clipnn_status clipnn_diagnose_problem(problem *P, const float *point, const clipnn_diagnose_options *o,
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
    d->grad_norm_raw = clipnn_norm(gopt, n, 2.0);
    for (size_t i = 0; i < n; i++)
        if (!tanh_param && ((xf[i] <= lo && gopt[i] > 0) || (xf[i] >= hi && gopt[i] < 0))) {
            pinned++;
            pinned_sq += (double)gopt[i] * gopt[i];
            gopt[i] = 0;
        }
    d->grad_norm = clipnn_norm(gopt, n, 2.0);
    d->value_ref = P->eval_d(P->ctx, x, gd);
    d->grad_norm_ref = clipnn_nrm2_d(gd, n);
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
            clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "finite-difference-step", rem,
                        "step h = %.3g at |x| up to %.4g, where float32 numbers are %.3g apart: x + h is off by up to "
                        "%.0f%% of h in %zu of %zu coordinates; the central difference gives |g| = %.4g, the double "
                        "gradient |g| = %.4g",
                        o->fd_step, xmax, spacing, 100 * worst, lost, n, clipnn_norm(gf, n, 2.0), d->grad_norm_ref);
        } else {
            clipnn_diag_check(d, "finite-difference-step", 1, "step %.3g resolves x in float32; difference %.3g from the double gradient",
                      o->fd_step, diff);
        }
    } else if (f_zero && d_nonzero) {
        clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double",
                    "the true gradient is below float32's range here (smallest float 1.4e-45): use a loss whose "
                    "gradient does not vanish (the CW margin), or evaluate the loss and its gradient in double",
                    "the float32 gradient is exactly 0 in all %zu coordinates; the double reference gradient has norm "
                    "%.4g (largest component %.4g)",
                    n, d->grad_norm_ref, maxd);
    } else if (off) {
        clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "float32-vs-double",
                    "float32 loses the gradient here: evaluate in double, or rescale the objective (shift logits, "
                    "subtract constants) so that the quantities that matter are not differences of large numbers",
                    "float32 gradient norm %.4g, double %.4g, difference %.4g (%.2g relative)", clipnn_norm(gf, n, 2.0),
                    d->grad_norm_ref, diff, diff / fmax(d->grad_norm_ref, DBL_MIN));
    } else {
        clipnn_diag_check(d, "float32-vs-double", 1, "float32 gradient norm %.4g, double %.4g, difference %.3g", clipnn_norm(gf, n, 2.0),
                  d->grad_norm_ref, diff);
    }

    /* ---- parametrization: the box and the tanh map */
    if (!tanh_param && (isfinite(lo) || isfinite(hi))) {
        int explains = pinned > 0 && d->stalled && d->grad_norm_raw > tiny;
        if (explains)
            clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "box-pinned",
                        "a KKT point of the box-constrained problem: the objective keeps improving outside the box. "
                        "Widen the box if it is not a real constraint; otherwise this is the constrained optimum (a "
                        "different start or objective may lead elsewhere)",
                        "%zu of %zu coordinates sit on the box [%g, %g] with the descent direction pointing out; they "
                        "carry gradient norm %.4g of %.4g, and %.3g is left after projection",
                        pinned, n, lo, hi, sqrt(pinned_sq), d->grad_norm_raw, d->grad_norm);
        else
            clipnn_diag_check(d, "box-pinned", 1, "%zu of %zu coordinates pinned on the box [%g, %g] (gradient %.3g of %.3g)", pinned,
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
            clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "tanh-saturated",
                        "re-initialise w = atanh(0.999999 (2 (x - lo)/(hi - lo) - 1)) so that |w| <= 7.25, and keep "
                        "the step small; or optimize x directly with a box projection",
                        "%zu of %zu coordinates have |w| > 5.3 (dx/dw below 1e-4 of its peak; |w| up to %.3g): the "
                        "gradient is %.4g in x but %.4g in w",
                        sat, n, wmax, gx, d->grad_norm);
        else
            clipnn_diag_check(d, "tanh-saturated", 1, "%zu of %zu coordinates saturated (|w| up to %.3g)", sat, n, wmax);
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
            clipnn_diag_finding(d, CLIPNN_CAUSE_SADDLE, "lanczos-curvature",
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
            clipnn_diag_finding(d, CLIPNN_CAUSE_LOCAL_MINIMUM, "lanczos-curvature",
                        reached ? "converged: a minimum where the objective has reached its target; nothing to fix"
                                : "a local minimum: restart from other points (random restarts), change the starting "
                                  "point or the objective (e.g. the margin loss)",
                        "%s", nums);
        } else {
            clipnn_diag_check(d, "lanczos-curvature", 1,
                      "flat: curvature in [%.3g, %.3g] over %zu directions, within +-%.1g (no minimum, no saddle)", lmin,
                      lmax, used, o->curv_tol);
        }
    } else {
        clipnn_diag_check(d, "stationarity", 1,
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
            clipnn_diag_finding(d, CLIPNN_CAUSE_MASKING, "monotone-in-epsilon",
                        "a larger budget contains every smaller one, so accuracy cannot rise with epsilon under a "
                        "working attack: the attack fails to use its budget (step size, masking)",
                        "%.4f of the examples unbroken at eps %.4g but %.4f at the larger eps %.4g", robust[i - 1], eps[i - 1],
                        robust[i], eps[i]);
        }
    }
    if (!weaker && one_step) clipnn_diag_check(d, "iterative-vs-one-step", 1, "iterative at least as strong at every epsilon");
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
