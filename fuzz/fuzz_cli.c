/* The tool's option parser: the input, split at NUL bytes, is the argument
 * list of `clipnn train` over the shared option table (data, model,
 * optimizer, clipping and telemetry groups); what parses is checked as the
 * tool checks it, --arch is parsed against a small data set, and the
 * training options are made for every clipping rule. Built with the tool's
 * objects (cli/), its main renamed. */
#include "cli/options.h"
#include <math.h>

#include "fuzz.h"

enum { FUZZ_MAX_ARGS = 64 };

static clipnn_dataset *data;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, y[4] = {0, 1, 0, 1};
    if (clipnn_dataset_from_arrays(x, y, 4, 2, 2, 1, &data)) abort();
    return 0;
}

/* The parsed settings as the tool turns them into a model and options. */
static void use_settings(const cli_settings *s, unsigned groups, int argc, char **argv) {
    if (cli_settings_check("train", s, groups, argc, argv)) return;
    clipnn_loss loss;
    if (cli_resolve_loss("train", s, data, &loss)) return;
    clipnn_layer_spec layers[CLI_MAX_LAYERS];
    size_t n_layers;
    (void)cli_parse_arch("train", s, data, loss, layers, &n_layers);
    for (int r = 0; r < CLIPNN_CLIP_COUNT; r++) {
        clipnn_train_options o;
        (void)cli_make_train_options("train", s, (clipnn_clip_rule)r, NAN, loss, &o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, bytes, size);
    text[size] = 0;
    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = "train";
    for (size_t i = 0; i <= size && argc < FUZZ_MAX_ARGS; i += strlen(text + i) + 1) argv[argc++] = text + i;
    argv[argc] = NULL;
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_TRAIN);
    unsigned groups = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_MODEL | CLI_OPTS_OPTIM | CLI_OPTS_CLIP_RULE |
                      CLI_OPTS_CLIP_PARAMS | CLI_OPTS_TELEMETRY;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    cli_settings_options(&s, groups, table, &n);
    table[n] = (cli_option){NULL, CLI_STR, NULL, NULL, NULL};
    const char *positional[2];
    int n_positional = 0;
    if (cli_parse("train", "", table, argc, argv, positional, 2, &n_positional) == 0)
        use_settings(&s, groups, argc, argv);
    free(text);
    return 0;
}
