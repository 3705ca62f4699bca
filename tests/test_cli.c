/* The command-line tool end to end: train, eval, compare run as a user runs
 * them (through check_run_tool), on the built-in digits with short runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "file_util.h"
#include "clipnn.h"

/* The last line of out that starts with '{' (the --json summary), copied. */
static char *last_json(const char *out) {
    const char *best = NULL;
    for (const char *p = out; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (*p == '{') best = p;
    }
    if (!best) return NULL;
    size_t len = strcspn(best, "\n");
    char *copy = malloc(len + 1);
    if (!copy) return NULL;
    memcpy(copy, best, len);
    copy[len] = 0;
    return copy;
}

/* Text of the value of "key" (up to ',' or '}'), into buf; NULL if absent. */
static const char *json_raw(const char *json, const char *key, char *buf, size_t cap) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    size_t len = strcspn(p, ",}");
    if (len >= cap) len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return buf;
}

static double json_num(const char *json, const char *key) {
    char buf[64];
    const char *v = json_raw(json, key, buf, sizeof buf);
    if (!v || !strcmp(v, "null")) return NAN;
    return strtod(v, NULL);
}

static size_t count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0;
    int c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n') n++;
        last = c;
    }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

static int count_substr(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s ? strstr(s, sub) : NULL; p; p = strstr(p + 1, sub)) n++;
    return n;
}

TEST(cli_train_json_summary) {
    const char *out;
    int rc = check_run_tool("train --epochs 2 --json --quiet --threads 1", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char *j = last_json(out);
    CHECK_MSG(j != NULL, "no JSON line in: %s", out);
    static const char *keys[] = {"test_accuracy", "test_loss", "train_loss", "steps", "seconds",
                                 "diverged", "clipped_fraction", "data", "arch", "rule"};
    char buf[128];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK_MSG(json_raw(j, keys[i], buf, sizeof buf) != NULL, "key %s missing in %s", keys[i], j);
    /* Two epochs over the digits' training part, batch 32: the step count
     * is 2 * ceil(n_train / 32), with n_train reported in the same line. */
    double n_train = json_num(j, "n_train");
    CHECK(n_train > 1000);
    CHECK_NEAR(json_num(j, "steps"), 2 * (((long)n_train + 31) / 32), 0);
    /* Far above the 10% of guessing after two epochs; a broken update or
     * evaluation would sit near 0.1. */
    CHECK(json_num(j, "test_accuracy") > 0.8);
    CHECK(!strcmp(json_raw(j, "diverged", buf, sizeof buf), "false"));
    free(j);
}

TEST(cli_train_bad_options) {
    static const char *bad[] = {
        "--clip bogus", "--lr -1", "--p 0.5", "--batch 0", "--arch 64-0-10", "--arch 64-5",
        "--arch 64--10", "--arch x", "--momentum 1", "--epochs 2 --steps 5", "--schedule rm:0,2",
        "--act nope", "--nonfinite maybe", "--lambda -1", "--lambda abc", "--bogus", "--lr abc",
        "--log-groups", "--epochs 0", "--percentile 101", "--box 1,0", "--opt rmsprop", "--lr",
        "--test-fraction 1", "--nesterov --momentum 0", "--init nope", "--loss nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        const char *out;
        snprintf(args, sizeof args, "train --quiet %s", bad[i]);
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 2, "'%s': exit %d, want 2: %s", bad[i], rc, out);
        /* One line, naming the command. */
        CHECK_MSG(!strncmp(out, "clipnn train: ", 14) && count_substr(out, "\n") == 1,
                  "'%s': message not one 'clipnn train:' line: %s", bad[i], out);
    }
    const char *out;
    int rc = check_run_tool("train --quiet --data csv:/nonexistent/none.csv", &out);
    CHECK_MSG(rc == 4, "missing data file: exit %d: %s", rc, out);
    CHECK(strstr(out, "/nonexistent/none.csv") != NULL);
    rc = check_run_tool("eval --data digits", &out);
    CHECK_MSG(rc == 2 && strstr(out, "--model"), "eval without --model: exit %d: %s", rc, out);
    rc = check_run_tool("compare --rules none,bogus", &out);
    CHECK_MSG(rc == 2, "compare unknown rule: exit %d: %s", rc, out);
    rc = check_run_tool("compare --seeds 0", &out);
    CHECK_MSG(rc == 2, "compare --seeds 0: exit %d: %s", rc, out);
}

TEST(cli_help_shows_defaults) {
    const char *out;
    int rc = check_run_tool("train --help", &out);
    CHECK(rc == 0);
    CHECK(strstr(out, "--lr A0") && strstr(out, "(default: digits)"));
    CHECK(strstr(out, "agc 0.01") != NULL);
    rc = check_run_tool("compare --help", &out);
    CHECK(rc == 0 && strstr(out, "--rules"));
    rc = check_run_tool("eval --help", &out);
    CHECK(rc == 0 && strstr(out, "--model"));
}

TEST(cli_eval_reproduces_training) {
    const char *model = check_tmp_path("cli_eval.model");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --epochs 2 --seed 7 --quiet --json --save %s", model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "train exit %d: %s", rc, out);
    char *jt = last_json(out);
    snprintf(args, sizeof args, "eval --model %s --json", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "eval exit %d: %s", rc, out);
    char *je = last_json(out);
    char a[64], b[64];
    /* Same parameters, same data, same evaluation: the same numbers. */
    CHECK(json_raw(jt, "test_accuracy", a, sizeof a) && json_raw(je, "accuracy", b, sizeof b));
    CHECK_MSG(!strcmp(a, b), "train %s vs eval %s", a, b);
    CHECK_NEAR(json_num(jt, "test_loss"), json_num(je, "mean_loss"), 1e-6 * json_num(jt, "test_loss"));
    free(jt);
    free(je);
}

TEST(cli_eval_refuses_bad_model_files) {
    const char *model = check_tmp_path("cli_damaged.model");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --steps 3 --quiet --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    /* Flip one byte in the middle of the parameters. */
    FILE *f = fopen(model, "r+b");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    snprintf(args, sizeof args, "eval --model %s", model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 3, "damaged model: exit %d: %s", rc, out);
    CHECK(!strncmp(out, "clipnn eval: ", 13) && strstr(out, model));

    const char *foreign = check_tmp_path("cli_foreign.model");
    f = fopen(foreign, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("step,lr,loss\n0,0.1,2.3\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "eval --model %s", foreign);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 3, "foreign file: exit %d: %s", rc, out);
    rc = check_run_tool("eval --model /nonexistent/x.model", &out);
    CHECK_MSG(rc == 4, "missing model: exit %d: %s", rc, out);
}

TEST(cli_failed_run_keeps_saved_model) {
    const char *model = check_tmp_path("cli_keep.model");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --steps 20 --quiet --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "eval --model %s --json", model);
    CHECK(check_run_tool(args, &out) == 0);
    char *before = last_json(out);
    /* A ReLU net at step size 100 without clipping grows its weights
     * geometrically and overflows float32 within a few dozen steps: the run
     * diverges (exit 1) and must not replace the file. */
    snprintf(args, sizeof args, "train --steps 200 --act relu --lr 100 --clip none --quiet --save %s", model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 1 && strstr(out, "diverged"), "diverging run: exit %d: %s", rc, out);
    snprintf(args, sizeof args, "eval --model %s --json", model);
    CHECK(check_run_tool(args, &out) == 0);
    char *after = last_json(out);
    char a[64], b[64];
    CHECK(json_raw(before, "mean_loss", a, sizeof a) && json_raw(after, "mean_loss", b, sizeof b));
    CHECK_MSG(!strcmp(a, b), "model changed: %s -> %s", a, b);
    free(before);
    free(after);
}

TEST(cli_train_log_rows) {
    const char *log = check_tmp_path("cli_steps.csv");
    const char *groups = check_tmp_path("cli_steps.groups.csv");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args,
             "train --steps 7 --arch 16-10 --momentum 0 --clip norm --lambda 0.5 --stability-m 1 --quiet --log %s "
             "--log-groups",
             log);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(count_lines(log) == 1 + 7);
    /* Two dense layers: W and b of each, four groups per step. */
    CHECK(count_lines(groups) == 1 + 7 * 4);
    FILE *f = fopen(log, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[1024];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(!strncmp(line, "step,lr,loss,pre_norm,post_norm,c,clipped,skipped,theta_norm,dist_from_start,"
                         "sum_lr,sum_lr2,det_bound,lemma1_bound",
                   strlen("step,lr,loss,pre_norm,post_norm,c,clipped,skipped,theta_norm,dist_from_start,"
                          "sum_lr,sum_lr2,det_bound,lemma1_bound")));
    double prev_sum = 0;
    for (int row = 0; row < 7 && fgets(line, sizeof line, f); row++) {
        double v[14];
        int k = sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13]);
        CHECK_MSG(k == 14, "row %d: %d fields: %s", row, k, line);
        if (k != 14) break;
        CHECK(v[0] == row);
        /* Classic clipping without momentum: each step is at most
         * lr * lambda long, so the distance from theta(0) stays under
         * lambda * sum a(t), up to the float32 rounding of theta at each
         * step (at most eps/2 * ||theta|| per step). */
        CHECK_NEAR(v[10], prev_sum + v[1], 1e-12);
        prev_sum = v[10];
        CHECK(v[4] <= 0.5 * (1 + 1e-6));
        CHECK(v[9] <= v[12] + (row + 1) * 0.6e-7 * v[8]);
        CHECK_NEAR(v[12], 0.5 * v[10], 1e-9);
    }
    fclose(f);
}

/* One row of the step log: pre_norm, post_norm and c (fields 4 to 6). */
typedef struct {
    double pre, post, c;
} step_norms;

/* The step log's rows into rows[max]; returns how many were read. */
static size_t read_step_norms(const char *path, step_norms *rows, size_t max) {
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n = 0;
    if (!f || !fgets(line, sizeof line, f)) {
        if (f) fclose(f);
        return 0;
    }
    while (n < max && fgets(line, sizeof line, f)) {
        double step, lr, loss;
        step_norms *r = &rows[n];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf", &step, &lr, &loss, &r->pre, &r->post, &r->c) != 6) break;
        n++;
    }
    fclose(f);
    return n;
}

enum { LOG_STEPS = 4, LOG_GROUPS = 4 };

/* One clipnn train run with --log-groups: each step's group rows combine
 * (2-norms) into the step's pre and post norms, every factor divides its
 * group's pre norm into its post norm, and a global rule's factor is the
 * step's c. The files hold 9 significant digits (relative rounding 5e-9 of
 * each number), so a sum, a quotient or a product of them errs by at most
 * twice that, and a comparison of two by 2e-8. */
static void check_group_log(const char *rule, const char *extra, int global) {
    const char *log = check_tmp_path("cli_groups.csv"), *groups = check_tmp_path("cli_groups.groups.csv");
    char args[512];
    const char *out;
    snprintf(args, sizeof args, "train --steps %d --clip %s %s --quiet --log %s --log-groups", LOG_STEPS, rule, extra,
             log);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "%s: exit %d: %s", args, rc, out);
    step_norms steps[LOG_STEPS];
    CHECK(read_step_norms(log, steps, LOG_STEPS) == LOG_STEPS);
    FILE *f = fopen(groups, "r");
    char line[256];
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "step,group,layer,tensor,pre_norm,post_norm,factor\n"));
    const double tol = 2e-8;
    for (int t = 0; f && t < LOG_STEPS; t++) {
        double pre2 = 0, post2 = 0;
        for (int g = 0; g < LOG_GROUPS; g++) {
            unsigned step, group, layer;
            char tensor;
            double pre, post, factor;
            int k = 0;
            if (fgets(line, sizeof line, f))
                k = sscanf(line, "%u,%u,%u,%c,%lf,%lf,%lf", &step, &group, &layer, &tensor, &pre, &post, &factor);
            CHECK_MSG(k == 7 && step == (unsigned)t && group == (unsigned)g, "%s: row %d.%d: %s", rule, t, g, line);
            CHECK_MSG(fabs(factor * post - pre) <= tol * pre, "%s step %d group %d: factor %.9g pre %.9g post %.9g",
                      rule, t, g, factor, pre, post);
            if (global) CHECK_MSG(fabs(factor - steps[t].c) <= tol * factor, "%s step %d group %d: factor %.9g, c %.9g",
                                  rule, t, g, factor, steps[t].c);
            pre2 += pre * pre, post2 += post * post;
        }
        CHECK_MSG(fabs(sqrt(pre2) - steps[t].pre) <= tol * steps[t].pre, "%s step %d: groups' pre %.9g, step's %.9g",
                  rule, t, sqrt(pre2), steps[t].pre);
        CHECK_MSG(fabs(sqrt(post2) - steps[t].post) <= tol * steps[t].post,
                  "%s step %d: groups' post %.9g, step's %.9g", rule, t, sqrt(post2), steps[t].post);
    }
    if (f) fclose(f);
}

/* The groups file of every rule at the tool's defaults on the digits (64-10:
 * four groups), agc also on single examples, where the step never forms the
 * weight gradient. */
TEST(cli_train_group_log_every_rule) {
    static const struct {
        const char *rule, *extra;
        int global;
    } runs[] = {{"none", "", 1},         {"value", "", 0},          {"norm", "", 1},
                {"norm-torch", "", 1},   {"norm-group", "", 0},     {"adaptive", "", 1},
                {"adaptive-layer", "", 0}, {"agc", "", 0},          {"agc", "--batch 1", 0},
                {"project", "", 1},      {"percentile", "", 1},     {"zscore", "--z-warmup 2 --z-cap 1", 1},
                {"per-sample", "", 0}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        check_group_log(runs[i].rule, runs[i].extra, runs[i].global);
}

TEST(cli_compare_rows) {
    const char *out;
    int rc = check_run_tool("compare --steps 30 --seeds 2 --rules none,norm,agc:0.02 --json --quiet", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char *j = last_json(out);
    CHECK_MSG(j != NULL, "no JSON in %s", out);
    CHECK(count_substr(j, "\"rule\":") == 3);
    CHECK(strstr(j, "\"rule\":\"none\"") && strstr(j, "\"rule\":\"norm\"") && strstr(j, "\"rule\":\"agc\""));
    CHECK(strstr(j, "\"lambda\":0.02") != NULL);
    CHECK(count_substr(j, "\"test_accuracy\":") == 3);
    CHECK(count_substr(j, "\"max_dist_from_start\":") == 3);
    free(j);
    rc = check_run_tool("compare --steps 10 --seeds 1 --rules none,norm --quiet", &out);
    CHECK_MSG(rc == 0 && strstr(out, "none") && strstr(out, "norm"), "table: exit %d: %s", rc, out);
}

/* Every step skipped under --nonfinite skip is a warning on stderr, shown
 * without --verbose. */
TEST(cli_skipped_steps_are_warnings) {
    const char *out;
    int rc = check_run_tool("train --quiet --json --clip none --nonfinite skip --act relu --lr 40 --steps 100", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char *j = last_json(out);
    double skipped = json_num(j, "skipped_steps");
    CHECK_MSG(skipped > 0, "no step skipped: %s", out);
    CHECK_MSG(count_substr(out, "clipnn train: warning: train: step ") == (int)skipped, "%g skipped steps: %s",
              skipped, out);
    free(j);
}

TEST(cli_resume_continues_run) {
    const char *whole = check_tmp_path("cli_whole.model"), *half = check_tmp_path("cli_half.model"),
               *resumed = check_tmp_path("cli_resumed.model");
    char args[1024], a[64], b[64];
    const char *out;
    /* Momentum and a schedule make the state matter: a resume that lost the
     * velocity, the step count or the batch order would land elsewhere. */
    const char *common = "--threads 1 --quiet --momentum 0.9 --schedule rm:10,0.75 --clip norm --lambda 0.5";
    snprintf(args, sizeof args, "train %s --steps 40 --save %s", common, whole);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "train %s --steps 25 --save %s", common, half);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK_MSG(!strstr(out, "standardized"), "information without --verbose: %s", out);
    snprintf(args, sizeof args, "train %s --steps 40 --resume %s --save %s --json --verbose", common, half,
             resumed);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, out);
    /* --verbose: the library's information, the resume and the scaling. */
    char said[512];
    snprintf(said, sizeof said, "train: resuming %s at step 25 of 40", half);
    CHECK_MSG(strstr(out, said) != NULL, "no '%s' in: %s", said, out);
    CHECK_MSG(strstr(out, "digits: inputs standardized") != NULL, "no scaling line in: %s", out);
    char *jr = last_json(out);
    CHECK(json_num(jr, "steps") == 40);
    free(jr);
    snprintf(args, sizeof args, "eval --threads 1 --model %s --json", whole);
    CHECK(check_run_tool(args, &out) == 0);
    char *jw = last_json(out);
    snprintf(args, sizeof args, "eval --threads 1 --model %s --json", resumed);
    CHECK(check_run_tool(args, &out) == 0);
    char *je = last_json(out);
    /* Same trajectory, bit for bit on one thread: the same printed loss. */
    CHECK(json_raw(jw, "mean_loss", a, sizeof a) && json_raw(je, "mean_loss", b, sizeof b));
    CHECK_MSG(!strcmp(a, b), "uninterrupted %s vs resumed %s", a, b);
    free(jw);
    free(je);
    snprintf(args, sizeof args, "train --resume %s --arch 32-10", half);
    CHECK(check_run_tool(args, &out) == 2);
}

/* Value of "key":number in the row of rule `rule` of compare's JSON. */
static double row_number(const char *json, const char *rule, const char *key) {
    char needle[64], k[64];
    snprintf(needle, sizeof needle, "\"rule\":\"%s\"", rule);
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *row = strstr(json, needle);
    if (!row) return NAN;
    const char *end = strchr(row, '}');
    const char *at = strstr(row, k);
    if (!at || (end && at > end)) return NAN;
    if (!strncmp(at + strlen(k), "true", 4)) return 1;
    if (!strncmp(at + strlen(k), "false", 5)) return 0;
    return strtod(at + strlen(k), NULL);
}

/* The README's claim at compare's documented defaults: without clipping
 * the run diverges, norm, adaptive and AGC train to >= 90%. */
TEST(cli_compare_defaults_show_the_paper_claim) {
    const char *out;
    int rc = check_run_tool("compare --rules none,norm,adaptive,agc --json --quiet", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char *j = last_json(out);
    CHECK_MSG(j != NULL, "no JSON in %s", out);
    if (!j) return;
    CHECK(row_number(j, "none", "diverged") == 1);
    const char *trained[3] = {"norm", "adaptive", "agc"};
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(row_number(j, trained[i], "diverged") == 0, "%s diverged", trained[i]);
        double acc = row_number(j, trained[i], "test_accuracy");
        CHECK_MSG(acc >= 0.90, "%s: test accuracy %g", trained[i], acc);
    }
    free(j);
}

/* A resumed run ends in the same checkpoint, byte for byte, as the run
 * never interrupted: parameters, optimizer buffers and the clipper's state
 * (here AutoClip's history of pre-clip norms, and ZClip's EMAs). */
TEST(cli_resume_checkpoint_byte_identical) {
    /* the rules with state of their own, and a recurrent model (agc) */
    const char *rules[3] = {"percentile", "zscore", "agc"}, *arch[3] = {"", "", "--arch gru:16-10"};
    for (int r = 0; r < 3; r++) {
        const char *whole = check_tmp_path("cli_bw.ckpt"), *half = check_tmp_path("cli_bh.ckpt"),
                   *resumed = check_tmp_path("cli_br.ckpt");
        char args[1024];
        const char *out;
        snprintf(args, sizeof args, "train --quiet --clip %s %s --epochs 2 --save %s", rules[r], arch[r], whole);
        CHECK(check_run_tool(args, &out) == 0);
        snprintf(args, sizeof args, "train --quiet --clip %s %s --epochs 1 --save %s", rules[r], arch[r], half);
        CHECK(check_run_tool(args, &out) == 0);
        snprintf(args, sizeof args, "train --quiet --clip %s --epochs 2 --resume %s --save %s", rules[r], half, resumed);
        CHECK(check_run_tool(args, &out) == 0);
        size_t la = 0, lb = 0;
        unsigned char *a = slurp_file(whole, &la), *b = slurp_file(resumed, &lb);
        CHECK_MSG(a && b && la == lb && la > 0 && memcmp(a, b, la) == 0, "%s: resumed checkpoint differs (%zu vs %zu bytes)",
                  rules[r], la, lb);
        free(a), free(b);
    }
}

/* 1 when "key" holds the JSON string value. */
static int json_str_is(const char *json, const char *key, const char *value) {
    char buf[128], want[128];
    const char *v = json_raw(json, key, buf, sizeof buf);
    snprintf(want, sizeof want, "\"%s\"", value);
    return v && !strcmp(v, want);
}

/* The number printed right after label in out; NaN when label is absent. */
static double number_after(const char *out, const char *label) {
    const char *p = out ? strstr(out, label) : NULL;
    return p ? strtod(p + strlen(label), NULL) : NAN;
}

/* `clipnn train` with no options runs clipnn_train_options_default(): the
 * settings it reports are the library's, and examples/train_digits.c, a C
 * program built from the public header alone with those defaults, makes
 * the same run. A run is deterministic for a thread count, so steps, test
 * loss and test accuracy agree to the last printed digit (%.10g on both
 * sides). */
TEST(cli_train_defaults_are_the_library_defaults) {
    const char *out;
    int rc = check_run_tool("train --json --quiet", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    char *j = last_json(out);
    CHECK_MSG(j != NULL, "no JSON line in: %s", out);
    clipnn_train_options o = clipnn_train_options_default();
    CHECK(json_str_is(j, "opt", clipnn_opt_kind_name(o.optim.kind)));
    CHECK(json_str_is(j, "schedule", clipnn_sched_kind_name(o.schedule.kind)));
    CHECK(json_str_is(j, "rule", clipnn_clip_rule_name(o.clip.rule)));
    CHECK(json_str_is(j, "loss", clipnn_loss_name(o.loss.loss)));
    CHECK(json_num(j, "lr") == o.schedule.a0 && json_num(j, "momentum") == o.optim.momentum);
    CHECK(json_num(j, "lambda") == o.clip.lambda && json_num(j, "p") == o.clip.p);
    CHECK(json_num(j, "batch") == (double)o.batch && json_num(j, "seed") == (double)o.seed);
    size_t n_train = (size_t)json_num(j, "n_train");
    CHECK(json_num(j, "steps") == (double)(o.epochs * ((n_train + o.batch - 1) / o.batch)));
    double steps = json_num(j, "steps"), loss = json_num(j, "test_loss"), acc = json_num(j, "test_accuracy");
    free(j);

    rc = check_run_example("train_digits", "", &out);
    CHECK_MSG(rc == 0, "train_digits: exit %d: %s", rc, out);
    CHECK_MSG(number_after(out, "steps ") == steps, "steps: example %g, tool %g", number_after(out, "steps "), steps);
    CHECK_MSG(number_after(out, "test loss ") == loss, "test loss: example %.10g, tool %.10g",
              number_after(out, "test loss "), loss);
    CHECK_MSG(number_after(out, "test accuracy ") == acc, "test accuracy: example %.10g, tool %.10g",
              number_after(out, "test accuracy "), acc);
    CHECK(acc > 0.9); /* a real run, not two equal failures */
}
