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
    "step), parametrization (box, tanh, dead ReLUs, ignored directions), vanishing or\n"
    "exploding through time (recurrent models).\n"
    "The objective defaults to leaving the true class of data:INDEX with the\n"
    "cross-entropy (an untargeted attack). --fd-step H: the optimizer's gradient was a\n"
    "float32 central difference with step H. Inputs live in the units of --data (pixels\n"
    "in [0, 1] for images) as in 'clipnn attack'.\n"
    "--demo NAME runs a constructed case (the tests' cases): local-minimum, saddle,\n"
    "saturation, bce-no-saturation, precision, softmax-margin, box, tanh-param,\n"
    "dead-relu, ignored-directions, vanishing-through-time, exploding-through-time,\n"
    "healthy-recurrent; 'all' runs each and checks it names its cause (or none).\n"
    "A recurrent model (many-to-one, a class or output objective) gets the tests through\n"
    "time: ||d/dx_1|| / ||d/dx_T|| in double and float32 and W_hh's spectral radius;\n"
    "below 1e-5 the gradient vanishes through time, above 1e5 it explodes.\n"
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
        printf("expected: %s%s%s -> %s\n\n",
               info.expected == CLIPNN_CAUSE_COUNT ? "no cause (no stall)" : clipnn_cause_name(info.expected),
               info.also != CLIPNN_CAUSE_COUNT ? " and " : "",
               info.also != CLIPNN_CAUSE_COUNT ? clipnn_cause_name(info.also) : "", right ? "right" : "WRONG");
    }
    return right ? 0 : CLI_EXIT_FAILURE;
}

/* --demo list, all or NAME: the exit code is the worst of the demos run. */
static int run_demos(const char *demo, int json) {
    if (!strcmp(demo, "list") && json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_open(&j, "demos", '[');
        for (size_t i = 0; i < clipnn_diagnose_demo_count(); i++) cli_json_str(&j, NULL, clipnn_diagnose_demo_name(i));
        cli_json_close(&j, ']');
        cli_json_end(&j);
        return 0;
    }
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

/* The command line of one diagnosis. */
typedef struct {
    cli_settings s;
    const char *model_path, *input, *demo;
    cli_objective_args oa;
    clipnn_diagnose_options dopt;
    int json;
} diag_args;

enum { DIAG_GROUPS = CLI_OPTS_DATA | CLI_OPTS_THREADS | CLI_OPTS_RECORDED };

static void diag_option_table(diag_args *a, cli_option *table) {
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &a->model_path, "FILE", "model checkpoint"};
    table[n++] =
        (cli_option){"--input", CLI_STR, &a->input, "IN", "data:INDEX (test part) or FILE.npy (x, also for tanh)"};
    table[n++] = (cli_option){"--demo", CLI_STR, &a->demo, "NAME", "a constructed case, all, or list"};
    cli_settings_options(&a->s, DIAG_GROUPS, table, &n);
    cli_objective_options(&a->oa, 1, table, &n);
    table[n++] =
        (cli_option){"--fd-step", CLI_DOUBLE, &a->dopt.fd_step, "H", "gradient by float32 differences, step H"};
    table[n++] = (cli_option){"--grad-tol", CLI_DOUBLE, &a->dopt.grad_tol, "T", "a gradient norm <= T is tiny"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "one JSON line (demos)"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

static int check_diag_args(const char *cmd, diag_args *a) {
    if (!a->model_path || !a->input)
        return cli_usage_error(cmd, "--model FILE and --input IN are required (or --demo NAME)");
    int rc = cli_objective_count_check(cmd, &a->oa, 0);
    if (!rc) rc = cli_parse_param(cmd, a->oa.param, &a->dopt.param);
    if (rc) return rc;
    if (!(a->dopt.fd_step >= 0) || !(a->dopt.grad_tol >= 0))
        return cli_usage_error(cmd, "--fd-step and --grad-tol must be >= 0");
    return 0;
}

/* A diagnosis at one input: the model, its data, the point and target. */
typedef struct {
    clipnn_model *m;
    cli_io_data data;
    float *x, *y;
    clipnn_objective obj;
} diag_run;

/* The point (in w for the tanh parametrization) and the objective. */
static int load_point(const char *cmd, int argc, char **argv, diag_args *a, diag_run *r) {
    int rc = cli_io_model_any(cmd, &a->s, DIAG_GROUPS, argc, argv, a->model_path, &r->m);
    if (rc) return rc;
    size_t dim = clipnn_model_n_inputs(r->m), k = clipnn_model_n_outputs(r->m);
    r->x = malloc(dim * sizeof *r->x), r->y = malloc((k + 1) * sizeof *r->y);
    if (!r->x || !r->y) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "input");
    int have_data, label;
    rc = cli_io_load_or_none(cmd, &a->s, a->oa.box, dim, &r->data, &have_data);
    if (!rc) rc = cli_io_input(cmd, a->input, have_data ? &r->data : NULL, dim, r->x, &label);
    if (!rc) rc = cli_objective_build(cmd, &a->oa, r->m, label, &r->obj, r->y, NULL);
    if (rc) return rc;
    a->dopt.space = r->data.space;
    if (a->dopt.param != CLIPNN_PARAM_TANH) return 0;
    if (!isfinite(a->dopt.space.box_lo) || !isfinite(a->dopt.space.box_hi))
        return cli_usage_error(cmd, "--param tanh needs a finite --box");
    cli_tanh_variable(&a->dopt.space, r->x, r->x, dim);
    return 0;
}

/* The diagnosis as one JSON object (--json). */
static void print_diagnosis_json(const diag_args *a, const clipnn_diagnosis *d) {
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "model", a->model_path);
    cli_json_str(&j, "input", a->input);
    cli_json_bool(&j, "stalled", d->stalled);
    cli_json_bool(&j, "stationary", d->stationary);
    cli_json_bool(&j, "at_target", d->at_target);
    cli_json_num(&j, "value", d->value);
    cli_json_num(&j, "grad_norm", d->grad_norm);
    cli_json_num(&j, "grad_norm_ref", d->grad_norm_ref);
    cli_json_open(&j, "findings", '[');
    for (size_t i = 0; i < d->n_findings; i++) {
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "cause", clipnn_cause_name(d->findings[i].cause));
        cli_json_str(&j, "test", d->findings[i].test);
        cli_json_str(&j, "numbers", d->findings[i].numbers);
        cli_json_str(&j, "remedy", d->findings[i].remedy);
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_open(&j, "checks", '[');
    for (size_t i = 0; i < d->n_checks; i++) {
        cli_json_open(&j, NULL, '{');
        cli_json_str(&j, "test", d->checks[i].test);
        cli_json_bool(&j, "passed", d->checks[i].passed);
        cli_json_str(&j, "numbers", d->checks[i].numbers);
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_end(&j);
}

static int diagnose_point(const char *cmd, const diag_args *a, diag_run *r) {
    const clipnn_objective *obj = &r->obj;
    clipnn_diagnosis d;
    clipnn_status st =
        clipnn_diagnose_model(r->m, obj, obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? NULL : r->y, r->x, &a->dopt, &d);
    if (st) return cli_fail(cmd, st, "diagnose");
    if (a->json) {
        print_diagnosis_json(a, &d);
        return 0;
    }
    printf("%s at %s: objective %s", a->model_path, a->input,
           obj->kind == CLIPNN_OBJ_TARGET_CLASS    ? "reach class"
           : obj->kind == CLIPNN_OBJ_LEAVE_CLASS   ? "leave class"
           : obj->kind == CLIPNN_OBJ_TARGET_OUTPUT ? "reach output"
                                                   : "maximize unit");
    if (obj->kind == CLIPNN_OBJ_TARGET_CLASS || obj->kind == CLIPNN_OBJ_LEAVE_CLASS) printf(" %d", (int)r->y[0]);
    printf(" (%s)\n", clipnn_loss_name(obj->loss));
    cli_print_diagnosis(stdout, &d);
    return 0;
}

int cmd_diagnose(int argc, char **argv) {
    const char *cmd = "diagnose";
    diag_args a = {.dopt = clipnn_diagnose_options_default()};
    cli_settings_default(&a.s, CLI_MODE_EVAL);
    cli_option table[CLI_MAX_OPTIONS];
    diag_option_table(&a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (a.demo) return run_demos(a.demo, a.json);
    if ((rc = check_diag_args(cmd, &a))) return rc;
    diag_run r;
    memset(&r, 0, sizeof r);
    rc = load_point(cmd, argc, argv, &a, &r);
    if (!rc) rc = diagnose_point(cmd, &a, &r);
    free(r.x), free(r.y);
    cli_io_free(&r.data);
    clipnn_model_free(r.m);
    return rc;
}
