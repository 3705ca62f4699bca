/* clipnn train --lambda auto[:Q] (cli/auto_lambda.c). */
#ifndef CLIPNN_CLI_AUTO_LAMBDA_H
#define CLIPNN_CLI_AUTO_LAMBDA_H

#include "clipnn.h"
#include "options.h"

/* When s->lambda is auto[:Q]: sets o->clip.lambda (and auto_quantile,
 * auto_steps) to the Q-quantile of the pre-clip norms of `steps`
 * unclipped warm-up steps of m (left as it is) at step size warmup_lr (0:
 * the norms at the initial parameters), or, resuming (resumed and
 * resume_path set), to the lambda the saved run chose; says so on stdout
 * when say is set. Does nothing for any other --lambda. */
int cli_auto_lambda(const char *cmd, const cli_settings *s, uint64_t steps, double warmup_lr, const clipnn_model *m,
                    const clipnn_dataset *train, const clipnn_train_state *resumed, const char *resume_path,
                    clipnn_train_options *o, int say);

#endif
