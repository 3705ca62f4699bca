/* no_hang: clipnn_train in a job where the processes differ, run as
 * `mpirun -np 2 no_hang` (under a timeout: the failures this checks are
 * hangs).
 *   1. A process that cannot start: every process loads shard 0 of 2 of
 *      the digits, so process 1 holds rows it does not own and refuses the
 *      set; process 0, whose set is right, must return an error too
 *      instead of waiting for process 1 in the first step.
 *   2. A training state and on_save given to process 0 alone (the one that
 *      writes checkpoints), a save asked at step 3: every process finishes
 *      the run, process 0 saves once and its state holds every step.
 * Each process prints one "ok"/"FAIL" line per check; exit 1 on a failure. */
#include <stdio.h>

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

int main(int argc, char **argv) {
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

    clipnn_train_state *state = NULL;
    if (rank == 0 && clipnn_train_state_create(&state)) return 2;
    int step = 0;
    o.control = save_at_step, o.user = &step;
    o.state = state, o.on_save = rank == 0 ? count_save : NULL;
    s = train_shard((size_t)rank, &o, &r);
    bad = s || r.steps != STEPS || (rank == 0 && (saves != 1 || clipnn_train_state_steps(state) != STEPS));
    report(bad, "state-on-process-0", s);
    failed |= bad;
    clipnn_train_state_free(state);
    clipnn_dist_finalize();
    return failed;
}
