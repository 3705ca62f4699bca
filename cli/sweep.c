/* compare --sweep: the grid of thresholds and the frontier. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sweep.h"

int cli_sweep_parse(const char *cmd, const char *text, cli_sweep *out) {
    const char *p = strncmp(text, "lambda=", 7) == 0 ? text + 7 : NULL;
    char *end = NULL;
    if (p) {
        out->lo = strtod(p, &end);
        if (end != p && *end == ':') out->hi = strtod(p = end + 1, &end);
        else p = NULL;
    }
    if (p && end != p && *end == ':') {
        char *stop;
        unsigned long long n = strtoull(end + 1, &stop, 10);
        out->n = (size_t)n;
        if (stop == end + 1 || *stop || n == 0 || n > 64) p = NULL;
    } else {
        p = NULL;
    }
    if (!p || !(out->lo > 0 && out->lo <= out->hi && isfinite(out->hi)) || (out->n == 1 && out->lo != out->hi))
        return cli_usage_error(cmd, "--sweep '%s': want lambda=A:B:N with 0 < A <= B and 1 <= N <= 64 "
                                    "(N = 1 needs A = B)", text);
    return CLI_EXIT_OK;
}

double cli_sweep_value(const cli_sweep *s, size_t k) {
    if (s->n == 1 || k == 0) return s->lo;
    if (k == s->n - 1) return s->hi;
    return s->lo * pow(s->hi / s->lo, (double)k / (double)(s->n - 1));
}

/* The rows of rule name, in order, into idx; returns their count. */
static size_t rows_of(const cli_sweep_row *rows, size_t n_rows, const char *name, size_t *idx) {
    size_t k = 0;
    for (size_t i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].rule, name) && !isnan(rows[i].lambda)) idx[k++] = i;
    return k;
}

/* Is rows[i] the first swept row of its rule? */
static int first_of_rule(const cli_sweep_row *rows, size_t i) {
    if (isnan(rows[i].lambda)) return 0;
    for (size_t j = 0; j < i; j++)
        if (!strcmp(rows[j].rule, rows[i].rule) && !isnan(rows[j].lambda)) return 0;
    return 1;
}

static void print_best(const cli_sweep_row *rows, const size_t *idx, size_t k) {
    const cli_sweep_row *best = NULL;
    for (size_t j = 0; j < k; j++) {
        const cli_sweep_row *w = &rows[idx[j]];
        if (!w->diverged && (!best || w->accuracy > best->accuracy)) best = w;
    }
    const cli_sweep_row *r0 = &rows[idx[0]];
    if (!best) printf("  %-12s every threshold diverged\n", r0->rule);
    else printf("  %-12s best lambda %-10.4g test acc %6.2f%%  clipped %5.1f%%\n", r0->rule, best->lambda,
                100 * best->accuracy, 100 * best->clipped);
}

int cli_sweep_frontier(const char *cmd, const char *svg_path, const cli_sweep_row *rows, size_t n_rows, int print) {
    size_t *idx = malloc(n_rows * sizeof *idx);
    double *x = malloc(3 * n_rows * sizeof *x);
    clipnn_svg_series *ser = malloc(2 * n_rows * sizeof *ser);
    char(*names)[64] = malloc(2 * n_rows * sizeof *names);
    if (!idx || !x || !ser || !names) {
        free(idx), free(x), free(ser), free(names);
        return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--sweep");
    }
    double *acc = x + n_rows, *clip = x + 2 * n_rows;
    size_t n_ser = 0, used = 0;
    if (print) printf("frontier (best threshold: highest mean test accuracy without a diverged run):\n");
    for (size_t i = 0; i < n_rows; i++) {
        if (!first_of_rule(rows, i)) continue;
        size_t k = rows_of(rows, n_rows, rows[i].rule, idx), at = used;
        used += k;
        if (print) print_best(rows, idx, k);
        for (size_t j = 0; j < k; j++) {
            x[at + j] = rows[idx[j]].lambda;
            acc[at + j] = rows[idx[j]].diverged ? NAN : rows[idx[j]].accuracy;
            clip[at + j] = rows[idx[j]].clipped;
        }
        int colour = (int)(n_ser / 2);
        snprintf(names[n_ser], sizeof names[0], "%s test accuracy", rows[i].rule);
        ser[n_ser] = (clipnn_svg_series){names[n_ser], x + at, acc + at, k, colour, 0};
        n_ser++;
        snprintf(names[n_ser], sizeof names[0], "%s clipped fraction", rows[i].rule);
        ser[n_ser] = (clipnn_svg_series){names[n_ser], x + at, clip + at, k, colour, 1};
        n_ser++;
    }
    int rc = CLI_EXIT_OK;
    if (svg_path) {
        clipnn_svg_axes ax = {"threshold sweep (diverged thresholds left out)", "lambda", "fraction", 1, 0};
        clipnn_status st = clipnn_svg_line_plot(svg_path, &ax, ser, n_ser);
        rc = st ? cli_fail(cmd, st, "--out") : CLI_EXIT_OK;
    }
    free(idx), free(x), free(ser), free(names);
    return rc;
}
