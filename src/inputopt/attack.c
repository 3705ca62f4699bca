/* Adversarial attacks on a frozen network: FGSM (Goodfellow et al. 2015),
 * PGD with L-infinity and L2 budgets (Madry et al. 2018), random starts,
 * restarts, targeted or not, cross-entropy or CW margin, with the best
 * iterate kept per example. The update and projection follow torchattacks'
 * arithmetic (in float32) so that the same numbers come out. */
#include <math.h>
#include <string.h>

#include "inputopt/attack.h"

static const char *const method_names[CLIPNN_ATTACK_COUNT] = {"fgsm", "pgd-linf", "pgd-l2", "apgd-ce", "apgd-dlr"};

CLIPNN_NAME_FUNCTIONS(clipnn_attack_method, clipnn_attack_method, method_names, CLIPNN_ATTACK_COUNT, "attack")

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
    if (isinf(p)) {
        const float e = (float)eps;
#pragma omp simd
        for (size_t i = 0; i < n; i++) x[i] = clipnn_linf_project(x[i], x0[i], e, lo, hi);
        return;
    }
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
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = clipnn_box_clamp(x[i], lo, hi);
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
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: loss must be xent or margin, not %s",
                           clipnn_loss_name(o->loss));
    clipnn_status s = clipnn_apgd_check(m, o);
    if (s) return s;
    if (o->targeted && o->target_class >= clipnn_model_n_outputs(m))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: target class %zu is not one of %zu outputs",
                           o->target_class, clipnn_model_n_outputs(m));
    if (o->batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: batch must be >= 1");
    return clipnn_space_check(&o->space);
}

/* Default step: Madry et al.'s 2.5 eps / steps, but at least eps / 4
 * (torchattacks' 2/255 at 8/255): with 40 steps the first is eps / 16, and
 * on the Fashion-MNIST MLP of docs/input-optimization.md eps / 4 leaves 0.4
 * points fewer examples unbroken at eps 0.1. */
static double attack_step_size(const clipnn_attack_options *o, size_t steps) {
    if (o->method == CLIPNN_ATTACK_FGSM) return o->eps;
    return o->step > 0 ? o->step : fmax(2.5 * o->eps / (double)steps, o->eps / 4.0);
}

void clipnn_attack_restart(attack_batch_ctx *A) {
    attack_work *w = A->w;
    for (size_t b = 0; b < A->B; b++) {
        float *xa = w->xa + b * A->n;
        const float *x0 = w->x0 + b * A->n;
        if (A->o->random_start && w->eligible[b]) {
            random_start(A->rng, xa, x0, A->n, A->l2, A->o->eps);
            clipnn_project_budget(xa, x0, A->n, A->p, A->o->eps, A->lo, A->hi);
        } else {
            memcpy(xa, x0, A->n * sizeof *xa);
        }
    }
}

void clipnn_attack_each_example(attack_batch_ctx *A, attack_example_fn fn, void *arg) {
    int threads = clipnn_threads_for(A->B * A->n);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        size_t lo, hi;
        clipnn_chunk(A->B, clipnn_thread_id(), clipnn_thread_count(), &lo, &hi);
        for (size_t b = lo; b < hi; b++) fn(A, arg, b);
    }
}

/* A zero gradient: every coordinate 0 (a NaN is not, as its norm is not). */
static int all_zero(const float *g, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (g[i] != 0.0f) return 0;
    return 1;
}

void clipnn_attack_keep(attack_batch_ctx *A, size_t b, int last) {
    attack_work *w = A->w;
    const size_t n = A->n;
    const float *g = w->g + b * n;
    if (A->need_gnorm) {
        double gn = 0; /* one sum in order: the same norm whatever the threads */
        for (size_t i = 0; i < n; i++) gn += (double)g[i] * g[i];
        w->gnorm[b] = sqrt(gn);
    }
    if (!w->eligible[b]) return;
    int better = w->reached[b] > w->best_reached[b] ||
                 (w->reached[b] == w->best_reached[b] && w->values[b] < w->best_value[b]);
    if (better || (A->o->keep_last && last)) {
        w->best_reached[b] = w->reached[b];
        w->best_value[b] = w->values[b];
        w->zero_grad[b] = A->need_gnorm ? w->gnorm[b] == 0.0 : all_zero(g, n);
        memcpy(w->best + b * n, w->xa + b * n, n * sizeof *w->best);
    }
}

void clipnn_attack_report(attack_batch_ctx *A, size_t rs, size_t t) {
    const clipnn_attack_options *o = A->o;
    if (!o->on_step) return;
    attack_work *w = A->w;
    const size_t B = A->B;
    double sum_loss = 0, sum_gn = 0;
    size_t fooled = 0;
    for (size_t b = 0; b < B; b++) {
        sum_gn += w->gnorm[b];
        sum_loss += w->values[b];
        w->fooled[b] = w->eligible[b] && w->reached[b];
        fooled += (size_t)w->fooled[b];
    }
    clipnn_attack_step st = {rs,         t, sum_loss / (double)B, sum_gn / (double)B, (double)fooled / (double)B,
                             A->batch_index, B, A->batch_index * o->batch, w->values, w->gnorm, w->fooled};
    o->on_step(&st, o->user);
}

/* A signed step of a on xa, back into the cube of radius e around x0 and
 * into the box. */
CLIPNN_HOT_KERNEL void linf_sign_step(float *restrict xa, const float *restrict g, const float *restrict x0, size_t n,
                                      float a, float e, double lo, double hi) {
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        xa[i] = clipnn_linf_project(xa[i] - (g[i] > 0 ? a : g[i] < 0 ? -a : 0.0f), x0[i], e, lo, hi);
}

/* Example b after iterate t was evaluated: its kept iterate, then (before
 * the last) one step downhill on the objective, back into the budget. */
static void pgd_example(attack_batch_ctx *A, void *arg, size_t b) {
    attack_work *w = A->w;
    const size_t n = A->n;
    const int last = *(const int *)arg;
    clipnn_attack_keep(A, b, last);
    if (last || !w->eligible[b]) return;
    float *xa = w->xa + b * n;
    const float *g = w->g + b * n, *x0 = w->x0 + b * n;
    if (A->l2) {
        float scale = (float)(A->alpha / (w->gnorm[b] + 1e-10));
        for (size_t i = 0; i < n; i++) xa[i] = xa[i] - scale * g[i];
        clipnn_project_budget(xa, x0, n, A->p, A->o->eps, A->lo, A->hi);
        return;
    }
    linf_sign_step(xa, g, x0, n, (float)A->alpha, (float)A->o->eps, A->lo, A->hi);
}

/* One batch: every restart from x0, each iterate compared with the kept one. */
static clipnn_status attack_batch(attack_batch_ctx *A) {
    if (A->o->method == CLIPNN_ATTACK_APGD_CE || A->o->method == CLIPNN_ATTACK_APGD_DLR) return clipnn_apgd_batch(A);
    attack_work *w = A->w;
    for (size_t b = 0; b < A->B; b++) {
        w->best_value[b] = INFINITY;
        w->best_reached[b] = -1;
    }
    memcpy(w->best, w->x0, A->B * A->n * sizeof *w->best);
    for (size_t rs = 0; rs < A->o->restarts; rs++) {
        clipnn_attack_restart(A);
        for (size_t t = 0;; t++) {
            clipnn_status s = clipnn_objective_grad_space(A->m, A->obj, &A->o->space, w->xa, w->y, A->B, w->values,
                                                          w->g, w->reached, w->xm);
            if (s) return s;
            int last = t == A->steps;
            clipnn_attack_each_example(A, pgd_example, &last);
            clipnn_attack_report(A, rs, t);
            if (last) break;
        }
    }
    return CLIPNN_OK;
}

static clipnn_status check_attack(const clipnn_model *m, const clipnn_attack_options *o, const float *x,
                                  const float *labels, size_t n_ex, const clipnn_attack_result *r) {
    if (!m || !o || !x || !labels || !r) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: NULL argument");
    clipnn_status s = check_options(m, o);
    if (s) return s;
    const size_t k = clipnn_model_n_outputs(m);
    for (size_t i = 0; i < n_ex; i++)
        if (!clipnn_is_class_index(labels[i], k))
            return clipnn_fail(CLIPNN_ERR_SHAPE, "attack: label %g of example %zu is not one of %zu classes",
                               (double)labels[i], i, k);
    return CLIPNN_OK;
}

static void free_work(attack_work *w) { clipnn_free(w->x0), clipnn_free(w->values), clipnn_free(w->reached); }

/* The work arrays of batches of bs examples of n inputs. */
static clipnn_status alloc_work(attack_work *w, size_t bs, size_t n) {
    size_t fl;
    if (clipnn_mul_size(bs, n, &fl) || fl > SIZE_MAX / 8)
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "attack: batch of %zu x %zu inputs is too large", bs, n);
    float *fblock = clipnn_alloc_array(5 * fl + bs, sizeof *fblock);
    double *dblock = clipnn_alloc_array(3 * bs, sizeof *dblock);
    int *iblock = clipnn_alloc_array(5 * bs, sizeof *iblock);
    w->x0 = fblock, w->values = dblock, w->reached = iblock;
    if (!fblock || !dblock || !iblock) {
        free_work(w);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "attack: out of memory for a batch of %zu", bs);
    }
    w->xa = fblock + fl, w->best = fblock + 2 * fl, w->g = fblock + 3 * fl, w->xm = fblock + 4 * fl;
    w->y = fblock + 5 * fl;
    w->best_value = dblock + bs, w->gnorm = dblock + 2 * bs;
    w->best_reached = iblock + bs, w->eligible = iblock + 2 * bs, w->zero_grad = iblock + 3 * bs;
    w->fooled = iblock + 4 * bs;
    return CLIPNN_OK;
}

/* Sums over the successful adversarial inputs, for the mean distortions. */
typedef struct {
    double linf, l2;
} distortion;

/* The model's outputs *z for the B inputs x given in the data space (xm:
 * scratch for the model's inputs). */
static clipnn_status outputs_of(clipnn_model *m, const clipnn_input_space *space, const float *x, size_t B, float *xm,
                                const float **z) {
    return clipnn_forward(m, clipnn_space_model_input(space, x, B, m->n_inputs, xm), B, z);
}

/* The batch's inputs into w->x0 (inside the box), and the clean
 * predictions, which decide the examples the attack can fool. */
static clipnn_status load_batch(clipnn_model *m, const clipnn_attack_options *o, attack_work *w, const float *xb,
                                const float *labels, size_t start, size_t B, clipnn_attack_result *r) {
    const size_t n = m->n_inputs, k = clipnn_model_n_outputs(m);
    for (size_t i = 0; i < B * n; i++)
        if (!(xb[i] >= o->space.box_lo && xb[i] <= o->space.box_hi))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: input %zu, feature %zu is %g, outside the box [%g, %g]",
                               start + i / n, i % n, (double)xb[i], o->space.box_lo, o->space.box_hi);
    memcpy(w->x0, xb, B * n * sizeof *w->x0);
    const float *z;
    clipnn_status s = outputs_of(m, &o->space, w->x0, B, w->xm, &z);
    if (s) return s;
    for (size_t b = 0; b < B; b++) {
        size_t label = (size_t)labels[start + b], pred = clipnn_argmax(z + b * k, k);
        r->clean_correct += pred == label;
        w->eligible[b] = o->targeted ? label != o->target_class : pred == label;
        w->y[b] = o->targeted ? (float)o->target_class : labels[start + b];
        w->zero_grad[b] = 0;
    }
    return CLIPNN_OK;
}

/* The kept inputs of the batch: robust predictions, successes and their
 * distortions, and the failures with a zero gradient. */
static clipnn_status score_batch(clipnn_model *m, const clipnn_attack_options *o, attack_work *w, const float *labels,
                                 size_t start, size_t B, clipnn_attack_result *r, distortion *sum) {
    const size_t n = m->n_inputs, k = clipnn_model_n_outputs(m);
    const float *z;
    clipnn_status s = outputs_of(m, &o->space, w->best, B, w->xm, &z);
    if (s) return s;
    for (size_t b = 0; b < B; b++) {
        size_t label = (size_t)labels[start + b], pred = clipnn_argmax(z + b * k, k);
        r->robust_correct += pred == label;
        if (!w->eligible[b]) continue;
        r->eligible++;
        if (w->best_reached[b] != 1) {
            r->zero_grad += w->zero_grad[b];
            continue;
        }
        r->successes++;
        double linf = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)w->best[b * n + i] - (double)w->x0[b * n + i]);
            linf = d > linf ? d : linf;
            ss += d * d;
        }
        sum->linf += linf;
        sum->l2 += sqrt(ss);
    }
    return CLIPNN_OK;
}

static void finish_result(clipnn_attack_result *r, size_t n_ex, const distortion *sum) {
    double nn = n_ex ? (double)n_ex : NAN;
    r->clean_accuracy = (double)r->clean_correct / nn;
    r->robust_accuracy = (double)r->robust_correct / nn;
    r->success_rate = r->eligible ? (double)r->successes / (double)r->eligible : NAN;
    r->mean_linf = r->successes ? sum->linf / (double)r->successes : NAN;
    r->mean_l2 = r->successes ? sum->l2 / (double)r->successes : NAN;
}

clipnn_status clipnn_attack(clipnn_model *m, const clipnn_attack_options *o, const float *x,
                            const float *labels, size_t n_ex, float *adv, clipnn_attack_result *r) {
    clipnn_status s = check_attack(m, o, x, labels, n_ex, r);
    if (s) return s;
    const size_t n = m->n_inputs, bs = o->batch < n_ex ? o->batch : (n_ex ? n_ex : 1);
    attack_work w = {0};
    if ((s = alloc_work(&w, bs, n))) return s;
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = o->targeted ? CLIPNN_OBJ_TARGET_CLASS : CLIPNN_OBJ_LEAVE_CLASS;
    obj.loss = o->method == CLIPNN_ATTACK_APGD_CE ? CLIPNN_LOSS_XENT : o->loss;
    obj.kappa = o->kappa;
    clipnn_rng rng;
    clipnn_rng_seed(&rng, o->seed);
    memset(r, 0, sizeof *r);
    r->n = n_ex;
    const size_t steps = o->method == CLIPNN_ATTACK_FGSM ? 1 : o->steps;
    const int l2 = o->method == CLIPNN_ATTACK_PGD_L2;
    attack_batch_ctx A = {.m = m, .o = o, .obj = &obj, .w = &w, .n = n, .steps = steps, .l2 = l2,
                          .need_gnorm = l2 || o->on_step,
                          .alpha = attack_step_size(o, steps), .p = l2 ? 2.0 : INFINITY, .lo = o->space.box_lo,
                          .hi = o->space.box_hi, .rng = &rng};
    distortion sum = {0, 0};
    for (size_t start = 0; start < n_ex && !s; start += bs) {
        A.B = n_ex - start < bs ? n_ex - start : bs;
        A.batch_index = start / bs;
        s = load_batch(m, o, &w, x + start * n, labels, start, A.B, r);
        if (!s) s = attack_batch(&A);
        if (!s) s = score_batch(m, o, &w, labels, start, A.B, r, &sum);
        if (!s && adv) memcpy(adv + start * n, w.best, A.B * n * sizeof *adv);
    }
    free_work(&w);
    if (!s) finish_result(r, n_ex, &sum);
    return s;
}
