/* clipnn attack: FGSM and PGD against a saved model, robust accuracy per
 * epsilon, the gradient-masking checks, and a diagnosis when it stalls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inputopt_common.h"
#include "report.h"

static const char SYNOPSIS[] =
    "--model FILE [--data SPEC] --method fgsm|pgd-linf|pgd-l2 [--eps E[,E...]]\n"
    "             [--step A] [--steps N] [--random-start] [--restarts R] [--targeted K]\n"
    "             [--loss xent|margin[:KAPPA]] [--n EXAMPLES] [--out DIR] [--json]\n"
    "\n"
    "Attacks the first --n examples of the test part of --data (loaded as 'clipnn train'\n"
    "loads it: give the same --data and --scale). Image data are attacked in pixel units\n"
    "in [0, 1] whatever scaling the model was trained with, so --eps is in pixels.\n"
    "For each epsilon: clean accuracy, robust accuracy (right after the attack), success\n"
    "rate (fooled among the examples the attack can fool: the correctly classified ones,\n"
    "or those not of the target class), mean L-inf and L2 distortion of the successful\n"
    "adversarial inputs. The masking checks (Athalye et al. 2018, Carlini et al. 2019)\n"
    "run a one-step attack at each epsilon (FGSM, or one L2 step for pgd-l2) and an\n"
    "unbounded attack (budget covering the box) unless --no-checks. Examples that stay\n"
    "unbroken with an input gradient of exactly zero are diagnosed (clipnn diagnose).\n"
    "--out DIR: PNGs of the first --images originals, adversarial inputs and perturbations\n"
    "(amplified, blue - white - red colour scale with its bar) at each epsilon,\n"
    "trace.csv (eps,restart,batch,step,loss,grad_norm,success_rate: batch means) and\n"
    "trace_examples.csv (eps,restart,example,step,loss,grad_norm,fooled) for those examples.\n"
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

int cmd_attack(int argc, char **argv) {
    const char *cmd = "attack";
    cli_settings s;
    cli_settings_default(&s, CLI_MODE_EVAL);
    const char *model_path = NULL, *method_name = NULL, *eps_text = "0,0.01,0.03,0.1", *loss_text = "xent";
    const char *out_dir = NULL, *box = NULL;
    double step = 0;
    size_t steps = 40, restarts = 1, n_ex = 1000, batch = 256, images = 8;
    int random_start = 0, json = 0, targeted = -1, no_checks = 0;
    uint64_t seed = 1;
    const unsigned groups = CLI_OPTS_DATA | CLI_OPTS_THREADS;
    cli_option table[CLI_MAX_OPTIONS];
    size_t n = 0;
    table[n++] = (cli_option){"--model", CLI_STR, &model_path, "FILE", "model checkpoint (required)"};
    cli_settings_options(&s, groups, table, &n);
    table[n++] = (cli_option){"--method", CLI_STR, &method_name, "M", "fgsm | pgd-linf | pgd-l2 (required)"};
    table[n++] = (cli_option){"--eps", CLI_STR, &eps_text, "E,..", "budgets, increasing (pixels for images)"};
    table[n++] = (cli_option){"--step", CLI_DOUBLE, &step, "A", "PGD step size (0: max(2.5 eps / steps, eps / 4))"};
    table[n++] = (cli_option){"--steps", CLI_SIZE, &steps, "N", "PGD iterations"};
    table[n++] = (cli_option){"--random-start", CLI_FLAG, &random_start, NULL, "start uniformly in the budget"};
    table[n++] = (cli_option){"--restarts", CLI_SIZE, &restarts, "R", "runs per example, best kept"};
    table[n++] = (cli_option){"--targeted", CLI_INT, &targeted, "K", "reach class K (-1: untargeted)"};
    table[n++] = (cli_option){"--loss", CLI_STR, &loss_text, "L", "xent | margin | margin:KAPPA"};
    table[n++] = (cli_option){"--n", CLI_SIZE, &n_ex, "EXAMPLES", "test examples attacked (0: all)"};
    table[n++] = (cli_option){"--batch", CLI_SIZE, &batch, "B", "examples per forward pass"};
    table[n++] = (cli_option){"--box", CLI_STR, &box, "LO,HI", "input box (images: 0,1; other data: none)"};
    table[n++] = (cli_option){"--seed", CLI_U64, &seed, "S", "seed of the random starts"};
    table[n++] = (cli_option){"--no-checks", CLI_FLAG, &no_checks, NULL, "skip the one-step and unbounded runs"};
    table[n++] = (cli_option){"--out", CLI_STR, &out_dir, "DIR", "write PNGs and trace.csv there"};
    table[n++] = (cli_option){"--images", CLI_SIZE, &images, "N", "examples drawn with --out"};
    table[n++] = (cli_option){"--json", CLI_FLAG, &json, NULL, "end stdout with one JSON summary line"};
    table[n] = (cli_option){NULL, 0, NULL, NULL, NULL};
    int rc = cli_parse(cmd, SYNOPSIS, table, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_EXIT_OK : rc;
    if (!model_path) return cli_usage_error(cmd, "--model FILE is required");
    if (!method_name) return cli_usage_error(cmd, "--method is required (fgsm, pgd-linf, pgd-l2)");
    clipnn_attack_options ao = clipnn_attack_options_default();
    clipnn_status st = clipnn_attack_method_parse(method_name, &ao.method);
    if (st) return cli_usage_error(cmd, "--method: %s", clipnn_last_error());
    double eps[MAX_EPS];
    size_t n_eps;
    if ((rc = cli_parse_list(cmd, "--eps", eps_text, eps, MAX_EPS, &n_eps))) return rc;
    for (size_t i = 0; i < n_eps; i++)
        if (eps[i] < 0 || (i > 0 && eps[i] <= eps[i - 1]))
            return cli_usage_error(cmd, "--eps '%s': want increasing values >= 0", eps_text);
    if ((rc = cli_parse_io_loss(cmd, loss_text, 0, &ao.loss, &ao.kappa))) return rc;
    if (steps == 0 || restarts == 0 || batch == 0)
        return cli_usage_error(cmd, "--steps, --restarts and --batch must be >= 1");
    if (!(step >= 0) || !isfinite(step)) return cli_usage_error(cmd, "--step %g must be >= 0", step);
    clipnn_model *m = NULL;
    if ((rc = cli_io_model(cmd, &s, groups, argc, argv, model_path, &m))) return rc;
    size_t dim = clipnn_model_n_inputs(m), k = clipnn_model_n_outputs(m);
    if (targeted >= 0 && (size_t)targeted >= k) {
        clipnn_model_free(m);
        return cli_usage_error(cmd, "--targeted %d: the model has %zu classes", targeted, k);
    }
    cli_io_data io;
    float *adv = NULL, *pert = NULL, *unbounded_adv = NULL;
    FILE *trace = NULL, *examples = NULL;
    if ((rc = cli_io_load(cmd, &s, box, dim, &io))) goto done;
    if (clipnn_dataset_n_classes(io.test) == 0) {
        rc = cli_usage_error(cmd, "--data %s is a regression set; attacks need class labels", s.data);
        goto done;
    }
    size_t total = clipnn_dataset_n(io.test);
    if (n_ex == 0 || n_ex > total) n_ex = total;
    const float *x = cli_io_test_x(&io), *labels = clipnn_dataset_y(io.test);
    adv = malloc(n_ex * dim * sizeof *adv);
    pert = malloc(dim * sizeof *pert);
    if (!adv || !pert) {
        rc = cli_fail(cmd, CLIPNN_ERR_NOMEM, "adversarial inputs");
        goto done;
    }
    if (out_dir) {
        if ((rc = cli_make_dir(cmd, out_dir))) goto done;
        if ((rc = cli_open_csv(cmd, out_dir, "trace.csv", "eps,restart,batch,step,loss,grad_norm,success_rate",
                               &trace)) ||
            (rc = cli_open_csv(cmd, out_dir, "trace_examples.csv", "eps,restart,example,step,loss,grad_norm,fooled",
                               &examples)))
            goto done;
    }
    trace_ctx tctx = {trace, examples, images, 0};
    ao.steps = steps;
    ao.step = step;
    ao.random_start = random_start;
    ao.restarts = restarts;
    ao.targeted = targeted >= 0;
    ao.target_class = targeted >= 0 ? (size_t)targeted : 0;
    ao.space = io.space;
    ao.batch = batch;
    ao.seed = seed;
    ao.on_step = on_step;
    ao.user = &tctx;
    const int l2 = ao.method == CLIPNN_ATTACK_PGD_L2;
    const int iterative = ao.method != CLIPNN_ATTACK_FGSM;
    const int checks = !no_checks;
    clipnn_attack_result res[MAX_EPS], one[MAX_EPS];
    double robust[MAX_EPS], robust_one[MAX_EPS];
    double t0 = cli_now();
    if (!json)
        printf("%s on %s: %zu test examples, %s%s, loss %s%s, %zu steps, %zu restart(s)%s; box [%g, %g]%s\n",
               model_path, s.data, n_ex, clipnn_attack_method_name(ao.method), ao.targeted ? " (targeted)" : "",
               clipnn_loss_name(ao.loss), ao.loss == CLIPNN_LOSS_MARGIN ? "" : " (cross-entropy)",
               iterative ? steps : 1, restarts, random_start ? ", random start" : "", io.space.box_lo, io.space.box_hi,
               io.space.mean ? ", model input (x - mean)/std as trained" : "");
    for (size_t e = 0; e < n_eps; e++) {
        ao.eps = eps[e];
        tctx.eps = eps[e];
        st = clipnn_attack(m, &ao, x, labels, n_ex, adv, &res[e]);
        if (st) {
            rc = cli_fail(cmd, st, "attack");
            goto done;
        }
        /* what the masking checks compare: examples left unbroken */
        robust[e] = ao.targeted ? 1 - res[e].success_rate : res[e].robust_accuracy;
        robust_one[e] = NAN;
        if (checks && iterative) {
            clipnn_attack_options o1 = ao;
            o1.on_step = NULL;
            o1.random_start = 0;
            o1.restarts = 1;
            if (l2) {
                o1.steps = 1;
                o1.step = eps[e];
            } else {
                o1.method = CLIPNN_ATTACK_FGSM;
            }
            if ((st = clipnn_attack(m, &o1, x, labels, n_ex, NULL, &one[e]))) {
                rc = cli_fail(cmd, st, "one-step attack");
                goto done;
            }
            robust_one[e] = ao.targeted ? 1 - one[e].success_rate : one[e].robust_accuracy;
        }
        if (out_dir && io.h > 0) {
            for (size_t i = 0; i < images && i < n_ex && !rc; i++) {
                char name[128];
                const float *x0 = x + i * dim, *xa = adv + i * dim;
                double amp = 0;
                for (size_t j = 0; j < dim; j++) {
                    pert[j] = xa[j] - x0[j];
                    amp = fmax(amp, fabs(pert[j]));
                }
                if (e == 0) {
                    snprintf(name, sizeof name, "ex%03zu_original.png", i);
                    rc = cli_write_gray(cmd, out_dir, name, x0, io.h, io.w, io.space.box_lo, io.space.box_hi);
                }
                snprintf(name, sizeof name, "ex%03zu_eps%g_adversarial.png", i, eps[e]);
                if (!rc) rc = cli_write_gray(cmd, out_dir, name, xa, io.h, io.w, io.space.box_lo, io.space.box_hi);
                /* amplified: the colour scale spans the budget (or the largest change) */
                snprintf(name, sizeof name, "ex%03zu_eps%g_perturbation.png", i, eps[e]);
                double scale = eps[e] > 0 && !l2 ? eps[e] : amp > 0 ? amp : 1;
                if (!rc) rc = cli_write_signed(cmd, out_dir, name, pert, io.h, io.w, scale);
            }
            if (rc) goto done;
        }
    }
    /* unbounded: a budget covering the whole box */
    double unbounded = NAN;
    clipnn_attack_result ub = {0};
    if (checks && iterative && isfinite(io.space.box_lo) && isfinite(io.space.box_hi)) {
        unbounded_adv = malloc(n_ex * dim * sizeof *unbounded_adv);
        if (!unbounded_adv) {
            rc = cli_fail(cmd, CLIPNN_ERR_NOMEM, "unbounded attack");
            goto done;
        }
        clipnn_attack_options ou = ao;
        ou.on_step = NULL;
        double width = io.space.box_hi - io.space.box_lo;
        ou.eps = l2 ? width * sqrt((double)dim) : width;
        ou.steps = steps > 100 ? steps : 100;
        ou.step = 0;
        if ((st = clipnn_attack(m, &ou, x, labels, n_ex, unbounded_adv, &ub))) {
            rc = cli_fail(cmd, st, "unbounded attack");
            goto done;
        }
        unbounded = ub.success_rate;
    }
    clipnn_diagnosis d;
    clipnn_diagnosis_init(&d);
    clipnn_diagnose_masking(eps, robust, checks && iterative ? robust_one : NULL, n_eps, unbounded, &d);
    double secs = cli_now() - t0;
    if (json) {
        cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "model", model_path);
        cli_json_str(&j, "data", s.data);
        cli_json_str(&j, "method", clipnn_attack_method_name(ao.method));
        cli_json_str(&j, "loss", clipnn_loss_name(ao.loss));
        cli_json_u64(&j, "n", n_ex);
        cli_json_u64(&j, "steps", iterative ? steps : 1);
        cli_json_u64(&j, "restarts", restarts);
        cli_json_bool(&j, "random_start", random_start);
        cli_json_open(&j, "rows", '[');
        for (size_t e = 0; e < n_eps; e++) {
            cli_json_open(&j, NULL, '{');
            cli_json_num(&j, "eps", eps[e]);
            cli_json_num(&j, "clean_accuracy", res[e].clean_accuracy);
            cli_json_num(&j, "robust_accuracy", res[e].robust_accuracy);
            cli_json_num(&j, "success_rate", res[e].success_rate);
            cli_json_num(&j, "mean_linf", res[e].mean_linf);
            cli_json_num(&j, "mean_l2", res[e].mean_l2);
            cli_json_num(&j, "one_step_robust_accuracy", isnan(robust_one[e]) ? NAN : one[e].robust_accuracy);
            cli_json_num(&j, "one_step_success_rate", isnan(robust_one[e]) ? NAN : one[e].success_rate);
            cli_json_u64(&j, "zero_gradient_failures", res[e].zero_grad);
            cli_json_close(&j, '}');
        }
        cli_json_close(&j, ']');
        cli_json_num(&j, "unbounded_success_rate", unbounded);
        cli_json_open(&j, "masking", '[');
        for (size_t i = 0; i < d.n_findings; i++) cli_json_str(&j, NULL, d.findings[i].test);
        cli_json_close(&j, ']');
        cli_json_num(&j, "seconds", secs);
        cli_json_end(&j);
    } else {
        printf("%-8s %-9s %-10s %-9s %-10s %-10s %-11s %s\n", "eps", "clean", "robust", "success", "mean_linf",
               "mean_l2", !(iterative && checks) ? "" : ao.targeted ? "1step-succ" : l2 ? "one-step" : "fgsm",
               "zero-grad");
        for (size_t e = 0; e < n_eps; e++) {
            char one_text[32] = "";
            if (!isnan(robust_one[e]))
                snprintf(one_text, sizeof one_text, "%.4f", ao.targeted ? one[e].success_rate : one[e].robust_accuracy);
            printf("%-8g %-9.4f %-10.4f %-9.4f %-10.4g %-10.4g %-11s %zu\n", eps[e], res[e].clean_accuracy,
                   res[e].robust_accuracy, res[e].success_rate, res[e].mean_linf, res[e].mean_l2, one_text,
                   res[e].zero_grad);
        }
        if (!isnan(unbounded))
            printf("unbounded attack (eps %g, %zu steps): success rate %.4f\n",
                   l2 ? (io.space.box_hi - io.space.box_lo) * sqrt((double)dim) : io.space.box_hi - io.space.box_lo,
                   steps > 100 ? steps : 100, unbounded);
        printf("masking checks:%s\n", d.n_findings ? "" : " none of the symptoms");
        for (size_t i = 0; i < d.n_findings; i++)
            printf("  %s: %s\n    remedy: %s\n", d.findings[i].test, d.findings[i].numbers, d.findings[i].remedy);
        for (size_t i = 0; i < d.n_checks; i++) printf("  ok: %s (%s)\n", d.checks[i].test, d.checks[i].numbers);
        printf("%.1f s\n", secs);
        if (res[n_eps - 1].zero_grad > 0) {
            printf("\nat eps %g, %zu unbroken examples end with an input gradient of exactly 0\n", eps[n_eps - 1],
                   res[n_eps - 1].zero_grad);
            diagnose_stalled(m, &ao, adv, labels, n_ex, &io.space, 1);
        } else if (unbounded < 1) {
            printf("\nthe unbounded attack leaves %zu examples unbroken (%zu with an input gradient of exactly 0)\n",
                   ub.eligible - ub.successes, ub.zero_grad);
            diagnose_stalled(m, &ao, unbounded_adv, labels, n_ex, &io.space, 0);
        } else if (d.n_findings > 0 && res[n_eps - 1].successes < res[n_eps - 1].eligible) {
            printf("\nmasking symptoms: the first example the attack left unbroken at eps %g, diagnosed:\n",
                   eps[n_eps - 1]);
            diagnose_stalled(m, &ao, adv, labels, n_ex, &io.space, 0);
        }
    }
done:
    if (trace && fclose(trace) != 0 && !rc) {
        fprintf(stderr, "clipnn %s: trace.csv: write failed\n", cmd);
        rc = CLI_EXIT_IO;
    }
    if (examples && fclose(examples) != 0 && !rc) {
        fprintf(stderr, "clipnn %s: trace_examples.csv: write failed\n", cmd);
        rc = CLI_EXIT_IO;
    }
    free(adv);
    free(pert);
    free(unbounded_adv);
    cli_io_free(&io);
    clipnn_model_free(m);
    return rc;
}
