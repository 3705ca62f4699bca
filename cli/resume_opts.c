/* The saved run's options on --resume (resume_opts.h). */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resume_opts.h"

typedef enum { OPT_TEXT, OPT_NUMBER, OPT_SIZE, OPT_COUNT, OPT_FLAG } opt_type;

/* MUST_MATCH: the option shapes the trajectory (a resumed run that changed
 * it would be neither the saved run nor a new one); MAY_CHANGE: it only
 * changes what is reported or how the work is split in memory. */
typedef enum { MUST_MATCH, MAY_CHANGE } opt_class;

typedef struct {
    const char *name; /* "--lr"; recorded as "train.lr" ('-' inside the name as '_') */
    opt_type type;
    size_t offset; /* in cli_settings */
    opt_class cls;
} run_option;

#define RUN_OPT(name, type, field, cls) {name, type, offsetof(cli_settings, field), cls}
static const run_option RUN_OPTIONS[] = {
    RUN_OPT("--loss", OPT_TEXT, loss, MUST_MATCH),
    RUN_OPT("--opt", OPT_TEXT, opt, MUST_MATCH),
    RUN_OPT("--reset-every", OPT_COUNT, reset_every, MUST_MATCH),
    RUN_OPT("--reset-warmup", OPT_COUNT, reset_warmup, MUST_MATCH),
    RUN_OPT("--lr", OPT_NUMBER, lr, MUST_MATCH),
    RUN_OPT("--momentum", OPT_NUMBER, momentum, MUST_MATCH),
    RUN_OPT("--nesterov", OPT_FLAG, nesterov, MUST_MATCH),
    RUN_OPT("--wd", OPT_NUMBER, wd, MUST_MATCH),
    RUN_OPT("--schedule", OPT_TEXT, schedule, MUST_MATCH),
    RUN_OPT("--batch", OPT_SIZE, batch, MUST_MATCH),
    RUN_OPT("--replacement", OPT_FLAG, replacement, MUST_MATCH),
    RUN_OPT("--seed", OPT_COUNT, seed, MUST_MATCH),
    RUN_OPT("--bptt", OPT_TEXT, bptt, MUST_MATCH),
    RUN_OPT("--carry-state", OPT_FLAG, carry_state, MUST_MATCH),
    RUN_OPT("--clip", OPT_TEXT, clip, MUST_MATCH),
    RUN_OPT("--eps", OPT_NUMBER, eps, MUST_MATCH),
    RUN_OPT("--p", OPT_NUMBER, p, MUST_MATCH),
    RUN_OPT("--value", OPT_NUMBER, value, MUST_MATCH),
    RUN_OPT("--percentile", OPT_NUMBER, percentile, MUST_MATCH),
    RUN_OPT("--history", OPT_SIZE, history, MUST_MATCH),
    RUN_OPT("--z-warmup", OPT_SIZE, z_warmup, MUST_MATCH),
    RUN_OPT("--z-alpha", OPT_NUMBER, z_alpha, MUST_MATCH),
    RUN_OPT("--z-cap", OPT_NUMBER, z_cap, MUST_MATCH),
    RUN_OPT("--noise", OPT_NUMBER, noise, MUST_MATCH),
    RUN_OPT("--target-epsilon", OPT_NUMBER, target_epsilon, MUST_MATCH),
    RUN_OPT("--sampling", OPT_TEXT, sampling, MUST_MATCH),
    RUN_OPT("--clip-where", OPT_TEXT, clip_where, MUST_MATCH),
    RUN_OPT("--radius", OPT_NUMBER, radius, MUST_MATCH),
    RUN_OPT("--center", OPT_TEXT, center, MUST_MATCH),
    RUN_OPT("--box", OPT_TEXT, box, MUST_MATCH),
    RUN_OPT("--agc-skip-last", OPT_FLAG, agc_skip_last, MUST_MATCH),
    RUN_OPT("--nonfinite", OPT_TEXT, nonfinite, MUST_MATCH),
    RUN_OPT("--random-step", OPT_NUMBER, random_step, MUST_MATCH),
    RUN_OPT("--nonfinite-bound", OPT_NUMBER, nonfinite_bound, MUST_MATCH),
    RUN_OPT("--adagc-abs", OPT_NUMBER, adagc_abs, MUST_MATCH),
    RUN_OPT("--adagc-warmup", OPT_SIZE, adagc_warmup, MUST_MATCH),
    RUN_OPT("--spam-delay", OPT_SIZE, spam_delay, MUST_MATCH),
    RUN_OPT("--acclip-alpha", OPT_NUMBER, acclip_alpha, MUST_MATCH),
    RUN_OPT("--nsgdm-beta", OPT_NUMBER, nsgdm_beta, MUST_MATCH),
    /* the accountant's delta only changes the epsilon reported; physical
     * batches sum the same logical batch */
    RUN_OPT("--delta", OPT_NUMBER, delta, MAY_CHANGE),
    RUN_OPT("--physical-batch", OPT_SIZE, physical_batch, MAY_CHANGE),
};
enum { N_RUN_OPTIONS = sizeof RUN_OPTIONS / sizeof RUN_OPTIONS[0] };

void cli_num_text(double v, char *buf, size_t cap) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v); /* the same double back */
}

/* "--z-warmup" -> "train.z_warmup". */
static void key_of(const char *name, char *key, size_t cap) {
    snprintf(key, cap, "train.%s", name + 2);
    for (char *c = key; *c; c++)
        if (*c == '-') *c = '_';
}

static void *field_of(cli_settings *s, const run_option *o) { return (char *)s + o->offset; }

/* The value of o in s as the record writes it: a text itself (a missing
 * one is ""), a number written into buf. */
static const char *value_text(const cli_settings *s, const run_option *o, char *buf, size_t cap) {
    const void *f = (const char *)s + o->offset;
    switch (o->type) {
    case OPT_TEXT: return *(const char *const *)f ? *(const char *const *)f : "";
    case OPT_NUMBER: cli_num_text(*(const double *)f, buf, cap); break;
    case OPT_SIZE: snprintf(buf, cap, "%zu", *(const size_t *)f); break;
    case OPT_COUNT: snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)f); break;
    case OPT_FLAG: snprintf(buf, cap, "%d", *(const int *)f != 0); break;
    }
    return buf;
}

int cli_record_trajectory(clipnn_data_info *info, const cli_settings *s, const clipnn_train_options *o) {
    /* what the run resolved: the loss the data chose, the noise --target-epsilon chose */
    cli_settings run = *s;
    run.loss = clipnn_loss_name(o->loss.loss);
    run.clip = clipnn_clip_rule_name(o->clip.rule);
    run.noise = o->clip.noise_multiplier;
    char key[64], text[64];
    for (size_t i = 0; i < N_RUN_OPTIONS; i++) {
        key_of(RUN_OPTIONS[i].name, key, sizeof key);
        if (clipnn_data_info_set(info, key, value_text(&run, &RUN_OPTIONS[i], text, sizeof text))) return 1;
    }
    return 0;
}

/* The saved text into s's field; 0, or -1 when it does not read as the
 * option's type (then s is untouched). */
static int adopt(cli_settings *s, const run_option *o, const char *saved) {
    void *f = field_of(s, o);
    char *end = NULL;
    if (o->type == OPT_TEXT) {
        *(const char **)f = *saved ? saved : NULL;
        return 0;
    }
    if (o->type == OPT_NUMBER) {
        double v = strtod(saved, &end);
        if (end == saved || *end) return -1;
        *(double *)f = v;
        return 0;
    }
    unsigned long long v = saved[0] >= '0' && saved[0] <= '9' ? strtoull(saved, &end, 10) : 0;
    if (!end || *end || (o->type == OPT_SIZE && v > SIZE_MAX) || (o->type == OPT_FLAG && v > 1)) return -1;
    if (o->type == OPT_SIZE) *(size_t *)f = (size_t)v;
    else if (o->type == OPT_COUNT) *(uint64_t *)f = v;
    else *(int *)f = (int)v;
    return 0;
}

/* 1 when the given value of o in s is the saved one (numbers compared as
 * read: "0.10" is 0.1). */
static int same(const cli_settings *s, const run_option *o, const char *saved) {
    cli_settings copy = *s;
    if (adopt(&copy, o, saved)) return 0;
    char a[64], b[64];
    return !strcmp(value_text(s, o, a, sizeof a), value_text(&copy, o, b, sizeof b));
}

/* A given option that differs: refused, or with --force a warning. */
static int differs(const char *cmd, const char *path, const char *name, const char *given, const char *saved,
                   int force) {
    if (!force)
        return cli_usage_error(cmd, "%s %s: the run saved in %s was made with %s %s; give the same (or leave it "
                               "out), or add --force to continue with %s", name, given, path, name, saved, given);
    fprintf(stderr, "clipnn %s: warning: %s %s: the run saved in %s was made with %s %s; continuing with %s "
            "(--force)\n", cmd, name, given, path, name, saved, given);
    return CLI_EXIT_OK;
}

/* One option of the table against the record. */
static int resume_option(const char *cmd, const char *path, const clipnn_data_info *saved, const run_option *o,
                         cli_settings *s, int argc, char **argv) {
    char key[64];
    key_of(o->name, key, sizeof key);
    const char *text = clipnn_data_info_get(saved, key);
    if (!text) return CLI_EXIT_OK; /* recorded by an older build: as given */
    if (!cli_argv_has(argc, argv, o->name)) {
        adopt(s, o, text);
        return CLI_EXIT_OK;
    }
    if (o->cls == MAY_CHANGE || same(s, o, text)) return CLI_EXIT_OK;
    char buf[64];
    const char *given = value_text(s, o, buf, sizeof buf);
    if (o->type == OPT_FLAG) return differs(cmd, path, o->name, "on", "off", s->force);
    return differs(cmd, path, o->name, *given ? given : "(none)", *text ? text : "(none)", s->force);
}

/* --lambda: the saved threshold of a rule that has one; a run whose
 * lambda was chosen by --lambda auto goes on with that choice. */
static int resume_lambda(const char *cmd, const char *path, const clipnn_data_info *saved,
                         const clipnn_train_state *state, cli_settings *s, int argc, char **argv) {
    const char *text = clipnn_data_info_get(saved, "train.lambda");
    clipnn_clip_rule rule;
    if (!text || clipnn_clip_rule_parse(s->clip, &rule)) return CLI_EXIT_OK; /* a bad --clip is said later */
    if (!clipnn_clip_rule_uses_lambda(rule) && rule != CLIPNN_CLIP_ZSCORE) return CLI_EXIT_OK;
    double lambda, q;
    uint64_t steps;
    int chosen = clipnn_train_state_auto_lambda(state, &lambda, &q, &steps);
    char *end;
    double recorded = strtod(text, &end);
    if (end == text || *end || !isfinite(recorded)) return CLI_EXIT_OK;
    if (!cli_argv_has(argc, argv, "--lambda")) {
        s->lambda = chosen ? "auto" : text;
        return CLI_EXIT_OK;
    }
    if (!s->lambda || cli_lambda_auto(s->lambda, &q)) return CLI_EXIT_OK; /* cli_auto_lambda: the saved choice */
    double given = strtod(s->lambda, &end);
    if (end != s->lambda && !*end && given == recorded) return CLI_EXIT_OK;
    char was[96];
    snprintf(was, sizeof was, "%s%s%s", chosen ? "auto (" : "", text, chosen ? ")" : "");
    return differs(cmd, path, "--lambda", s->lambda, was, s->force);
}

/* --epochs and --steps: the saved run's plan unless either is given. */
static void resume_length(const clipnn_data_info *saved, cli_settings *s, int argc, char **argv) {
    if (cli_argv_has(argc, argv, "--epochs") || cli_argv_has(argc, argv, "--steps")) return;
    static const run_option steps = RUN_OPT("--steps", OPT_COUNT, steps, MAY_CHANGE);
    static const run_option epochs = RUN_OPT("--epochs", OPT_SIZE, epochs, MAY_CHANGE);
    const char *text = clipnn_data_info_get(saved, "train.steps");
    if (text) adopt(s, &steps, text);
    else if ((text = clipnn_data_info_get(saved, "train.epochs"))) adopt(s, &epochs, text);
}

int cli_resume_options(const char *cmd, const char *path, const clipnn_data_info *saved,
                       const clipnn_train_state *state, cli_settings *s, int argc, char **argv) {
    if (!saved) return CLI_EXIT_OK;
    for (size_t i = 0; i < N_RUN_OPTIONS; i++) {
        int rc = resume_option(cmd, path, saved, &RUN_OPTIONS[i], s, argc, argv);
        if (rc) return rc;
    }
    int rc = resume_lambda(cmd, path, saved, state, s, argc, argv);
    if (rc) return rc;
    resume_length(saved, s, argc, argv);
    /* the noise the saved run's --target-epsilon chose, not one for a longer plan */
    if (clipnn_data_info_get(saved, "train.noise")) s->target_epsilon = 0;
    return CLI_EXIT_OK;
}
