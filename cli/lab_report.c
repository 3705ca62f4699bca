/* clipnn lab --out DIR: DIR/index.html over the experiments that ran, each
 * with its verdicts and its figures. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lab_report.h"

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Does file name `f` belong to experiment i: "<name>-<figure>.svg", with no
 * longer experiment name matching it too? */
static int figure_of(const char *f, size_t i) {
    const char *name = clipnn_lab_name(i);
    size_t len = strlen(name), flen = strlen(f);
    if (strncmp(f, name, len) || f[len] != '-' || flen < 5 || strcmp(f + flen - 4, ".svg")) return 0;
    for (size_t j = 0; j < clipnn_lab_count(); j++) {
        const char *other = clipnn_lab_name(j);
        size_t olen = strlen(other);
        if (olen > len && !strncmp(f, other, olen) && f[olen] == '-') return 0;
    }
    return 1;
}

/* The SVG files of experiment i in dir, sorted; *n of them (free each and the list). */
static char **figures(const char *dir, size_t i, size_t *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **list = NULL;
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!figure_of(e->d_name, i)) continue;
        if (*n == cap) {
            char **grown = realloc(list, (cap = cap ? 2 * cap : 8) * sizeof *list);
            if (!grown) break;
            list = grown;
        }
        if (!(list[*n] = strdup(e->d_name))) break;
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(list, *n, sizeof *list, by_name);
    return list;
}

static void verdict_table(clipnn_report *rep, const clipnn_lab_result *r) {
    const char *cells[4 * (CLIPNN_LAB_MAX_CLAIMS + 1)] = {"claim", "verdict", "condition", "deciding numbers"};
    for (size_t k = 0; k < r->n_claims; k++) {
        const clipnn_lab_claim *c = &r->claims[k];
        cells[4 * (k + 1)] = c->id;
        cells[4 * (k + 1) + 1] = clipnn_claim_verdict_name(c->verdict);
        cells[4 * (k + 1) + 2] = c->condition[0] ? c->condition : "-";
        cells[4 * (k + 1) + 3] = c->numbers;
    }
    clipnn_report_table(rep, r->n_claims + 1, 4, cells);
}

static void experiment(clipnn_report *rep, const char *dir, size_t i, const clipnn_lab_result *r) {
    char line[256];
    clipnn_report_heading(rep, clipnn_lab_name(i));
    snprintf(line, sizeof line, "%s (%.1f s)", clipnn_lab_summary(i), r->seconds);
    clipnn_report_text(rep, line);
    verdict_table(rep, r);
    size_t n;
    char **files = figures(dir, i, &n);
    for (size_t k = 0; k < n; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        clipnn_report_svg_file(rep, path);
        free(files[k]);
    }
    free(files);
}

int cli_lab_index(const char *cmd, const char *dir, const clipnn_lab_result *res) {
    clipnn_report *rep;
    clipnn_status st = clipnn_report_create(&rep, "clipnn lab");
    if (st) return cli_fail(cmd, st, "--out index.html");
    clipnn_report_text(rep, "Each experiment: its claims with the verdict and the numbers that decide it, "
                            "then its figures (the same SVG files, with their CSV traces, are in this directory).");
    for (size_t i = 0; i < clipnn_lab_count(); i++)
        if (res[i].n_claims) experiment(rep, dir, i, &res[i]);
    st = clipnn_report_save(rep, dir);
    clipnn_report_free(rep);
    return st ? cli_fail(cmd, st, "--out index.html") : CLI_EXIT_OK;
}
