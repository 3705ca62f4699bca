/* The recurrent side files of `clipnn train --log FILE.csv`: the spectral
 * radius of W_hh's gate blocks (--log-radius-every) and the norm of
 * d loss / d h_t through time (--log-time-grad). */
#ifndef CLIPNN_CLI_REC_LOG_H
#define CLIPNN_CLI_REC_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "clipnn.h"

/* "run.csv" -> "run" + suffix; anything else gets the suffix appended
 * (malloc'd; NULL when out of memory). */
char *cli_log_side_path(const char *log, const char *suffix);

typedef struct {
    FILE *radius, *time;            /* FILE.radius.csv, FILE.time.csv (NULL: not asked) */
    char *radius_path, *time_path;
    uint64_t *steps;                /* the listed steps of --log-time-grad */
    size_t n_steps;
} cli_rec_log;

/* What the options ask (radius_every: 0 = none; time_grad: NULL = none, or
 * "every:N", or steps "S1,S2,..."): checks it (it needs a log and a model
 * with recurrent layers: else a usage error), opens the files beside log,
 * writes their headers and sets the telemetry fields of o. Returns the
 * exit code, the message printed. */
int cli_rec_log_open(cli_rec_log *l, const char *cmd, const char *log, const clipnn_model *m, uint64_t radius_every,
                     const char *time_grad, clipnn_train_options *o);
/* The rows of one step (nothing when the record carries none). */
void cli_rec_log_row(cli_rec_log *l, const clipnn_model *m, const clipnn_step_record *r);
/* Closes both files and frees; the exit code as cli_close_file. */
int cli_rec_log_close(cli_rec_log *l, const char *cmd);

#endif
