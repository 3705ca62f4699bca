/* Recurrent layers (torch.nn.RNN, LSTM, GRU with batch_first): shapes,
 * workspace layout and argument checks here; the forward, the
 * backpropagation through time and the per-example norms in
 * src/nn/recurrent_kernel.h, included once for float (the training path, on
 * CBLAS single precision) and once for double (the reference path), so the
 * two can never drift apart.
 *
 * Speed design: the input projection of all B T rows is one GEMM; each step
 * adds h_{t-1} W_hh^T with one GEMM into that step's strided gate rows and
 * then runs the gate nonlinearities and the state update in one fused pass;
 * the backward mirrors it (one GEMM per step for dh_{t-1}, then one GEMM
 * each for dW_ih, dW_hh and dx over all rows). */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "nn/fast_math.h" /* builds the rest of this file with no-trapping-math */
#include "nn/nn.h"

static const char *const cell_names[CLIPNN_CELL_COUNT] = {"rnn-tanh", "rnn-relu", "lstm", "gru"};

CLIPNN_NAME_FUNCTIONS(clipnn_cell, clipnn_cell, cell_names, CLIPNN_CELL_COUNT, "recurrent cell")

size_t clipnn_cell_gates(clipnn_cell cell) {
    switch (cell) {
    case CLIPNN_CELL_RNN_TANH:
    case CLIPNN_CELL_RNN_RELU: return 1;
    case CLIPNN_CELL_LSTM: return 4;
    case CLIPNN_CELL_GRU: return 3;
    default: return 0;
    }
}

clipnn_status clipnn_rec_param_layout(clipnn_cell cell, size_t in, size_t hidden, clipnn_rec_params *out) {
    size_t G = clipnn_cell_gates(cell), gh, two_gh, w_ih, w_hh, both;
    if (!out || G == 0 || in == 0 || hidden == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: bad cell %d or zero size (in %zu, hidden %zu)",
                           (int)cell, in, hidden);
    if (clipnn_mul_size(G, hidden, &gh) || clipnn_mul_size(gh, in, &w_ih) || clipnn_mul_size(gh, hidden, &w_hh) ||
        clipnn_mul_size(gh, 2, &two_gh) || clipnn_add_size(w_ih, w_hh, &both) ||
        clipnn_add_size(both, two_gh, &out->total))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "recurrent layer: %zu x %zu parameters overflow", in, hidden);
    out->w_ih = 0;
    out->w_hh = w_ih;
    out->b_ih = both;
    out->b_hh = both + gh;
    return CLIPNN_OK;
}

/* Where the forward's caches and the backward's carries live in the
 * workspace (element offsets), and the layer's parameter offsets. */
typedef struct {
    size_t G, gh;     /* gates per cell, G * hidden */
    size_t gates;     /* [B][T][G h]: activated gates (RNN: h_t); the backward overwrites them with dG */
    size_t hprev;     /* [B][T][h]: h_{t-1} of every row, h0 in step 0 */
    size_t state;     /* [B][T][h]: LSTM c_t; GRU W_hn h_{t-1} + b_hn (then its gradient); none for RNN */
    size_t c0;        /* [B][h]: LSTM c_{-1} */
    size_t carry_h;   /* [B][h]: d loss / d h_t carried back one step */
    size_t carry_c;   /* [B][h]: LSTM d loss / d c_t */
    size_t total;
    clipnn_rec_params p;
} rec_layout;

static int fits_int(size_t n) { return n <= (size_t)INT_MAX; }

/* Offsets for shape s; fails on a bad shape or a size that overflows (or
 * that a BLAS int cannot hold: B T rows, T G h leading dimensions, in). */
static clipnn_status rec_layout_of(const clipnn_rec_shape *s, rec_layout *L) {
    if (!s) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: NULL shape");
    clipnn_status st = clipnn_rec_param_layout(s->cell, s->in, s->hidden, &L->p);
    if (st != CLIPNN_OK) return st;
    if (s->batch == 0 || s->steps == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: empty chunk (batch %zu, steps %zu)", s->batch,
                           s->steps);
    size_t B = s->batch, T = s->steps, h = s->hidden, rows, row_gates, gates, seq, state_rows, bh;
    L->G = clipnn_cell_gates(s->cell);
    L->gh = L->G * h; /* checked by the parameter layout */
    if (clipnn_mul_size(B, T, &rows) || clipnn_mul_size(T, L->gh, &row_gates) ||
        clipnn_mul_size(rows, L->gh, &gates) || clipnn_mul_size(rows, h, &seq) || clipnn_mul_size(B, h, &bh) ||
        !fits_int(rows) || !fits_int(row_gates) || !fits_int(s->in))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "recurrent layer: %zu x %zu steps of %zu x %zu too large", B, T,
                           s->in, h);
    state_rows = s->cell == CLIPNN_CELL_LSTM || s->cell == CLIPNN_CELL_GRU ? seq : 0;
    size_t sizes[6] = {gates, seq, state_rows, s->cell == CLIPNN_CELL_LSTM ? bh : 0, bh,
                       s->cell == CLIPNN_CELL_LSTM ? bh : 0};
    size_t *offsets[6] = {&L->gates, &L->hprev, &L->state, &L->c0, &L->carry_h, &L->carry_c};
    size_t at = 0;
    for (int i = 0; i < 6; i++) {
        *offsets[i] = at;
        if (clipnn_add_size(at, sizes[i], &at))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "recurrent layer: workspace size overflows");
    }
    L->total = at;
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_workspace_size(const clipnn_rec_shape *s, size_t *elements) {
    rec_layout L;
    clipnn_status st = rec_layout_of(s, &L);
    if (st == CLIPNN_OK && elements) *elements = L.total;
    return st;
}

/* The per-example norm of a weight shared by T rows takes Gram matrices
 * [T][T] of the inputs and of the gradients, or one materialised gradient
 * [nd][na]: whichever is cheaper, so room for both. */
clipnn_status clipnn_shared_norm_scratch_size(size_t steps, size_t na, size_t nd, size_t *elements) {
    size_t gram, grad;
    if (clipnn_mul_size(steps, steps, &gram) || clipnn_mul_size(gram, 2, &gram) || clipnn_mul_size(nd, na, &grad) ||
        !fits_int(steps) || !fits_int(na) || !fits_int(nd))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "per-example norms: scratch size overflows (%zu rows of %zu x %zu)",
                           steps, nd, na);
    if (elements) *elements = gram > grad ? gram : grad;
    return CLIPNN_OK;
}

/* The layer's widest shared weight: [G h][max(in, h)]. */
clipnn_status clipnn_rec_norm_scratch_size(const clipnn_rec_shape *s, size_t *elements) {
    rec_layout L;
    clipnn_status st = rec_layout_of(s, &L);
    if (st != CLIPNN_OK) return st;
    return clipnn_shared_norm_scratch_size(s->steps, s->in > s->hidden ? s->in : s->hidden, L.gh, elements);
}

/* The checks every kernel entry makes before touching memory. */
static clipnn_status rec_check(const clipnn_rec_shape *s, const void *params, const void *x, size_t x_stride,
                               const void *work, rec_layout *L) {
    clipnn_status st = rec_layout_of(s, L);
    if (st != CLIPNN_OK) return st;
    if (!params || !x || !work) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: NULL argument");
    if (x_stride < s->in || !fits_int(x_stride))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: input row stride %zu (in %zu)", x_stride, s->in);
    return CLIPNN_OK;
}

/* ------------------------------------------------ per-precision helpers */

/* C[M][N] = op(A)[M][K] op(B)[K][N] + beta C, row-major, op = transpose when
 * the flag is set. A single row goes through GEMV, which skips the packing
 * a GEMM does for nothing (a batch of one sequence, T = 1). */
static void gemm_float(int ta, int tb, size_t M, size_t N, size_t K, const float *A, size_t lda, const float *B,
                       size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 1)
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)(tb ? N : K), (int)(tb ? K : N), 1.0f, B,
                    (int)ldb, A, ta ? (int)lda : 1, beta, C, 1);
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static void gemm_double(int ta, int tb, size_t M, size_t N, size_t K, const double *A, size_t lda,
                        const double *B, size_t ldb, double beta, double *C, size_t ldc) {
    if (M == 1)
        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)(tb ? N : K), (int)(tb ? K : N), 1.0, B,
                    (int)ldb, A, ta ? (int)lda : 1, beta, C, 1);
    else
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static inline float tanh_float(float x) { return clipnn_tanhf_fast(x); }
static inline float sigmoid_float(float x) { return clipnn_sigmoidf_fast(x); }
static inline double tanh_double(double x) { return tanh(x); }
static inline double sigmoid_double(double x) {
    /* Two branches so that exp never overflows. */
    if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* The narrowest share of hidden units worth a thread of its own. */
#define REC_UNITS_PER_THREAD 64

/* A thread of the team that runs a kernel: thread t of T and their barrier
 * (T = 1: one thread; the barrier is then never touched). */
typedef struct {
    int t, T;
    clipnn_barrier *bar;
} rec_team;

static const rec_team solo_team = {0, 1, NULL};

static void team_sync(const rec_team *tm) { clipnn_barrier_wait(tm->bar, tm->T); }

/* K_(name): name_float or name_double, the kernel body's names. */
#define K_CAT2(a, b) a##_##b
#define K_CAT(a, b) K_CAT2(a, b)
#define K_(name) K_CAT(name, REAL)

#define REAL float
#include "nn/recurrent_kernel.h"
#undef REAL

#define REAL double
#include "nn/recurrent_kernel.h"
#undef REAL

/* ------------------------------------------------------------ entries */

/* Threads for the float kernels: one per 64 hidden units at most (a
 * thread's step GEMMs are G column slices of its units; with 32 units a
 * thread, an LSTM of 64 at batch 32 and 128 ran within 8% of one thread
 * and an RNN of 64 at batch 128 slower, 32.4k against 38.4k samples/s,
 * where 128 to 256 units gain 1.4-1.6x), and only when a step's recurrent
 * product (B x G h x h multiply-adds) reaches twice the model passes'
 * threshold, else one. Each step ends with a barrier: at 2^17
 * multiply-adds a step's product takes ~2 us on one core, the order of a
 * barrier, and a thread preempted by another process stalls the other for
 * a scheduler slice (an RNN of 64 units at batch 32 fell from 36.7k to
 * 2.4k samples/s when another job held a core). */
static int rec_threads(const clipnn_rec_shape *s, const rec_layout *L) {
    int n = clipnn_get_threads();
    if (clipnn_parallel_macs == 0) return n; /* the tests' setting: split at any size */
    if (s->batch * L->gh * s->hidden < 2 * clipnn_parallel_macs) return 1;
    size_t wide = s->hidden / REC_UNITS_PER_THREAD;
    return wide >= (size_t)n ? n : wide > 1 ? (int)wide : 1;
}

clipnn_status clipnn_rec_forward(const clipnn_rec_shape *s, const float *params, const float *x, size_t x_stride,
                                 const float *h0, const float *c0, float *H, float *hT, float *cT, float *work) {
    rec_layout L;
    clipnn_status st = rec_check(s, params, x, x_stride, work, &L);
    if (st != CLIPNN_OK) return st;
    if (!H) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent forward: NULL output");
    int threads = rec_threads(s, &L);
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        rec_team tm = {clipnn_thread_id(), clipnn_thread_count(), &bar};
        forward_float(s, &L, params, x, x_stride, h0, c0, H, hT, cT, work, &tm);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_forward_d(const clipnn_rec_shape *s, const double *params, const double *x, size_t x_stride,
                                   const double *h0, const double *c0, double *H, double *hT, double *cT,
                                   double *work) {
    rec_layout L;
    clipnn_status st = rec_check(s, params, x, x_stride, work, &L);
    if (st != CLIPNN_OK) return st;
    if (!H) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent forward: NULL output");
    forward_double(s, &L, params, x, x_stride, h0, c0, H, hT, cT, work, &solo_team);
    return CLIPNN_OK;
}

static clipnn_status backward_check(const clipnn_rec_shape *s, const void *params, const void *x, size_t x_stride,
                                    size_t last_steps, const void *work, rec_layout *L) {
    clipnn_status st = rec_check(s, params, x, x_stride, work, L);
    if (st != CLIPNN_OK) return st;
    if (last_steps > s->steps)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent backward: %zu steps back in a chunk of %zu", last_steps,
                           s->steps);
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_backward_trace(const clipnn_rec_shape *s, const float *params, const float *x,
                                        size_t x_stride, const float *dH, const float *dhT, const float *dcT,
                                        size_t last_steps, float *grad, float *dx, float *dh0, float *dc0,
                                        float *work, float *trace) {
    rec_layout L;
    clipnn_status st = backward_check(s, params, x, x_stride, last_steps, work, &L);
    if (st != CLIPNN_OK) return st;
    int threads = rec_threads(s, &L);
    clipnn_barrier bar = {0, 0};
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        rec_team tm = {clipnn_thread_id(), clipnn_thread_count(), &bar};
        backward_float(s, &L, params, x, x_stride, dH, dhT, dcT, last_steps, grad, dx, dh0, dc0, work, trace, &tm);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_backward(const clipnn_rec_shape *s, const float *params, const float *x, size_t x_stride,
                                  const float *dH, const float *dhT, const float *dcT, size_t last_steps,
                                  float *grad, float *dx, float *dh0, float *dc0, float *work) {
    return clipnn_rec_backward_trace(s, params, x, x_stride, dH, dhT, dcT, last_steps, grad, dx, dh0, dc0, work,
                                     NULL);
}

clipnn_status clipnn_rec_backward_trace_d(const clipnn_rec_shape *s, const double *params, const double *x,
                                          size_t x_stride, const double *dH, const double *dhT, const double *dcT,
                                          size_t last_steps, double *grad, double *dx, double *dh0, double *dc0,
                                          double *work, double *trace) {
    rec_layout L;
    clipnn_status st = backward_check(s, params, x, x_stride, last_steps, work, &L);
    if (st != CLIPNN_OK) return st;
    backward_double(s, &L, params, x, x_stride, dH, dhT, dcT, last_steps, grad, dx, dh0, dc0, work, trace,
                    &solo_team);
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_backward_d(const clipnn_rec_shape *s, const double *params, const double *x,
                                    size_t x_stride, const double *dH, const double *dhT, const double *dcT,
                                    size_t last_steps, double *grad, double *dx, double *dh0, double *dc0,
                                    double *work) {
    return clipnn_rec_backward_trace_d(s, params, x, x_stride, dH, dhT, dcT, last_steps, grad, dx, dh0, dc0, work,
                                       NULL);
}

/* h_t is row t - 1 of H; the LSTM's c_t is the state row the forward
 * kept for its backward, which only reads it. */
clipnn_status clipnn_rec_state_after(const clipnn_rec_shape *s, const float *H, const float *work, size_t t, float *h,
                                     float *c) {
    rec_layout L;
    clipnn_status st = rec_layout_of(s, &L);
    if (st != CLIPNN_OK) return st;
    if (!H || !work || !h || t == 0 || t > s->steps)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent state: step %zu of %zu, or a NULL argument", t,
                           s->steps);
    size_t T = s->steps, n = s->hidden;
    for (size_t b = 0; b < s->batch; b++) {
        size_t row = (b * T + t - 1) * n;
        memcpy(h + b * n, H + row, n * sizeof *h);
        if (c && s->cell == CLIPNN_CELL_LSTM) memcpy(c + b * n, work + L.state + row, n * sizeof *c);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_example_sqnorms(const clipnn_rec_shape *s, const float *x, size_t x_stride,
                                         const float *work, float *scratch, double *sqnorms) {
    rec_layout L;
    clipnn_status st = rec_check(s, x, x, x_stride, work, &L);
    if (st != CLIPNN_OK) return st;
    if (!scratch || !sqnorms) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent norms: NULL argument");
    example_sqnorms_float(s, &L, x, x_stride, work, scratch, sqnorms);
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_example_sqnorms_d(const clipnn_rec_shape *s, const double *x, size_t x_stride,
                                           const double *work, double *scratch, double *sqnorms) {
    rec_layout L;
    clipnn_status st = rec_check(s, x, x, x_stride, work, &L);
    if (st != CLIPNN_OK) return st;
    if (!scratch || !sqnorms) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent norms: NULL argument");
    example_sqnorms_double(s, &L, x, x_stride, work, scratch, sqnorms);
    return CLIPNN_OK;
}

/* A dense layer applied to T rows of one example (contiguous a [T][na], d
 * [T][nd]): the same two shared-weight sums as a recurrent layer's. */
double clipnn_shared_dense_sqnorm(size_t steps, const float *a, size_t na, const float *d, size_t nd,
                                  float *scratch) {
    return shared_weight_sqnorm_float(steps, a, na, na, d, nd, nd, NULL, 0, 0, scratch) +
           shared_bias_sqnorm_float(steps, d, nd, nd, scratch);
}

/* Every row of example b that the parameter gradients are formed from is
 * linear in that example's d loss / d H: the gate gradients dG (all cells)
 * and GRU's hidden gradient of n in the state rows (LSTM's state rows hold
 * c_t, a value of the forward, and stay). */
clipnn_status clipnn_rec_scale_examples(const clipnn_rec_shape *s, const double *factor, float *work) {
    rec_layout L;
    clipnn_status st = rec_layout_of(s, &L);
    if (st != CLIPNN_OK) return st;
    if (!factor || !work) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: NULL argument");
    size_t T = s->steps, h = s->hidden;
    for (size_t b = 0; b < s->batch; b++) {
        float f = (float)factor[b];
        if (f == 1.0f) continue;
        clipnn_scale(work + L.gates + b * T * L.gh, T * L.gh, f);
        if (s->cell == CLIPNN_CELL_GRU) clipnn_scale(work + L.state + b * T * h, T * h, f);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_rec_param_grads(const clipnn_rec_shape *s, const float *x, size_t x_stride, const float *work,
                                     float *grad) {
    rec_layout L;
    clipnn_status st = rec_check(s, x, x, x_stride, work, &L);
    if (st != CLIPNN_OK) return st;
    if (!grad) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "recurrent layer: NULL gradient");
    int threads = rec_threads(s, &L);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        rec_team tm = {clipnn_thread_id(), clipnn_thread_count(), NULL}; /* no barrier inside: rows of dW */
        weight_grads_float(s, &L, x, x_stride, grad, work, &tm);
    }
    return CLIPNN_OK;
}
