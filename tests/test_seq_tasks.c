/* The pathological sequence tasks: each generator's invariants read back
 * from the sequences it drew (the relevant steps inside their windows, the
 * label determined by them, one-hot steps), determinism per seed, distinct
 * seeds and parts differing, and the --data specs good and bad. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "data/data.h"

static clipnn_dataset *make(clipnn_seq_task_kind kind, size_t T, size_t n, uint64_t seed) {
    clipnn_seq_task task = {kind, T, 10};
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_seq_task_make(&task, n, seed, &d));
    return d;
}

/* The one symbol of step t of a one-hot row, or -1 when the step is not one-hot. */
static int symbol_at(const float *x, size_t t, size_t D) {
    int sym = -1, ones = 0;
    for (size_t j = 0; j < D; j++) {
        if (x[t * D + j] == 1) sym = (int)j, ones++;
        else if (x[t * D + j] != 0) return -1;
    }
    return ones == 1 ? sym : -1;
}

static int in_window(size_t t, size_t T, size_t lo, size_t hi) { return t >= lo * T / 10 && t <= hi * T / 10; }

/* Temporal order with `bits` relevant symbols: A/B steps in their windows,
 * the label their binary number; every class seen, every window's ends hit. */
static void check_temporal_order(clipnn_seq_task_kind kind, int bits, size_t T) {
    static const size_t win[2][3][2] = {{{1, 2}, {5, 6}, {0, 0}}, {{1, 2}, {3, 4}, {6, 7}}};
    const size_t n = 4000, D = 6;
    clipnn_dataset *d = make(kind, T, n, 3);
    if (!d) return;
    CHECK(clipnn_dataset_dim(d) == T * D && clipnn_dataset_n_classes(d) == (size_t)1 << bits);
    size_t steps = 0, step_dim = 0, class_seen[8] = {0}, ends_hit = 0;
    clipnn_dataset_seq_shape(d, &steps, &step_dim);
    CHECK(steps == T && step_dim == D);
    for (size_t i = 0; i < n; i++) {
        const float *x = clipnn_dataset_x(d) + i * T * D;
        size_t rel[3], k = 0;
        unsigned label = 0;
        for (size_t t = 0; t < T; t++) {
            int s = symbol_at(x, t, D);
            CHECK_MSG(s >= 0, "row %zu step %zu not one-hot", i, t);
            if (s < 4) continue;
            if (k < 3) rel[k] = t;
            k++;
            label = 2 * label + (unsigned)(s - 4);
        }
        CHECK_MSG(k == (size_t)bits, "row %zu has %zu relevant symbols", i, k);
        for (size_t j = 0; j < k && j < (size_t)bits; j++) {
            CHECK_MSG(in_window(rel[j], T, win[bits - 2][j][0], win[bits - 2][j][1]), "row %zu: step %zu", i, rel[j]);
            ends_hit |= (rel[j] == win[bits - 2][j][0] * T / 10) << (2 * j);
            ends_hit |= (size_t)(rel[j] == win[bits - 2][j][1] * T / 10) << (2 * j + 1);
        }
        CHECK_MSG(clipnn_dataset_y(d)[i] == (float)label, "row %zu: label %g, order says %u", i,
                  (double)clipnn_dataset_y(d)[i], label);
        class_seen[label & 7]++;
    }
    for (unsigned c = 0; c < (1u << bits); c++) CHECK_MSG(class_seen[c] > n / (4u << bits), "class %u rare", c);
    CHECK(ends_hit == ((size_t)1 << (2 * bits)) - 1); /* both ends of every window are drawn */
    clipnn_dataset_free(d);
}

TEST(seq_temporal_order_windows_and_labels) {
    check_temporal_order(CLIPNN_SEQ_TEMPORAL_ORDER, 2, 50);
    check_temporal_order(CLIPNN_SEQ_TEMPORAL_ORDER, 2, 13);
    check_temporal_order(CLIPNN_SEQ_TEMPORAL_ORDER_3BIT, 3, 50);
    check_temporal_order(CLIPNN_SEQ_TEMPORAL_ORDER_3BIT, 3, 10);
}

/* Addition and multiplication: two markers, one in [0, T/10), one in
 * [T/10, T/2), the target the sum or product of their values. */
static void check_arithmetic(clipnn_seq_task_kind kind, size_t T) {
    const size_t n = 2000;
    clipnn_dataset *d = make(kind, T, n, 5);
    if (!d) return;
    CHECK(clipnn_dataset_n_classes(d) == 0 && clipnn_dataset_n_targets(d) == 1);
    for (size_t i = 0; i < n; i++) {
        const float *x = clipnn_dataset_x(d) + i * T * 2;
        size_t marks[2] = {0, 0}, k = 0;
        for (size_t t = 0; t < T; t++) {
            CHECK(x[2 * t] >= 0 && x[2 * t] < 1 && (x[2 * t + 1] == 0 || x[2 * t + 1] == 1));
            if (x[2 * t + 1] == 1 && k < 2) marks[k] = t;
            k += x[2 * t + 1] == 1;
        }
        CHECK_MSG(k == 2, "row %zu has %zu markers", i, k);
        CHECK(marks[0] < T / 10 && marks[1] >= T / 10 && marks[1] < T / 2);
        double a = x[2 * marks[0]], b = x[2 * marks[1]];
        float want = (float)(kind == CLIPNN_SEQ_MULTIPLICATION ? a * b : a + b);
        CHECK_MSG(clipnn_dataset_y(d)[i] == want, "row %zu: target %g, want %g", i, (double)clipnn_dataset_y(d)[i],
                  (double)want);
    }
    clipnn_dataset_free(d);
}

TEST(seq_addition_and_multiplication_markers) {
    check_arithmetic(CLIPNN_SEQ_ADDITION, 50);
    check_arithmetic(CLIPNN_SEQ_ADDITION, 10);
    check_arithmetic(CLIPNN_SEQ_MULTIPLICATION, 50);
}

TEST(seq_random_permutation_and_memorization) {
    const size_t n = 1000, T = 20, K = 10;
    clipnn_dataset *p = make(CLIPNN_SEQ_RANDOM_PERMUTATION, T, n, 7);
    clipnn_dataset *m = make(CLIPNN_SEQ_MEMORIZATION, T, n, 7);
    if (!p || !m) goto done;
    CHECK(clipnn_dataset_dim(p) == T * K && clipnn_dataset_n_classes(p) == 2);
    for (size_t i = 0; i < n; i++) {
        const float *x = clipnn_dataset_x(p) + i * T * K;
        int first = symbol_at(x, 0, K);
        CHECK(first == 0 || first == 1);
        CHECK(clipnn_dataset_y(p)[i] == (float)first);
        for (size_t t = 1; t < T; t++) CHECK(symbol_at(x, t, K) >= 2);
    }
    CHECK(clipnn_dataset_n_classes(m) == 32);
    for (size_t i = 0; i < n; i++) {
        const float *x = clipnn_dataset_x(m) + i * T * 4;
        unsigned pattern = 0;
        for (size_t t = 0; t < 5; t++) {
            int s = symbol_at(x, t, 4);
            CHECK(s == 0 || s == 1);
            pattern = 2 * pattern + (unsigned)(s == 1);
        }
        for (size_t t = 5; t + 1 < T; t++) CHECK(symbol_at(x, t, 4) == 2);
        CHECK(symbol_at(x, T - 1, 4) == 3);
        CHECK(clipnn_dataset_y(m)[i] == (float)pattern);
    }
done:
    clipnn_dataset_free(p);
    clipnn_dataset_free(m);
}

static int same_rows(const clipnn_dataset *a, const clipnn_dataset *b) {
    return clipnn_dataset_n(a) == clipnn_dataset_n(b) && clipnn_dataset_dim(a) == clipnn_dataset_dim(b) &&
           !memcmp(clipnn_dataset_x(a), clipnn_dataset_x(b), clipnn_dataset_n(a) * clipnn_dataset_dim(a) * 4) &&
           !memcmp(clipnn_dataset_y(a), clipnn_dataset_y(b), clipnn_dataset_n(a) * 4);
}

/* Every task: the same seed gives the same sets bit for bit, another seed
 * other sequences, and the test part is not the training part. */
TEST(seq_tasks_deterministic_per_seed) {
    static const char *const specs[] = {
        "temporal-order:T=20,train=50,test=50",     "temporal-order-3bit:T=20,train=50,test=50",
        "addition:T=20,train=50,test=50",           "multiplication:T=20,train=50,test=50",
        "random-permutation:T=20,train=50,test=50", "memorization:T=20,train=50,test=50"};
    for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
        clipnn_data_options o = clipnn_data_options_default();
        clipnn_dataset *tr[3] = {0}, *te[3] = {0};
        for (int run = 0; run < 3; run++) {
            o.seed = run == 2 ? 2 : 1;
            CHECK_OK(clipnn_dataset_load(specs[k], &o, &tr[run], &te[run]));
        }
        if (tr[0] && tr[1] && tr[2] && te[0] && te[1]) {
            CHECK_MSG(same_rows(tr[0], tr[1]) && same_rows(te[0], te[1]), "%s: not repeatable", specs[k]);
            CHECK_MSG(!same_rows(tr[0], tr[2]), "%s: seeds 1 and 2 give the same rows", specs[k]);
            CHECK_MSG(!same_rows(tr[0], te[0]), "%s: test part = training part", specs[k]);
            CHECK(clipnn_dataset_n(tr[0]) == 50 && clipnn_dataset_n(te[0]) == 50);
        }
        for (int run = 0; run < 3; run++) clipnn_dataset_free(tr[run]), clipnn_dataset_free(te[run]);
    }
}

TEST(seq_task_specs_refused) {
    static const char *const bad[] = {"temporal-order:T=9", "temporal-order:T=abc", "addition:T=", "addition:train=0",
                                      "multiplication:test=-3", "temporal-order:symbols=5", "memorization:x=1",
                                      "random-permutation:symbols=2", "temporal-order:T=50,", "temporal-order:"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        clipnn_dataset *tr = NULL, *te = NULL;
        int s = clipnn_dataset_load(bad[k], NULL, &tr, &te);
        CHECK_MSG(s == CLIPNN_ERR_INVALID_ARG, "%s: status %d", bad[k], s);
        CHECK(tr == NULL && te == NULL);
        char task[32]; /* the message names the task */
        snprintf(task, sizeof task, "%.*s", (int)strcspn(bad[k], ":"), bad[k]);
        CHECK_MSG(strstr(clipnn_last_error(), task), "%s: '%s'", bad[k], clipnn_last_error());
    }
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load("random-permutation:symbols=4,T=12,train=3,test=2", NULL, &tr, &te));
    if (tr) CHECK(clipnn_dataset_dim(tr) == 48 && clipnn_dataset_n(tr) == 3 && clipnn_dataset_n(te) == 2);
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
}

/* The tool trains on a task spec with the sparse initialisation, and
 * refuses a bad spec or connection count with its usage exit code. */
TEST(seq_task_cli) {
    const char *out = NULL;
    int rc = check_run_tool("train --data temporal-order:T=10,train=200,test=100 --arch rnn:8-4 --rec-init sparse "
                            "--rec-connections 3 --rec-radius 0.95 --epochs 1",
                            &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "temporal-order: 60 inputs"), "rc %d: %.300s", rc, out ? out : "");
    rc = check_run_tool("train --data temporal-order:T=5 --arch rnn:8-4", &out);
    CHECK_MSG(rc == 2 && out && strstr(out, "T=5, want 10 to 100000 steps"), "rc %d: %.300s", rc, out ? out : "");
    rc = check_run_tool("train --data addition:T=10,train=50,test=20 --arch rnn:8-1 --rec-init sparse "
                        "--rec-connections 0",
                        &out);
    CHECK_MSG(rc != 0 && out && strstr(out, "0 connections"), "rc %d: %.300s", rc, out ? out : "");
}
