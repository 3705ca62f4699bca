/* clipnn export / clipnn import: a model as PyTorch-named tensors in a
 * safetensors or npz file, and such a file as a checkpoint. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "report.h"

static const char EXPORT_SYNOPSIS[] =
    "--model FILE [--format safetensors|npz] OUT [--json]\n"
    "\n"
    "Writes the model's tensors under PyTorch's names (torch.nn.Sequential indices for the\n"
    "dense layers: 0.weight, 0.bias, 2.weight, ...; rnn.weight_ih_l0, ... for recurrent\n"
    "layers, then head.0.weight, ...) so that load_state_dict takes them, with the layers\n"
    "and the model's data record (scaling statistics, class names, training options and\n"
    "figures) as string metadata. The format defaults to OUT's extension. The training\n"
    "state is not exported. Exit codes: 0 ok, 2 bad option, 3 bad model file, 4 I/O.";

static const char IMPORT_SYNOPSIS[] =
    "IN [--format safetensors|npz] OUT.ckpt [--arch L1-L2-..] [--act A] [--seq-steps T]\n"
    "             [--every-step] [--rnn-relu] [--json]\n"
    "\n"
    "Reads a safetensors or npz file of PyTorch-named tensors (what export writes, or a\n"
    "state_dict saved from PyTorch) and writes a checkpoint that eval, attack, diagnose\n"
    "and optimize-input take. A file written by export says everything, and importing it\n"
    "gives back the exported checkpoint byte for byte (without its training state).\n"
    "Otherwise the layers come from the tensor names and shapes (N.weight, N.bias under\n"
    "any common prefix; weight_ih_lK ... of nn.RNN, LSTM, GRU), the hidden activation\n"
    "from --act and a recurrent model's steps from --seq-steps; --arch, when given, must\n"
    "agree with what the file holds. Exit codes: 0 ok, 2 bad option or an undetermined\n"
    "model, 3 malformed or inconsistent file, 4 I/O.";

/* --format, or the extension of path. */
static int resolve_format(const char *cmd, const char *text, const char *path, clipnn_export_format *f) {
    if (!text) {
        const char *dot = strrchr(path, '.');
        text = dot ? dot + 1 : "";
        if (strcmp(text, "safetensors") && strcmp(text, "npz"))
            return cli_usage_error(cmd, "%s: give --format safetensors or npz (the name does not say)", path);
    }
    clipnn_status st = clipnn_export_format_parse(text, f);
    return st ? cli_fail(cmd, st, "--format") : 0;
}

int cmd_export(int argc, char **argv) {
    const char *cmd = "export", *model = NULL, *format = NULL, *out = NULL;
    int json = 0, n_pos = 0;
    cli_option table[] = {{"--model", CLI_STR, &model, "FILE", "checkpoint to export (required)"},
                          {"--format", CLI_STR, &format, "F", "safetensors | npz (default: from OUT's extension)"},
                          {"--json", CLI_FLAG, &json, NULL, "print one JSON object"},
                          {NULL, 0, NULL, NULL, NULL}};
    int rc = cli_parse(cmd, EXPORT_SYNOPSIS, table, argc, argv, &out, 1, &n_pos);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (!model || n_pos != 1) return cli_usage_error(cmd, "want --model FILE and one OUT file");
    clipnn_export_format f;
    if ((rc = resolve_format(cmd, format, out, &f))) return rc;
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    clipnn_status st = clipnn_checkpoint_load_info(model, &m, NULL, &info);
    if (st) return cli_fail(cmd, st, model);
    st = clipnn_model_export(out, f, m, info);
    if (st) rc = cli_fail(cmd, st, out);
    else if (json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "model", model);
        cli_json_str(&j, "out", out);
        cli_json_str(&j, "format", clipnn_export_format_name(f));
        cli_json_u64(&j, "tensors", clipnn_model_n_groups(m));
        cli_json_u64(&j, "params", clipnn_model_n_params(m));
        cli_json_end(&j);
    } else {
        printf("%s: %zu tensors, %zu parameters -> %s (%s)\n", model, clipnn_model_n_groups(m),
               clipnn_model_n_params(m), out, clipnn_export_format_name(f));
    }
    clipnn_data_info_free(info);
    clipnn_model_free(m);
    return rc;
}

typedef struct {
    const char *format, *arch, *act;
    size_t steps;
    int every_step, rnn_relu, json;
} import_args;

static int import_options(const char *cmd, const import_args *a, clipnn_import_options *o) {
    *o = clipnn_import_options_default();
    o->steps = a->steps;
    o->every_step = a->every_step;
    o->rnn_relu = a->rnn_relu || (a->arch && strstr(a->arch, "rnn_relu:"));
    clipnn_status st = a->act ? clipnn_act_parse(a->act, &o->act) : CLIPNN_OK;
    return st ? cli_fail(cmd, st, "--act") : 0;
}

static int write_imported(const char *cmd, const import_args *a, const char *in, const char *out, clipnn_model *m,
                          const clipnn_data_info *info) {
    char arch[512];
    cli_model_arch(m, 0, arch, sizeof arch);
    if (a->arch && strcmp(a->arch, arch))
        return cli_usage_error(cmd, "%s holds the layers %s, not --arch %s", in, arch, a->arch);
    clipnn_status st = clipnn_checkpoint_save_info(out, m, NULL, info);
    if (st) return cli_fail(cmd, st, out);
    if (a->json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "in", in);
        cli_json_str(&j, "out", out);
        cli_json_str(&j, "arch", arch);
        cli_json_u64(&j, "params", clipnn_model_n_params(m));
        cli_json_bool(&j, "data_record", info != NULL);
        cli_json_end(&j);
    } else {
        printf("%s: layers %s, %zu parameters%s -> %s\n", in, arch, clipnn_model_n_params(m),
               info ? ", with its data record" : "", out);
    }
    return 0;
}

int cmd_import(int argc, char **argv) {
    const char *cmd = "import", *pos[2] = {NULL, NULL};
    import_args a = {0};
    int n_pos = 0;
    cli_option table[] = {
        {"--format", CLI_STR, &a.format, "F", "safetensors | npz (default: from IN's extension)"},
        {"--arch", CLI_STR, &a.arch, "L1-L2-..", "the layers expected (checked), as train's --arch"},
        {"--act", CLI_STR, &a.act, "A", "activation of the hidden dense layers, when the file does not say"},
        {"--seq-steps", CLI_SIZE, &a.steps, "T", "time steps of a recurrent model's input, when the file does not say"},
        {"--every-step", CLI_FLAG, &a.every_step, NULL, "the dense layers read every step (file without metadata)"},
        {"--rnn-relu", CLI_FLAG, &a.rnn_relu, NULL, "one-gate recurrent layers use relu (file without metadata)"},
        {"--json", CLI_FLAG, &a.json, NULL, "print one JSON object"},
        {NULL, 0, NULL, NULL, NULL}};
    int rc = cli_parse(cmd, IMPORT_SYNOPSIS, table, argc, argv, pos, 2, &n_pos);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (n_pos != 2) return cli_usage_error(cmd, "want an IN file and an OUT.ckpt file");
    clipnn_export_format f;
    clipnn_import_options o;
    if ((rc = resolve_format(cmd, a.format, pos[0], &f)) || (rc = import_options(cmd, &a, &o))) return rc;
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    clipnn_status st = clipnn_model_import(pos[0], f, &o, &m, &info);
    if (st) return cli_fail(cmd, st, pos[0]);
    rc = write_imported(cmd, &a, pos[0], pos[1], m, info);
    clipnn_data_info_free(info);
    clipnn_model_free(m);
    return rc;
}
