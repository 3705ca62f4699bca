/* Attacks: parity with PyTorch (scripts/torch_attack_reference.py, files in
 * tests/ref/attack_*.txt), every iterate inside the budget and the box,
 * robust accuracy against epsilon on a trained digits model, and the
 * attack and optimize-input commands end to end. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "inputopt/attack.h"

/* ------------------------------------------------ reference files */

/* "name count" headers, each followed by count numbers; '#' lines are
 * comments. Returns a malloc'd copy of the array called name (NULL if
 * absent), its length in *n. */
static float *ref_array(const char *file, const char *name, size_t *n) {
    FILE *f = fopen(check_repo_path(file), "r");
    if (!f) return NULL;
    char word[64];
    float *out = NULL;
    while (!out && fscanf(f, " %63s", word) == 1) {
        if (word[0] == '#') {
            int c;
            while ((c = fgetc(f)) != '\n' && c != EOF) {}
            continue;
        }
        size_t count;
        if (fscanf(f, "%zu", &count) != 1) break;
        int want = !strcmp(word, name);
        float *v = want ? malloc((count ? count : 1) * sizeof *v) : NULL;
        for (size_t i = 0; i < count; i++) {
            float x;
            if (fscanf(f, "%f", &x) != 1) break;
            if (v) v[i] = x;
        }
        if (want) out = v, *n = count;
    }
    fclose(f);
    return out;
}

enum { REF_IN = 20, REF_B = 8 };

static clipnn_model *ref_model(void) {
    size_t widths[3] = {16, 12, 5};
    clipnn_act acts[3] = {CLIPNN_ACT_RELU, CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, REF_IN, 3, widths, acts)) return NULL;
    float *p = clipnn_model_params(m);
    for (size_t l = 0; l < 3; l++) {
        char wn[8], bn[8];
        snprintf(wn, sizeof wn, "W%zu", l);
        snprintf(bn, sizeof bn, "b%zu", l);
        size_t nw = 0, nb = 0;
        float *W = ref_array("tests/ref/attack_model.txt", wn, &nw), *b = ref_array("tests/ref/attack_model.txt", bn, &nb);
        clipnn_group gw = clipnn_model_group(m, 2 * l), gb = clipnn_model_group(m, 2 * l + 1);
        int ok = W && b && nw == gw.size && nb == gb.size;
        if (ok) {
            memcpy(p + gw.offset, W, nw * sizeof *W);
            memcpy(p + gb.offset, b, nb * sizeof *b);
        }
        free(W), free(b);
        if (!ok) {
            clipnn_model_free(m);
            return NULL;
        }
    }
    return m;
}

/* Each PGD step adds +-alpha (L-inf) or alpha g/||g|| (L2) and projects;
 * torch and clipnn do the same float32 operations, so the L-inf results
 * agree to a rounding or two of numbers in [0, 1] (ulp 1.2e-7) per step,
 * and L2 adds a few roundings in the norms and their quotient per step:
 * 10 steps x 4 ulp = 5e-6 bounds both. A sign that flipped between the
 * two (a gradient component within rounding of 0) would show as a
 * difference of 2 alpha, far outside. */
#define PARITY_TOL 5e-6

static void check_parity(const char *file, clipnn_attack_method method, double eps, double step, size_t steps,
                         clipnn_loss loss, double kappa, int target) {
    clipnn_model *m = ref_model();
    size_t nx = 0, ny = 0, na = 0, np = 0;
    float *x = ref_array("tests/ref/attack_model.txt", "x", &nx);
    float *y = ref_array("tests/ref/attack_model.txt", "labels", &ny);
    float *want = ref_array(file, "adv", &na), *pred = ref_array(file, "pred", &np);
    CHECK_MSG(m && x && y && want && pred, "%s: reference files missing or malformed", file);
    if (m && x && y && want && pred) {
        CHECK(nx == REF_B * REF_IN && ny == REF_B && na == nx && np == REF_B);
        clipnn_attack_options o = clipnn_attack_options_default();
        o.method = method;
        o.eps = eps;
        o.step = step;
        o.steps = steps;
        o.loss = loss;
        o.kappa = kappa;
        o.targeted = target >= 0;
        o.target_class = target >= 0 ? (size_t)target : 0;
        o.keep_last = 1;
        float adv[REF_B * REF_IN];
        clipnn_attack_result r;
        CHECK_OK(clipnn_attack(m, &o, x, y, REF_B, adv, &r));
        double worst = 0;
        for (size_t i = 0; i < nx; i++) worst = fmax(worst, fabs((double)adv[i] - want[i]));
        CHECK_MSG(worst <= PARITY_TOL, "%s: largest difference from torch %.3g > %.1g", file, worst, PARITY_TOL);
        /* the predictions at the adversarial inputs agree too */
        size_t agree = 0;
        const float *z;
        CHECK_OK(clipnn_forward(m, adv, REF_B, &z));
        for (size_t b = 0; b < REF_B; b++) {
            size_t best = 0;
            for (size_t j = 1; j < 5; j++)
                if (z[b * 5 + j] > z[b * 5 + best]) best = j;
            agree += (float)best == pred[b];
        }
        CHECK_MSG(agree == REF_B, "%s: %zu of %d predictions agree with torch", file, agree, REF_B);
        /* every example is eligible here (labels are the model's own
         * predictions; no label is the target class) */
        CHECK(r.eligible == REF_B);
    }
    free(x), free(y), free(want), free(pred);
    clipnn_model_free(m);
}

TEST(attack_parity_fgsm) {
    check_parity("tests/ref/attack_fgsm.txt", CLIPNN_ATTACK_FGSM, 0.02, 0, 1, CLIPNN_LOSS_XENT, 0, -1);
    check_parity("tests/ref/attack_fgsm_margin.txt", CLIPNN_ATTACK_FGSM, 0.02, 0, 1, CLIPNN_LOSS_MARGIN, 0.5, -1);
}

TEST(attack_parity_pgd) {
    check_parity("tests/ref/attack_pgd_linf.txt", CLIPNN_ATTACK_PGD_LINF, 0.03, 0.005, 10, CLIPNN_LOSS_XENT, 0, -1);
    check_parity("tests/ref/attack_pgd_linf_margin.txt", CLIPNN_ATTACK_PGD_LINF, 0.03, 0.005, 10, CLIPNN_LOSS_MARGIN,
                 0.5, -1);
    check_parity("tests/ref/attack_pgd_linf_targeted.txt", CLIPNN_ATTACK_PGD_LINF, 0.05, 0.01, 10, CLIPNN_LOSS_XENT, 0,
                 0);
    check_parity("tests/ref/attack_pgd_l2.txt", CLIPNN_ATTACK_PGD_L2, 0.15, 0.03, 10, CLIPNN_LOSS_XENT, 0, -1);
}

/* ------------------------------------------------ budget and box */

/* The t-th iterate of a run is the last iterate of the same run cut at t
 * steps (same seed, same random start), so checking the outputs of runs of
 * 1, 2, ... steps checks every iterate. clamp(x0 + d) with |d| <= eps can
 * land one rounding (<= 6e-8 for values below 1) beyond eps. */
TEST(attack_iterates_stay_in_budget_and_box) {
    clipnn_model *m = ref_model();
    size_t nx = 0, ny = 0;
    float *x = ref_array("tests/ref/attack_model.txt", "x", &nx), *y = ref_array("tests/ref/attack_model.txt", "labels", &ny);
    CHECK(m && x && y);
    if (!m || !x || !y) goto done;
    for (int l2 = 0; l2 <= 1; l2++)
        for (size_t steps = 1; steps <= 12; steps++) {
            clipnn_attack_options o = clipnn_attack_options_default();
            o.method = l2 ? CLIPNN_ATTACK_PGD_L2 : CLIPNN_ATTACK_PGD_LINF;
            o.eps = l2 ? 0.4 : 0.1;
            o.step = l2 ? 0.15 : 0.04; /* large steps: the projection has work to do */
            o.steps = steps;
            o.random_start = 1;
            o.keep_last = 1;
            o.seed = 3;
            float adv[REF_B * REF_IN];
            clipnn_attack_result r;
            CHECK_OK(clipnn_attack(m, &o, x, y, REF_B, adv, &r));
            for (size_t b = 0; b < REF_B; b++) {
                double linf = 0, ss = 0;
                for (size_t i = 0; i < REF_IN; i++) {
                    float v = adv[b * REF_IN + i];
                    CHECK_MSG(v >= 0.0f && v <= 1.0f, "iterate %zu left the box: %g", steps, (double)v);
                    double d = (double)v - x[b * REF_IN + i];
                    linf = fmax(linf, fabs(d));
                    ss += d * d;
                }
                if (l2)
                    CHECK_MSG(sqrt(ss) <= o.eps * (1 + 1e-6), "L2 iterate %zu: ||delta|| = %.9g > %g", steps, sqrt(ss), o.eps);
                else
                    CHECK_MSG(linf <= o.eps + 6e-8, "L-inf iterate %zu: |delta| = %.9g > %g", steps, linf, o.eps);
            }
        }
    /* the projection alone, on points far outside */
    float p[4] = {3, -2, 0.5f, 0.9f}, p0[4] = {0.5f, 0.5f, 0.5f, 0.95f};
    clipnn_project_budget(p, p0, 4, INFINITY, 0.1, 0, 1);
    CHECK_NEAR(p[0], 0.6, 1e-7);
    CHECK_NEAR(p[1], 0.4, 1e-7);
    CHECK_NEAR(p[2], 0.5f, 0);
    CHECK_NEAR(p[3], 0.9f, 0);
    float q[2] = {3.5f, 4.5f}, q0[2] = {0.5f, 0.5f};
    clipnn_project_budget(q, q0, 2, 2.0, 1.0, -10, 10); /* delta (3, 4) -> (0.6, 0.8) */
    CHECK_NEAR(q[0], 1.1, 1e-6);
    CHECK_NEAR(q[1], 1.3, 1e-6);
done:
    free(x), free(y);
    clipnn_model_free(m);
}

/* ------------------------------------------------ a trained model */

static clipnn_model *train_digits(clipnn_dataset **test) {
    clipnn_data_options d = clipnn_data_options_default();
    d.scaling = CLIPNN_SCALE_UNIT; /* pixels in [0, 1]: the attack box */
    clipnn_dataset *train = NULL;
    if (clipnn_dataset_load("digits", &d, &train, test)) return NULL;
    size_t widths[2] = {32, 10};
    clipnn_act acts[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    clipnn_train_options o = clipnn_train_options_default();
    o.epochs = 15;
    o.batch = 32;
    o.schedule.a0 = 0.1;
    o.optim.momentum = 0.9;
    o.clip.rule = CLIPNN_CLIP_NONE;
    clipnn_train_result r;
    if (clipnn_model_create(&m, 64, 2, widths, acts) || clipnn_model_init(m, CLIPNN_INIT_HE, 1) ||
        clipnn_model_reserve(m, 32) || clipnn_train(m, train, *test, &o, &r) || r.test_accuracy < 0.9) {
        clipnn_model_free(m);
        m = NULL;
    }
    clipnn_dataset_free(train);
    return m;
}

TEST(attack_robust_accuracy_falls_with_epsilon) {
    clipnn_dataset *test = NULL;
    clipnn_model *m = train_digits(&test);
    CHECK_MSG(m != NULL, "training the digits model failed: %s", clipnn_last_error());
    if (!m) {
        clipnn_dataset_free(test);
        return;
    }
    const double eps[] = {0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3};
    const size_t n_eps = sizeof eps / sizeof eps[0], n = clipnn_dataset_n(test);
    double prev = 2, pgd[8], fgsm[8];
    for (size_t e = 0; e < n_eps; e++) {
        clipnn_attack_options o = clipnn_attack_options_default();
        o.eps = eps[e];
        o.steps = 10;
        clipnn_attack_result r, f;
        CHECK_OK(clipnn_attack(m, &o, clipnn_dataset_x(test), clipnn_dataset_y(test), n, NULL, &r));
        o.method = CLIPNN_ATTACK_FGSM;
        CHECK_OK(clipnn_attack(m, &o, clipnn_dataset_x(test), clipnn_dataset_y(test), n, NULL, &f));
        pgd[e] = r.robust_accuracy;
        fgsm[e] = f.robust_accuracy;
        CHECK_MSG(r.robust_accuracy <= prev, "robust accuracy rose from %.4f to %.4f at eps %g", prev, r.robust_accuracy,
                  eps[e]);
        CHECK_MSG(pgd[e] <= fgsm[e], "PGD (%.4f) weaker than FGSM (%.4f) at eps %g", pgd[e], fgsm[e], eps[e]);
        prev = r.robust_accuracy;
        if (e == 0) CHECK_NEAR(r.robust_accuracy, r.clean_accuracy, 0);
        /* successes are the eligible examples that fell */
        CHECK(r.successes == r.clean_correct - r.robust_correct);
        if (r.successes) CHECK(r.mean_linf <= eps[e] + 6e-8);
    }
    CHECK_MSG(pgd[n_eps - 1] < 0.05, "PGD at eps 0.3 leaves %.4f", pgd[n_eps - 1]);
    clipnn_diagnosis d;
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(eps, pgd, fgsm, n_eps, NAN, &d);
    CHECK(d.n_findings == 0);
    clipnn_model_free(m);
    clipnn_dataset_free(test);
}

/* Input optimization reaches every class from a blank image. */
TEST(inputopt_reaches_every_class) {
    clipnn_dataset *test = NULL;
    clipnn_model *m = train_digits(&test);
    CHECK(m != NULL);
    if (!m) {
        clipnn_dataset_free(test);
        return;
    }
    for (int c = 0; c < 10; c++) {
        clipnn_inputopt_options o = clipnn_inputopt_options_default();
        o.objective.loss = CLIPNN_LOSS_MARGIN;
        o.objective.kappa = 5;
        o.lr = 0.05;
        float x[64] = {0}, y = (float)c;
        clipnn_inputopt_result r;
        CHECK_OK(clipnn_optimize_input(m, &o, &y, x, &r));
        CHECK_MSG(r.reached, "class %d not reached (value %g after %zu steps)", c, r.best_value, r.steps);
        const float *z;
        CHECK_OK(clipnn_forward(m, x, 1, &z));
        size_t best = 0;
        for (size_t j = 1; j < 10; j++)
            if (z[j] > z[best]) best = j;
        CHECK(best == (size_t)c);
        CHECK(r.best_value == 0); /* the margin of 5 holds */
        for (int i = 0; i < 64; i++) CHECK(x[i] >= 0 && x[i] <= 1);
    }
    clipnn_model_free(m);
    clipnn_dataset_free(test);
}

/* ------------------------------------------------ objectives */

/* The double objective against central differences in double (h = 1e-6,
 * error ~ h^2 |f'''| ~ 1e-12 on this smooth model, plus rounding ~
 * 1e-16 / h = 1e-10), and the float32 path against the double one
 * (float32 rounding through three layers: 1e-4 relative is ~1000 ulp). */
TEST(inputopt_objective_gradients) {
    size_t widths[3] = {6, 5, 4};
    clipnn_act acts[3] = {CLIPNN_ACT_TANH, CLIPNN_ACT_SOFTPLUS, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 3, 3, widths, acts));
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_TORCH, 4));
    const clipnn_objective_kind kinds[] = {CLIPNN_OBJ_TARGET_CLASS, CLIPNN_OBJ_TARGET_CLASS, CLIPNN_OBJ_LEAVE_CLASS,
                                           CLIPNN_OBJ_LEAVE_CLASS,  CLIPNN_OBJ_TARGET_OUTPUT, CLIPNN_OBJ_TARGET_OUTPUT,
                                           CLIPNN_OBJ_MAXIMIZE_UNIT};
    const clipnn_loss losses[] = {CLIPNN_LOSS_XENT, CLIPNN_LOSS_MARGIN, CLIPNN_LOSS_XENT, CLIPNN_LOSS_MARGIN,
                                  CLIPNN_LOSS_MSE,  CLIPNN_LOSS_BCE,    CLIPNN_LOSS_XENT};
    for (size_t c = 0; c < sizeof kinds / sizeof kinds[0]; c++) {
        clipnn_objective o = clipnn_objective_default();
        o.kind = kinds[c];
        o.loss = losses[c];
        o.kappa = 3.0; /* keeps the margin active */
        o.layer = 1, o.unit = 2;
        double x[3] = {0.3, -0.7, 0.4}, y[4] = {2, 0.5, -0.25, 1}, g[3], v;
        float xf[3] = {0.3f, -0.7f, 0.4f}, yf[4] = {2, 0.5f, -0.25f, 1}, gf[3];
        CHECK_OK(clipnn_objective_grad_d(m, &o, x, y, &v, g, NULL));
        double scale = 1e-3;
        for (int i = 0; i < 3; i++) scale = fmax(scale, fabs(g[i]));
        for (int i = 0; i < 3; i++) {
            double h = 1e-6, vp, vm, xp[3], xm[3];
            memcpy(xp, x, sizeof x), memcpy(xm, x, sizeof x);
            xp[i] += h, xm[i] -= h;
            CHECK_OK(clipnn_objective_grad_d(m, &o, xp, y, &vp, NULL, NULL));
            CHECK_OK(clipnn_objective_grad_d(m, &o, xm, y, &vm, NULL, NULL));
            CHECK_MSG(fabs((vp - vm) / (2 * h) - g[i]) <= 1e-7 * scale, "objective %zu, x%d: difference %.9g, gradient %.9g",
                      c, i, (vp - vm) / (2 * h), g[i]);
        }
        double vf;
        int reached;
        CHECK_OK(clipnn_objective_grad(m, &o, xf, yf, 1, &vf, gf, &reached));
        CHECK_NEAR(vf, v, 1e-5 * (1 + fabs(v)));
        for (int i = 0; i < 3; i++) CHECK_NEAR(gf[i], g[i], 1e-4 * scale);
    }
    /* the margin objectives: 0 and reached once the class leads by kappa */
    clipnn_objective o = clipnn_objective_default();
    o.kind = CLIPNN_OBJ_LEAVE_CLASS;
    o.loss = CLIPNN_LOSS_MARGIN;
    float xf[3] = {0.3f, -0.7f, 0.4f}, gf[3];
    const float *z;
    CHECK_OK(clipnn_forward(m, xf, 1, &z));
    size_t am = 0;
    for (size_t j = 1; j < 4; j++)
        if (z[j] > z[am]) am = j;
    float yc = (float)((am + 1) % 4); /* not the arg-max: left already */
    double v;
    int reached;
    CHECK_OK(clipnn_objective_grad(m, &o, xf, &yc, 1, &v, gf, &reached));
    CHECK(v == 0 && reached && gf[0] == 0 && gf[1] == 0 && gf[2] == 0);
    clipnn_model_free(m);
}

/* The preprocessing map (x - mean) / std of the input space gives the same
 * attack as a model whose first layer absorbed it. */
TEST(attack_preprocessing_equals_folded_model) {
    clipnn_model *m = ref_model(), *folded = NULL;
    size_t nx = 0, ny = 0;
    float *x = ref_array("tests/ref/attack_model.txt", "x", &nx), *y = ref_array("tests/ref/attack_model.txt", "labels", &ny);
    CHECK(m && x && y);
    if (!m || !x || !y) goto done;
    CHECK_OK(clipnn_model_clone(m, &folded));
    float mean[REF_IN], std[REF_IN];
    for (int i = 0; i < REF_IN; i++) mean[i] = 0.5f, std[i] = 0.25f; /* exact in binary: folding adds no rounding */
    clipnn_group gw = clipnn_model_group(folded, 0), gb = clipnn_model_group(folded, 1);
    float *W = clipnn_model_params(folded) + gw.offset, *b = clipnn_model_params(folded) + gb.offset;
    for (size_t u = 0; u < gw.rows; u++) {
        double shift = 0;
        for (size_t i = 0; i < gw.cols; i++) {
            shift += (double)W[u * gw.cols + i] * mean[i] / std[i];
            W[u * gw.cols + i] /= std[i];
        }
        b[u] = (float)(b[u] - shift);
    }
    clipnn_attack_options o = clipnn_attack_options_default();
    o.eps = 0.03, o.steps = 5, o.step = 0.01;
    float a1[REF_B * REF_IN], a2[REF_B * REF_IN];
    clipnn_attack_result r1, r2;
    CHECK_OK(clipnn_attack(folded, &o, x, y, REF_B, a2, &r2));
    o.space.mean = mean, o.space.std = std;
    CHECK_OK(clipnn_attack(m, &o, x, y, REF_B, a1, &r1));
    double worst = 0;
    for (size_t i = 0; i < nx; i++) worst = fmax(worst, fabs((double)a1[i] - a2[i]));
    /* the two models differ by the rounding of b - W mean/std: a few ulp */
    CHECK_MSG(worst <= 1e-6, "preprocessing vs folded: %.3g", worst);
    CHECK(r1.successes == r2.successes);
done:
    free(x), free(y);
    clipnn_model_free(m);
    clipnn_model_free(folded);
}

TEST(attack_rejects_bad_options) {
    clipnn_model *m = ref_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[REF_IN] = {0}, y = 0, bad_y = 7, out[REF_IN];
    clipnn_attack_result r;
    clipnn_attack_options o = clipnn_attack_options_default();
    o.eps = -1;
    CHECK(clipnn_attack(m, &o, x, &y, 1, out, &r) == CLIPNN_ERR_INVALID_ARG);
    o = clipnn_attack_options_default();
    o.loss = CLIPNN_LOSS_MSE;
    CHECK(clipnn_attack(m, &o, x, &y, 1, out, &r) == CLIPNN_ERR_INVALID_ARG);
    o = clipnn_attack_options_default();
    CHECK(clipnn_attack(m, &o, x, &bad_y, 1, out, &r) == CLIPNN_ERR_SHAPE);
    x[3] = 2; /* outside the box */
    CHECK(clipnn_attack(m, &o, x, &y, 1, out, &r) == CLIPNN_ERR_INVALID_ARG);
    clipnn_attack_method meth;
    CHECK(clipnn_attack_method_parse("pgd-l2", &meth) == CLIPNN_OK && meth == CLIPNN_ATTACK_PGD_L2);
    CHECK(clipnn_attack_method_parse("pgd", &meth) == CLIPNN_ERR_INVALID_ARG);
    clipnn_model_free(m);
}

/* ------------------------------------------------ images */

TEST(png_files_are_png) {
    float img[12] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1, -0.5f};
    const char *gray = check_tmp_path("gray.png"), *sig = check_tmp_path("signed.png");
    CHECK_OK(clipnn_png_write_gray(gray, img, 3, 4, 0, 1, 5));
    CHECK_OK(clipnn_png_write_signed(sig, img, 3, 4, 1.0, 5));
    const char *paths[2] = {gray, sig};
    for (int k = 0; k < 2; k++) {
        unsigned char head[24] = {0};
        FILE *f = fopen(paths[k], "rb");
        CHECK(f != NULL);
        if (!f) continue;
        CHECK(fread(head, 1, 24, f) == 24);
        fclose(f);
        CHECK(!memcmp(head, "\x89PNG\r\n\x1a\n", 8));
        unsigned w = (unsigned)head[16] << 24 | head[17] << 16 | head[18] << 8 | head[19];
        unsigned h = (unsigned)head[20] << 24 | head[21] << 16 | head[22] << 8 | head[23];
        CHECK(w == 20);
        CHECK(k == 0 ? h == 15 : h > 15); /* the signed one has its colour bar below */
    }
    unsigned char rgb[3];
    clipnn_colour_diverging(0, 1, rgb);
    CHECK(rgb[0] == 255 && rgb[1] == 255 && rgb[2] == 255);
    clipnn_colour_diverging(1, 1, rgb);
    CHECK(rgb[0] > rgb[2]); /* positive: red */
    clipnn_colour_diverging(-1, 1, rgb);
    CHECK(rgb[2] > rgb[0]); /* negative: blue */
    CHECK(clipnn_png_write_gray("/nonexistent-dir/x.png", img, 3, 4, 0, 1, 1) == CLIPNN_ERR_IO);
}

/* ------------------------------------------------ the commands */

TEST(cli_attack_and_optimize_input) {
    const char *model = check_tmp_path("attack_digits.ckpt");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --data digits --scale unit --arch 32-10 --act relu --epochs 10 --quiet --save %s",
             model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args,
             "attack --model %s --data digits --scale unit --method pgd-linf --eps 0,0.05,0.2 --steps 10 --n 100 --json",
             model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "attack exit %d: %s", rc, out);
    CHECK(strstr(out, "\"robust_accuracy\"") != NULL);
    CHECK(strstr(out, "\"unbounded_success_rate\":1") != NULL);
    /* every class reached from a blank image, images written */
    const char *dir = check_tmp_path("optimize_out");
    snprintf(args, sizeof args,
             "optimize-input --model %s --data digits --scale unit --target-class all --loss margin:5 --lr 0.05 --out %s",
             model, dir);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "optimize-input exit %d: %s", rc, out);
    char png[2048];
    snprintf(png, sizeof png, "%s/class7.png", dir);
    FILE *f = fopen(png, "rb");
    CHECK_MSG(f != NULL, "%s missing", png);
    if (f) fclose(f);
    /* bad input: one line naming the problem, non-zero exit */
    snprintf(args, sizeof args, "attack --model %s --method pgd --eps 0.1", model);
    CHECK(check_run_tool(args, &out) == 2);
    CHECK(strstr(out, "unknown attack") != NULL);
    CHECK(check_run_tool("attack --model /nonexistent.ckpt --method fgsm", &out) == 4);
    snprintf(args, sizeof args, "attack --model %s --method fgsm --eps 0.2,0.1", model);
    CHECK(check_run_tool(args, &out) == 2);
}

/* The trace: per-example values average to the batch means, and a fooled
 * example stays counted in the success rate of its step. */
typedef struct {
    size_t calls, bad;
} trace_check;

static void check_step(const clipnn_attack_step *s, void *user) {
    trace_check *t = user;
    double loss = 0, gn = 0, fooled = 0;
    for (size_t b = 0; b < s->batch_size; b++) {
        loss += s->example_loss[b];
        gn += s->example_grad_norm[b];
        fooled += s->example_fooled[b];
    }
    double B = (double)s->batch_size;
    t->bad += fabs(loss / B - s->loss) > 1e-12 * (1 + fabs(s->loss)) || fabs(gn / B - s->grad_norm) > 1e-12 * (1 + gn) ||
              fooled / B != s->success_rate;
    t->calls++;
}

TEST(attack_trace_per_example) {
    clipnn_model *m = ref_model();
    size_t nx = 0, ny = 0;
    float *x = ref_array("tests/ref/attack_model.txt", "x", &nx), *y = ref_array("tests/ref/attack_model.txt", "labels", &ny);
    CHECK(m && x && y);
    if (m && x && y) {
        trace_check t = {0, 0};
        clipnn_attack_options o = clipnn_attack_options_default();
        o.eps = 0.03, o.steps = 6, o.batch = 3, o.restarts = 2, o.random_start = 1;
        o.on_step = check_step;
        o.user = &t;
        clipnn_attack_result r;
        CHECK_OK(clipnn_attack(m, &o, x, y, REF_B, NULL, &r));
        CHECK(t.calls == 3 * 2 * 7); /* batches of 3, 3, 2; 2 restarts; steps 0..6 */
        CHECK(t.bad == 0);
    }
    free(x), free(y);
    clipnn_model_free(m);
}

/* The tanh parametrization: from mid-range it descends like pixel space;
 * from the bounds the 0.999999 shrink gives w = atanh(-0.999999) = -7.25,
 * finite, with dx/dw = (1 - 0.999999^2) / 2 ~ 1e-6 instead of 0: the
 * gradient in w is not zero (atanh(-1) would be -infinity, and its
 * derivative 0). It is still small: plain gradient descent moves such a
 * pixel by ~1e-13 a step, which is why the diagnosis names it. */
TEST(inputopt_tanh_parametrization) {
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 4, 1, w, id));
    if (!m) return;
    const float p[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 2.5f}; /* z0 = sum x, z1 = 2.5 */
    memcpy(clipnn_model_params(m), p, sizeof p);
    clipnn_inputopt_options o = clipnn_inputopt_options_default();
    o.normalize = o.backtrack = 0; /* plain gradient descent: its pathology is the point */
    o.param = CLIPNN_PARAM_TANH;
    float y = 0, x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    clipnn_inputopt_result r;
    CHECK_OK(clipnn_optimize_input(m, &o, &y, x, &r));
    CHECK(r.reached);
    for (int i = 0; i < 4; i++) CHECK(x[i] > 0.5f && x[i] <= 1.0f);
    float z[4] = {0, 0, 0, 0};
    o.stall_steps = 0;
    o.steps = 50;
    CHECK_OK(clipnn_optimize_input(m, &o, &y, z, &r));
    CHECK(r.grad_norm > 1e-7 && r.grad_norm < 1e-5); /* 4 pixels x 0.9 x 1e-6 */
    for (int i = 0; i < 4; i++) CHECK_MSG(z[i] > 0.0f && z[i] < 1e-6f, "pixel %d at %g", i, (double)z[i]);
    clipnn_model_free(m);
}

/* Random starts, seen through a model whose input gradient is exactly zero
 * (all first-layer weights 0): PGD cannot move, so the last iterate is the
 * start. L-inf: uniform in the cube, so |delta_i| has mean eps/2 (sd
 * eps/sqrt(12) per coordinate; over N = 64 x 200 coordinates the sample
 * mean is within 5 sd / sqrt(N) = 0.0128 eps of it). L2: radius eps u^(1/n)
 * with mean eps n/(n+1) = 0.9846 eps for n = 64 and sd 0.0150 eps, so the
 * mean of 200 radii is within 5 sd / sqrt(200) = 0.0053 eps; a start on the
 * sphere (radius eps) or at the centre would be caught. */
TEST(attack_random_starts_are_uniform) {
    enum { D = 64, N = 200 };
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, D, 1, w, id));
    if (!m) return;
    float *p = clipnn_model_params(m);
    memset(p, 0, clipnn_model_n_params(m) * sizeof *p);
    p[2 * D] = 1.0f; /* bias of class 0: every example is "correct" */
    float *x = malloc(N * D * sizeof *x), *adv = malloc(N * D * sizeof *adv), labels[N];
    for (int i = 0; i < N * D; i++) x[i] = 0.5f;
    for (int i = 0; i < N; i++) labels[i] = 0;
    for (int l2 = 0; l2 < 2; l2++) {
        clipnn_attack_options o = clipnn_attack_options_default();
        o.method = l2 ? CLIPNN_ATTACK_PGD_L2 : CLIPNN_ATTACK_PGD_LINF;
        o.eps = l2 ? 0.1 : 0.05;
        o.steps = 3;
        o.random_start = 1;
        o.keep_last = 1;
        o.seed = 5;
        clipnn_attack_result r;
        CHECK_OK(clipnn_attack(m, &o, x, labels, N, adv, &r));
        double sum = 0;
        for (int i = 0; i < N; i++) {
            double r2 = 0, rinf = 0;
            for (int j = 0; j < D; j++) {
                double d = (double)adv[i * D + j] - x[i * D + j];
                r2 += d * d, rinf = fmax(rinf, fabs(d));
                if (!l2) sum += fabs(d);
            }
            CHECK(l2 ? sqrt(r2) <= o.eps * (1 + 1e-6) : rinf <= o.eps * (1 + 1e-6));
            if (l2) sum += sqrt(r2);
        }
        if (l2) CHECK_NEAR(sum / N, o.eps * D / (D + 1.0), 0.0053 * o.eps);
        else CHECK_NEAR(sum / (N * D), o.eps / 2, 0.0128 * o.eps);
    }
    free(x), free(adv);
    clipnn_model_free(m);
}

typedef struct {
    size_t rows;
    double last;
    int repeated; /* two consecutive evaluations of the same value */
} trace_rows;

static void count_rows(const clipnn_inputopt_step *s, void *user) {
    trace_rows *t = user;
    if (t->rows > 0 && s->value == t->last) t->repeated++;
    t->last = s->value;
    t->rows++;
}

/* Fixed sign steps of 0.08 circle a target output they cannot hit within
 * MSE 1e-4 (0.3 and 0.7 are not multiples of 0.08); backtracking halves the
 * step on every overshoot and reaches it, evaluating each trial point once
 * (a rejected trial is retried from the last accepted point, not
 * re-evaluated there). */
TEST(inputopt_backtracking_reaches_a_precise_target) {
    size_t w[1] = {2};
    clipnn_act id[1] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 2, 1, w, id));
    if (!m) return;
    const float p[6] = {1, 0, 0, 1, 0, 0}; /* z = x */
    memcpy(clipnn_model_params(m), p, sizeof p);
    for (int bt = 0; bt < 2; bt++) {
        clipnn_inputopt_options o = clipnn_inputopt_options_default();
        o.objective.kind = CLIPNN_OBJ_TARGET_OUTPUT;
        o.objective.loss = CLIPNN_LOSS_MSE;
        o.lr = 0.08;
        o.steps = 200;
        o.backtrack = bt;
        trace_rows t = {0, 0, 0};
        o.on_step = count_rows;
        o.user = &t;
        float y[2] = {0.3f, 0.7f}, x[2] = {0, 0};
        clipnn_inputopt_result r;
        CHECK_OK(clipnn_optimize_input(m, &o, y, x, &r));
        if (bt) {
            CHECK_MSG(r.reached, "backtracking: not reached, best %g after %zu steps", r.best_value, r.steps);
            CHECK(fabs(x[0] - 0.3f) < 0.015f && fabs(x[1] - 0.7f) < 0.015f);
            CHECK_MSG(t.repeated == 0, "%d evaluations repeated the previous one", t.repeated);
            CHECK(t.rows == r.steps + 1);
        } else {
            CHECK(!r.reached);
        }
    }
    clipnn_model_free(m);
}

/* ------------------------------------------------ APGD */

/* f(x_t) for the 8 examples at every iterate, from the step callback
 * (the library minimizes value = -f). */
typedef struct {
    double f[21][REF_B];
} apgd_trace;

static void apgd_on_step(const clipnn_attack_step *s, void *user) {
    apgd_trace *tr = user;
    for (size_t b = 0; b < s->batch_size && s->step < 21; b++)
        tr->f[s->step][s->first_example + b] = -s->example_loss[b];
}

/* APGD against scripts/apgd_reference.py, written from the paper in double
 * (20 iterations, eps 0.05, start x0): f at every iterate and the last
 * iterate. The library runs the model in float32: f differs by its rounding
 * (~1e-6 relative through three layers) plus the iterates' drift, each
 * update rounding numbers in [0, 1] (ulp 6e-8) a few times per step, 20 steps:
 * 5e-6 per coordinate bounds it; |grad f| <= ~20 over 20 coordinates turns
 * that into 5e-4 on f. A different checkpoint decision or a flipped sign
 * moves coordinates by eta >= eps / 64 = 8e-4 and f far more. */
static void check_apgd_parity(const char *file, clipnn_attack_method method) {
    clipnn_model *m = ref_model();
    size_t nx = 0, ny = 0, nf = 0, nl = 0;
    float *x = ref_array("tests/ref/attack_model.txt", "x", &nx);
    float *y = ref_array("tests/ref/attack_model.txt", "labels", &ny);
    float *f_ref = ref_array(file, "f", &nf), *last = ref_array(file, "last", &nl);
    CHECK_MSG(m && x && y && f_ref && last && nf == 21 * REF_B && nl == REF_B * REF_IN, "%s: reference missing", file);
    if (m && x && y && f_ref && last && nf == 21 * REF_B && nl == REF_B * REF_IN) {
        clipnn_attack_options o = clipnn_attack_options_default();
        o.method = method;
        o.eps = 0.05;
        o.steps = 20;
        o.keep_last = 1;
        apgd_trace tr;
        o.on_step = apgd_on_step;
        o.user = &tr;
        float adv[REF_B * REF_IN];
        clipnn_attack_result r;
        CHECK_OK(clipnn_attack(m, &o, x, y, REF_B, adv, &r));
        double worst_f = 0, worst_x = 0;
        for (size_t t = 0; t <= 20; t++)
            for (size_t b = 0; b < REF_B; b++) worst_f = fmax(worst_f, fabs(tr.f[t][b] - f_ref[t * REF_B + b]));
        for (size_t i = 0; i < nl; i++) worst_x = fmax(worst_x, fabs((double)adv[i] - last[i]));
        CHECK_MSG(worst_f <= 5e-4, "%s: f differs from the reference by %.3g", file, worst_f);
        CHECK_MSG(worst_x <= 5e-6, "%s: last iterate differs by %.3g", file, worst_x);
    }
    free(x), free(y), free(f_ref), free(last);
    clipnn_model_free(m);
}

TEST(attack_apgd_parity_with_the_paper) {
    check_apgd_parity("tests/ref/attack_apgd_ce.txt", CLIPNN_ATTACK_APGD_CE);
    check_apgd_parity("tests/ref/attack_apgd_dlr.txt", CLIPNN_ATTACK_APGD_DLR);
}

/* The paper's checkpoints: p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
 * 0.06), w_j = ceil(p_j N): for N = 100, 22 41 57 70 80 87 93 99 (the
 * increments shrink by 3 until they reach 6); for N = 20, 5 9 12 14 16 18 19. */
TEST(attack_apgd_checkpoints) {
    size_t w[64];
    const size_t w100[8] = {22, 41, 57, 70, 80, 87, 93, 99}, w20[7] = {5, 9, 12, 14, 16, 18, 19};
    CHECK(clipnn_apgd_checkpoints(100, w, 64) == 8);
    for (int i = 0; i < 8; i++) CHECK(w[i] == w100[i]);
    CHECK(clipnn_apgd_checkpoints(20, w, 64) == 7);
    for (int i = 0; i < 7; i++) CHECK(w[i] == w20[i]);
    CHECK(clipnn_apgd_checkpoints(1, w, 64) == 0); /* ceil(0.22) = 1 is not below N */
    CHECK(clipnn_apgd_checkpoints(100, w, 3) == 3);
}

/* APGD refuses what it cannot do, with one line. */
TEST(attack_apgd_refuses) {
    clipnn_model *m = ref_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[REF_IN] = {0}, y = 0;
    clipnn_attack_options o = clipnn_attack_options_default();
    clipnn_attack_result r;
    o.method = CLIPNN_ATTACK_APGD_DLR;
    o.targeted = 1;
    o.target_class = 1;
    CHECK(clipnn_attack(m, &o, x, &y, 1, NULL, &r) == CLIPNN_ERR_INVALID_ARG);
    o.targeted = 0;
    o.loss = CLIPNN_LOSS_MARGIN;
    CHECK(clipnn_attack(m, &o, x, &y, 1, NULL, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "apgd-dlr") != NULL);
    clipnn_attack_method meth;
    CHECK(clipnn_attack_method_parse("apgd-ce", &meth) == CLIPNN_OK && meth == CLIPNN_ATTACK_APGD_CE);
    clipnn_model_free(m);
}
