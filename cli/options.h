/* Options shared by train, compare and eval: data, model, optimizer and
 * schedule, clipping, telemetry. One settings struct holds them all; each
 * subcommand adds the groups it takes to its option table, then turns the
 * settings into a dataset, a model and clipnn_train_options. */
#ifndef CLIPNN_CLI_OPTIONS_H
#define CLIPNN_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

typedef enum { CLI_MODE_TRAIN = 0, CLI_MODE_COMPARE, CLI_MODE_EVAL } cli_mode;

/* Option groups. */
enum {
    CLI_OPTS_DATA = 1 << 0,        /* --data --scale --test-fraction --data-seed */
    CLI_OPTS_LOSS = 1 << 1,        /* --loss */
    CLI_OPTS_MODEL = 1 << 2,       /* --arch --act --init */
    CLI_OPTS_OPTIM = 1 << 3,       /* --opt --lr ... --seed --threads */
    CLI_OPTS_CLIP_RULE = 1 << 4,   /* --clip --lambda */
    CLI_OPTS_CLIP_PARAMS = 1 << 5, /* --eps --p --value ... --nonfinite */
    CLI_OPTS_TELEMETRY = 1 << 6,   /* --log-groups --stability-m --expected-grad */
    CLI_OPTS_THREADS = 1 << 7,     /* --threads alone (eval) */
    CLI_OPTS_RECORDED = 1 << 8     /* --force: data other than the model's record */
};

#define CLI_MAX_OPTIONS 128
#define CLI_MAX_LAYERS 64

typedef struct {
    /* data */
    const char *data, *scale;
    double test_fraction;
    uint64_t data_seed;
    /* model and loss */
    const char *arch, *act, *init, *loss;
    const char *rec_init; /* W_hh of recurrent layers: torch | orthogonal | scaled | sparse */
    double rec_radius;    /* spectral radius of --rec-init scaled or sparse */
    size_t rec_connections; /* --rec-init sparse: nonzero weights per unit */
    size_t seq_steps;     /* --seq-steps: each row as this many steps (0: the data's own) */
    int every_step;       /* the dense layers read every step's h */
    /* optimizer, schedule, run */
    const char *opt, *schedule;
    double lr, momentum, wd;
    int nesterov, replacement, threads;
    size_t batch, epochs;
    uint64_t steps, seed;
    const char *bptt; /* --bptt K1[,K2] */
    int carry_state;
    /* clipping */
    const char *clip, *lambda, *nonfinite, *center, *box;
    double eps, p, value, percentile, noise, radius;
    size_t history, z_warmup;
    double z_alpha, z_cap;
    int agc_skip_last;
    /* DP-SGD */
    const char *sampling;  /* --sampling auto | shuffle | poisson */
    const char *clip_where; /* --clip-where global | local | clip21 */
    size_t physical_batch; /* --physical-batch P (0: one physical batch) */
    double delta;          /* --delta (0: 1/n rounded down to a power of ten) */
    double target_epsilon; /* --target-epsilon (0: none; --noise gives the noise) */
    /* the rules of the 2020s, Pascanu's random step, SPAM's resets */
    double random_step, nonfinite_bound, adagc_abs, acclip_alpha, nsgdm_beta;
    size_t adagc_warmup, spam_delay;
    uint64_t reset_every, reset_warmup;
    /* telemetry */
    int log_groups, expected_grad;
    double stability_m;
    /* a model's recorded data */
    int force;
} cli_settings;

/* --lambda auto[:Q]: 1 with the quantile in *q (default 0.5), 0 for any
 * other text, -1 for a malformed or out-of-range Q. */
int cli_lambda_auto(const char *text, double *q);

/* Defaults of each subcommand (compare starts from a large step size). */
void cli_settings_default(cli_settings *s, cli_mode mode);

/* Appends the option entries of the chosen groups to table[*n...]; the
 * caller terminates the table with a {NULL} entry. */
void cli_settings_options(cli_settings *s, unsigned groups, cli_option *table, size_t *n);

/* Checks the values of the chosen groups after parsing (ranges, exclusive
 * options); prints one line and returns CLI_EXIT_USAGE when one is wrong. */
int cli_settings_check(const char *cmd, const cli_settings *s, unsigned groups, int argc,
                       char **argv);

/* 1 when argv holds option name (as "--name V" or "--name=V"). */
int cli_argv_has(int argc, char **argv, const char *name);

/* Loads --data with --scale, --test-fraction, --data-seed (with the
 * statistics of the loaded model's record when the settings are its own). */
int cli_load_data(const char *cmd, const cli_settings *s, clipnn_dataset **train,
                  clipnn_dataset **test);
/* The same, fitting the scaling, with a record of the load in *info. */
int cli_load_data_info(const char *cmd, const cli_settings *s, clipnn_dataset **train, clipnn_dataset **test,
                       clipnn_data_info **info);
/* The rows of the whole training set, of which a job's process holds its part. */
size_t cli_whole_rows(const clipnn_dataset *d);

/* --loss, or the default for the data: xent for class labels, mse for
 * regression targets. */
int cli_resolve_loss(const char *cmd, const cli_settings *s, const clipnn_dataset *d,
                     clipnn_loss *out);

/* Number of model outputs the data and loss ask for. */
size_t cli_expected_outputs(const clipnn_dataset *d, clipnn_loss loss);

/* Parses --arch (default: the default hidden width, then the output width
 * the data ask for) into layers: a width is a dense layer (with --act, the
 * last one identity), KIND:WIDTH a recurrent one (rnn, rnn_relu, lstm,
 * gru); the last width must be one the data and loss accept. */
int cli_parse_arch(const char *cmd, const cli_settings *s, const clipnn_dataset *d,
                   clipnn_loss loss, clipnn_layer_spec *layers, size_t *n_layers);

/* Creates and initialises the model (--arch, --act, --init, --seed) and
 * reserves it for --batch; arch_text receives its widths as "64-10".
 * With run options o, a run that cannot fit in memory is refused before
 * the parameters are initialised. */
int cli_build_model(const char *cmd, const cli_settings *s, const clipnn_dataset *d, clipnn_loss loss,
                    const clipnn_train_options *o, clipnn_model **out, char *arch_text, size_t cap);

/* Fills o from the settings for the given rule, over the library's
 * defaults (clipnn_train_options_default, clipnn_clip_options_for(rule)).
 * threshold, when not NaN,
 * wins over --lambda and the rule's default (and sets the bound of value,
 * the percentile of percentile, the radius of project). */
int cli_make_train_options(const char *cmd, const cli_settings *s, clipnn_clip_rule rule,
                           double threshold, clipnn_loss loss, clipnn_train_options *o);

/* The threshold a run used, for reports: lambda for rules that have one,
 * the bound of value, the percentile of percentile, the radius of project
 * (ball), NaN for rules without a threshold. */
double cli_rule_threshold(const clipnn_clip_options *c);
/* Help text listing the library's per-rule lambdas, e.g. "norm 1, agc 0.01, ...". */
const char *cli_rule_defaults_help(void);

#endif
