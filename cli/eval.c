/* clipnn eval: loss and accuracy of a saved model on a dataset. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "recorded.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE [--data SPEC] [--json]\n"
    "\n"
    "Evaluates a model saved by 'clipnn train --save FILE' on the test part of the data\n"
    "(--split train for the training part). A model that records its data (what train\n"
    "--save writes) is evaluated on them as it was trained: the same data, split and\n"
    "scaling statistics, without options; another --data or --scale is refused unless\n"
    "--force. A model without a record takes the data as train loads them: give the same\n"
    "--data, --scale, --test-fraction and --data-seed. --json keys: accuracy,\n"
    "mean_loss, split, n, ... (docs/formats.md). Exit codes: 0 ok, 2 bad option, 3 damaged or\n"
    "foreign model file or data that do not fit the model, 4 file not readable.";

/* The command line of one evaluation. */
typedef struct {
    cli_settings s;
    const char *model_path, *split;
    int json;
} eval_args;

enum { EVAL_GROUPS = CLI_OPTS_DATA | CLI_OPTS_LOSS | CLI_OPTS_THREADS | CLI_OPTS_RECORDED };

static void eval_option_table(eval_args *a, cli_option *table) {
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &a->model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&a->s, EVAL_GROUPS, table, &n);
    table[n++] = (cli_option){"--split", CLI_STR, &a->split, "PART", "test | train"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "end stdout with one JSON summary line"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

static int check_eval_args(const char *cmd, eval_args *a, int argc, char **argv) {
    if (!a->model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (strcmp(a->split, "test") && strcmp(a->split, "train"))
        return cli_usage_error(cmd, "--split '%s': want test or train", a->split);
    return cli_settings_check(cmd, &a->s, EVAL_GROUPS, argc, argv);
}

/* What an evaluation measured. */
typedef struct {
    const clipnn_dataset *d; /* the part evaluated */
    clipnn_loss_options lo;
    double loss, acc, secs;
} eval_result;

static void print_eval(const eval_args *a, clipnn_model *m, const eval_result *e) {
    char arch[512];
    cli_model_arch(m, 1, arch, sizeof arch);
    if (!a->json) {
        printf("%s: layers %s, %zu parameters\n", a->model_path, arch, clipnn_model_n_params(m));
        printf("%s (%s, %zu examples): accuracy %.4f  loss %.4g (%s)\n", a->s.data, a->split,
               clipnn_dataset_n(e->d), e->acc, e->loss, clipnn_loss_name(e->lo.loss));
        return;
    }
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_num(&j, "accuracy", e->acc);
    cli_json_num(&j, "mean_loss", e->loss);
    cli_json_u64(&j, "n", clipnn_dataset_n(e->d));
    cli_json_str(&j, "split", a->split);
    cli_json_str(&j, "model", a->model_path);
    cli_json_str(&j, "layers", arch);
    cli_json_str(&j, "act", clipnn_model_n_layers(m) > 1 ? clipnn_act_name(clipnn_model_layer_act(m, 0))
                                                          : clipnn_act_name(CLIPNN_ACT_IDENTITY));
    cli_json_u64(&j, "params", clipnn_model_n_params(m));
    cli_json_str(&j, "data", a->s.data);
    cli_json_str(&j, "loss", clipnn_loss_name(e->lo.loss));
    cli_json_num(&j, "seconds", e->secs);
    cli_json_end(&j);
}

/* The chosen part of the data, loaded as train loads it, through the model. */
static int evaluate(const char *cmd, const eval_args *a, clipnn_model *m, const clipnn_dataset *train,
                    const clipnn_dataset *test) {
    eval_result e = {.d = strcmp(a->split, "train") == 0 ? train : test, .lo = clipnn_loss_options_default()};
    if (!e.d) return cli_usage_error(cmd, "--data %s has no test part", a->s.data);
    int rc = cli_resolve_loss(cmd, &a->s, e.d, &e.lo.loss);
    if (rc) return rc;
    double t0 = cli_now();
    clipnn_status st = clipnn_evaluate(m, e.d, &e.lo, &e.loss, &e.acc);
    e.secs = cli_now() - t0;
    if (st) {
        char what[600];
        snprintf(what, sizeof what, "%s on %s", a->model_path, a->s.data);
        return cli_fail(cmd, st, what);
    }
    print_eval(a, m, &e);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    eval_args a = {.split = "test"};
    cli_settings_default(&a.s, CLI_MODE_EVAL);
    cli_option table[CLI_MAX_OPTIONS];
    eval_option_table(&a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = check_eval_args(cmd, &a, argc, argv))) return rc;
    clipnn_set_threads(a.s.threads);
    clipnn_model *m = NULL;
    if ((rc = cli_load_model_recorded(cmd, a.model_path, &a.s, argc, argv, &m))) return rc;
    clipnn_dataset *train = NULL, *test = NULL;
    rc = cli_load_data(cmd, &a.s, &train, &test);
    if (!rc) rc = evaluate(cmd, &a, m, train, test);
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    clipnn_dataset_free(test);
    return rc;
}
