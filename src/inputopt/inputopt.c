/* Input optimization: objectives on a frozen network (float32 path on the
 * model's workspace, double reference with plain loops), the data space
 * with its box and preprocessing, and gradient descent on the input with a
 * box projection or the tanh reparametrization. */
#include <math.h>
#include <string.h>

#include "inputopt/inputopt.h"

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
    size_t k = clipnn_model_n_outputs(m);
    switch (o->kind) {
    case CLIPNN_OBJ_TARGET_CLASS:
    case CLIPNN_OBJ_LEAVE_CLASS:
        if (o->loss != CLIPNN_LOSS_XENT && o->loss != CLIPNN_LOSS_MARGIN)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective: a class objective takes the xent or margin loss, not %s",
                               clipnn_loss_name(o->loss));
        if (k < 2) return clipnn_fail(CLIPNN_ERR_SHAPE, "objective: a class objective needs at least 2 outputs, the model has %zu", k);
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
        if (!(y[r] >= 0.0f && y[r] < (float)k && y[r] == floorf(y[r])))
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

void clipnn_space_grad(const clipnn_input_space *s, float *g, size_t B, size_t dim) {
    if (!s->std) return;
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < dim; j++) g[r * dim + j] /= s->std[j];
}

/* ------------------------------------------------- objective at the top */

/* Value of one example's objective from the outputs a[k] of its top layer,
 * with d value / d a into da[k] (double: the float path rounds the result
 * once, so both paths share this one definition). y: the class ([1]) or
 * the target vector ([k]); NULL for MAXIMIZE_UNIT. */
static double top_objective(const clipnn_objective *o, const double *a, size_t k, const float *yf,
                            const double *yd, double *da, int *reached) {
    double v = 0.0;
    *reached = 0;
    for (size_t j = 0; j < k; j++) da[j] = 0.0;
    if (o->kind == CLIPNN_OBJ_MAXIMIZE_UNIT) {
        da[o->unit] = -1.0;
        return -a[o->unit];
    }
    if (o->kind == CLIPNN_OBJ_TARGET_OUTPUT) {
        /* reached: the prediction (z, or sigmoid(z) for BCE) within
         * output_tol of the target in mean square */
        double pred_err = 0.0;
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
    size_t c = (size_t)(yf ? (double)yf[0] : yd[0]);
    size_t am = 0;
    for (size_t j = 1; j < k; j++)
        if (a[j] > a[am]) am = j;
    int target = o->kind == CLIPNN_OBJ_TARGET_CLASS;
    if (o->loss == CLIPNN_LOSS_XENT) {
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
        v = lse - a[c];
        *reached = target ? am == c : am != c;
        return target ? v : -v;
    }
    /* margin: the best class other than c */
    size_t other = c == 0 ? 1 : 0;
    for (size_t j = 0; j < k; j++)
        if (j != c && a[j] > a[other]) other = j;
    double mv = target ? a[other] - a[c] + o->kappa : a[c] - a[other] + o->kappa;
    if (mv > 0) {
        da[c] = target ? -1.0 : 1.0;
        da[other] = target ? 1.0 : -1.0;
    }
    *reached = mv <= 0 && (target ? am == c : am != c);
    return mv > 0 ? mv : 0.0;
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
    double *a = clipnn_alloc_array(2 * k, sizeof *a), *da = a + k;
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
    clipnn_free(a);
    if (!dx) return CLIPNN_OK;
    /* Backward from the top layer to the input only: no parameter gradients. */
    for (size_t l = top + 1; l-- > 0;) {
        const clipnn_layer *L = &m->layers[l];
        clipnn_act_backward(L->act, m->delta[l], m->pre[l], m->post[l], batch * L->out);
        clipnn_dense_backward(NULL, NULL, l > 0 ? m->delta[l - 1] : dx, m->delta[l],
                              clipnn_layer_input(m, l), m->params + L->w_offset, batch, L->in, L->out);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_objective_grad_space(clipnn_model *m, const clipnn_objective *o,
                                          const clipnn_input_space *s, const float *x,
                                          const float *y, size_t B, double *values, float *dx,
                                          int *reached, float *xm) {
    size_t dim = m->n_inputs;
    clipnn_space_to_model(s, x, B, dim, xm);
    clipnn_status st = clipnn_objective_grad(m, o, xm, y, B, values, dx, reached);
    if (!st && dx) clipnn_space_grad(s, dx, B, dim);
    return st;
}

/* ------------------------------------------------- double reference */

clipnn_status clipnn_objective_trace_d(const clipnn_model *m, const clipnn_objective *o,
                                       const double *x, const double *y, double *value,
                                       double *dx, double *logits, clipnn_signal *signal,
                                       double *pre) {
    clipnn_status s = clipnn_objective_check(m, o);
    if (s) return s;
    if (!x || (o->kind != CLIPNN_OBJ_MAXIMIZE_UNIT && !y))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "objective (double): NULL input or target");
    if (o->kind == CLIPNN_OBJ_TARGET_CLASS || o->kind == CLIPNN_OBJ_LEAVE_CLASS) {
        size_t k = clipnn_model_n_outputs(m);
        if (!(y[0] >= 0 && y[0] < (double)k && y[0] == floor(y[0])))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "objective: class %g is not one of %zu outputs", y[0], k);
    }
    size_t L = m->n_layers, total = m->n_inputs;
    for (size_t l = 0; l < L; l++) total += 3 * m->layers[l].out;
    double *block = clipnn_alloc_array(total, sizeof *block);
    double **zs = clipnn_alloc_array(3 * L + 1, sizeof *zs), **as = zs ? zs + L : NULL, **ds = zs ? zs + 2 * L + 1 : NULL;
    if (!block || !zs) {
        clipnn_free(block), clipnn_free(zs);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "objective (double): out of memory");
    }
    /* z_l, a_l and the backward signal of each layer, one after the other;
     * as[l] is the input of layer l. */
    double *p = block;
    as[0] = p, p += m->n_inputs;
    memcpy(as[0], x, m->n_inputs * sizeof *x);
    for (size_t l = 0; l < L; l++) {
        size_t n = m->layers[l].out;
        zs[l] = p, p += n;
        as[l + 1] = p, p += n;
        ds[l] = p, p += n;
    }
    size_t top = top_layer(m, o), off = 0;
    for (size_t l = 0; l < L; l++) {
        const clipnn_layer *Ly = &m->layers[l];
        const float *W = m->params + Ly->w_offset, *b = m->params + Ly->b_offset;
        for (size_t u = 0; u < Ly->out; u++) {
            double acc = b[u];
            for (size_t i = 0; i < Ly->in; i++) acc += (double)W[u * Ly->in + i] * as[l][i];
            zs[l][u] = acc;
            as[l + 1][u] = clipnn_act_eval_d(Ly->act, acc);
        }
        if (pre) memcpy(pre + off, zs[l], Ly->out * sizeof *pre);
        off += Ly->out;
    }
    if (logits) memcpy(logits, as[L], m->layers[L - 1].out * sizeof *logits);
    int reached;
    double v = top_objective(o, as[top + 1], m->layers[top].out, NULL, y, ds[top], &reached);
    if (value) *value = v;
    if (signal) memset(signal, 0, L * sizeof *signal);
    for (size_t l = top + 1; l-- > 0;) {
        const clipnn_layer *Ly = &m->layers[l];
        const float *W = m->params + Ly->w_offset;
        double n_out = 0, n_pre = 0, n_in = 0;
        for (size_t u = 0; u < Ly->out; u++) {
            n_out += ds[l][u] * ds[l][u];
            ds[l][u] *= clipnn_act_deriv_d(Ly->act, zs[l][u]);
            n_pre += ds[l][u] * ds[l][u];
        }
        double *da = l > 0 ? ds[l - 1] : dx;
        for (size_t i = 0; i < Ly->in; i++) {
            double acc = 0;
            for (size_t u = 0; u < Ly->out; u++) acc += ds[l][u] * (double)W[u * Ly->in + i];
            if (da) da[i] = acc;
            n_in += acc * acc;
        }
        if (signal) signal[l] = (clipnn_signal){sqrt(n_out), sqrt(n_pre), sqrt(n_in)};
    }
    clipnn_free(block);
    clipnn_free(zs);
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
static void take_step(float *var, const float *from, const float *g, size_t n, double lr, int normalize, int clamp,
                      double lo, double hi) {
    for (size_t i = 0; i < n; i++) {
        float dir = normalize ? (float)((g[i] > 0) - (g[i] < 0)) : g[i];
        float v = from[i] - (float)lr * dir;
        if (clamp) v = (float)fmin(fmax(v, lo), hi);
        var[i] = v;
    }
}

clipnn_status clipnn_optimize_input(clipnn_model *m, const clipnn_inputopt_options *o,
                                    const float *y, float *x, clipnn_inputopt_result *r) {
    if (!m || !o || !x || !r) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: NULL argument");
    clipnn_status s = clipnn_objective_check(m, &o->objective);
    if (!s) s = clipnn_space_check(&o->space);
    if (s) return s;
    const double lo = o->space.box_lo, hi = o->space.box_hi;
    if (o->param == CLIPNN_PARAM_TANH && !(isfinite(lo) && isfinite(hi)))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: the tanh parametrization needs a finite box");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimize-input: step size %g must be > 0", o->lr);
    size_t n = m->n_inputs;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return clipnn_fail(CLIPNN_ERR_NONFINITE, "optimize-input: start value %zu is not finite", i);
    float *block = clipnn_alloc_array(7 * n, sizeof *block);
    if (!block) return clipnn_fail(CLIPNN_ERR_NOMEM, "optimize-input: out of memory for %zu inputs", n);
    float *var = block, *xc = block + n, *g = block + 2 * n, *xm = block + 3 * n, *best = block + 4 * n;
    /* The last accepted iterate and its gradient: a rejected trial step is
     * tried again from there with half the step, without evaluating it anew. */
    float *accepted = block + 5 * n, *accepted_g = block + 6 * n;
    double lr = o->lr, accepted_value = INFINITY;
    const double half = (hi - lo) / 2.0;
    for (size_t i = 0; i < n; i++) {
        double v = fmin(fmax(x[i], lo), hi);
        var[i] = (float)(o->param == CLIPNN_PARAM_TANH ? atanh(TANH_SHRINK * ((v - lo) / half - 1.0)) : v);
    }
    memset(r, 0, sizeof *r);
    int best_reached = -1;
    double best_value = INFINITY, stall_ref = INFINITY;
    size_t stall_since = 0;
    for (size_t t = 0;; t++) {
        for (size_t i = 0; i < n; i++)
            xc[i] = o->param == CLIPNN_PARAM_TANH ? (float)(lo + half * (tanh((double)var[i]) + 1.0)) : var[i];
        double value;
        int reached;
        s = clipnn_objective_grad_space(m, &o->objective, &o->space, xc, y, 1, &value, g, &reached, xm);
        if (s) break;
        if (!isfinite(value)) {
            s = clipnn_fail(CLIPNN_ERR_NONFINITE, "optimize-input: objective is %g at step %zu", value, t);
            break;
        }
        /* The gradient in the optimized variable; in pixel space the part
         * that would push a coordinate out of the box cannot move it. */
        double gn = 0.0;
        for (size_t i = 0; i < n; i++) {
            if (o->param == CLIPNN_PARAM_TANH) {
                double th = tanh((double)var[i]);
                g[i] = (float)((double)g[i] * half * (1.0 - th * th));
            } else if ((xc[i] <= lo && g[i] > 0) || (xc[i] >= hi && g[i] < 0)) {
                g[i] = 0.0f;
            }
            gn += (double)g[i] * g[i];
        }
        gn = sqrt(gn);
        /* The step overshot (the gradient is far from zero, the step too
         * large for the curvature): this trial is rejected. */
        const int rejected = o->backtrack && value > accepted_value;
        if (t == 0) r->start_value = value;
        r->steps = t;
        if (o->on_step) {
            clipnn_inputopt_step st = {t, value, gn, reached};
            o->on_step(&st, o->user);
        }
        if (reached > best_reached || (reached == best_reached && value < best_value)) {
            best_reached = reached;
            best_value = value;
            r->best_step = t;
            memcpy(best, xc, n * sizeof *best);
        }
        if (reached && o->stop_on_success) break;
        if (t >= o->steps) break;
        if (rejected) {
            lr /= 2;
            take_step(var, accepted, accepted_g, n, lr, o->normalize, o->param == CLIPNN_PARAM_PIXEL, lo, hi);
            continue;
        }
        r->grad_norm = gn;
        if (gn <= o->grad_tol) {
            r->stalled = 1;
            break;
        }
        if (t == 0 || value < stall_ref - o->stall_tol * (1.0 + fabs(stall_ref))) {
            stall_ref = value;
            stall_since = t;
        } else if (o->stall_steps > 0 && t - stall_since >= o->stall_steps) {
            r->stalled = 1;
            break;
        }
        /* An accepted trial lets a halved step grow back towards lr: a kink
         * of a piecewise-linear objective (the margin loss) must not
         * shrink it for good. */
        if (accepted_value < INFINITY) lr = fmin(2.0 * lr, o->lr);
        memcpy(accepted, var, n * sizeof *accepted);
        memcpy(accepted_g, g, n * sizeof *accepted_g);
        accepted_value = value;
        take_step(var, accepted, g, n, lr, o->normalize, o->param == CLIPNN_PARAM_PIXEL, lo, hi);
    }
    if (!s) {
        memcpy(x, best, n * sizeof *x);
        r->reached = best_reached == 1;
        r->best_value = best_value;
        if (r->reached) r->stalled = 0;
    }
    clipnn_free(block);
    return s;
}
