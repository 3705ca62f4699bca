/* The record of a model's data (clipnn_data_info) on the command line:
 * train writes it into the checkpoint with its options and final figures;
 * eval, attack, optimize-input and diagnose load a model with it and apply
 * it unless told otherwise (--force). */
#ifndef CLIPNN_CLI_RECORDED_H
#define CLIPNN_CLI_RECORDED_H

#include "options.h"

/* Loads the model at path with its record. When it has one, the data
 * options not given on the command line are taken from it (and one line on
 * stderr says so when the data are loaded); a given --data, --scale, --test-fraction or --data-seed
 * that differs from it is refused (CLI_EXIT_USAGE) unless s->force.
 * cli_load_data then scales with the recorded statistics whenever its
 * settings are the recorded ones. */
int cli_load_model_recorded(const char *cmd, const char *path, cli_settings *s, int argc, char **argv,
                            clipnn_model **m);

/* The same with info, the record of the checkpoint at path, already read:
 * kept (freed by cli_recorded_free) and applied to s. */
int cli_recorded_use(const char *cmd, const char *path, clipnn_data_info *info, cli_settings *s, int argc,
                     char **argv);

/* The record of the model loaded last (NULL: none), and its release. */
const clipnn_data_info *cli_recorded(void);
void cli_recorded_free(void);

/* Prints, once, the line saying that the record's data are used. */
void cli_recorded_announce(void);

/* 1 when the data settings of s are those of the record (so its statistics apply). */
int cli_recorded_matches(const cli_settings *s);

/* The training run's options (those that define its trajectory, as
 * resolved: the loss, the noise) as train.* entries of info: before the
 * run, so that its periodic checkpoints carry them too. */
int cli_record_options(const char *cmd, clipnn_data_info *info, const cli_settings *s, const char *arch,
                       const clipnn_train_options *o);
/* The same, and the final figures as result.* entries. */
int cli_record_run(const char *cmd, clipnn_data_info *info, const cli_settings *s, const char *arch,
                   const clipnn_train_options *o, const clipnn_train_result *r);

#endif
