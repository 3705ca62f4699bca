/* The library under concurrent use: two models trained at the same time in
 * two threads of one process end bit for bit where they end when trained
 * one after the other, and each thread sees its own error messages. Run
 * also under ThreadSanitizer by `make tsan`. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h" /* clipnn_parallel_macs: split kernels on small models */
#include "check.h"
#include "clipnn.h"

typedef struct {
    int recurrent;
    clipnn_model *m;
    clipnn_dataset *d;
    clipnn_train_result r;
    clipnn_status s;
    const char *save;         /* a checkpoint written at the end */
    const char *missing;      /* a file loaded to fail */
    char error[512];          /* what clipnn_last_error said after that failure */
    pthread_barrier_t *after; /* both threads have failed before either reads its error */
} job;

static clipnn_dataset *job_data(int recurrent) {
    enum { N = 96, DIM = 16 };
    float x[N * DIM], y[N];
    uint64_t state = recurrent ? 7 : 11;
    for (size_t i = 0; i < N * DIM; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(state >> 11) / 9007199254740992.0 - 0.5);
    }
    for (size_t i = 0; i < N; i++) y[i] = (float)((x[i * DIM] + x[i * DIM + 3] > 0) + (x[i * DIM + 5] > 0.25f));
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N, DIM, 3, 1, &d));
    return d;
}

/* An MLP 16-32-3 or an LSTM over 8 steps of 2 values, then 3 outputs. */
static clipnn_model *job_model(int recurrent) {
    clipnn_seq_shape flat = {1, 16, 0}, seq = {8, 2, 0};
    clipnn_layer_spec mlp[] = {{CLIPNN_LAYER_DENSE, 32, CLIPNN_ACT_TANH}, {CLIPNN_LAYER_DENSE, 3, CLIPNN_ACT_IDENTITY}};
    clipnn_layer_spec rnn[] = {{CLIPNN_LAYER_LSTM, 16, CLIPNN_ACT_TANH}, {CLIPNN_LAYER_DENSE, 3, CLIPNN_ACT_IDENTITY}};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, recurrent ? &seq : &flat, 2, recurrent ? rnn : mlp));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, recurrent ? 3 : 5));
    return m;
}

static void *run_job(void *arg) {
    job *j = arg;
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 8;
    o.epochs = 4;
    if (!j->recurrent) o.optim.kind = CLIPNN_OPT_ADAM, o.schedule.a0 = 0.01;
    j->s = clipnn_train(j->m, j->d, NULL, &o, &j->r);
    if (!j->s && j->save) j->s = clipnn_model_save(j->m, j->save);
    clipnn_dataset *none = NULL;
    (void)clipnn_dataset_load_csv(j->missing, -1, -1, &none);
    if (j->after) pthread_barrier_wait(j->after);
    snprintf(j->error, sizeof j->error, "%s", clipnn_last_error());
    return NULL;
}

static void make_jobs(job jobs[2], pthread_barrier_t *after) {
    for (int k = 0; k < 2; k++) {
        jobs[k] = (job){.recurrent = k, .m = job_model(k), .d = job_data(k), .after = after};
        jobs[k].save = check_tmp_path(k ? "concurrent_rnn.ckpt" : "concurrent_mlp.ckpt");
        jobs[k].missing = k ? "/nonexistent/second.csv" : "/nonexistent/first.csv";
    }
}

static void free_jobs(job jobs[2]) {
    for (int k = 0; k < 2; k++) clipnn_model_free(jobs[k].m), clipnn_dataset_free(jobs[k].d);
}

static void check_same(const job *a, const job *b) {
    CHECK(a->s == CLIPNN_OK && b->s == CLIPNN_OK);
    CHECK(a->r.steps == b->r.steps && a->r.steps == 48);
    CHECK(memcmp(&a->r.train_loss, &b->r.train_loss, sizeof a->r.train_loss) == 0);
    size_t P = clipnn_model_n_params(a->m);
    CHECK(P == clipnn_model_n_params(b->m));
    CHECK(memcmp(clipnn_model_params(a->m), clipnn_model_params(b->m), P * sizeof(float)) == 0);
}

static void two_models_at_once(int threads) {
    clipnn_set_threads(threads);
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    job one[2], both[2];
    make_jobs(one, NULL);
    for (int k = 0; k < 2; k++) run_job(&one[k]); /* one after the other */
    pthread_barrier_t after;
    pthread_barrier_init(&after, NULL, 2);
    make_jobs(both, &after);
    pthread_t t[2];
    for (int k = 0; k < 2; k++) CHECK(pthread_create(&t[k], NULL, run_job, &both[k]) == 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    pthread_barrier_destroy(&after);
    for (int k = 0; k < 2; k++) {
        check_same(&one[k], &both[k]);
        CHECK_MSG(strstr(both[k].error, both[k].missing), "thread %d saw: %s", k, both[k].error);
        clipnn_model *back = NULL;
        CHECK_OK(clipnn_model_load(both[k].save, &back));
        CHECK(back && !memcmp(clipnn_model_params(back), clipnn_model_params(both[k].m),
                              clipnn_model_n_params(back) * sizeof(float)));
        clipnn_model_free(back);
    }
    free_jobs(one);
    free_jobs(both);
    clipnn_parallel_macs = saved_macs;
    clipnn_set_threads(1);
}

TEST(concurrency_two_models_in_two_threads_match_one_after_the_other) { two_models_at_once(1); }

TEST(concurrency_two_models_in_two_threads_with_two_library_threads) { two_models_at_once(2); }
