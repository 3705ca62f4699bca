/* clipnn train as a private run: --target-epsilon, the epsilon of every
 * epoch, the stated assumption, resume, refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Every "epsilon X at delta D" line of out: how many, and the largest X. */
static int epoch_epsilons(const char *out, double *largest, double delta) {
    int n = 0;
    *largest = 0;
    for (const char *p = strstr(out, "  epsilon "); p; p = strstr(p + 1, "  epsilon ")) {
        double e, d;
        if (sscanf(p, "  epsilon %lf at delta %lf", &e, &d) != 2) continue;
        CHECK(d == delta);
        if (e > *largest) *largest = e;
        n++;
    }
    return n;
}

/* The value of "key": in the JSON line of out (NaN when absent). */
static double json_number(const char *out, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(out, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

TEST(dp_cli_target_epsilon_each_epoch) {
    const char *out;
    CHECK(check_run_tool("train --clip per-sample --target-epsilon 2 --epochs 3 --batch 64 --delta 1e-4", &out) == 0);
    double largest;
    CHECK(epoch_epsilons(out, &largest, 1e-4) == 3);
    CHECK(largest <= 2 && largest > 1.99);
    CHECK(strstr(out, "(poisson)") != NULL);
    CHECK(strstr(out, "a guarantee for adding or removing one training example") != NULL);
    /* shuffled batches: reported, but said not to be a guarantee */
    CHECK(check_run_tool("train --clip per-sample --noise 1 --sampling shuffle --epochs 1 --json", &out) == 0);
    CHECK(strstr(out, "\"sampling\":\"shuffle\"") != NULL && strstr(out, "NOT a guarantee") != NULL);
    CHECK(json_number(out, "delta") == 1e-4); /* 1438 training rows: 1/n rounded down */
}

/* A run split by --save / --resume reports the epsilon of the whole run. */
TEST(dp_cli_resume_same_epsilon) {
    const char *out;
    char args[1024];
    const char *a = check_tmp_path("dp_cli_a.ckpt"), *b = check_tmp_path("dp_cli_b.ckpt");
    snprintf(args, sizeof args, "train --clip per-sample --noise 0.8 --epochs 2 --batch 50 --json --save %s", a);
    CHECK(check_run_tool(args, &out) == 0);
    double whole = json_number(out, "epsilon");
    snprintf(args, sizeof args, "train --clip per-sample --noise 0.8 --epochs 1 --batch 50 --json --save %s", b);
    CHECK(check_run_tool(args, &out) == 0);
    double first = json_number(out, "epsilon");
    /* clipnn info reads the checkpoint's accountant */
    snprintf(args, sizeof args, "info %s --json", b);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK(json_number(out, "epsilon") == first && strstr(out, "\"guarantee\":true") != NULL);
    snprintf(args, sizeof args, "train --clip per-sample --noise 0.8 --epochs 2 --batch 50 --json --resume %s", b);
    CHECK(check_run_tool(args, &out) == 0);
    double resumed = json_number(out, "epsilon");
    CHECK(first < whole);
    CHECK_MSG(resumed == whole, "resumed %.17g, whole run %.17g", resumed, whole);
}

TEST(dp_cli_refusals) {
    const char *out;
    CHECK(check_run_tool("train --clip per-sample --target-epsilon 0.001 --epochs 3", &out) == 2);
    CHECK(strstr(out, "--target-epsilon: privacy: no noise multiplier") != NULL);
    CHECK(check_run_tool("train --clip per-sample --target-epsilon 1 --noise 1", &out) == 2);
    CHECK(check_run_tool("train --clip norm --target-epsilon 1", &out) == 2);
    CHECK(strstr(out, "per-sample") != NULL);
    CHECK(check_run_tool("train --clip norm --sampling poisson", &out) != 0);
    CHECK(check_run_tool("train --clip per-sample --sampling sometimes", &out) == 2);
    CHECK(check_run_tool("train --clip per-sample --noise 1 --lambda auto", &out) == 2);
    CHECK(strstr(out, "privacy guarantee") != NULL);
}
