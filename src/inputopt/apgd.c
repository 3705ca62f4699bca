/* APGD, Auto-PGD (Croce and Hein, "Reliable evaluation of adversarial
 * robustness with an ensemble of diverse parameter-free attacks", ICML 2020,
 * Algorithm 1), L-infinity budget, as the paper states it:
 *
 *   eta = 2 eps; x1 = P(x0 + eta sign(grad f(x0)));
 *   z_{k+1} = P(x_k + eta sign(grad f(x_k)));
 *   x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1})), alpha = 0.75;
 *   at each checkpoint w_j the step is halved and the iterate restarts from
 *   the best point (with its gradient) when
 *     (1) fewer than rho (w_j - w_{j-1}) of the steps since w_{j-1} raised f, rho = 0.75, or
 *     (2) the step was not halved at w_{j-1} and the best value has not moved since.
 *
 * f is maximized: the cross-entropy (untargeted; minus the cross-entropy of
 * the target class when targeted) or the DLR loss -(z_y - max_{i!=y} z_i) /
 * (z_pi1 - z_pi3 + 1e-12), pi the logits in decreasing order. The library's
 * objectives are minimized, so f = -value throughout. Where AutoAttack's
 * reference code departs from the paper the paper is followed: checkpoints
 * ceil(p_j N) (the code truncates), a strict "<" in condition 1 (the code
 * has "<="), condition 2 possible at the first checkpoint, and after a
 * restart the count of increases starts from f(x_max). */
#include <math.h>
#include <string.h>

#include "inputopt/attack.h"

#define APGD_ALPHA 0.75
#define APGD_RHO 0.75
#define APGD_MAX_CHECKPOINTS 64

size_t clipnn_apgd_checkpoints(size_t n_iter, size_t *w, size_t cap) {
    double p_prev = 0, p = 0.22;
    size_t n = 0;
    while (n < cap) {
        size_t wj = (size_t)ceil(p * (double)n_iter - 1e-9); /* p 0.22 N in floating point may land just above */
        if (wj >= n_iter) break;
        if (wj > 0 && (n == 0 || wj > w[n - 1])) w[n++] = wj;
        double next = p + fmax(p - p_prev - 0.03, 0.06);
        p_prev = p, p = next;
    }
    return n;
}

clipnn_status clipnn_apgd_check(const clipnn_model *m, const clipnn_attack_options *o) {
    if (o->method != CLIPNN_ATTACK_APGD_CE && o->method != CLIPNN_ATTACK_APGD_DLR) return CLIPNN_OK;
    const char *name = clipnn_attack_method_name(o->method);
    if (o->loss != CLIPNN_LOSS_XENT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: %s fixes its own loss; leave the loss at xent", name);
    if (o->method == CLIPNN_ATTACK_APGD_DLR && o->targeted)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: apgd-dlr is untargeted; use apgd-ce for a target class");
    if (o->method == CLIPNN_ATTACK_APGD_DLR && clipnn_model_n_outputs(m) < 3)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "attack: apgd-dlr needs 3 classes or more (the model has %zu)",
                           clipnn_model_n_outputs(m));
    return CLIPNN_OK;
}

/* ----------------------------------------------------------- DLR loss */

/* The largest z[j] over j not in {skip1, skip2} (k >= 3). */
static size_t argmax_except(const double *z, size_t k, size_t skip1, size_t skip2) {
    size_t best = k;
    for (size_t j = 0; j < k; j++)
        if (j != skip1 && j != skip2 && (best == k || z[j] > z[best])) best = j;
    return best;
}

/* value = (z_y - z_o) / (z_pi1 - z_pi3 + 1e-12) = -DLR and its gradient da
 * in the logits z[k] (o: the best class other than y). */
static double dlr_value(const double *z, size_t k, size_t y, double *da, int *reached) {
    size_t i1 = argmax_except(z, k, k, k), i2 = argmax_except(z, k, i1, k), i3 = argmax_except(z, k, i1, i2);
    size_t o = argmax_except(z, k, y, k);
    double D = z[i1] - z[i3] + 1e-12, v = (z[y] - z[o]) / D;
    memset(da, 0, k * sizeof *da);
    da[y] += 1 / D, da[o] -= 1 / D, da[i1] -= v / D, da[i3] += v / D;
    *reached = i1 != y;
    return v;
}

/* DLR values, gradients in the data space and success flags for the batch
 * at w->xa (forward, then the same backward as the objectives). */
static clipnn_status dlr_eval(attack_batch_ctx *A) {
    attack_work *w = A->w;
    clipnn_model *m = A->m;
    const size_t top = m->n_layers - 1, k = m->layers[top].out;
    clipnn_status s = clipnn_forward(m, clipnn_space_model_input(&A->o->space, w->xa, A->B, A->n, w->xm), A->B, NULL);
    if (s) return s;
    double z[64], da[64], *zz = k <= 64 ? z : clipnn_alloc_array(2 * k, sizeof *zz), *dd = k <= 64 ? da : zz + k;
    if (!zz) return clipnn_fail(CLIPNN_ERR_NOMEM, "attack: out of memory");
    for (size_t b = 0; b < A->B; b++) {
        for (size_t j = 0; j < k; j++) zz[j] = m->post[top][b * k + j];
        w->values[b] = dlr_value(zz, k, (size_t)w->y[b], dd, &w->reached[b]);
        for (size_t j = 0; j < k; j++) m->delta[top][b * k + j] = (float)dd[j];
    }
    if (zz != z) clipnn_free(zz);
    clipnn_objective_backward(m, top, A->B, w->g);
    clipnn_space_grad(&A->o->space, w->g, A->B, A->n);
    return CLIPNN_OK;
}

static clipnn_status apgd_eval(attack_batch_ctx *A) {
    attack_work *w = A->w;
    if (A->o->method == CLIPNN_ATTACK_APGD_DLR) return dlr_eval(A);
    return clipnn_objective_grad_space(A->m, A->obj, &A->o->space, w->xa, w->y, A->B, w->values, w->g, w->reached,
                                       w->xm);
}

/* ------------------------------------------------------- the iteration */

/* Per example: step size, the best point and its gradient, the previous
 * iterate, and what the checkpoints compare. */
typedef struct {
    double *eta, *fmax, *fprev, *fmax_at_check;
    size_t *increases;
    int *halved_last;
    float *xmax, *gmax, *xprev;
    size_t w[APGD_MAX_CHECKPOINTS], n_w, next_w, last_w;
} apgd_state;

static clipnn_status apgd_alloc(apgd_state *S, size_t B, size_t n) {
    memset(S, 0, sizeof *S);
    S->eta = clipnn_alloc_array(4 * B, sizeof *S->eta);
    S->increases = clipnn_alloc_array(B, sizeof *S->increases);
    S->halved_last = clipnn_alloc_array(B, sizeof *S->halved_last);
    S->xmax = clipnn_alloc_array(3 * B * n, sizeof *S->xmax);
    if (!S->eta || !S->increases || !S->halved_last || !S->xmax)
        return clipnn_fail(CLIPNN_ERR_NOMEM, "apgd: out of memory");
    S->fmax = S->eta + B, S->fprev = S->fmax + B, S->fmax_at_check = S->fprev + B;
    S->gmax = S->xmax + B * n, S->xprev = S->gmax + B * n;
    return CLIPNN_OK;
}

static void apgd_free(apgd_state *S) {
    clipnn_free(S->eta), clipnn_free(S->increases), clipnn_free(S->halved_last), clipnn_free(S->xmax);
}

/* Example b at the start x0 of a run: eta = 2 eps, x_max = x0. */
static void apgd_start(attack_batch_ctx *A, apgd_state *S, size_t b) {
    const attack_work *w = A->w;
    const size_t n = A->n;
    S->eta[b] = 2 * A->o->eps;
    S->fmax[b] = S->fprev[b] = S->fmax_at_check[b] = -w->values[b];
    S->increases[b] = 0;
    S->halved_last[b] = 0;
    memcpy(S->xmax + b * n, w->xa + b * n, n * sizeof *S->xmax);
    memcpy(S->gmax + b * n, w->g + b * n, n * sizeof *S->gmax);
    memcpy(S->xprev + b * n, w->xa + b * n, n * sizeof *S->xprev);
}

/* Example b after x_t was evaluated (t >= 1): the best point, the count of
 * increases, and at a checkpoint the two conditions (halve and restart
 * from x_max). */
static void apgd_bookkeep(attack_batch_ctx *A, apgd_state *S, size_t b, size_t t, int check) {
    attack_work *w = A->w;
    const size_t n = A->n;
    double f = -w->values[b];
    S->increases[b] += f > S->fprev[b];
    S->fprev[b] = f;
    if (f > S->fmax[b]) {
        S->fmax[b] = f;
        memcpy(S->xmax + b * n, w->xa + b * n, n * sizeof *S->xmax);
        memcpy(S->gmax + b * n, w->g + b * n, n * sizeof *S->gmax);
    }
    if (!check) return;
    int cond1 = (double)S->increases[b] < APGD_RHO * (double)(t - S->last_w);
    int cond2 = !S->halved_last[b] && S->fmax[b] == S->fmax_at_check[b];
    S->halved_last[b] = cond1 || cond2;
    if (S->halved_last[b]) {
        S->eta[b] /= 2;
        memcpy(w->xa + b * n, S->xmax + b * n, n * sizeof *w->xa);
        memcpy(w->g + b * n, S->gmax + b * n, n * sizeof *w->g);
        S->fprev[b] = S->fmax[b];
    }
    S->fmax_at_check[b] = S->fmax[b];
    S->increases[b] = 0;
}

/* The first step x_1 = P(x_0 + eta sign(g)) of one example, in place in
 * xa; xp keeps x_0. */
CLIPNN_HOT_KERNEL void apgd_first_step(float *restrict xa, float *restrict xp, const float *restrict g,
                                       const float *restrict x0, size_t n, float eta, float e, double lo, double hi) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        xp[i] = xa[i];
        xa[i] = clipnn_linf_project(xa[i] - (g[i] > 0 ? eta : g[i] < 0 ? -eta : 0.0f), x0[i], e, lo, hi);
    }
}

/* x_t to x_{t+1} with the momentum term, in one pass: every coordinate of
 * z_{t+1}, of x_{t+1} and of both projections depends on that coordinate
 * alone. xa: x_t, then x_{t+1}; xp: x_{t-1}, then x_t. */
CLIPNN_HOT_KERNEL void apgd_momentum_step(float *restrict xa, float *restrict xp, const float *restrict g,
                                          const float *restrict x0, size_t n, float eta, float e, double lo,
                                          double hi) {
    const float a = (float)APGD_ALPHA, c = (float)(1 - APGD_ALPHA);
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = xa[i], z = clipnn_linf_project(x - (g[i] > 0 ? eta : g[i] < 0 ? -eta : 0.0f), x0[i], e, lo, hi);
        xa[i] = clipnn_linf_project(x + a * (z - x) + c * (x - xp[i]), x0[i], e, lo, hi);
        xp[i] = x;
    }
}

/* x_t to x_{t+1} for example b (sign steps up f = -value). */
static void apgd_step(attack_batch_ctx *A, apgd_state *S, size_t b, size_t t) {
    attack_work *w = A->w;
    const size_t n = A->n;
    float *xa = w->xa + b * n, *xp = S->xprev + b * n;
    const float *g = w->g + b * n, *x0 = w->x0 + b * n;
    const float eta = (float)S->eta[b], e = (float)A->o->eps;
    if (t == 0) apgd_first_step(xa, xp, g, x0, n, eta, e, A->lo, A->hi);
    else apgd_momentum_step(xa, xp, g, x0, n, eta, e, A->lo, A->hi);
}

/* One iterate t of the batch, for every example. */
typedef struct {
    apgd_state *S;
    size_t t;
    int check, last;
} apgd_pass;

/* Example b after x_t was evaluated: its kept iterate, the bookkeeping,
 * and (before the last) the step to x_{t+1}. */
static void apgd_example(attack_batch_ctx *A, void *arg, size_t b) {
    const apgd_pass *P = arg;
    clipnn_attack_keep(A, b, P->last);
    if (P->t == 0) apgd_start(A, P->S, b);
    else apgd_bookkeep(A, P->S, b, P->t, P->check);
    if (!P->last && A->w->eligible[b]) apgd_step(A, P->S, b, P->t);
}

clipnn_status clipnn_apgd_batch(attack_batch_ctx *A) {
    attack_work *w = A->w;
    apgd_state S;
    clipnn_status s = apgd_alloc(&S, A->B, A->n);
    S.n_w = clipnn_apgd_checkpoints(A->steps, S.w, APGD_MAX_CHECKPOINTS);
    for (size_t b = 0; b < A->B; b++) {
        w->best_value[b] = INFINITY;
        w->best_reached[b] = -1;
    }
    memcpy(w->best, w->x0, A->B * A->n * sizeof *w->best);
    for (size_t rs = 0; rs < A->o->restarts && !s; rs++) {
        clipnn_attack_restart(A);
        S.next_w = 0, S.last_w = 0;
        for (size_t t = 0; !s; t++) {
            if ((s = apgd_eval(A))) break;
            apgd_pass P = {&S, t, t > 0 && S.next_w < S.n_w && t == S.w[S.next_w], t == A->steps};
            clipnn_attack_each_example(A, apgd_example, &P);
            clipnn_attack_report(A, rs, t);
            if (P.check) S.last_w = t, S.next_w++;
            if (P.last) break;
        }
    }
    apgd_free(&S);
    return s;
}
