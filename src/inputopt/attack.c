/* Adversarial attacks on a frozen network: FGSM (Goodfellow et al. 2015),
 * PGD with L-infinity and L2 budgets (Madry et al. 2018), random starts,
 * restarts, targeted or not, cross-entropy or CW margin, with the best
 * iterate kept per example. The update and projection follow torchattacks'
 * arithmetic (in float32) so that the same numbers come out. */
#include <math.h>
#include <string.h>

#include "inputopt/inputopt.h"

static const char *const method_names[CLIPNN_ATTACK_COUNT] = {"fgsm", "pgd-linf", "pgd-l2"};

const char *clipnn_attack_method_name(clipnn_attack_method m) {
    return (unsigned)m < CLIPNN_ATTACK_COUNT ? method_names[m] : "unknown";
}

clipnn_status clipnn_attack_method_parse(const char *name, clipnn_attack_method *out) {
    int i = clipnn_lookup_name(method_names, CLIPNN_ATTACK_COUNT, name, "attack");
    if (i < 0) return CLIPNN_ERR_INVALID_ARG;
    *out = (clipnn_attack_method)i;
    return CLIPNN_OK;
}

clipnn_attack_options clipnn_attack_options_default(void) {
    clipnn_attack_options o;
    memset(&o, 0, sizeof o);
    o.method = CLIPNN_ATTACK_PGD_LINF;
    o.eps = 0.03;
    o.steps = 40;
    o.restarts = 1;
    o.loss = CLIPNN_LOSS_XENT;
    o.space = clipnn_input_space_default();
    o.batch = 256;
    o.seed = 1;
    return o;
}

/* x[n] = x0 + delta with delta projected on the ball of radius eps (p = 2 or
 * infinity), then on the box. Clamping to the box after the ball keeps the
 * point in the ball: x0 is in the box, so clamping only shortens each
 * coordinate of delta. */
void clipnn_project_budget(float *x, const float *x0, size_t n, double p, double eps, double lo,
                           double hi) {
    const float e = (float)eps;
    if (isinf(p)) {
        for (size_t i = 0; i < n; i++) {
            float d = x[i] - x0[i];
            d = d > e ? e : d < -e ? -e : d;
            x[i] = x0[i] + d;
        }
    } else {
        double ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)x[i] - (double)x0[i];
            ss += d * d;
        }
        double norm = sqrt(ss);
        float factor = norm > eps ? (float)(eps / norm) : 1.0f;
        for (size_t i = 0; i < n; i++) {
            float d = x[i] - x0[i];
            x[i] = x0[i] + d * factor;
        }
    }
    for (size_t i = 0; i < n; i++) x[i] = (float)fmin(fmax((double)x[i], lo), hi);
}

/* Uniform start: in the L-inf cube, or in the L2 ball (a uniform direction
 * from a normal vector, radius eps u^(1/n)). */
static void random_start(clipnn_rng *rng, float *x, const float *x0, size_t n, int l2, double eps) {
    if (!l2) {
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + (float)(eps * (2.0 * clipnn_rng_uniform(rng) - 1.0));
        return;
    }
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = clipnn_rng_normal(rng);
        x[i] = (float)z;
        ss += z * z;
    }
    double radius = eps * pow(clipnn_rng_uniform(rng), 1.0 / (double)n);
    double f = ss > 0 ? radius / sqrt(ss) : 0.0;
    for (size_t i = 0; i < n; i++) x[i] = x0[i] + (float)(f * x[i]);
}

typedef struct {
    float *x0, *xa, *best, *g, *xm, *y;
    double *values, *best_value, *gnorm;
    int *reached, *best_reached, *eligible, *zero_grad, *fooled;
} attack_work;

static clipnn_status check_options(const clipnn_model *m, const clipnn_attack_options *o) {
    if ((unsigned)o->method >= CLIPNN_ATTACK_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: unknown method %d", (int)o->method);
    if (!(o->eps >= 0) || !isfinite(o->eps))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: epsilon %g must be finite and >= 0", o->eps);
    if (!(o->step >= 0) || !isfinite(o->step))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: step %g must be finite and >= 0", o->step);
    if (o->method != CLIPNN_ATTACK_FGSM && o->steps == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: PGD needs at least one step");
    if (o->restarts == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: restarts must be >= 1");
    if (o->loss != CLIPNN_LOSS_XENT && o->loss != CLIPNN_LOSS_MARGIN)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: loss must be xent or margin, not %s", clipnn_loss_name(o->loss));
    if (o->targeted && o->target_class >= clipnn_model_n_outputs(m))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: target class %zu is not one of %zu outputs", o->target_class,
                           clipnn_model_n_outputs(m));
    if (o->batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: batch must be >= 1");
    return clipnn_space_check(&o->space);
}

/* One batch: every restart from x0, each iterate compared with the kept one. */
static clipnn_status attack_batch(clipnn_model *m, const clipnn_attack_options *o,
                                  const clipnn_objective *obj, attack_work *w, size_t B,
                                  size_t batch_index, clipnn_rng *rng) {
    const size_t n = m->n_inputs;
    const int l2 = o->method == CLIPNN_ATTACK_PGD_L2;
    const size_t steps = o->method == CLIPNN_ATTACK_FGSM ? 1 : o->steps;
    /* Default step: Madry et al.'s 2.5 eps / steps, but at least eps / 4
     * (torchattacks' 2/255 at 8/255): with 40 steps the first is eps / 16,
     * and on the Fashion-MNIST MLP of docs/input-optimization.md eps / 4
     * leaves 0.4 points fewer examples unbroken at eps 0.1. */
    const double alpha = o->method == CLIPNN_ATTACK_FGSM ? o->eps
                         : o->step > 0                   ? o->step
                                                         : fmax(2.5 * o->eps / (double)steps, o->eps / 4.0);
    const double p = l2 ? 2.0 : INFINITY, lo = o->space.box_lo, hi = o->space.box_hi;
    for (size_t b = 0; b < B; b++) {
        w->best_value[b] = INFINITY;
        w->best_reached[b] = -1;
    }
    memcpy(w->best, w->x0, B * n * sizeof *w->best);
    for (size_t rs = 0; rs < o->restarts; rs++) {
        for (size_t b = 0; b < B; b++) {
            float *xa = w->xa + b * n;
            const float *x0 = w->x0 + b * n;
            if (o->random_start && w->eligible[b]) {
                random_start(rng, xa, x0, n, l2, o->eps);
                clipnn_project_budget(xa, x0, n, p, o->eps, lo, hi);
            } else {
                memcpy(xa, x0, n * sizeof *xa);
            }
        }
        for (size_t t = 0;; t++) {
            clipnn_status s = clipnn_objective_grad_space(m, obj, &o->space, w->xa, w->y, B, w->values, w->g,
                                                          w->reached, w->xm);
            if (s) return s;
            double sum_loss = 0, sum_gn = 0;
            size_t fooled = 0;
            int last = t == steps;
            for (size_t b = 0; b < B; b++) {
                const float *g = w->g + b * n;
                double gn = 0;
                for (size_t i = 0; i < n; i++) gn += (double)g[i] * g[i];
                w->gnorm[b] = sqrt(gn);
                sum_gn += w->gnorm[b];
                sum_loss += w->values[b];
                fooled += w->eligible[b] && w->reached[b];
                if (!w->eligible[b]) continue;
                int better = w->reached[b] > w->best_reached[b] ||
                             (w->reached[b] == w->best_reached[b] && w->values[b] < w->best_value[b]);
                if (better || (o->keep_last && last)) {
                    w->best_reached[b] = w->reached[b];
                    w->best_value[b] = w->values[b];
                    w->zero_grad[b] = gn == 0.0;
                    memcpy(w->best + b * n, w->xa + b * n, n * sizeof *w->best);
                }
            }
            if (o->on_step) {
                for (size_t b = 0; b < B; b++) w->fooled[b] = w->eligible[b] && w->reached[b];
                clipnn_attack_step st = {rs,         t, sum_loss / (double)B, sum_gn / (double)B, (double)fooled / (double)B,
                                         batch_index, B, batch_index * o->batch, w->values, w->gnorm, w->fooled};
                o->on_step(&st, o->user);
            }
            if (last) break;
            /* One step downhill on the objective, then back into the budget. */
            for (size_t b = 0; b < B; b++) {
                if (!w->eligible[b]) continue;
                float *xa = w->xa + b * n;
                const float *g = w->g + b * n;
                if (l2) {
                    double gn = 0;
                    for (size_t i = 0; i < n; i++) gn += (double)g[i] * g[i];
                    float scale = (float)(alpha / (sqrt(gn) + 1e-10));
                    for (size_t i = 0; i < n; i++) xa[i] = xa[i] - scale * g[i];
                } else {
                    const float a = (float)alpha;
                    for (size_t i = 0; i < n; i++) xa[i] = xa[i] - (g[i] > 0 ? a : g[i] < 0 ? -a : 0.0f);
                }
                clipnn_project_budget(xa, w->x0 + b * n, n, p, o->eps, lo, hi);
            }
        }
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_attack(clipnn_model *m, const clipnn_attack_options *o, const float *x,
                            const float *labels, size_t n_ex, float *adv, clipnn_attack_result *r) {
    if (!m || !o || !x || !labels || !r) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: NULL argument");
    clipnn_status s = check_options(m, o);
    if (s) return s;
    const size_t n = m->n_inputs, k = clipnn_model_n_outputs(m);
    for (size_t i = 0; i < n_ex; i++)
        if (!(labels[i] >= 0 && labels[i] < (float)k && labels[i] == floorf(labels[i])))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "attack: label %g of example %zu is not one of %zu classes",
                               (double)labels[i], i, k);
    const size_t bs = o->batch < n_ex ? o->batch : (n_ex ? n_ex : 1);
    size_t fl;
    if (clipnn_mul_size(bs, n, &fl) || fl > SIZE_MAX / 8)
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "attack: batch of %zu x %zu inputs is too large", bs, n);
    attack_work w;
    float *fblock = clipnn_alloc_array(5 * fl + bs, sizeof *fblock);
    double *dblock = clipnn_alloc_array(3 * bs, sizeof *dblock);
    int *iblock = clipnn_alloc_array(5 * bs, sizeof *iblock);
    if (!fblock || !dblock || !iblock) {
        clipnn_free(fblock), clipnn_free(dblock), clipnn_free(iblock);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "attack: out of memory for a batch of %zu", bs);
    }
    w.x0 = fblock, w.xa = fblock + fl, w.best = fblock + 2 * fl, w.g = fblock + 3 * fl, w.xm = fblock + 4 * fl;
    w.y = fblock + 5 * fl;
    w.values = dblock, w.best_value = dblock + bs, w.gnorm = dblock + 2 * bs;
    w.reached = iblock, w.best_reached = iblock + bs, w.eligible = iblock + 2 * bs, w.zero_grad = iblock + 3 * bs;
    w.fooled = iblock + 4 * bs;

    clipnn_objective obj = clipnn_objective_default();
    obj.kind = o->targeted ? CLIPNN_OBJ_TARGET_CLASS : CLIPNN_OBJ_LEAVE_CLASS;
    obj.loss = o->loss;
    obj.kappa = o->kappa;
    clipnn_rng rng;
    clipnn_rng_seed(&rng, o->seed);
    memset(r, 0, sizeof *r);
    r->n = n_ex;
    double sum_linf = 0, sum_l2 = 0;
    for (size_t start = 0; start < n_ex && !s; start += bs) {
        size_t B = n_ex - start < bs ? n_ex - start : bs;
        const float *xb = x + start * n;
        for (size_t i = 0; i < B * n; i++)
            if (!(xb[i] >= o->space.box_lo && xb[i] <= o->space.box_hi)) {
                s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: input %zu, feature %zu is %g, outside the box [%g, %g]",
                                start + i / n, i % n, (double)xb[i], o->space.box_lo, o->space.box_hi);
                break;
            }
        if (s) break;
        memcpy(w.x0, xb, B * n * sizeof *w.x0);
        /* Clean predictions decide which examples the attack can fool. */
        clipnn_space_to_model(&o->space, w.x0, B, n, w.xm);
        const float *z;
        if ((s = clipnn_forward(m, w.xm, B, &z))) break;
        for (size_t b = 0; b < B; b++) {
            size_t label = (size_t)labels[start + b], pred = clipnn_argmax(z + b * k, k);
            r->clean_correct += pred == label;
            w.eligible[b] = o->targeted ? label != o->target_class : pred == label;
            w.y[b] = o->targeted ? (float)o->target_class : labels[start + b];
            w.zero_grad[b] = 0;
        }
        if ((s = attack_batch(m, o, &obj, &w, B, start / bs, &rng))) break;
        clipnn_space_to_model(&o->space, w.best, B, n, w.xm);
        if ((s = clipnn_forward(m, w.xm, B, &z))) break;
        for (size_t b = 0; b < B; b++) {
            size_t label = (size_t)labels[start + b], pred = clipnn_argmax(z + b * k, k);
            r->robust_correct += pred == label;
            if (!w.eligible[b]) continue;
            r->eligible++;
            if (w.best_reached[b] == 1) {
                r->successes++;
                double linf = 0, ss = 0;
                for (size_t i = 0; i < n; i++) {
                    double d = fabs((double)w.best[b * n + i] - (double)w.x0[b * n + i]);
                    linf = d > linf ? d : linf;
                    ss += d * d;
                }
                sum_linf += linf;
                sum_l2 += sqrt(ss);
            } else {
                r->zero_grad += w.zero_grad[b];
            }
        }
        if (adv) memcpy(adv + start * n, w.best, B * n * sizeof *adv);
    }
    clipnn_free(fblock), clipnn_free(dblock), clipnn_free(iblock);
    if (s) return s;
    double nn = n_ex ? (double)n_ex : NAN;
    r->clean_accuracy = (double)r->clean_correct / nn;
    r->robust_accuracy = (double)r->robust_correct / nn;
    r->success_rate = r->eligible ? (double)r->successes / (double)r->eligible : NAN;
    r->mean_linf = r->successes ? sum_linf / (double)r->successes : NAN;
    r->mean_l2 = r->successes ? sum_l2 / (double)r->successes : NAN;
    return CLIPNN_OK;
}
