/* The HTML page of clipnn compare --report: the rules side by side. */
#ifndef CLIPNN_CLI_COMPARE_REPORT_H
#define CLIPNN_CLI_COMPARE_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* One rule's figures over the seeds, and the pre-clip gradient norm per
 * step of its first seed's run. */
typedef struct {
    const char *label;
    double lambda;
    int diverged_runs;
    uint64_t first_diverged_step;
    double acc_mean, acc_sd, acc_min, acc_max, clipped, max_dist;
    double *norm_x, *norm_y; /* [norm_n] */
    size_t norm_n, norm_cap;
    int trace_failed;        /* out of memory while tracing */
} cli_compare_rule;

/* Appends (step, norm) to the rule's trace. */
void cli_compare_trace(cli_compare_rule *r, double step, double norm);
void cli_compare_rule_free(cli_compare_rule *r);

/* Writes DIR/index.html; `setup` describes the runs in one line. Prints the
 * failure and returns its exit code. */
int cli_compare_report(const char *cmd, const char *dir, const char *setup, cli_compare_rule *rules, size_t n,
                       size_t seeds);

#endif
