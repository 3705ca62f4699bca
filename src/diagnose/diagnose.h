/* Shared by src/diagnose/diagnose.c (the tests any objective gets, the curvature
 * probes, masking) and src/diagnose/network.c (the tests that look inside a
 * network). */
#ifndef CLIPNN_DIAGNOSE_INTERNAL_H
#define CLIPNN_DIAGNOSE_INTERNAL_H

#include "inputopt/inputopt.h"

/* An objective in x (the data space) seen two ways. */
typedef struct {
    size_t n;
    double (*eval_d)(void *ctx, const double *x, double *g); /* g may be NULL */
    double (*eval_f)(void *ctx, const float *x, float *g);   /* g may be NULL */
    void *ctx;
} problem;

typedef struct {
    int known;   /* the objective knows whether it is reached */
    int reached;
    int classify; /* a class objective: the CW margin loss is a remedy */
} target_state;

/* Record a cause found (with its numbers and remedy), or a check run. */
void clipnn_diag_finding(clipnn_diagnosis *d, clipnn_cause cause, const char *test, const char *remedy,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void clipnn_diag_check(clipnn_diagnosis *d, const char *test, int passed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Everything that does not need a model: stall, stationarity, curvature
 * (Lanczos), precision, box and parametrization. tiny: the gradient norm
 * below which the optimizer's gradient counts as zero. */
clipnn_status clipnn_diagnose_problem(problem *P, const float *point, const clipnn_diagnose_options *o,
                                      const target_state *ts, double tiny, clipnn_diagnosis *d);

/* Remedies that fit the network and the task. */
int clipnn_diag_flat_tail(clipnn_act act); /* GELU, softplus: flat for large negative inputs */
const char *clipnn_diag_saturation_remedy(clipnn_act act, int output_sigmoid);
const char *clipnn_diag_dead_relu_remedy(void);
/* float32 gradient exactly 0, double not: max_component the double one's largest |component|. */
void clipnn_diag_float_zero_remedy(const target_state *ts, double max_component, char *buf, size_t cap);
const char *clipnn_diag_minimum_remedy(const target_state *ts, int reached);

/* clipnn_diagnose_model for a model with recurrent layers: the input
 * gradient through time (src/diagnose/through_time.c). */
clipnn_status clipnn_diagnose_recurrent(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                        const float *point, const clipnn_diagnose_options *o, clipnn_diagnosis *d);
/* The constructed cases through time (src/diagnose/demo_time.c): variant 0
 * vanishing, 1 exploding, 2 healthy: the model into *m (the caller frees
 * it), its input into x ([cap] at least its steps), the case into info;
 * the objective is class 0 under cross-entropy. */
clipnn_status clipnn_demo_through_time(int variant, clipnn_model **m, float *x, size_t cap, clipnn_demo_info *info);

#endif
