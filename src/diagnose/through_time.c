/* Why is the input gradient of a recurrent model zero or huge: the
 * gradient through time. Backpropagation through time multiplies
 * d objective / d h_t by the step's Jacobian diag(f'(a_t)) W_hh^T (a tanh
 * RNN; a gated cell's depends on its gates) once per step back, so the
 * share of the gradient that reaches x_1 from a loss at step T has been
 * multiplied T - 1 times: it vanishes when the product shrinks (spectral
 * radius of W_hh below 1, saturated units) and explodes when it grows.
 * The test measures that share, ||d/dx_1|| / ||d/dx_T||, in double (the
 * reference path, which float32 cannot follow below 1e-45) and in float32,
 * and reads the spectral radius of W_hh's gate blocks as evidence. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diagnose/diagnose.h"

/* The share of the gradient at x_1 below (above) which it has vanished
 * (exploded) on the way back: the network tests' VANISHING fraction, and
 * its inverse. */
#define TIME_VANISHING 1e-5
#define TIME_EXPLODING 1e5

/* One diagnosis: the model input and targets in float and double, both
 * gradients, their norms step by step. */
typedef struct {
    clipnn_model *m;
    const clipnn_objective *obj;
    const clipnn_diagnose_options *o;
    size_t T, D, n, k, ny;
    clipnn_loss_options lo;
    double sign; /* the objective is the loss (1) or its negative (leave-class, -1) */
    float *xf, *yf, *gf;
    double *xd, *yd, *gd;
    double *norm_f, *norm_d; /* [T] */
} through_time;

static clipnn_status check_objective(const clipnn_model *m, const clipnn_objective *obj, const float *y,
                                     const clipnn_diagnose_options *o) {
    if (m->every_step)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "diagnose: a recurrent model with an output at every step; the "
                           "diagnosis through time takes a many-to-one model");
    if (o->param == CLIPNN_PARAM_TANH)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "diagnose: the tanh parametrization with a recurrent model");
    size_t k = clipnn_model_n_outputs(m);
    int cls = obj->kind == CLIPNN_OBJ_TARGET_CLASS || obj->kind == CLIPNN_OBJ_LEAVE_CLASS;
    if (!cls && obj->kind != CLIPNN_OBJ_TARGET_OUTPUT)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "diagnose: a recurrent model takes a class or output objective, "
                           "not a unit to maximize");
    if (!y) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: target missing");
    if (cls && (obj->loss != CLIPNN_LOSS_XENT && obj->loss != CLIPNN_LOSS_MARGIN))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: a class objective takes the xent or margin loss, not %s",
                           clipnn_loss_name(obj->loss));
    if (cls && (k < 2 || !clipnn_is_class_index(y[0], k)))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "objective: class %g is not one of the model's %zu outputs", (double)y[0],
                           k);
    if (!cls && obj->loss != CLIPNN_LOSS_MSE && obj->loss != CLIPNN_LOSS_BCE)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: a target output takes the mse or bce loss, not %s",
                           clipnn_loss_name(obj->loss));
    return clipnn_space_check(&o->space);
}

static void close_tt(through_time *c) { clipnn_free(c->xf), clipnn_free(c->xd); }

static clipnn_status open_tt(through_time *c, clipnn_model *m, const clipnn_objective *obj, const float *y,
                             const clipnn_diagnose_options *o) {
    *c = (through_time){.m = m, .obj = obj, .o = o, .T = m->steps, .D = m->step_dim, .n = m->n_inputs,
                        .k = clipnn_model_n_outputs(m)};
    c->ny = obj->kind == CLIPNN_OBJ_TARGET_OUTPUT ? c->k : 1;
    c->lo = clipnn_loss_options_default();
    c->lo.loss = obj->loss;
    c->lo.kappa = obj->kappa;
    c->lo.want_params = 0;
    c->sign = obj->kind == CLIPNN_OBJ_LEAVE_CLASS ? -1.0 : 1.0;
    c->xf = clipnn_alloc_array(2 * c->n + c->ny, sizeof *c->xf);
    c->xd = clipnn_alloc_array(2 * c->n + c->ny + 2 * c->T, sizeof *c->xd);
    clipnn_status s =
        c->xf && c->xd ? clipnn_model_reserve(m, 1) : clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory");
    if (s) return close_tt(c), s;
    c->gf = c->xf + c->n, c->yf = c->gf + c->n;
    c->gd = c->xd + c->n, c->yd = c->gd + c->n, c->norm_f = c->yd + c->ny, c->norm_d = c->norm_f + c->T;
    for (size_t j = 0; j < c->ny; j++) c->yf[j] = y[j], c->yd[j] = y[j];
    return CLIPNN_OK;
}

/* The objective and its input gradient at point (the data space) in
 * float32 and in double, both back in the data space, and their norms
 * step by step. */
static clipnn_status measure(through_time *c, const float *point, clipnn_diagnosis *d) {
    const clipnn_input_space *sp = &c->o->space;
    for (size_t i = 0; i < c->n; i++) {
        if (!isfinite(point[i]))
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "diagnose: coordinate %zu of the point is %g", i,
                               (double)point[i]);
        c->xd[i] = sp->mean ? ((double)point[i] - sp->mean[i]) / sp->std[i] : point[i];
    }
    clipnn_space_to_model(sp, point, 1, c->n, c->xf);
    double vf, vd;
    clipnn_status s = clipnn_loss_grad(c->m, &c->lo, c->xf, c->yf, 1, &vf, c->gf);
    if (!s) s = clipnn_reference_loss_grad(c->m, NULL, &c->lo, c->xd, c->yd, 1, &vd, NULL, NULL, c->gd);
    if (s) return s;
    clipnn_space_grad(sp, c->gf, 1, c->n);
    for (size_t i = 0; sp->std && i < c->n; i++) c->gd[i] /= sp->std[i];
    for (size_t t = 0; t < c->T; t++) {
        c->norm_f[t] = clipnn_norm(c->gf + t * c->D, c->D, 2.0);
        c->norm_d[t] = clipnn_nrm2_d(c->gd + t * c->D, c->D);
    }
    d->value = c->sign * vf, d->value_ref = c->sign * vd;
    d->grad_norm = d->grad_norm_raw = clipnn_norm(c->gf, c->n, 2.0);
    d->grad_norm_ref = clipnn_nrm2_d(c->gd, c->n);
    d->stalled = d->grad_norm <= c->o->grad_tol;
    d->stationary = d->grad_norm_ref <= c->o->grad_tol;
    return CLIPNN_OK;
}

/* Is the objective met (the float32 forward the optimizer sees)? Class
 * objectives: the top class is (is not) the class; outputs: within
 * output_tol in mean square. */
static void assess_target(const through_time *c, clipnn_diagnosis *d) {
    const float *out;
    if (clipnn_forward(c->m, c->xf, 1, &out)) return;
    size_t top = clipnn_argmax(out, c->k), y = (size_t)c->yf[0];
    if (c->obj->kind == CLIPNN_OBJ_TARGET_CLASS) d->at_target = top == y;
    else if (c->obj->kind == CLIPNN_OBJ_LEAVE_CLASS) d->at_target = top != y;
    else d->at_target = d->value_ref <= c->obj->output_tol;
}

/* Every gate block's spectral radius: the largest into d->rec_radius, a
 * summary (each layer's largest) into buf. */
static clipnn_status radius_summary(const clipnn_model *m, clipnn_diagnosis *d, char *buf, size_t cap) {
    size_t used = 0;
    d->rec_radius = 0;
    buf[0] = 0;
    for (size_t l = 0; l < m->n_rec; l++) {
        double top = 0, r;
        for (size_t g = 0; g < clipnn_model_layer_gates(m, l); g++) {
            clipnn_status s = clipnn_model_rec_radius(m, l, g, &r);
            if (s) return s;
            top = fmax(top, r);
        }
        d->rec_radius = fmax(d->rec_radius, top);
        if (used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "%slayer %zu (%s) %.3g", l ? ", " : "", l,
                                     clipnn_layer_kind_name(clipnn_model_layer_kind(m, l)), top);
    }
    return CLIPNN_OK;
}

/* ||d/dx_t|| of the double reference at t = 1, T/4, T/2, 3T/4, T. */
static void describe_steps(const through_time *c, char *buf, size_t cap) {
    size_t T = c->T, at[5] = {1, (T + 3) / 4, (T + 1) / 2, (3 * T + 3) / 4, T}, used = 0;
    buf[0] = 0;
    for (int i = 0; i < 5 && used < cap; i++) {
        if (i && at[i] == at[i - 1]) continue;
        used += (size_t)snprintf(buf + used, cap - used, "%st=%zu %.3g", used ? ", " : "", at[i],
                                 c->norm_d[at[i] - 1]);
    }
}

/* The same ratio in float32, which may have lost one end or both. */
static void float_ratio(const through_time *c, char *buf, size_t cap) {
    double first = c->norm_f[0], last = c->norm_f[c->T - 1];
    if (!(last > 0)) snprintf(buf, cap, "float32: 0 at x_%zu", c->T);
    else if (first == 0 && c->norm_d[0] > 0) snprintf(buf, cap, "float32: exactly 0 at x_1");
    else snprintf(buf, cap, "float32 %.3g", first / last);
}

/* Remedies, each within a finding's 256 characters; a model with gated
 * cells already has the gated path, and its gates can close it. */
static const char VANISHING_REMEDY[] =
    "use a gated cell (--arch lstm:H or gru:H); W_hh orthogonal or at spectral radius 1 (--rec-init orthogonal, "
    "or scaled --rec-radius 1); or a shorter path: shorter sequences, fewer steps between cause and loss, skip "
    "connections";
static const char VANISHING_GATED_REMEDY[] =
    "keep the gated path open: an LSTM's forget gate near 1 (a larger f block of b_ih or b_hh), W_hh orthogonal "
    "(--rec-init orthogonal); or a shorter path: shorter sequences, fewer steps between cause and loss, skip "
    "connections";
static const char EXPLODING_REMEDY[] =
    "clip the gradient norm (--clip norm --lambda 1); bring W_hh's spectral radius below 1 (--rec-init scaled "
    "--rec-radius 0.9); or truncate backpropagation through time (--bptt K1,K2)";

static int gated(const clipnn_model *m) {
    for (size_t l = 0; l < m->n_rec; l++)
        if (clipnn_model_layer_gates(m, l) > 1) return 1;
    return 0;
}

/* The test: the share of the gradient that reaches x_1. */
static void test_through_time(const through_time *c, const char *radii, clipnn_diagnosis *d) {
    double first = c->norm_d[0], last = c->norm_d[c->T - 1];
    char steps[120];
    describe_steps(c, steps, sizeof steps);
    if (c->T < 2 || !(last > 0)) {
        clipnn_diag_check(d, "gradient-through-time", 1, "%s: nothing to compare (||d/dx_t|| at %s)",
                          c->T < 2 ? "one step" : "no gradient reaches x_T", steps);
        return;
    }
    double ratio = first / last, factor = pow(ratio, 1.0 / (double)(c->T - 1));
    d->time_ratio = ratio;
    int vanishing = ratio < TIME_VANISHING, exploding = ratio > TIME_EXPLODING;
    const char *fmt = "||d/dx_1|| / ||d/dx_%zu|| = %.3g (%s): x%.3g per step back over %zu steps; ||d/dx_t|| at "
                      "%s; W_hh spectral radius: %s%s";
    char f32[64];
    float_ratio(c, f32, sizeof f32);
    /* a radius of 1 or more cannot shrink the gradient: the units' derivatives (or the gates) do */
    const char *why = vanishing && d->rec_radius >= 1 ? "; radius >= 1: saturated units or closed gates shrink it" : "";
    const char *vanishing_remedy = gated(c->m) ? VANISHING_GATED_REMEDY : VANISHING_REMEDY;
    if (vanishing || exploding)
        clipnn_diag_finding(d, vanishing ? CLIPNN_CAUSE_VANISHING_THROUGH_TIME : CLIPNN_CAUSE_EXPLODING_THROUGH_TIME,
                            vanishing ? "vanishing-through-time" : "exploding-through-time",
                            vanishing ? vanishing_remedy : EXPLODING_REMEDY, fmt, c->T, ratio, f32, factor, c->T - 1,
                            steps, radii, why);
    else
        clipnn_diag_check(d, "gradient-through-time", 1, fmt, c->T, ratio, f32, factor, c->T - 1, steps, radii, why);
}

clipnn_status clipnn_diagnose_recurrent(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                        const float *point, const clipnn_diagnose_options *o, clipnn_diagnosis *d) {
    clipnn_status s = check_objective(m, obj, y, o);
    if (s) return s;
    clipnn_diagnosis_init(d);
    through_time c;
    if ((s = open_tt(&c, m, obj, y, o))) return s;
    char radii[96];
    s = measure(&c, point, d);
    if (!s) s = radius_summary(m, d, radii, sizeof radii);
    if (!s) {
        assess_target(&c, d);
        test_through_time(&c, radii, d);
    }
    close_tt(&c);
    return s;
}
