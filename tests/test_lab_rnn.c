/* The lab's recurrent experiments: rnn-cliff's wall, steps and verdicts,
 * and the task sweeps at their quick budget (every claim gets a verdict,
 * and norm-clipped SGD solves the shortest temporal order task). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

static const clipnn_lab_claim *find_claim(const clipnn_lab_result *r, const char *id) {
    for (size_t i = 0; i < r->n_claims; i++)
        if (!strcmp(r->claims[i].id, id)) return &r->claims[i];
    return NULL;
}

/* The number after `key` in text (NaN when absent). */
static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

TEST(lab_rnn_cliff_wall_and_steps) {
    clipnn_lab_options o = clipnn_lab_options_default();
    clipnn_lab_result r;
    CHECK_OK(clipnn_lab_run("rnn-cliff", &o, &r));
    const clipnn_lab_claim *cliff = find_claim(&r, "cliff"), *plain = find_claim(&r, "cliff-unclipped-step"),
                           *clipped = find_claim(&r, "cliff-clipped-step");
    CHECK(cliff && plain && clipped);
    if (!cliff || !plain || !clipped) return;
    CHECK_MSG(cliff->verdict == CLIPNN_CLAIM_HOLDS, "cliff: %s", cliff->numbers);
    /* The loss jumps from the low side (near 0) to the high side (order 1) in one cell of the grid. */
    double low = number_after(cliff->numbers, "loss "), high = number_after(cliff->numbers, "-> ");
    CHECK_MSG(low < 1e-3 && high > 1, "cliff: %s", cliff->numbers);
    /* The unclipped step is lr ||g||, far beyond the line; the clipped one exactly lr lambda (||g|| > lambda). */
    CHECK_MSG(plain->verdict == CLIPNN_CLAIM_HOLDS && number_after(plain->numbers, "theta by ") > 20, "%s",
              plain->numbers);
    CHECK_MSG(clipped->verdict == CLIPNN_CLAIM_HOLDS, "%s", clipped->numbers);
    CHECK_NEAR(number_after(clipped->numbers, "theta by "), 0.1, 1e-12);
}

/* The quick sweeps: three verdicts each; on temporal order at T = 10,
 * norm clipping succeeds on both seeds. */
TEST(lab_rnn_task_sweeps_quick) {
    static const char *const names[] = {"rnn-temporal-order", "rnn-addition"}, *const prefix[] = {"order", "addition"};
    for (size_t k = 0; k < 2; k++) {
        clipnn_lab_options o = clipnn_lab_options_default();
        o.quick = 1;
        clipnn_lab_result r;
        CHECK_OK(clipnn_lab_run(names[k], &o, &r));
        CHECK_MSG(r.n_claims == 3, "%s: %zu claims", names[k], r.n_claims);
        char id[3][48];
        snprintf(id[0], sizeof id[0], "%s-clipping-decides", prefix[k]);
        snprintf(id[1], sizeof id[1], "%s-every-rule", prefix[k]);
        snprintf(id[2], sizeof id[2], "%s-longer-harder", prefix[k]);
        const clipnn_lab_claim *c = find_claim(&r, id[0]);
        CHECK_MSG(c && find_claim(&r, id[1]) && find_claim(&r, id[2]), "%s: claims missing", names[k]);
        if (k == 0 && c)
            CHECK_MSG(strstr(c->numbers, "T=10: none") && number_after(c->numbers, "norm (lambda 1) ") == 2, "%s",
                      c->numbers);
    }
}

TEST(lab_rnn_unknown_budget_flags_are_harmless) {
    /* --full and in_all only choose budgets: the cliff, which has none, gives the same verdicts. */
    clipnn_lab_options o = clipnn_lab_options_default();
    clipnn_lab_result a, b;
    CHECK_OK(clipnn_lab_run("rnn-cliff", &o, &a));
    o.full = 1, o.in_all = 1;
    CHECK_OK(clipnn_lab_run("rnn-cliff", &o, &b));
    CHECK(a.n_claims == b.n_claims);
    for (size_t i = 0; i < a.n_claims && i < b.n_claims; i++) CHECK(!strcmp(a.claims[i].numbers, b.claims[i].numbers));
}
