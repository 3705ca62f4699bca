/* Why is the gradient zero? One constructed case per cause, built here by
 * hand through the public API, run until it stalls, then diagnosed: each
 * asserts the cause it was built for and no other. Then the built-in demo
 * cases, the masking checks, and `clipnn diagnose` from the command line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

/* Exactly the causes in want (a bit set of clipnn_cause), reported with
 * the findings when not. */
static void check_causes(const char *what, const clipnn_diagnosis *d, unsigned want) {
    unsigned got = 0;
    for (size_t i = 0; i < d->n_findings; i++) got |= 1u << d->findings[i].cause;
    if (got != want) {
        check_fail(__FILE__, __LINE__, "%s: causes found 0x%x, want 0x%x", what, got, want);
        for (size_t i = 0; i < d->n_findings; i++)
            fprintf(stderr, "      %s [%s] %s\n", clipnn_cause_name(d->findings[i].cause), d->findings[i].test,
                    d->findings[i].numbers);
    }
}
#define CAUSE(c) (1u << (c))

/* A model with every parameter given (layer by layer: W row-major, b). */
static clipnn_model *hand_model(size_t n_in, size_t n_layers, const size_t *widths, const clipnn_act *acts,
                                const float *params) {
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, n_in, n_layers, widths, acts)) return NULL;
    memcpy(clipnn_model_params(m), params, clipnn_model_n_params(m) * sizeof *params);
    return m;
}

/* ------------------------------------------------ local minimum */

static double quadratic(const double *x, double *g, void *user) {
    (void)user;
    g[0] = 2 * (x[0] - 2);
    return (x[0] - 2) * (x[0] - 2) + 1;
}

TEST(diagnose_local_minimum_of_quadratic) {
    /* the article's Example 1: gradient descent until |g| < 1e-6 */
    double x = -3, g = 0;
    int steps = 0;
    for (; steps < 1000; steps++) {
        quadratic(&x, &g, NULL);
        if (fabs(g) < 1e-6) break;
        x -= 0.1 * g;
    }
    CHECK(steps < 1000 && fabs(x - 2) < 1e-6);
    clipnn_objective_fn f = {1, quadratic, NULL, NULL};
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    o.target = 1; /* the least value */
    float p = (float)x;
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_fn(&f, &p, &o, &d));
    check_causes("quadratic", &d, CAUSE(CLIPNN_CAUSE_LOCAL_MINIMUM));
    CHECK(d.stalled && d.stationary);
    CHECK_NEAR(d.min_curvature, 2, 1e-6); /* f'' = 2; central differences are exact on a quadratic */
    CHECK(strstr(d.findings[0].numbers, "at its target") != NULL);
    /* unknown target: still a minimum, not said to be at its target */
    o.target = NAN;
    CHECK_OK(clipnn_diagnose_fn(&f, &p, &o, &d));
    check_causes("quadratic, no target", &d, CAUSE(CLIPNN_CAUSE_LOCAL_MINIMUM));
    CHECK(strstr(d.findings[0].numbers, "at its target") == NULL);
    /* a point that is not finite is refused */
    float bad = NAN;
    CHECK(clipnn_diagnose_fn(&f, &bad, &o, &d) == CLIPNN_ERR_NONFINITE);
    /* away from the minimum nothing stalls */
    p = 0;
    CHECK_OK(clipnn_diagnose_fn(&f, &p, &o, &d));
    check_causes("quadratic at 0", &d, 0);
    CHECK(!d.stalled);
}

/* ------------------------------------------------ saddle */

static double saddle(const double *x, double *g, void *user) {
    (void)user;
    g[0] = 2 * x[0];
    g[1] = -2 * x[1];
    return x[0] * x[0] - x[1] * x[1];
}

TEST(diagnose_saddle_finds_escape_direction) {
    double x[2] = {1, 0}, g[2];
    for (int t = 0; t < 200; t++) {
        saddle(x, g, NULL);
        x[0] -= 0.1 * g[0];
        x[1] -= 0.1 * g[1];
    }
    CHECK(x[1] == 0.0);          /* gradient descent never leaves the axis */
    CHECK(fabs(x[0]) < 1e-18);   /* 0.8^200 */
    clipnn_objective_fn f = {2, saddle, NULL, NULL};
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    float p[2] = {(float)x[0], (float)x[1]};
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_fn(&f, p, &o, &d));
    check_causes("saddle", &d, CAUSE(CLIPNN_CAUSE_SADDLE));
    CHECK_NEAR(d.min_curvature, -2, 1e-6);
    CHECK_NEAR(d.max_curvature, 2, 1e-6);
    /* the escape: along x2, a step of 1 lowers f by 1 */
    CHECK_NEAR(fabs(d.escape_step), 1, 0);
    CHECK_NEAR(d.escape_decrease, 1, 1e-12);
    CHECK(strstr(d.findings[0].numbers, "x2 = ") != NULL);
}

/* ------------------------------------------------ saturation */

TEST(diagnose_sigmoid_mse_saturates_bce_does_not) {
    size_t w[1] = {1};
    clipnn_act sig[1] = {CLIPNN_ACT_SIGMOID}, id[1] = {CLIPNN_ACT_IDENTITY};
    const float p[2] = {1, 0};
    clipnn_model *ms = hand_model(1, 1, w, sig, p), *ml = hand_model(1, 1, w, id, p);
    CHECK(ms && ml);
    if (!ms || !ml) goto done;
    float y = 1;
    /* sigmoid output, MSE far from the target: 1000 steps barely move */
    clipnn_inputopt_options io = clipnn_inputopt_options_default();
    io.normalize = io.backtrack = 0; /* plain gradient descent, as in the article */
    io.space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    io.objective.kind = CLIPNN_OBJ_TARGET_OUTPUT;
    io.objective.loss = CLIPNN_LOSS_MSE;
    io.stall_steps = 0; /* run every step */
    float x = -20;
    clipnn_inputopt_result r;
    CHECK_OK(clipnn_optimize_input(ms, &io, &y, &x, &r));
    CHECK(!r.reached && x < -19.99f);
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(ms, &io.objective, &y, &x, &o, &d));
    check_causes("sigmoid + MSE", &d, CAUSE(CLIPNN_CAUSE_SATURATION));
    CHECK(d.n_findings == 1 && !strcmp(d.findings[0].test, "saturated-output"));
    /* d/dx (sigmoid(x) - 1)^2 = 2 (s - 1) s (1 - s), s = sigmoid(-20) */
    double s = 1 / (1 + exp(20.0));
    CHECK_NEAR(d.grad_norm_ref, 2 * (1 - s) * s * (1 - s), 1e-20);

    /* the same unit without its sigmoid, BCE on the logit: gradient
     * sigmoid(x) - 1 ~ -1, no stall, and gradient descent gets there */
    io.objective.loss = CLIPNN_LOSS_BCE;
    x = -20;
    CHECK_OK(clipnn_diagnose_model(ml, &io.objective, &y, &x, &o, &d));
    check_causes("BCE on logits", &d, 0);
    CHECK(!d.stalled);
    CHECK_NEAR(d.grad_norm_ref, 1 - s, 1e-15);
    /* sigmoid(x) >= 0.99 (x >= 4.6) at step 1: x moves ~1 a step while
     * wrong, then slows as e^-x: a few hundred steps */
    io.stall_steps = 100;
    io.lr = 1;
    CHECK_OK(clipnn_optimize_input(ml, &io, &y, &x, &r));
    CHECK_MSG(r.reached && r.steps < 1000, "BCE: reached %d after %zu steps, x = %g", r.reached, r.steps, (double)x);
done:
    clipnn_model_free(ms);
    clipnn_model_free(ml);
}

/* ------------------------------------------------ precision */

TEST(diagnose_finite_difference_step_too_small) {
    size_t w[1] = {1};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    const float p[2] = {2, 1}; /* the article's 2x + 1 */
    clipnn_model *m = hand_model(1, 1, w, id, p);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = CLIPNN_OBJ_TARGET_OUTPUT;
    obj.loss = CLIPNN_LOSS_MSE;
    float y = 10, x = 5;
    /* in float32, 5 + 1e-7 == 5: the difference quotient is exactly 0 */
    float xp = x + 1e-7f;
    CHECK(xp == x);
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    o.fd_step = 1e-7;
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, &x, &o, &d));
    check_causes("epsilon 1e-7", &d, CAUSE(CLIPNN_CAUSE_PRECISION));
    CHECK(d.grad_norm == 0);
    CHECK_NEAR(d.grad_norm_ref, 4, 1e-12); /* 4 (2x + 1 - 10) at x = 5 */
    /* a step of cbrt(eps32) |x| resolves it: no cause, no stall */
    o.fd_step = 0.025;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, &x, &o, &d));
    check_causes("step 0.025", &d, 0);
    CHECK(!d.stalled);
    clipnn_model_free(m);
}

TEST(diagnose_softmax_margin_120) {
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    const float p[6] = {1, 0, 0, 1, 0, 0}; /* logits = x */
    clipnn_model *m = hand_model(2, 1, w, id, p);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = CLIPNN_OBJ_LEAVE_CLASS; /* an untargeted attack on class 0 */
    float y = 0, x[2] = {120, 0}, g[2];
    double v;
    CHECK_OK(clipnn_objective_grad(m, &obj, x, &y, 1, &v, g, NULL));
    CHECK(g[0] == 0.0f && g[1] == 0.0f); /* exactly zero in float32 */
    double xd[2] = {120, 0}, yd = 0, gd[2];
    CHECK_OK(clipnn_objective_grad_d(m, &obj, xd, &yd, &v, gd, NULL));
    CHECK_NEAR(gd[1], -exp(-120.0), 1e-60); /* not in double */
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    check_causes("margin 120", &d, CAUSE(CLIPNN_CAUSE_PRECISION) | CAUSE(CLIPNN_CAUSE_SATURATION));
    /* margin 20: the gradient exp(-20) is tiny but float32 holds it */
    x[0] = 20;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    check_causes("margin 20", &d, CAUSE(CLIPNN_CAUSE_SATURATION));
    /* the CW margin loss has gradient +-1 there: no stall */
    obj.loss = CLIPNN_LOSS_MARGIN;
    x[0] = 120;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    check_causes("margin loss", &d, 0);
    CHECK_NEAR(d.grad_norm, sqrt(2.0), 1e-6);
    clipnn_model_free(m);
}

/* ------------------------------------------------ parametrization */

TEST(diagnose_image_at_box_bound) {
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    const float p[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 4.5f}; /* z0 = sum x, z1 = 4.5 */
    clipnn_model *m = hand_model(4, 1, w, id, p);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_inputopt_options io = clipnn_inputopt_options_default(); /* box [0, 1] */
    io.normalize = io.backtrack = 0; /* plain gradient descent */
    float y = 0, x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    clipnn_inputopt_result r;
    CHECK_OK(clipnn_optimize_input(m, &io, &y, x, &r));
    CHECK(r.stalled && !r.reached);
    for (int i = 0; i < 4; i++) CHECK(x[i] == 1.0f);
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    o.space = io.space;
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(m, &io.objective, &y, x, &o, &d));
    check_causes("box", &d, CAUSE(CLIPNN_CAUSE_PARAMETRIZATION));
    CHECK(!strcmp(d.findings[0].test, "box-pinned"));
    CHECK(d.grad_norm == 0 && d.grad_norm_raw > 1);
    /* the same point without a box is not stalled */
    o.space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    CHECK_OK(clipnn_diagnose_model(m, &io.objective, &y, x, &o, &d));
    check_causes("no box", &d, 0);
    clipnn_model_free(m);
}

TEST(diagnose_input_behind_dead_relu) {
    size_t w[2] = {3, 2};
    clipnn_act a[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    const float p[17] = {1, 0, 0, 1, 1, 1, -5, -5, -5, 1, 0, 0, 0, 1, 1, 1, 0};
    clipnn_model *m = hand_model(2, 2, w, a, p);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_objective obj = clipnn_objective_default();
    float y = 1, x[2] = {0.5f, 0.5f}, g[2];
    double v;
    CHECK_OK(clipnn_objective_grad(m, &obj, x, &y, 1, &v, g, NULL));
    CHECK(g[0] == 0 && g[1] == 0 && v > 1);
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    o.space = clipnn_input_space_default();
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    check_causes("dead relu", &d, CAUSE(CLIPNN_CAUSE_PARAMETRIZATION));
    CHECK(!strcmp(d.findings[0].test, "dead-relu"));
    CHECK(strstr(d.findings[0].numbers, "3 of 3") != NULL);
    /* one live unit (bias of the third at +1): the gradient flows */
    float *params = clipnn_model_params(m);
    params[8] = 1;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    check_causes("live relu", &d, 0);
    clipnn_model_free(m);
}

/* ------------------------------------------------ the built-in cases */

TEST(diagnose_demos_name_their_cause) {
    for (size_t i = 0; i < clipnn_diagnose_demo_count(); i++) {
        const char *name = clipnn_diagnose_demo_name(i);
        clipnn_diagnosis d;
        clipnn_demo_info info;
        CHECK_OK(clipnn_diagnose_demo(name, &d, &info));
        unsigned want = 0;
        if (info.expected != CLIPNN_CAUSE_COUNT) want |= CAUSE(info.expected);
        if (info.also != CLIPNN_CAUSE_COUNT) want |= CAUSE(info.also);
        check_causes(name, &d, want);
    }
    CHECK(clipnn_diagnose_demo_name(clipnn_diagnose_demo_count()) == NULL);
    clipnn_diagnosis d;
    clipnn_demo_info info;
    CHECK(clipnn_diagnose_demo("nope", &d, &info) == CLIPNN_ERR_INVALID_ARG);
}

/* ------------------------------------------------ masking */

TEST(diagnose_masking_symptoms) {
    const double eps[4] = {0, 0.01, 0.03, 0.1};
    const double healthy[4] = {0.9, 0.7, 0.3, 0.01}, one_step[4] = {0.9, 0.75, 0.4, 0.1};
    clipnn_diagnosis d;
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(eps, healthy, one_step, 4, 1.0, &d);
    check_causes("healthy", &d, 0);
    CHECK(d.n_checks == 3);
    const double weak[4] = {0.9, 0.8, 0.45, 0.01}; /* weaker than FGSM at 0.01 and 0.03 */
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(eps, weak, one_step, 4, 1.0, &d);
    check_causes("iterative weaker", &d, CAUSE(CLIPNN_CAUSE_MASKING));
    CHECK(d.n_findings == 1 && !strcmp(d.findings[0].test, "iterative-vs-one-step"));
    const double rising[4] = {0.9, 0.5, 0.6, 0.01};
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(eps, rising, NULL, 4, 0.97, &d);
    CHECK(d.n_findings == 2);
    CHECK(!strcmp(d.findings[0].test, "monotone-in-epsilon"));
    CHECK(!strcmp(d.findings[1].test, "unbounded-attack"));
}

/* ------------------------------------------------ the command */

TEST(cli_diagnose) {
    const char *out;
    int rc = check_run_tool("diagnose --demo all --json", &out);
    CHECK_MSG(rc == 0, "diagnose --demo all: exit %d\n%s", rc, out);
    CHECK(strstr(out, "\"right\":false") == NULL);
    rc = check_run_tool("diagnose --demo saddle", &out);
    CHECK(rc == 0 && strstr(out, "cause: saddle") != NULL && strstr(out, "cause: local-minimum") == NULL);
    CHECK(check_run_tool("diagnose --demo nothing", &out) == 2);
    CHECK(strstr(out, "unknown demo") != NULL);
    /* a saved model at a data example */
    const char *model = check_tmp_path("diagnose_digits.ckpt");
    char args[1024];
    snprintf(args, sizeof args, "train --data digits --scale unit --arch 16-10 --act relu --epochs 3 --quiet --save %s",
             model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "diagnose --model %s --data digits --scale unit --input data:3", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "diagnose --model: exit %d\n%s", rc, out);
    CHECK(strstr(out, "check float32-vs-double") != NULL);
    snprintf(args, sizeof args, "diagnose --model %s --data digits --scale unit --input data:99999", model);
    CHECK(check_run_tool(args, &out) == 2);
    snprintf(args, sizeof args, "diagnose --model %s --input /nonexistent.npy", model);
    CHECK(check_run_tool(args, &out) == 4);
}
