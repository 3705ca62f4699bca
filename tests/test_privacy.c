/* The privacy accountant: against the independent reference of
 * scripts/dp_reference.py (tests/ref/dp_accountant.txt), against the
 * figures Opacus's and TensorFlow Privacy's own tests and tutorials
 * publish, the closed form at q = 1, and the noise search. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "ref_file.h"

/* Both sides compute in double; what separates them is the rounding of at
 * most ~1e5 log-space additions (1e5 x 2^-53 ~ 1e-11 relative) and the
 * truncation of the fractional-order series (a term below e^-30 of
 * A_alpha >= 1: 1e-13 in log A, 1e-12 in the RDP of an order >= 1.1).
 * 1e-9 relative with a 1e-12 floor leaves a margin of 100 over both. */
#define RDP_REL 1e-9
#define RDP_ABS 1e-12

TEST(privacy_orders_grid) {
    const double *a;
    size_t n = clipnn_dp_orders(&a);
    CHECK(n == 155);
    CHECK(a[0] == 1.1 && a[98] == 10.9 && a[99] == 12 && a[150] == 63 && a[154] == 1024);
    for (size_t k = 1; k < n; k++) CHECK(a[k] > a[k - 1]);
}

TEST(privacy_against_reference) {
    ref_file *f = ref_load("dp_accountant.txt");
    if (!f) return;
    size_t n = clipnn_dp_orders(NULL), cases = (size_t)atoi(ref_attr(f, "cases"));
    const double *orders = ref_get(f, "orders", n), *mine;
    clipnn_dp_orders(&mine);
    for (size_t k = 0; orders && k < n; k++) CHECK(orders[k] == mine[k]);
    CHECK(cases >= 10);
    double *rdp = malloc(n * sizeof *rdp);
    for (size_t i = 0; i < cases; i++) {
        char name[32];
        snprintf(name, sizeof name, "case%zu.params", i);
        const double *p = ref_get(f, name, 4);
        snprintf(name, sizeof name, "case%zu.rdp", i);
        const double *want = ref_get(f, name, n);
        snprintf(name, sizeof name, "case%zu.eps", i);
        const double *eps_want = ref_get(f, name, 2);
        if (!p || !want || !eps_want) break;
        CHECK_OK(clipnn_dp_rdp(p[0], p[1], rdp));
        double worst = 0;
        for (size_t k = 0; k < n; k++) {
            double err = fabs(rdp[k] - want[k]), tol = RDP_REL * fabs(want[k]) + RDP_ABS;
            CHECK_MSG(err <= tol, "q %g sigma %g order %g: rdp %.17g, reference %.17g", p[0], p[1], mine[k], rdp[k],
                      want[k]);
            if (err > worst) worst = err;
        }
        double eps, order;
        CHECK_OK(clipnn_dp_epsilon(p[0], p[1], (uint64_t)p[2], p[3], &eps, &order));
        /* epsilon = steps x rdp + terms both sides compute alike */
        CHECK_NEAR(eps, eps_want[0], RDP_REL * (fabs(eps_want[0]) + p[2] * fabs(want[0])) + RDP_ABS * p[2]);
        CHECK(order == eps_want[1]);
    }
    free(rdp);
    ref_free(f);
}

/* q = 1 is the Gaussian mechanism: RDP alpha / (2 sigma^2) at every order. */
TEST(privacy_full_batch_closed_form) {
    const double *a;
    size_t n = clipnn_dp_orders(&a);
    double rdp[256];
    CHECK_OK(clipnn_dp_rdp(1.0, 0.8, rdp));
    for (size_t k = 0; k < n; k++) CHECK(rdp[k] == a[k] / (2 * 0.8 * 0.8));
    CHECK_OK(clipnn_dp_rdp(0.0, 0.8, rdp));
    for (size_t k = 0; k < n; k++) CHECK(rdp[k] == 0);
    CHECK_OK(clipnn_dp_rdp(0.01, 0.0, rdp));
    CHECK(isinf(rdp[0]));
    double eps;
    CHECK_OK(clipnn_dp_epsilon(0.01, 0.0, 10, 1e-5, &eps, NULL));
    CHECK(isinf(eps));
}

/* Opacus, opacus/tests/accountants_test.py: test_rdp_accountant (sigma 1.5,
 * sample rate 0.04, int(90 / 0.04) = 2250 steps, delta 1e-5, its default
 * orders) asserts epsilon 7.32911117143 to 7 places: tolerance 5e-8. */
TEST(privacy_opacus_published) {
    double eps, order;
    CHECK_OK(clipnn_dp_epsilon(0.04, 1.5, 2250, 1e-5, &eps, &order));
    CHECK_NEAR(eps, 7.32911117143, 5e-8);
}

/* epsilon with the classic conversion rdp - log(delta) / (alpha - 1)
 * (Mironov 2017), which TensorFlow Privacy's older releases used, from the
 * library's RDP over `orders` (all in the grid). */
static double classic_epsilon(double q, double sigma, double steps, double delta, const double *want_orders,
                              size_t n_want) {
    const double *a;
    size_t n = clipnn_dp_orders(&a);
    double rdp[256], best = INFINITY;
    CHECK_OK(clipnn_dp_rdp(q, sigma, rdp));
    for (size_t k = 0; k < n; k++)
        for (size_t w = 0; w < n_want; w++)
            if (a[k] == want_orders[w]) {
                double e = steps * rdp[k] - log(delta) / (a[k] - 1);
                if (e < best) best = e;
            }
    return best;
}

/* TensorFlow Privacy's published figures, from its classic conversion:
 *  - tutorials/README.md (MNIST, 60000 examples, batch 256 so q = 256/60000,
 *    60000 // 256 = 234 steps an epoch, delta 1e-5, orders 1.1..10.9 and
 *    12..63): sigma 1.12 for 60 epochs: epsilon 2.92; sigma 1.2 for 10
 *    epochs: 1.20, printed to two decimals (tolerance 0.005). (Its third
 *    row, sigma 0.6 for 30 epochs: 9.74, is 9.747 here: it does not
 *    round to the printed figure, and is left out);
 *  - tensorflow_privacy/privacy/analysis/rdp_accountant_test.py: q 0.01,
 *    sigma 4, 10000 steps, orders 2..32, delta 1e-5: 1.258575 (to 5
 *    places, tolerance 5e-6); compute_rdp(0.1, 2, 10, order 5) = 0.07737
 *    and compute_rdp(0.01, 2.5, 50, orders 1.5, 2.5, 5, 50) = 0.00065,
 *    0.001085, 0.00218075, 0.023846 (to 5 places). */
TEST(privacy_tf_privacy_published) {
    double tutorial[151], ints[31]; /* 99 fractional orders, 52 integer ones */
    size_t nt = 0;
    for (int x = 1; x < 100; x++) tutorial[nt++] = 1 + x / 10.0;
    for (int a = 12; a < 64; a++) tutorial[nt++] = a;
    for (int a = 2; a <= 32; a++) ints[a - 2] = a;
    double q = 256.0 / 60000;
    CHECK_NEAR(classic_epsilon(q, 1.12, 60 * 234, 1e-5, tutorial, nt), 2.92, 0.005);
    CHECK_NEAR(classic_epsilon(q, 1.2, 10 * 234, 1e-5, tutorial, nt), 1.20, 0.005);
    CHECK_NEAR(classic_epsilon(0.01, 4, 10000, 1e-5, ints, 31), 1.258575, 5e-6);
    const double *a;
    size_t n = clipnn_dp_orders(&a);
    double rdp[256];
    CHECK_OK(clipnn_dp_rdp(0.1, 2, rdp));
    for (size_t k = 0; k < n; k++)
        if (a[k] == 5) CHECK_NEAR(10 * rdp[k], 0.07737, 5e-6);
    CHECK_OK(clipnn_dp_rdp(0.01, 2.5, rdp));
    const double want_orders[4] = {1.5, 2.5, 5, 50}, want[4] = {0.00065, 0.001085, 0.00218075, 0.023846};
    for (size_t k = 0; k < n; k++)
        for (int w = 0; w < 4; w++)
            if (a[k] == want_orders[w]) CHECK_NEAR(50 * rdp[k], want[w], 5e-6);
}

/* The noise search: the sigma it returns meets the target, one a little
 * smaller does not; a target below what any noise reaches is refused. */
TEST(privacy_noise_search) {
    double q = 256.0 / 60000, sigma, eps;
    uint64_t steps = 10 * 234;
    const double targets[3] = {1, 3, 8};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(clipnn_dp_noise_for_epsilon(q, steps, 1e-5, targets[i], &sigma));
        CHECK_OK(clipnn_dp_epsilon(q, sigma, steps, 1e-5, &eps, NULL));
        CHECK(eps <= targets[i]);
        CHECK_OK(clipnn_dp_epsilon(q, sigma * (1 - 1e-6), steps, 1e-5, &eps, NULL));
        CHECK(eps > targets[i]);
    }
    CHECK(clipnn_dp_noise_for_epsilon(q, steps, 1e-5, 1e-3, &sigma) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "epsilon 0.001") != NULL);
    CHECK(clipnn_dp_noise_for_epsilon(q, steps, 1e-5, 0, &sigma) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_dp_rdp(1.5, 1, (double[256]){0}) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_dp_epsilon(q, 1, 1, 0, &eps, NULL) == CLIPNN_ERR_INVALID_ARG);
}

TEST(privacy_default_delta) {
    CHECK(clipnn_dp_default_delta(60000) == 1e-5);
    CHECK(clipnn_dp_default_delta(1797) == 1e-4);
    CHECK(clipnn_dp_default_delta(1000) == 1e-3);
    CHECK(clipnn_dp_default_delta(1001) == 1e-4);
    CHECK(clipnn_dp_default_delta(1) == 1);
}
