/* clipnn train --lambda auto[:Q]: lambda at the Q-quantile of the pre-clip
 * norms of a short unclipped warm-up, or the one a resumed run chose. */
#include <math.h>
#include <stdio.h>

#include "auto_lambda.h"
#include "cli.h"
#include "options.h"

/* Rules whose lambda bounds the global gradient norm: a quantile of that
 * norm is a threshold of theirs. */
static int clips_global_norm(clipnn_clip_rule r) {
    return r == CLIPNN_CLIP_NORM || r == CLIPNN_CLIP_NORM_TORCH || r == CLIPNN_CLIP_NSGDM_CLIP;
}

/* A resumed run keeps the lambda its start chose. */
static int resumed_lambda(const char *cmd, const clipnn_train_state *st, const char *path, clipnn_train_options *o,
                          int say) {
    double lambda, q;
    uint64_t steps;
    if (!clipnn_train_state_auto_lambda(st, &lambda, &q, &steps))
        return cli_usage_error(cmd, "--lambda auto: the run in %s was given its lambda; drop --lambda auto", path);
    o->clip.lambda = lambda;
    o->clip.auto_quantile = q;
    o->clip.auto_steps = steps;
    if (say) printf("lambda auto: %.6g, chosen by the run in %s (quantile %g of %llu warm-up steps)\n", lambda, path,
                    q, (unsigned long long)steps);
    return CLI_EXIT_OK;
}

int cli_auto_lambda(const char *cmd, const cli_settings *s, uint64_t steps, double warmup_lr, const clipnn_model *m,
                    const clipnn_dataset *train, const clipnn_train_state *resumed, const char *resume_path,
                    clipnn_train_options *o, int say) {
    double q;
    if (cli_lambda_auto(s->lambda, &q) != 1) return CLI_EXIT_OK;
    if (!clips_global_norm(o->clip.rule))
        return cli_usage_error(cmd, "--lambda auto: rule %s does not clip the gradient norm at lambda "
                                    "(auto fits norm, norm-torch, nsgdm-clip)", clipnn_clip_rule_name(o->clip.rule));
    if (resumed && resume_path) return resumed_lambda(cmd, resumed, resume_path, o, say);
    if (steps == 0) return cli_usage_error(cmd, "--auto-steps 0: the warm-up needs at least one step");
    if (!(warmup_lr >= 0 && isfinite(warmup_lr))) return cli_usage_error(cmd, "--auto-lr %g: want >= 0", warmup_lr);
    clipnn_train_options w = *o;
    w.schedule.a0 = warmup_lr;
    double lambda;
    clipnn_status st = clipnn_auto_lambda(m, train, &w, steps, q, &lambda);
    if (st) return cli_fail(cmd, st, "--lambda auto");
    o->clip.lambda = lambda;
    o->clip.auto_quantile = q;
    o->clip.auto_steps = steps;
    if (say) printf("lambda auto: %.6g, quantile %g of the pre-clip gradient norms of %llu unclipped warm-up steps "
                    "at step size %g\n", lambda, q, (unsigned long long)steps, warmup_lr);
    return CLI_EXIT_OK;
}
