/* clipnn_train_options.record_params: under CLIPNN_RECORD_EPOCH_ENDS the
 * step records that end an epoch (and the run's last) carry
 * dist_from_start and theta_norm as a pass over the parameters in double
 * gives them, the others NaN; the result's max is over the records that
 * carried the distance. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sumsq_ref.h"
#include "clipnn.h"
#include "base/base.h" /* clipnn_parallel_macs: split the update on a small model */
#include "mlp_fixture.h"

enum { N_EX = 48, DIM = 40, CLASSES = 4, STEPS = 25, MAX_STEPS = 64 };

typedef struct {
    const clipnn_model *m;
    const float *theta0;
    int rule_theta;          /* the rule reports ||theta|| itself (adaptive: before the step) */
    double p;                /* the norm's order */
    uint64_t last_step;      /* of the last record */
    int carried[MAX_STEPS];  /* the record had the distance */
    int theta[MAX_STEPS];    /* and theta_norm */
    int epoch_end[MAX_STEPS]; /* on_epoch came right after the step */
    int skipped[MAX_STEPS];
    double worst_dist, worst_theta, max_dist;
    int rows;
} epochs_check;

static double norm_double(const float *v, size_t n, double p) {
    if (p == 2) return sqrt(sumsq_double(v, NULL, n));
    double s = 0;
    for (size_t i = 0; i < n; i++) s += pow(fabs((double)v[i]), p);
    return pow(s, 1 / p);
}

static void on_step(const clipnn_step_record *r, void *user) {
    epochs_check *c = user;
    size_t P = clipnn_model_n_params(c->m);
    const float *p = clipnn_model_params((clipnn_model *)c->m);
    c->last_step = r->step;
    c->rows++;
    if (r->step >= MAX_STEPS) return;
    c->skipped[r->step] = r->clip.skipped;
    c->carried[r->step] = !isnan(r->dist_from_start);
    c->theta[r->step] = !isnan(r->clip.theta_norm);
    if (!isnan(r->dist_from_start)) {
        double dist = sqrt(sumsq_double(p, c->theta0, P));
        double e = fabs(r->dist_from_start - dist) / (dist > 0 ? dist : 1);
        if (!(e <= c->worst_dist)) c->worst_dist = e;
        if (r->dist_from_start > c->max_dist) c->max_dist = r->dist_from_start;
    }
    if (!isnan(r->clip.theta_norm) && !c->rule_theta) {
        double theta = norm_double(p, P, c->p), e = fabs(r->clip.theta_norm - theta) / theta;
        if (!(e <= c->worst_theta)) c->worst_theta = e;
    }
}

static void on_epoch(const clipnn_epoch_record *r, void *user) {
    (void)r;
    epochs_check *c = user;
    if (c->last_step < MAX_STEPS) c->epoch_end[c->last_step] = 1;
}

/* n <= N_EX examples: classes, or with y0 regression targets, the last
 * one y0. */
static clipnn_dataset *data(size_t n, float y0) {
    float x[N_EX * DIM], y[N_EX];
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = sinf(0.37f * (float)(i * DIM + j)) * 1.5f;
        y[i] = y0 ? 0.1f * (float)(i % 5) : (float)((i * 5) % CLASSES);
    }
    if (y0) y[n - 1] = y0;
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, n, DIM, y0 ? 0 : CLASSES, 1, &d));
    return d;
}

/* Trains STEPS steps with o (its callbacks set here) and checks the rows:
 * the distance (and theta_norm, for a rule that does not report its own)
 * at exactly the steps that end an epoch and the last, as the double pass
 * gives them. */
static void check_epoch_ends(clipnn_model *m, const clipnn_dataset *d, clipnn_train_options o, const char *what,
                             epochs_check *c) {
    size_t P = clipnn_model_n_params(m);
    float *theta0 = malloc(P * sizeof *theta0);
    CHECK(theta0);
    memcpy(theta0, clipnn_model_params(m), P * sizeof *theta0);
    *c = (epochs_check){.m = m, .theta0 = theta0, .p = o.clip.p};
    c->rule_theta = o.clip.rule == CLIPNN_CLIP_ADAPTIVE;
    o.record_params = CLIPNN_RECORD_EPOCH_ENDS;
    o.on_step = on_step, o.on_epoch = on_epoch, o.user = c;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK_MSG(c->rows == STEPS, "%s: %d rows", what, c->rows);
    int ends = 0;
    for (int t = 0; t < STEPS; t++) {
        ends += c->epoch_end[t];
        CHECK_MSG(c->carried[t] == c->epoch_end[t], "%s: step %d %s the distance, on_epoch %s after it", what, t,
                  c->carried[t] ? "carries" : "lacks", c->epoch_end[t] ? "came" : "did not come");
        CHECK_MSG(c->rule_theta || c->theta[t] == c->epoch_end[t], "%s: step %d: theta_norm %s", what, t,
                  c->theta[t] ? "given" : "NaN");
    }
    CHECK_MSG(ends >= 2 && c->epoch_end[STEPS - 1], "%s: %d epoch ends", what, ends);
    CHECK_MSG(c->worst_dist <= SUMSQ_TOL, "%s: distance off by %.3g (relative)", what, c->worst_dist);
    /* p != 2: a pass in double, n roundings of relative 2^-53 */
    double theta_tol = c->p == 2 ? SUMSQ_TOL : (double)P * DBL_EPSILON;
    CHECK_MSG(c->worst_theta <= theta_tol, "%s: theta_norm off by %.3g (relative)", what, c->worst_theta);
    CHECK_MSG(res.max_dist_from_start == c->max_dist && c->max_dist > 0, "%s: max %.17g, the records' %.17g", what,
              res.max_dist_from_start, c->max_dist);
    free(theta0);
}

/* Batch 7 of 48 examples: epochs of 7 steps, the last batch short; batch
 * 1 (of 8 examples: epochs of 8 steps) takes the update that forms dW's
 * rows itself; the projection moves theta after the update (its record
 * reads the parameters); p = 1 takes theta_norm by a pass of its own. */
TEST(record_params_epoch_ends_carry_the_parameters_figures) {
    const clipnn_clip_rule rules[] = {CLIPNN_CLIP_NONE,     CLIPNN_CLIP_NORM,    CLIPNN_CLIP_AGC,
                                      CLIPNN_CLIP_ADAPTIVE_LAYER, CLIPNN_CLIP_ADAPTIVE, CLIPNN_CLIP_PROJECT,
                                      CLIPNN_CLIP_NORM /* p = 1 */};
    const size_t n_rules = sizeof rules / sizeof *rules;
    size_t saved = clipnn_parallel_macs;
    clipnn_parallel_macs = 0; /* split every pass on two threads */
    for (size_t k = 0; k < n_rules; k++)
        for (size_t batch = 1; batch <= 7; batch += 6)
            for (int threads = 1; threads <= 2; threads++) {
                clipnn_set_threads(threads);
                clipnn_dataset *d = data(batch == 1 ? 8 : N_EX, 0);
                clipnn_model *m = fixture_mlp(DIM, 150, 50, CLASSES, CLIPNN_ACT_TANH, 3);
                clipnn_train_options o = clipnn_train_options_default();
                o.clip = clipnn_clip_options_for(rules[k]);
                o.clip.lambda = rules[k] == CLIPNN_CLIP_PROJECT ? 0.3 : o.clip.lambda;
                if (k + 1 == n_rules) o.clip.p = 1;
                o.batch = batch;
                o.steps = STEPS;
                char what[96];
                snprintf(what, sizeof what, "%s (p %g), batch %zu, %d threads", clipnn_clip_rule_name(rules[k]),
                         o.clip.p, batch, threads);
                epochs_check c;
                check_epoch_ends(m, d, o, what, &c);
                clipnn_model_free(m);
                clipnn_dataset_free(d);
            }
    clipnn_parallel_macs = saved;
    clipnn_set_threads(1);
}

/* A step the skip policy skips at an epoch's end, after an update that
 * did not sum the distance: its record still carries the distance of the
 * parameters as they are (the double pass). Batches of half the data: the
 * example whose loss passes float range falls in either half. */
TEST(record_params_epoch_end_after_a_skipped_step) {
    clipnn_dataset *d = data(N_EX, 3e38f);
    clipnn_model *m = fixture_mlp(DIM, 30, 20, 1, CLIPNN_ACT_TANH, 5);
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_NORM);
    o.clip.nonfinite = CLIPNN_NONFINITE_SKIP;
    o.batch = N_EX / 2;
    o.steps = STEPS;
    clipnn_set_log(NULL, NULL);
    epochs_check c;
    check_epoch_ends(m, d, o, "skipped steps", &c);
    int skipped_ends = 0;
    for (int t = 1; t < STEPS; t++) skipped_ends += c.skipped[t] && c.epoch_end[t] && !c.skipped[t - 1];
    CHECK_MSG(skipped_ends > 0, "no epoch ended with a skipped step after an update");
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* The number after "key": in the tool's output, NaN when absent. */
static double json_value(const char *out, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = out ? strstr(out, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* The dist_from_start column (the 10th) of the log's last row. */
static double last_logged_distance(const char *path, int *rows) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[1024], last[1024] = "";
    *rows = 0;
    while (f && fgets(line, sizeof line, f)) memcpy(last, line, sizeof line), (*rows)++;
    if (f) fclose(f);
    const char *p = last;
    for (int field = 0; field < 9 && p; field++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
    return p ? strtod(p, NULL) : NAN;
}

/* `clipnn train` without --log takes the distance at the epochs' ends
 * and the last step (seven steps of the digits: the last only) and says
 * so; with --log at every step, the same trajectory. */
TEST(record_params_tool_takes_the_distance_where_it_is_shown) {
    const char *log = check_tmp_path("record_params_steps.csv");
    const char *base = "train --steps 7 --arch 16-10 --clip norm --lambda 0.5 --quiet";
    char args[512];
    const char *out;
    snprintf(args, sizeof args, "%s", base);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "max ||theta - theta0|| ") && strstr(out, " (at epoch ends)"), "exit %d: %s", rc,
              out);
    snprintf(args, sizeof args, "%s --json", base);
    rc = check_run_tool(args, &out);
    double at_ends = json_value(out, "max_dist_from_start");
    CHECK_MSG(rc == 0 && at_ends > 0, "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "%s --json --log %s", base, log);
    rc = check_run_tool(args, &out);
    double every = json_value(out, "max_dist_from_start");
    int rows;
    double last = last_logged_distance(log, &rows);
    CHECK_MSG(rc == 0 && rows == 8, "exit %d, %d log lines: %s", rc, rows, out);
    /* the log prints 9 digits, the JSON 10 */
    CHECK_MSG(fabs(at_ends - last) <= 1e-8 * last, "max at epoch ends %.10g, the last step's %.10g", at_ends, last);
    CHECK_MSG(every >= last * (1 - 1e-8), "max of every step %.10g below the last one's %.10g", every, last);
}

static void no_record(const clipnn_step_record *r, void *user) { (void)r, (void)user; }

/* The update that sums theta and its distance for the record, at every
 * step, against the one that sums nothing: the same float operations lane
 * by lane, so the same parameters bit for bit. Batch 1 forms each row of
 * dW in registers (rows of 40, 70 and 150 floats: whole steps of 64 and
 * partial ones), batch 5 reads the stored gradient; with and without
 * (Nesterov) momentum. */
TEST(record_params_sums_leave_the_update_bit_for_bit) {
    clipnn_dataset *d = data(N_EX, 0);
    for (int variant = 0; variant < 3; variant++)
        for (size_t batch = 1; batch <= 5; batch += 4) {
            clipnn_model *m[2];
            for (int k = 0; k < 2; k++) {
                m[k] = fixture_mlp(DIM, 70, 150, CLASSES, CLIPNN_ACT_TANH, 9);
                clipnn_train_options o = clipnn_train_options_default();
                o.clip = clipnn_clip_options_for(CLIPNN_CLIP_NONE);
                o.optim.momentum = variant ? 0.9 : 0;
                o.optim.nesterov = variant == 2;
                o.schedule.a0 = 0.3;
                o.batch = batch;
                o.steps = STEPS;
                o.on_step = k ? no_record : NULL; /* k = 1: the sums at every step */
                clipnn_train_result res;
                CHECK_OK(clipnn_train(m[k], d, NULL, &o, &res));
            }
            size_t P = clipnn_model_n_params(m[0]);
            CHECK_MSG(!memcmp(clipnn_model_params(m[0]), clipnn_model_params(m[1]), P * sizeof(float)),
                      "batch %zu, momentum variant %d: the summed update moved the parameters elsewhere", batch,
                      variant);
            clipnn_model_free(m[0]), clipnn_model_free(m[1]);
        }
    clipnn_dataset_free(d);
}

/* An unknown record_params value is refused with one line, before any step. */
TEST(record_params_unknown_value_refused) {
    clipnn_dataset *d = data(8, 0);
    clipnn_model *m = fixture_mlp(DIM, 5, 4, CLASSES, CLIPNN_ACT_TANH, 1);
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = 1;
    o.record_params = (clipnn_record_steps)CLIPNN_RECORD_COUNT;
    clipnn_train_result res;
    CHECK(clipnn_train(m, d, NULL, &o, &res) == CLIPNN_ERR_INVALID_ARG);
    CHECK_MSG(strstr(clipnn_last_error(), "record_params"), "message: %s", clipnn_last_error());
    CHECK(res.steps == 0);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}
