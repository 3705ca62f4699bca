/* Per-group norms of a gradient block: phase one of two-phase clipping
 * (torch's get_total_norm). */
#include <math.h>

#include "clip/clip.h"

clipnn_status clipnn_group_norms(const clipnn_model *m, const float *g, double p, double *per_group,
                                 double *total) {
    if (!m || !g) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "norms: NULL argument");
    if (!clipnn_norm_order_valid(p) || isnan(p))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "norms: order p = %g, want p >= 1 or inf", p);
    size_t G = clipnn_model_n_groups(m);
    double acc = 0;
    for (size_t i = 0; i < G; i++) {
        clipnn_group grp = clipnn_model_group(m, i);
        double a = clipnn_norm_accumulate(g + grp.offset, grp.size, p);
        if (per_group) per_group[i] = clipnn_norm_finish(a, p);
        acc = clipnn_norm_combine(acc, a, p);
    }
    if (total) *total = clipnn_norm_finish(acc, p);
    return CLIPNN_OK;
}
