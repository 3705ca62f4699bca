/* Shared by the attacks (src/inputopt/attack.c) and APGD
 * (src/inputopt/apgd.c): the work arrays of a batch under attack, its
 * context, and the steps every method takes the same way. */
#ifndef CLIPNN_ATTACK_INTERNAL_H
#define CLIPNN_ATTACK_INTERNAL_H

/* The projections and steps select with float comparisons: GCC turns them
 * into vector blends only when it need not keep floating-point exception
 * flags, which nothing here reads (values unchanged). Without it they run
 * one element at a time, most of an attack's time next to the GEMMs on two
 * threads. Here, before every function of the attacks, the inline ones
 * below included (GCC may refuse to inline across different options). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

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
    int l2, need_gnorm; /* need_gnorm: the step callback or the L2 step reads the gradient norms */
    double alpha, p, lo, hi;
    clipnn_rng *rng;
} attack_batch_ctx;

/* One coordinate x of an iterate back into the L-infinity ball of radius e
 * around x0, then into the box [lo, hi]. */
static inline float clipnn_linf_project(float x, float x0, float e, double lo, double hi) {
    float d = x - x0;
    d = d > e ? e : d < -e ? -e : d;
    return clipnn_box_clamp(x0 + d, lo, hi);
}

/* Every example back at x0, or at a random start in the budget. */
void clipnn_attack_restart(attack_batch_ctx *A);
/* fn(A, arg, b) for every example b of the batch, the examples split among
 * the library's threads: each example's arithmetic is the same whatever
 * the split, so the results do not depend on the number of threads. */
typedef void (*attack_example_fn)(attack_batch_ctx *A, void *arg, size_t b);
void clipnn_attack_each_example(attack_batch_ctx *A, attack_example_fn fn, void *arg);
/* Example b's gradient norm (when needed) and its kept iterate (a fooled
 * one beats one that is not, then the lower value; the last one with
 * keep_last). */
void clipnn_attack_keep(attack_batch_ctx *A, size_t b, int last);
/* The trace row of iterate t (batch means) to the step callback, if any. */
void clipnn_attack_report(attack_batch_ctx *A, size_t rs, size_t t);

/* APGD (Croce and Hein 2020): the options it refuses, and one batch. */
clipnn_status clipnn_apgd_check(const clipnn_model *m, const clipnn_attack_options *o);
clipnn_status clipnn_apgd_batch(attack_batch_ctx *A);
/* APGD's checkpoints for n_iter iterations: w_j = ceil(p_j n_iter), p_0 = 0,
 * p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), those in
 * [1, n_iter), into w (at most cap); returns how many. */
size_t clipnn_apgd_checkpoints(size_t n_iter, size_t *w, size_t cap);

#endif
