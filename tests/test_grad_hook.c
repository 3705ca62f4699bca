/* The backward's "this tail of the gradient block is final" hook
 * (clipnn_fused_opts.grads_final), on which the data-parallel all-reduce
 * sends buckets while the backward goes on: every tail it reports must
 * already hold its final bits, the tails must shrink from the top layer
 * down to the whole block, and the hook must change nothing. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/nn.h"
#include "mlp_fixture.h"
#include "rec_fixture.h"

enum { MAX_CALLS = 8, MAX_PARAMS = 2048, ROWS = 7 };

/* What the hook saw: each call's `from` and the tail grads[from, n) then. */
static struct {
    const clipnn_model *m;
    int calls;
    size_t from[MAX_CALLS];
    float tail[MAX_CALLS][MAX_PARAMS];
} seen;

static void record_tail(void *user, size_t from) {
    CHECK(user == &seen);
    const clipnn_model *m = seen.m;
    if (seen.calls >= MAX_CALLS || from > m->n_params) {
        seen.calls = MAX_CALLS + 1;
        return;
    }
    seen.from[seen.calls] = from;
    memcpy(seen.tail[seen.calls++], m->grads + from, (m->n_params - from) * sizeof(float));
}

static void fill_batch(clipnn_model *m, float *x, float *y, size_t rows) {
    size_t in = clipnn_model_n_inputs(m), k = clipnn_model_n_outputs(m);
    for (size_t i = 0; i < rows * in; i++) x[i] = sinf(0.31f * (float)i) * 1.3f;
    for (size_t r = 0; r < rows; r++) y[r] = (float)(r % k);
}

/* One backward with the hook and one without; the tails and the order. */
static void check_tails(clipnn_model *m, const size_t *want_from, int want_calls) {
    static float x[ROWS * 64], y[ROWS], plain[MAX_PARAMS];
    CHECK(m->n_params <= MAX_PARAMS && clipnn_model_n_inputs(m) <= 64);
    fill_batch(m, x, y, ROWS);
    clipnn_loss_options lo = clipnn_loss_options_default();
    clipnn_fused_opts f = {0};
    double loss;
    CHECK_OK(clipnn_loss_grad_fused(m, &lo, x, y, ROWS, &f, &loss, NULL));
    memcpy(plain, m->grads, m->n_params * sizeof *plain);
    memset(m->grads, 0xff, m->n_params * sizeof *m->grads); /* NaNs: an entry not rewritten shows */
    seen.m = m, seen.calls = 0;
    f.grads_final = record_tail, f.grads_final_user = &seen;
    CHECK_OK(clipnn_loss_grad_fused(m, &lo, x, y, ROWS, &f, &loss, NULL));
    CHECK(!memcmp(plain, m->grads, m->n_params * sizeof *plain));
    CHECK_MSG(seen.calls == want_calls, "%d calls, want %d", seen.calls, want_calls);
    for (int c = 0; c < seen.calls && c < want_calls; c++) {
        CHECK_MSG(seen.from[c] == want_from[c], "call %d: from %zu, want %zu", c, seen.from[c], want_from[c]);
        size_t n = m->n_params - seen.from[c];
        CHECK_MSG(!memcmp(seen.tail[c], plain + seen.from[c], n * sizeof(float)), "call %d: the tail from %zu "
                  "was not final", c, seen.from[c]);
    }
}

TEST(grad_hook_mlp_tails_final) {
    clipnn_model *m = fixture_mlp(12, 20, 9, 3, CLIPNN_ACT_RELU, 5);
    if (!m) return;
    /* The top layer's start, the middle's, then the whole block. */
    size_t want[3] = {m->layers[2].w_offset, m->layers[1].w_offset, 0};
    size_t saved_macs = clipnn_parallel_macs;
    int saved_threads = clipnn_get_threads();
    clipnn_parallel_macs = 0; /* split even this small model over the threads */
    for (int threads = 1; threads <= 2; threads++) {
        clipnn_set_threads(threads);
        check_tails(m, want, 3);
    }
    clipnn_set_threads(saved_threads);
    clipnn_parallel_macs = saved_macs;
    clipnn_model_free(m);
}

TEST(grad_hook_recurrent_tails_final) {
    clipnn_model *m = rec_fixture_model(CLIPNN_LAYER_LSTM, 1, 3, 5, 4, 3, 0);
    if (!m) return;
    /* The head's two layers (the lower one's dx feeds the front), then the front with them. */
    size_t want[3] = {m->layers[1].w_offset, m->layers[0].w_offset, 0};
    check_tails(m, want, 3);
    clipnn_model_free(m);
}

TEST(grad_hook_not_called_for_unformed_dw) {
    clipnn_model *m = fixture_mlp(12, 20, 9, 3, CLIPNN_ACT_TANH, 5);
    if (!m) return;
    float x[12], y[1];
    fill_batch(m, x, y, 1);
    clipnn_loss_options lo = clipnn_loss_options_default();
    /* A batch of one whose dW stays unwritten, and a backward leaving only the deltas. */
    clipnn_fused_opts lazy = {2.0, 1, NULL, 0, record_tail, &seen}, deltas = {0, 0, NULL, 1, record_tail, &seen};
    double loss;
    seen.m = m, seen.calls = 0;
    CHECK_OK(clipnn_loss_grad_fused(m, &lo, x, y, 1, &lazy, &loss, NULL));
    CHECK_OK(clipnn_loss_grad_fused(m, &lo, x, y, 1, &deltas, &loss, NULL));
    CHECK_MSG(seen.calls == 0, "%d calls", seen.calls);
    clipnn_model_free(m);
}
