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
    "before atanh). --out DIR: start and result as PNG (image data) and .npy, and a trace\n"
    "CSV (step,value,grad_norm,reached) per run. A run that stalls short of its target is\n"
    "diagnosed (as 'clipnn diagnose').\n"
    "Exit codes: 0 every run reached its target, 1 some did not, 2 bad option, 3 bad\n"
    "model or data, 4 file error.";

typedef struct {
    FILE *f;
} trace_ctx;

static void on_step(const clipnn_inputopt_step *s, void *user) {
    trace_ctx *t = user;
    if (t->f) fprintf(t->f, "%zu,%.9g,%.9g,%d\n", s->step, s->value, s->grad_norm, s->reached);
}

int cmd_optimize_input(int argc, char **argv) {
    const char *cmd = "optimize-input";
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_EVAL);
    const char *model_path = NULL, *start = "zeros", *out_dir = NULL;
    cli_objective_args oa = {0};
    clipnn_inputopt_options io = clipnn_inputopt_options_default();
    uint64_t seed = 1;
    int json = 0;
    const unsigned groups = CLI_OPTS_DATA | CLI_OPTS_THREADS;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&s, groups, table, &n);
    cli_objective_options(&oa, 0, table, &n);
    table[n++] = (cli_option){"--start", CLI_STR, &start, "S", "zeros | random | data:INDEX | FILE.npy"};
    table[n++] = (cli_option){"--steps", CLI_SIZE, &io.steps, "N", "at most N steps"};
    table[n++] = (cli_option){"--lr", CLI_DOUBLE, &io.lr, "A",
                              "change of each coordinate in one step (x -= lr sign(g)); with --plain, the "
                              "step size of x -= lr g"};
    int plain = 0;
    table[n++] = (cli_option){"--backtrack", CLI_FLAG, &io.backtrack, NULL,
                              "reject a step that raises the objective and retry it with half the step"};
    table[n++] = (cli_option){"--plain", CLI_FLAG, &plain, NULL,
                              "plain gradient descent x -= lr g (no normalization, no backtracking)"};
    table[n++] = (cli_option){"--stall", CLI_SIZE, &io.stall_steps, "N", "stop after N steps without progress"};
    table[n++] = (cli_option){"--seed", CLI_U64, &seed, "S", "seed of --start random"};
    table[n++] = (cli_option){"--out", CLI_STR, &out_dir, "DIR", "write PNG, .npy and trace CSV there"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &json, NULL, "one JSON line per run"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (!model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (plain && io.backtrack) return cli_usage_error(cmd, "--plain and --backtrack exclude each other");
    if (plain) io.normalize = 0;
    if ((rc = cli_objective_count_check(cmd, &oa, 1))) return rc;
    if ((rc = cli_parse_param(cmd, oa.param, &io.param))) return rc;
    if (!(io.lr > 0) || !isfinite(io.lr)) return cli_usage_error(cmd, "--lr %g must be > 0", io.lr);

    clipnn_model *m = NULL;
    if ((rc = cli_io_model(cmd, &s, groups, argc, argv, model_path, &m))) return rc;
    clipnn_status st;
    size_t dim = clipnn_model_n_inputs(m), k = clipnn_model_n_outputs(m);
    cli_io_data data;
    memset(&data, 0, sizeof data);
    float *x0 = NULL, *x = NULL, *y = NULL, *xm = NULL;
    int have_data;
    if ((rc = cli_io_load_or_none(cmd, &s, oa.box, dim, &data, &have_data))) goto done;
    io.space = data.space;
    x0 = malloc(dim * sizeof *x0);
    x = malloc(dim * sizeof *x);
    xm = malloc(dim * sizeof *xm);
    y = malloc((k + 1) * sizeof *y);
    if (!x0 || !x || !y || !xm) {
        rc = cli_fail(cmd, CLIPNN_ERR_NOMEM, "input");
        goto done;
    }
    /* objective */
    clipnn_objective *obj = &io.objective;
    int all;
    if ((rc = cli_objective_build(cmd, &oa, m, -1, obj, y, &all))) goto done;
    size_t first = all ? 0 : (size_t)y[0], last = all ? k - 1 : first;
    /* start */
    int label = -1;
    if (!strcmp(start, "zeros") || !strcmp(start, "random")) {
        double lo = isfinite(io.space.box_lo) ? io.space.box_lo : -1, hi = isfinite(io.space.box_hi) ? io.space.box_hi : 1;
        srand((unsigned)seed);
        for (size_t i = 0; i < dim; i++) {
            double v = start[0] == 'z' ? 0.0 : lo + (hi - lo) * (double)rand() / RAND_MAX;
            x0[i] = (float)fmin(fmax(v, io.space.box_lo), io.space.box_hi);
        }
    } else if ((rc = cli_io_input(cmd, start, have_data ? &data : NULL, dim, x0, &label))) {
        goto done;
    }
    for (size_t i = 0; i < dim; i++)
        if (!(x0[i] >= io.space.box_lo && x0[i] <= io.space.box_hi)) {
            rc = cli_usage_error(cmd, "--start: feature %zu is %g, outside the box [%g, %g]", i, (double)x0[i],
                                 io.space.box_lo, io.space.box_hi);
            goto done;
        }
    if (out_dir && (rc = cli_make_dir(cmd, out_dir))) goto done;
    if (out_dir && data.h > 0) rc = cli_write_gray(cmd, out_dir, "start.png", x0, data.h, data.w, io.space.box_lo, io.space.box_hi);
    if (rc) goto done;
    int all_reached = 1;
    for (size_t c = first; c <= last; c++) {
        if (obj->kind == CLIPNN_OBJ_TARGET_CLASS) y[0] = (float)c;
        char tag[64];
        if (obj->kind == CLIPNN_OBJ_TARGET_CLASS)
            snprintf(tag, sizeof tag, "class%zu", c);
        else if (obj->kind == CLIPNN_OBJ_TARGET_OUTPUT)
            snprintf(tag, sizeof tag, "output");
        else
            snprintf(tag, sizeof tag, "unit%zu_%zu", obj->layer, obj->unit);
        trace_ctx t = {NULL};
        if (out_dir) {
            char name[96];
            snprintf(name, sizeof name, "%s_trace.csv", tag);
            if ((rc = cli_open_csv(cmd, out_dir, name, "step,value,grad_norm,reached", &t.f))) goto done;
        }
        io.on_step = on_step;
        io.user = &t;
        memcpy(x, x0, dim * sizeof *x);
        clipnn_inputopt_result r;
        double t0 = cli_now();
        st = clipnn_optimize_input(m, &io, obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? NULL : y, x, &r);
        double secs = cli_now() - t0;
        if (t.f && fclose(t.f) != 0 && !st) {
            fprintf(stderr, "clipnn %s: %s trace: write failed\n", cmd, tag);
            rc = CLI_EXIT_IO;
            goto done;
        }
        if (st) {
            rc = cli_fail(cmd, st, "optimize-input");
            goto done;
        }
        /* what the model makes of the result */
        for (size_t i = 0; i < dim; i++)
            xm[i] = io.space.mean ? (x[i] - io.space.mean[i]) / io.space.std[i] : x[i];
        const float *z;
        if ((st = clipnn_forward(m, xm, 1, &z))) {
            rc = cli_fail(cmd, st, "forward");
            goto done;
        }
        size_t pred = 0;
        for (size_t j = 1; j < k; j++)
            if (z[j] > z[pred]) pred = j;
        double linf = 0, l2 = 0;
        for (size_t i = 0; i < dim; i++) {
            double dlt = (double)x[i] - x0[i];
            linf = fmax(linf, fabs(dlt));
            l2 += dlt * dlt;
        }
        l2 = sqrt(l2);
        int ok = obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? 1 : r.reached;
        all_reached &= ok;
        if (json) {
            cli_json j;
            cli_json_begin(&j, stdout);
            cli_json_str(&j, "objective", tag);
            cli_json_bool(&j, "reached", r.reached);
            cli_json_bool(&j, "stalled", r.stalled);
            cli_json_u64(&j, "steps", r.steps);
            cli_json_num(&j, "start_value", r.start_value);
            cli_json_num(&j, "best_value", r.best_value);
            cli_json_u64(&j, "best_step", r.best_step);
            cli_json_u64(&j, "predicted_class", pred);
            cli_json_num(&j, "linf", linf);
            cli_json_num(&j, "l2", l2);
            cli_json_num(&j, "seconds", secs);
            cli_json_end(&j);
        } else {
            printf("%-10s %s after %zu steps (best at %zu): objective %.6g -> %.6g, predicted class %zu (logit %.4g), "
                   "change L-inf %.3g L2 %.3g\n",
                   tag, r.reached ? "reached" : r.stalled ? "STALLED" : obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? "done" : "NOT reached",
                   r.steps, r.best_step, r.start_value, r.best_value, pred, (double)z[pred], linf, l2);
        }
        if (out_dir) {
            char name[128], path[4096];
            snprintf(path, sizeof path, "%s/%s.npy", out_dir, tag);
            if ((st = clipnn_npy_write(path, x, dim, 0))) {
                rc = cli_fail(cmd, st, path);
                goto done;
            }
            if (data.h > 0) {
                snprintf(name, sizeof name, "%s.png", tag);
                if ((rc = cli_write_gray(cmd, out_dir, name, x, data.h, data.w, io.space.box_lo, io.space.box_hi)))
                    goto done;
            }
        }
        if (!r.reached && r.stalled && !json) {
            clipnn_diagnose_options dopt = clipnn_diagnose_options_default();
            dopt.space = io.space;
            dopt.param = io.param;
            float *point = xm;
            const double lo = io.space.box_lo, half = (io.space.box_hi - io.space.box_lo) / 2;
            for (size_t i = 0; i < dim; i++)
                point[i] = io.param == CLIPNN_PARAM_TANH ? (float)atanh(0.999999 * ((x[i] - lo) / half - 1)) : x[i];
            clipnn_diagnosis d;
            st = clipnn_diagnose_model(m, obj, obj->kind == CLIPNN_OBJ_MAXIMIZE_UNIT ? NULL : y, point, &dopt, &d);
            if (st) {
                rc = cli_fail(cmd, st, "diagnose");
                goto done;
            }
            printf("stalled short of the target; diagnosis at the kept point:\n");
            cli_print_diagnosis(stdout, &d);
            if (!d.stalled)
                printf("the gradient is not zero here: a step moves the input by lr x |g| = %.3g (box width %g), so "
                       "the descent overshoots rather than stops; try a smaller --lr\n",
                       io.lr * d.grad_norm, io.space.box_hi - io.space.box_lo);
        }
    }
    if (!rc && !all_reached) rc = CLI_EXIT_FAILURE;
done:
    free(x0), free(x), free(y), free(xm);
    cli_io_free(&data);
    clipnn_model_free(m);
    return rc;
}
