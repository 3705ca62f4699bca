/* clipnn train's privacy report: what the noise buys, and under which
 * sampling that is a guarantee. */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "privacy.h"

int cli_privacy_target(const char *cmd, double target, size_t n, clipnn_train_options *o) {
    clipnn_status st = clipnn_train_noise_for_epsilon(o, n, target);
    return st ? cli_fail(cmd, st, "--target-epsilon") : CLI_EXIT_OK;
}

void cli_privacy_epoch(const char *cmd, const clipnn_epoch_record *r) {
    fprintf(stderr, "clipnn %s: epoch %zu/%zu  epsilon %.4f at delta %g\n", cmd, r->epoch, r->n_epochs, r->epsilon,
            r->delta);
}

/* What the figure rests on, in words. */
static const char *assumption(const clipnn_train_result *r) {
    if (r->sampling == CLIPNN_SAMPLING_POISSON)
        return "a guarantee for adding or removing one training example, the batches drawn by Poisson sampling";
    return "NOT a guarantee: computed as if the batches were Poisson-sampled, and they were not";
}

void cli_privacy_text(const clipnn_train_options *o, const clipnn_train_result *r) {
    if (isnan(r->epsilon)) return;
    printf("privacy: (epsilon %.4f, delta %g)-DP after %llu steps: noise multiplier %.6g, clipping C %g, "
           "sampling rate %.6g (%s)\n", r->epsilon, r->delta, (unsigned long long)r->steps, o->clip.noise_multiplier,
           o->clip.lambda, r->sampling_rate, clipnn_sampling_name(r->sampling));
    if (o->dp_delta <= 0) printf("privacy: delta is the default, 1/n rounded down to a power of ten\n");
    printf("privacy: %s\n", assumption(r));
}

void cli_privacy_json(cli_json *j, const clipnn_train_options *o, const clipnn_train_result *r) {
    if (isnan(r->epsilon)) return;
    cli_json_num(j, "epsilon", r->epsilon);
    cli_json_num(j, "delta", r->delta);
    cli_json_num(j, "noise_multiplier", o->clip.noise_multiplier);
    cli_json_num(j, "sampling_rate", r->sampling_rate);
    cli_json_str(j, "sampling", clipnn_sampling_name(r->sampling));
    cli_json_str(j, "privacy_assumption", assumption(r));
}

void cli_privacy_info_text(const clipnn_train_state *st) {
    clipnn_privacy_spent p;
    if (!st || clipnn_train_state_privacy(st, &p)) return;
    printf("privacy: (epsilon %.4f, delta %g)-DP after %llu steps: noise multiplier %.6g, sampling rate %.6g (%s)\n",
           p.epsilon, p.delta, (unsigned long long)p.steps, p.noise_multiplier, p.sampling_rate,
           p.poisson ? "poisson: a guarantee" : "not Poisson-sampled: not a guarantee");
}

void cli_privacy_info_json(cli_json *j, const clipnn_train_state *st) {
    clipnn_privacy_spent p;
    if (!st || clipnn_train_state_privacy(st, &p)) return;
    cli_json_open(j, "privacy", '{');
    cli_json_num(j, "epsilon", p.epsilon);
    cli_json_num(j, "delta", p.delta);
    cli_json_u64(j, "steps", p.steps);
    cli_json_num(j, "noise_multiplier", p.noise_multiplier);
    cli_json_num(j, "sampling_rate", p.sampling_rate);
    cli_json_str(j, "sampling", p.poisson ? "poisson" : "shuffle");
    cli_json_bool(j, "guarantee", p.poisson);
    cli_json_close(j, '}');
}
