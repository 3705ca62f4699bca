/* Input optimization: objectives on a frozen network (float32 path on the
 * model's workspace, double reference with plain loops), the data space
 * with its box and preprocessing, and gradient descent on the input with a
 * box projection or the tanh reparametrization. */
#include <math.h>
#include <string.h>

/* Vector blends for the steps' selections (see src/inputopt/attack.h). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "inputopt/inputopt.h"

static const char *const param_names[CLIPNN_PARAM_COUNT] = {
    [CLIPNN_PARAM_PIXEL] = "pixel",
    [CLIPNN_PARAM_TANH] = "tanh",
};

CLIPNN_NAME_FUNCTIONS(clipnn_param, clipnn_param, param_names, CLIPNN_PARAM_COUNT, "parametrization")

clipnn_objective clipnn_objective_default(void) {
    clipnn_objective o;
    memset(&o, 0, sizeof o);
    o.kind = CLIPNN_OBJ_TARGET_CLASS;
    o.loss = CLIPNN_LOSS_XENT;
    o.output_tol = 1e-4;
    return o;
}

clipnn_input_space clipnn_input_space_default(void) {
    clipnn_input_space s = {0.0, 1.0, NULL, NULL};
    return s;
}

clipnn_inputopt_options clipnn_inputopt_options_default(void) {
    clipnn_inputopt_options o;
    memset(&o, 0, sizeof o);
    o.objective = clipnn_objective_default();
    o.space = clipnn_input_space_default();
    o.param = CLIPNN_PARAM_PIXEL;
    o.steps = 1000;
    o.lr = 0.1;
    o.normalize = 1;
    o.backtrack = 0;
    o.stop_on_success = 1;
    o.stall_steps = 100;
    o.stall_tol = 1e-6;
    o.grad_tol = 0.0;
    return o;
}

/* ------------------------------------------------------------ checks */

static size_t top_layer(const clipnn_model *m, const clipnn_objective *o) {
    return o->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? o->layer : m->n_layers - 1;
}

clipnn_status clipnn_objective_check(const clipnn_model *m, const clipnn_objective *o) {
    if (!m || !o) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: NULL argument");
    if (m->n_rec)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "objective: input optimization and attacks take models without "
                           "recurrent layers; this one has %zu (the first: %s)", m->n_rec,
                           clipnn_layer_kind_name(clipnn_model_layer_kind(m, 0)));
    size_t k = clipnn_model_n_outputs(m);
    switch (o->kind) {
    case CLIPNN_OBJ_TARGET_CLASS:
    case CLIPNN_OBJ_LEAVE_CLASS:
        if (o->loss != CLIPNN_LOSS_XENT && o->loss != CLIPNN_LOSS_MARGIN)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                               "objective: a class objective takes the xent or margin loss, not %s",
                               clipnn_loss_name(o->loss));
        if (k < 2)
            return clipnn_fail(CLIPNN_ERR_SHAPE,
                               "objective: a class objective needs at least 2 outputs, the model has %zu", k);
        if (!(o->kappa >= 0) || !isfinite(o->kappa))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: kappa %g must be finite and >= 0", o->kappa);
        return CLIPNN_OK;
    case CLIPNN_OBJ_TARGET_OUTPUT:
        if (o->loss != CLIPNN_LOSS_MSE && o->loss != CLIPNN_LOSS_BCE)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: a target output takes the mse or bce loss, not %s",
                               clipnn_loss_name(o->loss));
        return CLIPNN_OK;
    case CLIPNN_OBJ_MAXIMIZE_UNIT:
        if (o->layer >= m->n_layers)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: layer %zu does not exist (the model has %zu layers)",
                               o->layer, m->n_layers);
        if (o->unit >= m->layers[o->layer].out)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: unit %zu of layer %zu does not exist (width %zu)",
                               o->unit, o->layer, m->layers[o->layer].out);
        return CLIPNN_OK;
    default: return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: unknown kind %d", (int)o->kind);
    }
}

static clipnn_status check_targets(const clipnn_model *m, const clipnn_objective *o, const float *y,
                                   size_t batch) {
    if (o->kind == CLIPNN_OBJ_MAXIMIZE_UNIT) return CLIPNN_OK;
    if (!y) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: targets missing");
    if (o->kind == CLIPNN_OBJ_TARGET_OUTPUT) return CLIPNN_OK;
    size_t k = clipnn_model_n_outputs(m);
    for (size_t r = 0; r < batch; r++)
        if (!clipnn_is_class_index(y[r], k))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "objective: class %g of example %zu is not one of %zu outputs",
                               (double)y[r], r, k);
    return CLIPNN_OK;
}

clipnn_status clipnn_space_check(const clipnn_input_space *s) {
    if (!s) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "input space: NULL");
    if (isnan(s->box_lo) || isnan(s->box_hi) || !(s->box_lo < s->box_hi))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "input space: box [%g, %g] is empty", s->box_lo, s->box_hi);
    if ((s->mean == NULL) != (s->std == NULL))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "input space: give both mean and std, or neither");
    return CLIPNN_OK;
}

/* ------------------------------------------------------------ the space */

void clipnn_space_to_model(const clipnn_input_space *s, const float *x, size_t B, size_t dim,
                           float *out) {
    if (!s->mean) {
        if (out != x) memcpy(out, x, B * dim * sizeof *out);
        return;
    }
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < dim; j++)
            out[r * dim + j] = (x[r * dim + j] - s->mean[j]) / s->std[j];
}

const float *clipnn_space_model_input(const clipnn_input_space *s, const float *x, size_t B, size_t dim,
                                      float *out) {
    if (!s->mean) return x;
    clipnn_space_to_model(s, x, B, dim, out);
    return out;
}

void clipnn_space_grad(const clipnn_input_space *s, float *g, size_t B, size_t dim) {
    if (!s->std) return;
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < dim; j++) g[r * dim + j] /= s->std[j];
}

/* ------------------------------------------------- objective at the top */

/* TARGET_OUTPUT: mean squared error, or sigmoid cross-entropy on the
 * logits (BCE); reached when the prediction (z, or sigmoid(z) for BCE) is
 * within output_tol of the target in mean square. t: the target of output j. */
static double output_objective(const clipnn_objective *o, const double *a, size_t k, const float *yf,
                               const double *yd, double *da, int *reached) {
    double v = 0.0, pred_err = 0.0;
    for (size_t j = 0; j < k; j++) {
        double t = yf ? (double)yf[j] : yd[j], z = a[j];
        if (o->loss == CLIPNN_LOSS_BCE) {
            double sg = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            v += (z > 0 ? z : 0.0) - z * t + log1p(exp(-fabs(z)));
            da[j] = (sg - t) / (double)k;
            pred_err += (sg - t) * (sg - t);
        } else {
            v += (z - t) * (z - t);
            da[j] = 2.0 * (z - t) / (double)k;
            pred_err += (z - t) * (z - t);
        }
    }
    v /= (double)k;
    *reached = pred_err / (double)k <= o->output_tol;
    return v;
}

/* Cross-entropy of class c (am: the arg-max), minimized for TARGET_CLASS
 * and maximized for LEAVE_CLASS. */
static double xent_objective(int target, const double *a, size_t k, size_t c, size_t am, double *da, int *reached) {
    double mx = a[am], sum = 0.0;
    for (size_t j = 0; j < k; j++) sum += exp(a[j] - mx);
    double lse = mx + log(sum);
    /* d/da_c = p_c - 1 is summed from the other classes: when p_c
     * rounds to 1 the difference would be lost (as in the loss kernel). */
    double rest = 0.0;
    for (size_t j = 0; j < k; j++) {
        if (j == c) continue;
        double p = exp(a[j] - lse);
        rest += p;
        da[j] = target ? p : -p;
    }
    da[c] = target ? -rest : rest;
    double v = lse - a[c];
    *reached = target ? am == c : am != c;
    return target ? v : -v;
}

/* The CW margin of class c against the best other class. */
static double margin_objective(int target, double kappa, const double *a, size_t k, size_t c, size_t am, double *da,
                               int *reached) {
    size_t other = c == 0 ? 1 : 0;
    for (size_t j = 0; j < k; j++)
        if (j != c && a[j] > a[other]) other = j;
    double mv = target ? a[other] - a[c] + kappa : a[c] - a[other] + kappa;
    if (mv > 0) {
        da[c] = target ? -1.0 : 1.0;
        da[other] = target ? 1.0 : -1.0;
    }
    *reached = mv <= 0 && (target ? am == c : am != c);
    return mv > 0 ? mv : 0.0;
}

/* Value of one example's objective from the outputs a[k] of its top layer,
 * with d value / d a into da[k] (double: the float path rounds the result
 * once, so both paths share this one definition). y: the class ([1]) or
 * the target vector ([k]); NULL for MAXIMIZE_UNIT. */
static double top_objective(const clipnn_objective *o, const double *a, size_t k, const float *yf,
                            const double *yd, double *da, int *reached) {
    *reached = 0;
    for (size_t j = 0; j < k; j++) da[j] = 0.0;
    if (o->kind == CLIPNN_OBJ_MAXIMIZE_UNIT) {
        da[o->unit] = -1.0;
        return -a[o->unit];
    }
    if (o->kind == CLIPNN_OBJ_TARGET_OUTPUT) return output_objective(o, a, k, yf, yd, da, reached);
    size_t c = (size_t)(yf ? (double)yf[0] : yd[0]);
    size_t am = 0;
    for (size_t j = 1; j < k; j++)
        if (a[j] > a[am]) am = j;
    int target = o->kind == CLIPNN_OBJ_TARGET_CLASS;
    if (o->loss == CLIPNN_LOSS_XENT) return xent_objective(target, a, k, c, am, da, reached);
    return margin_objective(target, o->kappa, a, k, c, am, da, reached);
}

/* ------------------------------------------------------- float32 path */

clipnn_status clipnn_objective_grad(clipnn_model *m, const clipnn_objective *o, const float *x,
                                    const float *y, size_t batch, double *values, float *dx,
                                    int *reached) {
    clipnn_status s = clipnn_objective_check(m, o);
    if (s) return s;
    if (!x || batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: empty batch");
    if ((s = check_targets(m, o, y, batch))) return s;
    if ((s = clipnn_forward(m, x, batch, NULL))) return s;
    size_t top = top_layer(m, o), k = m->layers[top].out;
    size_t ny = o->kind == CLIPNN_OBJ_TARGET_OUTPUT ? k : 1;
    double small[128], *a = k <= 64 ? small : clipnn_alloc_array(2 * k, sizeof *a), *da = a + k;
    if (!a) return clipnn_fail(CLIPNN_ERR_NOMEM, "objective: out of memory");
    for (size_t r = 0; r < batch; r++) {
        const float *ar = m->post[top] + r * k;
        for (size_t j = 0; j < k; j++) a[j] = ar[j];
        int ok;
        double v = top_objective(o, a, k, y ? y + r * ny : NULL, NULL, da, &ok);
        if (values) values[r] = v;
        if (reached) reached[r] = ok;
        float *dr = m->delta[top] + r * k;
        for (size_t j = 0; j < k; j++) dr[j] = (float)da[j];
    }
    if (a != small) clipnn_free(a);
    if (dx) clipnn_objective_backward(m, top, batch, dx);
    return CLIPNN_OK;
}

void clipnn_objective_backward(clipnn_model *m, size_t top, size_t batch, float *dx) {
    /* Backward from the top layer to the input only: no parameter gradients. */
    for (size_t l = top + 1; l-- > 0;) {
        const clipnn_layer *L = &m->layers[l];
        clipnn_act_backward(L->act, m->delta[l], m->pre[l], m->post[l], batch * L->out);
        clipnn_dense_backward(NULL, NULL, l > 0 ? m->delta[l - 1] : dx, m->delta[l],
                              clipnn_layer_input(m, l), m->params + L->w_offset, batch, L->in, L->out);
    }
}

clipnn_status clipnn_objective_grad_space(clipnn_model *m, const clipnn_objective *o,
                                          const clipnn_input_space *s, const float *x,
                                          const float *y, size_t B, double *values, float *dx,
                                          int *reached, float *xm) {
    size_t dim = m->n_inputs;
    const float *in = clipnn_space_model_input(s, x, B, dim, xm);
    clipnn_status st = clipnn_objective_grad(m, o, in, y, B, values, dx, reached);
    if (!st && dx) clipnn_space_grad(s, dx, B, dim);
    return st;
}

/* ------------------------------------------------- double reference */

static clipnn_status check_trace_args(const clipnn_model *m, const clipnn_objective *o, const double *x,
                                     const double *y) {
    clipnn_status s = clipnn_objective_check(m, o);
    if (s) return s;
    if (!x || (o->kind != CLIPNN_OBJ_MAXIMIZE_UNIT && !y))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective (double): NULL input or target");
    if (o->kind == CLIPNN_OBJ_TARGET_CLASS || o->kind == CLIPNN_OBJ_LEAVE_CLASS) {
        size_t k = clipnn_model_n_outputs(m);
        if (!clipnn_is_class_index(y[0], k))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "objective: class %g is not one of %zu outputs", y[0], k);
    }
    return CLIPNN_OK;
}

/* The double pass's vectors: z_l, a_l and the backward signal of each
 * layer, one after the other in one block; as[l] is the input of layer l
 * (as[0] = x). */
typedef struct {
    double *block;
    double **zs, **as, **ds; /* [L], [L + 1], [L] */
} trace_space;

static void free_trace_space(trace_space *t) { clipnn_free(t->block), clipnn_free(t->zs); }

static clipnn_status alloc_trace_space(const clipnn_model *m, const double *x, trace_space *t) {
    size_t L = m->n_layers, total = m->n_inputs;
    for (size_t l = 0; l < L; l++) total += 3 * m->layers[l].out;
    t->block = clipnn_alloc_array(total, sizeof *t->block);
    t->zs = clipnn_alloc_array(3 * L + 1, sizeof *t->zs);
    if (!t->block || !t->zs) {
        free_trace_space(t);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "objective (double): out of memory");
    }
    t->as = t->zs + L, t->ds = t->zs + 2 * L + 1;
    double *p = t->block;
    t->as[0] = p, p += m->n_inputs;
    memcpy(t->as[0], x, m->n_inputs * sizeof *x);
    for (size_t l = 0; l < L; l++) {
        size_t n = m->layers[l].out;
        t->zs[l] = p, p += n;
        t->as[l + 1] = p, p += n;
        t->ds[l] = p, p += n;
    }
    return CLIPNN_OK;
}

/* Forward in double; the pre-activations also into pre (concatenated,
 * may be NULL). */
static void forward_d(const clipnn_model *m, trace_space *t, double *pre) {
    clipnn_reference_forward(m, NULL, 1, t->zs, t->as);
    size_t off = 0;
    for (size_t l = 0; pre && l < m->n_layers; l++) {
        memcpy(pre + off, t->zs[l], m->layers[l].out * sizeof *pre);
        off += m->layers[l].out;
    }
}

/* Backward in double from ds[top] down to dx (may be NULL), with the
 * signal's norms per layer (signal may be NULL). */
static void backward_d(const clipnn_model *m, trace_space *t, size_t top, double *dx, clipnn_signal *signal) {
    for (size_t l = top + 1; l-- > 0;) {
        const clipnn_layer *Ly = &m->layers[l];
        const float *W = m->params + Ly->w_offset;
        double *d = t->ds[l];
        double n_out = 0, n_pre = 0, n_in = 0;
        for (size_t u = 0; u < Ly->out; u++) {
            n_out += d[u] * d[u];
            d[u] *= clipnn_act_deriv_d(Ly->act, t->zs[l][u]);
            n_pre += d[u] * d[u];
        }
        double *da = l > 0 ? t->ds[l - 1] : dx;
        for (size_t i = 0; i < Ly->in; i++) {
            double acc = 0;
            for (size_t u = 0; u < Ly->out; u++) acc += d[u] * (double)W[u * Ly->in + i];
            if (da) da[i] = acc;
            n_in += acc * acc;
        }
        if (signal) signal[l] = (clipnn_signal){sqrt(n_out), sqrt(n_pre), sqrt(n_in)};
    }
}

clipnn_status clipnn_objective_trace_d(const clipnn_model *m, const clipnn_objective *o,
                                       const double *x, const double *y, double *value,
                                       double *dx, double *logits, clipnn_signal *signal,
                                       double *pre) {
    clipnn_status s = check_trace_args(m, o, x, y);
    trace_space t = {0};
    if (!s) s = alloc_trace_space(m, x, &t);
    if (s) return s;
    size_t L = m->n_layers, top = top_layer(m, o);
    forward_d(m, &t, pre);
    if (logits) memcpy(logits, t.as[L], m->layers[L - 1].out * sizeof *logits);
    int reached;
    double v = top_objective(o, t.as[top + 1], m->layers[top].out, NULL, y, t.ds[top], &reached);
    if (value) *value = v;
    if (signal) memset(signal, 0, L * sizeof *signal);
    backward_d(m, &t, top, dx, signal);
    free_trace_space(&t);
    return CLIPNN_OK;
}

clipnn_status clipnn_objective_grad_d(const clipnn_model *m, const clipnn_objective *o,
                                      const double *x, const double *y, double *value, double *dx,
                                      double *logits) {
    return clipnn_objective_trace_d(m, o, x, y, value, dx, logits, NULL, NULL);
}

/* ------------------------------------------------ gradient descent */

/* The 0.999999 shrink keeps atanh finite for pixels on the bounds, so that
 * they start with a derivative (1 - tanh^2 ~ 4e-6) instead of none. */
#define TANH_SHRINK 0.999999

/* var[n] = from[n] - lr dir(g), dir = sign(g) when normalized: every
 * coordinate then moves by lr whatever its gradient's scale, which matters
 * because a model trained on standardized pixels sees each pixel divided by
 * its standard deviation, so its input gradient in pixel units is scaled by
 * 1/std (hundreds for nearly constant pixels) and a fixed lr g either
 * crawls or jumps into saturation. Pixel coordinates stay in the box. */
static void take_step(float *restrict var, const float *restrict from, const float *restrict g, size_t n, double lr,
                      int normalize, int clamp, double lo, double hi) {
    const float step = (float)lr;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float dir = normalize ? (float)((g[i] > 0) - (g[i] < 0)) : g[i];
        float v = from[i] - step * dir;
        var[i] = clamp ? clipnn_box_clamp(v, lo, hi) : v;
    }
}

static clipnn_status check_descent(const clipnn_model *m, const clipnn_inputopt_options *o, const float *x,
                                   const clipnn_inputopt_result *r) {
    if (!m || !o || !x || !r) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: NULL argument");
    clipnn_status s = clipnn_objective_check(m, &o->objective);
    if (!s) s = clipnn_space_check(&o->space);
    if (s) return s;
    if (o->param == CLIPNN_PARAM_TANH && !(isfinite(o->space.box_lo) && isfinite(o->space.box_hi)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: the tanh parametrization needs a finite box");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: step size %g must be > 0", o->lr);
    for (size_t i = 0; i < m->n_inputs; i++)
        if (!isfinite(x[i]))
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "optimize-input: start value %zu is not finite", i);
    return CLIPNN_OK;
}

/* One descent: the optimized variable var (x, or w for tanh), the point xc
 * in x, its gradient g, the best iterate; the last accepted iterate and
 * its gradient, from which a rejected trial step is tried again with half
 * the step, without evaluating it anew. */
typedef struct {
    clipnn_model *m;
    const clipnn_inputopt_options *o;
    const float *y;
    clipnn_inputopt_result *r;
    size_t n;
    double lo, hi, half;
    float *block, *var, *xc, *g, *xm, *best, *accepted, *accepted_g;
    double lr, accepted_value;
    int best_reached;
    double best_value, stall_ref;
    size_t stall_since;
} descent;

static clipnn_status open_descent(descent *D, const float *x) {
    size_t n = D->n;
    D->block = clipnn_alloc_array(7 * n, sizeof *D->block);
    if (!D->block) return clipnn_fail(CLIPNN_ERR_NOMEM, "optimize-input: out of memory for %zu inputs", n);
    D->var = D->block, D->xc = D->block + n, D->g = D->block + 2 * n, D->xm = D->block + 3 * n;
    D->best = D->block + 4 * n, D->accepted = D->block + 5 * n, D->accepted_g = D->block + 6 * n;
    D->lr = D->o->lr, D->accepted_value = INFINITY;
    D->half = (D->hi - D->lo) / 2.0;
    for (size_t i = 0; i < n; i++) {
        double v = fmin(fmax(x[i], D->lo), D->hi);
        D->var[i] = (float)(D->o->param == CLIPNN_PARAM_TANH ? atanh(TANH_SHRINK * ((v - D->lo) / D->half - 1.0)) : v);
    }
    memset(D->r, 0, sizeof *D->r);
    D->best_reached = -1;
    D->best_value = D->stall_ref = INFINITY;
    return CLIPNN_OK;
}

/* The gradient in the optimized variable, in place in g, and its norm; in
 * pixel space the part that would push a coordinate out of the box cannot
 * move it. */
static double optimized_gradient(descent *D) {
    const int tanh_param = D->o->param == CLIPNN_PARAM_TANH;
    double gn = 0.0;
    for (size_t i = 0; i < D->n; i++) {
        if (tanh_param) {
            double th = tanh((double)D->var[i]);
            D->g[i] = (float)((double)D->g[i] * D->half * (1.0 - th * th));
        } else if ((D->xc[i] <= D->lo && D->g[i] > 0) || (D->xc[i] >= D->hi && D->g[i] < 0)) {
            D->g[i] = 0.0f;
        }
        gn += (double)D->g[i] * D->g[i];
    }
    return sqrt(gn);
}

/* A reached iterate beats one that is not; then the lower value. */
static void keep_best(descent *D, size_t t, double value, int reached) {
    if (!(reached > D->best_reached || (reached == D->best_reached && value < D->best_value))) return;
    D->best_reached = reached;
    D->best_value = value;
    D->r->best_step = t;
    memcpy(D->best, D->xc, D->n * sizeof *D->best);
}

/* A zero gradient, or no progress by stall_tol over stall_steps steps. */
static int stalls(descent *D, size_t t, double value, double gn) {
    const clipnn_inputopt_options *o = D->o;
    if (gn <= o->grad_tol) return D->r->stalled = 1;
    if (t == 0 || value < D->stall_ref - o->stall_tol * (1.0 + fabs(D->stall_ref))) {
        D->stall_ref = value;
        D->stall_since = t;
    } else if (o->stall_steps > 0 && t - D->stall_since >= o->stall_steps) {
        return D->r->stalled = 1;
    }
    return 0;
}

/* Step t: evaluate, report, keep the best, then the next trial step.
 * Returns 1 when the descent ends (*s: its status). */
static int descent_step(descent *D, size_t t, clipnn_status *s) {
    const clipnn_inputopt_options *o = D->o;
    const int pixel = o->param == CLIPNN_PARAM_PIXEL;
    if (o->param == CLIPNN_PARAM_TANH)
        for (size_t i = 0; i < D->n; i++) D->xc[i] = (float)(D->lo + D->half * (tanh((double)D->var[i]) + 1.0));
    else
        memcpy(D->xc, D->var, D->n * sizeof *D->xc);
    double value;
    int reached;
    *s = clipnn_objective_grad_space(D->m, &o->objective, &o->space, D->xc, D->y, 1, &value, D->g, &reached, D->xm);
    if (*s) return 1;
    if (!isfinite(value)) {
        *s = clipnn_fail(CLIPNN_ERR_NONFINITE, "optimize-input: objective is %g at step %zu", value, t);
        return 1;
    }
    double gn = optimized_gradient(D);
    /* The step overshot (the gradient is far from zero, the step too
     * large for the curvature): this trial is rejected. */
    const int rejected = o->backtrack && value > D->accepted_value;
    if (t == 0) D->r->start_value = value;
    D->r->steps = t;
    if (o->on_step) {
        clipnn_inputopt_step st = {t, value, gn, reached};
        o->on_step(&st, o->user);
    }
    keep_best(D, t, value, reached);
    if ((reached && o->stop_on_success) || t >= o->steps) return 1;
    if (rejected) {
        D->lr /= 2;
        take_step(D->var, D->accepted, D->accepted_g, D->n, D->lr, o->normalize, pixel, D->lo, D->hi);
        return 0;
    }
    D->r->grad_norm = gn;
    if (stalls(D, t, value, gn)) return 1;
    /* An accepted trial lets a halved step grow back towards lr: a kink
     * of a piecewise-linear objective (the margin loss) must not
     * shrink it for good. */
    if (D->accepted_value < INFINITY) D->lr = fmin(2.0 * D->lr, o->lr);
    memcpy(D->accepted, D->var, D->n * sizeof *D->accepted);
    memcpy(D->accepted_g, D->g, D->n * sizeof *D->accepted_g);
    D->accepted_value = value;
    take_step(D->var, D->accepted, D->g, D->n, D->lr, o->normalize, pixel, D->lo, D->hi);
    return 0;
}

clipnn_status clipnn_optimize_input(clipnn_model *m, const clipnn_inputopt_options *o,
                                    const float *y, float *x, clipnn_inputopt_result *r) {
    clipnn_status s = check_descent(m, o, x, r);
    if (s) return s;
    descent D = {.m = m, .o = o, .y = y, .r = r, .n = m->n_inputs, .lo = o->space.box_lo, .hi = o->space.box_hi};
    if ((s = open_descent(&D, x))) return s;
    for (size_t t = 0; !descent_step(&D, t, &s); t++) continue;
    if (!s) {
        memcpy(x, D.best, D.n * sizeof *x);
        r->reached = D.best_reached == 1;
        r->best_value = D.best_value;
        if (r->reached) r->stalled = 0;
    }
    clipnn_free(D.block);
    return s;
}
