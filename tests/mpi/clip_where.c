/* clip_where: clipnn_train's clip places on 2 processes against a
 * single-process reference, run as `mpirun -np 2 clip_where`. Each process
 * trains on its own data (worker r's example, twice: its slice of every
 * batch of 2 is that example whatever the shuffle), so process r is worker
 * r of the data-parallel formulas; the reference computes both workers'
 * gradients in this one process with clipnn_loss_grad and applies:
 *   global  x <- x - a clip(mean_i g_i)
 *   local   x <- x - a mean_i clip(g_i)
 *   clip21  e_i <- e_i + clip(g_i - e_i), x <- x - a mean_i e_i
 * (clip(v) = v min(1, tau / ||v||), SGD without momentum).
 *   1. A tanh network, T steps of each place: the trained weights against
 *      the reference within the float32 tolerance below.
 *   2. The lab's problem with 2 workers (f_i = ||z - b_i||^2 up to a
 *      constant, z the output bias): global and clip21 reach the minimum
 *      (b_0 + b_1) / 2; local stops at its fixed point b_0 + tau / c u
 *      (u the unit vector from b_0 to b_1, c the gradient's constant), far
 *      from the minimum.
 * Prints "ok"/"FAIL" lines on process 0 and ends with "N passed, M failed";
 * exit 1 on a failure. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clipnn.h"

#define WORKERS 2
#define MAXP 64

static int passed, failed;

static void check(int ok, const char *fmt, double a, double b) {
    if (clipnn_dist_rank() != 0) return;
    printf("%s ", ok ? "ok  " : "FAIL");
    printf(fmt, a, b);
    printf("\n");
    ok ? passed++ : failed++;
}

typedef struct {
    size_t in, out, P;
    float x[WORKERS][4], y[WORKERS][2];
} problem;

/* g <- g min(1, tau / ||g||), the factor in float as the library rounds it. */
static void clip_ref(float *g, size_t n, double tau) {
    double s = 0;
    for (size_t j = 0; j < n; j++) s += (double)g[j] * g[j];
    double norm = sqrt(s);
    float f = norm > tau ? (float)(tau / norm) : 1.0f;
    if (f < 1) for (size_t j = 0; j < n; j++) g[j] *= f;
}

/* T reference steps of place w from m's parameters; *gmax: the largest
 * worker gradient norm seen. */
static int reference(clipnn_model *m, const problem *pb, clipnn_clip_where w, int T, double a, double tau,
                     double *gmax) {
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    float e[WORKERS][MAXP], g[WORKERS][MAXP], *p = clipnn_model_params(m);
    memset(e, 0, sizeof e);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < WORKERS; i++) {
            if (clipnn_loss_grad(m, &lo, pb->x[i], pb->y[i], 1, NULL, NULL)) return 1;
            memcpy(g[i], clipnn_model_grads(m), pb->P * sizeof **g);
            double s = 0;
            for (size_t j = 0; j < pb->P; j++) s += (double)g[i][j] * g[i][j];
            if (sqrt(s) > *gmax) *gmax = sqrt(s);
            if (w == CLIPNN_CLIP_WHERE_LOCAL) clip_ref(g[i], pb->P, tau);
            if (w == CLIPNN_CLIP_WHERE_CLIP21) {
                float d[MAXP];
                for (size_t j = 0; j < pb->P; j++) d[j] = g[i][j] - e[i][j];
                clip_ref(d, pb->P, tau);
                for (size_t j = 0; j < pb->P; j++) g[i][j] = e[i][j] += d[j];
            }
        }
        float mean[MAXP];
        for (size_t j = 0; j < pb->P; j++) mean[j] = g[0][j] * 0.5f + g[1][j] * 0.5f;
        if (w == CLIPNN_CLIP_WHERE_GLOBAL) clip_ref(mean, pb->P, tau);
        for (size_t j = 0; j < pb->P; j++) p[j] -= (float)a * mean[j];
    }
    return 0;
}

/* T steps of clipnn_train with place w on this process's data (worker
 * rank's example twice) from m's parameters. */
static int train(clipnn_model *m, const problem *pb, clipnn_clip_where w, int T, double a, double tau) {
    int r = clipnn_dist_rank();
    float x[2 * 4], y[2 * 2];
    for (size_t k = 0; k < 2; k++) {
        memcpy(x + k * pb->in, pb->x[r], pb->in * sizeof *x);
        memcpy(y + k * pb->out, pb->y[r], pb->out * sizeof *y);
    }
    clipnn_dataset *d = NULL;
    if (clipnn_dataset_from_arrays(x, y, 2, pb->in, 0, pb->out, &d)) return 1;
    clipnn_train_options o = clipnn_train_options_default();
    o.optim.kind = CLIPNN_OPT_SGD, o.optim.momentum = 0, o.optim.weight_decay = 0;
    o.schedule = clipnn_schedule_default();
    o.schedule.a0 = a;
    o.clip.rule = CLIPNN_CLIP_NORM, o.clip.lambda = tau;
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.batch = 2, o.steps = (uint64_t)T, o.seed = 7, o.clip_where = w;
    clipnn_train_result res;
    clipnn_status s = clipnn_train(m, d, NULL, &o, &res);
    if (s) fprintf(stderr, "clip_where: %s\n", clipnn_last_error());
    clipnn_dataset_free(d);
    return s != CLIPNN_OK;
}

static double max_diff(clipnn_model *a, clipnn_model *b, double *big) {
    const float *pa = clipnn_model_params(a), *pb = clipnn_model_params(b);
    double d = 0;
    for (size_t j = 0; j < clipnn_model_n_params(a); j++) {
        double e = fabs((double)pa[j] - pb[j]);
        if (!(e <= d)) d = e;
        if (fabs((double)pa[j]) > *big) *big = fabs((double)pa[j]);
    }
    return d;
}

static const char *const place[] = {"global", "local", "clip21"};

/* 1. T steps of each place on a 3-4-2 tanh network against the reference:
 * per step the two computations may round the clip factor, the clipped
 * gradient, its half and the sum differently (4 u a G per entry, G the
 * largest worker gradient norm) and each write of a parameter (2 u W), so
 * to first order tol = T u (2 W + 4 a G). */
static int formula_steps(void) {
    const size_t widths[2] = {4, 2};
    const clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    problem pb = {.in = 3, .out = 2,
                  .x = {{0.5f, -1.0f, 2.0f}, {-1.5f, 0.25f, 1.0f}},
                  .y = {{1.0f, -2.0f}, {-3.0f, 0.5f}}};
    const int T = 5;
    const double a = 0.1, tau = 0.05, u = ldexp(1.0, -24);
    clipnn_model *m0 = NULL;
    if (clipnn_model_create(&m0, pb.in, 2, widths, acts) || clipnn_model_init(m0, CLIPNN_INIT_XAVIER, 5)) return 1;
    pb.P = clipnn_model_n_params(m0);
    clipnn_model *ref[3] = {NULL, NULL, NULL};
    for (int w = 0; w < 3; w++) {
        clipnn_model *run = NULL;
        double G = 0, W = 0;
        if (clipnn_model_clone(m0, &ref[w]) || clipnn_model_clone(m0, &run)) return 1;
        if (reference(ref[w], &pb, (clipnn_clip_where)w, T, a, tau, &G) || train(run, &pb, w, T, a, tau)) return 1;
        double d = max_diff(ref[w], run, &W), tol = T * u * (2 * W + 4 * a * G);
        char what[128];
        snprintf(what, sizeof what, "%s: %d steps against the formula: max |diff| %%.3g <= %%.3g", place[w], T);
        check(d <= tol, what, d, tol);
        check(G > 2 * tau, "the workers' gradients are clipped: largest norm %.3g > 2 tau = %.3g", G, 2 * tau);
        clipnn_model_free(run);
    }
    double W = 0, apart = fmin(max_diff(ref[0], ref[1], &W), max_diff(ref[1], ref[2], &W));
    check(apart > 1e-4, "the three places take different steps here: %.3g apart (> %.3g)", apart, 1e-4);
    for (int w = 0; w < 3; w++) clipnn_model_free(ref[w]);
    clipnn_model_free(m0);
    return 0;
}

/* The output z of m at input 0 (the output bias): the point of the lab's
 * problem. */
static int output_at_zero(clipnn_model *m, double z[2]) {
    const float x0[1] = {0};
    const float *out;
    if (clipnn_forward(m, x0, 1, &out)) return 1;
    z[0] = out[0], z[1] = out[1];
    return 0;
}

/* 2. The lab's problem with 2 workers: input 0, targets b_0 = (0, 0) and
 * b_1 = (6, 6), the output bias z moves with gradient c (z - b_i) per
 * worker (c read from the reference's first gradient). The minimum of the
 * mean is z* = (3, 3). Local clipping stops where worker 0 is unclipped and
 * worker 1 clipped to tau: c (z - b_0) = tau u, z = b_0 + tau / c u, at
 * distance 3 sqrt(2) - tau / c from z*. In float32 a fixed point is
 * reached to within the rounding of one step, about 2 u ||z*|| per step,
 * which the contraction 1 - a c carries at most 1 / (a c) times:
 * tol = 2 u ||z*|| / (a c) on the distance. */
static int fixed_points(void) {
    const size_t widths[1] = {2};
    const clipnn_act acts[1] = {CLIPNN_ACT_IDENTITY};
    problem pb = {.in = 1, .out = 2, .x = {{0}, {0}}, .y = {{0, 0}, {6, 6}}};
    const int T = 2000;
    const double a = 0.1, tau = 1, u = ldexp(1.0, -24), zstar = 3, norm_star = 3 * sqrt(2.0);
    clipnn_model *m0 = NULL;
    if (clipnn_model_create(&m0, 1, 1, widths, acts)) return 1;
    pb.P = clipnn_model_n_params(m0);
    memset(clipnn_model_params(m0), 0, pb.P * sizeof(float)); /* from the origin */
    double c = 0, z[2];
    clipnn_model *probe = NULL;
    if (clipnn_model_clone(m0, &probe) || reference(probe, &pb, CLIPNN_CLIP_WHERE_GLOBAL, 0, a, tau, &c)) return 1;
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    if (clipnn_loss_grad(probe, &lo, pb.x[1], pb.y[1], 1, NULL, NULL)) return 1;
    const float *g = clipnn_model_grads(probe);
    for (size_t j = 0; j < pb.P; j++) c += (double)g[j] * g[j];
    c = sqrt(c) / (6 * sqrt(2.0)); /* ||grad|| / ||z - b_1|| at z = 0 */
    clipnn_model_free(probe);
    double tol = 2 * u * norm_star / (a * c), local_end = norm_star - tau / c;
    for (int w = 0; w < 3; w++) {
        clipnn_model *run = NULL;
        if (clipnn_model_clone(m0, &run) || train(run, &pb, w, T, a, tau) || output_at_zero(run, z)) return 1;
        double dist = hypot(z[0] - zstar, z[1] - zstar);
        char what[160];
        if (w == CLIPNN_CLIP_WHERE_LOCAL) {
            snprintf(what, sizeof what, "local: stops %%.6g from the minimum, at its fixed point %%.6g "
                     "(3 sqrt 2 - tau / c, c = %.3g; tol %.2g)", c, tol);
            check(fabs(dist - local_end) <= tol && dist > 1, what, dist, local_end);
        } else {
            snprintf(what, sizeof what, "%s: reaches the minimum after %d steps: distance %%.3g <= %%.3g",
                     place[w], T);
            check(dist <= tol, what, dist, tol);
        }
        clipnn_model_free(run);
    }
    clipnn_model_free(m0);
    return 0;
}

int main(int argc, char **argv) {
    if (clipnn_dist_init(&argc, &argv)) {
        fprintf(stderr, "clip_where: %s\n", clipnn_last_error());
        return 2;
    }
    int broken = clipnn_dist_size() != WORKERS;
    if (broken) fprintf(stderr, "clip_where: run me with mpirun -np %d\n", WORKERS);
    if (!broken) broken = formula_steps() || fixed_points();
    if (broken) fprintf(stderr, "clip_where: %s\n", clipnn_last_error());
    if (clipnn_dist_rank() == 0) printf("%d passed, %d failed\n", passed, failed);
    int rc = broken || failed ? 1 : 0;
    clipnn_dist_finalize();
    return rc;
}
