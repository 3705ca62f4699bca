/* Recurrent kernel body, included twice by src/nn/recurrent.c: once with
 * REAL = float (the training path) and once with REAL = double (the
 * reference path), so that the gate formulas, the state updates and their
 * derivatives exist once. Expects REAL, the naming macro K_ and, for REAL,
 * K_(gemm), K_(tanh), K_(sigmoid), and rec_layout, rec_team, team_sync.
 *
 * Rows are batch-major: row (b, t) of x, H, the gates and h_{t-1} is row
 * b T + t, so one step's rows are B rows T apart and the whole chunk is one
 * matrix of B T rows for the GEMMs that do not depend on the recurrence.
 *
 * Threads: the forward and the backward run on every thread of a team
 * (one thread for the double path). Each thread owns the same hidden units
 * [lo, hi) in every gate block: it forms their gate pre-activations, their
 * cell update, and backward their gate gradients and their share of
 * d loss / d h_{t-1}, so one barrier per step suffices (the next step's
 * product reads every unit). The GEMMs over all B T rows are split by rows
 * (their own rows of the gates, of dx, of dW). Every split is at fixed
 * boundaries: the result depends on the number of threads only. */

/* ------------------------------------------------------------ forward */

/* The thread's share of the gate rows: gates[r] = b_ih + b_hh + x_r W_ih^T
 * for rows r of all B T. GRU's b_hn stays out of the n block: it goes
 * inside r (W_hn h + b_hn). */
static void K_(project_inputs)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                               size_t x_stride, REAL *gates, const rec_team *tm) {
    size_t gh = L->gh, r0, r1;
    clipnn_chunk(s->batch * s->steps, tm->t, tm->T, &r0, &r1);
    if (r1 <= r0) return;
    size_t both = s->cell == CLIPNN_CELL_GRU ? 2 * s->hidden : gh;
    const REAL *b_ih = P + L->p.b_ih, *b_hh = P + L->p.b_hh;
    REAL *g0 = gates + r0 * gh;
    for (size_t j = 0; j < gh; j++) g0[j] = j < both ? b_ih[j] + b_hh[j] : b_ih[j];
    for (size_t r = r0 + 1; r < r1; r++) memcpy(gates + r * gh, g0, gh * sizeof *gates);
    K_(gemm)(0, 1, r1 - r0, gh, s->in, x + r0 * x_stride, x_stride, P + L->p.w_ih, s->in, 1, g0, gh);
}

/* Step t's recurrent term for units [lo, hi) of every gate block: gate
 * rows of step t += h_{t-1} W_hh^T; GRU's n block goes to its own rows
 * (state) since r multiplies it. All units at once (one thread): one
 * product over the gate blocks, which are contiguous rows of W_hh. */
static void K_(step_hidden)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t, REAL *work,
                            size_t lo, size_t hi) {
    size_t B = s->batch, T = s->steps, h = s->hidden, gh = L->gh, n = hi - lo;
    int gru = s->cell == CLIPNN_CELL_GRU;
    size_t blocks = gru ? 2 : L->G; /* the gate blocks that go into the gate rows */
    const REAL *W_hh = P + L->p.w_hh, *hp = work + L->hprev + t * h;
    REAL *g = work + L->gates + t * gh;
    if (n == h) K_(gemm)(0, 1, B, blocks * h, h, hp, T * h, W_hh, h, 1, g, T * gh);
    else
        for (size_t k = 0; k < blocks; k++)
            K_(gemm)(0, 1, B, n, h, hp, T * h, W_hh + (k * h + lo) * h, h, 1, g + k * h + lo, T * gh);
    if (gru) K_(gemm)(0, 1, B, n, h, hp, T * h, W_hh + (2 * h + lo) * h, h, 0, work + L->state + t * h + lo, T * h);
}

/* One row of one step for n units whose gate blocks are h apart:
 * pre-activations in g become the activated gates (RNN: h_t itself), h_t
 * goes to out. */
static void K_(rnn_row)(int relu, REAL *restrict g, REAL *restrict out, size_t n) {
    if (relu) {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = g[j] > 0 ? g[j] : 0;
    } else {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = K_(tanh)(g[j]);
    }
    memcpy(out, g, n * sizeof *out);
}

static void K_(lstm_row)(REAL *restrict g, const REAL *restrict c_prev, REAL *restrict c, REAL *restrict out,
                         size_t h, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        REAL i = K_(sigmoid)(g[j]), f = K_(sigmoid)(g[h + j]);
        REAL gg = K_(tanh)(g[2 * h + j]), o = K_(sigmoid)(g[3 * h + j]);
        REAL cv = f * c_prev[j] + i * gg;
        g[j] = i, g[h + j] = f, g[2 * h + j] = gg, g[3 * h + j] = o;
        c[j] = cv;
        out[j] = o * K_(tanh)(cv);
    }
}

/* hn: W_hn h_{t-1} on entry, + b_hn on exit (the backward needs it). */
static void K_(gru_row)(REAL *restrict g, REAL *restrict hn, const REAL *restrict b_hn, const REAL *restrict h_prev,
                        REAL *restrict out, size_t h, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        REAL r = K_(sigmoid)(g[j]), z = K_(sigmoid)(g[h + j]);
        REAL hv = hn[j] + b_hn[j];
        REAL nv = K_(tanh)(g[2 * h + j] + r * hv);
        g[j] = r, g[h + j] = z, g[2 * h + j] = nv;
        hn[j] = hv;
        out[j] = (1 - z) * nv + z * h_prev[j];
    }
}

/* The fused pass of step t over the B rows, units [lo, hi); h_t also
 * becomes the h_{t-1} of row (b, t + 1). */
static void K_(step_cells)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t, REAL *H,
                           REAL *work, size_t lo, size_t hi) {
    size_t T = s->steps, h = s->hidden, gh = L->gh, n = hi - lo;
    for (size_t b = 0; b < s->batch; b++) {
        size_t row = b * T + t;
        REAL *g = work + L->gates + row * gh + lo, *out = H + row * h + lo;
        switch (s->cell) {
        case CLIPNN_CELL_RNN_TANH:
        case CLIPNN_CELL_RNN_RELU: K_(rnn_row)(s->cell == CLIPNN_CELL_RNN_RELU, g, out, n); break;
        case CLIPNN_CELL_LSTM: {
            REAL *c = work + L->state + row * h + lo;
            K_(lstm_row)(g, t ? c - h : work + L->c0 + b * h + lo, c, out, h, n);
            break;
        }
        case CLIPNN_CELL_GRU:
            K_(gru_row)(g, work + L->state + row * h + lo, P + L->p.b_hh + 2 * h + lo, work + L->hprev + row * h + lo,
                        out, h, n);
            break;
        default: break;
        }
        if (t + 1 < T) memcpy(work + L->hprev + (row + 1) * h + lo, out, n * sizeof *out);
    }
}

/* Units [lo, hi) of the B rows of dst (row stride ld) = those of the B
 * rows of src (row stride src_ld), or zeros when src is NULL. */
static void K_(copy_units)(REAL *dst, size_t ld, const REAL *src, size_t src_ld, size_t B, size_t lo, size_t hi) {
    for (size_t b = 0; b < B && hi > lo; b++) {
        if (src) memcpy(dst + b * ld + lo, src + b * src_ld + lo, (hi - lo) * sizeof *dst);
        else memset(dst + b * ld + lo, 0, (hi - lo) * sizeof *dst);
    }
}

static void K_(forward)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                        size_t x_stride, const REAL *h0, const REAL *c0, REAL *H, REAL *hT, REAL *cT, REAL *work,
                        const rec_team *tm) {
    size_t B = s->batch, T = s->steps, h = s->hidden, lo, hi;
    clipnn_chunk(h, tm->t, tm->T, &lo, &hi);
    K_(copy_units)(work + L->hprev, T * h, h0, h, B, lo, hi);
    if (s->cell == CLIPNN_CELL_LSTM) K_(copy_units)(work + L->c0, h, c0, h, B, lo, hi);
    K_(project_inputs)(s, L, P, x, x_stride, work + L->gates, tm);
    team_sync(tm); /* every gate row and h_{-1} is there */
    for (size_t t = 0; t < T; t++) {
        if (hi > lo) {
            K_(step_hidden)(s, L, P, t, work, lo, hi);
            K_(step_cells)(s, L, P, t, H, work, lo, hi);
        }
        if (t + 1 < T) team_sync(tm); /* the next step reads every unit of h_t */
    }
    if (hT) K_(copy_units)(hT, h, H + (T - 1) * h, T * h, B, lo, hi);
    if (cT && s->cell == CLIPNN_CELL_LSTM) K_(copy_units)(cT, h, work + L->state + (T - 1) * h, T * h, B, lo, hi);
}

/* ----------------------------------------------------------- backward */

/* One row of one step backward for n units whose gate blocks are h apart.
 * dh: d loss / d h_t on entry; g: the activated gates on entry,
 * d loss / d (gate pre-activations) on exit. */
static void K_(rnn_row_back)(int relu, REAL *restrict g, const REAL *restrict dh, size_t n) {
    if (relu) {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = g[j] > 0 ? dh[j] : 0;
    } else {
#pragma omp simd
        for (size_t j = 0; j < n; j++) g[j] = dh[j] * (1 - g[j] * g[j]);
    }
}

/* dc: d loss / d c_t carried from step t + 1 on entry, d loss / d c_{t-1}
 * on exit. tanh(c_t) is recomputed (the same function as the forward, so
 * the same value). */
static void K_(lstm_row_back)(REAL *restrict g, const REAL *restrict c_prev, const REAL *restrict c,
                              const REAL *restrict dh, REAL *restrict dc, size_t h, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        REAL i = g[j], f = g[h + j], gg = g[2 * h + j], o = g[3 * h + j];
        REAL tc = K_(tanh)(c[j]);
        REAL dcv = dc[j] + dh[j] * o * (1 - tc * tc);
        g[j] = dcv * gg * i * (1 - i);
        g[h + j] = dcv * c_prev[j] * f * (1 - f);
        g[2 * h + j] = dcv * i * (1 - gg * gg);
        g[3 * h + j] = dh[j] * tc * o * (1 - o);
        dc[j] = dcv * f;
    }
}

/* hn: W_hn h_{t-1} + b_hn on entry, the gradient of that hidden part of n
 * (r dn) on exit; dh: d loss / d h_t on entry, its direct share of
 * d loss / d h_{t-1} (z dh) on exit (the GEMM with W_hh adds the rest). */
static void K_(gru_row_back)(REAL *restrict g, REAL *restrict hn, const REAL *restrict h_prev, REAL *restrict dh,
                             size_t h, size_t n) {
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        REAL r = g[j], z = g[h + j], nv = g[2 * h + j], d = dh[j];
        REAL dn = d * (1 - z) * (1 - nv * nv);
        g[j] = dn * hn[j] * r * (1 - r);
        g[h + j] = d * (h_prev[j] - nv) * z * (1 - z);
        g[2 * h + j] = dn;
        hn[j] = dn * r;
        dh[j] = d * z;
    }
}

/* The fused pass of step t backward over the B rows, units [lo, hi):
 * carry_h += dH of the step (then the whole d loss / d h_t, copied into
 * trace [B][T][h] when it is not NULL), then the gate gradients of the
 * cell. */
static void K_(step_cells_back)(const clipnn_rec_shape *s, const rec_layout *L, size_t t, const REAL *dH,
                                REAL *work, REAL *trace, size_t lo, size_t hi) {
    size_t T = s->steps, h = s->hidden, gh = L->gh, n = hi - lo;
    for (size_t b = 0; b < s->batch; b++) {
        size_t row = b * T + t;
        REAL *g = work + L->gates + row * gh + lo, *dh = work + L->carry_h + b * h + lo;
        if (dH)
            for (size_t j = 0; j < n; j++) dh[j] += dH[row * h + lo + j];
        if (trace) memcpy(trace + row * h + lo, dh, n * sizeof *dh);
        switch (s->cell) {
        case CLIPNN_CELL_RNN_TANH:
        case CLIPNN_CELL_RNN_RELU: K_(rnn_row_back)(s->cell == CLIPNN_CELL_RNN_RELU, g, dh, n); break;
        case CLIPNN_CELL_LSTM: {
            const REAL *c = work + L->state + row * h + lo;
            K_(lstm_row_back)(g, t ? c - h : work + L->c0 + b * h + lo, c, dh, work + L->carry_c + b * h + lo, h, n);
            break;
        }
        case CLIPNN_CELL_GRU:
            K_(gru_row_back)(g, work + L->state + row * h + lo, work + L->hprev + row * h + lo, dh, h, n);
            break;
        default: break;
        }
    }
}

/* Units [lo, hi) of carry_h = d loss / d h_{t-1} = dG_t W_hh (GRU: + the
 * z dh already there; its n block through the hidden part's gradient).
 * Reads every unit's dG_t. */
static void K_(step_hidden_back)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t,
                                 REAL *work, size_t lo, size_t hi) {
    size_t B = s->batch, T = s->steps, h = s->hidden, gh = L->gh, n = hi - lo;
    const REAL *W_hh = P + L->p.w_hh + lo, *dg = work + L->gates + t * gh;
    REAL *dh = work + L->carry_h + lo;
    if (s->cell == CLIPNN_CELL_GRU) {
        K_(gemm)(0, 0, B, n, 2 * h, dg, T * gh, W_hh, h, 1, dh, h);
        K_(gemm)(0, 0, B, n, h, work + L->state + t * h, T * h, W_hh + 2 * h * h, h, 1, dh, h);
    } else {
        K_(gemm)(0, 0, B, n, gh, dg, T * gh, W_hh, h, 0, dh, h);
    }
}

/* acc[n] += the sum of rows[R][n] (row stride ld). */
static void K_(add_column_sums)(REAL *acc, const REAL *rows, size_t R, size_t ld, size_t n) {
    for (size_t r = 0; r < R; r++) {
        const REAL *restrict row = rows + r * ld;
        REAL *restrict a = acc;
#pragma omp simd
        for (size_t j = 0; j < n; j++) a[j] += row[j];
    }
}

/* Rows [r0, r1) of dW += d^T A over all B T rows (d: [B T][.] at stride ld,
 * its column r0 first; A: [B T][na] at stride lda) and of the bias += the
 * column sums of d. */
static void K_(grad_rows)(REAL *dW, REAL *db, size_t r0, size_t r1, const REAL *d, size_t ld, const REAL *A,
                          size_t lda, size_t na, size_t rows) {
    if (r1 <= r0) return;
    K_(gemm)(1, 0, r1 - r0, na, rows, d, ld, A, lda, 1, dW + r0 * na, na);
    K_(add_column_sums)(db + r0, d, rows, ld, r1 - r0);
}

/* The thread's rows [r0, r1) of dW_ih += dG^T X, dW_hh += dG_hh^T H_prev
 * and of the biases (column sums), each over all B T rows; GRU's hidden
 * gradient differs from dG in the n block (rows 2h..3h), which is in the
 * state rows. */
static void K_(weight_grads)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *x, size_t x_stride,
                             REAL *grad, const REAL *work, const rec_team *tm) {
    size_t rows = s->batch * s->steps, h = s->hidden, gh = L->gh, r0, r1;
    clipnn_chunk(gh, tm->t, tm->T, &r0, &r1);
    const REAL *dg = work + L->gates, *hp = work + L->hprev;
    REAL *dW_hh = grad + L->p.w_hh, *db_hh = grad + L->p.b_hh;
    K_(grad_rows)(grad + L->p.w_ih, grad + L->p.b_ih, r0, r1, dg + r0, gh, x, x_stride, s->in, rows);
    size_t split = s->cell == CLIPNN_CELL_GRU ? 2 * h : gh; /* rows from dG below it, from the state rows above */
    size_t a1 = r1 < split ? r1 : split, b0 = r0 > split ? r0 : split;
    K_(grad_rows)(dW_hh, db_hh, r0, a1, dg + r0, gh, hp, h, h, rows);
    if (r1 > b0) K_(grad_rows)(dW_hh, db_hh, b0, r1, work + L->state + (b0 - split), h, hp, h, h, rows);
}

/* Truncation: the rows of steps before `first` carry no gradient (the
 * thread's sequences). */
static void K_(zero_early_steps)(const clipnn_rec_shape *s, const rec_layout *L, size_t first, REAL *work,
                                 const rec_team *tm) {
    size_t T = s->steps, h = s->hidden, gh = L->gh, b0, b1;
    clipnn_chunk(s->batch, tm->t, tm->T, &b0, &b1);
    for (size_t b = b0; b < b1 && first > 0; b++) {
        memset(work + L->gates + b * T * gh, 0, first * gh * sizeof *work);
        if (s->cell == CLIPNN_CELL_GRU) memset(work + L->state + b * T * h, 0, first * h * sizeof *work);
    }
}

/* The thread's rows of dx = dG W_ih. */
static void K_(input_grads)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, REAL *dx,
                            const REAL *work, const rec_team *tm) {
    size_t gh = L->gh, r0, r1;
    clipnn_chunk(s->batch * s->steps, tm->t, tm->T, &r0, &r1);
    if (r1 > r0)
        K_(gemm)(0, 0, r1 - r0, s->in, gh, work + L->gates + r0 * gh, gh, P + L->p.w_ih, s->in, 0, dx + r0 * s->in,
                 s->in);
}

/* The thread's units of the trace's rows of steps before `first`, which
 * the truncated backward never reaches: zero, as their gradient is. */
static void K_(zero_trace_head)(const clipnn_rec_shape *s, size_t first, REAL *trace, size_t lo, size_t hi) {
    size_t T = s->steps, h = s->hidden;
    for (size_t b = 0; b < s->batch && hi > lo; b++)
        for (size_t t = 0; t < first; t++) memset(trace + (b * T + t) * h + lo, 0, (hi - lo) * sizeof *trace);
}

static void K_(backward)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                         size_t x_stride, const REAL *dH, const REAL *dhT, const REAL *dcT, size_t last_steps,
                         REAL *grad, REAL *dx, REAL *dh0, REAL *dc0, REAL *work, REAL *trace, const rec_team *tm) {
    size_t B = s->batch, T = s->steps, h = s->hidden, lo, hi;
    size_t first = last_steps ? T - last_steps : 0;
    int lstm = s->cell == CLIPNN_CELL_LSTM;
    clipnn_chunk(h, tm->t, tm->T, &lo, &hi);
    K_(copy_units)(work + L->carry_h, h, dhT, h, B, lo, hi);
    if (lstm) K_(copy_units)(work + L->carry_c, h, dcT, h, B, lo, hi);
    if (trace) K_(zero_trace_head)(s, first, trace, lo, hi);
    for (size_t t = T; t-- > first;) {
        if (hi > lo) K_(step_cells_back)(s, L, t, dH, work, trace, lo, hi);
        if (t > first || (first == 0 && dh0)) {
            team_sync(tm); /* the product reads every unit's dG_t */
            if (hi > lo) K_(step_hidden_back)(s, L, P, t, work, lo, hi);
        }
    }
    team_sync(tm); /* every dG is there */
    if (first > 0) {
        K_(zero_early_steps)(s, L, first, work, tm);
        team_sync(tm);
    }
    if (grad) K_(weight_grads)(s, L, x, x_stride, grad, work, tm);
    if (dx) K_(input_grads)(s, L, P, dx, work, tm);
    if (dh0) K_(copy_units)(dh0, h, first ? NULL : work + L->carry_h, h, B, lo, hi);
    if (dc0 && lstm) K_(copy_units)(dc0, h, first ? NULL : work + L->carry_c, h, B, lo, hi);
}

/* ------------------------------------------------- per-example norms */

/* sum_i a_i b_i in double (a vectorised reduction). */
static double K_(dot_acc)(const REAL *a, const REAL *b, size_t n) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += (double)a[i] * (double)b[i];
    return acc;
}

/* ||sum_t [d1_t; d2_t] a_t^T||_F^2 for one example's T rows (a: [na] at
 * stride lda; d1: [n1] at ld1; d2: [n2] at ld2, absent when n2 = 0), in
 * double. Ghost form sum_{t,s} (a_t . a_s)(d_t . d_s) from two Gram
 * matrices, T^2 (na + nd) multiply-adds, when that is cheaper than forming
 * the gradient, T nd na. */
static double K_(shared_weight_sqnorm)(size_t T, const REAL *a, size_t lda, size_t na, const REAL *d1, size_t ld1,
                                       size_t n1, const REAL *d2, size_t ld2, size_t n2, REAL *scratch) {
    size_t nd = n1 + n2;
    if (T * (na + nd) < nd * na) {
        REAL *ga = scratch, *gd = scratch + T * T;
        K_(gemm)(0, 1, T, T, na, a, lda, a, lda, 0, ga, T);
        K_(gemm)(0, 1, T, T, n1, d1, ld1, d1, ld1, 0, gd, T);
        if (n2) K_(gemm)(0, 1, T, T, n2, d2, ld2, d2, ld2, 1, gd, T);
        return K_(dot_acc)(ga, gd, T * T);
    }
    K_(gemm)(1, 0, n1, na, T, d1, ld1, a, lda, 0, scratch, na);
    if (n2) K_(gemm)(1, 0, n2, na, T, d2, ld2, a, lda, 0, scratch + n1 * na, na);
    return K_(dot_acc)(scratch, scratch, nd * na);
}

/* ||sum_t d_t||^2 for one example's T rows d ([n] at stride ld): the sum
 * row by row into scratch ([n]), as the bias gradient of the backward. */
static double K_(shared_bias_sqnorm)(size_t T, const REAL *d, size_t ld, size_t n, REAL *scratch) {
    memset(scratch, 0, n * sizeof *scratch);
    K_(add_column_sums)(scratch, d, T, ld, n);
    return K_(dot_acc)(scratch, scratch, n);
}

static void K_(example_sqnorms)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *x, size_t x_stride,
                                const REAL *work, REAL *scratch, double *sqnorms) {
    size_t T = s->steps, h = s->hidden, gh = L->gh;
    int gru = s->cell == CLIPNN_CELL_GRU;
    size_t n1 = gru ? 2 * h : gh, n2 = gru ? h : 0; /* GRU: the hidden gradient's n block is in state */
    for (size_t b = 0; b < s->batch; b++) {
        const REAL *xb = x + b * T * x_stride, *dg = work + L->gates + b * T * gh;
        const REAL *hp = work + L->hprev + b * T * h, *dhn = gru ? work + L->state + b * T * h : NULL;
        double *out = sqnorms + 4 * b;
        out[0] = K_(shared_weight_sqnorm)(T, xb, x_stride, s->in, dg, gh, gh, NULL, 0, 0, scratch);
        out[1] = K_(shared_weight_sqnorm)(T, hp, h, h, dg, gh, n1, dhn, h, n2, scratch);
        out[2] = K_(shared_bias_sqnorm)(T, dg, gh, gh, scratch);
        out[3] = K_(shared_bias_sqnorm)(T, dg, gh, n1, scratch);
        if (gru) out[3] += K_(shared_bias_sqnorm)(T, dhn, h, h, scratch);
    }
}
