/* clipnn: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
    {"attack", cmd_attack, "adversarial attacks (FGSM, PGD) and robust accuracy"},
    {"optimize-input", cmd_optimize_input, "optimize a trained network's input"},
    {"diagnose", cmd_diagnose, "explain a zero, vanishing or exploding input gradient"},
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

int main(int argc, char **argv) {
    if (argc < 2) {
        char *train_argv[] = {"train", NULL};
        return cmd_train(1, train_argv);
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("clipnn %s (library %s, BLAS: %s)\n", CLIPNN_VERSION, clipnn_version(), clipnn_blas_name());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clipnn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
