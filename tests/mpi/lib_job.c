/* lib_job: clipnn_train in a job, called by a program of its own, run as
 * `mpirun -np 2 lib_job` (under a timeout: some failures this checks are
 * hangs).
 *   1. A process that cannot start: every process loads shard 0 of 2 of
 *      the digits, so process 1 holds rows it does not own and refuses the
 *      set; process 0, whose set is right, must return an error too
 *      instead of waiting for process 1 in the first step.
 *   2. A training state and on_save given to process 0 alone (the one that
 *      writes checkpoints), a save asked at step 3, the gradient clipped
 *      after the sum and by Clip21 (whose vectors are gathered): every
 *      process finishes the run, process 0 saves once and its state holds
 *      every step.
 *   3. The steps of a job allocate nothing (owner computes, the all-reduce
 *      in buckets, Poisson sampling in physical batches, BPTT truncated to
 *      4 steps with a carried state): a run of 2T steps allocates what one
 *      of T does, on every process.
 * Each process prints one "ok"/"FAIL" line per check; exit 1 on a failure. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>

#include "clipnn.h"

enum { STEPS = 6, SAVE_AT = 3 };

static int rank, saves;

static void report(int bad, const char *what, clipnn_status s) {
    printf("%s %s: process %d returned %s\n", bad ? "FAIL" : "ok  ", what, rank, s ? clipnn_last_error() : "OK");
}

static clipnn_model *new_model(void) {
    const size_t widths[2] = {8, 10};
    const clipnn_act acts[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, 64, 2, widths, acts) || clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) {
        clipnn_model_free(m);
        return NULL;
    }
    return m;
}

/* Trains the digits' shard `shard` of 2 on a fresh model: the status. */
static clipnn_status train_shard(size_t shard, clipnn_train_options *o, clipnn_train_result *r) {
    clipnn_data_options d = clipnn_data_options_default();
    d.shard = shard, d.shards = 2;
    clipnn_dataset *train = NULL;
    clipnn_model *m = new_model();
    clipnn_status s = m ? clipnn_dataset_load("digits", &d, &train, NULL) : CLIPNN_ERR_NOMEM;
    if (!s) s = clipnn_train(m, train, NULL, o, r);
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    return s;
}

static int save_at_step(void *user) {
    int *step = user;
    return ++*step == SAVE_AT ? CLIPNN_TRAIN_SAVE : 0;
}

static void count_save(const clipnn_model *m, const clipnn_train_state *state, void *user) {
    (void)m, (void)state, (void)user;
    saves++;
}

/* The allocations of a run of `steps` steps of kind k (0: a dense model,
 * 1: DP-SGD with Poisson sampling in physical batches, 2: an LSTM with
 * truncated BPTT and a carried state) on this process's shard. */
static uint64_t run_allocations(int k, uint64_t steps) {
    clipnn_data_options d = clipnn_data_options_default();
    d.shard = (size_t)rank, d.shards = 2;
    clipnn_dataset *train = NULL;
    clipnn_model *m = NULL;
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = steps;
    o.batch = 16;
    clipnn_status s = clipnn_dataset_load("digits", &d, &train, NULL);
    if (k < 2) {
        m = new_model();
    } else { /* each 8x8 image as 8 steps of 8 values */
        clipnn_layer_spec ls[2] = {{CLIPNN_LAYER_LSTM, 12, CLIPNN_ACT_IDENTITY},
                                   {CLIPNN_LAYER_DENSE, 10, CLIPNN_ACT_IDENTITY}};
        clipnn_seq_shape seq = {8, 8, 0};
        if (!s && !clipnn_model_create_seq(&m, &seq, 2, ls) && clipnn_model_init(m, CLIPNN_INIT_XAVIER, 2))
            clipnn_model_free(m), m = NULL;
        o.bptt_steps = 4, o.carry_state = 1; /* gradients 4 steps back, the state carried */
    }
    if (k == 1) {
        o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
        o.clip.noise_multiplier = 1;
        o.physical_batch = 5;
    }
    clipnn_train_result r;
    uint64_t before = clipnn_allocation_count();
    if (!s) s = m ? clipnn_train(m, train, NULL, &o, &r) : CLIPNN_ERR_NOMEM;
    uint64_t used = clipnn_allocation_count() - before;
    if (!s && k == 0 && clipnn_dist_last_buckets() < 2) { /* the buckets' path, not the fused one */
        fprintf(stderr, "lib_job: process %d: %d buckets\n", rank, clipnn_dist_last_buckets());
        used = 0;
    }
    if (s) fprintf(stderr, "lib_job: process %d, run %d: %s\n", rank, k, clipnn_last_error());
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    return s ? 0 : used;
}

static int check_allocations(void) {
    static const char *const kinds[3] = {"dense", "dp-poisson", "lstm-bptt-carried"};
    int failed = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t a = run_allocations(k, 30), b = run_allocations(k, 60);
        int bad = a == 0 || a != b;
        printf("%s steps-allocate-nothing %s: process %d: %llu allocations in 30 steps, %llu in 60\n",
               bad ? "FAIL" : "ok  ", kinds[k], rank, (unsigned long long)a, (unsigned long long)b);
        failed |= bad;
    }
    return failed;
}

int main(int argc, char **argv) {
    setenv("CLIPNN_ALLREDUCE_BUCKET_MB", "0.0001", 0); /* buckets of a few hundred floats: several a step */
    if (clipnn_dist_init(&argc, &argv)) return 2;
    rank = clipnn_dist_rank();
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = STEPS;
    clipnn_train_result r;
    clipnn_status s = train_shard(0, &o, &r);
    /* process 0 told of the other's failure, process 1 refused its set */
    int bad = rank == 0 ? s != CLIPNN_ERR_STATE : s != CLIPNN_ERR_INVALID_ARG;
    report(bad, "start-fail", s);
    int failed = bad;

    for (int clip21 = 0; clip21 <= 1; clip21++) { /* Clip21's vectors are gathered at a save */
        clipnn_train_state *state = NULL;
        if (rank == 0 && clipnn_train_state_create(&state)) return 2;
        int step = 0;
        saves = 0;
        o.control = save_at_step, o.user = &step;
        o.state = state, o.on_save = rank == 0 ? count_save : NULL;
        o.clip_where = clip21 ? CLIPNN_CLIP_WHERE_CLIP21 : CLIPNN_CLIP_WHERE_GLOBAL;
        s = train_shard((size_t)rank, &o, &r);
        bad = s || r.steps != STEPS || (rank == 0 && (saves != 1 || clipnn_train_state_steps(state) != STEPS));
        report(bad, clip21 ? "state-on-process-0 clip21" : "state-on-process-0 global", s);
        failed |= bad;
        clipnn_train_state_free(state);
    }
    o.clip_where = CLIPNN_CLIP_WHERE_GLOBAL;
    failed |= check_allocations();
    clipnn_dist_finalize();
    return failed;
}
