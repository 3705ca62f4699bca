/* start_fail: a process of a job that cannot start clipnn_train ends the
 * call on every process, run as `mpirun -np 2 start_fail` (under a
 * timeout: the failure this checks is a hang). Every process loads shard 0
 * of 2 of the digits, so process 1 holds rows it does not own and its
 * clipnn_train refuses the set; process 0's, whose set is right, must
 * return an error too instead of waiting for process 1 in the first step.
 * Each process prints one "ok"/"FAIL" line; exit 1 on a failure. */
#include <stdio.h>

#include "clipnn.h"

int main(int argc, char **argv) {
    if (clipnn_dist_init(&argc, &argv)) return 2;
    int rank = clipnn_dist_rank();
    clipnn_data_options d = clipnn_data_options_default();
    d.shard = 0, d.shards = 2;
    clipnn_dataset *train = NULL;
    clipnn_model *m = NULL;
    const size_t widths[2] = {8, 10};
    const clipnn_act acts[2] = {CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    if (clipnn_dataset_load("digits", &d, &train, NULL) || clipnn_model_create(&m, 64, 2, widths, acts) ||
        clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) {
        fprintf(stderr, "start_fail: setup: %s\n", clipnn_last_error());
        clipnn_dist_abort(2, "setup failed");
        return 2;
    }
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = 5;
    clipnn_train_result r;
    clipnn_status s = clipnn_train(m, train, NULL, &o, &r);
    /* process 0 told of the other's failure, process 1 refused its set */
    int bad = rank == 0 ? s != CLIPNN_ERR_STATE : s != CLIPNN_ERR_INVALID_ARG;
    printf("%s start-fail: process %d returned %s\n", bad ? "FAIL" : "ok  ", rank,
           s ? clipnn_last_error() : "no error");
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    clipnn_dist_finalize();
    return bad;
}
