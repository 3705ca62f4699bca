/* --lambda auto: a threshold at a quantile of the pre-clip gradient norms
 * of a short unclipped warm-up. */
#include <math.h>
#include <string.h>

#include "train/train.h"

typedef struct {
    double *norms;
    size_t n, cap;
} norm_log;

static void collect_norm(const clipnn_step_record *r, void *user) {
    norm_log *log = user;
    if (isfinite(r->clip.pre_norm) && log->n < log->cap) log->norms[log->n++] = r->clip.pre_norm;
}

/* The warm-up's options: opts without clipping, telemetry or state. */
static clipnn_train_options warmup_options(const clipnn_train_options *opts, uint64_t steps, norm_log *log) {
    clipnn_train_options w = *opts;
    double p = opts->clip.p;
    w.clip = clipnn_clip_options_default();
    w.clip.p = p;
    w.clip.nonfinite = CLIPNN_NONFINITE_SKIP;
    w.steps = steps;
    w.log_groups = 0;
    w.stability_m = 0;
    w.expected_grad = 0;
    w.on_step = collect_norm;
    w.on_epoch = NULL;
    w.user = log;
    w.state = NULL;
    w.control = NULL;
    w.on_save = NULL;
    return w;
}

clipnn_status clipnn_auto_lambda(const clipnn_model *m, const clipnn_dataset *train, const clipnn_train_options *opts,
                                 uint64_t steps, double q, double *lambda) {
    if (!m || !train || !opts || !lambda) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "auto lambda: NULL argument");
    if (!(q > 0 && q <= 1)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "auto lambda: quantile %g, want in (0, 1]", q);
    if (steps == 0 || steps > ((uint64_t)1 << 24))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "auto lambda: %llu warm-up steps, want 1 to 2^24",
                           (unsigned long long)steps);
    norm_log log = {clipnn_alloc_array((size_t)steps, sizeof(double)), 0, (size_t)steps};
    clipnn_model *copy = NULL;
    clipnn_status s =
        log.norms ? clipnn_model_clone(m, &copy) : clipnn_fail(CLIPNN_ERR_NOMEM, "auto lambda: out of memory");
    if (!s) {
        clipnn_train_options w = warmup_options(opts, steps, &log);
        clipnn_train_result r;
        s = clipnn_train(copy, train, NULL, &w, &r);
    }
    if (!s && log.n == 0)
        s = clipnn_fail(CLIPNN_ERR_NONFINITE, "auto lambda: no step of the warm-up had a finite gradient norm");
    if (!s) *lambda = clipnn_percentile(log.norms, log.n, 100 * q);
    clipnn_model_free(copy);
    clipnn_free(log.norms);
    return s;
}

int clipnn_train_state_auto_lambda(const clipnn_train_state *s, double *lambda, double *quantile, uint64_t *steps) {
    return s && s->clip ? clipnn_clip_state_auto_lambda(s->clip, s->clip_len, lambda, quantile, steps) : 0;
}
