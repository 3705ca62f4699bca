/* The figures of a training run for its report: gathered while training, or
 * read back from the CSV files of --log, --log-groups and --log-epochs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_report.h"

static const char *const STEP_NAMES[RL_STEP_COLS] = {"step",      "lr", "loss",  "pre_norm", "post_norm",
                                                     "c", "clipped", "dist_from_start", "sum_lr", "det_bound"};
static const char *const EPOCH_NAMES[RL_EPOCH_COLS] = {"epoch",    "train_loss",   "train_acc", "test_loss",
                                                       "test_acc", "clipped_frac", "seconds",   "lr"};
enum { G_STEP, G_GROUP, G_LAYER, G_TENSOR, G_PRE, G_COLS };
static const char *const GROUP_NAMES[G_COLS] = {"step", "group", "layer", "tensor", "pre_norm"};
#define MAX_GROUPS 4096

void cli_runlog_init(cli_runlog *l) {
    memset(l, 0, sizeof *l);
    l->steps.width = RL_STEP_COLS;
    l->epochs.width = RL_EPOCH_COLS;
    l->threshold = NAN;
}

void cli_runlog_free(cli_runlog *l) {
    free(l->steps.v);
    free(l->epochs.v);
    free(l->groups.v);
    for (size_t g = 0; l->group_names && g < l->n_groups; g++) free(l->group_names[g]);
    free(l->group_names);
    cli_runlog_init(l);
}

/* Room for one more row; NULL when memory runs out. */
static double *table_row(cli_table *t) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        if (cap > SIZE_MAX / sizeof *t->v / t->width) return NULL;
        double *v = realloc(t->v, cap * t->width * sizeof *v);
        if (!v) return NULL;
        t->v = v;
        t->cap = cap;
    }
    return t->v + t->n++ * t->width;
}

static int set_group_names(cli_runlog *l, size_t n) {
    l->group_names = calloc(n ? n : 1, sizeof *l->group_names);
    if (!l->group_names) return CLI_EXIT_NOMEM;
    l->n_groups = n;
    l->groups.width = 1 + n;
    return CLI_EXIT_OK;
}

int cli_runlog_groups(cli_runlog *l, const clipnn_model *m) {
    if (set_group_names(l, clipnn_model_n_groups(m))) return CLI_EXIT_NOMEM;
    for (size_t g = 0; g < l->n_groups; g++) {
        char name[64];
        cli_group_name(m, g, name, sizeof name, NULL);
        if (!(l->group_names[g] = strdup(name))) return CLI_EXIT_NOMEM;
    }
    return CLI_EXIT_OK;
}

int cli_runlog_step(cli_runlog *l, const clipnn_step_record *r) {
    double *row = table_row(&l->steps);
    if (!row) return CLI_EXIT_NOMEM;
    const double v[RL_STEP_COLS] = {(double)r->step, r->lr, r->loss, r->clip.pre_norm, r->clip.post_norm,
                                    r->clip.factor, r->clip.clipped, r->dist_from_start, r->sum_lr, r->det_bound};
    memcpy(row, v, sizeof v);
    if (!r->group_norms || !l->n_groups) return CLI_EXIT_OK;
    if (!(row = table_row(&l->groups))) return CLI_EXIT_NOMEM;
    row[0] = (double)r->step;
    memcpy(row + 1, r->group_norms, l->n_groups * sizeof *row);
    return CLI_EXIT_OK;
}

int cli_runlog_epochs(cli_runlog *l, const cli_history *h) {
    l->epochs.n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const cli_epoch_row *e = &h->rows[i];
        double *row = table_row(&l->epochs);
        if (!row) return CLI_EXIT_NOMEM;
        const double v[RL_EPOCH_COLS] = {(double)e->epoch, e->train_loss,   e->train_acc, e->test_loss,
                                         e->test_acc,      e->clipped_frac, e->seconds,   e->lr};
        memcpy(row, v, sizeof v);
    }
    return CLI_EXIT_OK;
}

/* --------------------------------------------------------------- CSV */

typedef struct {
    const char *cmd, *path;
    FILE *f;
    char *line;
    size_t cap, line_no, n_fields;
    char *fields[64];
} csv_file;

/* The next line split at commas; 0 at the end of the file. */
static int csv_next(csv_file *c) {
    ssize_t len = getline(&c->line, &c->cap, c->f);
    if (len < 0) return 0;
    c->line_no++;
    while (len > 0 && (c->line[len - 1] == '\n' || c->line[len - 1] == '\r')) c->line[--len] = 0;
    c->n_fields = 0;
    for (char *p = c->line;;) {
        if (c->n_fields < sizeof c->fields / sizeof *c->fields) c->fields[c->n_fields] = p;
        c->n_fields++;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return 1;
}

/* The message on stderr, and noted for the --json error object. */
static int said(int rc, const char *line) {
    fprintf(stderr, "%s\n", line);
    cli_note_error(line);
    return rc;
}

static int csv_error(const csv_file *c, const char *what) {
    char line[1024];
    snprintf(line, sizeof line, "clipnn %s: %s:%zu: %s", c->cmd, c->path, c->line_no, what);
    return said(CLI_EXIT_INPUT, line);
}

/* Opens the file and maps the header: where[k] is the field of names[k]
 * (-1: absent); the first `required` names must be there. */
static int csv_open(csv_file *c, const char *const *names, size_t n, size_t required, int *where) {
    if (!(c->f = fopen(c->path, "r"))) {
        char line[1024];
        snprintf(line, sizeof line, "clipnn %s: %s: cannot read: %s", c->cmd, c->path, strerror(errno));
        return said(CLI_EXIT_IO, line);
    }
    if (!csv_next(c)) return csv_error(c, "empty file, want a header line");
    for (size_t k = 0; k < n; k++) {
        where[k] = -1;
        for (size_t i = 0; i < c->n_fields && i < 64; i++)
            if (!strcmp(c->fields[i], names[k])) where[k] = (int)i;
        if (k < required && where[k] < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "no column '%s' in the header (not the CSV this option reads)", names[k]);
            return csv_error(c, msg);
        }
    }
    return CLI_EXIT_OK;
}

static void csv_close(csv_file *c) {
    if (c->f) fclose(c->f);
    free(c->line);
}

/* The mapped fields of the current line as numbers (nan and inf as such;
 * an empty field, a value that does not exist, as NaN). */
static int csv_numbers(csv_file *c, const int *where, size_t n, size_t header_fields, double *out) {
    if (c->n_fields != header_fields) return csv_error(c, "wrong number of fields");
    for (size_t k = 0; k < n; k++) {
        if (where[k] < 0) {
            out[k] = NAN;
            continue;
        }
        char *end;
        const char *s = c->fields[where[k]];
        if (!*s) {
            out[k] = NAN;
            continue;
        }
        out[k] = strtod(s, &end);
        if (end == s || *end) return csv_error(c, "a field is not a number");
    }
    return CLI_EXIT_OK;
}

/* Every row of a CSV of numbers into t (t->width = n columns). */
static int read_numbers(cli_table *t, const char *cmd, const char *path, const char *const *names, size_t n,
                        size_t required) {
    csv_file c = {.cmd = cmd, .path = path};
    int where[RL_MAX_COLS];
    int rc = csv_open(&c, names, n, required, where);
    size_t header_fields = c.n_fields;
    while (!rc && csv_next(&c)) {
        double *row = table_row(t);
        rc = row ? csv_numbers(&c, where, n, header_fields, row) : CLI_EXIT_NOMEM;
    }
    if (!rc && ferror(c.f)) rc = csv_error(&c, "read error");
    csv_close(&c);
    return rc;
}

int cli_runlog_read_steps(cli_runlog *l, const char *cmd, const char *path) {
    return read_numbers(&l->steps, cmd, path, STEP_NAMES, RL_STEP_COLS, RL_PRE + 1);
}

int cli_runlog_read_epochs(cli_runlog *l, const char *cmd, const char *path) {
    return read_numbers(&l->epochs, cmd, path, EPOCH_NAMES, RL_EPOCH_COLS, 1);
}

/* --log-groups: one row per step per group, the rows of a step together. */
typedef struct {
    cli_table raw; /* step, group, pre_norm */
    char **names;  /* [n] "layer L TENSOR" */
    size_t n;
} group_rows;

static int group_row(csv_file *c, const int *where, group_rows *g) {
    char *end;
    double v[3] = {strtod(c->fields[where[G_STEP]], &end), 0, 0};
    int bad = *end != 0;
    unsigned long group = strtoul(c->fields[where[G_GROUP]], &end, 10);
    bad |= *end != 0 || group >= MAX_GROUPS;
    v[1] = (double)group;
    v[2] = strtod(c->fields[where[G_PRE]], &end);
    if (bad || *end) return csv_error(c, "step, group (< 4096) or pre_norm is not a number");
    if (group >= g->n) {
        char **names = realloc(g->names, (group + 1) * sizeof *names);
        if (!names) return CLI_EXIT_NOMEM;
        memset(names + g->n, 0, (group + 1 - g->n) * sizeof *names);
        g->names = names;
        g->n = group + 1;
    }
    if (!g->names[group]) {
        char name[96];
        snprintf(name, sizeof name, "layer %.20s %.40s", c->fields[where[G_LAYER]], c->fields[where[G_TENSOR]]);
        if (!(g->names[group] = strdup(name))) return CLI_EXIT_NOMEM;
    }
    double *row = table_row(&g->raw);
    if (!row) return CLI_EXIT_NOMEM;
    memcpy(row, v, sizeof v);
    return CLI_EXIT_OK;
}

/* The rows gathered into one row per step (NaN for a group a step lacks). */
static int group_table(cli_runlog *l, group_rows *g) {
    if (set_group_names(l, g->n)) return CLI_EXIT_NOMEM;
    for (size_t k = 0; k < g->n; k++) l->group_names[k] = g->names[k] ? g->names[k] : strdup("?");
    free(g->names);
    g->names = NULL;
    double *row = NULL;
    for (size_t i = 0; i < g->raw.n; i++) {
        const double *r = g->raw.v + 3 * i;
        if (!row || row[0] != r[0]) {
            if (!(row = table_row(&l->groups))) return CLI_EXIT_NOMEM;
            row[0] = r[0];
            for (size_t k = 0; k < l->n_groups; k++) row[1 + k] = NAN;
        }
        row[1 + (size_t)r[1]] = r[2];
    }
    return CLI_EXIT_OK;
}

int cli_runlog_read_groups(cli_runlog *l, const char *cmd, const char *path) {
    csv_file c = {.cmd = cmd, .path = path};
    group_rows g = {.raw = {.width = 3}};
    int where[G_COLS];
    int rc = csv_open(&c, GROUP_NAMES, G_COLS, G_COLS, where);
    size_t header_fields = c.n_fields;
    while (!rc && csv_next(&c))
        rc = c.n_fields != header_fields ? csv_error(&c, "wrong number of fields") : group_row(&c, where, &g);
    if (!rc) rc = group_table(l, &g);
    for (size_t k = 0; g.names && k < g.n; k++) free(g.names[k]);
    free(g.names);
    free(g.raw.v);
    csv_close(&c);
    return rc;
}
