/* clipnn compare --report: accuracy bars with the spread over the seeds, the
 * step of the first divergence, the gradient norm traces overlaid, a table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare_report.h"

void cli_compare_trace(cli_compare_rule *r, double step, double norm) {
    if (r->trace_failed) return;
    if (r->norm_n == r->norm_cap) {
        size_t cap = r->norm_cap ? 2 * r->norm_cap : 256;
        double *x = realloc(r->norm_x, cap * sizeof *x);
        if (x) r->norm_x = x;
        double *y = x ? realloc(r->norm_y, cap * sizeof *y) : NULL;
        if (y) r->norm_y = y;
        if (!x || !y) {
            r->trace_failed = 1;
            return;
        }
        r->norm_cap = cap;
    }
    r->norm_x[r->norm_n] = step;
    r->norm_y[r->norm_n++] = norm;
}

void cli_compare_rule_free(cli_compare_rule *r) {
    free(r->norm_x);
    free(r->norm_y);
    r->norm_x = r->norm_y = NULL;
    r->norm_n = r->norm_cap = 0;
}

static void accuracy_bars(clipnn_report *rep, const cli_compare_rule *r, size_t n, size_t seeds, char (*notes)[48]) {
    clipnn_chart_bar bars[64];
    for (size_t i = 0; i < n && i < 64; i++) {
        if (r[i].diverged_runs) snprintf(notes[i], 48, "%d/%zu diverged", r[i].diverged_runs, seeds);
        else snprintf(notes[i], 48, "%.1f%%", 100 * r[i].acc_mean);
        bars[i] = (clipnn_chart_bar){r[i].label, r[i].acc_mean, r[i].acc_min, r[i].acc_max, notes[i], (int)i};
    }
    char title[96];
    snprintf(title, sizeof title, "Test accuracy: mean over %zu seed%s, bar from the lowest to the highest", seeds,
             seeds > 1 ? "s" : "");
    clipnn_chart_axes ax = {title, "clipping rule", "test accuracy", 0, 0, 0, 0};
    clipnn_report_bar_chart(rep, &ax, bars, n < 64 ? n : 64);
}

static void divergence_bars(clipnn_report *rep, const cli_compare_rule *r, size_t n, char (*notes)[48]) {
    clipnn_chart_bar bars[64];
    int any = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        double step = r[i].diverged_runs ? (double)r[i].first_diverged_step : NAN;
        any |= r[i].diverged_runs > 0;
        if (r[i].diverged_runs) snprintf(notes[i], 48, "step %.0f", step);
        else snprintf(notes[i], 48, "none");
        bars[i] = (clipnn_chart_bar){r[i].label, step, NAN, NAN, notes[i], (int)i};
    }
    if (!any) {
        clipnn_report_text(rep, "No run diverged.");
        return;
    }
    clipnn_chart_axes ax = {"First divergence: the step of the earliest over the seeds", "clipping rule", "step",
                            0, 0, 0, 0};
    clipnn_report_bar_chart(rep, &ax, bars, n < 64 ? n : 64);
}

/* A run that diverged ends its trace with an infinite norm at the step it
 * diverged: marked on the top edge there. */
static void norm_traces(clipnn_report *rep, cli_compare_rule *r, size_t n) {
    clipnn_chart_series s[64];
    for (size_t i = 0; i < n && i < 64; i++) {
        if (r[i].diverged_runs && r[i].norm_n && r[i].norm_x[r[i].norm_n - 1] < (double)r[i].first_diverged_step)
            cli_compare_trace(&r[i], (double)r[i].first_diverged_step, INFINITY);
        s[i] = (clipnn_chart_series){r[i].label, r[i].norm_x, r[i].norm_y, r[i].norm_n, (int)i, 0};
    }
    clipnn_chart_axes ax = {"Gradient norm before clipping, first seed", "step", "||g||", 0, 1, 0, 0};
    clipnn_report_line_chart(rep, &ax, s, n < 64 ? n : 64);
}

static void rule_table(clipnn_report *rep, const cli_compare_rule *r, size_t n, size_t seeds) {
    enum { COLS = 7 };
    static const char *const head[COLS] = {"rule", "lambda", "diverged", "test accuracy (sd)", "lowest - highest",
                                           "steps clipped", "max ||theta - theta(0)|| (epoch ends)"};
    char (*text)[48] = calloc(n * COLS, sizeof *text);
    const char **cells = calloc((n + 1) * COLS, sizeof *cells);
    if (text && cells) {
        memcpy(cells, head, sizeof head);
        for (size_t i = 0; i < n; i++) {
            char(*t)[48] = text + i * COLS;
            snprintf(t[0], 48, "%s", r[i].label);
            snprintf(t[1], 48, isnan(r[i].lambda) ? "-" : "%g", r[i].lambda);
            snprintf(t[2], 48, "%d/%zu", r[i].diverged_runs, seeds);
            if (r[i].diverged_runs) snprintf(t[2] + strlen(t[2]), 24, " at step %llu",
                                             (unsigned long long)r[i].first_diverged_step);
            snprintf(t[3], 48, "%.2f%% (%.2f)", 100 * r[i].acc_mean, 100 * r[i].acc_sd);
            snprintf(t[4], 48, "%.2f%% - %.2f%%", 100 * r[i].acc_min, 100 * r[i].acc_max);
            snprintf(t[5], 48, "%.1f%%", 100 * r[i].clipped);
            snprintf(t[6], 48, "%.4g", r[i].max_dist);
            for (size_t k = 0; k < COLS; k++) cells[(i + 1) * COLS + k] = t[k];
        }
        clipnn_report_table(rep, n + 1, COLS, cells);
    }
    free(text);
    free(cells);
}

int cli_compare_report(const char *cmd, const char *dir, const char *setup, cli_compare_rule *rules, size_t n,
                       size_t seeds) {
    for (size_t i = 0; i < n; i++)
        if (rules[i].trace_failed) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report: norm traces");
    clipnn_report *rep;
    clipnn_status st = clipnn_report_create(&rep, "clipnn compare");
    if (st) return cli_fail(cmd, st, "--report");
    char (*notes)[48] = calloc(n ? n : 1, sizeof *notes);
    if (!notes) {
        clipnn_report_free(rep);
        return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report");
    }
    clipnn_report_text(rep, setup);
    rule_table(rep, rules, n, seeds);
    clipnn_report_heading(rep, "Accuracy");
    accuracy_bars(rep, rules, n, seeds, notes);
    clipnn_report_heading(rep, "Divergence");
    divergence_bars(rep, rules, n, notes);
    clipnn_report_heading(rep, "Gradient norms");
    norm_traces(rep, rules, n);
    st = clipnn_report_save(rep, dir);
    free(notes);
    clipnn_report_free(rep);
    return st ? cli_fail(cmd, st, "--report") : CLI_EXIT_OK;
}
