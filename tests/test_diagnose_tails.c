/* Diagnosis cases where the flat part of a network or the task decides the
 * finding: GELU and softplus tails, a saturated tanh layer whose gradient is
 * small but not yet "tiny", the float32 gradient lost while the objective is
 * met, and remedies that fit a regression. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

/* 2 inputs -> 3 units of act with biases b (W rows (1,0), (0,1), (1,1)) -> one
 * linear output, the sum of the units. */
static clipnn_model *tail_model(clipnn_act act, float b) {
    size_t w[2] = {3, 1};
    clipnn_act a[2] = {act, CLIPNN_ACT_IDENTITY};
    const float p[13] = {1, 0, 0, 1, 1, 1, b, b, b, 1, 1, 1, 0};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, 2, 2, w, a)) return NULL;
    memcpy(clipnn_model_params(m), p, sizeof p);
    return m;
}

/* Regression of the output to 5 at x = (0.5, 0.5). */
static void diagnose_regression(clipnn_model *m, clipnn_diagnosis *d) {
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = CLIPNN_OBJ_TARGET_OUTPUT;
    obj.loss = CLIPNN_LOSS_MSE;
    float y = 5, x[2] = {0.5f, 0.5f};
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, d));
}

static const clipnn_finding *finding(const clipnn_diagnosis *d, clipnn_cause c) {
    for (size_t i = 0; i < d->n_findings; i++)
        if (d->findings[i].cause == c) return &d->findings[i];
    return NULL;
}

/* Every unit in the flat negative tail (GELU at z <= -14.5, softplus at
 * z <= -119): the gradient is ~1e-41 or below, far from the target; it is
 * saturation, and the remedy does not recommend the very activation. */
TEST(diagnose_gelu_softplus_flat_tails) {
    const clipnn_act acts[2] = {CLIPNN_ACT_GELU, CLIPNN_ACT_SOFTPLUS};
    const float bias[2] = {-15, -120};
    for (int i = 0; i < 2; i++) {
        clipnn_model *m = tail_model(acts[i], bias[i]);
        CHECK(m != NULL);
        if (!m) return;
        clipnn_diagnosis d;
        diagnose_regression(m, &d);
        CHECK(d.stalled && !d.at_target);
        const clipnn_finding *f = finding(&d, CLIPNN_CAUSE_SATURATION);
        CHECK_MSG(f != NULL, "%s tail not named", clipnn_act_name(acts[i]));
        if (f) {
            CHECK(strstr(f->numbers, "3 of 3 units saturated") != NULL);
            CHECK(strstr(f->remedy, "flat negative tail") != NULL);
            CHECK(strstr(f->remedy, "(ReLU, GELU)") == NULL);
        }
        /* one active unit (bias 0 on the third): the gradient flows, nothing to name */
        clipnn_model_params(m)[8] = 0;
        diagnose_regression(m, &d);
        CHECK(d.n_findings == 0);
        clipnn_model_free(m);
    }
}

/* The dead-ReLU remedy no longer sends the user to GELU or softplus. */
TEST(diagnose_dead_relu_remedy_keeps_a_slope) {
    clipnn_model *m = tail_model(CLIPNN_ACT_RELU, -5);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_diagnosis d;
    diagnose_regression(m, &d);
    const clipnn_finding *f = finding(&d, CLIPNN_CAUSE_PARAMETRIZATION);
    CHECK(f != NULL && !strcmp(f->test, "dead-relu"));
    if (f) CHECK(strstr(f->remedy, "leaky ReLU") != NULL && strstr(f->remedy, "do not help") != NULL);
    clipnn_model_free(m);
}

/* Two of three tanh units at |z| = 5.5 cut the signal by ~1e4 (27.7 -> 0.0033):
 * the gradient 0.0056 is above the stall threshold, yet it is saturation. */
TEST(diagnose_saturated_tanh_layer_before_the_stall) {
    clipnn_model *m = tail_model(CLIPNN_ACT_TANH, -6);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_diagnosis d;
    diagnose_regression(m, &d);
    CHECK(!d.stalled);
    const clipnn_finding *f = finding(&d, CLIPNN_CAUSE_SATURATION);
    CHECK(f != NULL);
    if (f) CHECK(strstr(f->numbers, "2 of 3 units saturated") != NULL);
    /* at bias -2 the units are live (derivatives 0.07 to 0.42): nothing */
    clipnn_model_params(m)[6] = clipnn_model_params(m)[7] = clipnn_model_params(m)[8] = -2;
    diagnose_regression(m, &d);
    CHECK(d.n_findings == 0);
    clipnn_model_free(m);
}

/* tanh at |z| ~ 30: float32's derivative is exactly 0, the double gradient
 * 8e-24 is within float32's range. The finding says so, with the measured
 * value, and a regression gets no CW-margin remedy. */
TEST(diagnose_float_zero_states_the_double_gradient) {
    clipnn_model *m = tail_model(CLIPNN_ACT_TANH, -30);
    CHECK(m != NULL);
    if (!m) return;
    clipnn_diagnosis d;
    diagnose_regression(m, &d);
    const clipnn_finding *f = finding(&d, CLIPNN_CAUSE_PRECISION);
    CHECK(f != NULL);
    if (f) {
        CHECK(d.grad_norm == 0 && d.grad_norm_ref > 1e-24 && d.grad_norm_ref < 1e-22);
        CHECK(strstr(f->remedy, "within float32's range") != NULL);
        CHECK(strstr(f->remedy, "margin") == NULL);
        char want[32];
        snprintf(want, sizeof want, "%.3g", fmax(fabs(d.grad_norm_ref) / sqrt(2.0), 0)); /* two equal components */
        CHECK_MSG(strstr(f->remedy, want) != NULL, "remedy lacks the measured component %s: %s", want, f->remedy);
    }
    clipnn_model_free(m);
}

/* A class objective already met with a margin of 120 logits: float32's
 * gradient is exactly 0, double's exp(-120); nothing to fix, no finding. */
TEST(diagnose_float_zero_at_the_target_is_not_a_finding) {
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    const float p[6] = {1, 0, 0, 1, 0, 0}; /* logits = x */
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 2, 1, w, id));
    if (!m) return;
    memcpy(clipnn_model_params(m), p, sizeof p);
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = CLIPNN_OBJ_TARGET_CLASS;
    float y = 0, x[2] = {120, 0};
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    clipnn_diagnosis d;
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, &d));
    CHECK(d.at_target && d.grad_norm == 0 && d.grad_norm_ref > 0);
    CHECK(finding(&d, CLIPNN_CAUSE_PRECISION) == NULL);
    clipnn_model_free(m);
}
