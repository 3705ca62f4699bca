/* Weak placeholders for subcommands whose files are still being written;
 * each real cmd_* (a strong symbol) replaces its placeholder. Removed once
 * every command exists. */
#include "cli.h"

#define PENDING(fn, name)                                                     \
    __attribute__((weak)) int fn(int argc, char **argv) {                     \
        (void)argc;                                                           \
        (void)argv;                                                           \
        fprintf(stderr, "clipnn %s: not available in this build\n", name);    \
        return CLI_EXIT_FAILURE;                                              \
    }

PENDING(cmd_train, "train")
PENDING(cmd_eval, "eval")
PENDING(cmd_compare, "compare")
PENDING(cmd_lab, "lab")
PENDING(cmd_attack, "attack")
PENDING(cmd_optimize_input, "optimize-input")
PENDING(cmd_diagnose, "diagnose")
