/* The recurrent telemetry: the spectral radius of W_hh's gate blocks
 * against matrices whose radius is known, d loss / d h_t of the backward
 * against central differences in double, and the step record of
 * clipnn_train against a constructed case whose decay through time is
 * known (W_hh = r I in tanh's linear regime). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h" /* clipnn_parallel_macs: split kernels on small models */
#include "check.h"
#include "clipnn.h"
#include "nn/nn.h"

/* One recurrent layer of `kind` (h units over steps of `in` values) and a
 * dense output of 2, every parameter 0 but W_hh's gate blocks. */
static clipnn_model *one_layer(clipnn_layer_kind kind, size_t in, size_t h, size_t steps) {
    clipnn_layer_spec ls[] = {{kind, h, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {steps, in, 0};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (m) memset(clipnn_model_params(m), 0, clipnn_model_n_params(m) * sizeof(float));
    return m;
}

static float *w_hh_block(clipnn_model *m, size_t gate) {
    clipnn_group g = clipnn_model_group(m, 1); /* W_hh of layer 0 */
    size_t h = g.cols;
    return clipnn_model_params(m) + g.offset + gate * h * h;
}

/* Entries rounded to float move a normal matrix's eigenvalues by at most
 * ||E||_2 <= ||E||_F <= 2^-24 ||A||_F = 2^-24 r sqrt(n) (at most n unit
 * entries scaled by r); the estimator itself is exact for a scaled
 * rotation and has lost the subdominant part of a diagonal after the
 * burn-in (0.5^200), leaving double rounding. */
static double radius_tol(double r, size_t n) { return r * sqrt((double)n) * 0x1p-24 + 1e-12; }

TEST(rec_radius_of_scaled_rotations_and_diagonals) {
    const size_t h = 6;
    clipnn_model *m = one_layer(CLIPNN_LAYER_RNN, 1, h, 3);
    if (!m) return;
    const double radii[] = {0.3, 0.95, 1.0, 1.7};
    for (size_t k = 0; k < 4; k++) {
        double r = radii[k], got = NAN;
        float *W = w_hh_block(m, 0);
        memset(W, 0, h * h * sizeof *W);
        /* three 2 x 2 rotations (angles 0.4, 1.1, 2.5) scaled by r, 0.6 r,
         * 0.3 r: the largest |eigenvalue| is r, a complex pair */
        const double angle[3] = {0.4, 1.1, 2.5}, scale[3] = {1.0, 0.6, 0.3};
        for (size_t b = 0; b < 3; b++) {
            double c = scale[b] * r * cos(angle[b]), s = scale[b] * r * sin(angle[b]);
            size_t i = 2 * b;
            W[i * h + i] = (float)c, W[i * h + i + 1] = (float)-s;
            W[(i + 1) * h + i] = (float)s, W[(i + 1) * h + i + 1] = (float)c;
        }
        CHECK_OK(clipnn_model_rec_radius(m, 0, 0, &got));
        CHECK_NEAR(got, r, radius_tol(r, h));
        /* not normal: [[0, -4r], [r/4, 0]] has eigenvalues +-i r while
         * ||W v|| / ||v|| swings between r/4 and 4r from step to step
         * (W^2 = -r^2 I, so the mean growth is exactly r); plain power
         * iteration's last ratio would be off by up to 4x */
        W[0] = W[7] = 0, W[1] = (float)(-4 * r), W[6] = (float)(r / 4);
        CHECK_OK(clipnn_model_rec_radius(m, 0, 0, &got));
        CHECK_NEAR(got, r, radius_tol(4 * r, h));
        /* a diagonal whose largest entry is -r (the sign does not count) */
        memset(W, 0, h * h * sizeof *W);
        for (size_t i = 0; i < h; i++) W[i * h + i] = (float)(r * (i == 3 ? -1.0 : 0.5 - 0.05 * (double)i));
        CHECK_OK(clipnn_model_rec_radius(m, 0, 0, &got));
        CHECK_NEAR(got, r, radius_tol(r, h));
    }
    double out;
    CHECK(clipnn_model_rec_radius(m, 0, 1, &out) == CLIPNN_ERR_INVALID_ARG); /* an RNN has one block */
    CHECK(clipnn_model_rec_radius(m, 1, 0, &out) == CLIPNN_ERR_INVALID_ARG); /* the dense layer has none */
    clipnn_model_free(m);
}

/* LSTM and GRU: each gate block has its own radius, in torch's order. */
TEST(rec_radius_per_gate_block) {
    const clipnn_layer_kind kinds[2] = {CLIPNN_LAYER_LSTM, CLIPNN_LAYER_GRU};
    const size_t gates[2] = {4, 3}, h = 5;
    for (size_t k = 0; k < 2; k++) {
        clipnn_model *m = one_layer(kinds[k], 2, h, 3);
        if (!m) continue;
        CHECK(clipnn_model_layer_gates(m, 0) == gates[k]);
        CHECK(clipnn_model_layer_gates(m, 1) == 0);
        for (size_t g = 0; g < gates[k]; g++) {
            float *W = w_hh_block(m, g);
            for (size_t i = 0; i < h; i++) W[i * h + i] = (float)(0.2 * (double)(g + 1) * (i == 0 ? 1.0 : 0.4));
        }
        for (size_t g = 0; g < gates[k]; g++) {
            double got = NAN, want = (double)(float)(0.2 * (double)(g + 1));
            CHECK_OK(clipnn_model_rec_radius(m, 0, g, &got));
            CHECK_NEAR(got, want, radius_tol(want, h));
        }
        clipnn_model_free(m);
    }
}

/* ------------------------------------------- d loss / d h_t, in double */

enum { FD_B = 2, FD_T = 5, FD_IN = 3, FD_H = 4 };

typedef struct {
    clipnn_rec_shape s;
    double *params, *x, *u; /* u [B][T][H]: the loss is sum_t u_t . h_t */
    size_t n_params;
} fd_case;

static double *filled(clipnn_rng *rng, size_t n, double bound) {
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; v && i < n; i++) v[i] = bound * (2 * clipnn_rng_uniform(rng) - 1);
    return v;
}

/* The loss sum over the steps from t0 of u_t . h_t, for the sequences run
 * from (h0, c0) over the steps [t0, T) of x. */
static double tail_loss(const fd_case *c, size_t t0, const double *h0, const double *c0) {
    size_t n = FD_T - t0, ws = 0;
    clipnn_rec_shape s = c->s;
    s.steps = n;
    CHECK_OK(clipnn_rec_workspace_size(&s, &ws));
    double *x = malloc(FD_B * n * FD_IN * sizeof *x), *H = malloc(FD_B * n * FD_H * sizeof *H);
    double *work = malloc(ws * sizeof *work), loss = 0;
    for (size_t b = 0; b < FD_B; b++) memcpy(x + b * n * FD_IN, c->x + (b * FD_T + t0) * FD_IN, n * FD_IN * sizeof *x);
    CHECK_OK(clipnn_rec_forward_d(&s, c->params, x, FD_IN, h0, c0, H, NULL, NULL, work));
    for (size_t b = 0; b < FD_B; b++)
        for (size_t i = 0; i < n * FD_H; i++) loss += c->u[(b * FD_T + t0) * FD_H + i] * H[b * n * FD_H + i];
    free(x), free(H), free(work);
    return loss;
}

/* d loss / d h_t[b][j] by a central difference: the state after the steps
 * [0, t] (and the LSTM's c_t), h_t[b][j] moved by +-eps, its own term and
 * the steps after run again from it. */
static double fd_dh(const fd_case *c, size_t t, size_t b, size_t j) {
    const double eps = 1e-5;
    clipnn_rec_shape s = c->s;
    s.steps = t + 1;
    size_t ws = 0;
    CHECK_OK(clipnn_rec_workspace_size(&s, &ws));
    double *H = malloc(FD_B * (t + 1) * FD_H * sizeof *H), *work = malloc(ws * sizeof *work);
    double ht[FD_B * FD_H], ct[FD_B * FD_H], x[FD_B * FD_T * FD_IN];
    for (size_t r = 0; r < FD_B; r++) memcpy(x + r * (t + 1) * FD_IN, c->x + r * FD_T * FD_IN, (t + 1) * FD_IN * sizeof *x);
    CHECK_OK(clipnn_rec_forward_d(&s, c->params, x, FD_IN, NULL, NULL, H, ht, ct, work));
    double v[2];
    for (int k = 0; k < 2; k++) {
        double hp[FD_B * FD_H];
        memcpy(hp, ht, sizeof hp);
        hp[b * FD_H + j] += k ? -eps : eps;
        double own = 0;
        for (size_t r = 0; r < FD_B; r++)
            for (size_t i = 0; i < FD_H; i++) own += c->u[(r * FD_T + t) * FD_H + i] * hp[r * FD_H + i];
        v[k] = own + (t + 1 < FD_T ? tail_loss(c, t + 1, hp, ct) : 0);
    }
    free(H), free(work);
    return (v[0] - v[1]) / (2 * eps);
}

static void trace_case(clipnn_cell cell, uint64_t seed) {
    fd_case c = {.s = {cell, FD_IN, FD_H, FD_B, FD_T}};
    clipnn_rec_params off;
    CHECK_OK(clipnn_rec_param_layout(cell, FD_IN, FD_H, &off));
    clipnn_rng rng;
    clipnn_rng_seed(&rng, seed);
    c.params = filled(&rng, off.total, 0.8);
    c.x = filled(&rng, FD_B * FD_T * FD_IN, 1.0);
    c.u = filled(&rng, FD_B * FD_T * FD_H, 1.0);
    size_t ws = 0;
    CHECK_OK(clipnn_rec_workspace_size(&c.s, &ws));
    double *H = malloc(FD_B * FD_T * FD_H * sizeof *H), *work = malloc(ws * sizeof *work);
    double *trace = malloc(FD_B * FD_T * FD_H * sizeof *trace);
    CHECK_OK(clipnn_rec_forward_d(&c.s, c.params, c.x, FD_IN, NULL, NULL, H, NULL, NULL, work));
    CHECK_OK(clipnn_rec_backward_trace_d(&c.s, c.params, c.x, FD_IN, c.u, NULL, NULL, 0, NULL, NULL, NULL, NULL, work,
                                         trace));
    /* central difference with eps = 1e-5 on O(1) values: truncation
     * eps^2 |f'''| / 6 ~ 1e-11, rounding 1e-16 |L| / eps ~ 1e-11 */
    double worst = 0;
    for (size_t t = 0; t < FD_T; t++)
        for (size_t b = 0; b < FD_B; b++)
            for (size_t j = 0; j < FD_H; j++)
                worst = fmax(worst, fabs(fd_dh(&c, t, b, j) - trace[(b * FD_T + t) * FD_H + j]));
    CHECK_MSG(worst <= 1e-8, "%s: d loss / d h_t off the central difference by %.3g", clipnn_cell_name(cell), worst);
    /* the gradient through the last 2 steps only: the earlier rows are 0 */
    CHECK_OK(clipnn_rec_forward_d(&c.s, c.params, c.x, FD_IN, NULL, NULL, H, NULL, NULL, work));
    CHECK_OK(clipnn_rec_backward_trace_d(&c.s, c.params, c.x, FD_IN, c.u, NULL, NULL, 2, NULL, NULL, NULL, NULL, work,
                                         trace));
    for (size_t b = 0; b < FD_B; b++) {
        CHECK(trace[(b * FD_T + FD_T - 3) * FD_H] == 0.0);
        CHECK(trace[(b * FD_T + FD_T - 1) * FD_H] == c.u[(b * FD_T + FD_T - 1) * FD_H]);
    }
    free(H), free(work), free(trace), free(c.params), free(c.x), free(c.u);
}

TEST(rec_dh_trace_matches_central_differences) {
    trace_case(CLIPNN_CELL_RNN_TANH, 3);
    trace_case(CLIPNN_CELL_LSTM, 4);
    trace_case(CLIPNN_CELL_GRU, 5);
}

/* ------------------------------------------- clipnn_train's step record */

enum { DEC_T = 12, DEC_H = 4, DEC_N = 8 };

typedef struct {
    double radius[8];
    double norms[4 * DEC_T]; /* the last record's */
    size_t steps, records, with_radius, with_norms;
    size_t layers; /* recurrent layers of the model (0: 1) */
} seen;

static void keep(const clipnn_step_record *r, void *user) {
    seen *s = user;
    s->records++;
    if (r->rec_radius) s->with_radius++, s->radius[0] = r->rec_radius[0];
    if (r->time_grad_norms) {
        s->with_norms++;
        s->steps = r->time_grad_steps;
        memcpy(s->norms, r->time_grad_norms, (s->layers ? s->layers : 1) * r->time_grad_steps * sizeof *s->norms);
    }
}

/* A tanh RNN with W_hh = r I, W_ih = 1e-5 I and inputs of size <= 1: for
 * r <= 1.5 over 12 steps |h| < 1e-5 sum_k 1.5^k < 3e-3, so tanh' = 1 - h^2
 * > 1 - 1e-5 and d loss / d h_t = r (1 - h^2) d loss / d h_{t+1}: each step
 * back multiplies the norm by r within 1e-5 relative, plus float rounding
 * of the product and the norms (a few 1e-7). */
static clipnn_model *linear_regime(double r) {
    clipnn_model *m = one_layer(CLIPNN_LAYER_RNN, DEC_H, DEC_H, DEC_T);
    if (!m) return NULL;
    float *p = clipnn_model_params(m);
    clipnn_group wih = clipnn_model_group(m, 0), wout = clipnn_model_group(m, 4);
    float *W = w_hh_block(m, 0);
    for (size_t i = 0; i < DEC_H; i++) W[i * DEC_H + i] = (float)r, p[wih.offset + i * DEC_H + i] = 1e-5f;
    for (size_t i = 0; i < wout.size; i++) p[wout.offset + i] = (float)(0.5 - 0.1 * (double)i);
    return m;
}

static clipnn_dataset *decay_data(void) {
    float x[DEC_N * DEC_T * DEC_H], y[DEC_N];
    for (size_t i = 0; i < DEC_N * DEC_T * DEC_H; i++) x[i] = (float)sin(0.7 * (double)i);
    for (size_t i = 0; i < DEC_N; i++) y[i] = (float)(i % 2);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, DEC_N, DEC_T * DEC_H, 2, 1, &d));
    return d;
}

static clipnn_train_options decay_options(seen *s) {
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 4;
    o.epochs = 0;
    o.steps = 4;
    o.schedule.a0 = 0; /* the parameters stay the constructed ones */
    o.on_step = keep;
    o.user = s;
    return o;
}

TEST(rec_train_records_decay_through_time) {
    clipnn_dataset *d = decay_data();
    const double radii[3] = {0.5, 1.0, 1.5};
    for (size_t k = 0; k < 3 && d; k++) {
        clipnn_model *m = linear_regime(radii[k]);
        if (!m) continue;
        seen s;
        memset(&s, 0, sizeof s);
        clipnn_train_options o = decay_options(&s);
        const uint64_t at[1] = {3};
        o.log_radius_every = 2;
        o.log_time_grad_steps = at;
        o.n_log_time_grad_steps = 1;
        clipnn_train_result res;
        CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
        CHECK(s.records == 4 && s.with_radius == 2 && s.with_norms == 1 && s.steps == DEC_T);
        CHECK_NEAR(s.radius[0], radii[k], radius_tol(radii[k], DEC_H));
        for (size_t t = 0; t + 1 < DEC_T; t++)
            CHECK_NEAR(s.norms[t] / s.norms[t + 1], radii[k], 2e-5 * radii[k]);
        clipnn_model_free(m);
    }
    clipnn_dataset_free(d);
}

/* Nothing asked, nothing reported; truncated backpropagation reports the
 * window's steps, 0 where the gradient does not reach. */
TEST(rec_train_telemetry_off_and_truncated) {
    clipnn_dataset *d = decay_data();
    clipnn_model *m = d ? linear_regime(0.9) : NULL;
    if (!m) return clipnn_dataset_free(d);
    seen s;
    memset(&s, 0, sizeof s);
    clipnn_train_options o = decay_options(&s);
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK(s.records == 4 && s.with_radius == 0 && s.with_norms == 0);
    memset(&s, 0, sizeof s);
    o.log_time_grad_every = 1;
    o.bptt_steps = 5; /* many-to-one: the last 5 of the 12 steps */
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK(s.with_norms == 4 && s.steps == DEC_T);
    for (size_t t = 0; t < DEC_T; t++) CHECK((s.norms[t] > 0) == (t >= DEC_T - 5));
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* ------------------------------------------- no allocation, threads */

/* A two-layer LSTM over the decay data trained `steps` steps with every
 * telemetry at every step on `threads` threads (the recurrent kernels
 * split at any size): the allocations of the run, and the last step's
 * norms of d loss / d h_t into norms (2 layers x DEC_T). */
static uint64_t telemetry_run(uint64_t steps, int threads, double *norms) {
    clipnn_layer_spec ls[] = {{CLIPNN_LAYER_LSTM, 6, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_LSTM, 5, CLIPNN_ACT_IDENTITY},
                              {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {DEC_T, DEC_H, 0};
    clipnn_dataset *d = decay_data();
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 3, ls));
    if (!m || !d) return clipnn_model_free(m), clipnn_dataset_free(d), 0;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 2));
    seen s;
    memset(&s, 0, sizeof s);
    s.layers = 2;
    clipnn_train_options o = decay_options(&s);
    o.steps = steps;
    o.schedule.a0 = 0.05;
    o.log_radius_every = 1;
    o.log_time_grad_every = 1;
    clipnn_set_threads(threads);
    clipnn_train_result r;
    uint64_t before = clipnn_allocation_count();
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    uint64_t used = clipnn_allocation_count() - before;
    CHECK(s.with_radius == steps && s.with_norms == steps && s.steps == DEC_T);
    memcpy(norms, s.norms, 2 * DEC_T * sizeof *norms);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    return used;
}

TEST(rec_telemetry_allocates_nothing_in_the_steps) {
    int saved = clipnn_get_threads();
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    double n1[2 * DEC_T], n2[2 * DEC_T], scratch[2 * DEC_T];
    for (int threads = 1; threads <= 2; threads++) {
        uint64_t a = telemetry_run(6, threads, scratch), b = telemetry_run(12, threads, threads == 1 ? n1 : n2);
        CHECK_MSG(a == b, "%d threads: %llu allocations in 6 steps, %llu in 12", threads, (unsigned long long)a,
                  (unsigned long long)b);
    }
    /* the threads split the hidden units; each trace row is written by the
     * thread that owns its units, so two threads give the one-thread
     * numbers up to the GEMMs' summation order (a few float ulps a step,
     * 12 steps) */
    for (size_t i = 0; i < 2 * DEC_T; i++) CHECK_NEAR(n2[i], n1[i], 1e-5 * n1[i] + 1e-30);
    clipnn_set_threads(saved);
    clipnn_parallel_macs = saved_macs;
}

/* ------------------------------------------- the step record against double */

enum { REF_B = 4, REF_T = 6, REF_IN = 3, REF_H0 = 5, REF_H1 = 4, REF_K = 3 };

/* The time_grad_norms of step 0 of a two-layer tanh RNN (5 then 4 units,
 * 3 classes) on a set of REF_B equal rows, so that the batch is known. */
static void float_norms(clipnn_model *m, const float *x, float y, double *norms) {
    float xs[REF_B * REF_T * REF_IN], ys[REF_B];
    for (size_t b = 0; b < REF_B; b++) memcpy(xs + b * REF_T * REF_IN, x, sizeof xs / REF_B), ys[b] = y;
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(xs, ys, REF_B, REF_T * REF_IN, REF_K, 1, &d));
    seen s;
    memset(&s, 0, sizeof s);
    s.layers = 2;
    clipnn_train_options o = decay_options(&s);
    o.steps = 1;
    o.log_time_grad_every = 1;
    clipnn_train_result r;
    if (d) CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK(s.with_norms == 1 && s.steps == REF_T);
    memcpy(norms, s.norms, 2 * REF_T * sizeof *norms);
    clipnn_dataset_free(d);
}

/* The same in double with the kernels and a hand-written head: layer 1's
 * d loss / d h_T is W^T (softmax(z) - onehot(y)) / B, its backward gives
 * layer 0's dH. */
static void double_norms(clipnn_model *m, const float *x, float y, double *norms) {
    const float *P = clipnn_model_params(m);
    clipnn_group g0 = clipnn_model_group(m, 0), g1 = clipnn_model_group(m, 4), W = clipnn_model_group(m, 8);
    clipnn_rec_shape s0 = {CLIPNN_CELL_RNN_TANH, REF_IN, REF_H0, REF_B, REF_T};
    clipnn_rec_shape s1 = {CLIPNN_CELL_RNN_TANH, REF_H0, REF_H1, REF_B, REF_T};
    clipnn_rec_params o0, o1;
    CHECK_OK(clipnn_rec_param_layout(s0.cell, REF_IN, REF_H0, &o0));
    CHECK_OK(clipnn_rec_param_layout(s1.cell, REF_H0, REF_H1, &o1));
    double p0[64], p1[64], xd[REF_B * REF_T * REF_IN], H0[REF_B * REF_T * REF_H0], H1[REF_B * REF_T * REF_H1];
    double w0[512], w1[512], dH0[REF_B * REF_T * REF_H0], tr0[REF_B * REF_T * REF_H0], tr1[REF_B * REF_T * REF_H1];
    double dhT[REF_B * REF_H1];
    size_t n0 = 0, n1 = 0;
    CHECK_OK(clipnn_rec_workspace_size(&s0, &n0));
    CHECK_OK(clipnn_rec_workspace_size(&s1, &n1));
    CHECK(o0.total <= 64 && o1.total <= 64 && n0 <= 512 && n1 <= 512);
    if (o0.total > 64 || o1.total > 64 || n0 > 512 || n1 > 512) return;
    for (size_t i = 0; i < o0.total; i++) p0[i] = P[g0.offset + i];
    for (size_t i = 0; i < o1.total; i++) p1[i] = P[g1.offset + i];
    for (size_t i = 0; i < REF_B * REF_T * REF_IN; i++) xd[i] = x[i % (REF_T * REF_IN)];
    CHECK_OK(clipnn_rec_forward_d(&s0, p0, xd, REF_IN, NULL, NULL, H0, NULL, NULL, w0));
    CHECK_OK(clipnn_rec_forward_d(&s1, p1, H0, REF_H0, NULL, NULL, H1, NULL, NULL, w1));
    for (size_t b = 0; b < REF_B; b++) {
        const double *h = H1 + (b * REF_T + REF_T - 1) * REF_H1;
        double z[REF_K], zmax = -INFINITY, sum = 0;
        for (size_t k = 0; k < REF_K; k++) {
            z[k] = P[W.offset + REF_K * REF_H1 + k]; /* the bias follows W */
            for (size_t j = 0; j < REF_H1; j++) z[k] += P[W.offset + k * REF_H1 + j] * h[j];
            zmax = fmax(zmax, z[k]);
        }
        for (size_t k = 0; k < REF_K; k++) sum += exp(z[k] - zmax);
        for (size_t j = 0; j < REF_H1; j++) dhT[b * REF_H1 + j] = 0;
        for (size_t k = 0; k < REF_K; k++) {
            double dz = (exp(z[k] - zmax) / sum - (k == (size_t)y)) / REF_B;
            for (size_t j = 0; j < REF_H1; j++) dhT[b * REF_H1 + j] += dz * P[W.offset + k * REF_H1 + j];
        }
    }
    CHECK_OK(clipnn_rec_backward_trace_d(&s1, p1, H0, REF_H0, NULL, dhT, NULL, 0, NULL, dH0, NULL, NULL, w1, tr1));
    CHECK_OK(clipnn_rec_backward_trace_d(&s0, p0, xd, REF_IN, dH0, NULL, NULL, 0, NULL, NULL, NULL, NULL, w0, tr0));
    const double *tr[2] = {tr0, tr1};
    const size_t hs[2] = {REF_H0, REF_H1};
    for (size_t l = 0; l < 2; l++)
        for (size_t t = 0; t < REF_T; t++) {
            double acc = 0;
            for (size_t b = 0; b < REF_B; b++)
                for (size_t j = 0; j < hs[l]; j++) {
                    double v = tr[l][(b * REF_T + t) * hs[l] + j];
                    acc += v * v;
                }
            norms[l * REF_T + t] = sqrt(acc);
        }
}

TEST(rec_train_time_grad_norms_match_double) {
    clipnn_layer_spec ls[] = {{CLIPNN_LAYER_RNN, REF_H0, CLIPNN_ACT_IDENTITY},
                              {CLIPNN_LAYER_RNN, REF_H1, CLIPNN_ACT_IDENTITY},
                              {CLIPNN_LAYER_DENSE, REF_K, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {REF_T, REF_IN, 0};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 3, ls));
    if (!m) return;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 9));
    float x[REF_T * REF_IN];
    for (size_t i = 0; i < REF_T * REF_IN; i++) x[i] = (float)sin(1.3 * (double)i);
    double got[2 * REF_T], want[2 * REF_T];
    double_norms(m, x, 2.0f, want); /* step 0 reads the parameters before its update */
    float_norms(m, x, 2.0f, got);
    /* float32: some 50 rounded operations lie between the input and each
     * norm (6 steps of 5-unit products and tanh, the head, the softmax),
     * each within 2^-24 and the fast tanh within a few ulps: 1e-5 relative
     * (the worst seen: 2e-7) */
    for (size_t i = 0; i < 2 * REF_T; i++) CHECK_NEAR(got[i], want[i], 1e-5 * want[i]);
    clipnn_model_free(m);
}
