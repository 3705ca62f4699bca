/* local-clip: the fixed point of local clipping where the analysis puts it,
 * and Clip21 at the minimum. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

/* The number after `word` in a claim's text (NAN when it is not there). */
static double number_after(const char *text, const char *word) {
    const char *p = strstr(text, word);
    return p ? strtod(p + strlen(word), NULL) : NAN;
}

TEST(lab_local_clip_fixed_points) {
    clipnn_lab_options o = clipnn_lab_options_default();
    o.quick = 1;
    clipnn_lab_result r;
    CHECK_OK(clipnn_lab_run("local-clip", &o, &r));
    CHECK(r.n_claims == 2);
    if (r.n_claims != 2) return;
    CHECK(r.claims[0].verdict == CLIPNN_CLAIM_HOLDS && r.claims[1].verdict == CLIPNN_CLAIM_HOLDS);
    /* x = (s, s) with 3 s - 1 - 1/sqrt(2) = 0; x* = (1.75, 1.75); printed to 3 digits */
    double s = (1 + 1 / sqrt(2.0)) / 3, want = sqrt(2.0) * (1.75 - s);
    double local = number_after(r.claims[0].numbers, "stops "), clip21 = number_after(r.claims[1].numbers, "ends ");
    CHECK_MSG(fabs(local - want) <= 0.005 * want, "local clipping ends %g away, want %g", local, want);
    CHECK_MSG(clip21 < 1e-6, "Clip21 ends %g away", clip21);
}
