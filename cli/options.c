/* Options shared by train, compare and eval, and their translation into
 * the library's dataset, model and training options. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "recorded.h"
#include "report.h"

/* Hidden width of the default architecture ("64-K", K from the data). */
#define DEFAULT_HIDDEN 64

double cli_rule_threshold(const clipnn_clip_options *c) {
    if (c->rule == CLIPNN_CLIP_VALUE) return c->value;
    if (c->rule == CLIPNN_CLIP_PERCENTILE) return c->percentile;
    if (c->rule == CLIPNN_CLIP_ZSCORE) return c->z_threshold;
    if (c->rule == CLIPNN_CLIP_PROJECT) return c->project_kind == CLIPNN_PROJECT_BALL ? c->project_radius : NAN;
    return clipnn_clip_rule_uses_lambda(c->rule) ? c->lambda : NAN;
}

const char *cli_rule_defaults_help(void) {
    static char buf[512];
    if (buf[0]) return buf;
    size_t len = 0;
    len += (size_t)snprintf(buf, sizeof buf, "clipping threshold (default per rule:");
    for (int r = 0; r < CLIPNN_CLIP_COUNT && len < sizeof buf; r++) {
        if (!clipnn_clip_rule_uses_lambda((clipnn_clip_rule)r)) continue;
        len += (size_t)snprintf(buf + len, sizeof buf - len, " %s %g,", clipnn_clip_rule_name((clipnn_clip_rule)r),
                                clipnn_clip_options_for((clipnn_clip_rule)r).lambda);
    }
    if (len < sizeof buf && len > 0 && buf[len - 1] == ',') buf[len - 1] = ')';
    return buf;
}

/* The clipping settings of a run: the library's defaults of rule. */
static void clip_settings_default(cli_settings *s, const clipnn_clip_options *c) {
    s->clip = clipnn_clip_rule_name(c->rule);
    s->nonfinite = clipnn_nonfinite_name(c->nonfinite);
    s->center = c->project_center_initial ? "initial" : "zero";
    s->eps = c->eps;
    s->p = c->p;
    s->value = c->value;
    s->percentile = c->percentile;
    s->history = c->history_length;
    s->z_warmup = c->z_warmup;
    s->z_alpha = c->z_alpha;
    s->z_cap = c->z_cap;
    s->noise = c->noise_multiplier;
    s->radius = c->project_radius;
    s->sampling = "auto";
    s->clip_where = "global";
    s->random_step = c->random_step;
    s->nonfinite_bound = c->nonfinite_bound;
    s->adagc_abs = c->adagc_abs;
    s->adagc_warmup = c->adagc_warmup;
    s->spam_delay = c->spam_delay;
    s->acclip_alpha = c->acclip_alpha;
    s->nsgdm_beta = c->nsgdm_beta;
}

/* Every default but the model's comes from the library
 * (clipnn_data_options_default, clipnn_train_options_default), so that a
 * C program and the tool run the same thing. */
void cli_settings_default(cli_settings *s, cli_mode mode) {
    memset(s, 0, sizeof *s);
    clipnn_data_options d = clipnn_data_options_default();
    clipnn_train_options t = clipnn_train_options_default();
    s->data = "digits";
    s->scale = clipnn_scaling_name(d.scaling);
    s->test_fraction = d.test_fraction;
    s->data_seed = d.seed;
    s->act = "tanh";
    s->rec_radius = 1.0;
    s->rec_connections = CLIPNN_SPARSE_CONNECTIONS;
    s->opt = clipnn_opt_kind_name(t.optim.kind);
    s->momentum = t.optim.momentum;
    s->nesterov = t.optim.nesterov;
    s->wd = t.optim.weight_decay;
    s->reset_every = t.optim.reset_every;
    s->reset_warmup = t.optim.reset_warmup;
    s->schedule = clipnn_sched_kind_name(t.schedule.kind);
    s->lr = t.schedule.a0;
    s->batch = t.batch;
    s->epochs = t.epochs;
    s->steps = t.steps;
    s->replacement = t.replacement;
    s->seed = t.seed;
    s->threads = clipnn_get_threads();
    clip_settings_default(s, &t.clip);
    s->log_groups = t.log_groups;
    s->stability_m = t.stability_m;
    s->expected_grad = t.expected_grad;
    if (mode == CLI_MODE_COMPARE) {
        /* Plain SGD at a large step on a ReLU net: measured on the digits
         * (64-10, 5 seeds), no clipping overflows to NaN within 60 to 200
         * steps in every run, while norm, adaptive, adaptive-layer and agc
         * reach 97% to 99% test accuracy. */
        s->act = "relu";
        s->lr = 4.0;
        s->momentum = 0.0;
        s->epochs = 10;
    }
}

#define ADD(nm, ty, dst, mv, hl)                                                            \
    do {                                                                                    \
        if (*n < CLI_MAX_OPTIONS - 1) table[(*n)++] = (cli_option){nm, ty, dst, mv, hl};    \
    } while (0)

static void data_options(cli_settings *s, cli_option *table, size_t *n) {
    ADD("--data", CLI_STR, &s->data, "SPEC",
        "digits | breast-cancer | fashion-mnist[:DIR] | idx:IMAGES,LABELS[,TIMAGES,TLABELS] | "
        "csv:PATH[,target=COLUMN|NAME] | npy:X,Y[,TEST_X,TEST_Y] | spirals | teacher | "
        "TASK[:T=N,train=N,test=N] with TASK a sequence task drawn from --data-seed: temporal-order, "
        "temporal-order-3bit, addition, multiplication, random-permutation[:...,symbols=K], memorization "
        "(defaults T=50, train=10000, test=10000)");
    ADD("--scale", CLI_STR, &s->scale, "KIND",
        "input scaling fitted on the training part: auto (the data set's own: standardize for digits, "
        "breast-cancer, CSV and npy, [0, 1] for images) | none | standardize | unit");
    ADD("--test-fraction", CLI_DOUBLE, &s->test_fraction, "F", "test share for data without a test part");
    ADD("--data-seed", CLI_U64, &s->data_seed, "S", "seed of the train/test split and synthetic data");
}

static void model_options(cli_settings *s, cli_option *table, size_t *n) {
    ADD("--arch", CLI_STR, &s->arch, "L1-L2-..",
        "layers after the input: a width is a dense layer, KIND:WIDTH a recurrent one (rnn, rnn_relu, lstm, "
        "gru; they come first and read the rows as sequences); the last width must equal the number of "
        "classes (or targets) (default: 64-K, K from the data: 64-10 on digits)");
    ADD("--seq-steps", CLI_SIZE, &s->seq_steps, "T",
        "recurrent layers read each row as T steps (0: the data's own: an image's rows, an .npy file's "
        "second dimension)");
    ADD("--every-step", CLI_FLAG, &s->every_step, NULL,
        "the dense layers read every step's h (many-to-many; the data need targets for every step)");
    ADD("--rec-init", CLI_STR, &s->rec_init, "KIND",
        "W_hh of the recurrent layers: torch (U(+-1/sqrt(h)), as PyTorch) | orthogonal | scaled | sparse "
        "(--rec-connections N(0, 1) weights per unit, then scaled)");
    ADD("--rec-radius", CLI_DOUBLE, &s->rec_radius, "R", "spectral radius of --rec-init scaled or sparse (> 0)");
    ADD("--rec-connections", CLI_SIZE, &s->rec_connections, "K",
        "nonzero incoming recurrent weights per unit of --rec-init sparse (>= 1)");
    ADD("--act", CLI_STR, &s->act, "ACT",
        "hidden activation: identity | sigmoid | tanh | gelu | softplus | relu (output: identity)");
    ADD("--init", CLI_STR, &s->init, "INIT", "xavier | he | torch (default: he for relu, xavier otherwise)");
}

static void optim_options(cli_settings *s, cli_option *table, size_t *n) {
    ADD("--opt", CLI_STR, &s->opt, "OPT", "sgd | adam | spam (Adam with moment resets and warm-ups)");
    ADD("--reset-every", CLI_U64, &s->reset_every, "N", "--opt spam: zero both moments every N steps (0: never)");
    ADD("--reset-warmup", CLI_U64, &s->reset_warmup, "N", "--opt spam: cosine warm-up of the step after a reset");
    ADD("--lr", CLI_DOUBLE, &s->lr, "A0", "step size a0 (>= 0)");
    ADD("--momentum", CLI_DOUBLE, &s->momentum, "B", "SGD momentum in [0, 1)");
    ADD("--nesterov", CLI_FLAG, &s->nesterov, NULL, "Nesterov momentum");
    ADD("--wd", CLI_DOUBLE, &s->wd, "W", "decoupled weight decay");
    ADD("--schedule", CLI_STR, &s->schedule, "SCHED",
        "const | rm:T0,P (a0/(1+t/T0)^P, 0.5<P<=1) | step:EVERY,GAMMA | cosine");
    ADD("--batch", CLI_SIZE, &s->batch, "M", "minibatch size");
    ADD("--epochs", CLI_SIZE, &s->epochs, "N", "passes over the training data");
    ADD("--steps", CLI_U64, &s->steps, "N", "number of steps instead of --epochs (0: use --epochs)");
    ADD("--replacement", CLI_FLAG, &s->replacement, NULL,
        "draw minibatches uniformly with replacement (default: shuffled passes)");
    ADD("--seed", CLI_U64, &s->seed, "S", "seed of the initial weights, batches and noise");
    ADD("--bptt", CLI_STR, &s->bptt, "K1[,K2]",
        "recurrent layers: truncated backpropagation through time, an update after every K1 steps with the "
        "gradient through the last K2 of them (default K2 = K1; many-to-one models: K1 = the steps; default: "
        "the whole sequence)");
    ADD("--carry-state", CLI_FLAG, &s->carry_state, NULL,
        "recurrent layers: each batch starts from the state the previous one ended with; the rows are one long "
        "sequence in order, cut into --batch streams (no shuffling; zero state at each epoch)");
}

static void clip_options(cli_settings *s, unsigned groups, cli_option *table, size_t *n) {
    if (groups & CLI_OPTS_CLIP_RULE) {
        ADD("--clip", CLI_STR, &s->clip, "RULE",
            "none | value | norm | norm-torch | norm-group | adaptive | adaptive-layer | agc | "
            "project | percentile | zscore | per-sample | adagc | spam | acclip | nsgdm | nsgdm-clip");
        ADD("--lambda", CLI_STR, &s->lambda, "L", cli_rule_defaults_help());
    }
    if (!(groups & CLI_OPTS_CLIP_PARAMS)) return;
    ADD("--eps", CLI_DOUBLE, &s->eps, "E", "floor of ||theta|| in adaptive rules");
    ADD("--p", CLI_DOUBLE, &s->p, "P", "norm order, >= 1 or inf");
    ADD("--value", CLI_DOUBLE, &s->value, "V", "bound of --clip value");
    ADD("--percentile", CLI_DOUBLE, &s->percentile, "P", "percentile of --clip percentile (AutoClip)");
    ADD("--history", CLI_SIZE, &s->history, "N", "--clip percentile: pre-clip norms kept (current included)");
    ADD("--z-warmup", CLI_SIZE, &s->z_warmup, "N", "--clip zscore: steps of plain statistics before clipping");
    ADD("--z-alpha", CLI_DOUBLE, &s->z_alpha, "A", "--clip zscore: EMA weight of the past");
    ADD("--z-cap", CLI_DOUBLE, &s->z_cap, "C", "--clip zscore: hard cap on the norm (0: none)");
    ADD("--noise", CLI_DOUBLE, &s->noise, "S", "--clip per-sample: Gaussian noise std S * lambda (DP-SGD)");
    ADD("--target-epsilon", CLI_DOUBLE, &s->target_epsilon, "E",
        "--clip per-sample: the smallest --noise whose epsilon after the planned steps is at most E (0: none)");
    ADD("--delta", CLI_DOUBLE, &s->delta, "D",
        "--clip per-sample with noise: delta of the reported epsilon (0: 1/n rounded down to a power of ten)");
    ADD("--sampling", CLI_STR, &s->sampling, "KIND",
        "--clip per-sample: auto (poisson with noise, else shuffle) | shuffle | poisson (each example joins a step "
        "with probability batch/n: what the privacy guarantee assumes)");
    ADD("--clip-where", CLI_STR, &s->clip_where, "PLACE",
        "with several processes (mpirun): global (clip the averaged gradient) | local (each process clips its "
        "slice's gradient by norm before the average) | clip21 (each process's error-feedback vector e moves by "
        "the clipped g - e; the average of the e is the update); local and clip21 want --clip norm");
    ADD("--physical-batch", CLI_SIZE, &s->physical_batch, "P",
        "--clip per-sample: clip and sum each logical batch in physical batches of at most P examples, the noise "
        "added once (0: one physical batch; under Poisson sampling one of batch + 4 sqrt(batch) + 1, more if drawn "
        "larger)");
    ADD("--radius", CLI_DOUBLE, &s->radius, "R", "--clip project: ball radius");
    ADD("--center", CLI_STR, &s->center, "C", "--clip project: ball centre, initial | zero");
    ADD("--box", CLI_STR, &s->box, "LO,HI", "--clip project: project onto a box instead of a ball");
    ADD("--agc-skip-last", CLI_FLAG, &s->agc_skip_last, NULL, "--clip agc: leave the last layer unclipped");
    ADD("--nonfinite", CLI_STR, &s->nonfinite, "POLICY",
        "non-finite gradient norm: error | skip | propagate | random (a small random step, Pascanu et al.)");
    ADD("--random-step", CLI_DOUBLE, &s->random_step, "R", "--nonfinite random: 2-norm of the random step");
    ADD("--nonfinite-bound", CLI_DOUBLE, &s->nonfinite_bound, "B",
        "--nonfinite random: a norm above B also takes the random step (default inf)");
    ADD("--adagc-abs", CLI_DOUBLE, &s->adagc_abs, "L", "--clip adagc: global threshold during the warm-up");
    ADD("--adagc-warmup", CLI_SIZE, &s->adagc_warmup, "N", "--clip adagc: steps 1 .. N-1 are the warm-up");
    ADD("--spam-delay", CLI_SIZE, &s->spam_delay, "N", "--clip spam: no clipping in the N steps after a reset");
    ADD("--acclip-alpha", CLI_DOUBLE, &s->acclip_alpha, "A", "--clip acclip: order alpha in [1, 2]");
    ADD("--nsgdm-beta", CLI_DOUBLE, &s->nsgdm_beta, "B", "--clip nsgdm, nsgdm-clip: momentum coefficient");
}

static void telemetry_options(cli_settings *s, cli_option *table, size_t *n) {
    ADD("--log-groups", CLI_FLAG, &s->log_groups, NULL,
        "with --log FILE.csv, also FILE.groups.csv (with --report DIR, a heat map in the report): one row per step per parameter group");
    ADD("--stability-m", CLI_DOUBLE, &s->stability_m, "M", "M of the paper's Lemma 1 bound in the log (0: off)");
    ADD("--expected-grad", CLI_FLAG, &s->expected_grad, NULL,
        "at the end, ||H(theta)|| = ||mean of g/c|| and ||mean g|| over the training set");
}

void cli_settings_options(cli_settings *s, unsigned groups, cli_option *table, size_t *n) {
    if (groups & CLI_OPTS_DATA) data_options(s, table, n);
    if (groups & CLI_OPTS_LOSS)
        ADD("--loss", CLI_STR, &s->loss, "LOSS",
            "xent | mse | bce (default: xent for class labels, mse for regression targets)");
    if (groups & CLI_OPTS_MODEL) model_options(s, table, n);
    if (groups & CLI_OPTS_OPTIM) optim_options(s, table, n);
    if (groups & (CLI_OPTS_OPTIM | CLI_OPTS_THREADS))
        ADD("--threads", CLI_INT, &s->threads, "N",
            "threads, 0 to 256 (0: one per processor); results are bit-identical for a given count, "
            "and the default 1 gives the same run on every machine");
    clip_options(s, groups, table, n);
    if (groups & CLI_OPTS_TELEMETRY) telemetry_options(s, table, n);
    if (groups & CLI_OPTS_RECORDED)
        ADD("--force", CLI_FLAG, &s->force, NULL,
            "use --data, --scale, --test-fraction, --data-seed even where they differ from the model's record");
}

int cli_argv_has(int argc, char **argv, const char *name) {
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], name, len) && (argv[i][len] == 0 || argv[i][len] == '=')) return 1;
    return 0;
}

/* --bptt K1[,K2]: positive step counts, K2 = 0 when not given; 0 on success. */
static int parse_bptt(const char *text, size_t *k1, size_t *k2) {
    char *end;
    errno = 0;
    unsigned long long a = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0, b = 0;
    if (a == 0 || errno) return -1;
    if (*end == ',') {
        const char *second = end + 1;
        b = second[0] >= '0' && second[0] <= '9' ? strtoull(second, &end, 10) : 0;
        if (b == 0 || errno) return -1;
    }
    if (*end || a > SIZE_MAX || b > SIZE_MAX) return -1;
    *k1 = (size_t)a, *k2 = (size_t)b;
    return 0;
}

/* Parses a finite or infinite number; 0 on success. */
static int parse_number(const char *text, double *out);

int cli_lambda_auto(const char *text, double *q) {
    if (!text || strncmp(text, "auto", 4) != 0 || (text[4] && text[4] != ':')) return 0;
    *q = 0.5;
    if (text[4] == ':' && (parse_number(text + 5, q) || !(*q > 0 && *q <= 1))) return -1;
    return 1;
}

static int parse_number(const char *text, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno == ERANGE && isfinite(v) && v != 0) errno = 0; /* tiny values are fine */
    if (end == text || *end || errno || isnan(v)) return -1;
    *out = v;
    return 0;
}

static int check_optim(const char *cmd, const cli_settings *s, int argc, char **argv) {
    if (!(s->lr >= 0) || !isfinite(s->lr))
        return cli_usage_error(cmd, "--lr %g: the step size must be finite and >= 0", s->lr);
    if (!(s->momentum >= 0 && s->momentum < 1))
        return cli_usage_error(cmd, "--momentum %g: must be in [0, 1)", s->momentum);
    if (s->nesterov && s->momentum == 0) return cli_usage_error(cmd, "--nesterov needs a --momentum > 0");
    if (!(s->wd >= 0) || !isfinite(s->wd)) return cli_usage_error(cmd, "--wd %g: must be finite and >= 0", s->wd);
    if (s->batch == 0) return cli_usage_error(cmd, "--batch 0: the minibatch size must be >= 1");
    if (cli_argv_has(argc, argv, "--epochs") && cli_argv_has(argc, argv, "--steps"))
        return cli_usage_error(cmd, "--epochs and --steps exclude each other");
    if (s->epochs == 0 && s->steps == 0)
        return cli_usage_error(cmd, "--epochs 0: train for at least one epoch or give --steps");
    size_t k1, k2;
    if (s->bptt && parse_bptt(s->bptt, &k1, &k2))
        return cli_usage_error(cmd, "--bptt '%s': want K1 or K1,K2, steps >= 1", s->bptt);
    if (s->carry_state && s->replacement)
        return cli_usage_error(cmd, "--carry-state takes the batches in order: no --replacement");
    return CLI_EXIT_OK;
}

static int check_clip_params(const char *cmd, const cli_settings *s) {
    if (!(s->p >= 1)) return cli_usage_error(cmd, "--p %g: the norm order must be >= 1 (or inf)", s->p);
    if (!(s->value > 0)) return cli_usage_error(cmd, "--value %g: must be > 0", s->value);
    if (!(s->percentile >= 0 && s->percentile <= 100))
        return cli_usage_error(cmd, "--percentile %g: must be in [0, 100]", s->percentile);
    if (!(s->noise >= 0) || !isfinite(s->noise))
        return cli_usage_error(cmd, "--noise %g: must be finite and >= 0", s->noise);
    if (!(s->radius > 0)) return cli_usage_error(cmd, "--radius %g: must be > 0", s->radius);
    if (!(s->delta >= 0 && s->delta < 1)) return cli_usage_error(cmd, "--delta %g: want 0 < delta < 1", s->delta);
    if (!(s->target_epsilon >= 0) || !isfinite(s->target_epsilon))
        return cli_usage_error(cmd, "--target-epsilon %g: want a finite number > 0", s->target_epsilon);
    clipnn_sampling sampling;
    clipnn_status sst = clipnn_sampling_parse(s->sampling, &sampling);
    if (sst) return cli_fail(cmd, sst, "--sampling");
    clipnn_clip_where where;
    if ((sst = clipnn_clip_where_parse(s->clip_where, &where))) return cli_fail(cmd, sst, "--clip-where");
    if (strcmp(s->center, "initial") && strcmp(s->center, "zero"))
        return cli_usage_error(cmd, "--center '%s': want initial or zero", s->center);
    if (!(s->eps > 0) || !isfinite(s->eps)) return cli_usage_error(cmd, "--eps %g: want a finite number > 0", s->eps);
    if (s->box) {
        char *end;
        double lo = strtod(s->box, &end), hi;
        if (end == s->box || *end != ',' || parse_number(end + 1, &hi) || !(lo < hi))
            return cli_usage_error(cmd, "--box '%s': want LO,HI with LO < HI", s->box);
    }
    clipnn_nonfinite policy;
    clipnn_status st = clipnn_nonfinite_parse(s->nonfinite, &policy);
    return st ? cli_fail(cmd, st, "--nonfinite") : CLI_EXIT_OK;
}

int cli_settings_check(const char *cmd, const cli_settings *s, unsigned groups, int argc,
                       char **argv) {
    int rc;
    if (groups & CLI_OPTS_DATA) {
        if (!(s->test_fraction > 0 && s->test_fraction < 1))
            return cli_usage_error(cmd, "--test-fraction %g: must be in (0, 1)", s->test_fraction);
        clipnn_scaling scaling;
        clipnn_status st = clipnn_scaling_parse(s->scale, &scaling);
        if (st) return cli_fail(cmd, st, "--scale");
    }
    if ((groups & CLI_OPTS_OPTIM) && (rc = check_optim(cmd, s, argc, argv))) return rc;
    if ((groups & (CLI_OPTS_OPTIM | CLI_OPTS_THREADS)) && (s->threads < 0 || s->threads > CLIPNN_MAX_THREADS))
        return cli_usage_error(cmd, "--threads %d: want 0 to %d", s->threads, CLIPNN_MAX_THREADS);
    if ((groups & CLI_OPTS_CLIP_PARAMS) && (rc = check_clip_params(cmd, s))) return rc;
    double v;
    if ((groups & CLI_OPTS_CLIP_RULE) && s->lambda && cli_lambda_auto(s->lambda, &v) < 0)
        return cli_usage_error(cmd, "--lambda '%s': want auto or auto:Q with 0 < Q <= 1", s->lambda);
    if ((groups & CLI_OPTS_CLIP_RULE) && s->lambda && !cli_lambda_auto(s->lambda, &v) &&
        (parse_number(s->lambda, &v) || !(v > 0)))
        return cli_usage_error(cmd, "--lambda '%s': want a number > 0", s->lambda);
    if ((groups & CLI_OPTS_TELEMETRY) && (!(s->stability_m >= 0) || !isfinite(s->stability_m)))
        return cli_usage_error(cmd, "--stability-m %g: must be finite and >= 0", s->stability_m);
    return CLI_EXIT_OK;
}

int cli_load_data(const char *cmd, const cli_settings *s, clipnn_dataset **train,
                  clipnn_dataset **test) {
    return cli_load_data_info(cmd, s, train, test, NULL);
}

int cli_load_data_info(const char *cmd, const cli_settings *s, clipnn_dataset **train, clipnn_dataset **test,
                       clipnn_data_info **info) {
    clipnn_data_options d = clipnn_data_options_default();
    d.seed = s->data_seed;
    d.test_fraction = s->test_fraction;
    d.shard = (size_t)clipnn_dist_rank(), d.shards = (size_t)clipnn_dist_size(); /* a job's process keeps its part */
    *train = NULL;
    if (test) *test = NULL;
    clipnn_status st = clipnn_scaling_parse(s->scale, &d.scaling);
    if (st) return cli_fail(cmd, st, "--scale");
    if (info) {
        st = clipnn_dataset_load_info(s->data, &d, train, test, info);
    } else if (cli_recorded_matches(s)) {
        cli_recorded_announce();
        st = clipnn_dataset_load_recorded(cli_recorded(), s->data, train, test);
    } else {
        st = clipnn_dataset_load(s->data, &d, train, test);
    }
    if (st) {
        char what[600];
        snprintf(what, sizeof what, "--data %s", s->data);
        int rc = cli_fail(cmd, st, what);
        /* NaN or Inf in a data file, or an array of a kind the readers do not
         * take (4-D, an object array, another dtype), is a bad input file,
         * not a failed run or a bad option */
        return st == CLIPNN_ERR_NONFINITE || st == CLIPNN_ERR_UNSUPPORTED ? CLI_EXIT_INPUT : rc;
    }
    return CLI_EXIT_OK;
}

size_t cli_whole_rows(const clipnn_dataset *d) {
    size_t total;
    clipnn_dataset_shard_range(d, NULL, &total);
    return total;
}

int cli_resolve_loss(const char *cmd, const cli_settings *s, const clipnn_dataset *d,
                     clipnn_loss *out) {
    if (!s->loss) {
        *out = clipnn_dataset_n_classes(d) > 0 ? CLIPNN_LOSS_XENT : CLIPNN_LOSS_MSE;
        return CLI_EXIT_OK;
    }
    clipnn_status st = clipnn_loss_parse(s->loss, out);
    if (st) return cli_fail(cmd, st, "--loss");
    if (*out == CLIPNN_LOSS_MARGIN)
        return cli_usage_error(cmd, "--loss margin is for input optimization, not training");
    if ((*out == CLIPNN_LOSS_XENT) && clipnn_dataset_n_classes(d) == 0)
        return cli_usage_error(cmd, "--loss xent needs class labels; %s is a regression set (use mse)",
                               clipnn_dataset_name(d));
    return CLI_EXIT_OK;
}

size_t cli_expected_outputs(const clipnn_dataset *d, clipnn_loss loss) {
    size_t nc = clipnn_dataset_n_classes(d);
    if (nc == 0) return clipnn_dataset_n_targets(d);
    /* BCE on two classes is usually one logit; one-hot two outputs work too. */
    if (loss == CLIPNN_LOSS_BCE && nc == 2) return 1;
    return nc;
}

/* One token of --arch at *p: "W" (dense) or "KIND:W"; *p moves past it and
 * its '-'. */
static int parse_layer(const char *cmd, const char *arch, const char **p, clipnn_layer_spec *L) {
    L->kind = CLIPNN_LAYER_DENSE;
    const char *colon = strchr(*p, ':'), *dash = strchr(*p, '-');
    if (colon && (!dash || colon < dash)) {
        char kind[16];
        size_t len = (size_t)(colon - *p);
        if (len >= sizeof kind)
            return cli_usage_error(cmd, "--arch '%s': unknown layer kind '%.*s'", arch, (int)len, *p);
        memcpy(kind, *p, len);
        kind[len] = 0;
        for (char *c = kind; *c; c++) *c = *c == '_' ? '-' : *c; /* rnn_relu: '-' separates layers */
        if (clipnn_layer_kind_parse(kind, &L->kind) || L->kind == CLIPNN_LAYER_DENSE)
            return cli_usage_error(cmd, "--arch '%s': unknown layer kind '%s' (rnn, rnn_relu, lstm, gru, or a "
                                   "width alone for a dense layer)", arch, kind);
        *p = colon + 1;
    }
    char *end;
    errno = 0;
    unsigned long long w = **p >= '0' && **p <= '9' ? strtoull(*p, &end, 10) : 0;
    if (w == 0 || errno || w > (1u << 24) || (*end && (*end != '-' || !end[1])))
        return cli_usage_error(cmd, "--arch '%s': layers are positive widths (1 to %u), dense or KIND:WIDTH, "
                               "separated by '-'", arch, 1u << 24);
    L->width = (size_t)w;
    *p = *end ? end + 1 : end;
    return CLI_EXIT_OK;
}

/* The output layer must give what the data and loss need. */
static int check_output_width(const char *cmd, const cli_settings *s, const clipnn_dataset *d, clipnn_loss loss,
                              size_t last) {
    size_t k = cli_expected_outputs(d, loss);
    if (clipnn_dataset_target_steps(d) && s->every_step) k /= clipnn_dataset_target_steps(d);
    if (last == k || (loss == CLIPNN_LOSS_BCE && clipnn_dataset_n_classes(d) == 2 && last == 2)) return CLI_EXIT_OK;
    const char *what = clipnn_dataset_n_classes(d) ? "classes" : "targets";
    size_t count = clipnn_dataset_n_classes(d) ? clipnn_dataset_n_classes(d) : clipnn_dataset_n_targets(d);
    return cli_usage_error(cmd, "--arch '%s': the last width is the output layer and must be %zu (%s has %zu %s)",
                           s->arch, k, clipnn_dataset_name(d), count, what);
}

int cli_parse_arch(const char *cmd, const cli_settings *s, const clipnn_dataset *d,
                   clipnn_loss loss, clipnn_layer_spec *layers, size_t *n_layers) {
    size_t n = 0;
    if (!s->arch) {
        layers[n++] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, DEFAULT_HIDDEN, CLIPNN_ACT_IDENTITY};
        layers[n++] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, cli_expected_outputs(d, loss), CLIPNN_ACT_IDENTITY};
        *n_layers = n;
        return CLI_EXIT_OK;
    }
    if (!*s->arch)
        return cli_usage_error(cmd, "--arch is empty: give widths such as 64-%zu", cli_expected_outputs(d, loss));
    for (const char *p = s->arch; *p;) {
        if (n == CLI_MAX_LAYERS)
            return cli_usage_error(cmd, "--arch '%s': more than %d layers", s->arch, CLI_MAX_LAYERS);
        int rc = parse_layer(cmd, s->arch, &p, &layers[n++]);
        if (rc) return rc;
    }
    *n_layers = n;
    return check_output_width(cmd, s, d, loss, layers[n - 1].width);
}

/* The input shape: the data's own steps (row-sequential images, .npy
 * sequences) or --steps; every step's h with --every-step. */
static int seq_shape_for(const char *cmd, const cli_settings *s, const clipnn_dataset *d, int recurrent,
                         clipnn_seq_shape *seq) {
    size_t dim = clipnn_dataset_dim(d), T = 0, D = 0;
    clipnn_dataset_seq_shape(d, &T, &D);
    if (s->seq_steps) {
        if (dim % s->seq_steps)
            return cli_usage_error(cmd, "--seq-steps %zu: %s has %zu values per row, not a multiple", s->seq_steps,
                                   clipnn_dataset_name(d), dim);
        T = s->seq_steps, D = dim / T;
    }
    if (!recurrent) T = 1, D = dim;
    if (recurrent && T == 0)
        return cli_usage_error(cmd,
                               "--arch '%s': recurrent layers read sequences, and %s has no steps; give --seq-steps T",
                               s->arch, clipnn_dataset_name(d));
    if (s->every_step && (!recurrent || clipnn_dataset_target_steps(d) != T))
        return cli_usage_error(cmd, "--every-step needs recurrent layers and targets for each of the %zu steps", T);
    *seq = (clipnn_seq_shape){T, D, s->every_step};
    return CLI_EXIT_OK;
}

/* --rec-init (and --rec-radius) on the recurrent layers' W_hh; refused for
 * a model without them, where it would change nothing. */
static int init_recurrent(const char *cmd, const cli_settings *s, clipnn_model *m) {
    if (!s->rec_init) return CLI_EXIT_OK;
    clipnn_recurrent_init how;
    clipnn_status st = clipnn_recurrent_init_parse(s->rec_init, &how);
    if (st) return cli_fail(cmd, st, "--rec-init");
    if (clipnn_model_seq_shape(m).steps == 0)
        return cli_usage_error(cmd, "--rec-init %s: the model has no recurrent layers", s->rec_init);
    if (how == CLIPNN_RECURRENT_INIT_SPARSE)
        st = clipnn_model_init_recurrent_sparse(m, s->rec_connections, s->rec_radius, s->seed);
    else
        st = clipnn_model_init_recurrent(m, how, s->rec_radius, s->seed);
    return st ? cli_fail(cmd, st, how == CLIPNN_RECURRENT_INIT_TORCH || how == CLIPNN_RECURRENT_INIT_ORTHOGONAL
                                      ? "--rec-init" : "--rec-radius or --rec-connections")
              : CLI_EXIT_OK;
}

int cli_build_model(const char *cmd, const cli_settings *s, const clipnn_dataset *d, clipnn_loss loss,
                    const clipnn_train_options *o, clipnn_model **out, char *arch_text, size_t cap) {
    clipnn_layer_spec layers[CLI_MAX_LAYERS];
    clipnn_act hidden;
    size_t n = 0;
    *out = NULL;
    int rc = cli_parse_arch(cmd, s, d, loss, layers, &n);
    if (rc) return rc;
    clipnn_status st = clipnn_act_parse(s->act, &hidden);
    if (st) return cli_fail(cmd, st, "--act");
    for (size_t i = 0; i < n; i++) layers[i].act = i + 1 < n ? hidden : CLIPNN_ACT_IDENTITY;
    clipnn_seq_shape seq;
    if ((rc = seq_shape_for(cmd, s, d, layers[0].kind != CLIPNN_LAYER_DENSE, &seq))) return rc;
    clipnn_init init = hidden == CLIPNN_ACT_RELU ? CLIPNN_INIT_HE : CLIPNN_INIT_XAVIER;
    if (s->init && (st = clipnn_init_parse(s->init, &init))) return cli_fail(cmd, st, "--init");
    clipnn_model *m = NULL;
    st = clipnn_model_create_seq(&m, &seq, n, layers);
    const char *what = "--arch";
    /* the workspace before the initialisation, which touches every parameter */
    if (!st && (st = clipnn_model_reserve(m, s->batch))) what = "--batch";
    if (!st && o) st = clipnn_train_check_memory(m, o);
    if (!st && (st = clipnn_model_init(m, init, s->seed))) what = "--arch";
    if (st) {
        clipnn_model_free(m);
        return cli_fail(cmd, st, what);
    }
    if ((rc = init_recurrent(cmd, s, m))) {
        clipnn_model_free(m);
        return rc;
    }
    cli_model_arch(m, 0, arch_text, cap);
    *out = m;
    return CLI_EXIT_OK;
}

/* The clipping options of a run: the library's defaults for rule, then
 * the settings given. threshold as for cli_make_train_options. */
static int make_clip_options(const char *cmd, const cli_settings *s, clipnn_clip_rule rule, double threshold,
                             clipnn_clip_options *c) {
    *c = clipnn_clip_options_for(rule);
    double v;
    if (!isnan(threshold) && clipnn_clip_rule_uses_lambda(rule)) c->lambda = threshold;
    else if (s->lambda && !parse_number(s->lambda, &v)) c->lambda = v;
    c->eps = s->eps;
    c->p = s->p;
    c->value = s->value;
    c->percentile = s->percentile;
    c->history_length = s->history;
    c->z_warmup = s->z_warmup;
    c->z_alpha = s->z_alpha;
    c->z_cap = s->z_cap;
    c->noise_multiplier = s->noise;
    c->noise_seed = s->seed;
    c->agc_skip_last = s->agc_skip_last;
    c->random_step = s->random_step;
    c->nonfinite_bound = s->nonfinite_bound;
    c->adagc_abs = s->adagc_abs;
    c->adagc_warmup = s->adagc_warmup;
    c->spam_delay = s->spam_delay;
    c->acclip_alpha = s->acclip_alpha;
    c->nsgdm_beta = s->nsgdm_beta;
    clipnn_status st = clipnn_nonfinite_parse(s->nonfinite, &c->nonfinite);
    if (st) return cli_fail(cmd, st, "--nonfinite");
    c->project_radius = s->radius;
    c->project_center_initial = !strcmp(s->center, "initial");
    if (s->box) {
        char *end;
        c->project_kind = CLIPNN_PROJECT_BOX;
        c->box_lo = strtod(s->box, &end);
        c->box_hi = strtod(end + 1, NULL);
    } else {
        c->project_kind = CLIPNN_PROJECT_BALL;
    }
    /* ZClip's threshold is a z-score: --lambda sets it. */
    if (rule == CLIPNN_CLIP_ZSCORE && s->lambda && !parse_number(s->lambda, &v)) c->z_threshold = v;
    /* The threshold of rules without a lambda is their own parameter. */
    if (!isnan(threshold)) {
        if (rule == CLIPNN_CLIP_VALUE) c->value = threshold;
        else if (rule == CLIPNN_CLIP_PERCENTILE) c->percentile = threshold;
        else if (rule == CLIPNN_CLIP_PROJECT) c->project_radius = threshold;
        else if (rule == CLIPNN_CLIP_ZSCORE) c->z_threshold = threshold;
    }
    return CLI_EXIT_OK;
}

int cli_make_train_options(const char *cmd, const cli_settings *s, clipnn_clip_rule rule,
                           double threshold, clipnn_loss loss, clipnn_train_options *o) {
    *o = clipnn_train_options_default();
    clipnn_status st;
    if ((st = clipnn_opt_kind_parse(s->opt, &o->optim.kind))) return cli_fail(cmd, st, "--opt");
    o->optim.momentum = s->momentum;
    o->optim.nesterov = s->nesterov;
    o->optim.weight_decay = s->wd;
    o->optim.reset_every = s->reset_every;
    o->optim.reset_warmup = s->reset_warmup;
    /* SPAM's reference code adds eps = 1e-6 to sqrt(v). */
    if (o->optim.kind == CLIPNN_OPT_SPAM) o->optim.adam_eps = 1e-6;
    /* The rules that keep their own momentum give the step: plain SGD. */
    if (clipnn_clip_rule_is_optimizer(rule) && o->optim.kind == CLIPNN_OPT_SGD) o->optim.momentum = 0;
    if ((st = clipnn_schedule_parse(s->schedule, &o->schedule))) return cli_fail(cmd, st, "--schedule");
    o->schedule.a0 = s->lr;
    o->loss.loss = loss;
    o->batch = s->batch;
    o->epochs = s->epochs;
    o->steps = s->steps;
    o->replacement = s->replacement;
    o->seed = s->seed;
    if (s->bptt) (void)parse_bptt(s->bptt, &o->bptt_chunk, &o->bptt_steps); /* checked by cli_settings_check */
    o->carry_state = s->carry_state;
    o->log_groups = s->log_groups;
    o->stability_m = s->stability_m;
    o->expected_grad = s->expected_grad;
    (void)clipnn_sampling_parse(s->sampling, &o->sampling); /* checked by cli_settings_check */
    (void)clipnn_clip_where_parse(s->clip_where, &o->clip_where); /* checked by cli_settings_check */
    o->physical_batch = s->physical_batch;
    o->dp_delta = s->delta;
    return make_clip_options(cmd, s, rule, threshold, &o->clip);
}
