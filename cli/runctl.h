/* What a training run of the tool shows and keeps as it goes: the progress
 * (bar or lines), the per-epoch history, periodic checkpoints (--save-every)
 * and a stop on SIGINT or SIGTERM; the callbacks of clipnn_train_options
 * that the commands forward to it. */
#ifndef CLIPNN_CLI_RUNCTL_H
#define CLIPNN_CLI_RUNCTL_H

#include <stdint.h>

#include "history.h"
#include "progress.h"

/* --save-every N (steps) or Ne (epochs). */
typedef struct {
    uint64_t every; /* 0: never */
    int epochs;     /* every counts epochs */
} cli_save_every;

/* "500" or "2e" into *out; otherwise a usage error naming cmd. */
int cli_save_every_parse(const char *cmd, const char *text, cli_save_every *out);

typedef struct {
    const char *cmd;
    cli_progress progress;
    cli_history history;
    cli_save_every save_every;
    const char *save_path; /* where the periodic checkpoints go */
    int save_pending;      /* a periodic checkpoint is due after this step */
    int last_step;         /* the step just taken is the run's last (saved at the end anyway) */
    int save_failed;       /* the exit code of a periodic save that failed, else 0 */
    const clipnn_data_info *info; /* the data record the periodic checkpoints carry (may be NULL) */
} cli_runctl;

/* Progress in mode for rows_per_epoch training rows; the history with its
 * CSV at epochs_csv (may be NULL). On failure prints the message and
 * returns the exit code. */
int cli_runctl_open(cli_runctl *c, const char *cmd, cli_progress_mode mode, size_t rows_per_epoch,
                    const char *epochs_csv, cli_save_every save_every, const char *save_path);
void cli_runctl_step(cli_runctl *c, const clipnn_step_record *r);
void cli_runctl_epoch(cli_runctl *c, const clipnn_epoch_record *r);
/* The answer to clipnn_train's control: a stop once a signal asked for it,
 * a save when one is due. */
int cli_runctl_control(cli_runctl *c);
/* A periodic checkpoint of the run to save_path (atomic: a failure leaves
 * the previous one); a failure is said and remembered, the run goes on. */
void cli_runctl_save(cli_runctl *c, const clipnn_model *m, const clipnn_train_state *s);
/* The bar erased; the history's CSV closed (its exit code: 0, or the
 * failure, already said). The rows stay readable until cli_runctl_free. */
int cli_runctl_close_logs(cli_runctl *c);
void cli_runctl_free(cli_runctl *c);

#endif
