/* clipnn: Optimizing a trained network's inputs: objectives, input spaces, FGSM and PGD attacks. */
#ifndef CLIPNN_PUBLIC_INPUTOPT_H
#define CLIPNN_PUBLIC_INPUTOPT_H

#include "clipnn/model.h"
#include "clipnn/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------ input optimization and attacks */

/* What an input optimization or attack wants from the network. Every
 * objective is a value to MINIMIZE, per example:
 *   TARGET_CLASS, XENT    logsumexp(z) - z_t                          (>= 0)
 *   TARGET_CLASS, MARGIN  max(max_{i!=t} z_i - z_t + kappa, 0)        (0 once t leads by kappa)
 *   LEAVE_CLASS,  XENT    -(logsumexp(z) - z_y)   (the cross-entropy of the true class, maximized)
 *   LEAVE_CLASS,  MARGIN  max(z_y - max_{i!=y} z_i + kappa, 0)        (= CLIPNN_LOSS_MARGIN: 0 once
 *                                                                      another class leads by kappa)
 *   TARGET_OUTPUT, MSE    mean_j (z_j - v_j)^2                         (regression)
 *   TARGET_OUTPUT, BCE    mean_j of sigmoid cross-entropy on the logit z_j with target v_j
 *   MAXIMIZE_UNIT         -a   (a = activation of unit `unit` of layer `layer`, after its
 *                               activation function; layer = last layer: a logit)
 * The class t or y, or the vector v, comes per example in the y argument
 * (class indices as floats, [batch]; v: [batch][n_outputs]) as for
 * clipnn_loss_grad; MAXIMIZE_UNIT takes no y. */
typedef enum {
    CLIPNN_OBJ_TARGET_CLASS = 0,
    CLIPNN_OBJ_LEAVE_CLASS,
    CLIPNN_OBJ_TARGET_OUTPUT,
    CLIPNN_OBJ_MAXIMIZE_UNIT,
    CLIPNN_OBJ_COUNT
} clipnn_objective_kind;

typedef struct {
    clipnn_objective_kind kind;
    clipnn_loss loss;   /* XENT or MARGIN (class objectives), MSE or BCE (TARGET_OUTPUT) */
    double kappa;       /* margin confidence (default 0) */
    size_t layer, unit; /* MAXIMIZE_UNIT */
    double output_tol;  /* TARGET_OUTPUT is reached when the mean squared difference between
                           the prediction (z; sigmoid(z) for BCE) and v is <= output_tol (1e-4) */
} clipnn_objective;
CLIPNN_API clipnn_objective clipnn_objective_default(void); /* TARGET_CLASS, XENT */

/* Per-example objective values ([batch]) and, when dx is not NULL, the
 * gradient of each example's value with respect to its own input
 * ([batch][n_inputs], not divided by the batch), float32 path. reached
 * ([batch], may be NULL) receives 1 where the objective is met: the class
 * is the arg-max (with the margin at 0 for MARGIN), the output within
 * output_tol; never for MAXIMIZE_UNIT. */
CLIPNN_API clipnn_status clipnn_objective_grad(clipnn_model *m, const clipnn_objective *o, const float *x,
                                    const float *y, size_t batch, double *values, float *dx,
                                    int *reached);
/* The same for one example in double precision with plain loops: the
 * reference. logits ([n_outputs]) may be NULL. */
CLIPNN_API clipnn_status clipnn_objective_grad_d(const clipnn_model *m, const clipnn_objective *o,
                                      const double *x, const double *y, double *value, double *dx,
                                      double *logits);

/* Where the optimized input lives. The model sees (x - mean) / std feature
 * by feature (Foolbox's "preprocessing"), so that budgets and the box are
 * in the data's own units (pixels in [0, 1]) even for a model trained on
 * standardized inputs. mean and std NULL: the model sees x. */
typedef struct {
    double box_lo, box_hi; /* -INFINITY, INFINITY: no box */
    const float *mean, *std; /* [n_inputs] or NULL; not copied: valid while in use */
} clipnn_input_space;
CLIPNN_API clipnn_input_space clipnn_input_space_default(void); /* box [0, 1], no preprocessing */

typedef enum {
    CLIPNN_PARAM_PIXEL = 0, /* optimize x itself, projected onto the box after each step */
    CLIPNN_PARAM_TANH,      /* optimize w with x = lo + (hi - lo) (tanh(w) + 1) / 2 (Carlini-Wagner) */
    CLIPNN_PARAM_COUNT
} clipnn_param;

/* "pixel", "tanh". parse fails with INVALID_ARG and a message listing the
 * valid names. */
CLIPNN_API const char *clipnn_param_name(clipnn_param param);
CLIPNN_API clipnn_status clipnn_param_parse(const char *name, clipnn_param *out);

typedef struct {
    size_t step;
    double value;     /* objective at this iterate */
    double grad_norm; /* 2-norm of the gradient in the optimized variable (x or w) */
    int reached;
} clipnn_inputopt_step;

typedef struct {
    clipnn_objective objective;
    clipnn_input_space space;
    clipnn_param param;
    size_t steps;          /* at most (default 1000) */
    double lr;             /* step size (default 0.1) */
    int normalize;         /* sign steps lr * sign(g): every coordinate moves by lr whatever the
                            * gradient's scale (default 1; 0: plain lr * g) */
    int backtrack;         /* a trial step that raises the objective is rejected and tried again from the
                            * last accepted iterate with half the step; accepted steps double it back up to
                            * lr (default 0: sign steps of a fixed lr reach targets faster on the piecewise-
                            * linear margin loss; 1 helps smooth objectives that need a precise end, such
                            * as a target output) */
    int stop_on_success;   /* default 1 */
    size_t stall_steps;    /* stop when the best value has not improved by ... (default 100) */
    double stall_tol;      /* ... more than stall_tol * (1 + |best|) over stall_steps steps (1e-6) */
    double grad_tol;       /* stop at once when the gradient norm is <= grad_tol (0: exactly zero) */
    void (*on_step)(const clipnn_inputopt_step *s, void *user);
    void *user;
} clipnn_inputopt_options;
CLIPNN_API clipnn_inputopt_options clipnn_inputopt_options_default(void);

typedef struct {
    size_t steps;          /* taken */
    int reached;           /* the kept iterate meets the objective */
    int stalled;           /* stopped by the stall rule or a zero gradient, not reached */
    double start_value, best_value;
    size_t best_step;
    double grad_norm;      /* at the last iterate */
} clipnn_inputopt_result;

/* Gradient descent on one input x ([n_inputs]): in, the start (inside the
 * box; with the tanh parametrization it is shrunk by 0.999999 before atanh
 * so that pixels at the bounds are not frozen); out, the best iterate seen
 * (a reached iterate beats one that is not; then the lower value). y: the
 * example's target as for clipnn_objective_grad (NULL for MAXIMIZE_UNIT). */
CLIPNN_API clipnn_status clipnn_optimize_input(clipnn_model *m, const clipnn_inputopt_options *o,
                                    const float *y, float *x, clipnn_inputopt_result *r);

typedef enum {
    CLIPNN_ATTACK_FGSM = 0,  /* one step x + eps sign(g) (Goodfellow et al. 2015) */
    CLIPNN_ATTACK_PGD_LINF,  /* Madry et al. 2018, steps along sign(g), projected on the L-inf ball */
    CLIPNN_ATTACK_PGD_L2,    /* steps along g / ||g||_2, projected on the L2 ball */
    CLIPNN_ATTACK_APGD_CE,   /* APGD (Croce and Hein 2020) on the cross-entropy, L-inf ball: step 2 eps halved
                              * at checkpoints, momentum 0.75, restarts from the best point */
    CLIPNN_ATTACK_APGD_DLR,  /* APGD on the difference of logits ratio (untargeted, 3 classes or more) */
    CLIPNN_ATTACK_COUNT
} clipnn_attack_method;

CLIPNN_API const char *clipnn_attack_method_name(clipnn_attack_method m);
CLIPNN_API clipnn_status clipnn_attack_method_parse(const char *name, clipnn_attack_method *out);

/* One row of the per-step trace: means over the examples of the batch. */
typedef struct {
    size_t restart, step; /* step 0 = the start point */
    double loss;          /* the attack loss (cross-entropy or margin of the class, as maximized/minimized) */
    double grad_norm;     /* mean 2-norm of the input gradient */
    double success_rate;  /* fraction of the batch's examples already fooled at this iterate */
    size_t batch_index, batch_size;
    size_t first_example;       /* index of the batch's first example in the attacked set */
    /* per example of the batch ([batch_size] entries), valid during the on_step call only: */
    const double *example_loss;      /* the attack objective */
    const double *example_grad_norm; /* 2-norm of its input gradient */
    const int *example_fooled;       /* the iterate meets the attack's goal */
} clipnn_attack_step;

typedef struct {
    clipnn_attack_method method;
    double eps;            /* budget (L-inf or L2 radius) */
    double step;           /* step size; 0: max(2.5 eps / steps (Madry et al.), eps / 4) */
    size_t steps;          /* PGD iterations (default 40); FGSM ignores it */
    int random_start;      /* uniform in the L-inf ball, or uniform in the L2 ball */
    size_t restarts;       /* runs per example, the best one kept (default 1) */
    int targeted;          /* 1: reach target_class; 0: leave the true class */
    size_t target_class;
    clipnn_loss loss;      /* XENT or MARGIN */
    double kappa;
    clipnn_input_space space;
    int keep_last;         /* 1: return the last iterate (torchattacks); 0: the best (default) */
    size_t batch;          /* examples per forward pass (default 256) */
    uint64_t seed;
    void (*on_step)(const clipnn_attack_step *s, void *user);
    void *user;
} clipnn_attack_options;
CLIPNN_API clipnn_attack_options clipnn_attack_options_default(void);

typedef struct {
    size_t n;               /* examples attacked */
    size_t clean_correct;   /* classified right before the attack */
    size_t robust_correct;  /* classified right after it */
    size_t eligible;        /* examples the attack could succeed on: clean-correct ones
                               (untargeted), those whose label is not the target (targeted) */
    size_t successes;       /* eligible examples where it did */
    size_t zero_grad;       /* eligible, failed, and the input gradient was exactly 0 at the end */
    double clean_accuracy, robust_accuracy, success_rate;
    double mean_linf, mean_l2; /* distortion of the successful adversarial inputs (NaN: none) */
} clipnn_attack_result;

/* Attacks the n inputs x ([n][n_inputs], inside the box) with true labels
 * ([n], class indices). adv ([n][n_inputs], may be NULL) receives the
 * adversarial inputs; examples the attack does not touch (misclassified
 * ones for an untargeted attack) are copied unchanged. */
CLIPNN_API clipnn_status clipnn_attack(clipnn_model *m, const clipnn_attack_options *o, const float *x,
                            const float *labels, size_t n, float *adv, clipnn_attack_result *r);

/* Projections used by the attacks (exposed for tests and callers): delta
 * onto the L-inf or L2 ball of radius eps, then x0 + delta onto the box.
 * x and x0: [n]; x is overwritten. p = INFINITY or 2. */
CLIPNN_API void clipnn_project_budget(float *x, const float *x0, size_t n, double p, double eps, double lo,
                           double hi);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_INPUTOPT_H */
