/* Optimizers and schedules against their recurrences written out in double. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

enum { N = 5, STEPS = 6 };

/* Gradients that change from step to step: g_t,i = sin(1 + i + 0.7 t). */
static double grad_at(int t, int i) { return sin(1.0 + i + 0.7 * t); }

static void run_float(const clipnn_optim_options *oo, double lr, double scale, float *p) {
    clipnn_optimizer *o;
    CHECK_OK(clipnn_optimizer_create(&o, N, oo));
    float g[N];
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)grad_at(t, i);
        CHECK_OK(clipnn_optimizer_step(o, p, g, lr, scale));
    }
    CHECK(clipnn_optimizer_steps(o) == STEPS);
    clipnn_optimizer_free(o);
}

/* Every float op rounds once (eps 6e-8 relative); six steps of O(1)
 * quantities stay within 1e-5 absolute of the double recurrence. */
#define TOL 1e-5

TEST(sgd_momentum_nesterov_weight_decay_follow_torch_recurrences) {
    for (int variant = 0; variant < 4; variant++) {
        clipnn_optim_options oo = clipnn_optim_options_default();
        oo.momentum = variant >= 1 ? 0.9 : 0.0;
        oo.nesterov = variant == 2;
        oo.weight_decay = variant == 3 ? 0.1 : 0.0;
        double lr = 0.05, scale = 0.5;
        float p[N];
        double pd[N], buf[N];
        for (int i = 0; i < N; i++) p[i] = (float)(pd[i] = 0.3 * i - 0.5);
        run_float(&oo, lr, scale, p);
        for (int t = 0; t < STEPS; t++)
            for (int i = 0; i < N; i++) {
                double g = scale * (double)(float)grad_at(t, i);
                pd[i] *= 1.0 - lr * oo.weight_decay;
                double d = g;
                if (oo.momentum > 0) {
                    buf[i] = t == 0 ? g : oo.momentum * buf[i] + g;
                    d = oo.nesterov ? g + oo.momentum * buf[i] : buf[i];
                }
                pd[i] -= lr * d;
            }
        for (int i = 0; i < N; i++) CHECK_NEAR(p[i], pd[i], TOL);
    }
}

TEST(adam_follows_bias_corrected_recurrence) {
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.kind = CLIPNN_OPT_ADAM;
    double lr = 0.01;
    float p[N];
    double pd[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) p[i] = (float)(pd[i] = 0.1 * i);
    run_float(&oo, lr, 1.0, p);
    for (int t = 1; t <= STEPS; t++)
        for (int i = 0; i < N; i++) {
            double g = (double)(float)grad_at(t - 1, i);
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            pd[i] -= lr * mh / (sqrt(vh) + 1e-8);
        }
    for (int i = 0; i < N; i++) CHECK_NEAR(p[i], pd[i], TOL * lr);
}

TEST(optimizer_rejects_bad_options) {
    clipnn_optimizer *o = NULL;
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.momentum = 1.0;
    CHECK(clipnn_optimizer_create(&o, 3, &oo) == CLIPNN_ERR_INVALID_ARG);
    oo.momentum = 0;
    oo.nesterov = 1;
    CHECK(clipnn_optimizer_create(&o, 3, &oo) == CLIPNN_ERR_INVALID_ARG);
    CHECK(o == NULL);
}

TEST(schedules_match_their_formulas) {
    clipnn_schedule s = clipnn_schedule_default();
    s.a0 = 0.5;
    CHECK_OK(clipnn_schedule_parse("rm:10,0.75", &s));
    for (uint64_t t = 0; t < 100; t += 7)
        CHECK_NEAR(clipnn_schedule_lr(&s, t), 0.5 / pow(1 + t / 10.0, 0.75), 1e-15);
    CHECK_OK(clipnn_schedule_parse("rm:1,1", &s));
    s.a0 = 1; /* the paper's a(t) = 1/t, shifted to start at t = 0 */
    CHECK_NEAR(clipnn_schedule_lr(&s, 9), 0.1, 1e-15);
    CHECK_OK(clipnn_schedule_parse("step:30,0.5", &s));
    CHECK_NEAR(clipnn_schedule_lr(&s, 29), 1.0, 0);
    CHECK_NEAR(clipnn_schedule_lr(&s, 30), 0.5, 0);
    CHECK_NEAR(clipnn_schedule_lr(&s, 95), 0.125, 0);
    CHECK_OK(clipnn_schedule_parse("cosine", &s));
    s.total_steps = 100;
    CHECK_NEAR(clipnn_schedule_lr(&s, 0), 1.0, 1e-15);
    CHECK_NEAR(clipnn_schedule_lr(&s, 50), 0.5, 1e-15);
    CHECK_NEAR(clipnn_schedule_lr(&s, 100), 0.0, 1e-15);
    CHECK(clipnn_schedule_parse("rm:10,0.4", &s) == CLIPNN_ERR_INVALID_ARG); /* violates A2 */
    CHECK(clipnn_schedule_parse("rm:10", &s) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_schedule_parse("warmup", &s) == CLIPNN_ERR_INVALID_ARG);
}
