/* compare --sweep: a log grid of thresholds for every chosen rule, and the
 * frontier of the results (cli/sweep.c). */
#ifndef CLIPNN_CLI_SWEEP_H
#define CLIPNN_CLI_SWEEP_H

#include <stddef.h>

typedef struct {
    double lo, hi;
    size_t n;
} cli_sweep;

/* "lambda=A:B:N", 0 < A <= B, N >= 1 (N = 1 needs A = B); a usage error
 * otherwise. */
int cli_sweep_parse(const char *cmd, const char *text, cli_sweep *out);
/* The k-th of the N thresholds, A (B / A)^(k / (N - 1)). */
double cli_sweep_value(const cli_sweep *s, size_t k);

/* One row of a swept comparison: rule name, threshold (NaN: not swept),
 * mean test accuracy, runs that diverged of runs, mean clipped fraction. */
typedef struct {
    const char *rule;
    double lambda, accuracy, clipped;
    int diverged, runs;
} cli_sweep_row;

/* Prints (when print is set) each rule's best threshold (the highest mean accuracy among the
 * thresholds where no run diverged) and, when svg_path is set, writes the
 * frontier there: accuracy (solid) and clipped fraction (dashed) against
 * the threshold, one colour per rule. */
int cli_sweep_frontier(const char *cmd, const char *svg_path, const cli_sweep_row *rows, size_t n_rows, int print);

#endif
