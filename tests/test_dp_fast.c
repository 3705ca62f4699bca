/* The private step's shortcut: a logical batch that is one physical batch
 * (every Poisson batch below the physical size) skips the double sums, and
 * must give the parameters of the path through them bit for bit (the same
 * double arithmetic on the same clipped mean), with the records' norms
 * equal to double rounding. --log-groups reads the sums, so it takes the
 * path through them: the two runs differ only in that. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mlp_fixture.h"
#include "clipnn.h"

enum { FAST_STEPS = 25 };

typedef struct {
    double pre[FAST_STEPS], post[FAST_STEPS];
    size_t n;
} norm_log;

static void keep_norms(const clipnn_step_record *r, void *user) {
    norm_log *l = user;
    if (l->n < FAST_STEPS) l->pre[l->n] = r->clip.pre_norm, l->post[l->n++] = r->clip.post_norm;
}

static clipnn_model *small_model(const clipnn_dataset *d) { return fixture_mlp1(clipnn_dataset_dim(d), 24, 10, 9); }

/* A private run of FAST_STEPS steps; the norms of its steps into *l. */
static void private_run(clipnn_model *m, const clipnn_dataset *d, clipnn_sampling sampling, int log_groups,
                        norm_log *l) {
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.noise_multiplier = 0.8;
    o.sampling = sampling;
    o.physical_batch = sampling == CLIPNN_SAMPLING_SHUFFLE ? 64 : 0; /* shuffled: logical steps need it */
    o.batch = 48;
    o.steps = FAST_STEPS;
    o.log_groups = log_groups;
    o.on_step = keep_norms;
    o.user = l;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
}

static void check_same_run(clipnn_sampling sampling) {
    clipnn_dataset *train = NULL, *test = NULL;
    clipnn_data_options dopt = clipnn_data_options_default();
    CHECK_OK(clipnn_dataset_load("digits", &dopt, &train, &test));
    if (!train) return;
    clipnn_model *a = small_model(train), *b = small_model(train);
    norm_log la = {0}, lb = {0};
    if (a && b) {
        private_run(a, train, sampling, 0, &la);
        private_run(b, train, sampling, 1, &lb);
        size_t P = clipnn_model_n_params(a);
        CHECK(memcmp(clipnn_model_params(a), clipnn_model_params(b), P * sizeof(float)) == 0);
        CHECK(la.n == FAST_STEPS && lb.n == FAST_STEPS);
        for (size_t t = 0; t < la.n; t++) {
            CHECK_NEAR(la.pre[t], lb.pre[t], 1e-12 * lb.pre[t]); /* one sqrt and sums of squares apart */
            CHECK(la.post[t] == lb.post[t]);
        }
    }
    clipnn_model_free(a), clipnn_model_free(b);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

TEST(dp_one_physical_batch_poisson) { check_same_run(CLIPNN_SAMPLING_POISSON); }

TEST(dp_one_physical_batch_shuffled) { check_same_run(CLIPNN_SAMPLING_SHUFFLE); }
