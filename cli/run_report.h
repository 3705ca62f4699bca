/* A training run as its HTML report shows it: the per-step and per-epoch
 * figures and the per-group norms, gathered while training or read back from
 * the CSV files that --log, --log-groups and --log-epochs write; and the
 * report itself. */
#ifndef CLIPNN_CLI_RUN_REPORT_H
#define CLIPNN_CLI_RUN_REPORT_H

#include <stddef.h>

#include "clipnn.h"
#include "history.h"
#include "options.h"

/* Per-step columns, as in the --log CSV. */
enum { RL_STEP, RL_LR, RL_LOSS, RL_PRE, RL_POST, RL_C, RL_CLIPPED, RL_DIST, RL_SUM_LR, RL_DET_BOUND, RL_STEP_COLS };
/* Per-epoch columns, as in the --log-epochs CSV. */
enum { RL_EPOCH, RL_TRAIN_LOSS, RL_TRAIN_ACC, RL_TEST_LOSS, RL_TEST_ACC, RL_CLIPPED_FRAC, RL_SECONDS, RL_EPOCH_LR,
       RL_EPOCH_COLS };
/* The wider of the two. */
#define RL_MAX_COLS ((int)RL_STEP_COLS > (int)RL_EPOCH_COLS ? (int)RL_STEP_COLS : (int)RL_EPOCH_COLS)

typedef struct {
    double *v; /* [n * width] row-major */
    size_t n, cap, width;
} cli_table;

typedef struct {
    cli_table steps;  /* RL_STEP_COLS wide */
    cli_table epochs; /* RL_EPOCH_COLS wide */
    cli_table groups; /* n_groups wide: each step's pre-clip norm of every group */
    size_t n_groups;
    char **group_names; /* [n_groups] */
    double threshold;   /* the rule's threshold as the run used it (NaN: none) */
    int threshold_known; /* set while training; a log read back derives it */
} cli_runlog;

void cli_runlog_init(cli_runlog *l);
void cli_runlog_free(cli_runlog *l);

/* While training: groups are named after the model's (as in --log-groups).
 * Return CLI_EXIT_NOMEM when the log cannot grow. */
int cli_runlog_groups(cli_runlog *l, const clipnn_model *m);
int cli_runlog_step(cli_runlog *l, const clipnn_step_record *r);
/* The per-epoch rows of the run's history (the rows --log-epochs writes). */
int cli_runlog_epochs(cli_runlog *l, const cli_history *h);

/* From files: the step log of --log, the epochs of --log-epochs, the groups
 * of --log-groups. On failure prints "clipnn CMD: ..." and returns the exit
 * code (CLI_EXIT_INPUT for a malformed file, CLI_EXIT_IO when unreadable). */
int cli_runlog_read_steps(cli_runlog *l, const char *cmd, const char *path);
int cli_runlog_read_epochs(cli_runlog *l, const char *cmd, const char *path);
int cli_runlog_read_groups(cli_runlog *l, const char *cmd, const char *path);

/* Writes DIR/index.html: the charts of the run, then the table of its
 * options and final figures (names[i], values[i]). Prints the failure and
 * returns its exit code. */
int cli_runlog_report(const cli_runlog *l, const char *cmd, const char *title, const char *const *names,
                      const char *const *values, size_t n_info, const char *dir);

/* clipnn train --report: the log set up for the model and options (per-group
 * norms when the options log them), then the page of the run. */
typedef struct {
    const cli_settings *s;
    const char *arch;
    const clipnn_dataset *train, *test;
    const clipnn_train_options *o;
    const clipnn_train_result *r;
    size_t n_params;
    const cli_history *history; /* the epochs */
} cli_train_info;
int cli_train_runlog(cli_runlog *l, const clipnn_model *m, const clipnn_train_options *o);
int cli_train_report(const char *cmd, const char *dir, cli_runlog *l, const cli_train_info *info);

/* The name of parameter group g as --log-groups writes it: "layer L W" or
 * a recurrent layer's "layer L W_hh"; tensor receives the tensor alone. */
void cli_group_name(const clipnn_model *m, size_t g, char *buf, size_t cap, const char **tensor);

#endif
