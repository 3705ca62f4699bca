/* local-clip (Khirirat et al. 2023, Clip21): N workers with different
 * losses f_i(x) = ||x - b_i||^2 / 2 minimise their mean, whose minimum is
 * the mean of the b_i. Clipping the mean gradient keeps that minimum;
 * clipping each worker's gradient before the average (what data-parallel
 * frameworks do when each process clips its own gradient) moves the fixed
 * point, as clipping each example's noisy gradient does in exercise Q8;
 * Clip21's error feedback g_i <- g_i + clip(grad f_i(x) - g_i) removes
 * that bias. */
#include <math.h>
#include <string.h>

#include "lab/lab.h"

#define LC_DIM 2
#define LC_WORKERS 4

/* Three workers near the origin and one far away: heterogeneous data. */
static const double LC_B[LC_WORKERS][LC_DIM] = {{0, 0}, {1, 0}, {0, 1}, {6, 6}};

typedef enum { LC_GLOBAL, LC_LOCAL, LC_CLIP21, LC_METHODS } lc_method;
static const char *const LC_NAMES[LC_METHODS] = {"clip the mean (global)", "mean of clipped (local)",
                                                 "Clip21 error feedback"};

/* v <- v min(1, tau / ||v||). */
static void clip_vec(double *v, double tau) {
    double n = hypot(v[0], v[1]), f = lab_clip_factor(n, tau);
    v[0] *= f, v[1] *= f;
}

/* One step of method m from x (g: Clip21's [workers][dim] state). */
static void lc_step(lc_method m, double *x, double g[LC_WORKERS][LC_DIM], double a, double tau) {
    double d[LC_DIM] = {0, 0};
    for (size_t i = 0; i < LC_WORKERS; i++) {
        double gi[LC_DIM] = {x[0] - LC_B[i][0], x[1] - LC_B[i][1]};
        if (m == LC_LOCAL) clip_vec(gi, tau);
        if (m == LC_CLIP21) {
            double e[LC_DIM] = {gi[0] - g[i][0], gi[1] - g[i][1]};
            clip_vec(e, tau);
            g[i][0] += e[0], g[i][1] += e[1];
            gi[0] = g[i][0], gi[1] = g[i][1];
        }
        d[0] += gi[0] / LC_WORKERS, d[1] += gi[1] / LC_WORKERS;
    }
    if (m == LC_GLOBAL) clip_vec(d, tau);
    x[0] -= a * d[0], x[1] -= a * d[1];
}

/* T steps of each method from the origin; dist[m] = ||x_T - x*||, which is
 * also the norm of the mean gradient x_T - x* there. */
static void lc_run(lab_ctx *L, lab_plot *p, size_t T, double a, double tau, double *dist) {
    const double star[LC_DIM] = {1.75, 1.75}; /* the mean of the b_i */
    for (int m = 0; m < LC_METHODS; m++) {
        double x[LC_DIM] = {0, 0}, g[LC_WORKERS][LC_DIM];
        memset(g, 0, sizeof g);
        size_t series = lab_plot_series(p, LC_NAMES[m]);
        for (size_t k = 0; k < T; k++) {
            lc_step((lc_method)m, x, g, a, tau);
            double dk = hypot(x[0] - star[0], x[1] - star[1]);
            if (lab_log_point(k + 1)) lab_plot_add(p, series, (double)(k + 1), dk > 1e-16 ? dk : 1e-16);
        }
        dist[m] = hypot(x[0] - star[0], x[1] - star[1]);
        lab_printf(L, "%-26s x_T = (%.6f, %.6f)  ||x_T - x*|| = %.3g\n", LC_NAMES[m], x[0], x[1], dist[m]);
    }
}

clipnn_status lab_local_clip(lab_ctx *L) {
    size_t T = lab_size(L, 20000, 2000);
    const double a = 0.1, tau = 1;
    lab_printf(L, "%d workers, f_i(x) = ||x - b_i||^2 / 2 with b = (0,0), (1,0), (0,1), (6,6); minimum of the mean "
                  "x* = (1.75, 1.75).\nStep a = %g, threshold tau = %g, %zu steps from the origin.\n\n",
               LC_WORKERS, a, tau, T);
    lab_plot local;
    lab_plot_init(&local, "local-clip: ||x_k - x*||, 4 heterogeneous workers, tau = 1", "k (steps)", "||x_k - x*||",
                  1, 1);
    double dist[LC_METHODS];
    lc_run(L, &local, T, a, tau, dist);
    /* local: at (s, s) the three near workers are unclipped and the far one
     * clipped to length tau along the diagonal: 3 s - 1 - tau / sqrt(2) = 0 */
    lab_printf(L, "local clipping's fixed point predicted at s = (1 + tau/sqrt(2)) / 3 = %.6f on the diagonal\n\n",
               (1 + tau / sqrt(2)) / 3);
    lab_claim(L, "local-clip-bias", dist[LC_LOCAL] > 0.1 && dist[LC_GLOBAL] < 1e-6 ? CLIPNN_CLAIM_HOLDS
                                                                                   : CLIPNN_CLAIM_FAILS, NULL,
              "each worker clipping its own gradient before the average stops %.3g away from the minimum, where the "
              "mean gradient x - x* is as long; clipping the mean gradient ends %.3g away",
              dist[LC_LOCAL], dist[LC_GLOBAL]);
    lab_claim(L, "clip21-unbiased", dist[LC_CLIP21] < 1e-6 ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "Clip21's error feedback, every worker still sending a clipped correction, ends %.3g from the minimum "
              "(local clipping: %.3g)",
              dist[LC_CLIP21], dist[LC_LOCAL]);
    clipnn_status s = lab_plot_save(L, &local, "distance");
    lab_plot_free(&local);
    return s;
}
