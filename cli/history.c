/* The per-epoch history: rows in memory for the JSON summary, and the CSV. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history.h"

/* The columns after "epoch", in file order, CSV and JSON alike: a new
 * field of cli_epoch_row needs one line here. */
#define EPOCH_FIELD(name) {#name, offsetof(cli_epoch_row, name)}
static const struct {
    const char *name;
    size_t offset;
} FIELDS[] = {EPOCH_FIELD(train_loss), EPOCH_FIELD(train_acc),    EPOCH_FIELD(test_loss), EPOCH_FIELD(test_acc),
              EPOCH_FIELD(clipped_frac), EPOCH_FIELD(seconds), EPOCH_FIELD(lr), EPOCH_FIELD(epsilon)};
enum { N_FIELDS = sizeof FIELDS / sizeof FIELDS[0] };

static double field(const cli_epoch_row *r, size_t i) {
    return *(const double *)((const char *)r + FIELDS[i].offset);
}

/* Said once; the rows that follow are kept in memory only. */
static void write_failed(cli_history *h, int err) {
    if (!h->failed) fprintf(stderr, "clipnn %s: %s: write failed: %s\n", h->cmd, h->csv_path, strerror(err));
    h->failed = 1;
}

int cli_history_open(cli_history *h, const char *cmd, const char *csv_path) {
    *h = (cli_history){.cmd = cmd, .csv_path = csv_path, .last_time = cli_now(), .last_lr = NAN};
    if (!csv_path) return CLI_EXIT_OK;
    clipnn_status st = clipnn_output_open_live(csv_path, &h->csv);
    if (st) return cli_fail(cmd, st, csv_path);
    fputs("epoch", h->csv);
    for (size_t i = 0; i < N_FIELDS; i++) fprintf(h->csv, ",%s", FIELDS[i].name);
    fputc('\n', h->csv);
    return CLI_EXIT_OK;
}

void cli_history_step(cli_history *h, const clipnn_step_record *r) { h->last_lr = r->lr; }

/* One CSV row: a value that does not exist (no test set, no accuracy for
 * regression, no loss when every step was skipped) is an empty field. */
static void csv_row(cli_history *h, const cli_epoch_row *row) {
    if (!h->csv || h->failed) return;
    errno = 0;
    fprintf(h->csv, "%zu", row->epoch);
    for (size_t i = 0; i < N_FIELDS; i++) {
        double v = field(row, i);
        if (isfinite(v)) fprintf(h->csv, ",%.9g", v);
        else fputc(',', h->csv);
    }
    fputc('\n', h->csv);
    if (fflush(h->csv) != 0 || ferror(h->csv)) write_failed(h, errno ? errno : EIO);
}

void cli_history_epoch(cli_history *h, const clipnn_epoch_record *r) {
    double now = cli_now();
    cli_epoch_row row = {.epoch = r->epoch, .train_loss = r->train_loss, .train_acc = r->train_accuracy,
                         .test_loss = r->test_loss, .test_acc = r->test_accuracy,
                         .clipped_frac = r->clipped_fraction, .seconds = now - h->last_time, .lr = h->last_lr,
                         .epsilon = r->epsilon};
    h->last_time = now;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        cli_epoch_row *grown = realloc(h->rows, cap * sizeof *grown);
        if (!grown) {
            if (!h->no_memory) fprintf(stderr, "clipnn %s: out of memory for the epoch history\n", h->cmd);
            h->no_memory = 1;
            return;
        }
        h->rows = grown, h->cap = cap;
    }
    h->rows[h->n++] = row;
    csv_row(h, &row);
}

void cli_history_json(const cli_history *h, cli_json *j) {
    cli_json_open(j, "epochs", '[');
    for (size_t r = 0; r < h->n; r++) {
        cli_json_open(j, NULL, '{');
        cli_json_u64(j, "epoch", h->rows[r].epoch);
        for (size_t i = 0; i < N_FIELDS; i++) cli_json_num(j, FIELDS[i].name, field(&h->rows[r], i));
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
}

int cli_history_close_csv(cli_history *h) {
    /* complete or absent: removed after a failed write */
    if (h->csv && clipnn_output_close(h->csv, h->failed ? NULL : "epoch history")) write_failed(h, EIO);
    h->csv = NULL;
    return h->failed ? CLI_EXIT_IO : h->no_memory ? CLI_EXIT_NOMEM : CLI_EXIT_OK;
}

void cli_history_free(cli_history *h) {
    if (h->csv) clipnn_output_close(h->csv, NULL);
    free(h->rows);
    *h = (cli_history){0};
}
