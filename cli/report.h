/* Output of the training subcommands: a JSON object writer (non-finite
 * numbers become null), the per-step CSV log, a training run as reported,
 * the per-epoch progress line. */
#ifndef CLIPNN_CLI_REPORT_H
#define CLIPNN_CLI_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "clipnn.h"

/* ---------------------------------------------------------------- JSON */

#define CLI_JSON_DEPTH 8

/* Writes one JSON value on one line. Keys are given to every member of an
 * object and are NULL for array elements. */
typedef struct {
    FILE *f;
    int depth;
    int count[CLI_JSON_DEPTH]; /* members written at each level */
} cli_json;

void cli_json_begin(cli_json *j, FILE *f); /* opens the top-level object */
void cli_json_end(cli_json *j);            /* closes it and ends the line */
void cli_json_open(cli_json *j, const char *key, char bracket); /* '{' or '[' */
void cli_json_close(cli_json *j, char bracket);                 /* '}' or ']' */
void cli_json_str(cli_json *j, const char *key, const char *value); /* NULL -> null */
void cli_json_num(cli_json *j, const char *key, double value);      /* non-finite -> null */
void cli_json_u64(cli_json *j, const char *key, uint64_t value);
void cli_json_bool(cli_json *j, const char *key, int value);
void cli_json_null(cli_json *j, const char *key);

/* ------------------------------------------------------------ step log */

/* Writes the per-step CSV (one row per step) and, when groups are asked,
 * a second CSV with one row per step per parameter group. */
typedef struct {
    FILE *f, *groups;
    const char *path, *groups_path;
    const clipnn_model *model; /* its groups name the rows */
    int write_error;
} cli_steplog;

/* Opens path (and groups_path when not NULL) and writes the headers. On
 * failure prints "clipnn CMD: ..." and returns the exit code. */
int cli_steplog_open(cli_steplog *l, const char *cmd, const char *path, const char *groups_path,
                     const clipnn_model *m);
void cli_steplog_row(cli_steplog *l, const clipnn_step_record *r);
/* Flushes and closes; returns the exit code (CLI_EXIT_IO when a write
 * failed, with the message printed). */
int cli_steplog_close(cli_steplog *l, const char *cmd);
/* Closes a log of clipnn_output_open_live (NULL: nothing); after a failed
 * write or close it is removed and CLI_EXIT_IO returned with "clipnn CMD:
 * PATH: log not saved (...)" printed. */
int cli_close_file(FILE *f, const char *cmd, const char *path);

/* ------------------------------------------------------------ training */

/* clipnn_train, with a run that diverged under the error policy as a
 * result rather than a failure: its figures then describe the model as it
 * ended (training loss NaN, test figures of the final parameters). */
clipnn_status cli_train(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                        const clipnn_train_options *o, clipnn_train_result *r);

/* The model's layer widths joined by '-' ("64-10"); with_inputs puts the
 * input width first ("64-64-10"). */
void cli_model_arch(const clipnn_model *m, int with_inputs, char *buf, size_t cap);

/* ------------------------------------------------------------ progress */

/* One line per epoch on stderr: epoch, losses, accuracy, clip rate, speed. */
void cli_progress_epoch(const char *cmd, const char *label, const clipnn_epoch_record *r);

#endif
