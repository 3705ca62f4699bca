/* Constructed cases, one per cause of a zero gradient: each builds its
 * objective exactly (a hand-set model, or a function a model cannot
 * express, through clipnn_objective_fn), runs the optimization that stalls
 * and diagnoses the point where it stopped. The tests and
 * `clipnn diagnose --demo NAME` use them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diagnose/diagnose.h"

/* ------------------------------------------------ exact functions */

/* Example 1 of the article "Why is the gradient zero during input
 * optimization?": (x - 2)^2 + 1, minimum 1 at x = 2. */
static double quadratic_d(const double *x, double *g, void *user) {
    (void)user;
    g[0] = 2 * (x[0] - 2);
    return (x[0] - 2) * (x[0] - 2) + 1;
}

/* x1^2 - x2^2: a saddle at the origin. */
static double saddle_d(const double *x, double *g, void *user) {
    (void)user;
    g[0] = 2 * x[0];
    g[1] = -2 * x[1];
    return x[0] * x[0] - x[1] * x[1];
}

/* Plain gradient descent in double until |g| < tol (the article's loop). */
static size_t descend(double (*f)(const double *, double *, void *), double *x, size_t n, double lr, double tol,
                      size_t max_steps, double *gnorm) {
    double g[2];
    size_t t = 0;
    for (;; t++) {
        f(x, g, NULL);
        *gnorm = clipnn_nrm2_d(g, n);
        if (*gnorm < tol || t == max_steps) break;
        for (size_t i = 0; i < n; i++) x[i] -= lr * g[i];
    }
    return t;
}

/* ------------------------------------------------ hand-set models */

/* A model of the given layer widths and activations with every parameter
 * set from params (layer by layer, W row-major then b). */
static clipnn_status hand_model(clipnn_model **m, size_t n_in, size_t n_layers, const size_t *widths,
                                const clipnn_act *acts, const float *params, size_t n_params) {
    clipnn_status s = clipnn_model_create(m, n_in, n_layers, widths, acts);
    if (s) return s;
    size_t want = clipnn_model_n_params(*m);
    if (want != n_params) {
        clipnn_model_free(*m);
        *m = NULL;
        return clipnn_fail(CLIPNN_ERR_SHAPE, "demo: %zu parameters given for %zu", n_params, want);
    }
    memcpy(clipnn_model_params(*m), params, n_params * sizeof *params);
    return clipnn_model_reserve(*m, 1);
}

static void set_info(clipnn_demo_info *info, clipnn_cause expected, clipnn_cause also, const char *description) {
    info->expected = expected;
    info->also = also;
    snprintf(info->description, sizeof info->description, "%s", description);
}

/* Gradient descent on a model objective (clipnn_optimize_input), then the
 * diagnosis at the kept point. */
static clipnn_status run_model_case(clipnn_model *m, const clipnn_objective *obj, const float *y, float *x,
                                    const clipnn_inputopt_options *base, const clipnn_diagnose_options *dopt,
                                    clipnn_diagnosis *d, clipnn_demo_info *info) {
    clipnn_inputopt_options io = *base;
    io.objective = *obj;
    clipnn_inputopt_result r;
    size_t n = clipnn_model_n_inputs(m);
    float start[8];
    memcpy(start, x, n * sizeof *x);
    clipnn_status s = clipnn_optimize_input(m, &io, y, x, &r);
    if (s) return s;
    float point[8];
    for (size_t i = 0; i < n; i++)
        point[i] =
            io.param == CLIPNN_PARAM_TANH
                ? (float)atanh(0.999999 * ((x[i] - io.space.box_lo) / ((io.space.box_hi - io.space.box_lo) / 2) - 1))
                : x[i];
    snprintf(
        info->run, sizeof info->run,
        "gradient descent (step %g, %s) from x1 = %g: %zu steps, objective %.6g -> %.6g, %s; gradient norm %.3g at "
        "the end, x1 = %.6g",
        io.lr, io.param == CLIPNN_PARAM_TANH ? "tanh parametrization" : "pixel space", (double)start[0], r.steps,
        r.start_value, r.best_value, r.reached ? "target reached" : r.stalled ? "stalled" : "step limit",
        r.grad_norm, (double)x[0]);
    return clipnn_diagnose_model(m, obj, y, point, dopt, d);
}

/* One demo: its diagnosis and description, the options it adjusts, the
 * objective and the hand-set model (freed by clipnn_diagnose_demo). */
typedef struct {
    clipnn_diagnosis *d;
    clipnn_demo_info *info;
    clipnn_diagnose_options dopt;
    clipnn_inputopt_options io;
    clipnn_objective obj;
    clipnn_model *m;
} demo;

/* An exact function (no model): the article's Example 1, or a saddle. */
static clipnn_status demo_exact(demo *c, int saddle) {
    double x[2] = {saddle ? 1.0 : -3.0, 0.0}, gn;
    size_t n = saddle ? 2 : 1;
    size_t steps = descend(saddle ? saddle_d : quadratic_d, x, n, 0.1, 1e-6, 100000, &gn);
    clipnn_objective_fn f = {n, saddle ? saddle_d : quadratic_d, NULL, NULL};
    float point[2] = {(float)x[0], (float)x[1]};
    if (saddle) {
        set_info(c->info, CLIPNN_CAUSE_SADDLE, CLIPNN_CAUSE_COUNT,
                 "f(x) = x1^2 - x2^2 (an exact function: an MLP cannot express it), started on the x2 = 0 axis at "
                 "(1, 0)");
        snprintf(c->info->run, sizeof c->info->run,
                 "gradient descent (step 0.1) stopped after %zu steps at (%.3g, %.3g) with |g| = %.3g < 1e-6: x2 "
                 "never moved from 0, f = %.3g",
                 steps, x[0], x[1], gn, x[0] * x[0] - x[1] * x[1]);
    } else {
        c->dopt.target = 1.0; /* the least value the function takes */
        set_info(c->info, CLIPNN_CAUSE_LOCAL_MINIMUM, CLIPNN_CAUSE_COUNT,
                 "Example 1 of the article \"Why is the gradient zero during input optimization?\": "
                 "f(x) = (x - 2)^2 + 1 from x = -3 (target: its least value, 1)");
        snprintf(c->info->run, sizeof c->info->run,
                 "gradient descent (step 0.1) stopped after %zu steps at x = %.7g with |g| = %.3g < 1e-6, f = %.9g",
                 steps, x[0], gn, (x[0] - 2) * (x[0] - 2) + 1);
    }
    return clipnn_diagnose_fn(&f, point, &c->dopt, c->d);
}

/* One sigmoid unit under MSE (it saturates), or the same logit under BCE. */
static clipnn_status demo_saturation(demo *c, int bce) {
    size_t w[1] = {1};
    clipnn_act a[1] = {bce ? CLIPNN_ACT_IDENTITY : CLIPNN_ACT_SIGMOID};
    const float p[2] = {1.0f, 0.0f};
    clipnn_status s = hand_model(&c->m, 1, 1, w, a, p, 2);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_TARGET_OUTPUT;
    c->obj.loss = bce ? CLIPNN_LOSS_BCE : CLIPNN_LOSS_MSE;
    float y[1] = {1.0f}, x[1] = {-20.0f};
    set_info(c->info, bce ? CLIPNN_CAUSE_COUNT : CLIPNN_CAUSE_SATURATION, CLIPNN_CAUSE_COUNT,
             bce ? "the same unit without the output sigmoid, loss: sigmoid cross-entropy on the logit (BCE on "
                   "logits) with target 1, from x = -20: its gradient sigmoid(z) - 1 stays near -1 while wrong"
                 : "a model whose output is a probability: y = sigmoid(x), loss (y - 1)^2 (MSE far from the "
                   "target), from x = -20");
    s = run_model_case(c->m, &c->obj, y, x, &c->io, &c->dopt, c->d, c->info);
    if (!s && bce) {
        /* diagnose the start, where the MSE version stalls */
        float start[1] = {-20.0f};
        s = clipnn_diagnose_model(c->m, &c->obj, y, start, &c->dopt, c->d);
    }
    return s;
}

/* The article's loop in float32: descent on central differences of step h
 * from x until the difference gradient (*g) is below 1e-6; the steps. */
static clipnn_status fd_descent(demo *c, const float *y, float *x, float h, size_t *steps, float *g) {
    clipnn_status s = CLIPNN_OK;
    size_t t = 0;
    for (; t < 100; t++) {
        double vp, vm;
        float xp = x[0] + h, xm = x[0] - h;
        if ((s = clipnn_objective_grad(c->m, &c->obj, &xp, y, 1, &vp, NULL, NULL))) break;
        if ((s = clipnn_objective_grad(c->m, &c->obj, &xm, y, 1, &vm, NULL, NULL))) break;
        *g = ((float)vp - (float)vm) / (2 * h);
        if (fabsf(*g) < 1e-6f) break;
        x[0] -= 0.1f * *g;
    }
    *steps = t;
    return s;
}

/* The article's Example 3: a finite difference too fine for float32. */
static clipnn_status demo_precision(demo *c, int variant) {
    (void)variant;
    size_t w[1] = {1};
    clipnn_act a[1] = {CLIPNN_ACT_IDENTITY};
    const float p[2] = {2.0f, 1.0f};
    clipnn_status s = hand_model(&c->m, 1, 1, w, a, p, 2);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_TARGET_OUTPUT;
    c->obj.loss = CLIPNN_LOSS_MSE;
    float y[1] = {10.0f}, x[1] = {5.0f};
    set_info(c->info, CLIPNN_CAUSE_PRECISION, CLIPNN_CAUSE_COUNT,
             "Example 3 of the article \"Why is the gradient zero during input optimization?\" in "
             "float32: model 2x + 1, loss (2x + 1 - 10)^2, gradient by central differences with epsilon "
             "1e-7, from x = 5");
    size_t t;
    float g = 0;
    s = fd_descent(c, y, x, 1e-7f, &t, &g);
    snprintf(c->info->run, sizeof c->info->run,
             "gradient descent (step 0.1) with that gradient stopped after %zu steps at x = %g: the difference "
             "gradient was %g (< 1e-6), while the loss is %g",
             t, (double)x[0], (double)g, (2.0 * x[0] + 1 - 10) * (2.0 * x[0] + 1 - 10));
    c->dopt.fd_step = 1e-7;
    return s ? s : clipnn_diagnose_model(c->m, &c->obj, y, x, &c->dopt, c->d);
}

static clipnn_status demo_softmax_margin(demo *c, int variant) {
    (void)variant;
    size_t w[1] = {2};
    clipnn_act a[1] = {CLIPNN_ACT_IDENTITY};
    const float p[6] = {1, 0, 0, 1, 0, 0};
    clipnn_status s = hand_model(&c->m, 2, 1, w, a, p, 6);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_LEAVE_CLASS;
    c->obj.loss = CLIPNN_LOSS_XENT;
    float y[1] = {0.0f}, x[2] = {120.0f, 0.0f};
    set_info(c->info, CLIPNN_CAUSE_SATURATION, CLIPNN_CAUSE_PRECISION,
             "logits z = x, true class 0 leading by a margin of 120; an untargeted attack maximizes the "
             "cross-entropy of class 0 (softmax saturated beyond float32's range)");
    return run_model_case(c->m, &c->obj, y, x, &c->io, &c->dopt, c->d, c->info);
}

/* A target outside the box, or one the tanh parametrization cannot reach
 * from a pixel at its bound. */
static clipnn_status demo_box(demo *c, int tanh_case) {
    size_t w[1] = {2};
    clipnn_act a[1] = {CLIPNN_ACT_IDENTITY};
    /* box: z0 = sum x, z1 = 4.5 (class 0 needs more than the box allows);
     * tanh: z0 = -sum x / 4, z1 = -0.5 (class 0 needs darker pixels). */
    const float pbox[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 4.5f};
    const float ptanh[10] = {-0.25f, -0.25f, -0.25f, -0.25f, 0, 0, 0, 0, 0, -0.5f};
    clipnn_status s = hand_model(&c->m, 4, 1, w, a, tanh_case ? ptanh : pbox, 10);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_TARGET_CLASS;
    float y[1] = {0.0f}, x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    c->io.space = c->dopt.space = clipnn_input_space_default();
    if (tanh_case) {
        for (int i = 0; i < 4; i++) x[i] = 1.0f;
        c->io.param = c->dopt.param = CLIPNN_PARAM_TANH;
        c->io.grad_tol = 1e-6;
        set_info(c->info, CLIPNN_CAUSE_PARAMETRIZATION, CLIPNN_CAUSE_COUNT,
                 "a 2x2 image at the upper bound 1, optimized through x = (tanh(w) + 1)/2 with the 0.999999 "
                 "shrink (w near 7); logits z0 = -sum(x)/4, z1 = -0.5, target class 0 (wants darker pixels)");
    } else {
        set_info(c->info, CLIPNN_CAUSE_PARAMETRIZATION, CLIPNN_CAUSE_COUNT,
                 "a 2x2 image in the box [0, 1]; logits z0 = sum(x), z1 = 4.5, target class 0 (needs brighter "
                 "pixels than the box allows)");
    }
    return run_model_case(c->m, &c->obj, y, x, &c->io, &c->dopt, c->d, c->info);
}

static clipnn_status demo_dead_relu(demo *c, int variant) {
    (void)variant;
    size_t w[2] = {3, 2};
    clipnn_act a[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    const float p[17] = {1, 0, 0, 1, 1, 1, -5, -5, -5, /* hidden: W 3x2, b */
                         1, 0, 0, 0, 1, 1, 1, 0};    /* output: W 2x3, b */
    clipnn_status s = hand_model(&c->m, 2, 2, w, a, p, 17);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_TARGET_CLASS;
    float y[1] = {1.0f}, x[2] = {0.5f, 0.5f};
    c->io.space = c->dopt.space = clipnn_input_space_default();
    set_info(c->info, CLIPNN_CAUSE_PARAMETRIZATION, CLIPNN_CAUSE_COUNT,
             "input (0.5, 0.5) behind a ReLU layer of 3 units with biases -5 (all inactive on the box), then "
             "logits with biases (1, 0); target class 1");
    return run_model_case(c->m, &c->obj, y, x, &c->io, &c->dopt, c->d, c->info);
}

static clipnn_status demo_ignored_directions(demo *c, int variant) {
    (void)variant;
    size_t w[2] = {2, 2};
    clipnn_act a[2] = {CLIPNN_ACT_IDENTITY, CLIPNN_ACT_IDENTITY};
    const float p[12] = {1, 1, 1, 1, 0, 0, /* h = (x1 + x2, x1 + x2) */
                         1, -1, 0, 0, 0, 1}; /* z = (h1 - h2, 1) */
    clipnn_status s = hand_model(&c->m, 2, 2, w, a, p, 12);
    if (s) return s;
    c->obj.kind = CLIPNN_OBJ_TARGET_CLASS;
    float y[1] = {0.0f}, x[2] = {0.3f, 0.6f};
    set_info(c->info, CLIPNN_CAUSE_PARAMETRIZATION, CLIPNN_CAUSE_COUNT,
             "h = (x1 + x2, x1 + x2), logits z = (h1 - h2, 1): class 0 needs h1 - h2 > 1, a direction the first "
             "layer never produces; target class 0");
    return run_model_case(c->m, &c->obj, y, x, &c->io, &c->dopt, c->d, c->info);
}

/* A recurrent case (src/diagnose/demo_time.c), diagnosed at its input. */
static clipnn_status demo_through_time(demo *c, int variant) {
    float x[64], y[1] = {0.0f};
    clipnn_status s = clipnn_demo_through_time(variant, &c->m, x, 64, c->info);
    return s ? s : clipnn_diagnose_model(c->m, &c->obj, y, x, &c->dopt, c->d);
}

static const struct {
    const char *name;
    clipnn_status (*run)(demo *c, int variant);
    int variant;
} demos[] = {
    {"local-minimum", demo_exact, 0},       {"saddle", demo_exact, 1},
    {"saturation", demo_saturation, 0},     {"bce-no-saturation", demo_saturation, 1},
    {"precision", demo_precision, 0},       {"softmax-margin", demo_softmax_margin, 0},
    {"box", demo_box, 0},                   {"tanh-param", demo_box, 1},
    {"dead-relu", demo_dead_relu, 0},       {"ignored-directions", demo_ignored_directions, 0},
    {"vanishing-through-time", demo_through_time, 0},
    {"exploding-through-time", demo_through_time, 1},
    {"healthy-recurrent", demo_through_time, 2},
};
#define N_DEMOS (sizeof demos / sizeof demos[0])

size_t clipnn_diagnose_demo_count(void) { return N_DEMOS; }
const char *clipnn_diagnose_demo_name(size_t i) { return i < N_DEMOS ? demos[i].name : NULL; }

clipnn_status clipnn_diagnose_demo(const char *name, clipnn_diagnosis *d, clipnn_demo_info *info) {
    if (!name || !d || !info) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "demo: NULL argument");
    memset(info, 0, sizeof *info);
    demo c = {.d = d, .info = info, .dopt = clipnn_diagnose_options_default(),
              .io = clipnn_inputopt_options_default(), .obj = clipnn_objective_default()};
    /* The article's plain gradient descent, whose stalls the demos show
     * (normalized steps would walk out of some of them). */
    c.io.normalize = c.io.backtrack = 0;
    c.io.space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    for (size_t i = 0; i < N_DEMOS; i++) {
        if (strcmp(name, demos[i].name)) continue;
        clipnn_status s = demos[i].run(&c, demos[i].variant);
        clipnn_model_free(c.m);
        return s;
    }
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                       "unknown demo '%s' (local-minimum, saddle, saturation, bce-no-saturation, precision, "
                       "softmax-margin, box, tanh-param, dead-relu, ignored-directions, vanishing-through-time, "
                       "exploding-through-time, healthy-recurrent)",
                       name);
}
