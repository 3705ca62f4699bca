/* clipnn attack with several methods (the per-example minimum over them is
 * the robust accuracy) and --check (the sanity checks, PASS or WARN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *digits_model(void) {
    static char path[1024];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s", check_tmp_path("check_digits.ckpt"));
    char args[1200];
    snprintf(args, sizeof args,
             "train --data digits --scale unit --arch 32-10 --act relu --epochs 10 --quiet --save %s", path);
    const char *out;
    if (check_run_tool(args, &out) != 0) path[0] = 0;
    return path;
}

/* The rows of the per-method table: under every method no more examples
 * stay robust than under the weakest, and no fewer than all broken by some. */
TEST(cli_attack_several_methods_take_the_minimum) {
    const char *model = digits_model();
    CHECK(model[0] != 0);
    char args[1400];
    const char *out;
    snprintf(args, sizeof args,
             "attack --model %s --data digits --scale unit --method apgd-dlr,pgd-linf,apgd-ce --eps 0,0.05,0.1 "
             "--steps 10 --n 100 --no-checks",
             model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "attack exit %d: %s", rc, out);
    const char *t = strstr(out, "eps      apgd-dlr   pgd-linf   apgd-ce    all\n");
    CHECK_MSG(t != NULL, "no per-method table: %.600s", out);
    if (!t) return;
    t = strchr(t, '\n') + 1;
    size_t rows = 0;
    double eps, a, b, c, all;
    while (sscanf(t, "%lf %lf %lf %lf %lf", &eps, &a, &b, &c, &all) == 5) {
        double lo = a < b ? a : b;
        lo = lo < c ? lo : c;
        CHECK_MSG(all <= lo + 1e-12, "eps %g: all %g above the weakest %g", eps, all, lo);
        /* 100 examples: fractions are exact hundredths */
        CHECK(all >= 0 && all * 100 - (double)(long)(all * 100 + 0.5) < 1e-9);
        rows++;
        t = strchr(t, '\n') + 1;
    }
    CHECK(rows == 3);
    snprintf(args, sizeof args, "attack --model %s --data digits --method pgd-linf,pgd-linf --eps 0.1", model);
    CHECK(check_run_tool(args, &out) == 2);
    CHECK(strstr(out, "given twice") != NULL);
}

/* The checks print PASS or WARN with numbers; one PGD step is not a
 * converged attack, and the first check says so. */
TEST(cli_attack_check) {
    const char *model = digits_model();
    CHECK(model[0] != 0);
    char args[1400];
    const char *out;
    snprintf(args, sizeof args,
             "attack --model %s --data digits --scale unit --method apgd-ce --eps 0.1 --steps 20 --n 100 --check",
             model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "attack exit %d: %s", rc, out);
    static const char *const names[4] = {"more-steps-and-restarts", "success-reaches-100%", "noise-weaker-than-attack",
                                         "zero-gradients"};
    for (int i = 0; i < 4; i++) {
        const char *p = strstr(out, names[i]);
        CHECK_MSG(p != NULL, "no line for %s", names[i]);
        if (p) CHECK(strstr(p, "PASS (") != NULL || strstr(p, "WARN (") != NULL);
    }
    CHECK(strstr(out, "success-reaches-100%       PASS") != NULL);
    CHECK(strstr(out, "zero-gradients             PASS") != NULL);
    snprintf(args, sizeof args,
             "attack --model %s --data digits --scale unit --method pgd-linf --step 0.01 --eps 0.05 --steps 1 --n 100 "
             "--check --no-checks",
             model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "attack exit %d: %s", rc, out);
    CHECK_MSG(strstr(out, "more-steps-and-restarts    WARN") != NULL, "one step of 0.01 passed as converged: %.900s",
              out);
    snprintf(args, sizeof args, "attack --model %s --data digits --method fgsm --eps 0 --check", model);
    CHECK(check_run_tool(args, &out) == 2);
}
