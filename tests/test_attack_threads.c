/* The attacks' per-example work (keeping the best iterate, the steps, the
 * projections, APGD's bookkeeping) is split among the library's threads by
 * examples: every example's arithmetic stays the same, so the results are
 * the same bit for bit on one thread or several. The model passes run on one
 * thread here (their GEMMs split by units, which may round differently), so
 * that only the per-example split changes between the runs. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/nn.h" /* clipnn_parallel_macs: keep the model passes on one thread; clipnn_argmax */
#include "mlp_fixture.h"

/* 128 examples of 784 inputs: enough element work for the split. */
enum { N_EX = 128, DIM = 784, CLASSES = 10, STEPS = 12 };

/* FNV-1a over every trace row's per-example losses and gradient norms. */
static void hash_step(const clipnn_attack_step *s, void *user) {
    uint64_t *h = user;
    const unsigned char *p[2] = {(const unsigned char *)s->example_loss, (const unsigned char *)s->example_grad_norm};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < s->batch_size * sizeof(double); i++) *h = (*h ^ p[k][i]) * 1099511628211ULL;
}

/* The adversarial inputs and the trace's hash of one method on T threads. */
static void run_attack(clipnn_model *m, clipnn_attack_method method, const float *x, const float *y, int threads,
                       float *adv, uint64_t *trace) {
    clipnn_set_threads(threads);
    clipnn_attack_options o = clipnn_attack_options_default();
    o.method = method;
    o.eps = method == CLIPNN_ATTACK_PGD_L2 ? 1.0 : 0.05;
    o.steps = STEPS;
    o.restarts = 2;
    o.random_start = 1;
    o.batch = N_EX;
    *trace = 1469598103934665603ULL;
    o.on_step = hash_step;
    o.user = trace;
    clipnn_attack_result r;
    CHECK_OK(clipnn_attack(m, &o, x, y, N_EX, adv, &r));
}

TEST(attack_threads_give_the_same_bits) {
    static float x[N_EX * DIM], adv1[N_EX * DIM], advT[N_EX * DIM];
    float y[N_EX];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < N_EX * DIM; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0);
    }
    clipnn_model *m = fixture_mlp(DIM, 16, 8, CLASSES, CLIPNN_ACT_RELU, 5);
    const float *z = NULL;
    if (!m || clipnn_forward(m, x, N_EX, &z)) return;
    for (size_t i = 0; i < N_EX; i++) /* mostly the model's predictions: examples the attack can fool */
        y[i] = (float)((clipnn_argmax(z + i * CLASSES, CLASSES) + (i % 5 == 0)) % CLASSES);
    const int saved = clipnn_get_threads();
    const size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = SIZE_MAX;
    const clipnn_attack_method methods[] = {CLIPNN_ATTACK_PGD_LINF, CLIPNN_ATTACK_PGD_L2, CLIPNN_ATTACK_APGD_CE,
                                            CLIPNN_ATTACK_APGD_DLR};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        uint64_t h1, hT;
        run_attack(m, methods[k], x, y, 1, adv1, &h1);
        for (int T = 2; T <= 3; T++) {
            run_attack(m, methods[k], x, y, T, advT, &hT);
            CHECK_MSG(memcmp(adv1, advT, sizeof adv1) == 0, "%s: %d threads change the adversarial inputs",
                      clipnn_attack_method_name(methods[k]), T);
            CHECK_MSG(h1 == hT, "%s: %d threads change the trace", clipnn_attack_method_name(methods[k]), T);
        }
    }
    clipnn_parallel_macs = saved_macs;
    clipnn_set_threads(saved);
    clipnn_model_free(m);
}
