/* Choosing the threshold: clipnn_auto_lambda against the quantile of an
 * unclipped run's norms, the record it leaves in a checkpoint, train
 * --lambda auto and compare --sweep from the command line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

enum { TN = 96, TDIM = 4, TSTEPS = 25 };

static clipnn_dataset *threshold_data(void) {
    float x[TN * TDIM], y[TN];
    for (int i = 0; i < TN; i++) {
        for (int j = 0; j < TDIM; j++) x[i * TDIM + j] = (float)(2 * sin(0.9 * i + 1.3 * j));
        y[i] = (float)(i % 3);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, TN, TDIM, 3, 1, &d));
    return d;
}

static clipnn_model *threshold_model(void) {
    size_t widths[2] = {6, 3};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, TDIM, 2, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 9));
    return m;
}

typedef struct {
    double v[TSTEPS];
    size_t n;
} norms;

static void keep_norm(const clipnn_step_record *r, void *user) {
    norms *k = user;
    if (k->n < TSTEPS) k->v[k->n++] = r->clip.pre_norm;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The quantile numpy.quantile gives (linear interpolation). */
static double quantile(double *v, size_t n, double q) {
    qsort(v, n, sizeof *v, by_value);
    double pos = q * (double)(n - 1);
    size_t k = (size_t)pos;
    return k + 1 < n ? v[k] + (pos - (double)k) * (v[k + 1] - v[k]) : v[k];
}

/* The same run without clipping, its norms sorted here: the quantile to
 * the last bits (both interpolate the same two order statistics). */
TEST(threshold_auto_lambda_is_the_quantile_of_an_unclipped_run) {
    clipnn_dataset *d = threshold_data();
    clipnn_model *m = threshold_model(), *copy = NULL;
    if (!d || !m) goto out;
    CHECK_OK(clipnn_model_clone(m, &copy));
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 8;
    o.steps = 200;
    o.schedule.a0 = 0.5;
    const double qs[3] = {0.5, 0.9, 1.0};
    for (int i = 0; i < 3 && copy; i++) {
        double lambda = NAN;
        CHECK_OK(clipnn_auto_lambda(m, d, &o, TSTEPS, qs[i], &lambda));
        clipnn_model *run = NULL;
        CHECK_OK(clipnn_model_clone(m, &run));
        norms k = {.n = 0};
        clipnn_train_options plain = o;
        plain.clip = clipnn_clip_options_default();
        plain.steps = TSTEPS;
        plain.on_step = keep_norm;
        plain.user = &k;
        clipnn_train_result r;
        if (run) CHECK_OK(clipnn_train(run, d, NULL, &plain, &r));
        CHECK(k.n == TSTEPS);
        double want = quantile(k.v, k.n, qs[i]);
        CHECK_MSG(fabs(lambda - want) <= 4e-16 * want, "q %g: %.17g, want %.17g", qs[i], lambda, want);
        clipnn_model_free(run);
    }
    /* m itself is untouched */
    CHECK(memcmp(clipnn_model_params(m), clipnn_model_params(copy), clipnn_model_n_params(m) * sizeof(float)) == 0);
    double lambda;
    CHECK(clipnn_auto_lambda(m, d, &o, TSTEPS, 0, &lambda) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_auto_lambda(m, d, &o, 0, 0.5, &lambda) == CLIPNN_ERR_INVALID_ARG);
out:
    clipnn_model_free(copy);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* A run whose lambda was chosen keeps the choice in its state. */
TEST(threshold_auto_lambda_travels_with_the_state) {
    clipnn_dataset *d = threshold_data();
    clipnn_model *m = threshold_model();
    clipnn_train_state *st = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    if (!d || !m || !st) goto out;
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 8;
    o.steps = 10;
    o.state = st;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    double lambda = -1, q = -1;
    uint64_t steps = 0;
    CHECK(clipnn_train_state_auto_lambda(st, &lambda, &q, &steps) == 0 && lambda == -1);
    clipnn_train_state_free(st);
    st = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    o.state = st;
    o.clip.lambda = 0.123;
    o.clip.auto_quantile = 0.75;
    o.clip.auto_steps = 42;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK(clipnn_train_state_auto_lambda(st, &lambda, &q, &steps) == 1);
    CHECK(lambda == 0.123 && q == 0.75 && steps == 42);
out:
    clipnn_train_state_free(st);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

TEST(threshold_train_lambda_auto_cli) {
    const char *out;
    char args[512], path[300];
    snprintf(path, sizeof path, "%s", check_tmp_path("auto.ckpt"));
    snprintf(args, sizeof args, "train --quiet --steps 30 --auto-steps 20 --lambda auto:0.75 --save %s", path);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "lambda auto: ") && strstr(out, "quantile 0.75") &&
                  strstr(out, "20 unclipped warm-up steps"), "exit %d: %s", rc, out);
    double said = 0;
    const char *at = strstr(out, "lambda auto: ");
    if (at) said = atof(at + strlen("lambda auto: "));
    snprintf(args, sizeof args, "train --quiet --steps 40 --lambda auto --resume %s --json", path);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "\"lambda_auto_quantile\":0.75") && strstr(out, "\"lambda_auto_steps\":20"),
              "resume: exit %d: %s", rc, out);
    const char *l = strstr(out, "\"lambda\":");
    CHECK(l && fabs(atof(l + 9) - said) <= 1e-5 * said); /* said with 6 digits */
    snprintf(args, sizeof args, "train --quiet --steps 40 --lambda 0.5 --resume %s", path);
    CHECK(check_run_tool(args, &out) != 0 && strstr(out, "--lambda 0.5: the run saved in") &&
          strstr(out, "made with --lambda auto ("));
    CHECK(check_run_tool("train --quiet --steps 5 --lambda auto:0", &out) == 2);
    CHECK(check_run_tool("train --quiet --steps 5 --clip agc --lambda auto", &out) == 2);
    remove(path);
}

TEST(threshold_compare_sweep_cli) {
    const char *out;
    char args[512], svg[300];
    snprintf(svg, sizeof svg, "%s", check_tmp_path("sweep.svg"));
    snprintf(args, sizeof args,
             "compare --quiet --steps 30 --seeds 1 --rules none,norm,agc:0.02 --sweep lambda=0.1:10:3 --out %s", svg);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    const char *rows[] = {"norm:0.1 ", "norm:1 ", "norm:10 ", "agc:0.02 ", "none "};
    for (int i = 0; i < 5; i++) CHECK_MSG(strstr(out, rows[i]) != NULL, "no row %s in %s", rows[i], out);
    CHECK(!strstr(out, "agc:0.1 ")); /* a rule given its threshold is not swept */
    /* the best threshold is the table's most accurate norm row without divergence */
    double best_acc = -1, best_lambda = NAN;
    for (const char *p = strstr(out, "\nnorm:"); p; p = strstr(p + 1, "\nnorm:")) {
        char label[32], div[16];
        double lambda, loss, acc;
        if (sscanf(p + 1, "%31s %lf %15s %lf %lf%%", label, &lambda, div, &loss, &acc) == 5 && !strncmp(div, "0/", 2) &&
            acc > best_acc)
            best_acc = acc, best_lambda = lambda;
    }
    const char *b = strstr(out, "norm         best lambda");
    CHECK_MSG(b && fabs(atof(b + strlen("norm         best lambda")) - best_lambda) <= 1e-3 * best_lambda,
              "best %g (%g%%) in %s", best_lambda, best_acc, out);
    FILE *f = fopen(svg, "r");
    CHECK_MSG(f != NULL, "no %s", svg);
    if (f) {
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "<svg") && strstr(buf, "norm test accuracy") && strstr(buf, "norm clipped fraction"));
    }
    remove(svg);
    CHECK(check_run_tool("compare --quiet --steps 5 --sweep lambda=1:0.1:3", &out) == 2);
    CHECK(check_run_tool("compare --quiet --steps 5 --sweep lambda=0.1:1", &out) == 2);
    CHECK(check_run_tool("compare --quiet --steps 5 --out x.svg", &out) == 2);
}
