/* Training steps allocate nothing: counted through
 * clipnn_allocation_count(), the library's allocator hook. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "base/base.h" /* clipnn_parallel_macs: split kernels on small models */
#include "mlp_fixture.h"

enum { N_EX = 48, DIM = 10, CLASSES = 3 };

static clipnn_dataset *small_data(void) {
    float x[N_EX * DIM], y[N_EX];
    for (int i = 0; i < N_EX; i++) {
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = (float)((i * 7 + j * 3) % 11) / 11.0f - 0.4f;
        y[i] = (float)(i % CLASSES);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N_EX, DIM, CLASSES, 1, &d));
    return d;
}

static clipnn_model *small_model(void) { return fixture_mlp(DIM, 16, 8, CLASSES, CLIPNN_ACT_RELU, 3); }

static const clipnn_clip_rule rules[] = {CLIPNN_CLIP_NONE,           CLIPNN_CLIP_NORM,       CLIPNN_CLIP_ADAPTIVE,
                                         CLIPNN_CLIP_ADAPTIVE_LAYER, CLIPNN_CLIP_AGC,        CLIPNN_CLIP_PER_SAMPLE,
                                         CLIPNN_CLIP_PERCENTILE,     CLIPNN_CLIP_ZSCORE,     CLIPNN_CLIP_NORM_GROUP};
#define N_RULES (sizeof rules / sizeof rules[0])

/* Allocations made by clipnn_train(m, d, o) for o->steps steps; frees m and d.
 * d is the test set too: the evaluation at each epoch's end is part of the
 * steps (the runs compared end different numbers of epochs). */
static uint64_t run_allocations(clipnn_model *m, clipnn_dataset *d, const clipnn_train_options *o) {
    clipnn_train_result r;
    uint64_t before = clipnn_allocation_count();
    CHECK_OK(clipnn_train(m, d, d, o, &r));
    uint64_t used = clipnn_allocation_count() - before;
    CHECK(r.steps == o->steps);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    return used;
}

/* Allocations made by one clipnn_train run of `steps` steps on a fresh model. */
static uint64_t train_allocations(clipnn_clip_rule rule, uint64_t steps, size_t batch, int momentum) {
    clipnn_dataset *d = small_data();
    clipnn_model *m = small_model();
    clipnn_train_options o = clipnn_train_options_default();
    o.clip.rule = rule;
    o.clip.lambda = rule == CLIPNN_CLIP_AGC || rule == CLIPNN_CLIP_ADAPTIVE_LAYER ? 0.01 : 0.5;
    o.optim.momentum = momentum ? 0.9 : 0.0;
    o.batch = batch;
    o.steps = steps;
    o.replacement = 1;
    return run_allocations(m, d, &o);
}

/* The setup allocates; if a step allocated, 2N steps would allocate more
 * than N. Batch 1 and a larger batch take different kernels (GEMV, rank
 * one, GEMM); two threads take the split kernels. */
TEST(train_steps_allocate_nothing) {
    int saved = clipnn_get_threads();
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    for (int threads = 1; threads <= 2; threads++) {
        clipnn_set_threads(threads);
        for (size_t r = 0; r < N_RULES; r++)
            for (size_t batch = 1; batch <= 16; batch += 15) {
                uint64_t a = train_allocations(rules[r], 20, batch, (int)(r % 2));
                uint64_t b = train_allocations(rules[r], 40, batch, (int)(r % 2));
                CHECK_MSG(a == b, "rule %s, batch %zu, %d threads: %llu allocations in 20 steps, %llu in 40",
                          clipnn_clip_rule_name(rules[r]), batch, threads, (unsigned long long)a,
                          (unsigned long long)b);
                CHECK(a > 0); /* the counter does count the setup */
            }
    }
    clipnn_set_threads(saved);
    clipnn_parallel_macs = saved_macs;
}

/* A recurrent model (two layers of `kind` over 5 steps of 2 values, a
 * dense head) trained `steps` steps on `threads` threads with the split
 * recurrent kernels: the allocations of the run. */
static uint64_t rec_train_allocations(clipnn_layer_kind kind, uint64_t steps, int threads) {
    clipnn_layer_spec ls[3] = {{kind, 12, CLIPNN_ACT_IDENTITY}, {kind, 9, CLIPNN_ACT_IDENTITY},
                               {CLIPNN_LAYER_DENSE, CLASSES, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {5, DIM / 5, 0};
    clipnn_dataset *d = small_data();
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 3, ls));
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 2));
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 8;
    o.steps = steps;
    clipnn_set_threads(threads);
    return run_allocations(m, d, &o);
}

/* The recurrent layers' forward and backward through time on one and two
 * threads (split at any size) allocate nothing in a step either. */
TEST(recurrent_train_steps_allocate_nothing) {
    int saved = clipnn_get_threads();
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    const clipnn_layer_kind kinds[] = {CLIPNN_LAYER_RNN, CLIPNN_LAYER_LSTM, CLIPNN_LAYER_GRU};
    for (int threads = 1; threads <= 2; threads++)
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
            uint64_t a = rec_train_allocations(kinds[k], 12, threads);
            uint64_t b = rec_train_allocations(kinds[k], 24, threads);
            CHECK_MSG(a == b, "%s, %d threads: %llu allocations in 12 steps, %llu in 24",
                      clipnn_layer_kind_name(kinds[k]), threads, (unsigned long long)a, (unsigned long long)b);
        }
    clipnn_set_threads(saved);
    clipnn_parallel_macs = saved_macs;
}

/* The low-level step: after a warm-up step, loss and gradient, clipping and
 * the update allocate nothing. */
TEST(low_level_steps_allocate_nothing) {
    clipnn_dataset *d = small_data();
    const float *x = clipnn_dataset_x(d), *y = clipnn_dataset_y(d);
    for (size_t r = 0; r < N_RULES; r++) {
        clipnn_model *m = small_model();
        CHECK_OK(clipnn_model_reserve(m, 16));
        clipnn_clip_options co = clipnn_clip_options_default();
        co.rule = rules[r];
        co.lambda = 0.05;
        clipnn_clipper *c = NULL;
        clipnn_optimizer *opt = NULL;
        clipnn_optim_options oo = clipnn_optim_options_default();
        oo.momentum = 0.9;
        CHECK_OK(clipnn_clipper_create(&c, m, &co));
        CHECK_OK(clipnn_optimizer_create(&opt, clipnn_model_n_params(m), &oo));
        clipnn_loss_options lo = clipnn_loss_options_default();
        uint64_t before = 0;
        for (int step = 0; step < 12; step++) {
            if (step == 1) before = clipnn_allocation_count();
            size_t B = step % 3 == 0 ? 16 : step % 3 == 1 ? 1 : 5;
            const float *xb = x + (size_t)(step * 3 % (N_EX - 16)) * DIM, *yb = y + step * 3 % (N_EX - 16);
            double loss, scale = 1;
            clipnn_clip_record rec;
            CHECK_OK(clipnn_loss_grad(m, &lo, xb, yb, B, &loss, NULL));
            CHECK_OK(clipnn_clipper_apply(c, m, -1, 1, &scale, NULL, &rec));
            CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), 0.05, scale));
            CHECK_OK(clipnn_clipper_after_update(c, m, &rec));
        }
        CHECK_MSG(clipnn_allocation_count() == before, "rule %s: %llu allocations in 11 steps",
                  clipnn_clip_rule_name(rules[r]), (unsigned long long)(clipnn_allocation_count() - before));
        clipnn_optimizer_free(opt);
        clipnn_clipper_free(c);
        clipnn_model_free(m);
    }
    clipnn_dataset_free(d);
}

/* The hook itself: a model's creation is counted. */
TEST(allocation_counter_counts) {
    uint64_t before = clipnn_allocation_count();
    clipnn_model *m = small_model();
    CHECK(clipnn_allocation_count() > before);
    clipnn_model_free(m);
}

/* The blocks every step streams start on a 64-byte line (a vector load of
 * a row then touches one line, not two), and stay zeroed until written. */
TEST(hot_blocks_start_on_a_cache_line) {
    for (size_t n = 1; n <= 4096; n = 3 * n + 1) {
        float *p = clipnn_alloc_aligned_array(n, sizeof *p);
        CHECK(p && (uintptr_t)p % 64 == 0);
        int zero = 1;
        for (size_t i = 0; i < n; i++) zero &= p[i] == 0.0f;
        CHECK(zero);
        p[n - 1] = 1.0f; /* the whole count is usable (ASan sees an overrun) */
        clipnn_free_aligned(p);
    }
    CHECK(clipnn_alloc_aligned_array(SIZE_MAX / 2, 4) == NULL);
    clipnn_model *m = small_model();
    CHECK(m && (uintptr_t)clipnn_model_params(m) % 64 == 0 && (uintptr_t)clipnn_model_grads(m) % 64 == 0);
    clipnn_model_free(m);
}

/* The rules that carry their own state or read the optimizer's (AdaGC's
 * per-group EMA, SPAM's view of Adam's v, ACClip's and NSGD-M's momentum)
 * and Pascanu's random step allocate nothing in a step either. */
static uint64_t modern_allocations(clipnn_clip_rule rule, clipnn_opt_kind opt, uint64_t steps) {
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(rule);
    o.optim.kind = opt;
    o.optim.momentum = 0; /* acclip and nsgdm keep their own */
    o.batch = 8;
    o.steps = steps;
    o.replacement = 1;
    o.clip.nonfinite = CLIPNN_NONFINITE_RANDOM;
    return run_allocations(small_model(), small_data(), &o);
}

TEST(modern_rule_steps_allocate_nothing) {
    const struct {
        clipnn_clip_rule rule;
        clipnn_opt_kind opt;
    } runs[] = {{CLIPNN_CLIP_ADAGC, CLIPNN_OPT_SGD},     {CLIPNN_CLIP_SPAM, CLIPNN_OPT_ADAM},
                {CLIPNN_CLIP_NORM, CLIPNN_OPT_SPAM},     {CLIPNN_CLIP_ACCLIP, CLIPNN_OPT_SGD},
                {CLIPNN_CLIP_NSGDM, CLIPNN_OPT_SGD},     {CLIPNN_CLIP_NSGDM_CLIP, CLIPNN_OPT_SGD}};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        uint64_t a = modern_allocations(runs[i].rule, runs[i].opt, 20);
        uint64_t b = modern_allocations(runs[i].rule, runs[i].opt, 40);
        CHECK_MSG(a == b, "rule %s, optimizer %d: %llu allocations in 20 steps, %llu in 40",
                  clipnn_clip_rule_name(runs[i].rule), (int)runs[i].opt, (unsigned long long)a,
                  (unsigned long long)b);
    }
}
