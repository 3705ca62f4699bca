/* The per-epoch history of a training run: kept for the --json summary
 * ("epochs") and written as it grows to --log-epochs FILE.csv. */
#ifndef CLIPNN_CLI_HISTORY_H
#define CLIPNN_CLI_HISTORY_H

#include <stddef.h>
#include <stdio.h>

#include "clipnn.h"
#include "report.h"

/* One epoch. A field added here goes into the CSV and the JSON alike
 * through the one list of columns in history.c. */
typedef struct {
    size_t epoch;
    double train_loss, train_acc, test_loss, test_acc, clipped_frac, seconds, lr;
    double epsilon; /* a private run's epsilon so far, else NaN (an empty CSV field, null in JSON) */
} cli_epoch_row;

typedef struct {
    cli_epoch_row *rows;
    size_t n, cap;
    const char *cmd;
    FILE *csv;            /* --log-epochs, or NULL */
    const char *csv_path;
    int failed;           /* a row could not be written (said once) */
    int no_memory;        /* a row could not be kept (said once) */
    double last_time;     /* when the previous epoch ended (or the run started) */
    double last_lr;       /* the step size of the last step seen */
} cli_history;

/* Starts the history; with csv_path (may be NULL) opens the CSV and writes
 * its header. On failure prints "clipnn CMD: ..." and returns the exit code. */
int cli_history_open(cli_history *h, const char *cmd, const char *csv_path);
/* After every step: remembers its step size. */
void cli_history_step(cli_history *h, const clipnn_step_record *r);
/* At the end of an epoch: its row, kept and written (and flushed: the file
 * holds whole rows whenever the run ends). */
void cli_history_epoch(cli_history *h, const clipnn_epoch_record *r);
/* "epochs": [{...}, ...] into an open JSON object. */
void cli_history_json(const cli_history *h, cli_json *j);
/* Closes the CSV (the rows stay); returns CLI_EXIT_IO when a row could not
 * be written, CLI_EXIT_NOMEM when one could not be kept (each said on
 * stderr when it happened). */
int cli_history_close_csv(cli_history *h);
/* Frees the rows (and closes the CSV if still open). */
void cli_history_free(cli_history *h);

#endif
