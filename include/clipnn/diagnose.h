/* clipnn: Why is a gradient zero, vanishing or exploding: the diagnosis and its built-in cases. */
#ifndef CLIPNN_PUBLIC_DIAGNOSE_H
#define CLIPNN_PUBLIC_DIAGNOSE_H

#include "clipnn/inputopt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ diagnosis */

/* Why is the gradient zero? A diagnosis runs a fixed set of tests at one
 * point and reports every cause that applies, each with the test that found
 * it, its numbers and a remedy (docs/input-optimization.md lists them). */
typedef enum {
    CLIPNN_CAUSE_LOCAL_MINIMUM = 0,
    CLIPNN_CAUSE_SADDLE,
    CLIPNN_CAUSE_SATURATION,
    CLIPNN_CAUSE_PRECISION,
    CLIPNN_CAUSE_PARAMETRIZATION, /* box, tanh parametrization, dead ReLUs, ignored directions */
    CLIPNN_CAUSE_MASKING,         /* gradient-masking symptoms of an attack */
    CLIPNN_CAUSE_VANISHING_THROUGH_TIME, /* a recurrent model: the gradient dies going back through the steps */
    CLIPNN_CAUSE_EXPLODING_THROUGH_TIME, /* a recurrent model: the gradient grows going back through the steps */
    CLIPNN_CAUSE_COUNT
} clipnn_cause;
CLIPNN_API const char *clipnn_cause_name(clipnn_cause c); /* "local-minimum", "saddle", ... */

#define CLIPNN_DIAG_MAX 24

typedef struct {
    clipnn_cause cause;
    char test[64];     /* the test that found it, e.g. "lanczos-curvature" */
    char numbers[320]; /* what it measured */
    char remedy[256];
} clipnn_finding;

typedef struct {
    char test[64];
    int passed;        /* 1: nothing wrong found by this test */
    char numbers[320];
} clipnn_check;

typedef struct {
    int stalled;             /* the gradient the optimizer sees is tiny (<= grad_tol) */
    int stationary;          /* the double reference gradient (in x) is tiny as well */
    int at_target;           /* the objective is met (model objectives) or within loss_tol of target */
    double value, value_ref; /* objective, float32 and double */
    double grad_norm;        /* the optimizer's gradient (float32, analytic or finite differences, in
                                the optimized variable, projected on the box) */
    double grad_norm_raw;    /* the same before projection */
    double grad_norm_ref;    /* double reference gradient in x */
    double min_curvature, max_curvature; /* extreme curvatures found (NaN: not probed) */
    double escape_decrease, escape_step; /* along the most negative curvature direction */
    /* Recurrent models (NaN otherwise): ||d objective / d x_1|| / ||d objective / d x_T|| of
     * the double reference, and the largest spectral radius of a gate block of W_hh (every layer). */
    double time_ratio, rec_radius;
    size_t n_findings, n_checks;
    clipnn_finding findings[CLIPNN_DIAG_MAX];
    clipnn_check checks[CLIPNN_DIAG_MAX];
} clipnn_diagnosis;

/* 1 when d names cause c. */
CLIPNN_API int clipnn_diagnosis_has(const clipnn_diagnosis *d, clipnn_cause c);

/* A generic objective, for functions a model does not express exactly
 * (x1^2 - x2^2, a saddle): value and gradient in double (the
 * reference, required) and, optionally, in float32 as the optimizer
 * computes it (NULL: the double one rounded to float). */
typedef struct {
    size_t dim;
    double (*eval_d)(const double *x, double *grad, void *user);
    double (*eval_f)(const float *x, float *grad, void *user);
    void *user;
} clipnn_objective_fn;

typedef struct {
    clipnn_input_space space; /* box and preprocessing (default: no box) */
    clipnn_param param;       /* TANH: the point given is w, x = lo + (hi - lo)(tanh w + 1)/2 */
    double fd_step;           /* > 0: the optimizer's gradient is a float32 central difference
                                 with this step (e.g. 1e-7); 0: analytic */
    double grad_tol;          /* a gradient 2-norm at or below this is "tiny" (1e-6) */
    double target;            /* objective value that counts as reached (NaN: unknown;
                                 model objectives use their own rule) */
    double loss_tol;          /* value - target <= loss_tol counts as at the target (1e-6) */
    double curv_tol;          /* curvature beyond +-curv_tol is "non-zero" (1e-6) */
    size_t lanczos_steps;     /* Lanczos iterations on Hessian-vector products (30) */
    uint64_t seed;
} clipnn_diagnose_options;
CLIPNN_API clipnn_diagnose_options clipnn_diagnose_options_default(void);

/* Diagnose a generic objective at point (x, or w for TANH; [dim]). */
CLIPNN_API clipnn_status clipnn_diagnose_fn(const clipnn_objective_fn *f, const float *point,
                                 const clipnn_diagnose_options *o, clipnn_diagnosis *d);
/* Diagnose a model objective at point ([n_inputs]) for one example with
 * target y (as for clipnn_objective_grad): the generic tests plus the
 * model's own (saturated units, softmax margin, probability outputs,
 * logit shift, dead ReLUs, directions the model ignores, where in the
 * network the backward signal dies). A model with recurrent layers
 * (many-to-one, a class or output objective, no tanh parametrization) gets
 * the tests through time instead: the input gradient step by step (float32
 * and the double reference), the ratio ||d/dx_1|| / ||d/dx_T|| and the
 * spectral radius of W_hh's gate blocks; a ratio below 1e-5 is vanishing,
 * above 1e5 exploding through time. */
CLIPNN_API clipnn_status clipnn_diagnose_model(clipnn_model *m, const clipnn_objective *obj, const float *y,
                                    const float *point, const clipnn_diagnose_options *o,
                                    clipnn_diagnosis *d);

/* Gradient-masking checks of an attack over an epsilon grid (Athalye et al.
 * 2018, Carlini et al. 2019): robust[i], the fraction of examples the
 * iterative attack leaves unbroken at eps[i] (robust accuracy; for a
 * targeted attack the fraction not taken to the target), one_step[i] the
 * same for the one-step attack (eps increasing; one_step may be NULL), and
 * the success rate of an unbounded attack (NaN: not run).
 * Adds a MASKING finding for: iterative weaker than one-step, robust
 * accuracy rising with epsilon, unbounded attack below 100%. */
CLIPNN_API void clipnn_diagnose_masking(const double *eps, const double *robust, const double *one_step,
                             size_t n_eps, double unbounded_success, clipnn_diagnosis *d);

/* Empty diagnosis (no findings, no checks, NaN numbers). */
CLIPNN_API void clipnn_diagnosis_init(clipnn_diagnosis *d);

/* Built-in constructed cases, one per cause: each
 * builds its objective (a small hand-set model, or an exact function),
 * runs the optimization that stalls, and diagnoses where it stopped.
 * Names: local-minimum, saddle, saturation, bce-no-saturation, precision,
 * softmax-margin, box, tanh-param, dead-relu, ignored-directions. */
typedef struct {
    char description[320]; /* the construction */
    char run[320];         /* what the optimization did before the diagnosis */
    clipnn_cause expected; /* the cause the case shows (CLIPNN_CAUSE_COUNT: none, it does not stall) */
    clipnn_cause also;     /* a second cause that applies as well, else CLIPNN_CAUSE_COUNT */
} clipnn_demo_info;
CLIPNN_API size_t clipnn_diagnose_demo_count(void);
CLIPNN_API const char *clipnn_diagnose_demo_name(size_t i); /* NULL past the end */
CLIPNN_API clipnn_status clipnn_diagnose_demo(const char *name, clipnn_diagnosis *d, clipnn_demo_info *info);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_DIAGNOSE_H */
