/* clipnn lab: the theory lab, every claim of the paper and the exercise
 * measured and given a verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lab_report.h"
#include "report.h"

static const char SYNOPSIS[] =
    "list | NAME | all  [--seed S] [--out DIR] [--json] [--quick | --full]\n"
    "\n"
    "Runs the experiments of the theory lab (docs/lab.md): each prints a table, then one\n"
    "line per claim: CLAIM <id>: HOLDS|FAILS|HOLDS UNDER <condition> (<deciding numbers>).\n"
    "'clipnn lab list' names the experiments; 'all' runs them one after the other.\n"
    "--out DIR writes DIR/<experiment>-<figure>.csv (series,x,y) and .svg for every figure,\n"
    "and DIR/index.html: every experiment run with its verdicts and figures.\n"
    "The logistic regressions use the built-in breast cancer set (569 x 30).\n"
    "--json: stdout is one JSON object with every verdict (the tables go to stderr).\n"
    "The recurrent experiments (rnn-*) take a few minutes on two cores; inside 'all' they run\n"
    "reduced budgets, and --full runs the paper's optimizer and lengths (hours).\n"
    "Exit codes: 0 every experiment ran (whatever the verdicts), 2 bad option,\n"
    "4 --out not writable.";

static void write_stdout(const char *text, void *user) {
    (void)user;
    fputs(text, stdout);
}

static void json_result(cli_json *j, const char *name, const clipnn_lab_result *r) {
    cli_json_open(j, NULL, '{');
    cli_json_str(j, "experiment", name);
    cli_json_num(j, "seconds", r->seconds);
    cli_json_str(j, "data", r->data[0] ? r->data : NULL);
    cli_json_open(j, "claims", '[');
    for (size_t i = 0; i < r->n_claims; i++) {
        const clipnn_lab_claim *c = &r->claims[i];
        cli_json_open(j, NULL, '{');
        cli_json_str(j, "id", c->id);
        cli_json_str(j, "verdict", clipnn_claim_verdict_name(c->verdict));
        cli_json_str(j, "condition", c->condition[0] ? c->condition : NULL);
        cli_json_str(j, "numbers", c->numbers);
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
    cli_json_close(j, '}');
}

/* The command line: the experiment (list, all or a name) and options. */
typedef struct {
    const char *which;
    uint64_t seed;
    const char *out;
    int json, quick, full;
} lab_args;

static int unknown_experiment(const char *cmd, const char *which) {
    const char *names[256];
    size_t n = 0;
    for (size_t i = 0; i < clipnn_lab_count() && n < 256; i++) names[n++] = clipnn_lab_name(i);
    return cli_usage_error(cmd, "unknown experiment '%s'%s (see 'clipnn lab list')", which,
                           cli_did_you_mean(which, names, n));
}

/* 'clipnn lab list': one line per experiment, or one JSON object. */
static void print_list(int json) {
    cli_json j;
    if (json) {
        cli_json_begin(&j, stdout);
        cli_json_open(&j, "experiments", '[');
    }
    for (size_t i = 0; i < clipnn_lab_count(); i++) {
        if (!json) {
            printf("%-14s %s\n", clipnn_lab_name(i), clipnn_lab_summary(i));
            continue;
        }
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "name", clipnn_lab_name(i));
        cli_json_str(&j, "summary", clipnn_lab_summary(i));
        cli_json_close(&j, '}');
    }
    if (json) {
        cli_json_close(&j, ']');
        cli_json_end(&j);
    }
}

/* The experiment named exists (or is all); --out is a writable directory,
 * created if missing. */
static int check_lab_args(const char *cmd, lab_args *a) {
    const size_t n = clipnn_lab_count();
    if (a->quick && a->full) return cli_usage_error(cmd, "--quick or --full, not both");
    if (strcmp(a->which, "all")) {
        size_t i = 0;
        while (i < n && strcmp(clipnn_lab_name(i), a->which)) i++;
        if (i == n) return unknown_experiment(cmd, a->which);
    }
    return cli_check_out_dir(cmd, "--out", a->out);
}

static int selected(const lab_args *a, size_t i) {
    return !strcmp(a->which, "all") || !strcmp(clipnn_lab_name(i), a->which);
}

/* Runs the selected experiments into res ([count]); the totals line for all. */
static int run_labs(const char *cmd, const lab_args *a, clipnn_lab_result *res) {
    clipnn_lab_options o = clipnn_lab_options_default();
    o.seed = a->seed;
    o.quick = a->quick;
    o.full = a->full;
    o.in_all = !strcmp(a->which, "all");
    o.out_dir = a->out;
    o.write = write_stdout;
    double t0 = cli_now();
    size_t counts[3] = {0, 0, 0}, ran = 0;
    for (size_t i = 0; i < clipnn_lab_count(); i++) {
        const char *name = clipnn_lab_name(i);
        if (!selected(a, i)) continue;
        clipnn_status st = clipnn_lab_run(name, &o, &res[i]);
        fflush(stdout);
        if (st) return cli_fail(cmd, st, name);
        for (size_t k = 0; k < res[i].n_claims; k++) counts[res[i].claims[k].verdict]++;
        printf("-- %s: %zu claims in %.1f s\n\n", name, res[i].n_claims, res[i].seconds);
        ran++;
    }
    if (!strcmp(a->which, "all"))
        printf("lab all: %zu experiments, %zu claims: %zu HOLDS, %zu HOLDS UNDER, %zu FAILS; %.1f s\n", ran,
               counts[0] + counts[1] + counts[2], counts[CLIPNN_CLAIM_HOLDS], counts[CLIPNN_CLAIM_HOLDS_UNDER],
               counts[CLIPNN_CLAIM_FAILS], cli_now() - t0);
    return CLI_EXIT_OK;
}

static void print_lab_json(const lab_args *a, const clipnn_lab_result *res) {
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_u64(&j, "seed", a->seed);
    cli_json_bool(&j, "quick", a->quick);
    cli_json_open(&j, "experiments", '[');
    for (size_t i = 0; i < clipnn_lab_count(); i++)
        if (selected(a, i)) json_result(&j, clipnn_lab_name(i), &res[i]);
    cli_json_close(&j, ']');
    cli_json_end(&j);
}

int cmd_lab(int argc, char **argv) {
    const char *cmd = "lab";
    lab_args a = {.seed = 1};
    cli_option table[] = {
        {"--seed", CLI_U64, &a.seed, "S", "seed of every random draw"},
        {"--out", CLI_STR, &a.out, "DIR", "write CSV traces and SVG plots here (created if missing)"},
        {"--json", CLI_FLAG, &a.json, NULL, "end stdout with one JSON line of the verdicts"},
        {"--quick", CLI_FLAG, &a.quick, NULL, "reduced sizes (seconds instead of a minute)"},
        {"--full", CLI_FLAG, &a.full, NULL, "the source's own budgets where an experiment has them (hours)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, pos, 2, &npos);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (npos != 1) return cli_usage_error(cmd, "want one of: list, all, or an experiment name (see --help)");
    a.which = pos[0];
    if (!strcmp(a.which, "list")) {
        print_list(a.json);
        return CLI_EXIT_OK;
    }
    if ((rc = check_lab_args(cmd, &a))) return rc;
    clipnn_lab_result *res = calloc(clipnn_lab_count(), sizeof *res);
    if (!res) return CLI_EXIT_NOMEM;
    rc = run_labs(cmd, &a, res);
    if (rc == CLI_EXIT_OK && a.out) rc = cli_lab_index(cmd, a.out, res);
    if (rc == CLI_EXIT_OK && a.json) print_lab_json(&a, res);
    free(res);
    return rc;
}
