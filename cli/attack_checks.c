/* clipnn attack: several methods as one evaluation, and the sanity checks
 * of --check (Carlini et al., "On evaluating adversarial robustness", 2019;
 * the checks AutoAttack runs). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attack_checks.h"

int attack_parse_methods(const char *cmd, const char *text, clipnn_attack_method *methods, size_t cap, size_t *n) {
    char buf[256];
    if (strlen(text) >= sizeof buf) return cli_usage_error(cmd, "--method: list too long");
    strcpy(buf, text);
    *n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == cap) return cli_usage_error(cmd, "--method: at most %zu methods", cap);
        if (clipnn_attack_method_parse(tok, &methods[*n]))
            return cli_usage_error(cmd, "--method: %s", clipnn_last_error());
        for (size_t i = 0; i < *n; i++)
            if (methods[i] == methods[*n]) return cli_usage_error(cmd, "--method: %s given twice", tok);
        (*n)++;
    }
    return *n ? 0 : cli_usage_error(cmd, "--method: no method named");
}

/* correct[i] stays 1 only where the model classifies input i of xs right. */
static int mark_correct(const char *cmd, const attack_set *s, const float *xs, unsigned char *correct) {
    const size_t k = clipnn_model_n_outputs(s->m), B = s->batch;
    float *xm = malloc(B * s->dim * sizeof *xm);
    if (!xm) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "predictions");
    clipnn_status st = CLIPNN_OK;
    for (size_t start = 0; start < s->n && !st; start += B) {
        size_t nb = s->n - start < B ? s->n - start : B;
        for (size_t i = 0; i < nb * s->dim; i++) {
            size_t j = i % s->dim;
            float v = xs[start * s->dim + i];
            xm[i] = s->space->mean ? (v - s->space->mean[j]) / s->space->std[j] : v;
        }
        const float *z;
        if ((st = clipnn_forward(s->m, xm, nb, &z))) break;
        for (size_t b = 0; b < nb; b++) {
            size_t best = 0;
            for (size_t c = 1; c < k; c++)
                if (z[b * k + c] > z[b * k + best]) best = c;
            if ((float)best != s->labels[start + b]) correct[start + b] = 0;
        }
    }
    free(xm);
    return st ? cli_fail(cmd, st, "predictions") : 0;
}

static double fraction(const unsigned char *flags, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += flags[i];
    return n ? (double)c / (double)n : NAN;
}

int attack_ensemble(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                    const clipnn_attack_method *methods, size_t n_methods, float *adv, clipnn_attack_result *res,
                    unsigned char *correct, double *robust_min) {
    float *scratch = n_methods > 1 ? malloc(s->n * s->dim * sizeof *scratch) : NULL;
    if (n_methods > 1 && !scratch) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "adversarial inputs");
    memset(correct, 1, s->n);
    int rc = 0;
    for (size_t i = 0; i < n_methods && !rc; i++) {
        clipnn_attack_options o = *ao;
        o.method = methods[i];
        if (i > 0) o.on_step = NULL; /* the trace follows the first method */
        float *dst = i == 0 ? adv : scratch;
        clipnn_status st = clipnn_attack(s->m, &o, s->x, s->labels, s->n, dst, &res[i]);
        if (st) rc = cli_fail(cmd, st, clipnn_attack_method_name(methods[i]));
        if (!rc) rc = mark_correct(cmd, s, dst, correct);
    }
    free(scratch);
    *robust_min = fraction(correct, s->n);
    return rc;
}

/* ------------------------------------------------------------ the checks */

static void set_check(attack_check *c, const char *name, int pass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_check(attack_check *c, const char *name, int pass, const char *fmt, ...) {
    snprintf(c->name, sizeof c->name, "%s", name);
    c->pass = pass;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->numbers, sizeof c->numbers, fmt, ap);
    va_end(ap);
}

/* Four times the steps and at least four random restarts: a converged
 * attack breaks (almost) nothing more. Newly broken examples up to 0.5% of
 * the set (at least one) are run-to-run noise of the random starts. */
static int check_more_effort(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                             const clipnn_attack_method *methods, size_t nm, const unsigned char *correct,
                             attack_check *c) {
    clipnn_attack_options o = *ao;
    o.on_step = NULL;
    o.steps = 4 * ao->steps;
    o.restarts = ao->restarts > 4 ? ao->restarts : 4;
    o.random_start = 1;
    unsigned char *more = malloc(s->n);
    float *adv = malloc(s->n * s->dim * sizeof *adv);
    clipnn_attack_result res[ATTACK_MAX_METHODS];
    double robust;
    int rc = more && adv ? attack_ensemble(cmd, s, &o, methods, nm, adv, res, more, &robust)
                         : cli_fail(cmd, CLIPNN_ERR_NOMEM, "check");
    if (!rc) {
        size_t newly = 0, allowed = s->n / 200 > 1 ? s->n / 200 : 1;
        for (size_t i = 0; i < s->n; i++) newly += correct[i] && !more[i];
        set_check(c, "more-steps-and-restarts", newly <= allowed,
                  "%zu steps x %zu random restarts: robust %.4f -> %.4f, %zu examples newly broken (allowed %zu)",
                  o.steps, o.restarts, fraction(correct, s->n), robust, newly, allowed);
    }
    free(more), free(adv);
    return rc;
}

/* Doubling eps up to the box's width (or 64 eps without a box): the first
 * method's success rate must reach 100%. */
static int check_eps_to_full(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                             clipnn_attack_method method, attack_check *c) {
    double width = s->space->box_hi - s->space->box_lo, top = isfinite(width) ? width : 64 * ao->eps;
    char ladder[200] = "";
    size_t used = 0;
    double rate = NAN, prev = -1;
    int monotone = 1;
    for (double e = 2 * ao->eps; used < sizeof ladder; e *= 2) {
        clipnn_attack_options o = *ao;
        o.on_step = NULL;
        o.method = method;
        o.eps = e < top ? e : top;
        clipnn_attack_result r;
        clipnn_status st = clipnn_attack(s->m, &o, s->x, s->labels, s->n, NULL, &r);
        if (st) return cli_fail(cmd, st, "check");
        rate = r.success_rate;
        monotone &= rate >= prev;
        prev = rate;
        used += (size_t)snprintf(ladder + used, sizeof ladder - used, "%s%g: %.4f", used ? ", " : "", o.eps, rate);
        if (!(e < top) || rate >= 1) break;
    }
    set_check(c, "success-reaches-100%", rate >= 1 && monotone, "%s success rate at eps %s",
              clipnn_attack_method_name(method), ladder);
    return 0;
}

/* splitmix64: the noise signs need a stream of their own, seeded. */
static double uniform01(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

/* Twenty draws of +-eps per feature (the corners of the L-inf ball, in the
 * box): an example counts as broken by noise when any draw fools it. */
static int check_noise(const char *cmd, const attack_set *s, double eps, const unsigned char *correct,
                       uint64_t seed, attack_check *c) {
    enum { DRAWS = 20 };
    unsigned char *noise_ok = malloc(s->n);
    float *xn = malloc(s->n * s->dim * sizeof *xn);
    if (!noise_ok || !xn) {
        free(noise_ok), free(xn);
        return cli_fail(cmd, CLIPNN_ERR_NOMEM, "check");
    }
    memset(noise_ok, 1, s->n);
    uint64_t state = seed;
    int rc = 0;
    for (int d = 0; d < DRAWS && !rc; d++) {
        for (size_t i = 0; i < s->n * s->dim; i++) {
            double v = s->x[i] + (uniform01(&state) < 0.5 ? -eps : eps);
            xn[i] = (float)fmin(fmax(v, s->space->box_lo), s->space->box_hi);
        }
        rc = mark_correct(cmd, s, xn, noise_ok);
    }
    if (!rc) {
        size_t only_noise = 0;
        for (size_t i = 0; i < s->n; i++) only_noise += correct[i] && !noise_ok[i];
        double rn = fraction(noise_ok, s->n), ra = fraction(correct, s->n);
        set_check(c, "noise-weaker-than-attack", only_noise == 0 && rn >= ra,
                  "%d draws of +-%g per feature leave %.4f robust, the attack %.4f; %zu examples broken by noise "
                  "and not by the attack",
                  DRAWS, eps, rn, ra, only_noise);
    }
    free(noise_ok), free(xn);
    return rc;
}

/* Examples whose input gradient of the cross-entropy is exactly 0 at the
 * clean point (the attack cannot start), and the unbroken ones where the
 * attacks ended on one. */
static int check_zero_gradients(const char *cmd, const attack_set *s, size_t zero_end, attack_check *c) {
    const size_t B = s->batch, dim = s->dim;
    float *xm = malloc(B * dim * sizeof *xm), *g = malloc(B * dim * sizeof *g);
    if (!xm || !g) {
        free(xm), free(g);
        return cli_fail(cmd, CLIPNN_ERR_NOMEM, "check");
    }
    clipnn_objective obj = clipnn_objective_default();
    obj.kind = CLIPNN_OBJ_LEAVE_CLASS;
    size_t zero = 0;
    clipnn_status st = CLIPNN_OK;
    for (size_t start = 0; start < s->n && !st; start += B) {
        size_t nb = s->n - start < B ? s->n - start : B;
        for (size_t i = 0; i < nb * dim; i++) {
            size_t j = i % dim;
            float v = s->x[start * dim + i];
            xm[i] = s->space->mean ? (v - s->space->mean[j]) / s->space->std[j] : v;
        }
        st = clipnn_objective_grad(s->m, &obj, xm, s->labels + start, nb, NULL, g, NULL);
        for (size_t b = 0; b < nb && !st; b++) {
            int all_zero = 1;
            for (size_t j = 0; j < dim && all_zero; j++) all_zero = g[b * dim + j] == 0.0f;
            zero += all_zero;
        }
    }
    free(xm), free(g);
    if (st) return cli_fail(cmd, st, "check");
    set_check(c, "zero-gradients", zero == 0 && zero_end == 0,
              "%zu of %zu examples have an input gradient of exactly 0 at the clean input, %zu unbroken ones at the "
              "attack's end",
              zero, s->n, zero_end);
    return 0;
}

int attack_sanity_checks(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                         const clipnn_attack_method *methods, size_t n_methods, const unsigned char *correct,
                         size_t zero_end, attack_check *checks) {
    int rc = check_more_effort(cmd, s, ao, methods, n_methods, correct, &checks[0]);
    if (!rc) rc = check_eps_to_full(cmd, s, ao, methods[0], &checks[1]);
    if (!rc) rc = check_noise(cmd, s, ao->eps, correct, ao->seed, &checks[2]);
    if (!rc) rc = check_zero_gradients(cmd, s, zero_end, &checks[3]);
    return rc;
}

void attack_print_checks(const attack_check *checks, double eps) {
    printf("sanity checks at eps %g:\n", eps);
    for (int i = 0; i < ATTACK_N_CHECKS; i++)
        printf("  %-26s %s (%s)\n", checks[i].name, checks[i].pass ? "PASS" : "WARN", checks[i].numbers);
}

void attack_json_checks(cli_json *j, const attack_check *checks, double eps) {
    cli_json_num(j, "checks_eps", eps);
    cli_json_open(j, "checks", '[');
    for (int i = 0; i < ATTACK_N_CHECKS; i++) {
        cli_json_open(j, NULL, '{');
        cli_json_str(j, "name", checks[i].name);
        cli_json_str(j, "status", checks[i].pass ? "PASS" : "WARN");
        cli_json_str(j, "numbers", checks[i].numbers);
        cli_json_close(j, '}');
    }
    cli_json_close(j, ']');
}
