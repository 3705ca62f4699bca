/* Calls that read what an earlier call left in the model's workspace (the
 * per-example norms, per-sample clipping, the per-example losses) refuse
 * with CLIPNN_ERR_STATE once another call has overwritten it, and still
 * give the result of a clean run in the valid order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/nn.h" /* the workspace record: every overwrite bumps its generation */

enum { B = 7, SMALL = 3, N_IN = 4 };

static clipnn_model *state_model(void) {
    size_t widths[3] = {6, 5, 3};
    clipnn_act acts[3] = {CLIPNN_ACT_TANH, CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, N_IN, 3, widths, acts) || clipnn_model_init(m, CLIPNN_INIT_XAVIER, 5)) {
        clipnn_model_free(m);
        return NULL;
    }
    return m;
}

/* Two different batches: x for the backward, x2 for the forward that
 * overwrites it. */
static void state_data(float *x, float *x2, float *y) {
    for (int i = 0; i < B * N_IN; i++) x[i] = (float)sin(0.71 * i + 0.3) * 1.5f;
    for (int i = 0; i < B * N_IN; i++) x2[i] = (float)cos(1.37 * i + 0.2) * 2.0f;
    for (int i = 0; i < B; i++) y[i] = (float)(i % 3);
}

static clipnn_loss_options xent(void) {
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    return lo;
}

/* The per-example norms of (x, y) on a clone that never ran anything else:
 * what a valid sequence must give, bit for bit (same kernels, same batch). */
static void clean_norms(const clipnn_model *m, const float *x, const float *y, double *norms) {
    clipnn_model *fresh = NULL;
    clipnn_loss_options lo = xent();
    CHECK_OK(clipnn_model_clone(m, &fresh));
    CHECK_OK(clipnn_loss_grad(fresh, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_per_example_grad_norms(fresh, norms));
    clipnn_model_free(fresh);
}

static int mentions(const char *needle) { return strstr(clipnn_last_error(), needle) != NULL; }

/* The sequence that used to return 3 wrong entries of 7: a backward on 7
 * examples, then a forward on 3 others. */
TEST(api_state_norms_after_forward_refused) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B];
    state_data(x, x2, y);
    clipnn_loss_options lo = xent();
    double want[B], norms[B];
    clean_norms(m, x, y, want);

    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_forward(m, x2, SMALL, NULL));
    for (int i = 0; i < B; i++) norms[i] = -1;
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK(mentions("clipnn_loss_grad") && mentions("clipnn_forward"));
    for (int i = 0; i < B; i++) CHECK(norms[i] == -1); /* nothing written */
    /* The same batch size does not make it valid: the activations are x2's. */
    CHECK_OK(clipnn_forward(m, x2, B, NULL));
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);

    /* The valid order still works and gives the clean run's norms. */
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    for (int i = 0; i < B; i++) CHECK(norms[i] == want[i] && norms[i] > 0);
    /* Parameter changes leave the backward's deltas readable. */
    clipnn_model_params(m)[0] += 0.25f;
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    for (int i = 0; i < B; i++) CHECK(norms[i] == want[i]);
    clipnn_model_free(m);
}

/* A backward that stops at the top layer (no parameter gradients, no dx)
 * leaves the lower deltas stale; with dx it computes all of them. */
TEST(api_state_norms_need_every_delta) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B], dx[B * N_IN];
    state_data(x, x2, y);
    double want[B], norms[B];
    clean_norms(m, x, y, want);
    clipnn_loss_options lo = xent();
    lo.want_params = 0;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, dx));
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    for (int i = 0; i < B; i++) CHECK(norms[i] == want[i]);
    CHECK(clipnn_per_example_grad_norms(NULL, norms) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_per_example_grad_norms(m, NULL) == CLIPNN_ERR_INVALID_ARG);
    clipnn_model_free(m);
}

/* Every other call that overwrites the workspace: nothing run yet, a
 * growing reserve, an objective gradient (input optimisation). */
TEST(api_state_other_overwrites_refused) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B];
    state_data(x, x2, y);
    clipnn_loss_options lo = xent();
    double want[B], norms[B];
    clean_norms(m, x, y, want);

    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK(mentions("nothing has run"));

    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_model_reserve(m, B)); /* within the size: changes nothing */
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    for (int i = 0; i < B; i++) CHECK(norms[i] == want[i]);
    CHECK_OK(clipnn_model_reserve(m, 4 * B)); /* grows: a new, empty workspace */
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);

    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    clipnn_objective obj = clipnn_objective_default();
    double values[SMALL];
    float dx[SMALL * N_IN];
    CHECK_OK(clipnn_objective_grad(m, &obj, x2, y, SMALL, values, dx, NULL));
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    clipnn_model_free(m);
}

static clipnn_status per_sample_apply(clipnn_clipper *c, clipnn_model *m, clipnn_clip_record *rec) {
    double scale = 1;
    return clipnn_clipper_apply(c, m, -1, 0, &scale, NULL, rec);
}

/* Per-sample clipping reads the deltas of the backward before it: after a
 * forward it refuses and changes nothing (gradient block, counts); it
 * needs the parameter gradients; it consumes the backward. */
TEST(api_state_per_sample_clipping_checks_and_consumes) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B], dx[B * N_IN];
    state_data(x, x2, y);
    clipnn_loss_options lo = xent();
    size_t n = clipnn_model_n_params(m);
    double want[B], norms[B];
    clean_norms(m, x, y, want);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PER_SAMPLE;
    o.lambda = 0.5 * (want[0] + want[1]); /* some examples clipped */
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    clipnn_clip_record rec;
    float *g0 = malloc(n * sizeof *g0);
    CHECK(g0 != NULL);
    if (!c || !g0) goto done;

    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_forward(m, x2, SMALL, NULL));
    memcpy(g0, clipnn_model_grads(m), n * sizeof *g0);
    CHECK(per_sample_apply(c, m, &rec) == CLIPNN_ERR_STATE);
    CHECK(mentions("per-sample") && mentions("clipnn_loss_grad"));
    CHECK(memcmp(g0, clipnn_model_grads(m), n * sizeof *g0) == 0);

    lo.want_params = 0; /* deltas everywhere (dx), but not the gradient block */
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, dx));
    CHECK(per_sample_apply(c, m, &rec) == CLIPNN_ERR_STATE);

    lo.want_params = 1;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(per_sample_apply(c, m, &rec));
    CHECK(rec.n_steps == 1 && rec.clipped == 1); /* the refused calls did not count */
    /* The deltas are the clipped step's now: neither a second clipping nor
     * the norms may read them as the backward's. */
    CHECK(per_sample_apply(c, m, &rec) == CLIPNN_ERR_STATE);
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK(mentions("per-sample clipping"));
done:
    free(g0);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* The losses of the last clipnn_loss_grad: none before, kept by a
 * forward, dropped when the workspace grows. */
TEST(api_state_last_losses) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B];
    state_data(x, x2, y);
    clipnn_loss_options lo = xent();
    CHECK(clipnn_model_last_losses(m) == NULL);
    double mean;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, &mean, NULL));
    const float *losses = clipnn_model_last_losses(m);
    CHECK(losses != NULL);
    if (!losses) goto done;
    float kept[B];
    double sum = 0;
    for (int i = 0; i < B; i++) sum += (kept[i] = losses[i]);
    /* The batch mean is the double mean of the same losses before each was
     * rounded to float (half an ulp, 2^-24 relative, each; XENT >= 0). */
    CHECK_NEAR(sum / B, mean, 0x1p-24 * sum / B + 1e-15 * mean);
    CHECK_OK(clipnn_forward(m, x2, SMALL, NULL));
    losses = clipnn_model_last_losses(m);
    CHECK(losses != NULL && memcmp(losses, kept, sizeof kept) == 0);
    CHECK_OK(clipnn_model_reserve(m, 4 * B));
    CHECK(clipnn_model_last_losses(m) == NULL);
done:
    clipnn_model_free(m);
}

/* Every call that overwrites the workspace bumps the generation; a
 * parameter change or a reserve within the size does not. */
TEST(api_state_generation_counts_overwrites) {
    clipnn_model *m = state_model();
    CHECK(m != NULL);
    if (!m) return;
    float x[B * N_IN], x2[B * N_IN], y[B];
    state_data(x, x2, y);
    clipnn_loss_options lo = xent();
    uint64_t g = m->ws.generation;
    CHECK_OK(clipnn_forward(m, x2, SMALL, NULL));
    CHECK(m->ws.generation > g && m->ws.batch == SMALL);
    g = m->ws.generation;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK(m->ws.generation > g && m->ws.batch == B);
    g = m->ws.generation;
    clipnn_model_params(m)[1] -= 0.5f;
    CHECK_OK(clipnn_model_reserve(m, B));
    CHECK(m->ws.generation == g);
    CHECK_OK(clipnn_model_reserve(m, 2 * B));
    CHECK(m->ws.generation > g && m->ws.holds == 0);
    clipnn_model_free(m);
}
