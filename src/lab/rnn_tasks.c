/* rnn-temporal-order and rnn-addition: Pascanu, Mikolov and Bengio's (2013)
 * experiment on the pathological tasks, a tanh RNN trained by SGD with and
 * without clipping, success counted over seeds for several lengths T. Each
 * (T, seed) gets its own sequences and initial weights, the same for every
 * rule, so the rules are compared on paired runs. The runs are independent
 * and each is sequential, so they are spread over the available threads
 * without changing a number. */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <string.h>

#include "lab/lab.h"

#define RNN_MAX_LENGTHS 6
#define RNN_MAX_SEEDS 10
#define RNN_N_RULES 5
#define RNN_EVAL_BATCH 500
#define RNN_SUCCESS_ERROR 0.01 /* Pascanu's criterion: fewer than 1% of the test sequences wrong */
#define RNN_REGRESSION_TOL 0.04 /* a regression answer is right when its squared error is below this */
#define RNN_VALID_STREAM 0x5a11d5eed0000002ull

static const clipnn_clip_rule RULES[RNN_N_RULES] = {CLIPNN_CLIP_NONE, CLIPNN_CLIP_NORM, CLIPNN_CLIP_ADAPTIVE,
                                                    CLIPNN_CLIP_AGC, CLIPNN_CLIP_PERCENTILE};
static const char *const RULE_LABELS[RNN_N_RULES] = {"none", "norm (lambda 1)", "adaptive", "agc",
                                                     "autoclip (p 10)"};

/* One sweep: the task, the lengths, the budget and the optimizer. */
typedef struct {
    clipnn_seq_task_kind kind;
    size_t lengths[RNN_MAX_LENGTHS], n_lengths;
    size_t seeds, hidden, batch, n_train, n_valid, n_test;
    uint64_t max_updates, check_every;
    double lr, momentum;
    const char *claim_prefix; /* the claims' ids start with it */
} rnn_sweep;

typedef struct {
    int success, diverged;
    uint64_t updates;  /* when it succeeded or stopped */
    double test_error; /* share of the test sequences answered wrong (1 after a divergence) */
    clipnn_status status;
    char why[256]; /* the message of a failed run (it ran on another thread) */
} rnn_run;

/* Is the answer out[k] to a sequence with target y right? */
static int answer_right(const float *out, size_t k, float y, size_t n_classes) {
    if (n_classes == 0) {
        double e = (double)out[0] - (double)y;
        return e * e < RNN_REGRESSION_TOL; /* false for NaN */
    }
    size_t best = 0;
    for (size_t j = 1; j < k; j++) best = out[j] > out[best] ? j : best;
    return isfinite(out[best]) && (float)best == y;
}

/* The share of d's sequences the model answers wrong. */
static clipnn_status task_error(clipnn_model *m, const clipnn_dataset *d, double *err) {
    size_t n = d->n, k = clipnn_model_n_outputs(m), wrong = 0;
    for (size_t i0 = 0; i0 < n; i0 += RNN_EVAL_BATCH) {
        size_t b = n - i0 < RNN_EVAL_BATCH ? n - i0 : RNN_EVAL_BATCH;
        const float *out;
        clipnn_status s = clipnn_forward(m, d->x + i0 * d->dim, b, &out);
        if (s) return s;
        for (size_t i = 0; i < b; i++) wrong += !answer_right(out + i * k, k, d->y[i0 + i], d->n_classes);
    }
    *err = (double)wrong / (double)n;
    return CLIPNN_OK;
}

/* A tanh RNN of `hidden` units and a linear read-out: Xavier for the
 * read-out, PyTorch's default for W_ih and the biases, W_hh sparse (15
 * connections per unit) at spectral radius 0.95, as Pascanu's "smart tanh". */
static clipnn_status make_model(const rnn_sweep *w, size_t T, size_t dim, size_t outputs, uint64_t seed,
                                clipnn_model **m) {
    clipnn_layer_spec layers[2] = {{CLIPNN_LAYER_RNN, w->hidden, CLIPNN_ACT_TANH},
                                   {CLIPNN_LAYER_DENSE, outputs, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {T, dim, 0};
    clipnn_status s = clipnn_model_create_seq(m, &seq, 2, layers);
    if (!s) s = clipnn_model_init(*m, CLIPNN_INIT_XAVIER, seed);
    if (!s) s = clipnn_model_init_recurrent_sparse(*m, CLIPNN_SPARSE_CONNECTIONS, 0.95, seed);
    if (!s) s = clipnn_model_reserve(*m, w->batch > RNN_EVAL_BATCH ? w->batch : RNN_EVAL_BATCH);
    return s;
}

static clipnn_train_options run_options(const rnn_sweep *w, clipnn_clip_rule rule, int regression, uint64_t seed) {
    clipnn_train_options o = clipnn_train_options_default();
    o.optim = clipnn_optim_options_default();
    o.optim.momentum = w->momentum;
    o.schedule = clipnn_schedule_default();
    o.schedule.a0 = w->lr;
    o.clip = clipnn_clip_options_for(rule);
    if (rule == CLIPNN_CLIP_NORM) o.clip.lambda = 1.0;
    o.clip.noise_seed = seed;
    o.loss = clipnn_loss_options_default();
    o.loss.loss = regression ? CLIPNN_LOSS_MSE : CLIPNN_LOSS_XENT;
    o.batch = w->batch;
    o.seed = seed;
    return o;
}

/* The three sets of a run: training, a small validation set that decides
 * when the test set is worth evaluating, and the fresh test sequences. */
typedef struct {
    clipnn_dataset *train, *valid, *test;
} run_data;

static void run_data_free(run_data *d) {
    clipnn_dataset_free(d->train);
    clipnn_dataset_free(d->valid);
    clipnn_dataset_free(d->test);
}

static clipnn_status make_run_data(const rnn_sweep *w, size_t T, uint64_t seed, run_data *d) {
    clipnn_seq_task task = {w->kind, T, 10};
    clipnn_status s = clipnn_seq_task_make(&task, w->n_train, seed, &d->train);
    if (!s) s = clipnn_seq_task_make(&task, w->n_valid, seed ^ RNN_VALID_STREAM, &d->valid);
    if (!s) s = clipnn_seq_task_make(&task, w->n_test, seed ^ CLIPNN_SEQ_TEST_STREAM, &d->test);
    return s;
}

/* Trains in chunks of check_every updates (a training state carries the
 * run across them, bit for bit as one call) and stops at the first check
 * where the validation and then the test error are under 1%, or at the
 * budget; the test error reported is that of the last parameters. A run
 * that diverges has failed. */
static clipnn_status train_until_success(const rnn_sweep *w, clipnn_model *m, const run_data *d,
                                         clipnn_train_options *o, rnn_run *out) {
    clipnn_train_state *st;
    clipnn_status s = clipnn_train_state_create(&st);
    o->state = st;
    out->test_error = NAN;
    for (uint64_t k = 0; !s && k < w->max_updates && !out->success;) {
        k = k + w->check_every < w->max_updates ? k + w->check_every : w->max_updates;
        o->steps = k;
        clipnn_train_result r;
        s = clipnn_train(m, d->train, NULL, o, &r);
        out->updates = k;
        if (r.diverged) {
            out->diverged = 1, out->updates = r.diverged_step, out->test_error = 1;
            s = CLIPNN_OK;
            break;
        }
        double valid_error = 1;
        out->test_error = NAN; /* an earlier check's test error is stale now */
        if (!s) s = task_error(m, d->valid, &valid_error);
        if (!s && valid_error < RNN_SUCCESS_ERROR) s = task_error(m, d->test, &out->test_error);
        out->success = !s && out->test_error < RNN_SUCCESS_ERROR;
    }
    if (!s && isnan(out->test_error)) s = task_error(m, d->test, &out->test_error);
    clipnn_train_state_free(st);
    return s;
}

/* One run: rule on length T with the seed's sequences and weights. */
static void one_run(const rnn_sweep *w, size_t T, clipnn_clip_rule rule, uint64_t seed, rnn_run *out) {
    memset(out, 0, sizeof *out);
    run_data d = {0};
    clipnn_model *m = NULL;
    clipnn_status s = make_run_data(w, T, seed, &d);
    int regression = !s && d.train->n_classes == 0;
    if (!s) s = make_model(w, T, d.train->seq_dim, regression ? 1 : d.train->n_classes, seed, &m);
    clipnn_train_options o = run_options(w, rule, regression, seed);
    if (!s) s = train_until_success(w, m, &d, &o, out);
    out->status = s;
    if (s) snprintf(out->why, sizeof out->why, "%s", clipnn_last_error());
    clipnn_model_free(m);
    run_data_free(&d);
}

/* Runs [length][rule][seed], spread over the threads. */
static clipnn_status run_sweep(lab_ctx *L, const rnn_sweep *w, rnn_run *runs) {
    const long n = (long)(w->n_lengths * RNN_N_RULES * w->seeds);
#ifdef _OPENMP /* builds without OpenMP (make tsan, make fuzz) run the sweep on one thread */
    int workers = omp_get_max_threads() < omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
#endif
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (long i = 0; i < n; i++) {
        size_t seed_i = (size_t)i % w->seeds, rule_i = (size_t)i / w->seeds % RNN_N_RULES;
        size_t len_i = (size_t)i / w->seeds / RNN_N_RULES;
        uint64_t seed = L->opt->seed * 1000003u + 7919u * w->lengths[len_i] + seed_i;
        one_run(w, w->lengths[len_i], RULES[rule_i], seed, &runs[i]);
    }
    for (long i = 0; i < n; i++)
        if (runs[i].status) return clipnn_fail(runs[i].status, "lab %s: %s", L->name, runs[i].why);
    return CLIPNN_OK;
}

/* ---------------------------------------------------------------- report */

static const rnn_run *run_at(const rnn_sweep *w, const rnn_run *runs, size_t len_i, size_t rule_i, size_t seed_i) {
    return &runs[(len_i * RNN_N_RULES + rule_i) * w->seeds + seed_i];
}

static size_t successes(const rnn_sweep *w, const rnn_run *runs, size_t len_i, size_t rule_i) {
    size_t k = 0;
    for (size_t s = 0; s < w->seeds; s++) k += run_at(w, runs, len_i, rule_i, s)->success;
    return k;
}

static size_t divergences(const rnn_sweep *w, const rnn_run *runs, size_t len_i, size_t rule_i) {
    size_t k = 0;
    for (size_t s = 0; s < w->seeds; s++) k += run_at(w, runs, len_i, rule_i, s)->diverged;
    return k;
}

/* The mean test error of the runs that did not succeed (NaN when all did). */
static double failed_error(const rnn_sweep *w, const rnn_run *runs, size_t len_i, size_t rule_i) {
    double sum = 0;
    size_t k = 0;
    for (size_t s = 0; s < w->seeds; s++) {
        const rnn_run *r = run_at(w, runs, len_i, rule_i, s);
        if (!r->success) sum += r->test_error, k++;
    }
    return k ? sum / (double)k : NAN;
}

/* The median number of updates the successful runs took (0 when none did). */
static uint64_t median_updates(const rnn_sweep *w, const rnn_run *runs, size_t len_i, size_t rule_i) {
    uint64_t u[RNN_MAX_SEEDS];
    size_t k = 0;
    for (size_t s = 0; s < w->seeds; s++) {
        const rnn_run *r = run_at(w, runs, len_i, rule_i, s);
        if (!r->success) continue;
        size_t j = k++;
        for (; j > 0 && u[j - 1] > r->updates; j--) u[j] = u[j - 1]; /* insertion sort */
        u[j] = r->updates;
    }
    return k ? u[(k - 1) / 2] : 0;
}

/* One line per (T, rule): successes, divergences, the median updates to
 * success and the mean test error of the failed runs. */
static void print_table(lab_ctx *L, const rnn_sweep *w, const rnn_run *runs) {
    lab_printf(L, "success: under 1%% of %zu fresh test sequences wrong within %llu updates (checked every %llu)\n",
               w->n_test, (unsigned long long)w->max_updates, (unsigned long long)w->check_every);
    lab_printf(L, "%5s  %-16s %9s %8s %16s %22s\n", "T", "rule", "success", "diverged", "median updates",
               "test error of failures");
    for (size_t t = 0; t < w->n_lengths; t++)
        for (size_t r = 0; r < RNN_N_RULES; r++) {
            char upd[24] = "-", err[24] = "-";
            uint64_t med = median_updates(w, runs, t, r);
            double e = failed_error(w, runs, t, r);
            if (med) snprintf(upd, sizeof upd, "%llu", (unsigned long long)med);
            if (!isnan(e)) snprintf(err, sizeof err, "%.3f", e);
            lab_printf(L, "%5zu  %-16s %6zu/%-2zu %8zu %16s %22s\n", w->lengths[t], RULE_LABELS[r],
                       successes(w, runs, t, r), w->seeds, divergences(w, runs, t, r), upd, err);
        }
}

/* Success rate against T, one series per rule. */
static clipnn_status save_plot(lab_ctx *L, const rnn_sweep *w, const rnn_run *runs, const char *task) {
    lab_plot p;
    char title[160];
    snprintf(title, sizeof title, "%s: tanh RNN of %zu units, %zu seeds per point", task, w->hidden, w->seeds);
    lab_plot_init(&p, title, "sequence length T", "success rate", 1, 0);
    for (size_t r = 0; r < RNN_N_RULES; r++) {
        size_t si = lab_plot_series(&p, RULE_LABELS[r]);
        for (size_t t = 0; t < w->n_lengths; t++)
            lab_plot_add(&p, si, (double)w->lengths[t], (double)successes(w, runs, t, r) / (double)w->seeds);
    }
    clipnn_status s = lab_plot_save(L, &p, "success");
    lab_plot_free(&p);
    return s;
}

/* "T=50: none 0/5 (5 div), norm 5/5; ..." for rules a and b into buf. */
static void pair_numbers(const rnn_sweep *w, const rnn_run *runs, size_t a, size_t b, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t t = 0; t < w->n_lengths && used < cap; t++)
        used += (size_t)snprintf(buf + used, cap - used, "%sT=%zu: %s %zu/%zu (%zu div), %s %zu/%zu", t ? "; " : "",
                                 w->lengths[t], RULE_LABELS[a], successes(w, runs, t, a), w->seeds,
                                 divergences(w, runs, t, a), RULE_LABELS[b], successes(w, runs, t, b), w->seeds);
}

/* clipping-decides: at which T norm clipping succeeds on at least half the
 * seeds more than plain SGD (paired runs): everywhere HOLDS, somewhere
 * HOLDS UNDER those T, nowhere FAILS. */
static void claim_clipping_decides(lab_ctx *L, const rnn_sweep *w, const rnn_run *runs) {
    char numbers[400], where[160] = "T in {";
    size_t decided = 0, need = (w->seeds + 1) / 2;
    for (size_t t = 0; t < w->n_lengths; t++) {
        if (successes(w, runs, t, 1) < successes(w, runs, t, 0) + need) continue;
        size_t len = strlen(where);
        snprintf(where + len, sizeof where - len, "%s%zu", decided++ ? ", " : "", w->lengths[t]);
    }
    strncat(where, "}", sizeof where - strlen(where) - 1);
    pair_numbers(w, runs, 0, 1, numbers, sizeof numbers);
    clipnn_claim_verdict v = decided == 0 ? CLIPNN_CLAIM_FAILS
                             : decided == w->n_lengths ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_HOLDS_UNDER;
    char id[32];
    snprintf(id, sizeof id, "%s-clipping-decides", w->claim_prefix);
    lab_claim(L, id, v, where, "%s", numbers);
}

/* every-rule: each of adaptive, AGC and AutoClip succeeds in more runs
 * than plain SGD, summed over T. */
static void claim_every_rule(lab_ctx *L, const rnn_sweep *w, const rnn_run *runs) {
    size_t total[RNN_N_RULES] = {0}, beat = 0;
    char numbers[400], which[160] = "for";
    size_t used = 0;
    for (size_t r = 0; r < RNN_N_RULES; r++) {
        for (size_t t = 0; t < w->n_lengths; t++) total[r] += successes(w, runs, t, r);
        used += (size_t)snprintf(numbers + used, sizeof numbers - used, "%s%s %zu/%zu", r ? ", " : "successes: ",
                                 RULE_LABELS[r], total[r], w->seeds * w->n_lengths);
    }
    for (size_t r = 2; r < RNN_N_RULES; r++) {
        if (total[r] <= total[0]) continue;
        size_t len = strlen(which);
        snprintf(which + len, sizeof which - len, "%s %s", beat++ ? "," : "", RULE_LABELS[r]);
    }
    clipnn_claim_verdict v = beat == 0 ? CLIPNN_CLAIM_FAILS
                             : beat == RNN_N_RULES - 2 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_HOLDS_UNDER;
    char id[32];
    snprintf(id, sizeof id, "%s-every-rule", w->claim_prefix);
    lab_claim(L, id, v, which, "%s", numbers);
}

/* longer-harder: norm clipping's success at the longest T is below its
 * success at the shortest (the vanishing gradient, which clipping does not
 * address, takes over). */
static void claim_longer_harder(lab_ctx *L, const rnn_sweep *w, const rnn_run *runs) {
    size_t first = successes(w, runs, 0, 1), last = successes(w, runs, w->n_lengths - 1, 1);
    size_t div = divergences(w, runs, w->n_lengths - 1, 1);
    double err = failed_error(w, runs, w->n_lengths - 1, 1);
    char failed[64] = "none failed";
    if (!isnan(err)) snprintf(failed, sizeof failed, "mean test error of the failed %.3f", err);
    char id[32];
    snprintf(id, sizeof id, "%s-longer-harder", w->claim_prefix);
    lab_claim(L, id, last < first ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "norm clipping: T=%zu %zu/%zu, T=%zu %zu/%zu (%zu diverged, %s)", w->lengths[0], first, w->seeds,
              w->lengths[w->n_lengths - 1], last, w->seeds, div, failed);
}

static clipnn_status run_task_lab(lab_ctx *L, const rnn_sweep *w, const char *task) {
    size_t n = w->n_lengths * RNN_N_RULES * w->seeds;
    rnn_run *runs = clipnn_alloc_array(n, sizeof *runs);
    if (!runs) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab %s: out of memory", L->name);
    lab_printf(L, "%s: tanh RNN of %zu units, sparse W_hh (15 per unit, radius 0.95), SGD lr %g momentum %g, "
               "batch %zu, %zu training sequences per (T, seed); %zu seeds\n",
               task, w->hidden, w->lr, w->momentum, w->batch, w->n_train, w->seeds);
    clipnn_status s = run_sweep(L, w, runs);
    if (!s) {
        print_table(L, w, runs);
        s = save_plot(L, w, runs, task);
    }
    if (!s) {
        claim_clipping_decides(L, w, runs);
        claim_every_rule(L, w, runs);
        claim_longer_harder(L, w, runs);
    }
    clipnn_free(runs);
    return s;
}

/* ------------------------------------------------------------- budgets */

/* The budget the options ask for: quick (the tests: seconds), in_all
 * (inside `lab all`: well under a minute), the default (a few minutes on
 * two cores) or full (the paper's plain SGD at lr 0.01, T up to 200, ten
 * seeds: hours). */
typedef enum { BUDGET_QUICK, BUDGET_IN_ALL, BUDGET_DEFAULT, BUDGET_FULL } rnn_budget;

static rnn_budget budget_of(const lab_ctx *L) {
    if (L->opt->quick) return BUDGET_QUICK;
    if (L->opt->full) return BUDGET_FULL;
    return L->opt->in_all ? BUDGET_IN_ALL : BUDGET_DEFAULT;
}

static void set_lengths(rnn_sweep *w, const size_t *lengths, size_t n) {
    memcpy(w->lengths, lengths, n * sizeof *lengths);
    w->n_lengths = n;
}

/* Pascanu's setting (50 units, batch 20, lr 0.01, a test set of 10000)
 * with momentum 0.9 and a budget of updates. */
static rnn_sweep base_sweep(clipnn_seq_task_kind kind, rnn_budget b) {
    rnn_sweep w = {.kind = kind, .seeds = 5, .hidden = 50, .batch = 20, .n_train = 20000, .n_valid = 1000,
                   .n_test = 10000, .max_updates = 8000, .check_every = 500, .lr = 0.01, .momentum = 0.9};
    if (b == BUDGET_QUICK) {
        w.seeds = 2, w.hidden = 20, w.n_train = 2000, w.n_valid = 200, w.n_test = 1000;
        w.max_updates = 600, w.check_every = 200;
    }
    if (b == BUDGET_IN_ALL) w.seeds = 3, w.n_train = 10000, w.max_updates = 5000;
    if (b == BUDGET_FULL) w.seeds = RNN_MAX_SEEDS, w.momentum = 0, w.max_updates = 100000, w.check_every = 2000;
    return w;
}

clipnn_status lab_rnn_temporal_order(lab_ctx *L) {
    static const size_t quick[] = {10, 20}, in_all[] = {20, 50}, normal[] = {20, 50, 100},
                        full[] = {20, 50, 100, 150, 200};
    rnn_budget b = budget_of(L);
    rnn_sweep w = base_sweep(CLIPNN_SEQ_TEMPORAL_ORDER, b);
    w.claim_prefix = "order";
    if (b == BUDGET_QUICK) set_lengths(&w, quick, 2);
    if (b == BUDGET_IN_ALL) set_lengths(&w, in_all, 2);
    if (b == BUDGET_DEFAULT) set_lengths(&w, normal, 3);
    if (b == BUDGET_FULL) set_lengths(&w, full, 5);
    return run_task_lab(L, &w, "temporal order");
}

clipnn_status lab_rnn_addition(lab_ctx *L) {
    static const size_t quick[] = {10, 20}, in_all[] = {20, 50}, normal[] = {20, 50, 100},
                        full[] = {20, 50, 100, 150, 200};
    rnn_budget b = budget_of(L);
    rnn_sweep w = base_sweep(CLIPNN_SEQ_ADDITION, b);
    w.claim_prefix = "addition";
    if (b == BUDGET_QUICK) set_lengths(&w, quick, 2);
    if (b == BUDGET_IN_ALL) set_lengths(&w, in_all, 2);
    if (b == BUDGET_DEFAULT) set_lengths(&w, normal, 3);
    if (b == BUDGET_FULL) set_lengths(&w, full, 5);
    return run_task_lab(L, &w, "addition");
}
