/* clipnn attack: FGSM, PGD and APGD against a saved model, robust accuracy per
 * epsilon (the per-example minimum over several methods), the gradient-masking
 * checks, the sanity checks of --check, and a diagnosis when it stalls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack_checks.h"
#include "attack_report.h"
#include "inputopt_common.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE [--data SPEC] --method fgsm|pgd-linf|pgd-l2|apgd-ce|apgd-dlr[,M...] [--eps E[,E...]]\n"
    "             [--step A] [--steps N] [--random-start] [--restarts R] [--targeted K]\n"
    "             [--loss xent|margin[:KAPPA]] [--n EXAMPLES] [--check] [--out DIR] [--report DIR] [--json]\n"
    "\n"
    "Attacks the first --n examples of the test part of --data (loaded as 'clipnn train'\n"
    "loads it: give the same --data and --scale). Image data are attacked in pixel units\n"
    "in [0, 1] whatever scaling the model was trained with, so --eps is in pixels.\n"
    "For each epsilon: clean accuracy, robust accuracy (right after the attack), success\n"
    "rate (fooled among the examples the attack can fool: the correctly classified ones,\n"
    "or those not of the target class), mean L-inf and L2 distortion of the successful\n"
    "adversarial inputs. Several methods (--method pgd-linf,apgd-ce,apgd-dlr) attack every\n"
    "example each; an example counts as robust only when no method broke it, and that\n"
    "per-example minimum is the robust accuracy the masking checks use. apgd-ce and\n"
    "apgd-dlr (Croce and Hein 2020) fix their own step sizes (--step is ignored) and loss.\n"
    "--check runs the sanity checks at the largest eps, each PASS or WARN with its numbers:\n"
    "4x the steps with 4 random restarts breaks (almost) nothing more; the success rate\n"
    "reaches 100% as eps doubles up to the box; random +-eps noise is weaker than the\n"
    "attack; no example has an input gradient of exactly 0. The masking checks (Athalye et al.\n"
    "2018, Carlini et al. 2019)\n"
    "run a one-step attack at each epsilon (FGSM, or one L2 step for pgd-l2) and an\n"
    "unbounded attack (budget covering the box) unless --no-checks. Examples that stay\n"
    "unbroken with an input gradient of exactly zero are diagnosed (clipnn diagnose).\n"
    "--out DIR: PNGs of the first --images originals, adversarial inputs and perturbations\n"
    "(amplified, blue - white - red colour scale with its bar) at each epsilon,\n"
    "trace.csv (eps,restart,batch,step,loss,grad_norm,success_rate: batch means) and\n"
    "trace_examples.csv (eps,restart,example,step,loss,grad_norm,fooled) for those examples.\n"
    "--report DIR: DIR/index.html, one page: the first --images examples clean, attacked and\n"
    "the change at each epsilon with the true and predicted class, the accuracy curve.\n"
    "The model must have no recurrent layers (refused, exit 2).\n"
    "Exit codes: 0 ok, 1 attack failed, 2 bad option, 3 bad model or data, 4 file error.";

#define MAX_EPS 32

typedef struct {
    FILE *trace, *examples;
    size_t n_examples; /* per-example rows for the first n_examples */
    double eps;
} trace_ctx;

static void on_step(const clipnn_attack_step *s, void *user) {
    trace_ctx *t = user;
    if (t->trace)
        fprintf(t->trace, "%.6g,%zu,%zu,%zu,%.9g,%.9g,%.6g\n", t->eps, s->restart, s->batch_index, s->step, s->loss,
                s->grad_norm, s->success_rate);
    for (size_t b = 0; t->examples && b < s->batch_size && s->first_example + b < t->n_examples; b++)
        fprintf(t->examples, "%.6g,%zu,%zu,%zu,%.9g,%.9g,%d\n", t->eps, s->restart, s->first_example + b, s->step,
                s->example_loss[b], s->example_grad_norm[b], s->example_fooled[b]);
}

/* Diagnoses the first eligible example that the attack left unbroken (with
 * an exactly zero input gradient when require_zero): it stalled there. */
static void diagnose_stalled(clipnn_model *m, const clipnn_attack_options *ao, const float *adv, const float *labels,
                             size_t n, const clipnn_input_space *space, int require_zero) {
    size_t dim = clipnn_model_n_inputs(m);
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = ao->targeted ? CLIPNN_OBJ_TARGET_CLASS : CLIPNN_OBJ_LEAVE_CLASS;
    obj.loss = ao->loss;
    obj.kappa = ao->kappa;
    float *g = malloc(dim * sizeof *g), *xm = malloc(dim * sizeof *xm);
    if (!g || !xm) goto done;
    for (size_t i = 0; i < n; i++) {
        float y = ao->targeted ? (float)ao->target_class : labels[i];
        double v;
        int reached;
        const float *x = adv + i * dim;
        for (size_t j = 0; j < dim; j++)
            xm[j] = space->mean ? (x[j] - space->mean[j]) / space->std[j] : x[j];
        if (clipnn_objective_grad(m, &obj, xm, &y, 1, &v, g, &reached)) break;
        if (reached || (ao->targeted && labels[i] == y)) continue;
        int zero = 1;
        for (size_t j = 0; j < dim && zero; j++) zero = g[j] == 0.0f;
        if (require_zero && !zero) continue;
        clipnn_diagnose_options dopt = clipnn_diagnose_options_default();
        dopt.space = *space;
        clipnn_diagnosis d;
        if (clipnn_diagnose_model(m, &obj, &y, x, &dopt, &d)) break;
        printf("diagnosis of the first, example %zu:\n", i);
        cli_print_diagnosis(stdout, &d);
        if (!d.stalled)
            printf("the gradient is not zero there: the attack did not stop on a zero gradient but failed to use "
                   "it; try more --steps, --restarts, another --step, or the margin loss\n");
        break;
    }
done:
    free(g);
    free(xm);
}

/* The command line of one attack. */
typedef struct {
    cli_settings s;
    const char *model_path, *method_name, *eps_text, *loss_text, *out_dir, *box, *report;
    double step;
    size_t steps, restarts, n_ex, batch, images;
    int random_start, json, targeted, no_checks, check;
    uint64_t seed;
} attack_args;

enum { ATTACK_GROUPS = CLI_OPTS_DATA | CLI_OPTS_THREADS | CLI_OPTS_RECORDED };

static void attack_args_default(attack_args *a) {
    *a = (attack_args){.eps_text = "0,0.01,0.03,0.1", .loss_text = "xent", .steps = 40, .restarts = 1,
                       .n_ex = 1000, .batch = 256, .images = 8, .targeted = -1, .seed = 1};
    cli_settings_default(&a->s, CLI_MODE_EVAL);
}

static void attack_option_table(attack_args *a, cli_option *table) {
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &a->model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&a->s, ATTACK_GROUPS, table, &n);
    table[n++] = (cli_option){"--method", CLI_STR, &a->method_name, "M,..",
                              "fgsm | pgd-linf | pgd-l2 | apgd-ce | apgd-dlr, or several (required)"};
    table[n++] = (cli_option){"--eps", CLI_STR, &a->eps_text, "E,..", "budgets, increasing (pixels for images)"};
    table[n++] = (cli_option){"--step", CLI_DOUBLE, &a->step, "A", "PGD step size (0: max(2.5 eps / steps, eps / 4))"};
    table[n++] = (cli_option){"--steps", CLI_SIZE, &a->steps, "N", "PGD iterations"};
    table[n++] = (cli_option){"--random-start", CLI_FLAG, &a->random_start, NULL, "start uniformly in the budget"};
    table[n++] = (cli_option){"--restarts", CLI_SIZE, &a->restarts, "R", "runs per example, best kept"};
    table[n++] = (cli_option){"--targeted", CLI_INT, &a->targeted, "K", "reach class K (-1: untargeted)"};
    table[n++] = (cli_option){"--loss", CLI_STR, &a->loss_text, "L", "xent | margin | margin:KAPPA"};
    table[n++] = (cli_option){"--n", CLI_SIZE, &a->n_ex, "EXAMPLES", "test examples attacked (0: all)"};
    table[n++] = (cli_option){"--batch", CLI_SIZE, &a->batch, "B", "examples per forward pass"};
    table[n++] = (cli_option){"--box", CLI_STR, &a->box, "LO,HI", "input box (images: 0,1; other data: none)"};
    table[n++] = (cli_option){"--seed", CLI_U64, &a->seed, "S", "seed of the random starts"};
    table[n++] = (cli_option){"--no-checks", CLI_FLAG, &a->no_checks, NULL, "skip the one-step and unbounded runs"};
    table[n++] = (cli_option){"--check", CLI_FLAG, &a->check, NULL, "sanity checks at the largest eps (PASS/WARN)"};
    table[n++] = (cli_option){"--out", CLI_STR, &a->out_dir, "DIR",
                              "write PNGs, trace.csv and the inputs as .npy ([n][h][w] for images) there"};
    table[n++] = (cli_option){"--report", CLI_STR, &a->report, "DIR", "write DIR/index.html: images, curve, table"};
    table[n++] = (cli_option){"--images", CLI_SIZE, &a->images, "N", "examples drawn with --out and --report"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &a->json, NULL, "end stdout with one JSON summary line"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
}

/* One attack run: the model and data, the options, the results per epsilon. */
typedef struct {
    attack_args a;
    clipnn_model *m;
    cli_io_data io;
    size_t dim, n_ex;
    const float *x, *labels;
    float *adv, *pert, *unbounded_adv;
    float *report_adv; /* --report: [n_eps][report_n][dim], the first examples' adversarial inputs */
    size_t report_n;
    trace_ctx trace;
    clipnn_attack_options ao;
    int l2, iterative, checks;
    size_t n_eps;
    double eps[MAX_EPS];
    clipnn_attack_result res[MAX_EPS], one[MAX_EPS], ub;
    double robust[MAX_EPS], robust_one[MAX_EPS]; /* examples left unbroken: what the masking checks compare */
    double unbounded;                             /* success rate of the unbounded attack (NaN: not run) */
    clipnn_attack_method methods[ATTACK_MAX_METHODS];
    size_t n_methods;
    clipnn_attack_result per_method[MAX_EPS][ATTACK_MAX_METHODS];
    double robust_min[MAX_EPS];                   /* robust under every method */
    unsigned char *correct;                       /* [n_ex] at the last budget attacked */
    attack_check sanity[ATTACK_N_CHECKS];
} attack_run;

/* The options' values that need no model: method, budgets, loss, counts. */
static int check_args(const char *cmd, attack_run *r) {
    const attack_args *a = &r->a;
    if (!a->model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (!a->method_name)
        return cli_usage_error(cmd, "--method is required (fgsm, pgd-linf, pgd-l2, apgd-ce, apgd-dlr)");
    int rc = attack_parse_methods(cmd, a->method_name, r->methods, ATTACK_MAX_METHODS, &r->n_methods);
    if (rc) return rc;
    r->ao.method = r->methods[0];
    rc = cli_parse_list(cmd, "--eps", a->eps_text, r->eps, MAX_EPS, &r->n_eps);
    if (rc) return rc;
    for (size_t i = 0; i < r->n_eps; i++)
        if (r->eps[i] < 0 || (i > 0 && r->eps[i] <= r->eps[i - 1]))
            return cli_usage_error(cmd, "--eps '%s': want increasing values >= 0", a->eps_text);
    if (a->check && !(r->eps[r->n_eps - 1] > 0)) return cli_usage_error(cmd, "--check needs an --eps above 0");
    if ((rc = cli_parse_io_loss(cmd, a->loss_text, 0, &r->ao.loss, &r->ao.kappa))) return rc;
    if (a->steps == 0 || a->restarts == 0 || a->batch == 0)
        return cli_usage_error(cmd, "--steps, --restarts and --batch must be >= 1");
    if (!(a->step >= 0) || !isfinite(a->step)) return cli_usage_error(cmd, "--step %g must be >= 0", a->step);
    if ((rc = cli_check_out_dir(cmd, "--out", a->out_dir))) return rc;
    return cli_check_out_dir(cmd, "--report", a->report);
}

/* The model, the test examples attacked (class labels needed) and room
 * for the adversarial inputs. */
static int load_inputs(const char *cmd, int argc, char **argv, attack_run *r) {
    attack_args *a = &r->a;
    int rc = cli_io_model(cmd, &a->s, ATTACK_GROUPS, argc, argv, a->model_path, &r->m);
    if (rc) return rc;
    r->dim = clipnn_model_n_inputs(r->m);
    size_t k = clipnn_model_n_outputs(r->m);
    if (a->targeted >= 0 && (size_t)a->targeted >= k)
        return cli_usage_error(cmd, "--targeted %d: the model has %zu classes", a->targeted, k);
    if ((rc = cli_io_load(cmd, &a->s, a->box, r->dim, &r->io))) return rc;
    if (clipnn_dataset_n_classes(r->io.test) == 0)
        return cli_usage_error(cmd, "--data %s is a regression set; attacks need class labels", a->s.data);
    size_t total = clipnn_dataset_n(r->io.test);
    r->n_ex = a->n_ex == 0 || a->n_ex > total ? total : a->n_ex;
    r->x = cli_io_test_x(&r->io);
    r->labels = clipnn_dataset_y(r->io.test);
    r->adv = malloc(r->n_ex * r->dim * sizeof *r->adv);
    r->pert = malloc(r->dim * sizeof *r->pert);
    r->correct = malloc(r->n_ex ? r->n_ex : 1);
    return r->adv && r->pert && r->correct ? 0 : cli_fail(cmd, CLIPNN_ERR_NOMEM, "adversarial inputs");
}

static int open_traces(const char *cmd, attack_run *r) {
    const char *dir = r->a.out_dir;
    r->trace = (trace_ctx){NULL, NULL, r->a.images, 0};
    if (!dir) return 0;
    int rc = cli_open_csv(cmd, dir, "trace.csv", "eps,restart,batch,step,loss,grad_norm,success_rate", &r->trace.trace);
    if (!rc)
        rc = cli_open_csv(cmd, dir, "trace_examples.csv", "eps,restart,example,step,loss,grad_norm,fooled",
                          &r->trace.examples);
    return rc;
}

static int close_traces(const char *cmd, attack_run *r, int rc) {
    rc = cli_close_csv(cmd, r->trace.trace, rc);
    return cli_close_csv(cmd, r->trace.examples, rc);
}

static void set_attack_options(attack_run *r) {
    const attack_args *a = &r->a;
    clipnn_attack_options *ao = &r->ao;
    ao->steps = a->steps;
    ao->step = a->step;
    ao->random_start = a->random_start;
    ao->restarts = a->restarts;
    ao->targeted = a->targeted >= 0;
    ao->target_class = a->targeted >= 0 ? (size_t)a->targeted : 0;
    ao->space = r->io.space;
    ao->batch = a->batch;
    ao->seed = a->seed;
    ao->on_step = on_step;
    ao->user = &r->trace;
    r->l2 = ao->method == CLIPNN_ATTACK_PGD_L2;
    r->iterative = ao->method != CLIPNN_ATTACK_FGSM;
    r->checks = !a->no_checks;
}

static void print_header(const attack_run *r) {
    const attack_args *a = &r->a;
    const clipnn_attack_options *ao = &r->ao;
    printf("%s on %s: %zu test examples, %s%s, loss %s%s, %zu steps, %zu restart(s)%s; box [%g, %g]%s\n",
           a->model_path, a->s.data, r->n_ex, clipnn_attack_method_name(ao->method), ao->targeted ? " (targeted)" : "",
           clipnn_loss_name(ao->loss), ao->loss == CLIPNN_LOSS_MARGIN ? "" : " (cross-entropy)",
           r->iterative ? a->steps : 1, a->restarts, a->random_start ? ", random start" : "", r->io.space.box_lo,
           r->io.space.box_hi, r->io.space.mean ? ", model input (x - mean)/std as trained" : "");
}

/* The masking check at budget e: one step (FGSM, or one L2 step). */
static int one_step_attack(const char *cmd, attack_run *r, size_t e) {
    clipnn_attack_options o1 = r->ao;
    o1.on_step = NULL;
    o1.random_start = 0;
    o1.restarts = 1;
    if (r->l2) {
        o1.steps = 1;
        o1.step = r->eps[e];
    } else {
        o1.method = CLIPNN_ATTACK_FGSM;
    }
    clipnn_status st = clipnn_attack(r->m, &o1, r->x, r->labels, r->n_ex, NULL, &r->one[e]);
    if (st) return cli_fail(cmd, st, "one-step attack");
    r->robust_one[e] = r->ao.targeted ? 1 - r->one[e].success_rate : r->one[e].robust_accuracy;
    return 0;
}

/* PNGs of the first --images examples at budget e: original (once),
 * adversarial input, perturbation amplified so that its colour scale spans
 * the budget (or the largest change). */
static int write_images(const char *cmd, attack_run *r, size_t e) {
    const cli_io_data *io = &r->io;
    const double lo = io->space.box_lo, hi = io->space.box_hi;
    int rc = 0;
    for (size_t i = 0; i < r->a.images && i < r->n_ex && !rc; i++) {
        char name[128];
        const float *x0 = r->x + i * r->dim, *xa = r->adv + i * r->dim;
        double amp = 0;
        for (size_t j = 0; j < r->dim; j++) {
            r->pert[j] = xa[j] - x0[j];
            amp = fmax(amp, fabs(r->pert[j]));
        }
        if (e == 0) {
            snprintf(name, sizeof name, "ex%03zu_original.png", i);
            rc = cli_write_gray(cmd, r->a.out_dir, name, x0, io->h, io->w, lo, hi);
        }
        snprintf(name, sizeof name, "ex%03zu_eps%g_adversarial.png", i, r->eps[e]);
        if (!rc) rc = cli_write_gray(cmd, r->a.out_dir, name, xa, io->h, io->w, lo, hi);
        snprintf(name, sizeof name, "ex%03zu_eps%g_perturbation.png", i, r->eps[e]);
        double scale = r->eps[e] > 0 && !r->l2 ? r->eps[e] : amp > 0 ? amp : 1;
        if (!rc) rc = cli_write_signed(cmd, r->a.out_dir, name, r->pert, io->h, io->w, scale);
    }
    return rc;
}

/* --report: the first --images adversarial inputs at budget e. */
static int keep_for_report(const char *cmd, attack_run *r, size_t e) {
    r->report_n = r->a.images < r->n_ex ? r->a.images : r->n_ex;
    if (!r->report_adv && !(r->report_adv = malloc((r->n_eps * r->report_n * r->dim + 1) * sizeof *r->report_adv)))
        return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report");
    memcpy(r->report_adv + e * r->report_n * r->dim, r->adv, r->report_n * r->dim * sizeof *r->adv);
    return 0;
}

static int write_report(const char *cmd, const attack_run *r) {
    char setup[512];
    snprintf(setup, sizeof setup, "%s on %s: %zu test examples, %s, loss %s, %zu steps, %zu restart(s)",
             r->a.model_path, r->a.s.data, r->n_ex, r->a.method_name, clipnn_loss_name(r->ao.loss),
             r->iterative ? r->a.steps : 1, r->a.restarts);
    cli_attack_page p = {r->m, &r->io.space, r->io.h, r->io.w, r->dim, r->report_n, r->x, r->labels, r->report_adv,
                         r->n_eps, r->eps, r->l2, r->res, r->robust, r->ao.targeted, r->robust_one, setup};
    return cli_attack_report(cmd, r->a.report, &p);
}

/* The inputs as .npy in the data's shape: original.npy (once) and
 * eps<E>_adversarial.npy, [n][h][w] for images. */
static int write_arrays(const char *cmd, attack_run *r, size_t e) {
    char name[128];
    int rc = e == 0 ? cli_write_inputs(cmd, r->a.out_dir, "original.npy", r->x, r->n_ex, r->dim, &r->io) : 0;
    snprintf(name, sizeof name, "eps%g_adversarial.npy", r->eps[e]);
    return rc ? rc : cli_write_inputs(cmd, r->a.out_dir, name, r->adv, r->n_ex, r->dim, &r->io);
}

static attack_set the_set(attack_run *r) {
    return (attack_set){r->m, &r->io.space, r->x, r->labels, r->n_ex, r->dim, r->a.batch};
}

/* The attack at budget e (every method), its one-step check and its images. */
static int attack_at(const char *cmd, attack_run *r, size_t e) {
    r->ao.eps = r->eps[e];
    r->trace.eps = r->eps[e];
    attack_set set = the_set(r);
    int rc = attack_ensemble(cmd, &set, &r->ao, r->methods, r->n_methods, r->adv, r->per_method[e], r->correct,
                             &r->robust_min[e]);
    if (rc) return rc;
    r->res[e] = r->per_method[e][0];
    r->robust[e] = r->ao.targeted ? 1 - r->res[e].success_rate : r->robust_min[e];
    r->robust_one[e] = NAN;
    rc = r->checks && r->iterative ? one_step_attack(cmd, r, e) : 0;
    if (!rc && r->a.out_dir && r->io.h > 0) rc = write_images(cmd, r, e);
    if (!rc && r->a.out_dir) rc = write_arrays(cmd, r, e);
    if (!rc && r->a.report) rc = keep_for_report(cmd, r, e);
    return rc;
}

/* The budget of the unbounded attack: one covering the whole box. */
static double unbounded_eps(const attack_run *r) {
    double width = r->io.space.box_hi - r->io.space.box_lo;
    return r->l2 ? width * sqrt((double)r->dim) : width;
}

static size_t unbounded_steps(const attack_run *r) { return r->a.steps > 100 ? r->a.steps : 100; }

static int unbounded_attack(const char *cmd, attack_run *r) {
    r->unbounded = NAN;
    if (!(r->checks && r->iterative && isfinite(r->io.space.box_lo) && isfinite(r->io.space.box_hi))) return 0;
    r->unbounded_adv = malloc(r->n_ex * r->dim * sizeof *r->unbounded_adv);
    if (!r->unbounded_adv) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "unbounded attack");
    clipnn_attack_options ou = r->ao;
    ou.on_step = NULL;
    ou.eps = unbounded_eps(r);
    ou.steps = unbounded_steps(r);
    ou.step = 0;
    clipnn_status st = clipnn_attack(r->m, &ou, r->x, r->labels, r->n_ex, r->unbounded_adv, &r->ub);
    if (st) return cli_fail(cmd, st, "unbounded attack");
    r->unbounded = r->ub.success_rate;
    return 0;
}

static void print_json(const attack_run *r, const clipnn_diagnosis *d, double secs) {
    const attack_args *a = &r->a;
    cli_json j;
    cli_json_begin(&j, stdout);
    cli_json_str(&j, "model", a->model_path);
    cli_json_str(&j, "data", a->s.data);
    cli_json_str(&j, "method", clipnn_attack_method_name(r->ao.method));
    cli_json_str(&j, "loss", clipnn_loss_name(r->ao.loss));
    cli_json_u64(&j, "n", r->n_ex);
    cli_json_u64(&j, "steps", r->iterative ? a->steps : 1);
    cli_json_u64(&j, "restarts", a->restarts);
    cli_json_bool(&j, "random_start", a->random_start);
    cli_json_open(&j, "rows", '[');
    for (size_t e = 0; e < r->n_eps; e++) {
        const clipnn_attack_result *res = &r->res[e], *one = &r->one[e];
        int no_one = isnan(r->robust_one[e]);
        cli_json_open(&j, NULL, '{');
        cli_json_num(&j, "eps", r->eps[e]);
        cli_json_num(&j, "clean_accuracy", res->clean_accuracy);
        cli_json_num(&j, "robust_accuracy", res->robust_accuracy);
        cli_json_num(&j, "success_rate", res->success_rate);
        cli_json_num(&j, "mean_linf", res->mean_linf);
        cli_json_num(&j, "mean_l2", res->mean_l2);
        cli_json_num(&j, "one_step_robust_accuracy", no_one ? NAN : one->robust_accuracy);
        cli_json_num(&j, "one_step_success_rate", no_one ? NAN : one->success_rate);
        cli_json_u64(&j, "zero_gradient_failures", res->zero_grad);
        if (r->n_methods > 1) cli_json_num(&j, "robust_accuracy_all_methods", r->robust_min[e]);
        cli_json_close(&j, '}');
    }
    cli_json_close(&j, ']');
    cli_json_num(&j, "unbounded_success_rate", r->unbounded);
    if (a->check) attack_json_checks(&j, r->sanity, r->eps[r->n_eps - 1]);
    cli_json_open(&j, "masking", '[');
    for (size_t i = 0; i < d->n_findings; i++) cli_json_str(&j, NULL, d->findings[i].test);
    cli_json_close(&j, ']');
    cli_json_num(&j, "seconds", secs);
    cli_json_end(&j);
}

/* Robust accuracy per method and under all of them (the reported one). */
static void print_method_rows(const attack_run *r) {
    printf("robust accuracy per method (the first is the table above); an example is robust when no method "
           "broke it:\n");
    printf("%-8s", "eps");
    for (size_t i = 0; i < r->n_methods; i++) printf(" %-10s", clipnn_attack_method_name(r->methods[i]));
    printf(" %s\n", "all");
    for (size_t e = 0; e < r->n_eps; e++) {
        printf("%-8g", r->eps[e]);
        for (size_t i = 0; i < r->n_methods; i++) printf(" %-10.4f", r->per_method[e][i].robust_accuracy);
        printf(" %.4f\n", r->robust_min[e]);
    }
}

static void print_rows(const attack_run *r) {
    const int targeted = r->ao.targeted;
    printf("%-8s %-9s %-10s %-9s %-10s %-10s %-11s %s\n", "eps", "clean", "robust", "success", "mean_linf",
           "mean_l2", !(r->iterative && r->checks) ? "" : targeted ? "1step-succ" : r->l2 ? "one-step" : "fgsm",
           "zero-grad");
    for (size_t e = 0; e < r->n_eps; e++) {
        const clipnn_attack_result *res = &r->res[e];
        char one_text[32] = "";
        if (!isnan(r->robust_one[e]))
            snprintf(one_text, sizeof one_text, "%.4f", targeted ? r->one[e].success_rate : r->one[e].robust_accuracy);
        printf("%-8g %-9.4f %-10.4f %-9.4f %-10.4g %-10.4g %-11s %zu\n", r->eps[e], res->clean_accuracy,
               res->robust_accuracy, res->success_rate, res->mean_linf, res->mean_l2, one_text, res->zero_grad);
    }
    if (!isnan(r->unbounded))
        printf("unbounded attack (eps %g, %zu steps): success rate %.4f\n", unbounded_eps(r), unbounded_steps(r),
               r->unbounded);
    if (r->n_methods > 1) print_method_rows(r);
}

/* Why examples stayed unbroken, when the results point at something: a
 * zero gradient at the largest budget, an unbounded attack that fails, or
 * masking symptoms. */
static void explain_failures(attack_run *r, const clipnn_diagnosis *d) {
    const clipnn_attack_result *last = &r->res[r->n_eps - 1];
    const double eps = r->eps[r->n_eps - 1];
    if (last->zero_grad > 0) {
        printf("\nat eps %g, %zu unbroken examples end with an input gradient of exactly 0\n", eps, last->zero_grad);
        diagnose_stalled(r->m, &r->ao, r->adv, r->labels, r->n_ex, &r->io.space, 1);
    } else if (r->unbounded < 1) {
        printf("\nthe unbounded attack leaves %zu examples unbroken (%zu with an input gradient of exactly 0)\n",
               r->ub.eligible - r->ub.successes, r->ub.zero_grad);
        diagnose_stalled(r->m, &r->ao, r->unbounded_adv, r->labels, r->n_ex, &r->io.space, 0);
    } else if (d->n_findings > 0 && last->successes < last->eligible) {
        printf("\nmasking symptoms: the first example the attack left unbroken at eps %g, diagnosed:\n", eps);
        diagnose_stalled(r->m, &r->ao, r->adv, r->labels, r->n_ex, &r->io.space, 0);
    }
}

static void print_report(attack_run *r, const clipnn_diagnosis *d, double secs) {
    print_rows(r);
    printf("masking checks:%s\n", d->n_findings ? "" : " none of the symptoms");
    for (size_t i = 0; i < d->n_findings; i++)
        printf("  %s: %s\n    remedy: %s\n", d->findings[i].test, d->findings[i].numbers, d->findings[i].remedy);
    for (size_t i = 0; i < d->n_checks; i++) printf("  ok: %s (%s)\n", d->checks[i].test, d->checks[i].numbers);
    if (r->a.check) attack_print_checks(r->sanity, r->eps[r->n_eps - 1]);
    printf("%.1f s\n", secs);
    explain_failures(r, d);
}

/* --check at the largest budget, the last one attacked. */
static int sanity_checks(const char *cmd, attack_run *r) {
    attack_set set = the_set(r);
    size_t last = r->n_eps - 1, zero_end = 0;
    for (size_t i = 0; i < r->n_methods; i++) zero_end += r->per_method[last][i].zero_grad;
    clipnn_attack_options o = r->ao;
    o.eps = r->eps[last];
    return attack_sanity_checks(cmd, &set, &o, r->methods, r->n_methods, r->correct, zero_end, r->sanity);
}

/* Every budget, the unbounded attack, the masking diagnosis, the report. */
static int run_attacks(const char *cmd, attack_run *r) {
    double t0 = cli_now();
    if (!r->a.json) print_header(r);
    int rc = 0;
    for (size_t e = 0; e < r->n_eps && !rc; e++) rc = attack_at(cmd, r, e);
    if (!rc) rc = unbounded_attack(cmd, r);
    if (!rc && r->a.check) rc = sanity_checks(cmd, r);
    if (rc) return rc;
    clipnn_diagnosis d;
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(r->eps, r->robust, r->checks && r->iterative ? r->robust_one : NULL, r->n_eps,
                            r->unbounded, &d);
    double secs = cli_now() - t0;
    if (r->a.json)
        print_json(r, &d, secs);
    else
        print_report(r, &d, secs);
    return 0;
}

int cmd_attack(int argc, char **argv) {
    const char *cmd = "attack";
    attack_run r;
    memset(&r, 0, sizeof r);
    attack_args_default(&r.a);
    r.ao = clipnn_attack_options_default();
    cli_option table[CLI_MAX_OPTIONS];
    attack_option_table(&r.a, table);
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = check_args(cmd, &r))) return rc;
    rc = load_inputs(cmd, argc, argv, &r);
    if (!rc) rc = open_traces(cmd, &r);
    if (!rc) {
        set_attack_options(&r);
        rc = run_attacks(cmd, &r);
        if (!rc && r.a.report) rc = write_report(cmd, &r);
    }
    rc = close_traces(cmd, &r, rc);
    free(r.adv);
    free(r.pert);
    free(r.correct);
    free(r.unbounded_adv);
    free(r.report_adv);
    cli_io_free(&r.io);
    clipnn_model_free(r.m);
    return rc;
}
