/* clipnn train --resume: the options of the saved run. A checkpoint
 * written by train --save records the options that define the run's
 * trajectory (train.* entries of its data record); a resumed run takes
 * them, refuses a given one that differs (unless --force, then a warning),
 * and lets the options a user changes on resume (--epochs, --steps, the
 * logs, --threads, --save) be given anew. */
#ifndef CLIPNN_CLI_RESUME_OPTS_H
#define CLIPNN_CLI_RESUME_OPTS_H

#include "options.h"

/* The saved run's options (saved: its record, NULL or without train.*
 * entries: nothing to do) against the command line: the ones not given
 * are taken from the record (strings point into it: keep it while s is
 * used), a given trajectory option that differs is one line naming it
 * with both values and CLI_EXIT_USAGE (with s->force: a warning on
 * stderr, the given value kept). state: the saved training state (its
 * lambda chosen by --lambda auto). */
int cli_resume_options(const char *cmd, const char *path, const clipnn_data_info *saved,
                       const clipnn_train_state *state, cli_settings *s, int argc, char **argv);

/* The trajectory options of s and o as train.* entries of info; nonzero
 * when one could not be stored. */
int cli_record_trajectory(clipnn_data_info *info, const cli_settings *s, const clipnn_train_options *o);

/* v as text that reads back as the same double (%.15g, else %.17g). */
void cli_num_text(double v, char *buf, size_t cap);

#endif
