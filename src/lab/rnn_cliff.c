/* rnn-cliff: the exploding gradient seen as a wall in the loss surface
 * (Pascanu, Mikolov and Bengio 2013, section 3 and Fig. 6). A tanh RNN of
 * one unit, the library's own model, reads a pulse at its first step and
 * then runs on its own: h_1 = tanh(u + b), h_t = tanh(w h_{t-1} + b), and
 * answers y = h_T. For w past the saddle-node bifurcation the map has two
 * attractors, and which one h_T ends near depends on which side of the
 * unstable fixed point h_1 is; that fixed point moves with w, so along the
 * line W_hh = alpha w_0 the answer jumps from one attractor to the other
 * over a tiny range of alpha: a cliff in the loss, where the gradient is
 * huge. There an unclipped gradient step is thrown far across parameter
 * space, while a clipped one moves by at most lr lambda. Everything is
 * computed in double with the model's reference path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lab.h"

enum { CLIFF_STEPS = 50, CLIFF_GRID = 801 };
#define CLIFF_BIAS (-0.2)   /* b: the fixed points' asymmetry */
#define CLIFF_H1 0.6        /* h_1, the state the pulse sets */
#define CLIFF_TARGET (-0.9) /* the answer near the lower attractor: the low side of the wall */
#define CLIFF_ALPHA_LO 0.5
#define CLIFF_ALPHA_HI 2.5
#define CLIFF_LR 0.1
#define CLIFF_LAMBDA 1.0

typedef struct {
    clipnn_model *m;
    size_t n_params, w_hh; /* the offset of W_hh */
    double *theta0, *theta, *grad, *moved, x[CLIFF_STEPS], y;
} cliff;

/* The one-unit model with W_ih = u (h_1 = CLIFF_H1), W_hh = 1, b_ih = b,
 * b_hh = 0 and the read-out y = h_T. */
static clipnn_status cliff_make(cliff *c) {
    clipnn_layer_spec layers[2] = {{CLIPNN_LAYER_RNN, 1, CLIPNN_ACT_TANH},
                                   {CLIPNN_LAYER_DENSE, 1, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {CLIFF_STEPS, 1, 0};
    clipnn_status s = clipnn_model_create_seq(&c->m, &seq, 2, layers);
    if (s) return s;
    c->n_params = clipnn_model_n_params(c->m);
    c->theta0 = clipnn_alloc_array(4 * c->n_params, sizeof *c->theta0);
    if (!c->theta0) return clipnn_fail(CLIPNN_ERR_NOMEM, "lab rnn-cliff: out of memory");
    c->theta = c->theta0 + c->n_params, c->grad = c->theta + c->n_params, c->moved = c->grad + c->n_params;
    const double values[6] = {atanh(CLIFF_H1) - CLIFF_BIAS, 1.0, CLIFF_BIAS, 0.0, 1.0, 0.0};
    for (size_t g = 0; g < 6; g++) c->theta0[clipnn_model_group(c->m, g).offset] = values[g];
    c->w_hh = clipnn_model_group(c->m, 1).offset;
    memset(c->x, 0, sizeof c->x);
    c->x[0] = 1; /* the pulse */
    c->y = CLIFF_TARGET;
    return CLIPNN_OK;
}

static void cliff_free(cliff *c) {
    clipnn_model_free(c->m);
    clipnn_free(c->theta0);
}

/* Loss (and gradient into c->grad, and ||grad||) at parameters p. */
static clipnn_status cliff_eval(cliff *c, const double *p, double *loss, double *gnorm) {
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    clipnn_status s = clipnn_reference_loss_grad(c->m, p, &lo, c->x, &c->y, 1, loss, NULL, c->grad, NULL);
    if (!s && gnorm) *gnorm = clipnn_nrm2_d(c->grad, c->n_params);
    return s;
}

/* theta0 with W_hh scaled by alpha into c->theta. */
static void cliff_point(cliff *c, double alpha) {
    memcpy(c->theta, c->theta0, c->n_params * sizeof *c->theta);
    c->theta[c->w_hh] = alpha * c->theta0[c->w_hh];
}

/* The scan along the line: loss and gradient norm at every alpha of the
 * grid, the steepest cell (the largest loss change between neighbours). */
typedef struct {
    double alpha[CLIFF_GRID], loss[CLIFF_GRID], gnorm[CLIFF_GRID];
    size_t wall; /* the cell [wall, wall + 1] */
    double median_gnorm, median_dloss;
} cliff_scan;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static clipnn_status cliff_scan_line(cliff *c, cliff_scan *sc) {
    double work[CLIFF_GRID];
    for (size_t i = 0; i < CLIFF_GRID; i++) {
        sc->alpha[i] = CLIFF_ALPHA_LO + (CLIFF_ALPHA_HI - CLIFF_ALPHA_LO) * (double)i / (CLIFF_GRID - 1);
        cliff_point(c, sc->alpha[i]);
        clipnn_status s = cliff_eval(c, c->theta, &sc->loss[i], &sc->gnorm[i]);
        if (s) return s;
    }
    sc->wall = 0;
    for (size_t i = 0; i + 1 < CLIFF_GRID; i++) {
        work[i] = fabs(sc->loss[i + 1] - sc->loss[i]);
        if (work[i] > work[sc->wall]) sc->wall = i;
    }
    sc->median_dloss = median(work, CLIFF_GRID - 1);
    memcpy(work, sc->gnorm, sizeof work);
    sc->median_gnorm = median(work, CLIFF_GRID);
    return CLIPNN_OK;
}

/* The wall itself: the alpha inside the steepest cell where the loss is
 * halfway between the cell's ends (bisection to rounding). */
static clipnn_status cliff_find_wall(cliff *c, const cliff_scan *sc, double *alpha) {
    double lo = sc->alpha[sc->wall], hi = sc->alpha[sc->wall + 1];
    double mid_loss = 0.5 * (sc->loss[sc->wall] + sc->loss[sc->wall + 1]);
    int rising = sc->loss[sc->wall + 1] > sc->loss[sc->wall];
    for (int it = 0; it < 100 && hi - lo > 1e-15; it++) {
        double a = 0.5 * (lo + hi), l;
        cliff_point(c, a);
        clipnn_status s = cliff_eval(c, c->theta, &l, NULL);
        if (s) return s;
        if ((l < mid_loss) == rising) lo = a; else hi = a;
    }
    *alpha = 0.5 * (lo + hi);
    return CLIPNN_OK;
}

/* One SGD step from the wall, scaled by factor (1: unclipped): its
 * length and the loss where it lands. */
typedef struct {
    double length, loss_after;
} cliff_step;

static clipnn_status cliff_take_step(cliff *c, double alpha, double factor, cliff_step *out) {
    double l0, g;
    cliff_point(c, alpha);
    clipnn_status s = cliff_eval(c, c->theta, &l0, &g);
    if (s) return s;
    for (size_t i = 0; i < c->n_params; i++) c->moved[i] = c->theta[i] - CLIFF_LR * factor * c->grad[i];
    out->length = CLIFF_LR * factor * g;
    return cliff_eval(c, c->moved, &out->loss_after, NULL);
}

static clipnn_status cliff_plots(lab_ctx *L, const cliff_scan *sc) {
    lab_plot loss, grad;
    lab_plot_init(&loss, "tanh RNN of one unit, T = 50: the loss along W_hh = alpha w0", "alpha", "loss", 0, 0);
    lab_plot_init(&grad, "the gradient norm along the same line", "alpha", "||grad||", 0, 1);
    size_t sl = lab_plot_series(&loss, "loss"), sg = lab_plot_series(&grad, "||grad||");
    for (size_t i = 0; i < CLIFF_GRID; i++) {
        lab_plot_add(&loss, sl, sc->alpha[i], sc->loss[i]);
        if (sc->gnorm[i] > 0) lab_plot_add(&grad, sg, sc->alpha[i], sc->gnorm[i]);
    }
    clipnn_status s = lab_plot_save(L, &loss, "loss");
    if (!s) s = lab_plot_save(L, &grad, "gradnorm");
    lab_plot_free(&loss);
    lab_plot_free(&grad);
    return s;
}

/* What the scan, the wall and the two steps measured. */
typedef struct {
    double alpha_wall, loss_wall, gnorm_wall, loss_low, loss_high;
    cliff_step plain, clipped;
} cliff_result;

static void cliff_report(lab_ctx *L, const cliff_scan *sc, const cliff_result *r) {
    double line = (CLIFF_ALPHA_HI - CLIFF_ALPHA_LO) * 1.0; /* |w0| = 1: the line's length in parameter space */
    lab_printf(L, "line: alpha in [%g, %g], %d points; the steepest cell [%.4f, %.4f]: loss %.4g -> %.4g\n",
               CLIFF_ALPHA_LO, CLIFF_ALPHA_HI, CLIFF_GRID, sc->alpha[sc->wall], sc->alpha[sc->wall + 1],
               sc->loss[sc->wall], sc->loss[sc->wall + 1]);
    lab_printf(L, "wall at alpha %.12f: loss %.4g, ||grad|| %.6g (median along the line %.4g)\n", r->alpha_wall,
               r->loss_wall, r->gnorm_wall, sc->median_gnorm);
    lab_printf(L, "%-28s %14s %14s\n", "one SGD step, lr 0.1", "length", "loss after");
    lab_printf(L, "%-28s %14.4g %14.4g\n", "unclipped", r->plain.length, r->plain.loss_after);
    lab_printf(L, "%-28s %14.4g %14.4g\n", "norm-clipped (lambda 1)", r->clipped.length, r->clipped.loss_after);
    double jump = fabs(sc->loss[sc->wall + 1] - sc->loss[sc->wall]);
    int cliff_holds = jump >= 100 * sc->median_dloss && r->gnorm_wall >= 100 * sc->median_gnorm;
    lab_claim(L, "cliff", cliff_holds ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "loss %.3g -> %.3g across alpha %.4f-%.4f, %.3g times the median change per cell; ||grad|| at the "
              "wall %.3g, %.3g times its median along the line",
              sc->loss[sc->wall], sc->loss[sc->wall + 1], sc->alpha[sc->wall], sc->alpha[sc->wall + 1],
              sc->median_dloss > 0 ? jump / sc->median_dloss : INFINITY, r->gnorm_wall,
              r->gnorm_wall / sc->median_gnorm);
    lab_claim(L, "cliff-unclipped-step", r->plain.length >= 10 * line ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "an unclipped step at the wall moves theta by %.3g, %.3g times the length of the whole line scanned; "
              "loss %.3g -> %.3g", r->plain.length, r->plain.length / line, r->loss_wall, r->plain.loss_after);
    int bounded = r->clipped.length <= CLIFF_LR * CLIFF_LAMBDA * (1 + 1e-12) &&
                  r->clipped.loss_after <= fmax(r->loss_low, r->loss_high);
    lab_claim(L, "cliff-clipped-step", bounded ? CLIPNN_CLAIM_HOLDS : CLIPNN_CLAIM_FAILS, NULL,
              "the clipped step moves theta by %.3g <= lr lambda = %.3g; loss %.3g -> %.3g (the wall's two sides: "
              "%.3g and %.3g)", r->clipped.length, CLIFF_LR * CLIFF_LAMBDA, r->loss_wall, r->clipped.loss_after,
              r->loss_low, r->loss_high);
}

clipnn_status lab_rnn_cliff(lab_ctx *L) {
    cliff c = {0};
    cliff_scan *sc = clipnn_alloc_array(1, sizeof *sc);
    cliff_result r = {0};
    clipnn_status s = sc ? cliff_make(&c) : clipnn_fail(CLIPNN_ERR_NOMEM, "lab rnn-cliff: out of memory");
    if (!s) s = cliff_scan_line(&c, sc);
    if (!s) s = cliff_find_wall(&c, sc, &r.alpha_wall);
    if (!s) {
        cliff_point(&c, r.alpha_wall);
        s = cliff_eval(&c, c.theta, &r.loss_wall, &r.gnorm_wall);
    }
    if (!s) s = cliff_take_step(&c, r.alpha_wall, 1.0, &r.plain);
    if (!s) s = cliff_take_step(&c, r.alpha_wall, lab_clip_factor(r.gnorm_wall, CLIFF_LAMBDA), &r.clipped);
    if (!s) {
        r.loss_low = fmin(sc->loss[sc->wall], sc->loss[sc->wall + 1]);
        r.loss_high = fmax(sc->loss[sc->wall], sc->loss[sc->wall + 1]);
        lab_printf(L, "tanh RNN of one unit (the library's model, reference path in double): a pulse sets h_1 = %g, "
                   "then h_t = tanh(w h_(t-1) %+g), answer h_%d, target %g\n", CLIFF_H1, CLIFF_BIAS, CLIFF_STEPS,
                   CLIFF_TARGET);
        cliff_report(L, sc, &r);
        s = cliff_plots(L, sc);
    }
    cliff_free(&c);
    clipnn_free(sc);
    return s;
}
