/* Why is the gradient zero, inside a network: the backward signal layer by
 * layer, saturated units and outputs, dead ReLUs, ignored inputs, softmax
 * margins past float32 range and the logit-shift test, on top of the tests
 * every objective gets (src/diagnose/diagnose.c). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diagnose/diagnose.h"

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

/* ------------------------------------------------------- the model's tests */

/* An input gradient below this fraction of the signal at the top layer has
 * vanished on the way down. */
#define VANISHING 1e-5

/* The largest |derivative| of each activation (GELU's: 1.1289 at z = 1.4).  */
static double act_deriv_peak(clipnn_act a) {
    return a == CLIPNN_ACT_SIGMOID ? 0.25 : a == CLIPNN_ACT_GELU ? 1.1289 : 1.0;
}

/* -ln of float32's smallest subnormal and smallest normal number: the
 * softmax margins past which exp(-margin) is 0, or inexact, in float32. */
#define LN_FLT_TRUE_MIN 103.2789
#define LN_FLT_MIN 87.3365

/* What the layer tests share: whether the descent is stuck short of its
 * target, and which network causes were already named (each once). */
typedef struct {
    int stuck, reached;
    int found_sat, found_dead, found_ignored;
} net_tests;

static int worth_a_finding(const net_tests *t) { return t->stuck && !t->reached; }

/* Where the backward signal dies, layer by layer from the top. */
static void check_backward_signal(const model_ctx *c, size_t top, clipnn_diagnosis *d) {
    char trail[320];
    size_t used = (size_t)snprintf(trail, sizeof trail, "d/d(top output) %.3g", c->signal[top].out_norm);
    for (size_t l = top + 1; l-- > 0 && used < sizeof trail;)
        used += (size_t)snprintf(trail + used, sizeof trail - used, "; layer %zu %s: %.3g -> %.3g, dense: %.3g", l,
                                 clipnn_act_name(c->m->layers[l].act), c->signal[l].out_norm, c->signal[l].pre_norm,
                                 c->signal[l].in_norm);
    clipnn_diag_check(d, "backward-signal", 1, "%s", trail);
}

/* Sigmoid or tanh units whose derivative is gone (z: the layer's pre-activations). */
static void test_saturation(const model_ctx *c, size_t l, const double *z, net_tests *t, clipnn_diagnosis *d) {
    const clipnn_layer *Ly = &c->m->layers[l];
    const clipnn_signal *sg = &c->signal[l];
    size_t sat = 0;
    double zmax = 0;
    for (size_t u = 0; u < Ly->out; u++) {
        double dv = fabs(clipnn_act_deriv_d(Ly->act, z[u])) / act_deriv_peak(Ly->act); /* GELU's dips below 0 */
        sat += dv < 1e-4;
        zmax = fmax(zmax, fabs(z[u]));
    }
    int kills = sg->out_norm > 0 && sg->pre_norm <= 1e-3 * sg->out_norm;
    /* most units saturated and the signal cut by 1e3 is saturation even before the gradient counts as tiny */
    int layer_saturated = kills && 2 * sat > Ly->out && !t->reached;
    if (!(sat && kills && (worth_a_finding(t) || layer_saturated) && !t->found_sat)) {
        clipnn_diag_check(d, "saturated-units", 1, "layer %zu (%s): %zu of %zu units saturated, signal %.3g -> %.3g", l,
                          clipnn_act_name(Ly->act), sat, Ly->out, sg->out_norm, sg->pre_norm);
        return;
    }
    t->found_sat = 1;
    int output = l == c->m->n_layers - 1 && Ly->act == CLIPNN_ACT_SIGMOID;
    clipnn_diag_finding(d, CLIPNN_CAUSE_SATURATION, output ? "saturated-output" : "saturated-units",
                clipnn_diag_saturation_remedy(Ly->act, output),
                "layer %zu (%s%s): %zu of %zu units saturated (derivative below 1e-4 of its peak, |z| up to "
                "%.3g); the backward signal is %.4g at the layer's output and %.4g after its derivative; "
                "objective %.6g, not at its target",
                l, clipnn_act_name(Ly->act), output ? ", the output layer" : "", sat, Ly->out, zmax,
                sg->out_norm, sg->pre_norm, d->value_ref);
}

/* ReLU units all inactive for this input, so that the signal stops. */
static void test_dead_relu(const model_ctx *c, size_t l, const double *z, net_tests *t, clipnn_diagnosis *d) {
    const clipnn_layer *Ly = &c->m->layers[l];
    const clipnn_signal *sg = &c->signal[l];
    size_t dead = 0;
    double zbest = -INFINITY;
    for (size_t u = 0; u < Ly->out; u++) {
        dead += z[u] <= 0;
        zbest = fmax(zbest, z[u]);
    }
    int kills = sg->out_norm > 0 && sg->pre_norm == 0;
    if (!(kills && worth_a_finding(t) && !t->found_dead)) {
        clipnn_diag_check(d, "dead-relu", 1, "layer %zu: %zu of %zu ReLU units inactive", l, dead, Ly->out);
        return;
    }
    t->found_dead = 1;
    clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "dead-relu", clipnn_diag_dead_relu_remedy(),
                "layer %zu: %zu of %zu ReLU units inactive for this input (largest pre-activation %.4g); the "
                "backward signal is %.4g at the layer's output and exactly 0 after it",
                l, dead, Ly->out, zbest, sg->out_norm);
}

/* The dense transpose: a signal the weights do not pass on. */
static void test_ignored_directions(const model_ctx *c, size_t l, net_tests *t, clipnn_diagnosis *d) {
    const clipnn_layer *Ly = &c->m->layers[l];
    const clipnn_signal *sg = &c->signal[l];
    double scale = 0;
    const float *W = c->m->params + Ly->w_offset;
    for (size_t i = 0; i < Ly->in * Ly->out; i++) scale += (double)W[i] * W[i];
    scale = sqrt(scale);
    if (!(sg->pre_norm > 0 && sg->in_norm <= 1e-9 * sg->pre_norm * scale && worth_a_finding(t) && !t->found_ignored))
        return;
    t->found_ignored = 1;
    clipnn_diag_finding(d, CLIPNN_CAUSE_PARAMETRIZATION, "ignored-directions",
                "the change the objective wants lies in directions the weights do not see (the null space of "
                "W^T): no input change can produce it; change the objective or the model",
                "layer %zu: the signal %.4g after the activation becomes %.3g through W^T (||W|| = %.3g)", l,
                sg->pre_norm, sg->in_norm, scale);
}

/* Input features the first layer ignores entirely. */
static void check_ignored_inputs(const clipnn_model *m, clipnn_diagnosis *d) {
    const clipnn_layer *L0 = &m->layers[0];
    const float *W = m->params + L0->w_offset;
    size_t ignored = 0;
    for (size_t i = 0; i < L0->in; i++) {
        int zero = 1;
        for (size_t u = 0; u < L0->out && zero; u++) zero = W[u * L0->in + i] == 0.0f;
        ignored += zero;
    }
    clipnn_diag_check(d, "ignored-inputs", 1, "%zu of %zu input features have all-zero first-layer weights (the model "
              "cannot see them)", ignored, L0->in);
}

/* The softmax of a class objective under cross-entropy: a margin past
 * float32 range leaves no gradient. */
static void test_softmax_margin(const model_ctx *c, const clipnn_diagnose_options *o, const net_tests *t,
                                clipnn_diagnosis *d) {
    const size_t k = clipnn_model_n_outputs(c->m);
    size_t y = (size_t)c->yd[0], other = y == 0 ? 1 : 0;
    for (size_t j = 0; j < k; j++)
        if (j != y && c->logits[j] > c->logits[other]) other = j;
    double margin = c->logits[y] - c->logits[other];
    double dz = c->signal[c->m->n_layers - 1].out_norm;
    if (!(worth_a_finding(t) && dz <= o->grad_tol)) {
        clipnn_diag_check(d, "softmax-margin", 1,
                          "margin of class %zu over the best other: %.4g logits; d/d logits %.3g", y, margin, dz);
        return;
    }
    char range[160] = "";
    if (fabs(margin) > LN_FLT_TRUE_MIN)
        snprintf(range, sizeof range, ", below float32's smallest number (margins past %.1f): exactly 0 in float32",
                 LN_FLT_TRUE_MIN);
    else if (fabs(margin) > LN_FLT_MIN)
        snprintf(range, sizeof range, ", a float32 subnormal (margins past %.1f) with few digits left", LN_FLT_MIN);
    clipnn_diag_finding(d, CLIPNN_CAUSE_SATURATION, "softmax-margin",
                "the cross-entropy saturates once one class leads by this much: use the CW margin loss "
                "(gradient +-1 on two logits whatever the margin), or compute the loss in double / log space",
                "class %zu leads class %zu by %.4g logits, so the softmax gradient is about exp(-%.4g) = %.3g%s; "
                "d objective / d logits has norm %.3g",
                margin > 0 ? y : other, margin > 0 ? other : y, fabs(margin), fabs(margin), exp(-fabs(margin)),
                range, dz);
}

/* The objective and input gradient at x (the point in x, [n]) of the
 * model, and of its clone mc with `shift` added to every logit. */
static void shifted_values(const model_ctx *c, clipnn_model *mc, const double *x, double shift, float *g1,
                           double *v0, double *v1) {
    const size_t n = c->m->n_inputs, k = clipnn_model_n_outputs(c->m);
    float *xs = g1 + n;
    for (size_t i = 0; i < n; i++) xs[i] = (float)x[i];
    clipnn_objective_grad_space(c->m, c->obj, c->space, xs, c->yf, 1, v0, c->gf, NULL, c->xm);
    float *b = mc->params + mc->layers[mc->n_layers - 1].b_offset;
    for (size_t j = 0; j < k; j++) b[j] += (float)shift;
    clipnn_objective_grad_space(mc, c->obj, c->space, xs, c->yf, 1, v1, g1, NULL, c->xm);
}

/* A constant added to every logit must change nothing. g1: [2n] scratch. */
static void compare_logit_shift(const model_ctx *c, const clipnn_diagnose_options *o, clipnn_model *mc,
                                const double *x, float *g1, clipnn_diagnosis *d) {
    const size_t n = c->m->n_inputs, k = clipnn_model_n_outputs(c->m);
    const float *g0 = c->gf;
    const double shift = 64.0;
    double v0 = NAN, v1 = NAN;
    shifted_values(c, mc, x, shift, g1, &v0, &v1);
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
        clipnn_diag_finding(d, CLIPNN_CAUSE_PRECISION, "logit-shift",
                    "the result depends on a constant shift of the logits, which mathematically changes "
                    "nothing: float32 is losing digits to the logits' common offset; recentre the logits "
                    "(subtract their mean through the last bias) or evaluate in double",
                    "adding %.0f to every logit changes the objective by %.3g (allowed %.2g) and the "
                    "gradient by %.3g (norm %.3g)",
                    shift, fabs(v1 - v0), tol, gd, gn);
    else
        clipnn_diag_check(d, "logit-shift", 1, "adding %.0f to every logit changes the objective by %.3g and the "
                  "gradient by %.3g", shift, fabs(v1 - v0), gd);
}

static void test_logit_shift(const model_ctx *c, const clipnn_diagnose_options *o, const double *x,
                             clipnn_diagnosis *d) {
    clipnn_model *mc = NULL;
    if (clipnn_model_clone(c->m, &mc) != CLIPNN_OK) return;
    float *g1 = clipnn_alloc_array(2 * c->m->n_inputs, sizeof *g1);
    if (g1) compare_logit_shift(c, o, mc, x, g1, d);
    clipnn_free(g1);
    clipnn_model_free(mc);
}

/* The tests that look inside the network, at x (the point in x). */
static void model_tests(model_ctx *c, const clipnn_diagnose_options *o, int reached, clipnn_diagnosis *d,
                        const double *x) {
    clipnn_model *m = c->m;
    const clipnn_objective *obj = c->obj;
    const size_t L = m->n_layers;
    net_tests t = {.stuck = d->stalled || d->stationary, .reached = reached};
    /* the double pass again at the point, for the signal and pre-activations */
    model_eval_d(c, x, NULL);
    size_t top = obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? obj->layer : L - 1;
    check_backward_signal(c, top, d);
    size_t off = 0;
    for (size_t l = 0; l <= top; l++) {
        const double *z = c->pre + off;
        off += m->layers[l].out;
        clipnn_act act = m->layers[l].act;
        if (act == CLIPNN_ACT_SIGMOID || act == CLIPNN_ACT_TANH || clipnn_diag_flat_tail(act))
            test_saturation(c, l, z, &t, d);
        else if (act == CLIPNN_ACT_RELU)
            test_dead_relu(c, l, z, &t, d);
        test_ignored_directions(c, l, &t, d);
    }
    check_ignored_inputs(m, d);
    if (m->layers[L - 1].act == CLIPNN_ACT_SIGMOID)
        clipnn_diag_check(d, "probability-output", 0,
                          "the last layer is a sigmoid: the model outputs probabilities, and losses "
                          "on them saturate when confidently wrong");
    int cls = obj->kind == CLIPNN_OBJ_TARGET_CLASS || obj->kind == CLIPNN_OBJ_LEAVE_CLASS;
    if (cls && obj->loss == CLIPNN_LOSS_XENT) test_softmax_margin(c, o, &t, d);
    if (cls && m->layers[L - 1].act == CLIPNN_ACT_IDENTITY) test_logit_shift(c, o, x, d);
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
            clipnn_diag_check(d, "lanczos-curvature", 1,
                              "no negative curvature (%.3g to %.3g), but the network's own flatness "
                              "found below explains the stall better than a minimum",
                              d->min_curvature, d->max_curvature);
            continue;
        }
        d->findings[w++] = d->findings[i];
    }
    d->n_findings = w;
}

/* The context's buffers: y and x in double, pre-activations, logits and
 * the point in x (*x, [n]); float scratch; the signal per layer. */
static clipnn_status open_ctx(model_ctx *c, clipnn_model *m, const clipnn_objective *obj, const float *y,
                              const clipnn_input_space *space, double **x) {
    const size_t n = m->n_inputs, L = m->n_layers, k = clipnn_model_n_outputs(m);
    size_t widths = 0;
    for (size_t l = 0; l < L; l++) widths += m->layers[l].out;
    size_t ny = obj->kind == CLIPNN_OBJ_TARGET_OUTPUT ? k : 1;
    *c = (model_ctx){.m = m, .obj = obj, .space = space, .yf = y};
    double *dblock = clipnn_alloc_array(ny + 2 * n + widths + k, sizeof *dblock);
    float *fblock = clipnn_alloc_array(2 * n, sizeof *fblock);
    c->signal = clipnn_alloc_array(L, sizeof *c->signal);
    if (!dblock || !fblock || !c->signal) {
        clipnn_free(dblock), clipnn_free(fblock), clipnn_free(c->signal);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "diagnose: out of memory");
    }
    c->yd = dblock, c->xd = dblock + ny, c->pre = c->xd + n, c->logits = c->pre + widths;
    *x = c->logits + k;
    c->xm = fblock, c->gf = fblock + n;
    for (size_t j = 0; j < ny && y; j++) c->yd[j] = y[j];
    return CLIPNN_OK;
}

static void close_ctx(model_ctx *c) { clipnn_free(c->yd), clipnn_free(c->xm), clipnn_free(c->signal); }

/* The point in x (x: [n], through the tanh map), whether the objective is
 * met there (float32 path), and the gradient norm that counts as tiny for
 * this network: at most grad_tol, or less than VANISHING of the signal the
 * objective sends into the top layer (the network loses the rest on the
 * way down). */
static clipnn_status assess_point(model_ctx *c, const float *point, const clipnn_diagnose_options *o, double *x,
                                  int *reached, double *tiny) {
    const size_t n = c->m->n_inputs;
    const double lo = o->space.box_lo, hi = o->space.box_hi;
    for (size_t i = 0; i < n; i++)
        x[i] = o->param == CLIPNN_PARAM_TANH ? lo + (hi - lo) / 2 * (tanh((double)point[i]) + 1) : point[i];
    for (size_t i = 0; i < n; i++) c->xm[i] = (float)x[i];
    double v;
    float *xs = c->gf; /* scratch: the point in x, float */
    memcpy(xs, c->xm, n * sizeof *xs);
    *reached = 0;
    *tiny = o->grad_tol;
    clipnn_status s = clipnn_objective_grad_space(c->m, c->obj, &o->space, xs, c->yf, 1, &v, NULL, reached, c->xm);
    if (s) return s;
    model_eval_d(c, x, NULL);
    size_t top = c->obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? c->obj->layer : c->m->n_layers - 1;
    *tiny = fmax(*tiny, VANISHING * c->signal[top].out_norm);
    return CLIPNN_OK;
}

clipnn_status clipnn_diagnose_model(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                    const float *point, const clipnn_diagnose_options *o,
                                    clipnn_diagnosis *d) {
    if (!m || !obj || !point || !o || !d) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: NULL argument");
    if (m->n_rec) return clipnn_diagnose_recurrent(m, obj, y, point, o, d);
    clipnn_status s = clipnn_objective_check(m, obj);
    if (!s) s = clipnn_space_check(&o->space);
    if (s) return s;
    if (obj->kind != CLIPNN_OBJ_MAXIMIZE_UNIT && !y)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "diagnose: target missing");
    clipnn_diagnosis_init(d);
    model_ctx c;
    double *x = NULL;
    if ((s = open_ctx(&c, m, obj, y, &o->space, &x))) return s;
    problem P = {m->n_inputs, model_eval_d, model_eval_f, &c};
    int reached;
    double tiny;
    s = assess_point(&c, point, o, x, &reached, &tiny);
    int classify = obj->kind == CLIPNN_OBJ_TARGET_CLASS || obj->kind == CLIPNN_OBJ_LEAVE_CLASS;
    target_state ts = {obj->kind != CLIPNN_OBJ_MAXIMIZE_UNIT, reached, classify};
    if (!s) s = clipnn_diagnose_problem(&P, point, o, &ts, tiny, d);
    if (!s) s = c.status;
    if (!s) {
        model_tests(&c, o, reached, d, x);
        s = c.status;
    }
    if (!s) demote_plateau_minimum(d);
    close_ctx(&c);
    return s;
}
