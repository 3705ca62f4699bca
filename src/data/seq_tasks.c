/* The pathological sequence tasks of Hochreiter and Schmidhuber (1997), as
 * Martens and Sutskever (2011) and Pascanu, Mikolov and Bengio (2013) train
 * recurrent networks on them: each answer depends on a few steps far apart
 * in a sequence otherwise made of distractors. Every set is drawn from a
 * seed (xoshiro256**), the training part and the test part from streams of
 * their own, so the test sequences are fresh ones. */
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

typedef struct {
    const char *name;
    size_t dim;       /* values per step */
    size_t n_classes; /* 0: one regression target */
} task_info;

static const task_info TASKS[CLIPNN_SEQ_TASK_COUNT] = {
    [CLIPNN_SEQ_TEMPORAL_ORDER] = {"temporal-order", 6, 4},
    [CLIPNN_SEQ_TEMPORAL_ORDER_3BIT] = {"temporal-order-3bit", 6, 8},
    [CLIPNN_SEQ_ADDITION] = {"addition", 2, 0},
    [CLIPNN_SEQ_MULTIPLICATION] = {"multiplication", 2, 0},
    [CLIPNN_SEQ_RANDOM_PERMUTATION] = {"random-permutation", 0, 2}, /* dim: the alphabet */
    [CLIPNN_SEQ_MEMORIZATION] = {"memorization", 4, 1u << CLIPNN_SEQ_MEMORY_BITS},
};

enum { SYMBOL_A = 4, SYMBOL_B = 5 }; /* temporal order: a, b, c, d are 0..3 */
enum { MEM_BLANK = 2, MEM_MARKER = 3 }; /* memorization: bits are symbols 0 and 1 */

const char *clipnn_seq_task_name(clipnn_seq_task_kind kind) {
    return (unsigned)kind < CLIPNN_SEQ_TASK_COUNT ? TASKS[kind].name : NULL;
}

/* A step in [lo T / 10, hi T / 10], both ends included (T >= 10). */
static size_t draw_step(clipnn_rng *r, size_t T, size_t lo, size_t hi) {
    size_t a = lo * T / 10, b = hi * T / 10;
    return a + (size_t)clipnn_rng_below(r, b - a + 1);
}

/* Temporal order with `bits` relevant symbols (2 or 3): every step a
 * distractor a-d, except one step in each window (tenths [1,2], [5,6] for
 * two; [1,2], [3,4], [6,7] for three) holding A or B; the class is the
 * symbols read as binary digits, A = 0, B = 1, the first the most
 * significant (AA 0, AB 1, BA 2, BB 3). x: [T][6] one-hot. */
static float temporal_order_row(clipnn_rng *r, size_t T, int bits, float *x) {
    static const size_t windows[2][3][2] = {{{1, 2}, {5, 6}, {0, 0}}, {{1, 2}, {3, 4}, {6, 7}}};
    for (size_t t = 0; t < T; t++) x[t * 6 + clipnn_rng_below(r, 4)] = 1;
    unsigned label = 0;
    for (int k = 0; k < bits; k++) {
        size_t t = draw_step(r, T, windows[bits - 2][k][0], windows[bits - 2][k][1]);
        unsigned b = (unsigned)clipnn_rng_below(r, 2);
        memset(x + t * 6, 0, 6 * sizeof *x);
        x[t * 6 + SYMBOL_A + b] = 1;
        label = 2 * label + b;
    }
    return (float)label;
}

/* Addition and multiplication: x[t] = (value U[0, 1), marker); two steps
 * are marked, the first in [0, T/10), the second in [T/10, T/2) (Hochreiter
 * and Schmidhuber's placement with their T = 100 scaled); the target is the
 * sum or the product of the two marked values (computed in double from the
 * float inputs, rounded once). */
static float arithmetic_row(clipnn_rng *r, size_t T, int multiply, float *x) {
    for (size_t t = 0; t < T; t++) x[2 * t] = (float)clipnn_rng_uniform(r);
    size_t t1 = (size_t)clipnn_rng_below(r, T / 10), t2 = T / 10 + (size_t)clipnn_rng_below(r, T / 2 - T / 10);
    x[2 * t1 + 1] = x[2 * t2 + 1] = 1;
    double a = x[2 * t1], b = x[2 * t2];
    return (float)(multiply ? a * b : a + b);
}

/* Random permutation: one-hot symbols of an alphabet of K; the first is 0
 * or 1 and is the class, the others are drawn from 2..K-1 (noise to carry
 * the first one through). */
static float permutation_row(clipnn_rng *r, size_t T, size_t K, float *x) {
    unsigned first = (unsigned)clipnn_rng_below(r, 2);
    x[first] = 1;
    for (size_t t = 1; t < T; t++) x[t * K + 2 + clipnn_rng_below(r, K - 2)] = 1;
    return (float)first;
}

/* Noiseless memorization: a pattern of CLIPNN_SEQ_MEMORY_BITS bits (one-hot
 * symbols 0 and 1) in the first steps, then the blank symbol, then the
 * marker at the last step; the class is the pattern read as a binary
 * number, first bit the most significant. */
static float memorization_row(clipnn_rng *r, size_t T, float *x) {
    unsigned label = 0;
    for (size_t t = 0; t < CLIPNN_SEQ_MEMORY_BITS; t++) {
        unsigned b = (unsigned)clipnn_rng_below(r, 2);
        x[t * 4 + b] = 1;
        label = 2 * label + b;
    }
    for (size_t t = CLIPNN_SEQ_MEMORY_BITS; t + 1 < T; t++) x[t * 4 + MEM_BLANK] = 1;
    x[(T - 1) * 4 + MEM_MARKER] = 1;
    return (float)label;
}

static float task_row(const clipnn_seq_task *task, clipnn_rng *r, float *x) {
    switch (task->kind) {
    case CLIPNN_SEQ_TEMPORAL_ORDER: return temporal_order_row(r, task->steps, 2, x);
    case CLIPNN_SEQ_TEMPORAL_ORDER_3BIT: return temporal_order_row(r, task->steps, 3, x);
    case CLIPNN_SEQ_ADDITION: return arithmetic_row(r, task->steps, 0, x);
    case CLIPNN_SEQ_MULTIPLICATION: return arithmetic_row(r, task->steps, 1, x);
    case CLIPNN_SEQ_RANDOM_PERMUTATION: return permutation_row(r, task->steps, task->symbols, x);
    case CLIPNN_SEQ_MEMORIZATION: return memorization_row(r, task->steps, x);
    case CLIPNN_SEQ_TASK_COUNT: break;
    }
    return 0;
}

size_t clipnn_seq_task_dim(const clipnn_seq_task *task) {
    return task->kind == CLIPNN_SEQ_RANDOM_PERMUTATION ? task->symbols : TASKS[task->kind].dim;
}

clipnn_status clipnn_seq_task_check(const clipnn_seq_task *task) {
    if ((unsigned)task->kind >= CLIPNN_SEQ_TASK_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "sequence task: unknown kind %d", (int)task->kind);
    const char *name = TASKS[task->kind].name;
    if (task->steps < CLIPNN_SEQ_MIN_STEPS || task->steps > CLIPNN_SEQ_MAX_STEPS)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: T=%zu, want %d to %d steps", name, task->steps,
                           CLIPNN_SEQ_MIN_STEPS, CLIPNN_SEQ_MAX_STEPS);
    if (task->kind == CLIPNN_SEQ_RANDOM_PERMUTATION && (task->symbols < 3 || task->symbols > 1000))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: symbols=%zu, want 3 to 1000", name, task->symbols);
    return CLIPNN_OK;
}

clipnn_status clipnn_seq_task_make(const clipnn_seq_task *task, size_t n, uint64_t seed, clipnn_dataset **out) {
    *out = NULL;
    clipnn_status s = clipnn_seq_task_check(task);
    if (s) return s;
    const task_info *info = &TASKS[task->kind];
    size_t T = task->steps, D = clipnn_seq_task_dim(task), dim;
    if (clipnn_mul_size(T, D, &dim))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: %zu steps of %zu values is too large", info->name, T, D);
    s = clipnn_dataset_new(info->name, n, dim, info->n_classes, 1, out);
    if (s) return s;
    clipnn_dataset *d = *out;
    d->seq_len = T, d->seq_dim = D;
    clipnn_rng r;
    clipnn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) d->y[i] = task_row(task, &r, d->x + i * dim);
    return CLIPNN_OK;
}

/* ----------------------------------------------------------------- specs */

/* The number after "KEY=" in opt, > 0 and at most max. */
static clipnn_status spec_number(const char *spec, const char *opt, size_t key_len, size_t max, size_t *out) {
    const char *v = opt + key_len;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end || *v == '-' || *v == '+' || n == 0 || n > max)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: '%s': want a whole number from 1 to %zu", spec, opt, max);
    *out = (size_t)n;
    return CLIPNN_OK;
}

/* One "KEY=VALUE" of the spec's option list. */
static clipnn_status spec_option(const char *spec, const char *opt, clipnn_seq_task_spec *out) {
    if (!strncmp(opt, "T=", 2)) return spec_number(spec, opt, 2, CLIPNN_SEQ_MAX_STEPS, &out->task.steps);
    if (!strncmp(opt, "train=", 6)) return spec_number(spec, opt, 6, (size_t)1 << 32, &out->n_train);
    if (!strncmp(opt, "test=", 5)) return spec_number(spec, opt, 5, (size_t)1 << 32, &out->n_test);
    if (!strncmp(opt, "symbols=", 8) && out->task.kind == CLIPNN_SEQ_RANDOM_PERMUTATION)
        return spec_number(spec, opt, 8, 1000, &out->task.symbols);
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: unknown option '%s' (want T=, train=, test=%s)", spec, opt,
                       out->task.kind == CLIPNN_SEQ_RANDOM_PERMUTATION ? ", symbols=" : "");
}

int clipnn_seq_task_parse(const char *spec, clipnn_seq_task_spec *out, clipnn_status *status) {
    *status = CLIPNN_OK;
    size_t name_len = strcspn(spec, ":");
    int kind = -1;
    for (int k = 0; k < CLIPNN_SEQ_TASK_COUNT; k++)
        if (strlen(TASKS[k].name) == name_len && !strncmp(spec, TASKS[k].name, name_len)) kind = k;
    if (kind < 0) return 0;
    *out = (clipnn_seq_task_spec){{(clipnn_seq_task_kind)kind, 50, 10}, 10000, 10000};
    if (spec[name_len] == ':') {
        char opt[64];
        for (const char *p = spec + name_len + 1; !*status;) {
            size_t len = strcspn(p, ",");
            if (len >= sizeof opt) len = sizeof opt - 1; /* refused below as an unknown or bad option */
            memcpy(opt, p, len);
            opt[len] = 0;
            *status = spec_option(spec, opt, out);
            p += strcspn(p, ",");
            if (!*p) break;
            p++;
        }
    }
    if (!*status) *status = clipnn_seq_task_check(&out->task);
    return 1;
}

clipnn_status clipnn_seq_task_load(const clipnn_seq_task_spec *spec, uint64_t seed, clipnn_dataset **train,
                                   clipnn_dataset **test) {
    clipnn_status s = clipnn_seq_task_make(&spec->task, spec->n_train, seed, train);
    if (!s && test) s = clipnn_seq_task_make(&spec->task, spec->n_test, seed ^ CLIPNN_SEQ_TEST_STREAM, test);
    return s;
}
