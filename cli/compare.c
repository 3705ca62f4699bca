/* clipnn compare: the same model, initial weights and minibatches trained
 * with each clipping rule; one row per rule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "report.h"

#define MAX_RULES 32

static const char SYNOPSIS[] =
    "[--data SPEC] [--arch ...] [--lr A0] [--epochs N]\n"
    "             [--rules none,norm,adaptive,adaptive-layer,agc,value,percentile,zscore]\n"
    "             [--seeds K] [--json]\n"
    "\n"
    "Trains the same model from the same initial weights and minibatches (seeds S, S+1, ...,\n"
    "S+K-1) with each rule and prints one row per rule: runs that diverged (first step),\n"
    "final train loss, test accuracy (mean and standard deviation over the seeds), fraction\n"
    "of steps clipped, max ||theta - theta0||, time. A rule may carry its threshold:\n"
    "--rules norm:0.5,agc:0.02,value:0.05 (lambda; for value the bound, for percentile\n"
    "the percentile, for zscore the z threshold; defaults: see 'clipnn train --help').\n"
    "The defaults use a large step size on purpose: on the built-in digits plain SGD\n"
    "diverges there while norm, adaptive and agc clipping train (the paper's point).\n"
    "--json: the last line of stdout is one JSON object with a \"rows\" array.";

typedef struct {
    clipnn_clip_rule rule;
    double lambda; /* threshold; NaN: the rule's default */
    char label[48];
} rule_spec;

typedef struct {
    double lambda;
    int diverged_runs;
    uint64_t first_diverged_step;
    double train_loss_sum, acc_sum, acc_sq, acc_min, acc_max, clipped_sum, max_dist, seconds;
    int runs;
} rule_row;

static int parse_rules(const char *cmd, const char *text, rule_spec *rules, size_t *n_rules) {
    size_t n = 0;
    const char *p = text;
    while (1) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item)
            return cli_usage_error(cmd, "--rules '%s': want a comma-separated list of rules", text);
        if (n == MAX_RULES) return cli_usage_error(cmd, "--rules: more than %d rules", MAX_RULES);
        memcpy(item, p, len);
        item[len] = 0;
        rule_spec *r = &rules[n];
        r->lambda = NAN;
        char *colon = strchr(item, ':');
        if (colon) {
            char *stop;
            *colon = 0;
            r->lambda = strtod(colon + 1, &stop);
            if (stop == colon + 1 || *stop || !(r->lambda > 0))
                return cli_usage_error(cmd, "--rules: '%s:%s': the threshold must be a number > 0", item,
                                       colon + 1);
        }
        clipnn_status st = clipnn_clip_rule_parse(item, &r->rule);
        if (st) return cli_fail(cmd, st, "--rules");
        snprintf(r->label, sizeof r->label, "%.*s", (int)len, p);
        n++;
        if (!end) break;
        p = end + 1;
    }
    *n_rules = n;
    return CLI_EXIT_OK;
}

/* max ||theta - theta0|| is kept by the library only while it fills the
 * per-step record, which it does for a caller that asks for it. */
static void on_step_none(const clipnn_step_record *r, void *user) {
    (void)r;
    (void)user;
}

static void print_table(const rule_spec *rules, const rule_row *rows, size_t n_rules, size_t seeds) {
    printf("%-18s %8s  %-20s %11s  %-19s %8s %12s %8s\n", "rule", "lambda", "diverged", "train loss",
           "test acc (sd)", "clipped", "max|th-th0|", "time s");
    for (size_t i = 0; i < n_rules; i++) {
        const rule_row *w = &rows[i];
        char lam[24], div[40], acc[40];
        if (isnan(w->lambda)) snprintf(lam, sizeof lam, "-");
        else snprintf(lam, sizeof lam, "%g", w->lambda);
        if (w->diverged_runs)
            snprintf(div, sizeof div, "%d/%zu at step %llu", w->diverged_runs, seeds,
                     (unsigned long long)w->first_diverged_step);
        else snprintf(div, sizeof div, "0/%zu", seeds);
        double mean = w->acc_sum / w->runs;
        double var = w->runs > 1 ? (w->acc_sq - w->runs * mean * mean) / (w->runs - 1) : 0;
        snprintf(acc, sizeof acc, "%6.2f%% (%.2f)", 100 * mean, 100 * sqrt(var > 0 ? var : 0));
        printf("%-18s %8s  %-20s %11.4g  %-19s %7.1f%% %12.4g %8.2f\n", rules[i].label, lam, div,
               w->train_loss_sum / w->runs, acc, 100 * w->clipped_sum / w->runs, w->max_dist, w->seconds);
    }
}

static void print_json(const cli_settings *s, const char *arch, const rule_spec *rules, const rule_row *rows,
                       size_t n_rules, size_t seeds, uint64_t steps) {
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "data", s->data);
    cli_json_str(&j, "arch", arch);
    cli_json_str(&j, "act", s->act);
    cli_json_str(&j, "opt", s->opt);
    cli_json_num(&j, "lr", s->lr);
    cli_json_num(&j, "momentum", s->momentum);
    cli_json_str(&j, "schedule", s->schedule);
    cli_json_u64(&j, "batch", s->batch);
    cli_json_u64(&j, "epochs", s->steps ? 0 : s->epochs);
    cli_json_u64(&j, "steps", steps);
    cli_json_u64(&j, "seed", s->seed);
    cli_json_u64(&j, "seeds", seeds);
    cli_json_open(&j, "rows", '[');
    for (size_t i = 0; i < n_rules; i++) {
        const rule_row *w = &rows[i];
        double mean = w->acc_sum / w->runs;
        double var = w->runs > 1 ? (w->acc_sq - w->runs * mean * mean) / (w->runs - 1) : 0;
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "rule", clipnn_clip_rule_name(rules[i].rule));
        cli_json_str(&j, "label", rules[i].label);
        cli_json_num(&j, "lambda", w->lambda);
        cli_json_bool(&j, "diverged", w->diverged_runs > 0);
        cli_json_u64(&j, "diverged_runs", (uint64_t)w->diverged_runs);
        if (w->diverged_runs) cli_json_u64(&j, "diverged_step", w->first_diverged_step);
        else cli_json_null(&j, "diverged_step");
        cli_json_num(&j, "train_loss", w->train_loss_sum / w->runs);
        cli_json_num(&j, "test_accuracy", mean);
        cli_json_num(&j, "test_accuracy_sd", sqrt(var > 0 ? var : 0));
        cli_json_num(&j, "test_accuracy_min", w->acc_min);
        cli_json_num(&j, "test_accuracy_max", w->acc_max);
        cli_json_num(&j, "clipped_fraction", w->clipped_sum / w->runs);
        cli_json_num(&j, "max_dist_from_start", w->max_dist);
        cli_json_num(&j, "seconds", w->seconds);
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_end(&j);
}

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_COMPARE);
    const char *rules_text = "none,norm,adaptive,adaptive-layer,agc,value,percentile,zscore";
    size_t seeds = 3;
    int json = 0, quiet = 0;
    const unsigned groups = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_MODEL | CLI_OPTS_OPTIM | CLI_OPTS_CLIP_PARAMS;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    table[n++] = (cli_option){"--rules", CLI_STR, &rules_text, "LIST", "rules to compare, RULE or RULE:LAMBDA"};
    table[n++] = (cli_option){"--seeds", CLI_SIZE, &seeds, "K", "runs per rule, seeds S .. S+K-1"};
    cli_settings_options(&s, groups, table, &n);
    table[n++] = (cli_option){"--json", CLI_FLAG, &json, NULL, "end stdout with one JSON summary line"};
    table[n++] = (cli_option){"--quiet", CLI_FLAG, &quiet, NULL, "no progress lines on the terminal"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};

    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_settings_check(cmd, &s, groups, argc, argv))) return rc;
    if (seeds == 0) return cli_usage_error(cmd, "--seeds 0: want at least one run per rule");
    rule_spec rules[MAX_RULES];
    size_t n_rules = 0;
    if ((rc = parse_rules(cmd, rules_text, rules, &n_rules))) return rc;
    clipnn_set_threads(s.threads);

    clipnn_dataset *train = NULL, *test = NULL;
    clipnn_model *m = NULL;
    rule_row rows[MAX_RULES];
    memset(rows, 0, sizeof rows);
    clipnn_loss loss;
    char arch[256];
    uint64_t steps = 0;
    int progress = !quiet && cli_is_tty();
    const uint64_t base_seed = s.seed;
    if ((rc = cli_load_data(cmd, &s, &train, &test))) goto done;
    if ((rc = cli_resolve_loss(cmd, &s, train, &loss))) goto done;
    /* Seeds outer, rules inner: the rules of one seed run back to back. */
    for (size_t k = 0; k < seeds; k++) {
        s.seed = base_seed + k;
        for (size_t i = 0; i < n_rules; i++) {
            clipnn_train_options o;
            if ((rc = cli_build_model(cmd, &s, train, loss, &m, arch, sizeof arch))) goto done;
            if ((rc = cli_make_train_options(cmd, &s, rules[i].rule, rules[i].lambda, loss, &o))) goto done;
            o.on_step = on_step_none;
            clipnn_train_result r;
            clipnn_status st = clipnn_train(m, train, test, &o, &r);
            if (st && !(st == CLIPNN_ERR_NONFINITE && r.diverged)) {
                char what[96];
                snprintf(what, sizeof what, "rule %s, seed %llu", rules[i].label, (unsigned long long)s.seed);
                rc = cli_fail(cmd, st, what);
                goto done;
            }
            if (r.diverged) {
                /* Report the model as it ended, not the last epoch before. */
                r.train_loss = NAN;
                if (test) clipnn_evaluate(m, test, &o.loss, &r.test_loss, &r.test_accuracy);
            }
            steps = r.steps > steps ? r.steps : steps;
            rule_row *w = &rows[i];
            w->lambda = cli_rule_threshold(&o.clip);
            if (r.diverged) {
                if (!w->diverged_runs || r.diverged_step < w->first_diverged_step)
                    w->first_diverged_step = r.diverged_step;
                w->diverged_runs++;
            }
            double acc = r.test_accuracy;
            w->train_loss_sum += r.train_loss;
            w->acc_sum += acc;
            w->acc_sq += acc * acc;
            if (!w->runs || acc < w->acc_min) w->acc_min = acc;
            if (!w->runs || acc > w->acc_max) w->acc_max = acc;
            w->clipped_sum += r.clipped_fraction;
            if (r.max_dist_from_start > w->max_dist || isnan(r.max_dist_from_start)) w->max_dist = r.max_dist_from_start;
            w->seconds += r.seconds;
            w->runs++;
            if (progress)
                fprintf(stderr, "clipnn compare: %-16s seed %llu: test acc %.2f%%%s  (%.2f s)\n", rules[i].label,
                        (unsigned long long)s.seed, 100 * acc, r.diverged ? "  diverged" : "", r.seconds);
            clipnn_model_free(m);
            m = NULL;
        }
    }
    s.seed = base_seed;
    if (json) {
        print_json(&s, arch, rules, rows, n_rules, seeds, steps);
    } else {
        printf("%s: model %s (%s), %s lr %g momentum %g, batch %zu, %llu steps, seeds %llu..%llu\n", s.data,
               arch, s.act, s.opt, s.lr, s.momentum, s.batch, (unsigned long long)steps,
               (unsigned long long)base_seed, (unsigned long long)(base_seed + seeds - 1));
        print_table(rules, rows, n_rules, seeds);
    }
done:
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    clipnn_dataset_free(test);
    return rc;
}
