/* Shared by the attacks (src/inputopt/attack.c) and APGD
 * (src/inputopt/apgd.c): the work arrays of a batch under attack, its
 * context, and the steps every method takes the same way. */
#ifndef CLIPNN_ATTACK_INTERNAL_H
#define CLIPNN_ATTACK_INTERNAL_H

#include "inputopt/inputopt.h"

typedef struct {
    float *x0, *xa, *best, *g, *xm, *y;
    double *values, *best_value, *gnorm;
    int *reached, *best_reached, *eligible, *zero_grad, *fooled;
} attack_work;

/* One batch under attack: the options, the objective, the work arrays
 * and what the method fixes (step alpha, norm p, number of steps). */
typedef struct {
    clipnn_model *m;
    const clipnn_attack_options *o;
    const clipnn_objective *obj;
    attack_work *w;
    size_t B, batch_index, n, steps;
    int l2;
    double alpha, p, lo, hi;
    clipnn_rng *rng;
} attack_batch_ctx;

/* Every example back at x0, or at a random start in the budget. */
void clipnn_attack_restart(attack_batch_ctx *A);
/* The iterate's gradient norms, the kept iterate per example (a fooled
 * one beats one that is not, then the lower value; the last one with
 * keep_last), and the trace row. */
void clipnn_attack_observe(attack_batch_ctx *A, size_t rs, size_t t, int last);

/* APGD (Croce and Hein 2020): the options it refuses, and one batch. */
clipnn_status clipnn_apgd_check(const clipnn_model *m, const clipnn_attack_options *o);
clipnn_status clipnn_apgd_batch(attack_batch_ctx *A);
/* APGD's checkpoints for n_iter iterations: w_j = ceil(p_j n_iter), p_0 = 0,
 * p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), those in
 * [1, n_iter), into w (at most cap); returns how many. */
size_t clipnn_apgd_checkpoints(size_t n_iter, size_t *w, size_t cap);

#endif
