/* clipnn train: train a model (an MLP, or recurrent layers and dense ones) with clipped SGD on a dataset. */
#include <errno.h>
#include <libgen.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "auto_lambda.h"
#include "options.h"
#include "privacy.h"
#include "rec_log.h"
#include "recorded.h"
#include "report.h"
#include "resume_opts.h"
#include "run_report.h"
#include "runctl.h"
#include "signals.h"

static const char SYNOPSIS[] =
    "[--data SPEC] [--arch 64-32-10|lstm:128-10] [--act tanh] [--loss xent|mse|bce]\n"
    "             [--seq-steps T] [--every-step] [--rec-init torch|orthogonal|scaled|sparse] [--rec-radius R]\n"
    "             [--rec-connections K]\n"
    "             [--opt sgd|adam] [--lr A0] [--momentum B] [--nesterov] [--wd W]\n"
    "             [--schedule const|rm:T0,P|step:EVERY,GAMMA|cosine] [--batch M]\n"
    "             [--epochs N | --steps N] [--bptt K1[,K2]] [--carry-state]\n"
    "             [--clip RULE] [--lambda L|auto[:Q]] [--eps E] [--p P]\n"
    "             [--seed S] [--threads N] [--save FILE] [--log FILE.csv] [--json] [--quiet]\n"
    "             [--resume FILE] [--save-every N|Ne] [--log-epochs FILE.csv]\n"
    "             [--progress auto|bar|lines|none] [--report DIR]\n"
    "\n"
    "Trains a model (hidden dense layers --act, output layer identity; recurrent layers\n"
    "first when --arch names them) with the clipped step theta <- theta - a(t) g / c(t)\n"
    "of the paper (eq. 10) and the chosen clipping rule.\n"
    "--log writes one CSV row per step: step,lr,loss,pre_norm,post_norm,c,clipped,skipped,\n"
    "theta_norm,dist_from_start,sum_lr,sum_lr2,det_bound,lemma1_bound,batch_size,epsilon (det_bound =\n"
    "lambda * sum a(t); lemma1_bound = 2 exp(-2 M^2 / (sum a^2 lambda^2)) with --stability-m M;\n"
    "epsilon of a private run, else nan).\n"
    "--log-groups adds FILE.groups.csv (FILE.csv without .csv): step,group,layer,tensor,\n"
    "pre_norm,post_norm,factor, one row per step per parameter group (W and b of a dense layer,\n"
    "W_ih, W_hh, b_ih and b_hh of a recurrent one):\n"
    "post_norm is the group's norm in the gradient the update used, factor the rule's c(t)\n"
    "for the global rules, the group's own for norm-group and adaptive-layer, pre/post else.\n"
    "Recurrent models: --log-radius-every N adds FILE.radius.csv (step,layer,gate,radius: the\n"
    "spectral radius of each gate block of W_hh every N steps); --log-time-grad every:N|S1,S2,...\n"
    "adds FILE.time.csv (step,layer,t,norm: ||d loss / d h_t|| for t = 1..T at those steps).\n"
    "--lambda auto[:Q] sets lambda to the Q-quantile (default 0.5, the median) of the pre-clip\n"
    "gradient norms of --auto-steps (100) unclipped steps from the same start and batches, at\n"
    "step size --auto-lr (default 0: the norms at the initial parameters), then trains.\n"
    "--save writes the model and the training state (optimizer, clipping state, batch\n"
    "order, step count); --resume FILE continues that run and follows the trajectory an\n"
    "uninterrupted run would have: the options not given are the saved run's (its rule,\n"
    "step size, batch, seed, data, --epochs/--steps ...); a given one that would change the\n"
    "trajectory is refused, naming both values (--force: continue with it, a warning);\n"
    "--epochs/--steps (counting the whole run), the logs, --threads and --save may change;\n"
    "the architecture comes from FILE. --save-every N (steps) or Ne\n"
    "(epochs) also saves the run there as it goes. SIGINT (Ctrl-C) or SIGTERM ends the\n"
    "run after the current step and saves it (to --save, else to clipnn-interrupted.ckpt,\n"
    "named on stderr) for --resume, exit code 130; a second one ends the tool at once.\n"
    "--log-epochs writes one CSV row per epoch: epoch,train_loss,train_acc,test_loss,\n"
    "test_acc,clipped_frac,seconds,lr (docs/formats.md); --json adds them as \"epochs\".\n"
    "--progress: a bar within the epoch on a terminal, one line per epoch otherwise (auto).\n"
    "--report DIR writes DIR/index.html, the run in charts (docs/reports.md).\n"
    "--bptt and --carry-state train recurrent layers on chunks of steps and on streams\n"
    "(docs/recurrent.md).\n"
    "--clip per-sample with --noise S or --target-epsilon E is DP-SGD: Poisson sampling by default,\n"
    "the (epsilon, delta) spent on stderr every epoch and in the summary, with the sampling the\n"
    "guarantee rests on (docs/privacy.md).\n"
    "--json: the last line of stdout is one JSON object (non-finite numbers as null).\n"
    "Environment: CLIPNN_MAX_MEMORY and CLIPNN_MAX_INPUT_BYTES (limits, docs/reliability.md);\n"
    "in an MPI build (mpirun -np N), CLIPNN_ALLREDUCE_BUCKET_MB (docs/distributed.md).\n"
    "Exit codes: 0 ok, 1 training diverged or failed, 2 bad option, 3 bad input file,\n"
    "4 file not readable/writable, 5 out of memory, 130 stopped by a signal (run saved).";

typedef struct {
    cli_steplog *log;
    cli_runctl run; /* progress, epoch history, periodic saves, stop on a signal */
    cli_rec_log *rec_log;
    const clipnn_model *m;
    int quiet; /* no privacy line per epoch */
    cli_runlog *runlog; /* --report */
    int runlog_failed;
} train_ctx;

static void on_step(const clipnn_step_record *r, void *user) {
    train_ctx *ctx = user;
    if (ctx->log) cli_steplog_row(ctx->log, r);
    if (ctx->rec_log) cli_rec_log_row(ctx->rec_log, ctx->m, r);
    cli_runctl_step(&ctx->run, r);
    if (ctx->runlog && cli_runlog_step(ctx->runlog, r)) ctx->runlog_failed = 1;
}

static void on_epoch(const clipnn_epoch_record *r, void *user) {
    train_ctx *ctx = user;
    cli_runctl_epoch(&ctx->run, r);
    /* the progress line carries epsilon; without one, a line of its own */
    if (!ctx->quiet && ctx->run.progress.mode == CLI_PROGRESS_NONE && !isnan(r->epsilon))
        cli_privacy_epoch("train", r);
}

static int control(void *user) {
    train_ctx *ctx = user;
    return cli_runctl_control(&ctx->run);
}

static void on_save(const clipnn_model *m, const clipnn_train_state *state, void *user) {
    train_ctx *ctx = user;
    if (clipnn_dist_rank() > 0) return; /* in a job, process 0 writes the checkpoints */
    cli_runctl_save(&ctx->run, m, state);
}

/* "run.csv" -> "run.groups.csv"; anything else gets ".groups.csv" appended. */
static char *groups_path_for(const char *log) { return cli_log_side_path(log, ".groups.csv"); }

static void print_json(const cli_settings *s, const char *arch, const clipnn_dataset *train,
                       const clipnn_dataset *test, clipnn_loss loss, const clipnn_train_options *o,
                       const clipnn_train_result *r, const char *saved, size_t n_params,
                       const cli_history *history) {
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_num(&j, "test_accuracy", r->test_accuracy);
    cli_json_num(&j, "test_loss", r->test_loss);
    cli_json_num(&j, "train_loss", r->train_loss);
    cli_json_u64(&j, "steps", r->steps);
    cli_json_num(&j, "seconds", r->seconds);
    cli_json_bool(&j, "diverged", r->diverged);
    if (r->diverged) cli_json_u64(&j, "diverged_step", r->diverged_step);
    else cli_json_null(&j, "diverged_step");
    cli_json_num(&j, "clipped_fraction", r->clipped_fraction);
    cli_json_u64(&j, "skipped_steps", r->skipped_steps);
    cli_json_num(&j, "max_dist_from_start", r->max_dist_from_start);
    if (o->expected_grad) {
        cli_json_num(&j, "expected_clipped_grad_norm", r->expected_clipped_grad_norm);
        cli_json_num(&j, "mean_grad_norm", r->mean_grad_norm);
    }
    cli_json_str(&j, "data", s->data);
    cli_json_u64(&j, "n_train", cli_whole_rows(train));
    cli_json_u64(&j, "n_test", test ? clipnn_dataset_n(test) : 0);
    cli_json_u64(&j, "inputs", clipnn_dataset_dim(train));
    cli_json_str(&j, "arch", arch);
    cli_json_str(&j, "act", s->act);
    cli_json_u64(&j, "params", n_params);
    cli_json_str(&j, "loss", clipnn_loss_name(loss));
    cli_json_str(&j, "opt", s->opt);
    cli_json_num(&j, "lr", s->lr);
    cli_json_num(&j, "momentum", s->momentum);
    cli_json_str(&j, "schedule", s->schedule);
    cli_json_u64(&j, "batch", s->batch);
    if (s->bptt) cli_json_str(&j, "bptt", s->bptt);
    if (s->carry_state) cli_json_bool(&j, "carry_state", 1);
    cli_json_str(&j, "rule", clipnn_clip_rule_name(o->clip.rule));
    cli_json_num(&j, "lambda", cli_rule_threshold(&o->clip));
    if (o->clip.auto_quantile > 0) cli_json_num(&j, "lambda_auto_quantile", o->clip.auto_quantile);
    if (o->clip.auto_quantile > 0) cli_json_u64(&j, "lambda_auto_steps", o->clip.auto_steps);
    cli_json_num(&j, "p", o->clip.p);
    cli_json_u64(&j, "seed", s->seed);
    cli_json_u64(&j, "threads", (uint64_t)clipnn_get_threads());
    cli_json_str(&j, "saved", saved);
    cli_privacy_json(&j, o, r);
    cli_json_bool(&j, "interrupted", r->stopped);
    cli_history_json(history, &j);
    cli_json_end(&j);
}

static void print_text(const char *arch, const clipnn_dataset *train, const clipnn_train_options *o,
                       const clipnn_train_result *r, const char *saved) {
    printf("%s: %zu inputs, model %s, rule %s\n", clipnn_dataset_name(train), clipnn_dataset_dim(train), arch,
           clipnn_clip_rule_name(o->clip.rule));
    if (r->diverged) printf("diverged at step %llu\n", (unsigned long long)r->diverged_step);
    printf("test accuracy %.4f  test loss %.4g  train loss %.4g\n", r->test_accuracy, r->test_loss,
           r->train_loss);
    printf("steps %llu  %.2f s  clipped %.1f%%  skipped %llu  max ||theta - theta0|| %.4g%s\n",
           (unsigned long long)r->steps, r->seconds, 100.0 * r->clipped_fraction,
           (unsigned long long)r->skipped_steps, r->max_dist_from_start,
           o->record_params == CLIPNN_RECORD_EPOCH_ENDS ? " (at epoch ends)" : "");
    if (o->expected_grad)
        printf("||H(theta)|| = ||mean g/c|| %.4g   ||mean g|| %.4g\n", r->expected_clipped_grad_norm,
               r->mean_grad_norm);
    cli_privacy_text(o, r);
    if (saved) printf("saved %s\n", saved);
}

/* The command line of one training run. */
typedef struct {
    cli_settings s;
    const char *save, *log, *resume, *report;
    int json, quiet;
    uint64_t radius_every;  /* --log-radius-every */
    const char *time_grad;  /* --log-time-grad */
    clipnn_clip_rule rule;
    const char *log_epochs, *progress, *save_every;
    cli_progress_mode progress_mode;
    cli_save_every every;
    uint64_t auto_steps;    /* --auto-steps, the warm-up of --lambda auto */
    double auto_lr;         /* --auto-lr, its step size */
} train_args;

enum {
    TRAIN_GROUPS = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_MODEL | CLI_OPTS_OPTIM | CLI_OPTS_CLIP_RULE |
                   CLI_OPTS_CLIP_PARAMS | CLI_OPTS_TELEMETRY
};

static void train_option_table(train_args *a, cli_option *table) {
    size_t n = 0;
    cli_settings_options(&a->s, TRAIN_GROUPS, table, &n);
    table[n++] = (cli_option){"--save", CLI_STR, &a->save, "FILE", "write the trained model (atomically)"};
    table[n++] = (cli_option){"--resume", CLI_STR, &a->resume, "FILE", "continue the run saved in FILE by --save"};
    table[n++] = (cli_option){"--force", CLI_FLAG, &a->s.force, NULL,
                              "--resume: continue with the options given where they differ from the saved run's"};
    table[n++] = (cli_option){"--auto-steps", CLI_U64, &a->auto_steps, "N",
                              "--lambda auto[:Q]: unclipped warm-up steps whose pre-clip norms give lambda (their "
                              "Q-quantile, default the median)"};
    table[n++] = (cli_option){"--auto-lr", CLI_DOUBLE, &a->auto_lr, "A",
                              "--lambda auto: the warm-up's step size (0: the norms at the initial parameters)"};
    table[n++] = (cli_option){"--log", CLI_STR, &a->log, "FILE.csv", "per-step CSV log"};
    table[n++] = (cli_option){"--log-radius-every", CLI_U64, &a->radius_every, "N",
                              "recurrent: FILE.radius.csv, W_hh's spectral radius every N steps"};
    table[n++] = (cli_option){"--log-time-grad", CLI_STR, &a->time_grad, "every:N|S1,...",
                              "recurrent: FILE.time.csv, ||d loss / d h_t|| for every t at those steps"};
    table[n++] = (cli_option){"--report", CLI_STR, &a->report, "DIR", "write DIR/index.html: the run in charts"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "end stdout with one JSON summary line"};
    table[n++] = (cli_option){"--quiet", CLI_FLAG, &a->quiet, NULL, "no progress (as --progress none)"};
    table[n++] = (cli_option){"--progress", CLI_STR, &a->progress, "MODE",
                              "auto, bar (within the epoch), lines (one per epoch) or none"};
    table[n++] = (cli_option){"--log-epochs", CLI_STR, &a->log_epochs, "FILE.csv", "per-epoch CSV history"};
    table[n++] = (cli_option){"--save-every", CLI_STR, &a->save_every, "N|Ne",
                              "also save the run to --save every N steps (Ne: N epochs)"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

static int check_train_args(const char *cmd, train_args *a, int argc, char **argv) {
    int rc = cli_settings_check(cmd, &a->s, TRAIN_GROUPS, argc, argv);
    if (rc) return rc;
    clipnn_status st = clipnn_clip_rule_parse(a->s.clip, &a->rule);
    if (st) return cli_fail(cmd, st, "--clip");
    if (a->s.force && !a->resume) return cli_usage_error(cmd, "--force goes with --resume FILE");
    if (a->s.log_groups && !a->log && !a->report)
        return cli_usage_error(cmd, "--log-groups needs --log FILE.csv or --report DIR");
    if ((rc = cli_progress_parse(cmd, a->progress, &a->progress_mode))) return rc;
    if (a->save_every && (rc = cli_save_every_parse(cmd, a->save_every, &a->every))) return rc;
    if (a->save_every && !a->save) return cli_usage_error(cmd, "--save-every needs --save FILE");
    /* before any training: a directory, FIFO, link to nothing, a name past the limits, no write permission */
    if ((rc = cli_check_out_file(cmd, "--save", a->save))) return rc;
    if ((rc = cli_check_out_file(cmd, "--log", a->log))) return rc;
    if ((rc = cli_check_out_file(cmd, "--log-epochs", a->log_epochs))) return rc;
    if ((rc = cli_check_out_dir(cmd, "--report", a->report))) return rc;
    if (a->s.target_epsilon > 0 && cli_argv_has(argc, argv, "--noise"))
        return cli_usage_error(cmd, "--target-epsilon chooses the noise: no --noise");
    double quantile;
    if ((a->s.target_epsilon > 0 || a->s.noise > 0) && cli_lambda_auto(a->s.lambda, &quantile) == 1)
        return cli_usage_error(cmd, "--lambda auto reads the training data's gradients, which the privacy "
                               "guarantee does not cover: give C as a number");
    if (a->resume && (cli_argv_has(argc, argv, "--arch") || cli_argv_has(argc, argv, "--act") ||
                      cli_argv_has(argc, argv, "--init")))
        return cli_usage_error(cmd, "--resume takes the model from the checkpoint: no --arch, --act or --init");
    return 0;
}

/* One run: data, model, training state, log, options. */
typedef struct {
    train_args a;
    clipnn_dataset *train, *test;
    clipnn_model *m;
    clipnn_train_state *state;
    clipnn_data_info *info; /* the data, options and figures saved with the model */
    cli_steplog steplog;
    cli_rec_log rec_log;
    char *groups_path;
    char arch[256];
    clipnn_loss loss;
    clipnn_train_options o;
    train_ctx ctx;
    char stop_path[64]; /* where a run stopped on request without --save goes */
    cli_runlog runlog;
} train_run;

/* --resume, before the options are checked: the model, state and record
 * from the checkpoint; the options not given are the saved run's, a given
 * one that changes its trajectory is refused (resume_opts.h). */
static int resume_load(const char *cmd, train_run *r, int argc, char **argv) {
    clipnn_data_info *saved = NULL;
    clipnn_status st = clipnn_checkpoint_load_info(r->a.resume, &r->m, &r->state, &saved);
    if (st) return cli_fail(cmd, st, "--resume");
    int rc = cli_recorded_use(cmd, r->a.resume, saved, &r->a.s, argc, argv);
    return rc ? rc : cli_resume_options(cmd, r->a.resume, saved, r->state, &r->a.s, argc, argv);
}

/* --resume: the architecture and activation reported are the checkpoint's. */
static int resume_model(train_run *r) {
    cli_model_arch(r->m, 0, r->arch, sizeof r->arch);
    if (clipnn_model_n_layers(r->m) > 1) r->a.s.act = clipnn_act_name(clipnn_model_layer_act(r->m, 0));
    return 0;
}

/* A new model, and a state to save with it (with --save, or when a signal
 * stops the run). */
static int new_model(const char *cmd, train_run *r) {
    int rc = cli_build_model(cmd, &r->a.s, r->train, r->loss, &r->o, &r->m, r->arch, sizeof r->arch);
    if (rc) return rc;
    clipnn_status st = clipnn_train_state_create(&r->state);
    return st ? cli_fail(cmd, st, "training state") : 0;
}

static int open_log(const char *cmd, train_run *r) {
    const char *log = r->a.log;
    if (!log) return cli_rec_log_open(&r->rec_log, cmd, NULL, r->m, r->a.radius_every, r->a.time_grad, &r->o);
    if (r->a.s.log_groups && !(r->groups_path = groups_path_for(log))) return CLI_EXIT_NOMEM;
    int rc = cli_steplog_open(&r->steplog, cmd, log, r->groups_path, r->m);
    return rc ? rc : cli_rec_log_open(&r->rec_log, cmd, log, r->m, r->a.radius_every, r->a.time_grad, &r->o);
}

/* Data, model, options, log, and the callbacks. */
static int prepare(const char *cmd, train_run *r) {
    int rc = cli_load_data_info(cmd, &r->a.s, &r->train, &r->test, &r->info);
    if (!rc) rc = cli_resolve_loss(cmd, &r->a.s, r->train, &r->loss);
    if (!rc) rc = cli_make_train_options(cmd, &r->a.s, r->a.rule, NAN, r->loss, &r->o);
    if (!rc) rc = r->a.resume ? resume_model(r) : new_model(cmd, r);
    if (!rc)
        rc = cli_auto_lambda(cmd, &r->a.s, r->a.auto_steps, r->a.auto_lr, r->m, r->train, r->state, r->a.resume, &r->o,
                             !r->a.json);
    if (!rc && r->a.s.target_epsilon > 0)
        rc = cli_privacy_target(cmd, r->a.s.target_epsilon, cli_whole_rows(r->train), &r->o);
    if (!rc) rc = cli_record_options(cmd, r->info, &r->a.s, r->arch, &r->o); /* --save-every's checkpoints too */
    if (!rc) rc = open_log(cmd, r);
    if (rc) return rc;
    r->ctx.log = r->a.log ? &r->steplog : NULL;
    r->ctx.rec_log = &r->rec_log;
    r->ctx.m = r->m;
    r->ctx.quiet = r->a.quiet;
    if (r->a.report && (rc = cli_train_runlog(&r->runlog, r->m, &r->o))) return rc;
    if (r->a.report) r->ctx.runlog = &r->runlog;
    rc = cli_runctl_open(&r->ctx.run, cmd, cli_progress_resolve(r->a.progress_mode, r->a.quiet),
                         cli_whole_rows(r->train), r->a.log_epochs, r->a.every, r->a.save);
    if (rc) return rc;
    r->ctx.run.info = r->info;
    /* Always set: the library tracks max ||theta - theta0|| while it fills
     * the per-step record. The distance from theta0 costs the update a
     * stream of theta0: taken at every step only for the logs that show
     * it (--log, --report), else at the epochs' ends. */
    r->o.on_step = on_step;
    r->o.record_params = r->a.log || r->a.report ? CLIPNN_RECORD_EVERY_STEP : CLIPNN_RECORD_EPOCH_ENDS;
    /* only the per-step log reads the pre-clip norms */
    r->o.per_sample_skip_pre_norm = !r->a.log;
    r->o.on_epoch = on_epoch;
    r->o.control = control;
    r->o.on_save = on_save;
    r->o.user = &r->ctx;
    r->o.state = r->state;
    return 0;
}

/* A free name in the current directory for a run stopped on request
 * without --save: clipnn-interrupted.ckpt, else -2, -3, ... */
static const char *stop_path(char *buf, size_t cap) {
    snprintf(buf, cap, "clipnn-interrupted.ckpt");
    for (int i = 2; i < 100 && access(buf, F_OK) == 0; i++) snprintf(buf, cap, "clipnn-interrupted-%d.ckpt", i);
    return buf;
}

/* The checkpoint with the training state: to --save, or for a run stopped
 * on request to a default name; none for a run that diverged. */
static int save_model(const char *cmd, train_run *r, const clipnn_train_result *res, const char **saved) {
    const char *path = r->a.save;
    if (res->diverged || clipnn_dist_rank() > 0) return 0;
    if (!path && res->stopped) path = stop_path(r->stop_path, sizeof r->stop_path);
    if (!path) return 0;
    int rc = cli_record_run(cmd, r->info, &r->a.s, r->arch, &r->o, res);
    if (rc) return rc;
    clipnn_status st = clipnn_checkpoint_save_info(path, r->m, r->state, r->info);
    if (st) return cli_fail(cmd, st, r->a.save ? "--save" : path);
    *saved = path;
    return 0;
}

/* The logs closed first: whole rows, even when a second signal ends the
 * save; a log that failed keeps nothing from being saved. */
static int close_logs(const char *cmd, train_run *r) {
    int rc = r->a.log ? cli_steplog_close(&r->steplog, cmd) : 0;
    int rc2 = cli_runctl_close_logs(&r->ctx.run);
    int rc3 = cli_rec_log_close(&r->rec_log, cmd);
    return rc ? rc : rc2 ? rc2 : rc3;
}

static void say_stopped(const char *cmd, const clipnn_train_result *res, const char *saved) {
    fprintf(stderr, "clipnn %s: stopped by %s after %llu steps; the run is saved in %s: continue it with "
            "--resume %s (the options are saved with it)\n", cmd, cli_stop_signal_name(cli_stop_requested()),
            (unsigned long long)res->steps, saved, saved);
}

/* After training: the logs closed, the model saved (unless it diverged),
 * the report (a training loss that did not stay finite as null). Exit
 * code: a divergence 1, then a failed save, log or periodic save, then a
 * stop on request 130. */
static int finish(const char *cmd, train_run *r, const clipnn_train_result *res) {
    const train_args *a = &r->a;
    int log_rc = close_logs(cmd, r);
    const char *saved = NULL;
    int save_rc = save_model(cmd, r, res, &saved);
    if (a->json)
        print_json(&a->s, r->arch, r->train, r->test, r->loss, &r->o, res, saved, clipnn_model_n_params(r->m),
                   &r->ctx.run.history);
    else
        print_text(r->arch, r->train, &r->o, res, saved);
    if (res->diverged) {
        fprintf(stderr, "clipnn train: training diverged at step %llu (non-finite loss, gradient or parameters)%s\n",
                (unsigned long long)res->diverged_step, a->save ? "; model not saved" : "");
        return CLI_EXIT_FAILURE;
    }
    if (res->stopped && saved) say_stopped(cmd, res, saved);
    int rc = save_rc ? save_rc : log_rc ? log_rc : r->ctx.run.save_failed;
    return rc ? rc : res->stopped ? CLI_EXIT_INTERRUPTED : 0;
}

/* --report: written after the model is saved, whatever became of the run;
 * a report that cannot be written is an error that keeps the model. */
static int finish_with_report(const char *cmd, train_run *r, const clipnn_train_result *res) {
    int rc = finish(cmd, r, res);
    if (!r->a.report) return rc;
    cli_train_info info = {&r->a.s, r->arch, r->train, r->test, &r->o, res, clipnn_model_n_params(r->m),
                           &r->ctx.run.history};
    int rc_report = r->ctx.runlog_failed ? cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report")
                                         : cli_train_report(cmd, r->a.report, &r->runlog, &info);
    return rc ? rc : rc_report;
}

/* The signals stop the run only while it trains; a second one, or one
 * during the final save, ends the tool (the checkpoint is written
 * atomically: the file is the old one or the new one, whole). */
static int train_and_report(const char *cmd, train_run *r) {
    clipnn_train_result res;
    if (cli_stop_install() && clipnn_dist_rank() == 0)
        fprintf(stderr, "clipnn %s: warning: SIGINT and SIGTERM will not save the run\n", cmd);
    clipnn_status st = cli_train(r->m, r->train, r->test, &r->o, &res);
    cli_stop_restore();
    if (!st) return finish_with_report(cmd, r, &res);
    cli_runctl_close_logs(&r->ctx.run);
    return cli_fail(cmd, st, "training");
}

/* In a job, every process but 0 trains without logs, reports or progress
 * (its stdout goes nowhere: main). */
static void quiet_worker(train_args *a) {
    a->log = a->log_epochs = a->report = NULL;
    a->quiet = 1;
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    train_run r;
    memset(&r, 0, sizeof r);
    cli_settings_default(&r.a.s, CLI_MODE_TRAIN);
    /* About three epochs of the digits at batch 32: enough norms for a
     * quantile, a small part of a run. */
    r.a.auto_steps = 100;
    /* auto_lr 0: an unclipped warm-up at a step size that needs clipping
     * diverges within a few steps (the digits at lr 4: the norm grows from
     * 2.2 to 5e3 in 10 steps, a median of 2e16 over 100), so by default it
     * measures the minibatch gradients at the initial parameters. */
    r.a.progress = "auto";
    cli_option table[CLI_MAX_OPTIONS];
    train_option_table(&r.a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (r.a.resume) rc = resume_load(cmd, &r, argc, argv);
    if (!rc) rc = check_train_args(cmd, &r.a, argc, argv);
    if (!rc) {
        if (clipnn_dist_rank() > 0) quiet_worker(&r.a);
        clipnn_set_threads(r.a.s.threads);
        rc = prepare(cmd, &r);
    }
    if (!rc) rc = train_and_report(cmd, &r);
    if (r.steplog.f) cli_steplog_close(&r.steplog, cmd);
    cli_rec_log_close(&r.rec_log, cmd);
    cli_runctl_free(&r.ctx.run);
    cli_runlog_free(&r.runlog);
    free(r.groups_path);
    clipnn_train_state_free(r.state);
    clipnn_data_info_free(r.info);
    clipnn_model_free(r.m);
    clipnn_dataset_free(r.train);
    clipnn_dataset_free(r.test);
    cli_recorded_free();
    return rc;
}
