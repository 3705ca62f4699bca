/* Truncated backpropagation through time (k1, k2) and the state carried
 * between the batches of a stream, in clipnn_train: chunks of the whole
 * sequence are full BPTT bit for bit; each chunk's gradient against
 * central differences of an independent double reference (the prefix
 * forwarded without gradient, the chunk from the carried state); a stream
 * gives the h of one long sequence; resume is byte-identical mid-batch and
 * mid-stream; a delay task that truncation cannot learn and full
 * backpropagation can; the options' checks; steps allocate nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/nn.h"
#include "npy_fixture.h"
#include "ref_file.h"

typedef struct {
    clipnn_layer_kind kind;
    size_t layers, in, hidden, steps, outputs;
    int every_step;
} seq_case;

static const clipnn_layer_kind KINDS[4] = {CLIPNN_LAYER_RNN, CLIPNN_LAYER_RNN_RELU, CLIPNN_LAYER_LSTM,
                                           CLIPNN_LAYER_GRU};

/* `layers` recurrent layers, then one dense identity layer, over
 * sequences of `steps` steps (the parameters do not depend on it). */
static clipnn_model *seq_model(const seq_case *c, size_t steps, uint64_t seed) {
    clipnn_layer_spec ls[4];
    for (size_t l = 0; l < c->layers; l++) ls[l] = (clipnn_layer_spec){c->kind, c->hidden, CLIPNN_ACT_IDENTITY};
    ls[c->layers] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, c->outputs, CLIPNN_ACT_IDENTITY};
    clipnn_seq_shape seq = {steps, c->in, c->every_step};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, c->layers + 1, ls));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, seed));
    return m;
}

static void random_fill(float *v, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

/* Targets per row: [T][k] for many-to-many, [k] otherwise. */
static size_t y_row(const seq_case *c) { return c->outputs * (c->every_step ? c->steps : 1); }

/* n sequences x [n][T][in], y [n][y_row] as a training set in file order,
 * unscaled, without a test part. */
static clipnn_dataset *seq_data(const char *tag, const seq_case *c, const float *x, const float *y, size_t n) {
    char xn[64], yn[64], spec[2200];
    snprintf(xn, sizeof xn, "%s_x.npy", tag);
    snprintf(yn, sizeof yn, "%s_y.npy", tag);
    const char *xp = save_npy(xn, x, n, c->steps, c->in);
    const char *yp = c->every_step ? save_npy(yn, y, n, c->steps, c->outputs) : save_npy(yn, y, n, c->outputs, 0);
    snprintf(spec, sizeof spec, "npy:%s,%s", xp, yp);
    clipnn_data_options o = clipnn_data_options_default();
    o.scaling = CLIPNN_SCALE_NONE;
    o.test_fraction = 0;
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &o, &d, NULL));
    return d;
}

/* Random inputs and targets for n sequences of case c. */
static clipnn_dataset *random_data(const char *tag, const seq_case *c, size_t n, uint64_t seed) {
    float *x = malloc(n * c->steps * c->in * sizeof *x), *y = malloc(n * y_row(c) * sizeof *y);
    random_fill(x, n * c->steps * c->in, seed);
    random_fill(y, n * y_row(c), seed + 1000);
    clipnn_dataset *d = seq_data(tag, c, x, y, n);
    free(x), free(y);
    return d;
}

/* MSE, plain SGD with a fixed step, no clipping: each step's update is the
 * chunk's gradient itself. */
static clipnn_train_options plain_options(size_t batch, size_t epochs, double lr) {
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.optim.momentum = 0;
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_NONE);
    o.schedule.a0 = lr;
    o.batch = batch;
    o.epochs = epochs;
    return o;
}

/* What the steps of a run left: each step's loss, gradient and parameters
 * after the update, the per-row losses, the allocations counted. */
typedef struct {
    clipnn_model *m;
    size_t P, rows, max_steps, steps;
    double *loss;
    float *grads, *params, *row_losses;
    uint64_t allocs_first, allocs_last;
} step_log;

static void log_open(step_log *g, clipnn_model *m, size_t max_steps, size_t rows) {
    *g = (step_log){.m = m, .P = clipnn_model_n_params(m), .rows = rows, .max_steps = max_steps};
    g->loss = calloc(max_steps, sizeof *g->loss);
    g->grads = calloc(max_steps * g->P, sizeof *g->grads);
    g->params = calloc(max_steps * g->P, sizeof *g->params);
    g->row_losses = calloc(max_steps * (rows ? rows : 1), sizeof *g->row_losses);
}

static void log_close(step_log *g) { free(g->loss), free(g->grads), free(g->params), free(g->row_losses); }

static void on_step(const clipnn_step_record *r, void *user) {
    step_log *g = user;
    uint64_t count = clipnn_allocation_count();
    if (r->step == 0 || g->steps == 0) g->allocs_first = count;
    g->allocs_last = count;
    size_t t = g->steps++;
    if (t >= g->max_steps) return;
    g->loss[t] = r->loss;
    memcpy(g->grads + t * g->P, clipnn_model_grads(g->m), g->P * sizeof(float));
    memcpy(g->params + t * g->P, clipnn_model_params(g->m), g->P * sizeof(float));
    const float *rl = clipnn_model_last_losses(g->m);
    if (g->rows && rl) memcpy(g->row_losses + t * g->rows, rl, g->rows * sizeof(float));
}

static void log_attach(step_log *g, clipnn_train_options *o) {
    o->on_step = on_step;
    o->user = g;
}

/* The float path's error bound in units of u = 2^-24 over a run of
 * `steps` steps of a stack (the recurrent kernels' bound: two roundings per
 * multiply-add along the longest chain, every layer and step, fan-in n plus
 * the gate arithmetic), plus the head's and the loss's 64. */
static double float_k(const seq_case *c, size_t steps) {
    double n = (double)(c->in > c->hidden ? c->in : c->hidden) + (double)c->hidden + 2;
    return 2.0 * (double)(c->layers + 2) * (double)steps * (n + 8) + 64;
}

/* ------------------------------------------ k1 = k2 = T is full BPTT */

/* Chunks of the whole sequence take the path of truncated BPTT (a window
 * from a zero state) and give the trajectory of full BPTT bit for bit:
 * every loss and every parameter after two epochs with momentum, norm
 * clipping and a short last batch. Truncating (k2 < T) does change it. */
static void whole_chunk_case(const seq_case *c) {
    clipnn_dataset *d = random_data("whole", c, 20, 11);
    clipnn_model *full = seq_model(c, c->steps, 3), *chunked = NULL, *cut = NULL;
    if (!d || !full) return;
    CHECK_OK(clipnn_model_clone(full, &chunked));
    CHECK_OK(clipnn_model_clone(full, &cut));
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.batch = 6;
    o.epochs = 2;
    step_log a, b;
    log_open(&a, full, 8, 0), log_open(&b, chunked, 8, 0);
    clipnn_train_result ra, rb, rc;
    log_attach(&a, &o);
    CHECK_OK(clipnn_train(full, d, NULL, &o, &ra));
    log_attach(&b, &o);
    o.bptt_chunk = o.bptt_steps = c->steps;
    CHECK_OK(clipnn_train(chunked, d, NULL, &o, &rb));
    size_t P = clipnn_model_n_params(full);
    CHECK_MSG(ra.steps == 8 && rb.steps == 8, "steps %llu and %llu", (unsigned long long)ra.steps,
              (unsigned long long)rb.steps);
    CHECK_MSG(memcmp(a.loss, b.loss, 8 * sizeof *a.loss) == 0, "%s every_step %d: losses differ",
              clipnn_layer_kind_name(c->kind), c->every_step);
    CHECK_MSG(memcmp(clipnn_model_params(full), clipnn_model_params(chunked), P * sizeof(float)) == 0,
              "%s every_step %d: parameters differ", clipnn_layer_kind_name(c->kind), c->every_step);
    o.on_step = NULL;
    o.bptt_steps = c->steps - 2;
    CHECK_OK(clipnn_train(cut, d, NULL, &o, &rc));
    CHECK(memcmp(clipnn_model_params(full), clipnn_model_params(cut), P * sizeof(float)) != 0);
    log_close(&a), log_close(&b);
    clipnn_model_free(full), clipnn_model_free(chunked), clipnn_model_free(cut);
    clipnn_dataset_free(d);
}

TEST(tbptt_whole_sequence_chunks_are_full_bptt_bit_for_bit) {
    for (int k = 0; k < 4; k++)
        for (int every = 0; every <= 1; every++) {
            seq_case c = {KINDS[k], 2, 3, 5, 6, 2, every};
            whole_chunk_case(&c);
        }
}

/* -------------------------------- each chunk's gradient, independently */

/* The reference: the recurrent layers by the double kernels over a range
 * of steps from a given state, the dense layer and the mean squared error
 * written out; the state of layer l at state + 2 l B h (h, then c). */
typedef struct {
    const seq_case *c;
    size_t B, P, w_off, b_off, rec_off[4];
    double *x, *y; /* [B][T][in], [B][y_row] */
} ref_net;

static clipnn_cell cell_of(clipnn_layer_kind kind) {
    return kind == CLIPNN_LAYER_RNN ? CLIPNN_CELL_RNN_TANH
           : kind == CLIPNN_LAYER_RNN_RELU ? CLIPNN_CELL_RNN_RELU
           : kind == CLIPNN_LAYER_LSTM     ? CLIPNN_CELL_LSTM
                                           : CLIPNN_CELL_GRU;
}

/* The stack over steps [t0, t1) at theta from state (then the state at
 * t1); the top layer's h of those steps into top [B][t1 - t0][h] unless
 * NULL. */
static void ref_steps(const ref_net *r, const double *theta, size_t t0, size_t t1, double *state, double *top) {
    const seq_case *c = r->c;
    size_t B = r->B, len = t1 - t0, h = c->hidden, w = c->in > h ? c->in : h;
    if (len == 0) return;
    double *in = calloc(B * len * w, sizeof *in), *out = calloc(B * len * h, sizeof *out);
    double *hT = calloc(2 * B * h, sizeof *hT);
    for (size_t b = 0; b < B; b++)
        memcpy(in + b * len * c->in, r->x + (b * c->steps + t0) * c->in, len * c->in * sizeof *in);
    for (size_t l = 0; l < c->layers; l++) {
        clipnn_rec_shape s = {cell_of(c->kind), l ? h : c->in, h, B, len};
        size_t n = 0;
        CHECK_OK(clipnn_rec_workspace_size(&s, &n));
        double *work = calloc(n, sizeof *work), *st = state + 2 * l * B * h;
        CHECK_OK(clipnn_rec_forward_d(&s, theta + r->rec_off[l], in, s.in, st, st + B * h, out, hT, hT + B * h,
                                      work));
        memcpy(st, hT, (s.cell == CLIPNN_CELL_LSTM ? 2 : 1) * B * h * sizeof *st);
        memcpy(in, out, B * len * h * sizeof *in);
        free(work);
    }
    if (top) memcpy(top, out, B * len * h * sizeof *top);
    free(in), free(out), free(hT);
}

/* The chunk's loss: the mean squared error of its steps [s, e) (many-to-
 * one: the last step) at theta; the steps [f, w0) before its window are
 * constants, run at theta_c, the parameters of the chunk's step, from the
 * carried state at f. */
static double ref_chunk_loss(const ref_net *r, const double *theta, const double *theta_c, const double *state_f,
                             size_t f, size_t s, size_t w0, size_t e) {
    const seq_case *c = r->c;
    size_t B = r->B, h = c->hidden, k = c->outputs, a = w0 > f ? w0 : f, ns = 2 * c->layers * B * h;
    double *st = malloc(ns * sizeof *st), *pre = calloc(B * (a - f) * h + 1, sizeof *pre);
    double *win = calloc(B * (e - a) * h, sizeof *win), loss = 0;
    memcpy(st, state_f, ns * sizeof *st);
    ref_steps(r, theta_c, f, a, st, pre);
    ref_steps(r, theta, a, e, st, win);
    for (size_t b = 0; b < B; b++)
        for (size_t t = s; t < e; t++) {
            const double *hv = t < a ? pre + (b * (a - f) + t - f) * h : win + (b * (e - a) + t - a) * h;
            const double *y = c->every_step ? r->y + (b * c->steps + t) * k : r->y + b * k;
            for (size_t j = 0; j < k; j++) {
                double z = theta[r->b_off + j];
                for (size_t i = 0; i < h; i++) z += theta[r->w_off + j * h + i] * hv[i];
                loss += (z - y[j]) * (z - y[j]);
            }
        }
    free(st), free(pre), free(win);
    return loss / (double)(B * (e - s) * k);
}

/* Chunk cc's steps as the definition gives them: [s, e) of k1 steps, the
 * window of the last k2 steps up to e from w0 (not before 0), the first
 * step forwarded f = min(s, w0). */
static void chunk_of(size_t cc, size_t k1, size_t k2, size_t T, size_t *s, size_t *e, size_t *w0, size_t *f) {
    *s = cc * k1;
    *e = *s + k1 < T ? *s + k1 : T;
    *w0 = *e > k2 ? *e - k2 : 0;
    *f = *s < *w0 ? *s : *w0;
}

/* Central differences, step 1e-6 on parameters of size ~0.5: truncation
 * h^2 |f'''| / 6 ~ 1e-13 and rounding 1e-16 / h ~ 1e-10, far below the
 * float path's error that the comparison allows. */
static void fd_gradient(const ref_net *r, double *theta, const double *theta_c, const double *state_f, size_t f,
                        size_t s, size_t w0, size_t e, double *g) {
    const double step = 1e-6;
    for (size_t i = 0; i < r->P; i++) {
        double keep = theta[i];
        theta[i] = keep + step;
        double lp = ref_chunk_loss(r, theta, theta_c, state_f, f, s, w0, e);
        theta[i] = keep - step;
        double lm = ref_chunk_loss(r, theta, theta_c, state_f, f, s, w0, e);
        theta[i] = keep;
        g[i] = (lp - lm) / (2 * step);
    }
}

static void ref_open(ref_net *r, const seq_case *c, clipnn_model *m, const clipnn_dataset *d, size_t B) {
    *r = (ref_net){.c = c, .B = B, .P = clipnn_model_n_params(m)};
    for (size_t l = 0; l < c->layers; l++) r->rec_off[l] = clipnn_model_group(m, 4 * l).offset;
    r->w_off = clipnn_model_group(m, 4 * c->layers).offset;
    r->b_off = clipnn_model_group(m, 4 * c->layers + 1).offset;
    size_t nx = B * c->steps * c->in, ny = B * y_row(c);
    r->x = malloc(nx * sizeof *r->x), r->y = malloc(ny * sizeof *r->y);
    for (size_t i = 0; i < nx; i++) r->x[i] = clipnn_dataset_x(d)[i];
    for (size_t i = 0; i < ny; i++) r->y[i] = clipnn_dataset_y(d)[i];
}

/* One batch of 3 sequences trained with TBPTT(k1, k2) by plain SGD: the
 * gradient of every step against central differences of the reference's
 * chunk loss at the parameters of that step, from the state the reference
 * carried (the previous chunk's forward at its own parameters). */
static void chunk_gradient_case(const seq_case *c, size_t k1, size_t k2) {
    enum { B = 3 };
    clipnn_dataset *d = random_data("chunks", c, B, 21);
    clipnn_model *m = seq_model(c, c->steps, 4);
    if (!d || !m) return;
    size_t T = c->steps, chunks = (T + k1 - 1) / k1, P = clipnn_model_n_params(m);
    double *theta = malloc(P * sizeof *theta), *theta_c = malloc(P * sizeof *theta_c), *g = malloc(P * sizeof *g);
    for (size_t i = 0; i < P; i++) theta_c[i] = clipnn_model_params(m)[i];
    clipnn_train_options o = plain_options(B, 1, 0.2);
    o.bptt_chunk = k1, o.bptt_steps = k2;
    step_log log;
    log_open(&log, m, chunks, 0);
    log_attach(&log, &o);
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK(res.steps == chunks);
    ref_net r;
    ref_open(&r, c, m, d, B);
    double *state = calloc(2 * c->layers * B * c->hidden, sizeof *state), k = float_k(c, T);
    for (size_t cc = 0; cc < chunks && res.steps == chunks; cc++) {
        size_t s, e, w0, f;
        chunk_of(cc, k1, k2, T, &s, &e, &w0, &f);
        memcpy(theta, theta_c, P * sizeof *theta);
        fd_gradient(&r, theta, theta_c, state, f, c->every_step ? s : e - 1, w0, e, g);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < P; i++) {
            worst = fmax(worst, fabs((double)log.grads[cc * P + i] - g[i]));
            scale = fmax(scale, fabs(g[i]));
        }
        CHECK_MSG(worst <= k * U * scale + 1e-8 && scale > 0,
                  "%s layers %zu every_step %d, TBPTT(%zu, %zu), chunk %zu: gradient off by %.3g (bound %.3g)",
                  clipnn_layer_kind_name(c->kind), c->layers, c->every_step, k1, k2, cc, worst, k * U * scale + 1e-8);
        size_t s1, e1, w1, f1 = T;
        if (cc + 1 < chunks) chunk_of(cc + 1, k1, k2, T, &s1, &e1, &w1, &f1);
        ref_steps(&r, theta_c, f, f1, state, NULL); /* the carried state, without gradient */
        for (size_t i = 0; i < P; i++) theta_c[i] = log.params[cc * P + i];
    }
    free(theta), free(theta_c), free(g), free(state), free(r.x), free(r.y);
    log_close(&log);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

TEST(tbptt_chunk_gradients_match_an_independent_reference) {
    static const size_t windows[][2] = {{3, 5}, {4, 2}, {2, 2}, {7, 3}};
    for (int k = 0; k < 4; k++)
        for (size_t layers = 1; layers <= 2; layers++)
            for (size_t w = 0; w < 3; w++) {
                seq_case c = {KINDS[k], layers, 2, 4, 7, 2, 1};
                chunk_gradient_case(&c, windows[w][0], windows[w][1]);
            }
    /* many-to-one: one chunk of every step, the gradient through the last 3 */
    for (int k = 0; k < 4; k++) {
        seq_case c = {KINDS[k], 2, 2, 4, 7, 2, 0};
        chunk_gradient_case(&c, windows[3][0], windows[3][1]);
    }
}

/* --------------------------------------------------- carried state */

/* The state of the front as a stream leaves it: two windows of T steps,
 * the second from the state the first ended with, against one window of
 * 2T steps of a model of 2T steps with the same parameters: the same h of
 * every step of the second half and the same final state of every layer (h
 * and c), within the float path's error; without the carried state they
 * differ far beyond it. */
static void stream_state_case(const seq_case *c) {
    enum { B = 2 };
    size_t T = c->steps, h = c->hidden, rows = B * T;
    clipnn_model *m = seq_model(c, T, 6), *twice = seq_model(c, 2 * T, 6);
    if (!m || !twice) return;
    /* orthogonal W_hh: the state is not forgotten within T steps */
    CHECK_OK(clipnn_model_init_recurrent(m, CLIPNN_RECURRENT_INIT_ORTHOGONAL, 0, 6));
    CHECK_OK(clipnn_model_init_recurrent(twice, CLIPNN_RECURRENT_INIT_ORTHOGONAL, 0, 6));
    CHECK_OK(clipnn_model_reserve(m, B));
    CHECK_OK(clipnn_model_reserve(twice, B));
    size_t S = clipnn_front_state_floats(m, B);
    float *x = malloc(B * 2 * T * c->in * sizeof *x), *half = malloc(B * T * c->in * sizeof *half);
    float *y = calloc(B * 2 * T * c->outputs, sizeof *y), *s1 = malloc(S * sizeof *s1), *s2 = malloc(S * sizeof *s2);
    float *sl = malloc(S * sizeof *sl), *fresh = malloc(S * sizeof *fresh), *h2 = malloc(rows * h * sizeof *h2);
    random_fill(x, B * 2 * T * c->in, 31);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    clipnn_window w = {T, 0, T, NULL, s1, T};
    clipnn_slice_steps(half, x, B, 2 * T, c->in, 0, T);
    CHECK_OK(clipnn_loss_grad_window(m, &lo, half, y, B, &w, NULL, NULL));
    clipnn_slice_steps(half, x, B, 2 * T, c->in, T, 2 * T);
    w.state_in = NULL, w.state_out = fresh;
    CHECK_OK(clipnn_loss_grad_window(m, &lo, half, y, B, &w, NULL, NULL));
    w.state_in = s1, w.state_out = s2;
    CHECK_OK(clipnn_loss_grad_window(m, &lo, half, y, B, &w, NULL, NULL));
    memcpy(h2, m->rec[c->layers - 1].H, rows * h * sizeof *h2);
    clipnn_window whole = {2 * T, 0, 2 * T, NULL, sl, 2 * T};
    CHECK_OK(clipnn_loss_grad_window(twice, &lo, x, y, B, &whole, NULL, NULL));
    const float *hl = twice->rec[c->layers - 1].H;
    /* |h| <= 1 for tanh and LSTM, GRU states; relu's grow: relative */
    double worst = 0, scale = 1, apart = 0, tol = float_k(c, 2 * T) * U;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < T * h; i++) {
            double v = hl[(b * 2 * T + T) * h + i];
            worst = fmax(worst, fabs((double)h2[b * T * h + i] - v));
            scale = fmax(scale, fabs(v));
        }
    for (size_t i = 0; i < S; i++) {
        worst = fmax(worst, fabs((double)s2[i] - sl[i]));
        apart = fmax(apart, fabs((double)fresh[i] - sl[i]));
    }
    CHECK_MSG(worst <= tol * scale, "%s layers %zu: the stream's h off by %.3g (bound %.3g)",
              clipnn_layer_kind_name(c->kind), c->layers, worst, tol * scale);
    CHECK_MSG(apart > 10 * tol * scale, "%s: a zero state differs by only %.3g", clipnn_layer_kind_name(c->kind),
              apart);
    free(x), free(half), free(y), free(s1), free(s2), free(sl), free(fresh), free(h2);
    clipnn_model_free(m), clipnn_model_free(twice);
}

TEST(tbptt_stream_state_is_that_of_one_long_sequence) {
    for (int k = 0; k < 4; k++)
        for (size_t layers = 1; layers <= 2; layers++) {
            seq_case c = {KINDS[k], layers, 3, 5, 4, 2, 1};
            stream_state_case(&c);
        }
}

/* A stream in clipnn_train: 4 rows are 2 streams of 2 segments (rows 0, 1
 * and 2, 3), batch j holds segment j of each; chunks of 2 of the 4 steps,
 * 3 steps back, no update (step size 0). Each step's per-row losses are
 * those of the matching steps of the 2 sequences of 8 steps run whole, and
 * the second epoch starts again from zero: its losses repeat the first's
 * bit for bit. */
TEST(tbptt_stream_batches_continue_their_sequences) {
    enum { B = 2, T = 4, N = 4, K1 = 2, STEPS = 8 };
    seq_case c = {CLIPNN_LAYER_LSTM, 2, 3, 5, T, 2, 1};
    float x[N][T][3], y[N][T][2], xl[B][2 * T][3], yl[B][2 * T][2];
    random_fill(&x[0][0][0], sizeof x / sizeof(float), 41);
    random_fill(&y[0][0][0], sizeof y / sizeof(float), 42);
    for (size_t b = 0; b < B; b++) /* stream b is rows 2b, 2b + 1 */
        for (size_t j = 0; j < 2; j++) {
            memcpy(xl[b][j * T], x[2 * b + j], sizeof x[0]);
            memcpy(yl[b][j * T], y[2 * b + j], sizeof y[0]);
        }
    clipnn_dataset *d = seq_data("stream", &c, &x[0][0][0], &y[0][0][0], N);
    clipnn_model *m = seq_model(&c, T, 8), *whole = seq_model(&c, 2 * T, 8);
    if (!d || !m || !whole) return;
    clipnn_train_options o = plain_options(B, 2, 0);
    o.bptt_chunk = K1, o.bptt_steps = 3, o.carry_state = 1;
    step_log log;
    log_open(&log, m, STEPS, B * K1);
    log_attach(&log, &o);
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK(res.steps == STEPS && log.steps == STEPS);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    CHECK_OK(clipnn_loss_grad(whole, &lo, &xl[0][0][0], &yl[0][0][0], B, NULL, NULL));
    const float *rows = clipnn_model_last_losses(whole); /* [B][2T] */
    /* a row's loss is (z - y)^2 averaged: |d loss| <= 2 |z - y| |dz| + dz^2, |dz| <= k u max(1, |z|) */
    double worst = 0, big = 1, tol = 4 * float_k(&c, 2 * T) * U;
    for (size_t t = 0; t < STEPS / 2 && rows; t++) /* step t: batch t / 2, chunk t % 2 */
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < K1; j++) {
                double want = rows[b * 2 * T + (t / 2) * T + (t % 2) * K1 + j];
                worst = fmax(worst, fabs(log.row_losses[t * B * K1 + b * K1 + j] - want));
                big = fmax(big, want);
            }
    CHECK_MSG(worst <= tol * big, "the stream's losses off by %.3g (bound %.3g)", worst, tol * big);
    CHECK(memcmp(log.row_losses, log.row_losses + 4 * B * K1, 4 * B * K1 * sizeof(float)) == 0);
    CHECK(memcmp(log.loss, log.loss + 4, 4 * sizeof(double)) == 0);
    log_close(&log);
    clipnn_model_free(m), clipnn_model_free(whole);
    clipnn_dataset_free(d);
}

/* ------------------------------------------------------------ resume */

static int file_version(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char head[12] = {0};
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return got == sizeof head ? head[8] : -1;
}

/* The saved run's options are part of its state: other chunks, or none,
 * are refused. */
static void resume_refuses_other_options(const char *path, const clipnn_dataset *d, clipnn_train_options o) {
    clipnn_train_state *st = NULL;
    clipnn_model *m = NULL;
    clipnn_train_result r;
    CHECK_OK(clipnn_checkpoint_load(path, &m, &st));
    if (!m) return;
    o.state = st, o.on_step = NULL, o.bptt_steps = 2;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "continue it with the same") != NULL);
    o.bptt_chunk = o.bptt_steps = 0, o.carry_state = 0;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "continue it with them") != NULL);
    clipnn_train_state_free(st);
    clipnn_model_free(m);
}

/* A run of 2 epochs with chunks of 2 of 6 steps, 3 steps back (shuffled
 * batches, or a stream with its state carried), split after step `split`
 * (6: between two batches of an epoch; 7: inside one, the run's end
 * evaluating the test set in between) into a checkpoint and a resumed run:
 * the same losses and parameters, bit for bit, as the run made at once.
 * The file is version 3; resuming with other options is refused. */
static void resume_case(int carry, uint64_t split) {
    enum { N = 7 };
    seq_case c = {CLIPNN_LAYER_LSTM, 2, 3, 5, 6, 2, 1};
    clipnn_dataset *d = random_data("resume", &c, N, 51);
    clipnn_model *a = seq_model(&c, c.steps, 9), *b = NULL, *b2 = NULL;
    clipnn_train_state *sa = NULL, *sb = NULL, *sb2 = NULL;
    if (!d || !a) return;
    CHECK_OK(clipnn_model_clone(a, &b));
    CHECK_OK(clipnn_train_state_create(&sa));
    CHECK_OK(clipnn_train_state_create(&sb));
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.batch = 2, o.epochs = 2;
    o.bptt_chunk = 2, o.bptt_steps = 3, o.carry_state = carry;
    size_t total = carry ? 2 * 3 * 3 : 2 * 4 * 3, P = clipnn_model_n_params(a);
    step_log la, lb;
    log_open(&la, a, total, 0), log_open(&lb, b, total, 0);
    clipnn_train_result ra, rb;
    log_attach(&la, &o);
    o.state = sa;
    CHECK_OK(clipnn_train(a, d, d, &o, &ra));
    CHECK(ra.steps == total);
    log_attach(&lb, &o);
    o.state = sb, o.steps = split;
    CHECK_OK(clipnn_train(b, d, d, &o, &rb));
    const char *path = check_tmp_path(carry ? "tbptt_stream.ckpt" : "tbptt.ckpt");
    CHECK_OK(clipnn_checkpoint_save(path, b, sb));
    CHECK(file_version(path) == 3);
    CHECK_OK(clipnn_checkpoint_load(path, &b2, &sb2));
    if (!b2 || !sb2) return;
    lb.m = b2;
    o.state = sb2, o.steps = 0;
    CHECK_OK(clipnn_train(b2, d, d, &o, &rb));
    CHECK_MSG(rb.steps == total && lb.steps == total, "carry %d: %llu steps, %zu logged", carry,
              (unsigned long long)rb.steps, lb.steps);
    CHECK_MSG(memcmp(la.loss, lb.loss, total * sizeof *la.loss) == 0, "carry %d: losses differ", carry);
    CHECK_MSG(memcmp(clipnn_model_params(a), clipnn_model_params(b2), P * sizeof(float)) == 0,
              "carry %d: parameters differ after the resumed run", carry);
    resume_refuses_other_options(path, d, o);
    log_close(&la), log_close(&lb);
    clipnn_train_state_free(sa), clipnn_train_state_free(sb), clipnn_train_state_free(sb2);
    clipnn_model_free(a), clipnn_model_free(b), clipnn_model_free(b2);
    clipnn_dataset_free(d);
}

TEST(tbptt_resume_mid_batch_and_mid_stream_is_byte_identical) {
    for (uint64_t split = 6; split <= 7; split++) {
        resume_case(0, split);
        resume_case(1, split);
    }
}

/* A run without these options still writes the file every earlier build
 * reads (version 2 for a recurrent model), and a run with them refuses it. */
TEST(tbptt_plain_runs_keep_their_checkpoint_version) {
    seq_case c = {CLIPNN_LAYER_GRU, 1, 3, 5, 6, 2, 1};
    clipnn_dataset *d = random_data("plainv", &c, 5, 61);
    clipnn_model *m = seq_model(&c, c.steps, 2), *back = NULL;
    clipnn_train_state *st = NULL, *st2 = NULL;
    if (!d || !m) return;
    CHECK_OK(clipnn_train_state_create(&st));
    clipnn_train_options o = plain_options(2, 1, 0.1);
    o.state = st;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    const char *path = check_tmp_path("plain_rec.ckpt");
    CHECK_OK(clipnn_checkpoint_save(path, m, st));
    CHECK(file_version(path) == 2);
    CHECK_OK(clipnn_checkpoint_load(path, &back, &st2));
    o.state = st2, o.epochs = 2, o.bptt_chunk = 3;
    CHECK(back && clipnn_train(back, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "made without truncated") != NULL);
    clipnn_train_state_free(st), clipnn_train_state_free(st2);
    clipnn_model_free(m), clipnn_model_free(back);
    clipnn_dataset_free(d);
}

/* ----------------------------------------------- when truncation matters */

/* Inputs +-1, the target of step t the input of step t - D (0 for the
 * first D steps), n sequences of T steps; a test part of n / 2 more. */
static void delay_data(size_t n, size_t T, size_t D, uint64_t seed, clipnn_dataset **train, clipnn_dataset **test) {
    size_t all = n + n / 2;
    float *x = malloc(all * T * sizeof *x), *y = calloc(all * T, sizeof *y);
    random_fill(x, all * T, seed);
    for (size_t i = 0; i < all * T; i++) x[i] = x[i] < 0 ? -1.0f : 1.0f;
    for (size_t i = 0; i < all; i++)
        for (size_t t = D; t < T; t++) y[i * T + t] = x[i * T + t - D];
    char spec[4200];
    snprintf(spec, sizeof spec, "npy:%s,%s,%s,%s", save_npy("delay_x.npy", x, n, T, 1),
             save_npy("delay_y.npy", y, n, T, 1), save_npy("delay_tx.npy", x + n * T, n / 2, T, 1),
             save_npy("delay_ty.npy", y + n * T, n / 2, T, 1));
    clipnn_data_options o = clipnn_data_options_default();
    o.scaling = CLIPNN_SCALE_NONE;
    CHECK_OK(clipnn_dataset_load(spec, &o, train, test));
    free(x), free(y);
}

static double delay_test_loss(const clipnn_dataset *train, const clipnn_dataset *test, size_t T, size_t k1,
                              size_t k2) {
    seq_case c = {CLIPNN_LAYER_RNN, 1, 1, 16, T, 1, 1};
    clipnn_model *m = seq_model(&c, T, 12);
    if (!m) return NAN;
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.optim.kind = CLIPNN_OPT_ADAM;
    o.schedule.a0 = 0.01;
    o.epochs = 30;
    o.bptt_chunk = k1, o.bptt_steps = k2;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, train, test, &o, &r));
    clipnn_model_free(m);
    return r.test_loss;
}

/* The target of each step is the input D = 4 steps before: the loss of
 * step t reaches the input it needs only through k2 >= D + 1 steps back.
 * Chunks of 2 steps with k2 = 2 or D cannot learn it (the test loss stays
 * near predicting 0, measured 0.65 and 0.63 of 0.67), k2 = D + 1 or 8 can
 * (measured 0.001); 30 epochs of Adam each, in well under a second. */
TEST(tbptt_delay_task_needs_the_steps_back) {
    enum { N = 256, T = 12, D = 4 };
    clipnn_dataset *train = NULL, *test = NULL;
    delay_data(N, T, D, 71, &train, &test);
    if (!train || !test) return;
    const double base = (double)(T - D) / T; /* the loss of predicting 0 */
    const size_t back[4] = {2, D, D + 1, 8};
    for (size_t i = 0; i < 4; i++) {
        double loss = delay_test_loss(train, test, T, 2, back[i]);
        if (back[i] <= D)
            CHECK_MSG(loss > base / 2, "delay %d learnt with %zu steps back: test loss %g", D, back[i], loss);
        else
            CHECK_MSG(loss < base / 20, "delay %d not learnt with %zu steps back: test loss %g", D, back[i], loss);
    }
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* ------------------------------------------------------ checks and cost */

static clipnn_status train_status(clipnn_model *m, const clipnn_dataset *d, const clipnn_train_options *o) {
    clipnn_train_result r;
    return clipnn_train(m, d, NULL, o, &r);
}

/* Each impossible combination is refused with one line, before a step. */
TEST(tbptt_options_are_checked) {
    seq_case many = {CLIPNN_LAYER_LSTM, 1, 3, 4, 6, 2, 1}, one = many;
    one.every_step = 0;
    clipnn_dataset *dm = random_data("opt_many", &many, 6, 81), *d1 = random_data("opt_one", &one, 6, 82);
    clipnn_model *mm = seq_model(&many, 6, 1), *m1 = seq_model(&one, 6, 1), *mlp = NULL;
    size_t widths[2] = {4, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    CHECK_OK(clipnn_model_create(&mlp, 18, 2, widths, acts));
    if (!dm || !d1 || !mm || !m1 || !mlp) return;
    clipnn_train_options o = plain_options(2, 1, 0.1);
    o.bptt_chunk = 7;
    CHECK(train_status(mm, dm, &o) == CLIPNN_ERR_INVALID_ARG && strstr(clipnn_last_error(), "6 steps"));
    o.bptt_chunk = 2, o.bptt_steps = 9;
    CHECK(train_status(mm, dm, &o) == CLIPNN_ERR_INVALID_ARG);
    o.bptt_steps = 0;
    CHECK(train_status(m1, d1, &o) == CLIPNN_ERR_INVALID_ARG && strstr(clipnn_last_error(), "many-to-one"));
    CHECK(train_status(mlp, d1, &o) == CLIPNN_ERR_INVALID_ARG && strstr(clipnn_last_error(), "recurrent layers"));
    o.bptt_chunk = 0, o.carry_state = 1, o.replacement = 1;
    CHECK(train_status(mm, dm, &o) == CLIPNN_ERR_INVALID_ARG && strstr(clipnn_last_error(), "replacement"));
    o.replacement = 0, o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    CHECK(train_status(mm, dm, &o) == CLIPNN_ERR_UNSUPPORTED && strstr(clipnn_last_error(), "per-sample"));
    /* many-to-one: every step in one chunk, the gradient through fewer */
    o = plain_options(2, 1, 0.1);
    o.bptt_chunk = 6, o.bptt_steps = 2, o.carry_state = 1;
    CHECK_OK(train_status(m1, d1, &o));
    clipnn_model_free(mm), clipnn_model_free(m1), clipnn_model_free(mlp);
    clipnn_dataset_free(dm), clipnn_dataset_free(d1);
}

/* After the first step nothing is allocated: chunks, windows reaching back,
 * the carried state and a new stream pass each epoch. */
TEST(tbptt_steps_allocate_nothing) {
    seq_case c = {CLIPNN_LAYER_GRU, 2, 3, 5, 6, 2, 1};
    clipnn_dataset *d = random_data("alloc", &c, 8, 91);
    clipnn_model *m = seq_model(&c, c.steps, 3);
    if (!d || !m) return;
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_AGC);
    o.batch = 4, o.epochs = 3;
    o.bptt_chunk = 2, o.bptt_steps = 5, o.carry_state = 1;
    step_log log;
    log_open(&log, m, 64, 0);
    log_attach(&log, &o);
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK(r.steps == 3 * 2 * 3 && log.steps == r.steps);
    CHECK_MSG(log.allocs_last == log.allocs_first, "%llu allocations in the steps after the first",
              (unsigned long long)(log.allocs_last - log.allocs_first));
    log_close(&log);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* The tool: --bptt and --carry-state train a many-to-many model, save it
 * and resume it; bad values and a resume with other options exit 2. */
TEST(tbptt_through_the_tool) {
    enum { N = 12 };
    float x[N * 6], y[N * 6];
    random_fill(x, N * 6, 93), random_fill(y, N * 6, 94);
    char spec[2200], args[3000];
    snprintf(spec, sizeof spec, "npy:%s,%s", save_npy("tool_x.npy", x, N, 6, 1), save_npy("tool_y.npy", y, N, 6, 1));
    const char *out, *ckpt = check_tmp_path("tbptt_tool.ckpt");
    snprintf(args, sizeof args, "train --data %s --arch rnn:4-1 --every-step --bptt 2,3 --carry-state --batch 3 "
             "--steps 5 --save %s --json", spec, ckpt);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    CHECK(strstr(out, "\"bptt\":\"2,3\"") && strstr(out, "\"carry_state\":true") && strstr(out, "\"steps\":5"));
    snprintf(args, sizeof args, "train --data %s --bptt 2,3 --carry-state --batch 3 --steps 9 --resume %s --json",
             spec, ckpt);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    CHECK(strstr(out, "\"steps\":9") != NULL);
    snprintf(args, sizeof args, "train --data %s --bptt 2 --carry-state --batch 3 --steps 9 --resume %s", spec,
             ckpt);
    CHECK(check_run_tool(args, &out) == 2 && strstr(out, "--bptt 2: the run saved in"));
    snprintf(args, sizeof args, "train --data %s --arch rnn:4-1 --every-step --bptt 2,0", spec);
    CHECK(check_run_tool(args, &out) == 2 && strstr(out, "--bptt '2,0'"));
    snprintf(args, sizeof args, "train --data %s --arch rnn:4-1 --every-step --carry-state --replacement", spec);
    CHECK(check_run_tool(args, &out) == 2 && strstr(out, "--replacement"));
    CHECK(check_run_tool("train --arch lstm:8-10 --bptt 4", &out) == 2 && strstr(out, "many-to-one"));
}
