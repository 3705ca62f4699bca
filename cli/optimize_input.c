/* clipnn optimize-input: gradient descent on the input of a frozen model
 * towards a class, an output vector, or a unit's activation; PNGs of the
 * results; a diagnosis when it stalls short of its target. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inputopt_common.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE (--target-class K|all | --target-output V,... | --maximize-unit L:U)\n"
    "             [--start zeros|random|data:INDEX] [--steps N] [--lr A] [--box LO,HI]\n"
    "             [--param pixel|tanh] [--loss xent|margin[:KAPPA]|mse|bce] [--out DIR]\n"
    "\n"
    "Gradient descent on one input of the model, the network frozen, keeping the best\n"
    "iterate; stops when the target is reached (class: the arg-max; output: mean squared\n"
    "error <= 1e-4) or the objective stalls. --target-class all runs every class in turn.\n"
    "--maximize-unit L:U maximizes unit U of layer L (0-based; the last layer: a logit).\n"
    "With --data (default digits) the input lives in that data's units: pixels in [0, 1]\n"
    "for image sets, mapped to the scaling the model was trained with (--scale as for\n"
    "train); --data none: the model's own inputs, no box unless --box. --param tanh\n"
    "optimizes w with x = lo + (hi - lo)(tanh(w) + 1)/2 (the start shrunk by 0.999999\n"
    "before atanh). --out DIR: start and result as PNG (image data) and .npy (in the data's\n"
    "shape: [1][h][w] for images), and a trace CSV (step,value,grad_norm,reached) per run. "
    "A run that stalls short of its target is\n"
    "diagnosed (as 'clipnn diagnose'). The model must have no recurrent layers (refused, exit 2).\n"
    "Exit codes: 0 every run reached its target, 1 some did not, 2 bad option, 3 bad\n"
    "model or data, 4 file error.";

typedef struct {
    FILE *f;
} trace_ctx;

static void on_step(const clipnn_inputopt_step *s, void *user) {
    trace_ctx *t = user;
    if (t->f) fprintf(t->f, "%zu,%.9g,%.9g,%d\n", s->step, s->value, s->grad_norm, s->reached);
}

/* The command line of one optimize-input call. */
typedef struct {
    cli_settings s;
    const char *model_path, *start, *out_dir;
    cli_objective_args oa;
    clipnn_inputopt_options io;
    uint64_t seed;
    int json, plain;
} oi_args;

enum { OI_GROUPS = CLI_OPTS_DATA | CLI_OPTS_THREADS | CLI_OPTS_RECORDED };

static void oi_option_table(oi_args *a, cli_option *table) {
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &a->model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&a->s, OI_GROUPS, table, &n);
    cli_objective_options(&a->oa, 0, table, &n);
    table[n++] = (cli_option){"--start", CLI_STR, &a->start, "S", "zeros | random | data:INDEX | FILE.npy"};
    table[n++] = (cli_option){"--steps", CLI_SIZE, &a->io.steps, "N", "at most N steps"};
    table[n++] = (cli_option){"--lr", CLI_DOUBLE, &a->io.lr, "A",
                              "change of each coordinate in one step (x -= lr sign(g)); with --plain, the "
                              "step size of x -= lr g"};
    table[n++] = (cli_option){"--backtrack", CLI_FLAG, &a->io.backtrack, NULL,
                              "reject a step that raises the objective and retry it with half the step"};
    table[n++] = (cli_option){"--plain", CLI_FLAG, &a->plain, NULL,
                              "plain gradient descent x -= lr g (no normalization, no backtracking)"};
    table[n++] = (cli_option){"--stall", CLI_SIZE, &a->io.stall_steps, "N", "stop after N steps without progress"};
    table[n++] = (cli_option){"--seed", CLI_U64, &a->seed, "S", "seed of --start random"};
    table[n++] = (cli_option){"--out", CLI_STR, &a->out_dir, "DIR", "write PNG, .npy and trace CSV there"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "one JSON line per run"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

static int check_oi_args(const char *cmd, oi_args *a) {
    if (!a->model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (a->plain && a->io.backtrack) return cli_usage_error(cmd, "--plain and --backtrack exclude each other");
    if (a->plain) a->io.normalize = 0;
    int rc = cli_objective_count_check(cmd, &a->oa, 1);
    if (!rc) rc = cli_parse_param(cmd, a->oa.param, &a->io.param);
    if (rc) return rc;
    if (!(a->io.lr > 0) || !isfinite(a->io.lr)) return cli_usage_error(cmd, "--lr %g must be > 0", a->io.lr);
    return cli_check_out_dir(cmd, "--out", a->out_dir);
}

/* One call: the model, its data, the start x0, the target y and the
 * classes it runs for (first..last; one run unless --target-class all). */
typedef struct {
    oi_args a;
    clipnn_model *m;
    size_t dim, k;
    cli_io_data data;
    int have_data;
    float *x0, *x, *y, *xm;
    size_t first, last;
} oi_run;

/* What the model makes of a result. */
typedef struct {
    size_t pred;
    double logit, linf, l2; /* the predicted class's logit; the change from the start */
} oi_outcome;

static int load_inputs(const char *cmd, int argc, char **argv, oi_run *r) {
    int rc = cli_io_model(cmd, &r->a.s, OI_GROUPS, argc, argv, r->a.model_path, &r->m);
    if (rc) return rc;
    r->dim = clipnn_model_n_inputs(r->m);
    r->k = clipnn_model_n_outputs(r->m);
    if ((rc = cli_io_load_or_none(cmd, &r->a.s, r->a.oa.box, r->dim, &r->data, &r->have_data))) return rc;
    r->a.io.space = r->data.space;
    r->x0 = malloc(r->dim * sizeof *r->x0);
    r->x = malloc(r->dim * sizeof *r->x);
    r->xm = malloc(r->dim * sizeof *r->xm);
    r->y = malloc((r->k + 1) * sizeof *r->y);
    if (!r->x0 || !r->x || !r->y || !r->xm) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "input");
    return 0;
}

/* The objective and its target; a class objective runs for its class, or
 * for every class with --target-class all; the others run once. */
static int build_objective(const char *cmd, oi_run *r) {
    clipnn_objective *obj = &r->a.io.objective;
    int all;
    int rc = cli_objective_build(cmd, &r->a.oa, r->m, -1, obj, r->y, &all);
    if (rc) return rc;
    int per_class = obj->kind == CLIPNN_OBJ_TARGET_CLASS;
    r->first = all ? 0 : per_class ? (size_t)r->y[0] : 0;
    r->last = all ? r->k - 1 : r->first;
    return 0;
}

/* x0 from --start (zeros, uniform in the box or [-1, 1], an example, a
 * .npy file), which must lie in the box. */
static int start_point(const char *cmd, oi_run *r) {
    const clipnn_input_space *sp = &r->a.io.space;
    const char *start = r->a.start;
    if (!strcmp(start, "zeros") || !strcmp(start, "random")) {
        double lo = isfinite(sp->box_lo) ? sp->box_lo : -1, hi = isfinite(sp->box_hi) ? sp->box_hi : 1;
        srand((unsigned)r->a.seed);
        for (size_t i = 0; i < r->dim; i++) {
            double v = start[0] == 'z' ? 0.0 : lo + (hi - lo) * (double)rand() / RAND_MAX;
            r->x0[i] = (float)fmin(fmax(v, sp->box_lo), sp->box_hi);
        }
    } else {
        int label = -1;
        int rc = cli_io_input(cmd, start, r->have_data ? &r->data : NULL, r->dim, r->x0, &label);
        if (rc) return rc;
    }
    for (size_t i = 0; i < r->dim; i++)
        if (!(r->x0[i] >= sp->box_lo && r->x0[i] <= sp->box_hi))
            return cli_usage_error(cmd, "--start: feature %zu is %g, outside the box [%g, %g]", i, (double)r->x0[i],
                                   sp->box_lo, sp->box_hi);
    return 0;
}

static int write_start(const char *cmd, const oi_run *r) {
    const char *dir = r->a.out_dir;
    if (!dir) return 0;
    int rc = 0;
    if (r->data.h > 0)
        rc = cli_write_gray(cmd, dir, "start.png", r->x0, r->data.h, r->data.w, r->a.io.space.box_lo,
                            r->a.io.space.box_hi);
    return rc;
}

static void run_tag(const clipnn_objective *obj, size_t c, char *tag, size_t cap) {
    if (obj->kind == CLIPNN_OBJ_TARGET_CLASS)
        snprintf(tag, cap, "class%zu", c);
    else if (obj->kind == CLIPNN_OBJ_TARGET_OUTPUT)
        snprintf(tag, cap, "output");
    else
        snprintf(tag, cap, "unit%zu_%zu", obj->layer, obj->unit);
}

/* The objective's target, NULL for a unit to maximize. */
static const float *target_of(const oi_run *r) {
    return r->a.io.objective.kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? NULL : r->y;
}

/* Descent from x0 into x, the trace in DIR/TAG_trace.csv with --out. */
static int descend(const char *cmd, oi_run *r, const char *tag, clipnn_inputopt_result *res, double *secs) {
    trace_ctx t = {NULL};
    int rc = 0;
    if (r->a.out_dir) {
        char name[96];
        snprintf(name, sizeof name, "%s_trace.csv", tag);
        if ((rc = cli_open_csv(cmd, r->a.out_dir, name, "step,value,grad_norm,reached", &t.f))) return rc;
    }
    r->a.io.on_step = on_step;
    r->a.io.user = &t;
    memcpy(r->x, r->x0, r->dim * sizeof *r->x);
    double t0 = cli_now();
    clipnn_status st = clipnn_optimize_input(r->m, &r->a.io, target_of(r), r->x, res);
    *secs = cli_now() - t0;
    if ((rc = cli_close_csv(cmd, t.f, st ? CLI_EXIT_FAILURE : 0)) && !st) return rc;
    return st ? cli_fail(cmd, st, "optimize-input") : 0;
}

/* The model's prediction at the result (xm: the model's input), and how
 * far the result moved from the start. */
static int judge(const char *cmd, oi_run *r, oi_outcome *out) {
    const clipnn_input_space *sp = &r->a.io.space;
    for (size_t i = 0; i < r->dim; i++) r->xm[i] = sp->mean ? (r->x[i] - sp->mean[i]) / sp->std[i] : r->x[i];
    const float *z;
    clipnn_status st = clipnn_forward(r->m, r->xm, 1, &z);
    if (st) return cli_fail(cmd, st, "forward");
    size_t pred = 0;
    for (size_t j = 1; j < r->k; j++)
        if (z[j] > z[pred]) pred = j;
    double linf = 0, l2 = 0;
    for (size_t i = 0; i < r->dim; i++) {
        double dlt = (double)r->x[i] - r->x0[i];
        linf = fmax(linf, fabs(dlt));
        l2 += dlt * dlt;
    }
    *out = (oi_outcome){pred, (double)z[pred], linf, sqrt(l2)};
    return 0;
}

static void print_run(const oi_run *r, const char *tag, const clipnn_inputopt_result *res, const oi_outcome *out,
                      double secs) {
    if (r->a.json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "objective", tag);
        cli_json_bool(&j, "reached", res->reached);
        cli_json_bool(&j, "stalled", res->stalled);
        cli_json_u64(&j, "steps", res->steps);
        cli_json_num(&j, "start_value", res->start_value);
        cli_json_num(&j, "best_value", res->best_value);
        cli_json_u64(&j, "best_step", res->best_step);
        cli_json_u64(&j, "predicted_class", out->pred);
        cli_json_num(&j, "linf", out->linf);
        cli_json_num(&j, "l2", out->l2);
        cli_json_num(&j, "seconds", secs);
        cli_json_end(&j);
        return;
    }
    int unit = r->a.io.objective.kind == CLIPNN_OBJ_MAXIMIZE_UNIT;
    printf("%-10s %s after %zu steps (best at %zu): objective %.6g -> %.6g, predicted class %zu (logit %.4g), "
           "change L-inf %.3g L2 %.3g\n",
           tag, res->reached ? "reached" : res->stalled ? "STALLED" : unit ? "done" : "NOT reached", res->steps,
           res->best_step, res->start_value, res->best_value, out->pred, out->logit, out->linf, out->l2);
}

/* DIR/TAG.npy, and DIR/TAG.png for image data. */
static int save_result(const char *cmd, const oi_run *r, const char *tag) {
    const char *dir = r->a.out_dir;
    char name[128];
    snprintf(name, sizeof name, "%s.npy", tag);
    int rc = cli_write_inputs(cmd, dir, name, r->x, 1, r->dim, &r->data);
    if (rc || r->data.h == 0) return rc;
    snprintf(name, sizeof name, "%s.png", tag);
    return cli_write_gray(cmd, dir, name, r->x, r->data.h, r->data.w, r->a.io.space.box_lo, r->a.io.space.box_hi);
}

/* A run that stalled short of its target: the diagnosis at the kept point
 * (in w for the tanh parametrization). */
static int diagnose_stall(const char *cmd, oi_run *r) {
    const clipnn_inputopt_options *io = &r->a.io;
    clipnn_diagnose_options dopt = clipnn_diagnose_options_default();
    dopt.space = io->space;
    dopt.param = io->param;
    float *point = r->xm;
    if (io->param == CLIPNN_PARAM_TANH)
        cli_tanh_variable(&io->space, r->x, point, r->dim);
    else
        memcpy(point, r->x, r->dim * sizeof *point);
    clipnn_diagnosis d;
    clipnn_status st = clipnn_diagnose_model(r->m, &io->objective, target_of(r), point, &dopt, &d);
    if (st) return cli_fail(cmd, st, "diagnose");
    printf("stalled short of the target; diagnosis at the kept point:\n");
    cli_print_diagnosis(stdout, &d);
    if (!d.stalled)
        printf("the gradient is not zero here: a step moves the input by lr x |g| = %.3g (box width %g), so "
               "the descent overshoots rather than stops; try a smaller --lr\n",
               io->lr * d.grad_norm, io->space.box_hi - io->space.box_lo);
    return 0;
}

/* The run for class c (or the one run of another objective); *reached is
 * cleared when it falls short of its target. */
static int optimize_for(const char *cmd, oi_run *r, size_t c, int *reached) {
    const clipnn_objective *obj = &r->a.io.objective;
    if (obj->kind == CLIPNN_OBJ_TARGET_CLASS) r->y[0] = (float)c;
    char tag[64];
    run_tag(obj, c, tag, sizeof tag);
    clipnn_inputopt_result res;
    oi_outcome out = {0};
    double secs;
    int rc = descend(cmd, r, tag, &res, &secs);
    if (!rc) rc = judge(cmd, r, &out);
    if (rc) return rc;
    *reached &= obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? 1 : res.reached;
    print_run(r, tag, &res, &out, secs);
    if (r->a.out_dir && (rc = save_result(cmd, r, tag))) return rc;
    if (!res.reached && res.stalled && !r->a.json) rc = diagnose_stall(cmd, r);
    return rc;
}

int cmd_optimize_input(int argc, char **argv) {
    const char *cmd = "optimize-input";
    oi_run r;
    memset(&r, 0, sizeof r);
    cli_settings_default(&r.a.s, CLI_MODE_EVAL);
    r.a.start = "zeros";
    r.a.io = clipnn_inputopt_options_default();
    r.a.seed = 1;
    cli_option table[CLI_MAX_OPTIONS];
    oi_option_table(&r.a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = check_oi_args(cmd, &r.a))) return rc;
    rc = load_inputs(cmd, argc, argv, &r);
    if (!rc) rc = build_objective(cmd, &r);
    if (!rc) rc = start_point(cmd, &r);
    if (!rc) rc = write_start(cmd, &r);
    int all_reached = 1;
    for (size_t c = r.first; !rc && c <= r.last; c++) rc = optimize_for(cmd, &r, c, &all_reached);
    if (!rc && !all_reached) rc = CLI_EXIT_FAILURE;
    free(r.x0), free(r.x), free(r.y), free(r.xm);
    cli_io_free(&r.data);
    clipnn_model_free(r.m);
    return rc;
}
