/* clipnn report: the HTML report of a run from the CSV files it wrote. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "rec_log.h"
#include "run_report.h"

static const char SYNOPSIS[] =
    "LOG.csv [--epochs EPOCHS.csv] [--groups GROUPS.csv] --out DIR [--json]\n"
    "\n"
    "Writes DIR/index.html (created if missing), the page 'clipnn train --report DIR' writes,\n"
    "from the files of a run already done: LOG.csv of --log (one row per step), the\n"
    "per-epoch CSV of --log-epochs, the per-group CSV of --log-groups (LOG.groups.csv is\n"
    "read when it exists and --groups is not given). The page is self-contained: inline\n"
    "SVG, no script, nothing loaded from elsewhere (docs/reports.md).\n"
    "--json: stdout is one JSON object: the page written and what it shows.\n"
    "Exit codes: 0 ok, 2 bad option, 3 malformed CSV, 4 file not readable/writable.";

typedef struct {
    const char *log, *epochs, *groups, *out;
    int json;
} report_args;

/* LOG.groups.csv beside LOG.csv (as --log-groups names it) when it is
 * there; NULL else (or without memory). */
static char *default_groups(const char *log) {
    char *path = cli_log_side_path(log, ".groups.csv");
    if (!path || access(path, R_OK) == 0) return path;
    free(path);
    return NULL;
}

/* The figures a log alone gives. */
static size_t log_info(const cli_runlog *l, const report_args *a, char text[][96], const char **names) {
    const cli_table *s = &l->steps, *e = &l->epochs;
    const double *last = s->n ? s->v + (s->n - 1) * s->width : NULL;
    double clipped = 0, max_dist = 0;
    for (size_t i = 0; i < s->n; i++) {
        clipped += s->v[i * s->width + RL_CLIPPED] > 0;
        double d = s->v[i * s->width + RL_DIST];
        max_dist = isnan(d) || d > max_dist ? d : max_dist;
    }
    size_t n = 0;
    names[n] = "log", snprintf(text[n++], 96, "%s", a->log);
    names[n] = "steps", snprintf(text[n++], 96, "%zu", s->n);
    names[n] = "steps clipped", snprintf(text[n++], 96, "%.1f%%", s->n ? 100 * clipped / (double)s->n : 0.0);
    names[n] = "max ||theta - theta(0)||", snprintf(text[n++], 96, "%.4g", max_dist);
    names[n] = "last minibatch loss", snprintf(text[n++], 96, "%.4g", last ? last[RL_LOSS] : NAN);
    names[n] = "last learning rate", snprintf(text[n++], 96, "%.4g", last ? last[RL_LR] : NAN);
    if (!e->n) return n;
    const double *end = e->v + (e->n - 1) * e->width;
    names[n] = "epochs", snprintf(text[n++], 96, "%zu", e->n);
    names[n] = "test accuracy (last epoch)", snprintf(text[n++], 96, "%.2f%%", 100 * end[RL_TEST_ACC]);
    names[n] = "test loss (last epoch)", snprintf(text[n++], 96, "%.4g", end[RL_TEST_LOSS]);
    return n;
}

static void print_json(const report_args *a, const cli_runlog *l) {
    char page[4200];
    snprintf(page, sizeof page, "%s/index.html", a->out);
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "report", page);
    cli_json_u64(&j, "steps", l->steps.n);
    cli_json_u64(&j, "epochs", l->epochs.n);
    cli_json_u64(&j, "groups", l->n_groups);
    cli_json_end(&j);
}

static int write_page(const char *cmd, const report_args *a) {
    cli_runlog l;
    cli_runlog_init(&l);
    char *groups = a->groups ? NULL : default_groups(a->log);
    const char *groups_path = a->groups ? a->groups : groups;
    int rc = cli_runlog_read_steps(&l, cmd, a->log);
    if (!rc && a->epochs) rc = cli_runlog_read_epochs(&l, cmd, a->epochs);
    if (!rc && groups_path) rc = cli_runlog_read_groups(&l, cmd, groups_path);
    if (!rc) {
        char text[16][96];
        const char *names[16], *values[16];
        size_t n = log_info(&l, a, text, names);
        for (size_t i = 0; i < n; i++) values[i] = text[i];
        char title[160];
        snprintf(title, sizeof title, "clipnn report: %.140s", a->log);
        rc = cli_runlog_report(&l, cmd, title, names, values, n, a->out);
    }
    if (!rc && a->json) print_json(a, &l);
    free(groups);
    cli_runlog_free(&l);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *cmd = "report";
    report_args a = {0};
    cli_option table[] = {
        {"--epochs", CLI_STR, &a.epochs, "FILE.csv", "per-epoch CSV of --log-epochs"},
        {"--groups", CLI_STR, &a.groups, "FILE.csv", "per-group CSV of --log-groups"},
        {"--out", CLI_STR, &a.out, "DIR", "write DIR/index.html (required)"},
        {"--json", CLI_FLAG, &a.json, NULL, "stdout: one JSON object"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const char *pos[2];
    int npos = 0;
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, pos, 2, &npos);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (npos != 1) return cli_usage_error(cmd, "want one LOG.csv (the per-step CSV of --log)");
    if (!a.out) return cli_usage_error(cmd, "--out DIR is required");
    if ((rc = cli_check_out_dir(cmd, "--out", a.out))) return rc;
    a.log = pos[0];
    return write_page(cmd, &a);
}
