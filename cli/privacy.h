/* clipnn train's privacy: the noise for --target-epsilon, the epsilon of
 * every epoch, and the guarantee as the summary states it. */
#ifndef CLIPNN_CLI_PRIVACY_H
#define CLIPNN_CLI_PRIVACY_H

#include "report.h"

/* --target-epsilon E: the options' noise multiplier for the planned steps
 * over n examples; one line and the exit code when no noise reaches E. */
int cli_privacy_target(const char *cmd, double target, size_t n, clipnn_train_options *o);
/* One stderr line per epoch of a private run: epsilon at delta so far. */
void cli_privacy_epoch(const char *cmd, const clipnn_epoch_record *r);
/* The summary's privacy lines (text) or members (JSON) of a private run:
 * (epsilon, delta), the noise, the sampling and what the guarantee rests on. */
void cli_privacy_text(const clipnn_train_options *o, const clipnn_train_result *r);
void cli_privacy_json(cli_json *j, const clipnn_train_options *o, const clipnn_train_result *r);
/* clipnn info: what a checkpoint's accountant says (nothing for a run that
 * was not private). */
void cli_privacy_info_text(const clipnn_train_state *st);
void cli_privacy_info_json(cli_json *j, const clipnn_train_state *st);

#endif
