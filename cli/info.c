/* clipnn info: what a checkpoint holds: architecture, how its inputs were
 * prepared, the training options and the final figures. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "privacy.h"
#include "report.h"

static const char SYNOPSIS[] =
    "MODEL [--json]\n"
    "\n"
    "Prints what the checkpoint MODEL holds: the layers, the data it was trained on\n"
    "(spec, split, scaling with its statistics, class names), the training options and\n"
    "the final figures (what train --save records), and whether it can resume a run.\n"
    "Exit codes: 0 ok, 2 bad option, 3 damaged or foreign file, 4 file not readable.";

/* One line per layer: kind, width, activation. */
static void print_layers(const clipnn_model *m) {
    for (size_t l = 0; l < clipnn_model_n_layers(m); l++) {
        clipnn_layer_kind k = clipnn_model_layer_kind(m, l);
        printf("  layer %zu: %s, width %zu", l, clipnn_layer_kind_name(k), clipnn_model_layer_width(m, l));
        if (k == CLIPNN_LAYER_DENSE) printf(", %s", clipnn_act_name(clipnn_model_layer_act(m, l)));
        putchar('\n');
    }
}

/* A per-feature list shortened to its first values. */
static void print_entry(const char *key, const char *value) {
    size_t len = strlen(value);
    if (len <= 96 && !strchr(value, '\n')) {
        printf("  %s: %s\n", key, value);
        return;
    }
    int shown = 0;
    for (const char *c = value; *c && shown < 72; c++, shown++)
        if (*c == '\n') break;
    size_t items = 1;
    char sep = strchr(value, '\n') ? '\n' : ',';
    for (const char *c = value; *c; c++) items += *c == sep;
    printf("  %s: %.*s... (%zu values)\n", key, shown, value, items);
}

static void print_text(const char *path, const clipnn_model *m, const clipnn_data_info *info, uint64_t steps) {
    char arch[512];
    cli_model_arch(m, 1, arch, sizeof arch);
    clipnn_seq_shape seq = clipnn_model_seq_shape(m);
    printf("%s: layers %s, %zu parameters", path, arch, clipnn_model_n_params(m));
    if (seq.steps) printf(", inputs %zu steps of %zu values%s", seq.steps, seq.step_dim,
                          seq.every_step ? ", an output at every step" : "");
    putchar('\n');
    print_layers(m);
    printf("training state: %s\n", steps ? "yes" : "none");
    if (steps) printf("  steps done: %llu (train --resume continues the run)\n", (unsigned long long)steps);
    size_t n = clipnn_data_info_count(info);
    if (!n) printf("data: not recorded (give eval the --data and --scale of the training run)\n");
    const char *group = "";
    for (size_t i = 0; i < n; i++) {
        const char *value, *key = clipnn_data_info_entry(info, i, &value);
        size_t glen = strcspn(key, ".");
        if (strncmp(group, key, glen) || group[glen] != '.') {
            printf("%.*s:\n", (int)glen, key);
            group = key;
        }
        print_entry(key[glen] ? key + glen + 1 : key, value);
    }
}

static void print_json(const char *path, const clipnn_model *m, const clipnn_data_info *info, uint64_t steps,
                       const clipnn_train_state *st) {
    char arch[512];
    cli_model_arch(m, 1, arch, sizeof arch);
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "model", path);
    cli_json_str(&j, "layers", arch);
    cli_json_u64(&j, "params", clipnn_model_n_params(m));
    cli_json_u64(&j, "inputs", clipnn_model_n_inputs(m));
    cli_json_u64(&j, "steps", clipnn_model_seq_shape(m).steps);
    cli_json_open(&j, "layer", '[');
    for (size_t l = 0; l < clipnn_model_n_layers(m); l++) {
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "kind", clipnn_layer_kind_name(clipnn_model_layer_kind(m, l)));
        cli_json_u64(&j, "width", clipnn_model_layer_width(m, l));
        cli_json_str(&j, "act", clipnn_act_name(clipnn_model_layer_act(m, l)));
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_u64(&j, "trained_steps", steps);
    cli_json_open(&j, "record", '{');
    for (size_t i = 0; i < clipnn_data_info_count(info); i++) {
        const char *value, *key = clipnn_data_info_entry(info, i, &value);
        cli_json_str(&j, key, value);
    }
    cli_json_close(&j, '}');
    cli_privacy_info_json(&j, st);
    cli_json_end(&j);
}

int cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    int json = 0;
    const char *path = NULL;
    cli_option table[] = {{"--json", CLI_FLAG, &json, NULL, "print one JSON object"}, {NULL, 0, NULL, NULL, NULL}};
    int n_pos = 0;
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, &path, 1, &n_pos);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (n_pos != 1) return cli_usage_error(cmd, "want one MODEL file");
    clipnn_model *m = NULL;
    clipnn_train_state *st = NULL;
    clipnn_data_info *info = NULL;
    clipnn_status s = clipnn_checkpoint_load_info(path, &m, &st, &info);
    if (s) return cli_fail(cmd, s, path);
    uint64_t steps = clipnn_train_state_steps(st);
    if (json) print_json(path, m, info, steps, st);
    else print_text(path, m, info, steps);
    if (!json) cli_privacy_info_text(st);
    clipnn_data_info_free(info);
    clipnn_train_state_free(st);
    clipnn_model_free(m);
    return 0;
}
