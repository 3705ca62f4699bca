/* Recurrent kernels (torch.nn.RNN tanh/relu, LSTM, GRU with batch_first):
 * the double path against central finite differences, the float path
 * against the double path, both against PyTorch (tests/ref/rec_*.txt from
 * scripts/torch_recurrent_reference.py), 20 clipped SGD steps of a
 * many-to-one classifier against torch, state carried across chunks,
 * truncated backpropagation, the per-example norms and the argument checks. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/fast_math.h"
#include "nn/nn.h"
#include "ref_file.h"

#define U53 1.1102230246251565e-16 /* 2^-53, float64 unit roundoff */
#define MAX_LAYERS 2

static const clipnn_cell CELLS[CLIPNN_CELL_COUNT] = {CLIPNN_CELL_RNN_TANH, CLIPNN_CELL_RNN_RELU, CLIPNN_CELL_LSTM,
                                                     CLIPNN_CELL_GRU};

/* ------------------------------------------------------ a layer stack */

typedef struct {
    clipnn_cell cell;
    size_t in, hidden, layers, batch, steps;
    size_t x_stride; /* of layer 0's input; 0 = in */
} net_dims;

/* `layers` recurrent layers over one chunk (layer l > 0 reads layer l-1's
 * H, as torch's num_layers), run by the float or the double kernels. Every
 * array crosses this interface in double; float32 values convert exactly. */
typedef struct {
    net_dims d;
    int dbl;   /* 1: the double kernels */
    size_t es; /* element size */
    size_t bh; /* batch * hidden: one layer's state */
    clipnn_rec_shape shape[MAX_LAYERS];
    size_t p_off[MAX_LAYERS + 1]; /* parameter offsets; p_off[layers] = the total */
    void *params, *grad, *x, *dx, *H[MAX_LAYERS], *work[MAX_LAYERS], *dbuf[2];
    void *st[8]; /* [layers][B][h] each: h0, c0, hT, cT, dhT, dcT, dh0, dc0 */
} net;

enum { ST_H0, ST_C0, ST_HT, ST_CT, ST_DHT, ST_DCT, ST_DH0, ST_DC0 };

static void *at(const net *n, void *base, size_t i) { return base ? (char *)base + i * n->es : NULL; }

static void put(const net *n, void *dst, const double *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (n->dbl) ((double *)dst)[i] = src[i];
        else ((float *)dst)[i] = (float)src[i];
    }
}

static void get(const net *n, double *dst, const void *src, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = n->dbl ? ((const double *)src)[i] : ((const float *)src)[i];
}

static void net_free(net *n) {
    if (!n) return;
    void *all[] = {n->params, n->grad, n->x, n->dx, n->dbuf[0], n->dbuf[1]};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    for (size_t l = 0; l < MAX_LAYERS; l++) free(n->H[l]), free(n->work[l]);
    for (int i = 0; i < 8; i++) free(n->st[i]);
    free(n);
}

static size_t n_params(const net *n) { return n->p_off[n->d.layers]; }
static size_t seq_size(const net_dims *d, size_t width) { return d->batch * d->steps * width; }

static net *net_create(const net_dims *d, int dbl) {
    net *n = calloc(1, sizeof *n);
    if (!n || d->layers < 1 || d->layers > MAX_LAYERS) return free(n), NULL;
    n->d = *d;
    if (!n->d.x_stride) n->d.x_stride = d->in;
    n->dbl = dbl;
    n->es = dbl ? sizeof(double) : sizeof(float);
    n->bh = d->batch * d->hidden;
    int ok = 1;
    for (size_t l = 0; l < d->layers && ok; l++) {
        clipnn_rec_params p;
        size_t ws;
        n->shape[l] = (clipnn_rec_shape){d->cell, l ? d->hidden : d->in, d->hidden, d->batch, d->steps};
        ok = clipnn_rec_param_layout(d->cell, n->shape[l].in, d->hidden, &p) == CLIPNN_OK &&
             clipnn_rec_workspace_size(&n->shape[l], &ws) == CLIPNN_OK;
        n->p_off[l + 1] = n->p_off[l] + (ok ? p.total : 0);
        n->H[l] = calloc(seq_size(d, d->hidden), n->es);
        n->work[l] = ok ? calloc(ws, n->es) : NULL;
        ok = ok && n->H[l] && n->work[l];
    }
    n->params = calloc(n_params(n), n->es);
    n->grad = calloc(n_params(n), n->es);
    n->x = calloc(d->batch * d->steps * n->d.x_stride, n->es);
    n->dx = calloc(seq_size(d, d->in), n->es);
    for (int i = 0; i < 2; i++) n->dbuf[i] = calloc(seq_size(d, d->hidden), n->es);
    for (int i = 0; i < 8; i++) ok = ok && (n->st[i] = calloc(d->layers * n->bh, n->es)) != NULL;
    if (!ok || !n->params || !n->grad || !n->x || !n->dx || !n->dbuf[0] || !n->dbuf[1]) return net_free(n), NULL;
    return n;
}

/* Layer 0's input rows, padded to x_stride with NaN: a kernel that read
 * past `in` would show it. */
static void put_input(net *n, const double *x) {
    size_t rows = n->d.batch * n->d.steps, xs = n->d.x_stride;
    for (size_t r = 0; r < rows; r++) {
        put(n, at(n, n->x, r * xs), x + r * n->d.in, n->d.in);
        for (size_t j = n->d.in; j < xs; j++) {
            double nan_value = NAN;
            put(n, at(n, n->x, r * xs + j), &nan_value, 1);
        }
    }
}

static clipnn_status layer_forward(net *n, size_t l, const void *h0, const void *c0) {
    const void *x = l ? n->H[l - 1] : n->x;
    size_t xs = l ? n->d.hidden : n->d.x_stride, o = l * n->bh;
    void *P = at(n, n->params, n->p_off[l]), *hT = at(n, n->st[ST_HT], o), *cT = at(n, n->st[ST_CT], o);
    if (n->dbl) return clipnn_rec_forward_d(&n->shape[l], P, x, xs, h0, c0, n->H[l], hT, cT, n->work[l]);
    return clipnn_rec_forward(&n->shape[l], P, x, xs, h0, c0, n->H[l], hT, cT, n->work[l]);
}

/* Forward of the stack. h0, c0: [layers][B][h] or NULL (zeros). Outputs
 * (each may be NULL): out [B][T][h] of the last layer, h_n, c_n
 * [layers][B][h] the final states, as torch returns them. */
static clipnn_status net_forward(net *n, const double *params, const double *x, const double *h0, const double *c0,
                                 double *out, double *h_n, double *c_n) {
    size_t L = n->d.layers, bh = n->bh;
    put(n, n->params, params, n_params(n));
    put_input(n, x);
    if (h0) put(n, n->st[ST_H0], h0, L * bh);
    if (c0) put(n, n->st[ST_C0], c0, L * bh);
    for (size_t l = 0; l < L; l++) {
        clipnn_status st = layer_forward(n, l, h0 ? at(n, n->st[ST_H0], l * bh) : NULL,
                                         c0 ? at(n, n->st[ST_C0], l * bh) : NULL);
        if (st != CLIPNN_OK) return st;
    }
    if (out) get(n, out, n->H[L - 1], seq_size(&n->d, n->d.hidden));
    if (h_n) get(n, h_n, n->st[ST_HT], L * bh);
    if (c_n) get(n, c_n, n->st[ST_CT], L * bh);
    return CLIPNN_OK;
}

static clipnn_status layer_backward(net *n, size_t l, const void *dH, void *dx, int carried_in, size_t last_steps) {
    const void *x = l ? n->H[l - 1] : n->x;
    size_t xs = l ? n->d.hidden : n->d.x_stride, o = l * n->bh;
    const void *P = at(n, n->params, n->p_off[l]);
    const void *dhT = carried_in ? at(n, n->st[ST_DHT], o) : NULL, *dcT = carried_in ? at(n, n->st[ST_DCT], o) : NULL;
    void *g = at(n, n->grad, n->p_off[l]), *dh0 = at(n, n->st[ST_DH0], o), *dc0 = at(n, n->st[ST_DC0], o);
    if (n->dbl)
        return clipnn_rec_backward_d(&n->shape[l], P, x, xs, dH, dhT, dcT, last_steps, g, dx, dh0, dc0, n->work[l]);
    return clipnn_rec_backward(&n->shape[l], P, x, xs, dH, dhT, dcT, last_steps, g, dx, dh0, dc0, n->work[l]);
}

/* Backward of the stack after net_forward: dout [B][T][h] = d loss / d out
 * (NULL: zero), dh_n, dc_n [layers][B][h] = d loss / d h_n, c_n (NULL:
 * zero). Writes grad (the parameters' layout), dx [B][T][in], dh0, dc0
 * [layers][B][h] (each may be NULL). */
static clipnn_status net_backward(net *n, const double *dout, const double *dh_n, const double *dc_n,
                                  size_t last_steps, double *grad, double *dx, double *dh0, double *dc0) {
    size_t L = n->d.layers, bh = n->bh;
    memset(n->grad, 0, n_params(n) * n->es);
    memset(n->st[ST_DHT], 0, L * bh * n->es);
    memset(n->st[ST_DCT], 0, L * bh * n->es);
    if (dout) put(n, n->dbuf[0], dout, seq_size(&n->d, n->d.hidden));
    if (dh_n) put(n, n->st[ST_DHT], dh_n, L * bh);
    if (dc_n) put(n, n->st[ST_DCT], dc_n, L * bh);
    for (size_t l = L; l-- > 0;) {
        /* layer l reads dbuf[(L-1-l) % 2] and writes its dx into the other */
        const void *dH = l + 1 == L && !dout ? NULL : n->dbuf[(L - 1 - l) % 2];
        clipnn_status st = layer_backward(n, l, dH, l ? n->dbuf[(L - l) % 2] : n->dx, dh_n || dc_n, last_steps);
        if (st != CLIPNN_OK) return st;
    }
    if (grad) get(n, grad, n->grad, n_params(n));
    if (dx) get(n, dx, n->dx, seq_size(&n->d, n->d.in));
    if (dh0) get(n, dh0, n->st[ST_DH0], L * bh);
    if (dc0) get(n, dc0, n->st[ST_DC0], L * bh);
    return CLIPNN_OK;
}

/* ------------------------------------------------ problems and results */

/* The inputs of a weighted-sum problem: loss = sum(w_out * out) +
 * sum(w_hn * h_n) + sum(w_cn * c_n) (the last for the LSTM only). */
typedef struct {
    net_dims d;
    size_t P, seq_in, seq_h, states;
    double *params, *x, *h0, *c0, *w_out, *w_hn, *w_cn;
} problem;

/* What a run gives: the forward's outputs and every gradient. */
typedef struct {
    double *out, *h_n, *c_n, *grad, *dx, *dh0, *dc0;
    double loss;
} result;

static size_t stack_params(const net_dims *d) {
    size_t total = 0;
    for (size_t l = 0; l < d->layers; l++) {
        clipnn_rec_params p;
        if (clipnn_rec_param_layout(d->cell, l ? d->hidden : d->in, d->hidden, &p) != CLIPNN_OK) return 0;
        total += p.total;
    }
    return total;
}

static double *fresh(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static void problem_alloc(problem *p, const net_dims *d) {
    p->d = *d;
    p->P = stack_params(d);
    p->seq_in = seq_size(d, d->in);
    p->seq_h = seq_size(d, d->hidden);
    p->states = d->layers * d->batch * d->hidden;
    p->params = fresh(p->P), p->x = fresh(p->seq_in), p->w_out = fresh(p->seq_h);
    p->h0 = fresh(p->states), p->c0 = fresh(p->states), p->w_hn = fresh(p->states), p->w_cn = fresh(p->states);
}

static void problem_free(problem *p) {
    double *all[] = {p->params, p->x, p->h0, p->c0, p->w_out, p->w_hn, p->w_cn};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

static void uniform_fill(clipnn_rng *r, double *v, size_t n, double bound) {
    for (size_t i = 0; i < n; i++) v[i] = (float)((2 * clipnn_rng_uniform(r) - 1) * bound);
}

/* A random problem with float32-representable values: weights U(+-0.5)
 * (a little beyond torch's 1/sqrt(hidden), so the gates leave their linear
 * range), inputs U(+-1.5), initial states U(+-0.5), loss weights U(+-1). */
static void problem_random(problem *p, const net_dims *d, uint64_t seed) {
    clipnn_rng r;
    clipnn_rng_seed(&r, seed);
    problem_alloc(p, d);
    uniform_fill(&r, p->params, p->P, 0.5);
    uniform_fill(&r, p->x, p->seq_in, 1.5);
    uniform_fill(&r, p->h0, p->states, 0.5);
    uniform_fill(&r, p->c0, p->states, 0.5);
    uniform_fill(&r, p->w_out, p->seq_h, 1.0);
    uniform_fill(&r, p->w_hn, p->states, 1.0);
    uniform_fill(&r, p->w_cn, p->states, 1.0);
}

static void result_alloc(result *r, const problem *p) {
    r->out = fresh(p->seq_h), r->h_n = fresh(p->states), r->c_n = fresh(p->states), r->grad = fresh(p->P);
    r->dx = fresh(p->seq_in), r->dh0 = fresh(p->states), r->dc0 = fresh(p->states);
}

static void result_free(result *r) {
    double *all[] = {r->out, r->h_n, r->c_n, r->grad, r->dx, r->dh0, r->dc0};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

static int is_lstm(const net_dims *d) { return d->cell == CLIPNN_CELL_LSTM; }

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* The weighted-sum loss of a forward's outputs. */
static double problem_loss(const problem *p, const result *r) {
    double loss = dot(p->w_out, r->out, p->seq_h) + dot(p->w_hn, r->h_n, p->states);
    return is_lstm(&p->d) ? loss + dot(p->w_cn, r->c_n, p->states) : loss;
}

/* Forward and (when backward) backward of problem p on a fresh stack. */
static int problem_run(const problem *p, int dbl, int backward, result *r) {
    net *n = net_create(&p->d, dbl);
    CHECK(n != NULL);
    if (!n) return -1;
    int lstm = is_lstm(&p->d), ok;
    ok = net_forward(n, p->params, p->x, p->h0, lstm ? p->c0 : NULL, r->out, r->h_n, lstm ? r->c_n : NULL) == 0;
    r->loss = problem_loss(p, r);
    if (ok && backward)
        ok = net_backward(n, p->w_out, p->w_hn, lstm ? p->w_cn : NULL, 0, r->grad, r->dx, r->dh0, r->dc0) == 0;
    CHECK_MSG(ok, "recurrent stack run failed: %s", clipnn_last_error());
    net_free(n);
    return ok ? 0 : -1;
}

/* --------------------------------------------------------- comparisons */

/* Largest error seen per kind of check, in units of the tolerance's base
 * (u times the compared array's scale); printed with CLIPNN_TEST_VERBOSE=1
 * to show how far below the tolerance the results sit. */
static double worst_units[9];
static const char *const worst_names[9] = {"float vs double",  "float vs torch64", "torch32 vs torch64",
                                           "double vs torch64", "theta vs torch64", "torch32 theta",
                                           "chunked vs whole",  "truncated vs sub-chunk", "2 threads vs 1"};

static void report_worst(void) {
    if (!getenv("CLIPNN_TEST_VERBOSE")) return;
    for (int i = 0; i < 9; i++) fprintf(stderr, "    worst %s: %.3g units\n", worst_names[i], worst_units[i]);
}

/* got[i] within tol of want[i]; the first few misses are reported. The
 * worst |error| / unit is recorded under `kind`. */
static void check_close(int kind, const char *what, const double *got, const double *want, size_t n, double tol,
                        double unit) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs(got[i] - want[i]);
        if (unit > 0 && err / unit > worst_units[kind]) worst_units[kind] = err / unit;
        if (!(err <= tol) && bad++ < 3)
            check_fail(__FILE__, __LINE__, "%s[%zu]: %.17g, want %.17g (error %.3g, tol %.3g)", what, i, got[i],
                       want[i], err, tol);
    }
}

static double max_abs_d(const double *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

static double sum_abs(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(v[i]);
    return s;
}

/* The tolerance of a float32 stack result, in units of u times the
 * compared array's scale (its largest magnitude; per tensor for the
 * gradient).
 *
 * One step of one layer: a pre-activation is a float sum of n = in +
 * hidden + 2 terms (x W_ih, h W_hh, the two biases), off by at most n u
 * times the sum of their magnitudes, which for these weights (|w| <= 0.5,
 * |x| <= 1.5, |h| <= 1) is within a few times the scale of the result; the
 * gate functions add at most 3 ulp (the fast tanh 2, the sigmoid 3), the
 * state update 3 roundings: about n + 8 u per step. An error in h_{t-1}
 * reaches h_t through diag(act') W_hh, whose norm is below 1 here (the
 * states stay O(1) and do not explode), so the forward error after T steps
 * is at most T such step errors (each step adds its own; none is
 * amplified), and L layers add theirs in turn. The backward runs the same
 * structure back (the same dot lengths, the gate derivatives 2-4
 * roundings) and inherits the forward's error: twice that. So K = 2 L T
 * (n + 8) with n for the wider layer: the aligned worst case, of order
 * 1000 u at T = 17 and 2 layers (6e-5 relative). A swapped gate or a
 * dropped bias changes results by tens of percent. */
static double rec_k(const net_dims *d) {
    double n = (double)(d->in > d->hidden ? d->in : d->hidden) + (double)d->hidden + 2;
    return 2.0 * (double)d->layers * (double)d->steps * (n + 8);
}

enum { F_OUT, F_HN, F_CN, F_DX, F_DH0, F_DC0, F_COUNT };
static const char *const field_names[F_COUNT] = {"out", "h_n", "c_n", "dx", "dh0", "dc0"};

static const double *field(const result *r, int f) {
    const double *v[F_COUNT] = {r->out, r->h_n, r->c_n, r->dx, r->dh0, r->dc0};
    return v[f];
}

static size_t field_size(const problem *p, int f) {
    if (f == F_OUT) return p->seq_h;
    if (f == F_DX) return p->seq_in;
    return (f == F_CN || f == F_DC0) && !is_lstm(&p->d) ? 0 : p->states;
}

/* The gradient block tensor by tensor (W_ih, W_hh, b_ih, b_hh of each
 * layer), each at k u times its own scale. */
static void compare_grads(int kind, const char *what, const problem *p, const double *got, const double *ref32,
                          const double *truth, double k, double u) {
    char name[320];
    for (size_t l = 0, base = 0; l < p->d.layers; l++) {
        clipnn_rec_params L;
        if (clipnn_rec_param_layout(p->d.cell, l ? p->d.hidden : p->d.in, p->d.hidden, &L) != CLIPNN_OK) return;
        size_t offs[5] = {L.w_ih, L.w_hh, L.b_ih, L.b_hh, L.total};
        static const char *const tensor[4] = {"W_ih", "W_hh", "b_ih", "b_hh"};
        for (int t = 0; t < 4; t++) {
            size_t at_t = base + offs[t], n = offs[t + 1] - offs[t];
            double unit = u * max_abs_d(truth + at_t, n);
            snprintf(name, sizeof name, "%s layer %zu d%s", what, l, tensor[t]);
            check_close(kind, name, got + at_t, truth + at_t, n, k * unit, unit);
            snprintf(name, sizeof name, "%s layer %zu d%s (torch float32: tolerance too tight?)", what, l, tensor[t]);
            if (ref32) check_close(2, name, ref32 + at_t, truth + at_t, n, k * unit, unit);
        }
        base += L.total;
    }
}

/* Compares got (and torch's float32 ref32, when not NULL) with the truth
 * array by array (the gradient tensor by tensor), at tolerance k u times
 * each array's scale. */
static void compare_results(int kind, const char *what, const problem *p, const result *got, const result *ref32,
                            const result *truth, double k, double u) {
    char name[320];
    for (int f = 0; f < F_COUNT; f++) {
        size_t n = field_size(p, f);
        double unit = u * max_abs_d(field(truth, f), n);
        snprintf(name, sizeof name, "%s %s", what, field_names[f]);
        check_close(kind, name, field(got, f), field(truth, f), n, k * unit, unit);
        snprintf(name, sizeof name, "%s %s (torch float32: tolerance too tight?)", what, field_names[f]);
        if (ref32) check_close(2, name, field(ref32, f), field(truth, f), n, k * unit, unit);
    }
    compare_grads(kind, what, p, got->grad, ref32 ? ref32->grad : NULL, truth->grad, k, u);
    /* The loss is sum(w . outputs): its error is at most the outputs'
     * tolerances weighted by |w|. */
    double tol = k * u *
                 (sum_abs(p->w_out, p->seq_h) * max_abs_d(truth->out, p->seq_h) +
                  sum_abs(p->w_hn, p->states) * max_abs_d(truth->h_n, p->states) +
                  (is_lstm(&p->d) ? sum_abs(p->w_cn, p->states) * max_abs_d(truth->c_n, p->states) : 0));
    snprintf(name, sizeof name, "%s loss", what);
    check_close(kind, name, &got->loss, &truth->loss, 1, tol, 0);
}

/* ------------------------------------------------- finite differences */

/* Central differences of the double path's loss with step e = 1e-5:
 * (f(v + e) - f(v - e)) / 2e = f'(v) + e^2 f'''(xi) / 6 + (rounding of
 * the two losses) / 2e. The loss sums ~100 terms of size <= 1, each ~100
 * double roundings deep: its absolute rounding error is below 1e-12, which
 * contributes 1e-12 / 2e-5 = 5e-8; the third derivatives of these smooth
 * compositions are O(10) (|w| <= 1.5 and the gates' derivatives <= 1 on
 * every path), contributing 1e-10 * 10 / 6 < 2e-10. The sum is < 1e-7: a
 * tolerance of 1e-6 has ten times that, and a wrong derivative (a missing
 * term, a swapped gate) is off by O(0.01 .. 1). The relu cells' kinks are
 * met with probability ~ e per pre-activation; these seeds meet none. */
#define FD_STEP 1e-5
#define FD_TOL 1e-6

static double worst_fd;

static double fd_loss(const problem *p) {
    result r;
    result_alloc(&r, p);
    double loss = problem_run(p, 1, 0, &r) == 0 ? r.loss : NAN;
    result_free(&r);
    return loss;
}

/* Every entry of v (n values, inside problem p) against grad. */
static void fd_check(const char *what, problem *p, double *v, size_t n, const double *grad) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + FD_STEP;
        double lp = fd_loss(p);
        v[i] = keep - FD_STEP;
        double lm = fd_loss(p);
        v[i] = keep;
        double fd = (lp - lm) / (2 * FD_STEP), err = fabs(fd - grad[i]);
        worst_fd = fmax(worst_fd, err);
        if (!(err <= FD_TOL) && bad++ < 3)
            check_fail(__FILE__, __LINE__, "%s %s layers %zu: d/d%s[%zu]: finite difference %.12g, analytic %.12g",
                       clipnn_cell_name(p->d.cell), what, p->d.layers, what, i, fd, grad[i]);
    }
}

static void fd_case(clipnn_cell cell, size_t layers, uint64_t seed) {
    net_dims d = {cell, 4, 9, layers, 2, 4, 0};
    problem p;
    result r;
    problem_random(&p, &d, seed);
    result_alloc(&r, &p);
    if (problem_run(&p, 1, 1, &r) == 0) {
        fd_check("params", &p, p.params, p.P, r.grad);
        fd_check("x", &p, p.x, p.seq_in, r.dx);
        fd_check("h0", &p, p.h0, p.states, r.dh0);
        if (is_lstm(&d)) fd_check("c0", &p, p.c0, p.states, r.dc0);
    }
    result_free(&r);
    problem_free(&p);
}

/* Every parameter tensor (W_ih, W_hh, b_ih, b_hh of each layer), x, h0 and
 * c0, through the outputs of every step and the final states. */
TEST(recurrent_double_path_matches_finite_differences) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++)
        for (size_t layers = 1; layers <= 2; layers++) fd_case(CELLS[c], layers, 10 + 3 * (uint64_t)c + layers);
    if (getenv("CLIPNN_TEST_VERBOSE")) fprintf(stderr, "    worst finite-difference error %.3g\n", worst_fd);
}

/* ------------------------------------------------- float against double */

static void float_double_case(const net_dims *d, uint64_t seed) {
    problem p;
    result r32, r64;
    char what[128];
    problem_random(&p, d, seed);
    result_alloc(&r32, &p);
    result_alloc(&r64, &p);
    snprintf(what, sizeof what, "%s %zu layers B %zu T %zu float", clipnn_cell_name(d->cell), d->layers, d->batch,
             d->steps);
    if (problem_run(&p, 0, 1, &r32) == 0 && problem_run(&p, 1, 1, &r64) == 0)
        compare_results(0, what, &p, &r32, NULL, &r64, rec_k(d), U);
    result_free(&r32);
    result_free(&r64);
    problem_free(&p);
}

/* hidden 11: the fused gate loops run a vector body and a remainder; the
 * input rows are padded (x_stride 9 > in 6) with NaN; a batch of one and a
 * single step go through the GEMV branch. */
TEST(recurrent_float_path_matches_double_path) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++) {
        const net_dims dims[] = {
            {CELLS[c], 6, 11, 2, 3, 9, 9}, {CELLS[c], 6, 11, 1, 1, 9, 0},
            {CELLS[c], 6, 11, 1, 5, 1, 0}, {CELLS[c], 6, 11, 2, 1, 1, 7},
        };
        for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) float_double_case(&dims[i], 100 + 10 * (uint64_t)c + i);
    }
    report_worst();
}

/* ------------------------------------------------------ PyTorch parity */

static size_t attr_size(const ref_file *f, const char *key) { return (size_t)strtoul(ref_attr(f, key), NULL, 10); }

/* The file's cell name ("rnn_tanh") as clipnn's ("rnn-tanh"). */
static int ref_cell(const ref_file *f, clipnn_cell *cell) {
    char name[64];
    snprintf(name, sizeof name, "%s", ref_attr(f, "cell"));
    for (char *c = name; *c; c++)
        if (*c == '_') *c = '-';
    return clipnn_cell_parse(name, cell) == CLIPNN_OK ? 0 : -1;
}

/* prefix + name (+ "64") of n values copied into dst; 0 when present. */
static int ref_copy(const ref_file *f, const char *prefix, const char *name, const char *suffix, double *dst,
                    size_t n) {
    char key[96];
    snprintf(key, sizeof key, "%s%s%s", prefix, name, suffix);
    const double *v = ref_get(f, key, n);
    if (v && n) memcpy(dst, v, n * sizeof *dst);
    return v ? 0 : -1;
}

/* torch's outputs and gradients (suffix "" float32, "64" float64). */
static int ref_result(const ref_file *f, const char *prefix, const char *suffix, const problem *p, result *r) {
    int bad = ref_copy(f, prefix, "loss", suffix, &r->loss, 1);
    for (int k = 0; k < F_COUNT; k++)
        if (field_size(p, k))
            bad |= ref_copy(f, prefix, field_names[k], suffix, (double *)field(r, k), field_size(p, k));
    return bad | ref_copy(f, prefix, "grad", suffix, r->grad, p->P);
}

/* The file prints float32 inputs with 9 digits, which name the float32
 * value but not exactly: rounded back to float32 they are what torch used
 * (in float64 too). */
static int ref_input(const ref_file *f, const char *prefix, const char *name, double *dst, size_t n) {
    int bad = ref_copy(f, prefix, name, "", dst, n);
    for (size_t i = 0; i < n; i++) dst[i] = (float)dst[i];
    return bad;
}

static int ref_problem(const ref_file *f, const char *prefix, problem *p) {
    int bad = ref_input(f, prefix, "params", p->params, p->P) | ref_input(f, prefix, "x", p->x, p->seq_in) |
              ref_input(f, prefix, "h0", p->h0, p->states) | ref_input(f, prefix, "w_out", p->w_out, p->seq_h) |
              ref_input(f, prefix, "w_hn", p->w_hn, p->states);
    if (is_lstm(&p->d))
        bad |= ref_input(f, prefix, "c0", p->c0, p->states) | ref_input(f, prefix, "w_cn", p->w_cn, p->states);
    return bad;
}

/* One case lL.tT.bB: clipnn's float path against torch's float64 at the
 * float32 tolerance (torch's float32 held to the same), clipnn's double
 * path against torch's float64 at the same derivation in float64 units,
 * doubled (both sides round). */
static void parity_case(const ref_file *f, clipnn_cell cell, size_t layers, size_t T, size_t B) {
    net_dims d = {cell, attr_size(f, "in"), attr_size(f, "hidden"), layers, B, T, 0};
    char prefix[32], what[128];
    snprintf(prefix, sizeof prefix, "l%zu.t%zu.b%zu.", layers, T, B);
    snprintf(what, sizeof what, "%s %s", f->path + strlen(f->path) - strlen(strrchr(f->path, '/') + 1), prefix);
    problem p;
    result t32, t64, c32, c64;
    problem_alloc(&p, &d);
    result_alloc(&t32, &p), result_alloc(&t64, &p), result_alloc(&c32, &p), result_alloc(&c64, &p);
    if (!ref_problem(f, prefix, &p) && !ref_result(f, prefix, "", &p, &t32) && !ref_result(f, prefix, "64", &p, &t64) &&
        !problem_run(&p, 0, 1, &c32) && !problem_run(&p, 1, 1, &c64)) {
        compare_results(1, what, &p, &c32, &t32, &t64, rec_k(&d), U);
        compare_results(3, what, &p, &c64, NULL, &t64, 2 * rec_k(&d), U53);
    }
    result_free(&t32), result_free(&t64), result_free(&c32), result_free(&c64);
    problem_free(&p);
}

/* torch.nn.RNN (tanh, relu), LSTM and GRU, batch_first, 1 and 2 layers, 1
 * and 17 steps, batch 1 and 7, random initial states, a loss reading every
 * output and the final states (h_n, c_n of every layer). */
TEST(recurrent_torch_parity_forward_and_gradients) {
    static const char *const files[] = {"rec_rnn_tanh.txt", "rec_rnn_relu.txt", "rec_lstm.txt", "rec_gru.txt"};
    for (size_t i = 0; i < 4; i++) {
        ref_file *f = ref_load(files[i]);
        clipnn_cell cell;
        if (!f) continue;
        CHECK(ref_cell(f, &cell) == 0 && cell == CELLS[i]);
        for (size_t layers = 1; layers <= 2; layers++)
            for (size_t T = 1; T <= 17; T += 16)
                for (size_t B = 1; B <= 7; B += 6) parity_case(f, CELLS[i], layers, T, B);
        ref_free(f);
    }
    report_worst();
}

/* ------------------------------------------- 20 clipped SGD steps */

/* A many-to-one classifier: the recurrent stack, then a dense layer on the
 * last step's h (the library's dense kernels) and the mean cross-entropy
 * (its loss kernel); clip_grad_norm_ as torch does it (coefficient
 * max_norm / (norm + 1e-6), capped at 1) and the library's SGD step. */
typedef struct {
    net *n;
    size_t P, K, Ptot; /* recurrent parameters, classes, all parameters */
    float *params, *grads, *hl, *dhl, *z, *dz;
    double *theta, *grad, *h_n, *dh_n;
} classifier;

static void classifier_free(classifier *c) {
    net_free(c->n);
    void *all[] = {c->params, c->grads, c->hl, c->dhl, c->z, c->dz, c->theta, c->grad, c->h_n, c->dh_n};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

static int classifier_init(classifier *c, const net_dims *d, size_t K, const double *params) {
    memset(c, 0, sizeof *c);
    c->n = net_create(d, 0);
    c->P = stack_params(d), c->K = K, c->Ptot = c->P + K * d->hidden + K;
    size_t bh = d->batch * d->hidden, states = d->layers * bh;
    c->params = calloc(c->Ptot, sizeof(float)), c->grads = calloc(c->Ptot, sizeof(float));
    c->hl = calloc(bh, sizeof(float)), c->dhl = calloc(bh, sizeof(float));
    c->z = calloc(d->batch * K, sizeof(float)), c->dz = calloc(d->batch * K, sizeof(float));
    c->theta = fresh(c->P), c->grad = fresh(c->P), c->h_n = fresh(states), c->dh_n = fresh(states);
    if (!c->n || !c->params || !c->grads || !c->hl || !c->dhl || !c->z || !c->dz) return -1;
    to_float(params, c->params, c->Ptot);
    return 0;
}

/* Loss and gradient of one batch into c->grads; the mean loss. */
static double classifier_grad(classifier *c, const double *x, const float *y) {
    const net_dims *d = &c->n->d;
    size_t B = d->batch, h = d->hidden, K = c->K, last = (d->layers - 1) * B * h;
    const float *W = c->params + c->P, *b = W + K * h;
    for (size_t i = 0; i < c->P; i++) c->theta[i] = c->params[i];
    CHECK_OK(net_forward(c->n, c->theta, x, NULL, NULL, NULL, c->h_n, NULL));
    for (size_t i = 0; i < B * h; i++) c->hl[i] = (float)c->h_n[last + i];
    clipnn_dense_forward_cols(c->z, c->hl, W, B, h, K, 0, K);
    for (size_t r = 0; r < B; r++)
        for (size_t k = 0; k < K; k++) c->z[r * K + k] += b[k];
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    double loss = clipnn_loss_forward_backward(&lo, c->z, y, B, K, NULL, c->dz);
    clipnn_dense_backward(c->grads + c->P, c->grads + c->P + K * h, c->dhl, c->dz, c->hl, W, B, h, K);
    for (size_t i = 0; i < B * h; i++) c->dh_n[last + i] = c->dhl[i];
    CHECK_OK(net_backward(c->n, NULL, c->dh_n, NULL, 0, c->grad, NULL, NULL, NULL));
    for (size_t i = 0; i < c->P; i++) c->grads[i] = (float)c->grad[i];
    return loss;
}

/* Tolerance on theta after t steps (absolute), as for the MLP's clipped
 * trajectories: a step moves theta by lr times the clipped gradient, whose
 * entries are at most max_norm and carry float32 errors of at most K u
 * max_norm (K: the stack's rec_k plus 64 for the dense head and the loss,
 * the coefficient's rounding inside the same bound); the update rounds
 * once more, 2 u |theta|. After t steps: t such errors; their feedback
 * through the next gradients (lr |Hessian| < 1 here) at most doubles it. */
static double theta_tol(size_t t, double k, double lr, double max_norm, double theta_scale) {
    return 2.0 * U * (double)t * (k * lr * max_norm + 2.0 * theta_scale);
}

/* One reference trajectory: its arrays (pointers into the file). */
typedef struct {
    const char *file;
    size_t updates;
    const double *lr, *max_norm, *at, *x, *y, *l64, *n32, *n64, *th32, *th64;
} trajectory;

static int trajectory_load(const ref_file *f, const char *file, const net_dims *d, size_t Ptot, trajectory *tr) {
    size_t updates = attr_size(f, "updates");
    *tr = (trajectory){
        file,
        updates,
        ref_get(f, "lr", 1),
        ref_get(f, "max_norm", 1),
        ref_get(f, "theta_steps", 5),
        ref_get(f, "x", updates * seq_size(d, d->in)),
        ref_get(f, "y", updates * d->batch),
        ref_get(f, "loss64", updates),
        ref_get(f, "total_norm", updates),
        ref_get(f, "total_norm64", updates),
        ref_get(f, "theta", 5 * Ptot),
        ref_get(f, "theta64", 5 * Ptot),
    };
    return tr->lr && tr->max_norm && tr->at && tr->x && tr->y && tr->l64 && tr->n32 && tr->n64 && tr->th32 &&
                   tr->th64 && d->batch <= 64
               ? 0
               : -1;
}

/* The 20 steps against the trajectory: the loss and the total norm of
 * every step, theta after the steps the file lists. */
static void trajectory_check(classifier *c, const trajectory *tr) {
    const net_dims *d = &c->n->d;
    clipnn_optim_options oo = clipnn_optim_options_default();
    clipnn_optimizer *opt = NULL;
    CHECK_OK(clipnn_optimizer_create(&opt, c->Ptot, &oo));
    double k = rec_k(d) + 64, *theta = fresh(c->Ptot);
    size_t next = 0, clipped = 0;
    for (size_t t = 0; opt && theta && t < tr->updates; t++) {
        float yf[64];
        to_float(tr->y + t * d->batch, yf, d->batch);
        double loss = classifier_grad(c, tr->x + t * seq_size(d, d->in), yf);
        double norm = clipnn_norm(c->grads, c->Ptot, 2.0), coef = fmin(1.0, *tr->max_norm / (norm + 1e-6));
        clipped += norm > *tr->max_norm;
        CHECK_OK(clipnn_optimizer_step(opt, c->params, c->grads, *tr->lr, coef));
        CHECK_NEAR(loss, tr->l64[t], k * U * fmax(1.0, fabs(tr->l64[t])) * (double)(t + 1));
        CHECK_NEAR(norm, tr->n64[t], k * U * tr->n64[t] * (double)(t + 1));
        CHECK_NEAR(tr->n32[t], tr->n64[t], k * U * tr->n64[t] * (double)(t + 1));
        if (next == 5 || (size_t)tr->at[next] != t + 1) continue;
        const double *want = tr->th64 + next * c->Ptot;
        double scale = max_abs_d(want, c->Ptot), tol = theta_tol(t + 1, k, *tr->lr, *tr->max_norm, scale);
        char what[160];
        for (size_t i = 0; i < c->Ptot; i++) theta[i] = c->params[i];
        snprintf(what, sizeof what, "%s theta after step %zu", tr->file, t + 1);
        check_close(4, what, theta, want, c->Ptot, tol, U * scale);
        check_close(5, what, tr->th32 + next * c->Ptot, want, c->Ptot, tol, U * scale);
        next++;
    }
    CHECK_MSG(next == 5, "%s: theta checked after %zu of 5 steps", tr->file, next);
    CHECK_MSG(clipped >= 15, "%s: clipping acted on %zu of %zu steps", tr->file, clipped, tr->updates);
    free(theta);
    clipnn_optimizer_free(opt);
}

static void train_case(const char *file) {
    ref_file *f = ref_load(file);
    if (!f) return;
    clipnn_cell cell = CLIPNN_CELL_COUNT;
    CHECK(ref_cell(f, &cell) == 0);
    net_dims d = {cell, attr_size(f, "in"), attr_size(f, "hidden"), attr_size(f, "layers"), attr_size(f, "batch"),
                  attr_size(f, "steps"), 0};
    classifier c;
    trajectory tr;
    size_t K = attr_size(f, "classes");
    const double *params = ref_get(f, "params", stack_params(&d) + K * d.hidden + K);
    int ok = cell != CLIPNN_CELL_COUNT && params && classifier_init(&c, &d, K, params) == 0;
    ok = ok && trajectory_load(f, file, &d, c.Ptot, &tr) == 0;
    CHECK_MSG(ok, "%s: cannot set up the classifier", file);
    if (ok) trajectory_check(&c, &tr);
    if (cell != CLIPNN_CELL_COUNT && params) classifier_free(&c);
    ref_free(f);
}

TEST(recurrent_torch_parity_twenty_clipped_sgd_steps) {
    static const char *const files[] = {"rec_train_rnn_tanh_l1.txt", "rec_train_rnn_relu_l1.txt",
                                        "rec_train_lstm_l2.txt", "rec_train_gru_l2.txt"};
    for (size_t i = 0; i < 4; i++) train_case(files[i]);
    report_worst();
}

/* ------------------------------------------ chunks and truncation */

/* dst [B][t1 - t0][w] = steps [t0, t1) of src [B][T][w]; place_steps is
 * the inverse. */
static void slice_steps(const double *src, size_t B, size_t T, size_t w, size_t t0, size_t t1, double *dst) {
    for (size_t b = 0; b < B; b++) memcpy(dst + b * (t1 - t0) * w, src + (b * T + t0) * w, (t1 - t0) * w * sizeof *dst);
}

static void place_steps(double *dst, size_t B, size_t T, size_t w, size_t t0, size_t t1, const double *src) {
    for (size_t b = 0; b < B; b++) memcpy(dst + (b * T + t0) * w, src + b * (t1 - t0) * w, (t1 - t0) * w * sizeof *dst);
}

/* Steps [t0, t1) of p as a problem of their own (the same parameters,
 * initial states and final-state weights). */
static void problem_steps(const problem *p, size_t t0, size_t t1, problem *q) {
    net_dims d = p->d;
    d.steps = t1 - t0;
    problem_alloc(q, &d);
    memcpy(q->params, p->params, p->P * sizeof *q->params);
    slice_steps(p->x, d.batch, p->d.steps, d.in, t0, t1, q->x);
    slice_steps(p->w_out, d.batch, p->d.steps, d.hidden, t0, t1, q->w_out);
    memcpy(q->h0, p->h0, p->states * sizeof *q->h0), memcpy(q->c0, p->c0, p->states * sizeof *q->c0);
    memcpy(q->w_hn, p->w_hn, p->states * sizeof *q->w_hn), memcpy(q->w_cn, p->w_cn, p->states * sizeof *q->w_cn);
}

/* Chunk q forward from initial states h0, c0 (its final states to h_n,
 * c_n) and, when dh_n is not NULL, backward from d loss / d final states
 * (dh_n, dc_n) with truncation last_steps; the result in r. */
static void chunk_run(const problem *q, int dbl, const double *h0, const double *c0, const double *dh_n,
                      const double *dc_n, size_t last_steps, result *r) {
    net *n = net_create(&q->d, dbl);
    int lstm = is_lstm(&q->d);
    CHECK(n != NULL);
    if (!n) return;
    CHECK_OK(net_forward(n, q->params, q->x, h0, lstm ? c0 : NULL, r->out, r->h_n, lstm ? r->c_n : NULL));
    if (dh_n) CHECK_OK(net_backward(n, q->w_out, dh_n, dc_n, last_steps, r->grad, r->dx, r->dh0, r->dc0));
    net_free(n);
}

/* A chunk of 10 steps run whole and as chunks of 4 and 6 with the state
 * carried forward (h_n, c_n of the first as h0, c0 of the second) and the
 * gradient carried back (dh0, dc0 of the second as dhT, dcT of the first):
 * the same outputs and gradients, up to the rounding of the different GEMM
 * shapes (each side within the float or double tolerance of the truth). */
static void chunk_case(clipnn_cell cell, int dbl, uint64_t seed) {
    net_dims d = {cell, 4, 7, 2, 3, 10, 0};
    problem p, q1, q2;
    result whole, r1, r2, joined;
    problem_random(&p, &d, seed);
    problem_steps(&p, 0, 4, &q1), problem_steps(&p, 4, 10, &q2);
    result_alloc(&whole, &p), result_alloc(&joined, &p), result_alloc(&r1, &q1), result_alloc(&r2, &q2);
    if (problem_run(&p, dbl, 1, &whole) == 0) {
        chunk_run(&q1, dbl, p.h0, p.c0, NULL, NULL, 0, &r1);
        chunk_run(&q2, dbl, r1.h_n, r1.c_n, p.w_hn, p.w_cn, 0, &r2);
        chunk_run(&q1, dbl, p.h0, p.c0, r2.dh0, r2.dc0, 0, &r1);
        place_steps(joined.out, d.batch, 10, d.hidden, 0, 4, r1.out);
        place_steps(joined.out, d.batch, 10, d.hidden, 4, 10, r2.out);
        place_steps(joined.dx, d.batch, 10, d.in, 0, 4, r1.dx);
        place_steps(joined.dx, d.batch, 10, d.in, 4, 10, r2.dx);
        size_t state_bytes = p.states * sizeof(double);
        memcpy(joined.h_n, r2.h_n, state_bytes), memcpy(joined.c_n, r2.c_n, state_bytes);
        memcpy(joined.dh0, r1.dh0, state_bytes), memcpy(joined.dc0, r1.dc0, state_bytes);
        for (size_t i = 0; i < p.P; i++) joined.grad[i] = r1.grad[i] + r2.grad[i];
        joined.loss = problem_loss(&p, &joined);
        char what[96];
        snprintf(what, sizeof what, "%s %s chunks 4 + 6", clipnn_cell_name(cell), dbl ? "double" : "float");
        compare_results(6, what, &p, &joined, NULL, &whole, 2 * rec_k(&d), dbl ? U53 : U);
    }
    result_free(&whole), result_free(&joined), result_free(&r1), result_free(&r2);
    problem_free(&p), problem_free(&q1), problem_free(&q2);
}

TEST(recurrent_state_and_gradient_carry_across_chunks) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++)
        for (int dbl = 0; dbl <= 1; dbl++) chunk_case(CELLS[c], dbl, 300 + (uint64_t)c);
}

static int all_zero(const double *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return 0;
    return 1;
}

/* Backpropagation through the last 3 of 8 steps only is the full backward
 * of the chunk of those 3 steps started from the state the first 5 left:
 * the same parameter gradient and dx on those steps; dx of the earlier
 * steps and dh0, dc0 exactly zero. */
static void truncation_case(clipnn_cell cell, size_t layers, uint64_t seed) {
    net_dims d = {cell, 4, 7, layers, 3, 8, 0};
    problem p, head, tail;
    result trunc, rh, rt;
    problem_random(&p, &d, seed);
    problem_steps(&p, 0, 5, &head), problem_steps(&p, 5, 8, &tail);
    result_alloc(&trunc, &p), result_alloc(&rh, &head), result_alloc(&rt, &tail);
    chunk_run(&p, 1, p.h0, p.c0, p.w_hn, p.w_cn, 3, &trunc);
    chunk_run(&head, 1, p.h0, p.c0, NULL, NULL, 0, &rh);
    chunk_run(&tail, 1, rh.h_n, rh.c_n, p.w_hn, p.w_cn, 0, &rt);
    double *dx_tail = fresh(tail.seq_in), *dx_head = fresh(head.seq_in);
    char what[96];
    snprintf(what, sizeof what, "%s layers %zu last 3 of 8 steps", clipnn_cell_name(cell), layers);
    compare_grads(7, what, &p, trunc.grad, NULL, rt.grad, 2 * rec_k(&d), U53);
    slice_steps(trunc.dx, d.batch, 8, d.in, 5, 8, dx_tail);
    slice_steps(trunc.dx, d.batch, 8, d.in, 0, 5, dx_head);
    check_close(7, what, dx_tail, rt.dx, tail.seq_in, 2 * rec_k(&d) * U53 * max_abs_d(rt.dx, tail.seq_in), 0);
    CHECK_MSG(all_zero(dx_head, head.seq_in) && all_zero(trunc.dh0, p.states), "%s: gradient before the window", what);
    CHECK(!is_lstm(&d) || all_zero(trunc.dc0, p.states));
    free(dx_tail), free(dx_head);
    result_free(&trunc), result_free(&rh), result_free(&rt);
    problem_free(&p), problem_free(&head), problem_free(&tail);
}

TEST(recurrent_truncated_backpropagation) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++)
        for (size_t layers = 1; layers <= 2; layers++)
            truncation_case(CELLS[c], layers, 400 + 2 * (uint64_t)c + layers);
    report_worst();
}

/* ------------------------------------------------------------ threads */

/* The float kernels on one thread and on two (split at any size). The
 * split changes the shapes of the GEMMs (each thread its units of every
 * gate, its rows of the products over all steps), hence the order of some
 * sums: each side is within the float tolerance of the exact result
 * (rec_k u, as against the double path), so they agree within twice it.
 * Forward from given states, backward with carried gradients, whole or
 * truncated. */
static void threads_case(const net_dims *d, size_t last_steps, uint64_t seed) {
    problem p;
    result one, two;
    problem_random(&p, d, seed);
    result_alloc(&one, &p), result_alloc(&two, &p);
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    clipnn_set_threads(1);
    chunk_run(&p, 0, p.h0, p.c0, p.w_hn, p.w_cn, last_steps, &one);
    clipnn_set_threads(2);
    chunk_run(&p, 0, p.h0, p.c0, p.w_hn, p.w_cn, last_steps, &two);
    clipnn_set_threads(1);
    clipnn_parallel_macs = saved_macs;
    one.loss = problem_loss(&p, &one), two.loss = problem_loss(&p, &two);
    char what[128];
    snprintf(what, sizeof what, "%s B %zu T %zu hidden %zu, %zu steps back, 2 threads", clipnn_cell_name(d->cell),
             d->batch, d->steps, d->hidden, last_steps);
    compare_results(8, what, &p, &two, NULL, &one, 2 * rec_k(d), U);
    result_free(&one), result_free(&two);
    problem_free(&p);
}

/* hidden 40 splits 16 + 24 (cache-line units), 11 splits 5 + 6 (one thread
 * has a vector body, the other a remainder); a batch of one goes through
 * GEMV; two layers; truncation zeroes early rows on both threads. */
TEST(recurrent_one_and_two_threads_agree) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++) {
        const net_dims dims[] = {
            {CELLS[c], 6, 40, 2, 3, 9, 9}, {CELLS[c], 6, 11, 1, 1, 5, 0}, {CELLS[c], 5, 11, 2, 4, 7, 0}};
        for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
            threads_case(&dims[i], 0, 500 + 10 * (uint64_t)c + i);
            threads_case(&dims[i], 3, 600 + 10 * (uint64_t)c + i);
        }
    }
    report_worst();
}

/* ------------------------------------------------ per-example norms */

/* Example b of p as a problem of batch one. */
static void problem_example(const problem *p, size_t b, problem *q) {
    net_dims d = p->d;
    size_t T = d.steps, h = d.hidden;
    d.batch = 1;
    problem_alloc(q, &d);
    memcpy(q->params, p->params, p->P * sizeof *q->params);
    memcpy(q->x, p->x + b * T * d.in, T * d.in * sizeof *q->x);
    memcpy(q->w_out, p->w_out + b * T * h, T * h * sizeof *q->w_out);
    memcpy(q->h0, p->h0 + b * h, h * sizeof *q->h0), memcpy(q->c0, p->c0 + b * h, h * sizeof *q->c0);
    memcpy(q->w_hn, p->w_hn + b * h, h * sizeof *q->w_hn), memcpy(q->w_cn, p->w_cn + b * h, h * sizeof *q->w_cn);
}

/* sq[4] = the squared norms of the four tensors of a gradient block. */
static void tensor_sqnorms(const problem *p, const double *grad, double *sq) {
    clipnn_rec_params L;
    CHECK_OK(clipnn_rec_param_layout(p->d.cell, p->d.in, p->d.hidden, &L));
    size_t offs[5] = {L.w_ih, L.w_hh, L.b_ih, L.b_hh, L.total};
    for (int t = 0; t < 4; t++) sq[t] = dot(grad + offs[t], grad + offs[t], offs[t + 1] - offs[t]);
}

/* The batched per-example squared norms of problem p (one layer) from the
 * float or the double kernels into sq [B][4]. */
static void batched_sqnorms(const problem *p, int dbl, double *sq) {
    net *n = net_create(&p->d, dbl);
    size_t scratch_size = 0;
    CHECK(n != NULL);
    if (!n || clipnn_rec_norm_scratch_size(&n->shape[0], &scratch_size) != CLIPNN_OK) return net_free(n);
    void *scratch = calloc(scratch_size, n->es);
    int lstm = is_lstm(&p->d);
    if (scratch) {
        /* The kernels take every buffer from the caller. */
        uint64_t allocations = clipnn_allocation_count();
        CHECK_OK(net_forward(n, p->params, p->x, p->h0, lstm ? p->c0 : NULL, NULL, NULL, NULL));
        CHECK_OK(net_backward(n, p->w_out, p->w_hn, lstm ? p->w_cn : NULL, 0, NULL, NULL, NULL, NULL));
        if (dbl) CHECK_OK(clipnn_rec_example_sqnorms_d(&n->shape[0], n->x, n->d.x_stride, n->work[0], scratch, sq));
        else CHECK_OK(clipnn_rec_example_sqnorms(&n->shape[0], n->x, n->d.x_stride, n->work[0], scratch, sq));
        CHECK_MSG(clipnn_allocation_count() == allocations, "the recurrent kernels allocated");
    }
    free(scratch);
    net_free(n);
}

/* The batched squared norms against a backward of each example alone
 * (batch one), per tensor. T = 3 takes the ghost form (Gram matrices) for
 * every tensor of these shapes, T = 9 the materialised gradient: the
 * ghost form wins while T (na + G h) < G h na (na = 6 inputs or 11
 * hidden; G h = 11 .. 44).
 *
 * Double: both sides are sums of ~T (in + G h) products per entry, off by
 * that many roundings of 2^-53 relative to the sum of the terms' sizes,
 * which exceeds the result by at most the cancellation between steps
 * (a factor < 100 for these signals): 1e-11 relative bounds it, and a
 * wrong pairing (a_t with d_s, a missing GRU block) is off by O(1).
 * Float: each gradient entry is within K u of its scale (K = rec_k), so a
 * squared norm over N entries is within 2 sqrt(N) K u of itself. */
static double worst_sq64, worst_sq32;

static void sqnorm_case(clipnn_cell cell, size_t T, uint64_t seed) {
    net_dims d = {cell, 6, 11, 1, 4, T, 8};
    problem p;
    double sq64[16], sq32[16], naive[16];
    problem_random(&p, &d, seed);
    batched_sqnorms(&p, 1, sq64);
    batched_sqnorms(&p, 0, sq32);
    for (size_t b = 0; b < d.batch; b++) {
        problem q;
        result r;
        problem_example(&p, b, &q);
        result_alloc(&r, &q);
        if (problem_run(&q, 1, 1, &r) == 0) tensor_sqnorms(&q, r.grad, naive + 4 * b);
        result_free(&r);
        problem_free(&q);
    }
    clipnn_rec_params L;
    CHECK_OK(clipnn_rec_param_layout(cell, d.in, d.hidden, &L));
    size_t offs[5] = {L.w_ih, L.w_hh, L.b_ih, L.b_hh, L.total};
    for (size_t i = 0; i < 4 * d.batch; i++) {
        worst_sq64 = fmax(worst_sq64, fabs(sq64[i] - naive[i]) / naive[i]);
        worst_sq32 = fmax(worst_sq32, fabs(sq32[i] - naive[i]) / naive[i]);
        double float_tol = 2 * sqrt((double)(offs[i % 4 + 1] - offs[i % 4])) * rec_k(&d) * U * naive[i];
        CHECK_MSG(fabs(sq64[i] - naive[i]) <= 1e-11 * naive[i] && fabs(sq32[i] - naive[i]) <= float_tol,
                  "%s T %zu example %zu tensor %zu: batched %.17g (float %.9g), alone %.17g", clipnn_cell_name(cell), T,
                  i / 4, i % 4, sq64[i], sq32[i], naive[i]);
    }
    problem_free(&p);
}

TEST(recurrent_per_example_gradient_norms) {
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++) {
        sqnorm_case(CELLS[c], 3, 500 + (uint64_t)c);
        sqnorm_case(CELLS[c], 9, 510 + (uint64_t)c);
    }
    if (getenv("CLIPNN_TEST_VERBOSE"))
        fprintf(stderr, "    worst relative error of the per-example squared norms: double %.3g, float %.3g\n",
                worst_sq64, worst_sq32);
}

/* ------------------------------------------------------ the interface */

TEST(recurrent_cells_names_and_sizes) {
    static const size_t gates[CLIPNN_CELL_COUNT] = {1, 1, 4, 3};
    for (int c = 0; c < CLIPNN_CELL_COUNT; c++) {
        clipnn_cell parsed = CLIPNN_CELL_COUNT;
        CHECK_OK(clipnn_cell_parse(clipnn_cell_name(CELLS[c]), &parsed));
        CHECK(parsed == CELLS[c] && clipnn_cell_gates(CELLS[c]) == gates[c]);
        /* torch's layout: W_ih [G h][in], W_hh [G h][h], b_ih, b_hh [G h] */
        clipnn_rec_params p;
        CHECK_OK(clipnn_rec_param_layout(CELLS[c], 3, 5, &p));
        size_t gh = 5 * gates[c];
        CHECK(p.w_ih == 0 && p.w_hh == gh * 3 && p.b_ih == gh * 8 && p.b_hh == gh * 9 && p.total == gh * 10);
    }
    clipnn_cell parsed;
    CHECK(clipnn_cell_parse("lstm2", &parsed) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "rnn-tanh") != NULL); /* the message lists the names */
    CHECK(clipnn_cell_gates(CLIPNN_CELL_COUNT) == 0);
    CHECK(!strcmp(clipnn_cell_name(CLIPNN_CELL_COUNT), "unknown"));
}

/* Bad shapes and arguments fail with a status and a message, before any
 * memory is touched; sizes that overflow (or that a BLAS int cannot hold)
 * are refused. */
TEST(recurrent_bad_arguments_are_refused) {
    clipnn_rec_params p;
    size_t n;
    CHECK(clipnn_rec_param_layout(CLIPNN_CELL_COUNT, 3, 5, &p) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_param_layout(CLIPNN_CELL_GRU, 0, 5, &p) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_param_layout(CLIPNN_CELL_GRU, 3, 0, &p) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_param_layout(CLIPNN_CELL_LSTM, 3, SIZE_MAX / 2, &p) == CLIPNN_ERR_OVERFLOW);
    CHECK(clipnn_rec_workspace_size(NULL, &n) == CLIPNN_ERR_INVALID_ARG);
    const clipnn_rec_shape empty = {CLIPNN_CELL_LSTM, 3, 5, 0, 4}, no_steps = {CLIPNN_CELL_LSTM, 3, 5, 2, 0};
    const clipnn_rec_shape huge = {CLIPNN_CELL_LSTM, 3, 5, (size_t)1 << 20, (size_t)1 << 12};
    const clipnn_rec_shape wide = {CLIPNN_CELL_RNN_TANH, (size_t)1 << 32, 5, 1, 1};
    CHECK(clipnn_rec_workspace_size(&empty, &n) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_workspace_size(&no_steps, &n) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_workspace_size(&huge, &n) == CLIPNN_ERR_OVERFLOW);      /* 2^32 rows for a BLAS int */
    CHECK(clipnn_rec_workspace_size(&wide, &n) == CLIPNN_ERR_OVERFLOW);      /* in beyond a BLAS int */
    CHECK(clipnn_rec_norm_scratch_size(&huge, &n) == CLIPNN_ERR_OVERFLOW);

    const clipnn_rec_shape s = {CLIPNN_CELL_GRU, 3, 5, 2, 4};
    float params[3 * 5 * 10] = {0}, x[2 * 4 * 3] = {0}, H[2 * 4 * 5], grad[150], work[512], scratch[512];
    double sq[8];
    CHECK_OK(clipnn_rec_workspace_size(&s, &n));
    CHECK(n <= 512);
    CHECK_OK(clipnn_rec_norm_scratch_size(&s, &n));
    CHECK(n <= 512);
    CHECK(clipnn_rec_forward(&s, NULL, x, 3, NULL, NULL, H, NULL, NULL, work) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_forward(&s, params, x, 3, NULL, NULL, NULL, NULL, NULL, work) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_forward(&s, params, x, 3, NULL, NULL, H, NULL, NULL, NULL) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_forward(&s, params, x, 2, NULL, NULL, H, NULL, NULL, work) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "stride") != NULL);
    CHECK_OK(clipnn_rec_forward(&s, params, x, 3, NULL, NULL, H, NULL, NULL, work));
    CHECK(clipnn_rec_backward(&s, params, x, 3, NULL, NULL, NULL, 5, grad, NULL, NULL, NULL, work) ==
          CLIPNN_ERR_INVALID_ARG);
    /* no gradient block: only dx, and grad is left alone */
    float dxa[2 * 4 * 3];
    grad[0] = 7.0f;
    CHECK_OK(clipnn_rec_backward(&s, params, x, 3, NULL, NULL, NULL, 0, NULL, dxa, NULL, NULL, work));
    CHECK(grad[0] == 7.0f);
    CHECK(clipnn_rec_example_sqnorms(&s, x, 3, work, NULL, sq) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_example_sqnorms(&s, x, 3, work, scratch, NULL) == CLIPNN_ERR_INVALID_ARG);
    double factor[2] = {1, 0.5};
    CHECK(clipnn_rec_scale_examples(&s, NULL, work) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_scale_examples(&empty, factor, work) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_param_grads(&s, x, 3, work, NULL) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_rec_param_grads(&s, x, 2, work, grad) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_shared_norm_scratch_size((size_t)1 << 31, 3, 5, &n) == CLIPNN_ERR_OVERFLOW);
    CHECK(clipnn_rec_forward_d(&empty, NULL, NULL, 3, NULL, NULL, NULL, NULL, NULL, NULL) == CLIPNN_ERR_INVALID_ARG);
}

/* The gate functions of the float path: tanh within 2 ulp, the sigmoid
 * within 3 ulp above -80 and 2^-23 absolute everywhere, against double
 * libm on a dense sweep of [-100, 100]; the limits within an ulp. */
TEST(recurrent_fast_tanh_and_sigmoid_accuracy) {
    double worst_tanh = 0, worst_sig = 0, worst_sig_abs = 0;
    for (float x = -100.0f; x <= 100.0f; x += fabsf(x) < 1 ? 1.0f / 4096 : 1.0f / 256) {
        double t = tanh((double)x), s = 1 / (1 + exp(-(double)x));
        double ulp_t = fmax(nextafterf((float)fabs(t), INFINITY) - (float)fabs(t), FLT_TRUE_MIN);
        double ulp_s = fmax(nextafterf((float)s, INFINITY) - (float)s, FLT_TRUE_MIN);
        worst_tanh = fmax(worst_tanh, fabs(clipnn_tanhf_fast(x) - t) / ulp_t);
        if (x >= -80) worst_sig = fmax(worst_sig, fabs(clipnn_sigmoidf_fast(x) - s) / ulp_s);
        worst_sig_abs = fmax(worst_sig_abs, fabs(clipnn_sigmoidf_fast(x) - s));
    }
    CHECK_MSG(worst_tanh <= 2 && worst_sig <= 3 && worst_sig_abs <= 2 * U,
              "tanh %.3g ulp, sigmoid %.3g ulp, %.3g absolute", worst_tanh, worst_sig, worst_sig_abs);
    CHECK(clipnn_tanhf_fast(0.0f) == 0.0f && clipnn_sigmoidf_fast(0.0f) == 0.5f);
    CHECK(fabsf(clipnn_tanhf_fast(INFINITY) - 1) <= U && fabsf(clipnn_tanhf_fast(-INFINITY) + 1) <= U);
    CHECK(clipnn_sigmoidf_fast(INFINITY) == 1.0f && clipnn_sigmoidf_fast(-INFINITY) <= 1e-38f);
    CHECK(isnan(clipnn_tanhf_fast(NAN)) && isnan(clipnn_sigmoidf_fast(NAN)));
}
