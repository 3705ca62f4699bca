/* The library's side of run control: the running training accuracy of the
 * epoch record, and the control callback (a state captured between steps
 * for a periodic checkpoint, a stop on request) with the resumes they
 * allow, which must land on the uninterrupted run's parameters bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "mlp_fixture.h"

static clipnn_dataset *digits_train(clipnn_dataset **test) {
    clipnn_dataset *train = NULL;
    CHECK_OK(clipnn_dataset_load("digits", NULL, &train, test));
    return train;
}

static clipnn_model *small_mlp(void) { return fixture_mlp(64, 16, 16, 10, CLIPNN_ACT_TANH, 3); }

/* Full-batch steps: epoch e's only forward is at the parameters epoch e-1
 * left, so its running accuracy is the training set's accuracy there. */
typedef struct {
    clipnn_model *m;
    const clipnn_dataset *train;
    double acc_before[4], running[3]; /* acc_before[e]: after e epochs */
    size_t n;
} acc_probe;

static void probe_epoch(const clipnn_epoch_record *r, void *user) {
    acc_probe *p = user;
    if (p->n >= 3) return;
    p->running[p->n] = r->train_accuracy;
    /* the parameters the next epoch's forward sees */
    clipnn_loss_options lo = clipnn_loss_options_default();
    double loss;
    p->n++;
    CHECK_OK(clipnn_evaluate(p->m, p->train, &lo, &loss, &p->acc_before[p->n]));
}

static void no_step(const clipnn_step_record *r, void *user) { (void)r, (void)user; }

TEST(runctl_train_accuracy_is_the_running_accuracy) {
    clipnn_dataset *train = digits_train(NULL);
    clipnn_model *m = small_mlp();
    if (!train || !m) return;
    acc_probe p = {.m = m, .train = train};
    clipnn_loss_options lo = clipnn_loss_options_default();
    double loss;
    CHECK_OK(clipnn_evaluate(m, train, &lo, &loss, &p.acc_before[0]));
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = clipnn_dataset_n(train);
    o.epochs = 3;
    o.schedule.a0 = 0.5;
    o.on_epoch = probe_epoch;
    o.on_step = no_step;
    o.user = &p;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, train, NULL, &o, &res));
    CHECK(p.n == 3);
    /* clipnn_evaluate runs the same rows in chunks of 256, the step in one
     * batch: BLAS may sum a score in another order, so a row whose two top
     * scores lie within float rounding of each other may flip: one row. */
    double one_row = 1.0 / (double)clipnn_dataset_n(train);
    for (int e = 0; e < 3; e++) CHECK_NEAR(p.running[e], p.acc_before[e], one_row);
    /* the training moved the accuracy, so the check above tells epochs apart */
    CHECK(p.acc_before[3] - p.acc_before[0] > 10 * one_row);
    clipnn_model_free(m);
    clipnn_dataset_free(train);
}

/* The caller's control: a checkpoint written at save_at, a stop after
 * stop_at (0: none); epochs reported. */
typedef struct {
    uint64_t step, save_at, stop_at;
    const char *path;
    size_t epochs_reported, saves;
    uint64_t saved_steps;
} controller;

static void count_step(const clipnn_step_record *r, void *user) { ((controller *)user)->step = r->step; }
static void count_epoch(const clipnn_epoch_record *r, void *user) {
    (void)r;
    ((controller *)user)->epochs_reported++;
}

static int control_at(void *user) {
    controller *c = user;
    if (c->stop_at && c->step == c->stop_at) return CLIPNN_TRAIN_STOP;
    return c->save_at && c->step == c->save_at ? CLIPNN_TRAIN_SAVE : CLIPNN_TRAIN_CONTINUE;
}

static void save_to_file(const clipnn_model *m, const clipnn_train_state *s, void *user) {
    controller *c = user;
    c->saves++;
    c->saved_steps = clipnn_train_state_steps(s);
    CHECK_OK(clipnn_checkpoint_save(c->path, m, s));
}

/* Momentum, a decaying schedule and AutoClip's history: a resume that lost
 * any of them would land elsewhere. */
static clipnn_train_options controlled_options(controller *c) {
    clipnn_train_options o = clipnn_train_options_default();
    o.epochs = 3;
    o.schedule.kind = CLIPNN_SCHED_RM;
    o.schedule.t0 = 10;
    o.schedule.power = 0.75;
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PERCENTILE);
    o.on_step = count_step;
    o.on_epoch = count_epoch;
    o.control = control_at;
    o.on_save = save_to_file;
    o.user = c;
    return o;
}

/* Trains a fresh model from state (empty or holding a run) to the end of
 * the options' run; returns the model. */
static clipnn_model *run_to_end(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                                clipnn_train_state *state, controller *c, clipnn_train_result *res) {
    clipnn_train_options o = controlled_options(c);
    o.state = state;
    CHECK_OK(clipnn_train(m, train, test, &o, res));
    return m;
}

static int same_params(clipnn_model *a, clipnn_model *b) {
    size_t n = clipnn_model_n_params(a);
    return n == clipnn_model_n_params(b) && !memcmp(clipnn_model_params(a), clipnn_model_params(b), n * sizeof(float));
}

TEST(runctl_control_saves_and_stops_on_the_same_trajectory) {
    clipnn_dataset *test = NULL, *train = digits_train(&test);
    if (!train) return;
    clipnn_train_state *s_whole = NULL, *s_cut = NULL;
    CHECK_OK(clipnn_train_state_create(&s_whole));
    CHECK_OK(clipnn_train_state_create(&s_cut));
    clipnn_train_result res;
    controller whole = {0};
    clipnn_model *ref = run_to_end(small_mlp(), train, test, s_whole, &whole, &res);
    uint64_t total = res.steps;
    CHECK(!res.stopped && whole.saves == 0 && whole.epochs_reported == 3);
    /* saved after step 20 (21 steps taken), stopped after step 60, inside
     * the second epoch (45 steps of batch 32 each over 1438 rows) */
    controller cut = {.save_at = 20, .stop_at = 60, .path = check_tmp_path("runctl_control.ckpt")};
    clipnn_model *m = run_to_end(small_mlp(), train, test, s_cut, &cut, &res);
    CHECK(res.stopped && res.steps == 61 && clipnn_train_state_steps(s_cut) == 61);
    CHECK(cut.saves == 1 && cut.saved_steps == 21);
    CHECK_MSG(cut.epochs_reported == 1, "the epoch cut short was reported: %zu epochs", cut.epochs_reported);
    controller go_on = {0};
    run_to_end(m, train, test, s_cut, &go_on, &res);
    CHECK(res.steps == total && !res.stopped);
    CHECK_MSG(same_params(m, ref), "the stopped run resumed off the trajectory");
    /* the checkpoint written at step 20 continues the same run too */
    clipnn_model *from_file = NULL;
    clipnn_train_state *s_file = NULL;
    CHECK_OK(clipnn_checkpoint_load(cut.path, &from_file, &s_file));
    if (from_file) {
        run_to_end(from_file, train, test, s_file, &go_on, &res);
        CHECK_MSG(same_params(from_file, ref), "the periodic checkpoint resumed off the trajectory");
    }
    clipnn_model_free(from_file), clipnn_model_free(m), clipnn_model_free(ref);
    clipnn_train_state_free(s_file), clipnn_train_state_free(s_cut), clipnn_train_state_free(s_whole);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}
