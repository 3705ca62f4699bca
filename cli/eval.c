/* clipnn eval: loss and accuracy of a saved model on a dataset. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE [--data SPEC] [--json]\n"
    "\n"
    "Evaluates a model saved by 'clipnn train --save FILE' on the test part of the data\n"
    "(--split train for the training part). The data are loaded exactly as train loads\n"
    "them: give the same --data, --scale, --test-fraction and --data-seed to see the\n"
    "accuracy the training run reported. Exit codes: 0 ok, 2 bad option, 3 damaged or\n"
    "foreign model file or data that do not fit the model, 4 file not readable.";

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_EVAL);
    const char *model_path = NULL, *split = "test";
    int json = 0;
    const unsigned groups = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_THREADS;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&s, groups, table, &n);
    table[n++] = (cli_option){"--split", CLI_STR, &split, "PART", "test | train"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &json, NULL, "end stdout with one JSON summary line"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};

    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (!model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error(cmd, "--split '%s': want test or train", split);
    if ((rc = cli_settings_check(cmd, &s, groups, argc, argv))) return rc;
    clipnn_set_threads(s.threads);

    clipnn_model *m = NULL;
    clipnn_status st = clipnn_model_load(model_path, &m);
    if (st) return cli_fail(cmd, st, model_path);
    clipnn_dataset *train = NULL, *test = NULL;
    if ((rc = cli_load_data(cmd, &s, &train, &test))) goto done;
    const clipnn_dataset *d = strcmp(split, "train") == 0 ? train : test;
    if (!d) {
        rc = cli_usage_error(cmd, "--data %s has no test part", s.data);
        goto done;
    }
    clipnn_loss_options lo = clipnn_loss_options_default();
    if ((rc = cli_resolve_loss(cmd, &s, d, &lo.loss))) goto done;
    double loss = 0, acc = 0;
    double t0 = cli_now();
    st = clipnn_evaluate(m, d, &lo, &loss, &acc);
    double secs = cli_now() - t0;
    if (st) {
        char what[600];
        snprintf(what, sizeof what, "%s on %s", model_path, s.data);
        rc = cli_fail(cmd, st, what);
        goto done;
    }
    char arch[512];
    size_t len = (size_t)snprintf(arch, sizeof arch, "%zu", clipnn_model_n_inputs(m));
    for (size_t l = 0; l < clipnn_model_n_layers(m) && len < sizeof arch; l++)
        len += (size_t)snprintf(arch + len, sizeof arch - len, "-%zu", clipnn_model_layer_width(m, l));
    if (json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_num(&j, strcmp(split, "test") ? "train_accuracy" : "test_accuracy", acc);
        cli_json_num(&j, strcmp(split, "test") ? "train_loss" : "test_loss", loss);
        cli_json_u64(&j, "n", clipnn_dataset_n(d));
        cli_json_str(&j, "split", split);
        cli_json_str(&j, "model", model_path);
        cli_json_str(&j, "layers", arch);
        cli_json_str(&j, "act", clipnn_model_n_layers(m) > 1 ? clipnn_act_name(clipnn_model_layer_act(m, 0))
                                                              : clipnn_act_name(CLIPNN_ACT_IDENTITY));
        cli_json_u64(&j, "params", clipnn_model_n_params(m));
        cli_json_str(&j, "data", s.data);
        cli_json_str(&j, "loss", clipnn_loss_name(lo.loss));
        cli_json_num(&j, "seconds", secs);
        cli_json_end(&j);
    } else {
        printf("%s: layers %s, %zu parameters\n", model_path, arch, clipnn_model_n_params(m));
        printf("%s (%s, %zu examples): accuracy %.4f  loss %.4g (%s)\n", s.data, split, clipnn_dataset_n(d),
               acc, loss, clipnn_loss_name(lo.loss));
    }
done:
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    clipnn_dataset_free(test);
    return rc;
}
