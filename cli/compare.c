/* clipnn compare: the same model, initial weights and minibatches trained
 * with each clipping rule; one row per rule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare_report.h"
#include "options.h"
#include "progress.h"
#include "report.h"
#include "sweep.h"

#define MAX_RULES 256

static const char SYNOPSIS[] =
    "[--data SPEC] [--arch ...] [--lr A0] [--epochs N]\n"
    "             [--rules none,norm,adaptive,adaptive-layer,agc,value,percentile,zscore]\n"
    "             [--seeds K] [--sweep lambda=A:B:N [--out FILE.svg]] [--json]\n"
    "             [--progress auto|bar|lines|none] [--report DIR]\n"
    "\n"
    "Trains the same model from the same initial weights and minibatches (seeds S, S+1, ...,\n"
    "S+K-1) with each rule and prints one row per rule: runs that diverged (first step),\n"
    "final train loss, test accuracy (mean and standard deviation over the seeds), fraction\n"
    "of steps clipped, max ||theta - theta0|| (at the epochs' ends), time. A rule may carry\n"
    "its threshold: --rules norm:0.5,agc:0.02,value:0.05 (lambda; for value the bound, for percentile\n"
    "the percentile, for zscore the z threshold; defaults: see 'clipnn train --help').\n"
    "The defaults use a large step size on purpose: on the built-in digits plain SGD\n"
    "diverges there while norm, adaptive and agc clipping train (the paper's point).\n"
    "Also adagc, acclip, nsgdm, nsgdm-clip (plain SGD: their own momentum) and spam (with --opt\n"
    "adam or spam).\n"
    "--report DIR writes DIR/index.html: the rules side by side in charts (docs/reports.md).\n"
    "--json: the last line of stdout is one JSON object with a \"rows\" array.\n"
    "--progress: a bar within each run on a terminal, one line per run otherwise (auto).\n"
    "--sweep lambda=A:B:N trains every rule that has a threshold at N thresholds from A to B\n"
    "(a log grid; the same seeds and batches), rules without one once, then prints each rule's\n"
    "best threshold; --out FILE.svg plots accuracy and clipped fraction against the threshold.";

typedef struct {
    clipnn_clip_rule rule;
    double lambda; /* threshold; NaN: the rule's default */
    char label[48];
    int swept;     /* one threshold of --sweep's grid */
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

/* The bar within a run. The library keeps max ||theta - theta0|| only
 * while it fills the per-step record, so the callback is always set; the
 * distance is taken at the epochs' ends (no log shows every step's). */
typedef struct {
    cli_progress progress;
    cli_compare_rule *trace; /* --report and the first seed: its gradient norms; else NULL */
} step_ctx;

static void on_step_progress(const clipnn_step_record *r, void *user) {
    step_ctx *ctx = user;
    cli_progress_step(&ctx->progress, r);
    if (ctx->trace) cli_compare_trace(ctx->trace, (double)r->step, r->clip.pre_norm);
}

/* Mean test accuracy of a row and its standard deviation over the seeds. */
static double accuracy_sd(const rule_row *w, double *mean) {
    *mean = w->acc_sum / w->runs;
    double var = w->runs > 1 ? (w->acc_sq - w->runs * *mean * *mean) / (w->runs - 1) : 0;
    return sqrt(var > 0 ? var : 0);
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
        double mean, sd = accuracy_sd(w, &mean);
        snprintf(acc, sizeof acc, "%6.2f%% (%.2f)", 100 * mean, 100 * sd);
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
        double mean, sd = accuracy_sd(w, &mean);
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
        cli_json_num(&j, "test_accuracy_sd", sd);
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

/* The command line of one comparison. */
typedef struct {
    cli_settings s;
    const char *rules_text, *report;
    const char *sweep, *out; /* --sweep lambda=A:B:N, --out FILE.svg */
    size_t seeds;
    int json, quiet;
    const char *progress;
    cli_progress_mode progress_mode;
} compare_args;

enum { COMPARE_GROUPS = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_MODEL | CLI_OPTS_OPTIM | CLI_OPTS_CLIP_PARAMS };

static void compare_option_table(compare_args *a, cli_option *table) {
    size_t n = 0;
    table[n++] = (cli_option){"--rules", CLI_STR, &a->rules_text, "LIST", "rules to compare, RULE or RULE:LAMBDA"};
    table[n++] = (cli_option){"--seeds", CLI_SIZE, &a->seeds, "K", "runs per rule, seeds S .. S+K-1"};
    table[n++] = (cli_option){"--sweep", CLI_STR, &a->sweep, "lambda=A:B:N", "every rule at N thresholds, A to B"};
    table[n++] = (cli_option){"--out", CLI_STR, &a->out, "FILE.svg", "with --sweep: the frontier as SVG"};
    cli_settings_options(&a->s, COMPARE_GROUPS, table, &n);
    table[n++] = (cli_option){"--report", CLI_STR, &a->report, "DIR", "write DIR/index.html: the rules in charts"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "end stdout with one JSON summary line"};
    table[n++] = (cli_option){"--quiet", CLI_FLAG, &a->quiet, NULL, "no progress (as --progress none)"};
    table[n++] = (cli_option){"--progress", CLI_STR, &a->progress, "MODE",
                              "auto, bar (within each run), lines (one per run) or none"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

/* A comparison: the rules, the data, and one row of results per rule. */
typedef struct {
    compare_args a;
    rule_spec rules[MAX_RULES];
    size_t n_rules;
    clipnn_dataset *train, *test;
    clipnn_loss loss;
    char arch[256];
    uint64_t steps; /* the longest run's */
    rule_row rows[MAX_RULES];
    int tracing; /* --report and the first seed */
    cli_compare_rule traces[MAX_RULES];
} compare_run;

/* One run's figures into its rule's row. */
static void add_run(rule_row *w, const clipnn_train_options *o, const clipnn_train_result *r) {
    w->lambda = cli_rule_threshold(&o->clip);
    if (r->diverged) {
        if (!w->diverged_runs || r->diverged_step < w->first_diverged_step) w->first_diverged_step = r->diverged_step;
        w->diverged_runs++;
    }
    double acc = r->test_accuracy;
    w->train_loss_sum += r->train_loss;
    w->acc_sum += acc;
    w->acc_sq += acc * acc;
    if (!w->runs || acc < w->acc_min) w->acc_min = acc;
    if (!w->runs || acc > w->acc_max) w->acc_max = acc;
    w->clipped_sum += r->clipped_fraction;
    if (r->max_dist_from_start > w->max_dist || isnan(r->max_dist_from_start)) w->max_dist = r->max_dist_from_start;
    w->seconds += r->seconds;
    w->runs++;
}

/* Rule i from the initial weights of seed s.seed. */
static int run_rule(const char *cmd, compare_run *c, size_t i) {
    const rule_spec *rule = &c->rules[i];
    const cli_settings *s = &c->a.s;
    clipnn_model *m = NULL;
    clipnn_train_options o;
    int rc = cli_make_train_options(cmd, s, rule->rule, rule->lambda, c->loss, &o);
    if (!rc) rc = cli_build_model(cmd, s, c->train, c->loss, &o, &m, c->arch, sizeof c->arch);
    if (rc) {
        clipnn_model_free(m);
        return rc;
    }
    char label[96];
    snprintf(label, sizeof label, "%s seed %llu", rule->label, (unsigned long long)s->seed);
    step_ctx ctx = {.trace = c->tracing ? &c->traces[i] : NULL};
    cli_progress_begin(&ctx.progress, cmd, label, c->a.progress_mode, clipnn_dataset_n(c->train));
    o.on_step = on_step_progress;
    o.record_params = CLIPNN_RECORD_EPOCH_ENDS;
    o.per_sample_skip_pre_norm = !ctx.trace; /* only the trace reads the pre-clip norms */
    o.user = &ctx;
    clipnn_train_result r;
    clipnn_status st = cli_train(m, c->train, c->test, &o, &r);
    cli_progress_clear(&ctx.progress);
    clipnn_model_free(m);
    if (st) {
        char what[96];
        snprintf(what, sizeof what, "rule %s, seed %llu", rule->label, (unsigned long long)s->seed);
        return cli_fail(cmd, st, what);
    }
    c->steps = r.steps > c->steps ? r.steps : c->steps;
    add_run(&c->rows[i], &o, &r);
    if (c->a.progress_mode != CLI_PROGRESS_NONE)
        fprintf(stderr, "clipnn compare: %-16s seed %llu: test acc %.2f%%%s  (%.2f s)\n", rule->label,
                (unsigned long long)s->seed, 100 * r.test_accuracy, r.diverged ? "  diverged" : "", r.seconds);
    return 0;
}

/* Seeds outer, rules inner: the rules of one seed run back to back. */
static int run_all(const char *cmd, compare_run *c) {
    const uint64_t base_seed = c->a.s.seed;
    int rc = 0;
    for (size_t k = 0; k < c->a.seeds && !rc; k++) {
        c->a.s.seed = base_seed + k;
        c->tracing = c->a.report && k == 0;
        for (size_t i = 0; i < c->n_rules && !rc; i++) rc = run_rule(cmd, c, i);
    }
    c->a.s.seed = base_seed;
    return rc;
}

/* --sweep: each rule with a threshold becomes one rule per threshold of
 * the grid (labels RULE:LAMBDA); the others stay once, as references. */
static int expand_sweep(const char *cmd, compare_run *c) {
    cli_sweep g;
    int rc = cli_sweep_parse(cmd, c->a.sweep, &g);
    if (rc) return rc;
    rule_spec base[MAX_RULES];
    size_t n_base = c->n_rules, n = 0;
    memcpy(base, c->rules, n_base * sizeof *base);
    for (size_t i = 0; i < n_base; i++) {
        clipnn_clip_options o = clipnn_clip_options_for(base[i].rule);
        /* a rule given with its own threshold (norm:0.5) stays at it */
        int swept = !isnan(cli_rule_threshold(&o)) && isnan(base[i].lambda);
        size_t k_max = swept ? g.n : 1;
        if (n + k_max > MAX_RULES) return cli_usage_error(cmd, "--sweep: more than %d runs per seed", MAX_RULES);
        for (size_t k = 0; k < k_max; k++, n++) {
            c->rules[n] = base[i];
            if (!swept) continue;
            c->rules[n].lambda = cli_sweep_value(&g, k);
            c->rules[n].swept = 1;
            snprintf(c->rules[n].label, sizeof c->rules[n].label, "%s:%.4g", clipnn_clip_rule_name(base[i].rule),
                     c->rules[n].lambda);
        }
    }
    c->n_rules = n;
    return CLI_EXIT_OK;
}

/* The frontier of a sweep: best thresholds, and the SVG. */
static int print_frontier(const char *cmd, const compare_run *c) {
    cli_sweep_row rows[MAX_RULES];
    for (size_t i = 0; i < c->n_rules; i++) {
        const rule_row *w = &c->rows[i];
        double mean;
        (void)accuracy_sd(w, &mean);
        rows[i] = (cli_sweep_row){clipnn_clip_rule_name(c->rules[i].rule), c->rules[i].swept ? w->lambda : NAN, mean,
                                  w->clipped_sum / w->runs, w->diverged_runs, w->runs};
    }
    return cli_sweep_frontier(cmd, c->a.out, rows, c->n_rules, !c->a.json);
}

static void print_comparison(const compare_run *c) {
    const cli_settings *s = &c->a.s;
    if (c->a.json) {
        print_json(s, c->arch, c->rules, c->rows, c->n_rules, c->a.seeds, c->steps);
        return;
    }
    printf("%s: model %s (%s), %s lr %g momentum %g, batch %zu, %llu steps, seeds %llu..%llu\n", s->data, c->arch,
           s->act, s->opt, s->lr, s->momentum, s->batch, (unsigned long long)c->steps, (unsigned long long)s->seed,
           (unsigned long long)(s->seed + c->a.seeds - 1));
    print_table(c->rules, c->rows, c->n_rules, c->a.seeds);
}

static int write_report(const char *cmd, compare_run *c) {
    const cli_settings *s = &c->a.s;
    for (size_t i = 0; i < c->n_rules; i++) {
        const rule_row *w = &c->rows[i];
        cli_compare_rule *t = &c->traces[i];
        t->label = c->rules[i].label;
        t->lambda = w->lambda;
        t->diverged_runs = w->diverged_runs;
        t->first_diverged_step = w->first_diverged_step;
        t->acc_sd = accuracy_sd(w, &t->acc_mean);
        t->acc_min = w->acc_min, t->acc_max = w->acc_max;
        t->clipped = w->clipped_sum / w->runs;
        t->max_dist = w->max_dist;
    }
    char setup[512];
    snprintf(setup, sizeof setup, "%s: model %s (%s), %s lr %g momentum %g, batch %zu, %llu steps, seeds %llu..%llu",
             s->data, c->arch, s->act, s->opt, s->lr, s->momentum, s->batch, (unsigned long long)c->steps,
             (unsigned long long)s->seed, (unsigned long long)(s->seed + c->a.seeds - 1));
    return cli_compare_report(cmd, c->a.report, setup, c->traces, c->n_rules, c->a.seeds);
}

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    compare_run c;
    memset(&c, 0, sizeof c);
    cli_settings_default(&c.a.s, CLI_MODE_COMPARE);
    c.a.rules_text = "none,norm,adaptive,adaptive-layer,agc,value,percentile,zscore";
    c.a.seeds = 3;
    c.a.progress = "auto";
    cli_option table[CLI_MAX_OPTIONS];
    compare_option_table(&c.a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_settings_check(cmd, &c.a.s, COMPARE_GROUPS, argc, argv))) return rc;
    if ((rc = cli_progress_parse(cmd, c.a.progress, &c.a.progress_mode))) return rc;
    c.a.progress_mode = cli_progress_resolve(c.a.progress_mode, c.a.quiet);
    if (c.a.seeds == 0) return cli_usage_error(cmd, "--seeds 0: want at least one run per rule");
    if ((rc = parse_rules(cmd, c.a.rules_text, c.rules, &c.n_rules))) return rc;
    if (c.a.out && !c.a.sweep) return cli_usage_error(cmd, "--out: only with --sweep");
    if ((rc = cli_check_out_file(cmd, "--out", c.a.out))) return rc;
    if ((rc = cli_check_out_dir(cmd, "--report", c.a.report))) return rc;
    if (c.a.sweep && (rc = expand_sweep(cmd, &c))) return rc;
    clipnn_set_threads(c.a.s.threads);
    rc = cli_load_data(cmd, &c.a.s, &c.train, &c.test);
    if (!rc) rc = cli_resolve_loss(cmd, &c.a.s, c.train, &c.loss);
    if (!rc) rc = run_all(cmd, &c);
    if (!rc) print_comparison(&c);
    if (!rc && c.a.sweep) rc = print_frontier(cmd, &c);
    if (!rc && c.a.report) rc = write_report(cmd, &c);
    for (size_t i = 0; i < c.n_rules; i++) cli_compare_rule_free(&c.traces[i]);
    clipnn_dataset_free(c.train);
    clipnn_dataset_free(c.test);
    return rc;
}
