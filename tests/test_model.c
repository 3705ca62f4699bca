/* Gradients of every layer, activation and loss: the double reference path
 * against central finite differences in double, and the float32 path
 * against the double reference. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

enum { N_IN = 5, BATCH = 4 };

static clipnn_model *make_model(clipnn_act hidden, clipnn_act out_act, size_t n_out, uint64_t seed) {
    size_t widths[3] = {7, 6, n_out};
    clipnn_act acts[3] = {hidden, hidden, out_act};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, N_IN, 3, widths, acts) != CLIPNN_OK) return NULL;
    /* torch-style init gives non-zero biases, so bias gradients are exercised. */
    clipnn_model_init(m, CLIPNN_INIT_TORCH, seed);
    return m;
}

static void make_batch(double *x, double *y, clipnn_loss loss, size_t n_out, unsigned seed) {
    srand(seed);
    for (int i = 0; i < BATCH * N_IN; i++) x[i] = 2.0 * rand() / RAND_MAX - 1.0;
    for (int r = 0; r < BATCH; r++)
        for (size_t j = 0; j < n_out; j++) {
            double *yr = y + (size_t)r * n_out;
            if (loss == CLIPNN_LOSS_XENT || loss == CLIPNN_LOSS_MARGIN) {
                y[r] = (double)(rand() % (int)n_out);
                break;
            }
            yr[j] = loss == CLIPNN_LOSS_BCE ? (double)(rand() % 2) : 2.0 * rand() / RAND_MAX - 1.0;
        }
}

/* Central differences in double: truncation h^2 |f'''| / 6 plus rounding
 * ~ eps64 |f| / h. With h = 1e-5 and O(1) derivatives both are < 1e-9, so
 * 1e-7 (relative to the gradient's scale) has a wide, honest margin. */
static void check_reference_against_fd(clipnn_act hidden, clipnn_act out_act, clipnn_loss loss) {
    size_t n_out = loss == CLIPNN_LOSS_BCE ? 2 : 3;
    clipnn_model *m = make_model(hidden, out_act, n_out, 7);
    CHECK(m != NULL);
    if (!m) return;
    size_t P = clipnn_model_n_params(m);
    double x[BATCH * N_IN], y[BATCH * 3], dx[BATCH * N_IN];
    make_batch(x, y, loss, n_out, 3);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = loss;
    lo.kappa = 0.5;
    double *theta = calloc(P, sizeof *theta), *grad = calloc(P, sizeof *grad);
    const float *pf = clipnn_model_params(m);
    for (size_t i = 0; i < P; i++) theta[i] = pf[i];
    double l0;
    CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, x, y, BATCH, &l0, NULL, grad, dx));
    const double h = 1e-5;
    double scale = 1e-3;
    for (size_t i = 0; i < P; i++) scale = fmax(scale, fabs(grad[i]));
    int bad = 0;
    for (size_t i = 0; i < P && bad < 3; i++) {
        double keep = theta[i], lp, lm;
        theta[i] = keep + h;
        clipnn_reference_loss_grad(m, theta, &lo, x, y, BATCH, &lp, NULL, NULL, NULL);
        theta[i] = keep - h;
        clipnn_reference_loss_grad(m, theta, &lo, x, y, BATCH, &lm, NULL, NULL, NULL);
        theta[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - grad[i]) > 1e-7 * scale) {
            bad++;
            check_fail(__FILE__, __LINE__, "%s/%s/%s: param %zu: fd %.12g vs analytic %.12g",
                       clipnn_act_name(hidden), clipnn_act_name(out_act), clipnn_loss_name(loss), i,
                       fd, grad[i]);
        }
    }
    for (int i = 0; i < BATCH * N_IN && bad < 3; i++) {
        double keep = x[i], lp, lm;
        x[i] = keep + h;
        clipnn_reference_loss_grad(m, theta, &lo, x, y, BATCH, &lp, NULL, NULL, NULL);
        x[i] = keep - h;
        clipnn_reference_loss_grad(m, theta, &lo, x, y, BATCH, &lm, NULL, NULL, NULL);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dx[i]) > 1e-7 * scale) {
            bad++;
            check_fail(__FILE__, __LINE__, "%s/%s: input %d: fd %.12g vs analytic %.12g",
                       clipnn_act_name(hidden), clipnn_loss_name(loss), i, fd, dx[i]);
        }
    }
    free(theta);
    free(grad);
    clipnn_model_free(m);
}

TEST(reference_gradients_match_finite_differences_every_activation_and_loss) {
    for (int a = 0; a < CLIPNN_ACT_COUNT; a++)
        for (int l = 0; l < CLIPNN_LOSS_COUNT; l++)
            check_reference_against_fd((clipnn_act)a, CLIPNN_ACT_IDENTITY, (clipnn_loss)l);
    /* A non-identity output activation (sigmoid + MSE). */
    check_reference_against_fd(CLIPNN_ACT_TANH, CLIPNN_ACT_SIGMOID, CLIPNN_LOSS_MSE);
}

/* float32 path against the double reference on the same float parameters.
 * Each gradient entry is a sum of at most ~10 products through 3 layers;
 * float32 rounding (eps 1.19e-7) compounds to a few dozen eps of the
 * gradient's scale, so 64 eps * scale bounds it with margin while any real
 * error (a wrong transpose, a missing term) is orders of magnitude larger. */
static void check_float_against_reference(clipnn_act hidden, clipnn_loss loss) {
    size_t n_out = 3;
    clipnn_model *m = make_model(hidden, CLIPNN_ACT_IDENTITY, n_out, 11);
    if (!m) {
        CHECK(m != NULL);
        return;
    }
    size_t P = clipnn_model_n_params(m);
    double x[BATCH * N_IN], y[BATCH * 3], dx[BATCH * N_IN], logits[BATCH * 3], l64;
    float xf[BATCH * N_IN], yf[BATCH * 3], dxf[BATCH * N_IN];
    make_batch(x, y, loss, n_out, 5);
    for (int i = 0; i < BATCH * N_IN; i++) x[i] = xf[i] = (float)x[i];
    for (int i = 0; i < BATCH * 3; i++) y[i] = yf[i] = (float)y[i];
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = loss;
    double *g64 = calloc(P, sizeof *g64);
    CHECK_OK(clipnn_reference_loss_grad(m, NULL, &lo, x, y, BATCH, &l64, logits, g64, dx));
    double l32;
    CHECK_OK(clipnn_loss_grad(m, &lo, xf, yf, BATCH, &l32, dxf));
    const float *g32 = clipnn_model_grads(m);
    double scale = 0, dscale = 0;
    for (size_t i = 0; i < P; i++) scale = fmax(scale, fabs(g64[i]));
    for (int i = 0; i < BATCH * N_IN; i++) dscale = fmax(dscale, fabs(dx[i]));
    const double k = 64 * FLT_EPSILON;
    CHECK_NEAR(l32, l64, k * fmax(1.0, fabs(l64)));
    for (size_t i = 0; i < P; i++) CHECK_NEAR(g32[i], g64[i], k * scale);
    for (int i = 0; i < BATCH * N_IN; i++) CHECK_NEAR(dxf[i], dx[i], k * dscale);
    free(g64);
    clipnn_model_free(m);
}

TEST(float_path_matches_double_reference) {
    for (int a = 0; a < CLIPNN_ACT_COUNT; a++)
        for (int l = 0; l < CLIPNN_LOSS_COUNT; l++)
            check_float_against_reference((clipnn_act)a, (clipnn_loss)l);
}

TEST(xent_keeps_the_true_class_gradient_when_softmax_saturates) {
    /* Logits (0, -20): p_y = 1 - 2e-9 rounds to 1 in float32, but
     * d/dz_y = -sum_{j != y} p_j = -2.06e-9 must survive. */
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    size_t widths[1] = {2};
    clipnn_act acts[1] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m;
    CHECK_OK(clipnn_model_create(&m, 1, 1, widths, acts));
    float *p = clipnn_model_params(m);
    p[0] = 0, p[1] = 0, p[2] = 0, p[3] = -20; /* W = 0, b = (0, -20) */
    float x = 1, y = 0, dx;
    double loss;
    CHECK_OK(clipnn_loss_grad(m, &lo, &x, &y, 1, &loss, &dx));
    const float *g = clipnn_model_grads(m);
    double expect = exp(-20.0) / (1 + exp(-20.0));
    CHECK_NEAR(g[2], -expect, 1e-6 * expect); /* bias of the true class */
    CHECK_NEAR(g[3], expect, 1e-6 * expect);
    CHECK_NEAR(loss, log1p(exp(-20.0)), 1e-6 * exp(-20.0));
    clipnn_model_free(m);
}

TEST(model_rejects_bad_shapes_and_labels) {
    clipnn_model *m = NULL;
    size_t widths[2] = {3, 0};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    CHECK(clipnn_model_create(&m, 4, 2, widths, acts) == CLIPNN_ERR_INVALID_ARG);
    CHECK(m == NULL);
    size_t huge[2] = {(size_t)1 << 29, (size_t)1 << 29};
    CHECK(clipnn_model_create(&m, (size_t)1 << 29, 2, huge, acts) != CLIPNN_OK);
    widths[1] = 2;
    CHECK_OK(clipnn_model_create(&m, 4, 2, widths, acts));
    float x[4] = {0}, y = 2; /* class 2 of 2 outputs */
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK(clipnn_loss_grad(m, &lo, x, &y, 1, NULL, NULL) == CLIPNN_ERR_SHAPE);
    CHECK(strstr(clipnn_last_error(), "not a class") != NULL);
    CHECK(clipnn_model_n_params(m) == 4 * 3 + 3 + 3 * 2 + 2);
    CHECK(clipnn_model_n_groups(m) == 4);
    clipnn_group g = clipnn_model_group(m, 2);
    CHECK(g.offset == 15 && g.rows == 2 && g.cols == 3 && !g.is_bias && g.layer == 1);
    clipnn_model_free(m);
}

/* The double reference refuses the targets clipnn_loss_grad refuses
 * (a class index past the outputs used to be read as one and write past
 * the row), on every output row of a many-to-many model. */
TEST(reference_rejects_what_loss_grad_rejects) {
    clipnn_layer_spec ls[2] = {{CLIPNN_LAYER_GRU, 3, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {4, 2, 1};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (!m) return;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 3));
    double x[2 * 8] = {0}, y[2 * 4] = {0}, loss;
    float xf[2 * 8] = {0}, yf[2 * 4] = {0};
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_reference_loss_grad(m, NULL, &lo, x, y, 2, &loss, NULL, NULL, NULL));
    const double bad[] = {2, -1, 0.5, 1e9, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        y[7] = bad[i], yf[7] = (float)bad[i]; /* the last step of the second sequence */
        CHECK_MSG(clipnn_reference_loss_grad(m, NULL, &lo, x, y, 2, &loss, NULL, NULL, NULL) == CLIPNN_ERR_SHAPE,
                  "target %g", bad[i]);
        CHECK(strstr(clipnn_last_error(), "row 7") != NULL);
        CHECK_MSG(clipnn_loss_grad(m, &lo, xf, yf, 2, &loss, NULL) == CLIPNN_ERR_SHAPE, "target %g", bad[i]);
    }
    y[7] = 1;
    lo.loss = CLIPNN_LOSS_COUNT;
    CHECK(clipnn_reference_loss_grad(m, NULL, &lo, x, y, 2, &loss, NULL, NULL, NULL) == CLIPNN_ERR_INVALID_ARG);
    clipnn_model_free(m);
}

TEST(init_is_seeded) {
    size_t widths[2] = {16, 4};
    clipnn_act acts[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *a, *b;
    CHECK_OK(clipnn_model_create(&a, 8, 2, widths, acts));
    CHECK_OK(clipnn_model_create(&b, 8, 2, widths, acts));
    for (int init = 0; init < CLIPNN_INIT_COUNT; init++) {
        clipnn_model_init(a, (clipnn_init)init, 42);
        clipnn_model_init(b, (clipnn_init)init, 42);
        size_t P = clipnn_model_n_params(a);
        CHECK(memcmp(clipnn_model_params(a), clipnn_model_params(b), P * sizeof(float)) == 0);
        clipnn_model_init(b, (clipnn_init)init, 43);
        CHECK(memcmp(clipnn_model_params(a), clipnn_model_params(b), P * sizeof(float)) != 0);
        /* He: std sqrt(2/fan_in) = 0.5 on the first layer (128 draws). */
        if (init == CLIPNN_INIT_HE) {
            double s = 0;
            for (int i = 0; i < 128; i++) s += (double)clipnn_model_params(a)[i] * clipnn_model_params(a)[i];
            CHECK_NEAR(sqrt(s / 128), 0.5, 0.1); /* ~3 sigma of the std estimate */
        }
    }
    clipnn_model_free(a);
    clipnn_model_free(b);
}
