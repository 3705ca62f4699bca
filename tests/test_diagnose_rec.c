/* The diagnosis through time: a tanh RNN whose W_hh has spectral radius
 * 0.3, over 50 steps, is named vanishing through time with the measured
 * share of the gradient that reaches x_1; a healthy one (orthogonal W_hh,
 * 8 steps) gets no finding; the objectives it cannot take are refused;
 * `clipnn diagnose` accepts a recurrent checkpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

enum { HID = 8 };

static clipnn_model *tanh_rnn(size_t steps, clipnn_recurrent_init how, double radius, int every_step) {
    clipnn_layer_spec ls[] = {{CLIPNN_LAYER_RNN, HID, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_DENSE, 3, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {steps, 1, every_step};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (!m) return NULL;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 11));
    CHECK_OK(clipnn_model_init_recurrent(m, how, radius, 11));
    return m;
}

/* ||d loss / d x_1|| / ||d loss / d x_T|| straight from the double reference. */
static double reference_ratio(const clipnn_model *m, const float *x, size_t T, double y) {
    double *xd = malloc(T * sizeof *xd), *g = malloc(T * sizeof *g), loss;
    for (size_t t = 0; t < T; t++) xd[t] = x[t];
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.want_params = 0;
    CHECK_OK(clipnn_reference_loss_grad(m, NULL, &lo, xd, &y, 1, &loss, NULL, NULL, g));
    double r = fabs(g[0]) / fabs(g[T - 1]); /* one value per step */
    free(xd), free(g);
    return r;
}

static void diagnose_case(size_t T, clipnn_recurrent_init how, double radius, clipnn_diagnosis *d, double *ref) {
    clipnn_model *m = tanh_rnn(T, how, radius, 0);
    if (!m) return;
    float *x = malloc(T * sizeof *x), y = 1.0f;
    for (size_t t = 0; t < T; t++) x[t] = (float)cos(0.45 * (double)t);
    clipnn_objective obj = clipnn_objective_default(); /* class y, cross-entropy */
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    CHECK_OK(clipnn_diagnose_model(m, &obj, &y, x, &o, d));
    *ref = reference_ratio(m, x, T, y);
    free(x);
    clipnn_model_free(m);
}

TEST(diagnose_rec_vanishing_through_time) {
    clipnn_diagnosis d;
    double ref = NAN;
    diagnose_case(50, CLIPNN_RECURRENT_INIT_SCALED, 0.3, &d, &ref);
    CHECK(d.n_findings == 1 && clipnn_diagnosis_has(&d, CLIPNN_CAUSE_VANISHING_THROUGH_TIME));
    CHECK(d.n_findings == 1 && !strcmp(d.findings[0].test, "vanishing-through-time"));
    /* each step back multiplies by about 0.3 (radius) x tanh' <= 1: 0.3^49 = 2e-26 */
    CHECK_MSG(d.time_ratio < 1e-20 && d.time_ratio > 0, "ratio %.3g", d.time_ratio);
    CHECK_NEAR(d.time_ratio, ref, 1e-12 * ref); /* the same double numbers, divided once */
    CHECK(d.rec_radius < 1);
    CHECK(strstr(d.findings[0].remedy, "lstm") != NULL);
}

TEST(diagnose_rec_silent_when_healthy) {
    clipnn_diagnosis d;
    double ref = NAN;
    diagnose_case(8, CLIPNN_RECURRENT_INIT_ORTHOGONAL, 1.0, &d, &ref);
    CHECK_MSG(d.n_findings == 0, "%zu findings, the first: %s", d.n_findings, d.n_findings ? d.findings[0].numbers : "");
    CHECK(d.time_ratio > 1e-5 && d.time_ratio < 1e5);
    CHECK_NEAR(d.time_ratio, ref, 1e-12 * ref);
    CHECK_NEAR(d.rec_radius, 1.0, 1e-5); /* orthogonal in double, rounded to float */
    CHECK(d.n_checks == 1 && d.checks[0].passed);
}

TEST(diagnose_rec_refusals) {
    clipnn_model *m = tanh_rnn(4, CLIPNN_RECURRENT_INIT_TORCH, 1.0, 1);
    float x[4] = {0}, y[4] = {0, 1, 2, 0};
    clipnn_diagnosis d;
    clipnn_objective obj = clipnn_objective_default();
    clipnn_diagnose_options o = clipnn_diagnose_options_default();
    if (m) CHECK(clipnn_diagnose_model(m, &obj, y, x, &o, &d) == CLIPNN_ERR_UNSUPPORTED); /* many-to-many */
    clipnn_model_free(m);
    m = tanh_rnn(4, CLIPNN_RECURRENT_INIT_TORCH, 1.0, 0);
    if (!m) return;
    obj.kind = CLIPNN_OBJ_MAXIMIZE_UNIT;
    CHECK(clipnn_diagnose_model(m, &obj, NULL, x, &o, &d) == CLIPNN_ERR_UNSUPPORTED);
    obj = clipnn_objective_default();
    y[0] = 3; /* the model has 3 classes */
    CHECK(clipnn_diagnose_model(m, &obj, y, x, &o, &d) == CLIPNN_ERR_SHAPE);
    x[2] = NAN, y[0] = 0;
    CHECK(clipnn_diagnose_model(m, &obj, y, x, &o, &d) == CLIPNN_ERR_NONFINITE);
    clipnn_model_free(m);
}

TEST(cli_diagnose_recurrent_checkpoint) {
    const char *ckpt = check_tmp_path("diag_rec.ckpt"), *out;
    char args[512];
    /* the digits read as 64 steps of one value, W_hh at radius 0.5: no
     * training (one step of size 0) */
    snprintf(args, sizeof args, "train --quiet --arch rnn:16-10 --seq-steps 64 --rec-init scaled --rec-radius 0.5 "
             "--steps 1 --lr 0 --save %s", ckpt);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "train: exit %d: %s", rc, out);
    snprintf(args, sizeof args, "diagnose --model %s --input data:0", ckpt);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "diagnose: exit %d: %s", rc, out);
    CHECK(strstr(out, "cause: vanishing-through-time") != NULL);
    CHECK(check_run_tool("diagnose --demo exploding-through-time", &out) == 0);
    CHECK(strstr(out, "-> right") != NULL);
}
