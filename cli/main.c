/* clipnn: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "signals.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train a model (MLP or recurrent) with clipped SGD"},
    {"eval", cmd_eval, "evaluate a saved model on a dataset"},
    {"compare", cmd_compare, "train the same model with each clipping rule, one row per rule"},
    {"lab", cmd_lab, "run the theory lab: every claim of the paper and exercise, with a verdict"},
    {"attack", cmd_attack, "adversarial attacks (FGSM, PGD, APGD-CE, APGD-DLR), robust accuracy, --check"},
    {"optimize-input", cmd_optimize_input, "optimize a trained network's input"},
    {"diagnose", cmd_diagnose, "explain a zero, vanishing or exploding input gradient"},
    {"info", cmd_info, "what a checkpoint holds: layers, data and scaling, training options, figures"},
    {"export", cmd_export, "write a model as PyTorch-named tensors (safetensors or npz)"},
    {"import", cmd_import, "read PyTorch-named tensors (safetensors or npz) into a checkpoint"},
    {"report", cmd_report, "an HTML report of a run from its CSV logs"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: clipnn COMMAND [OPTIONS]   (clipnn COMMAND --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nWith no command, 'clipnn' is 'clipnn train' on the built-in digits.\n"
               "'clipnn --version' prints the version of the tool and of its library.\n");
}

static int unknown_command(const char *name) {
    const char *names[sizeof commands / sizeof commands[0]];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) names[i] = commands[i].name;
    char line[512];
    snprintf(line, sizeof line, "clipnn: unknown command '%.200s'%s", name,
             cli_did_you_mean(name, names, sizeof commands / sizeof commands[0]));
    fprintf(stderr, "%s\n", line);
    cli_note_error(line);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

static int has_json(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json")) return 1;
    return 0;
}

static int print_version(int json) {
    if (!json) {
        printf("clipnn %s (library %s, BLAS: %s)\n", CLIPNN_VERSION, clipnn_version(), clipnn_blas_name());
        return 0;
    }
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "version", CLIPNN_VERSION);
    cli_json_str(&j, "library", clipnn_version());
    cli_json_str(&j, "blas", clipnn_blas_name());
    cli_json_end(&j);
    return 0;
}

/* The command argv[1] (argc >= 2), --help or --version. */
static int run_command(int argc, char **argv, int json) {
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) return print_version(json);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    return unknown_command(argv[1]);
}

/* train joins an MPI job (a build with MPI); a process that fails ends the
 * job. A run stopped by a signal is no failure: every process agreed on the
 * step, process 0 saved it, and all end normally (exit 130). A run that
 * trained says how long it spent in the all-reduces. */
static int run_in_job(int argc, char **argv, int json) {
    clipnn_status st = clipnn_dist_init(&argc, &argv);
    if (st) { /* a bad CLIPNN_ALLREDUCE_BUCKET_MB is a usage error */
        fprintf(stderr, "clipnn train: %s\n", clipnn_last_error());
        return st == CLIPNN_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    /* Process 0 alone prints results (and warnings, the same on every process): the others, errors. */
    if (clipnn_dist_rank() > 0) cli_log_no_warnings();
    if (clipnn_dist_rank() > 0 && cli_stdout_to_null())
        fprintf(stderr, "clipnn train: process %d: cannot send its stdout to /dev/null\n", clipnn_dist_rank());
    int rc = json ? cli_json_mode_end("train", run_command(argc, argv, 1)) : run_command(argc, argv, 0);
    if (rc && rc != CLI_EXIT_INTERRUPTED && clipnn_dist_size() > 1) clipnn_dist_abort(rc, "clipnn train failed");
    if (clipnn_dist_rank() == 0 && clipnn_dist_available() && (rc == 0 || rc == CLI_EXIT_INTERRUPTED))
        fprintf(stderr, "clipnn train: %d process%s, %.3f s of process 0 in the gradient all-reduces, load imbalance "
                "%.1f%%\n", clipnn_dist_size(), clipnn_dist_size() > 1 ? "es" : "", clipnn_dist_reduce_seconds(),
                100 * clipnn_dist_imbalance());
    if (clipnn_dist_rank() == 0 && clipnn_dist_last_buckets() > 0)
        fprintf(stderr, "clipnn train: the last step's gradient summed in %d buckets during the backward\n",
                clipnn_dist_last_buckets());
    clipnn_dist_finalize();
    return rc;
}

int main(int argc, char **argv) {
    if (clipnn_dist_available() && argc >= 2 && !strcmp(argv[1], "train")) {
        int json = has_json(argc, argv), rc = json ? cli_json_mode_begin() : 0;
        return rc ? rc : run_in_job(argc, argv, json);
    }
    if (argc >= 2 && has_json(argc, argv)) {
        /* one JSON document on stdout, whatever the command prints or fails with */
        int rc = cli_json_mode_begin();
        if (rc) return rc;
        return cli_json_mode_end(argv[1][0] == '-' ? "clipnn" : argv[1], run_command(argc, argv, 1));
    }
    if (argc < 2) {
        char *train_argv[] = {"train", NULL};
        return cmd_train(1, train_argv);
    }
    return run_command(argc, argv, 0);
}
