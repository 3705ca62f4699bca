/* clipnn diagnose: why is the input gradient zero, at a given input of a
 * saved model, or on the built-in constructed cases. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inputopt_common.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE --input (data:INDEX | FILE.npy) [--target-class K | --leave-class K\n"
    "             | --target-output V,... | --maximize-unit L:U] [--loss L] [--data SPEC]\n"
    "             [--box LO,HI] [--fd-step H] [--grad-tol T]\n"
    "       clipnn diagnose --demo NAME|all|list\n"
    "\n"
    "Runs a fixed set of tests at one input and names every cause of a zero (or tiny)\n"
    "input gradient that applies, with the test that found it, its numbers and a\n"
    "remedy: local minimum, saddle (Lanczos on Hessian-vector products), saturation\n"
    "(saturated units, softmax margin past float32, probability outputs), numerical\n"
    "precision (float32 against the double reference, logit shift, finite-difference\n"
    "step), parametrization (box, tanh, dead ReLUs, ignored directions).\n"
    "The objective defaults to leaving the true class of data:INDEX with the\n"
    "cross-entropy (an untargeted attack). --fd-step H: the optimizer's gradient was a\n"
    "float32 central difference with step H. Inputs live in the units of --data (pixels\n"
    "in [0, 1] for images) as in 'clipnn attack'.\n"
    "--demo NAME runs a constructed case (the tests' cases): local-minimum, saddle,\n"
    "saturation, bce-no-saturation, precision, softmax-margin, box, tanh-param,\n"
    "dead-relu, ignored-directions; 'all' runs each and checks it names its cause.\n"
    "Exit codes: 0 ok, 1 a demo named a wrong cause, 2 bad option, 3 bad model or input,\n"
    "4 file error.";

static int run_demo(const char *name, int json) {
    clipnn_diagnosis d;
    clipnn_demo_info info;
    clipnn_status st = clipnn_diagnose_demo(name, &d, &info);
    if (st) return cli_fail("diagnose", st, name);
    /* right: the case's cause(s) named and nothing else */
    int right = info.expected == CLIPNN_CAUSE_COUNT ? d.n_findings == 0 : clipnn_diagnosis_has(&d, info.expected);
    for (size_t i = 0; i < d.n_findings; i++)
        if (d.findings[i].cause != info.expected && d.findings[i].cause != info.also) right = 0;
    if (json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "demo", name);
        cli_json_str(&j, "expected", info.expected == CLIPNN_CAUSE_COUNT ? "none" : clipnn_cause_name(info.expected));
        cli_json_open(&j, "causes", '[');
        for (size_t i = 0; i < d.n_findings; i++) cli_json_str(&j, NULL, clipnn_cause_name(d.findings[i].cause));
        cli_json_close(&j, ']');
        cli_json_bool(&j, "right", right);
        cli_json_num(&j, "grad_norm", d.grad_norm);
        cli_json_num(&j, "grad_norm_ref", d.grad_norm_ref);
        cli_json_end(&j);
    } else {
        printf("== demo %s\ncase: %s\nrun:  %s\n", name, info.description, info.run);
        cli_print_diagnosis(stdout, &d);
        printf("expected: %s%s%s -> %s\n\n", info.expected == CLIPNN_CAUSE_COUNT ? "no cause (no stall)" : clipnn_cause_name(info.expected),
               info.also != CLIPNN_CAUSE_COUNT ? " and " : "", info.also != CLIPNN_CAUSE_COUNT ? clipnn_cause_name(info.also) : "",
               right ? "right" : "WRONG");
    }
    return right ? 0 : CLI_EXIT_FAILURE;
}

int cmd_diagnose(int argc, char **argv) {
    const char *cmd = "diagnose";
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_EVAL);
    const char *model_path = NULL, *input = NULL, *demo = NULL;
    cli_objective_args oa = {0};
    clipnn_diagnose_options dopt = clipnn_diagnose_options_default();
    int json = 0;
    const unsigned groups = CLI_OPTS_DATA | CLI_OPTS_THREADS;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &model_path, "FILE", "model checkpoint"};
    table[n++] = (cli_option){"--input", CLI_STR, &input, "IN", "data:INDEX (test part) or FILE.npy (x, also for tanh)"};
    table[n++] = (cli_option){"--demo", CLI_STR, &demo, "NAME", "a constructed case, all, or list"};
    cli_settings_options(&s, groups, table, &n);
    cli_objective_options(&oa, 1, table, &n);
    table[n++] = (cli_option){"--fd-step", CLI_DOUBLE, &dopt.fd_step, "H", "gradient by float32 differences, step H"};
    table[n++] = (cli_option){"--grad-tol", CLI_DOUBLE, &dopt.grad_tol, "T", "a gradient norm <= T is tiny"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &json, NULL, "one JSON line (demos)"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (demo) {
        if (!strcmp(demo, "list")) {
            for (size_t i = 0; i < clipnn_diagnose_demo_count(); i++) printf("%s\n", clipnn_diagnose_demo_name(i));
            return 0;
        }
        if (strcmp(demo, "all")) return run_demo(demo, json);
        int worst = 0;
        for (size_t i = 0; i < clipnn_diagnose_demo_count(); i++) {
            int r = run_demo(clipnn_diagnose_demo_name(i), json);
            if (r > worst) worst = r;
        }
        return worst;
    }
    if (!model_path || !input) return cli_usage_error(cmd, "--model FILE and --input IN are required (or --demo NAME)");
    if ((rc = cli_objective_count_check(cmd, &oa, 0))) return rc;
    if ((rc = cli_parse_param(cmd, oa.param, &dopt.param))) return rc;
    if (!(dopt.fd_step >= 0) || !(dopt.grad_tol >= 0)) return cli_usage_error(cmd, "--fd-step and --grad-tol must be >= 0");

    clipnn_model *m = NULL;
    if ((rc = cli_io_model(cmd, &s, groups, argc, argv, model_path, &m))) return rc;
    clipnn_status st;
    size_t dim = clipnn_model_n_inputs(m), k = clipnn_model_n_outputs(m);
    cli_io_data data;
    memset(&data, 0, sizeof data);
    float *x = malloc(dim * sizeof *x), *y = malloc((k + 1) * sizeof *y);
    if (!x || !y) {
        rc = cli_fail(cmd, CLIPNN_ERR_NOMEM, "input");
        goto done;
    }
    int have_data, label;
    if ((rc = cli_io_load_or_none(cmd, &s, oa.box, dim, &data, &have_data))) goto done;
    if ((rc = cli_io_input(cmd, input, have_data ? &data : NULL, dim, x, &label))) goto done;
    clipnn_objective obj;
    if ((rc = cli_objective_build(cmd, &oa, m, label, &obj, y, NULL))) goto done;
    dopt.space = data.space;
    if (dopt.param == CLIPNN_PARAM_TANH) {
        if (!isfinite(dopt.space.box_lo) || !isfinite(dopt.space.box_hi)) {
            rc = cli_usage_error(cmd, "--param tanh needs a finite --box");
            goto done;
        }
        double lo = dopt.space.box_lo, half = (dopt.space.box_hi - lo) / 2;
        for (size_t i = 0; i < dim; i++) x[i] = (float)atanh(0.999999 * ((x[i] - lo) / half - 1));
    }
    clipnn_diagnosis d;
    st = clipnn_diagnose_model(m, &obj, obj.kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? NULL : y, x, &dopt, &d);
    if (st) {
        rc = cli_fail(cmd, st, "diagnose");
        goto done;
    }
    printf("%s at %s: objective %s", model_path, input,
           obj.kind == CLIPNN_OBJ_TARGET_CLASS   ? "reach class"
           : obj.kind == CLIPNN_OBJ_LEAVE_CLASS  ? "leave class"
           : obj.kind == CLIPNN_OBJ_TARGET_OUTPUT ? "reach output"
                                                 : "maximize unit");
    if (obj.kind == CLIPNN_OBJ_TARGET_CLASS || obj.kind == CLIPNN_OBJ_LEAVE_CLASS) printf(" %d", (int)y[0]);
    printf(" (%s)\n", clipnn_loss_name(obj.loss));
    cli_print_diagnosis(stdout, &d);
done:
    free(x), free(y);
    cli_io_free(&data);
    clipnn_model_free(m);
    return rc;
}
