/* Step-size schedules a(t), t = 0, 1, 2, ..., and the stability bound
 * that their squares give. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

const char *clipnn_sched_kind_name(clipnn_sched_kind kind) {
    static const char *const names[] = {
        [CLIPNN_SCHED_CONST] = "const", [CLIPNN_SCHED_RM] = "rm", [CLIPNN_SCHED_STEP] = "step",
        [CLIPNN_SCHED_COSINE] = "cosine"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

clipnn_schedule clipnn_schedule_default(void) {
    return (clipnn_schedule){.kind = CLIPNN_SCHED_CONST, .a0 = 0.1, .t0 = 1.0, .power = 1.0,
                             .every = 1000, .gamma = 0.1, .total_steps = 0};
}

double clipnn_schedule_lr(const clipnn_schedule *s, uint64_t t) {
    double td = (double)t;
    switch (s->kind) {
    case CLIPNN_SCHED_RM: return s->a0 / pow(1.0 + td / s->t0, s->power);
    case CLIPNN_SCHED_STEP: return s->a0 * pow(s->gamma, (double)(t / (s->every ? s->every : 1)));
    case CLIPNN_SCHED_COSINE: {
        if (s->total_steps == 0) return s->a0;
        double frac = td >= (double)s->total_steps ? 1.0 : td / (double)s->total_steps;
        return s->a0 * 0.5 * (1.0 + cos(M_PI * frac));
    }
    default: return s->a0;
    }
}

double clipnn_lemma1_bound(double M, double sum_a2, double lambda) {
    return 2.0 * exp(-2.0 * M * M / (sum_a2 * lambda * lambda));
}

/* Two comma-separated numbers after "name:"; 0 on success. */
static int two_numbers(const char *text, double *a, double *b) {
    char *end;
    *a = strtod(text, &end);
    if (end == text || *end != ',') return -1;
    const char *second = end + 1;
    *b = strtod(second, &end);
    return (end == second || *end) ? -1 : 0;
}

clipnn_status clipnn_schedule_parse(const char *text, clipnn_schedule *out) {
    clipnn_schedule s = *out;
    double a, b;
    if (!text) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "schedule: NULL");
    if (!strcmp(text, "const") || !strcmp(text, "constant")) {
        s.kind = CLIPNN_SCHED_CONST;
    } else if (!strcmp(text, "cosine")) {
        s.kind = CLIPNN_SCHED_COSINE;
    } else if (!strncmp(text, "rm:", 3)) {
        if (two_numbers(text + 3, &a, &b) || !(a > 0) || !(b > 0.5 && b <= 1.0))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                               "schedule '%s': want rm:T0,P with T0 > 0 and 0.5 < P <= 1 "
                               "(assumption A2: sum a = inf, sum a^2 < inf)", text);
        s.kind = CLIPNN_SCHED_RM;
        s.t0 = a;
        s.power = b;
    } else if (!strncmp(text, "step:", 5)) {
        if (two_numbers(text + 5, &a, &b) || !(a >= 1) || a != floor(a) || !(b > 0 && b <= 1))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                               "schedule '%s': want step:EVERY,GAMMA with EVERY >= 1 an integer "
                               "and 0 < GAMMA <= 1", text);
        s.kind = CLIPNN_SCHED_STEP;
        s.every = (uint64_t)a;
        s.gamma = b;
    } else {
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                           "unknown schedule '%s' (const, rm:T0,P, step:EVERY,GAMMA, cosine)", text);
    }
    *out = s;
    return CLIPNN_OK;
}
