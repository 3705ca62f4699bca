/* Recurrent kernel body, included twice by src/nn/recurrent.c: once with
 * REAL = float (the training path) and once with REAL = double (the
 * reference path), so that the gate formulas, the state updates and their
 * derivatives exist once. Expects REAL, the naming macro K_ and, for REAL,
 * K_(gemm), K_(tanh), K_(sigmoid), and rec_layout.
 *
 * Rows are batch-major: row (b, t) of x, H, the gates and h_{t-1} is row
 * b T + t, so one step's rows are B rows T apart and the whole chunk is one
 * matrix of B T rows for the GEMMs that do not depend on the recurrence. */

/* ------------------------------------------------------------ forward */

/* gates[r] = b_ih + b_hh + x_r W_ih^T for all B T rows in one GEMM. GRU's
 * b_hn stays out of the n block: it goes inside r (W_hn h + b_hn). */
static void K_(project_inputs)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                               size_t x_stride, REAL *gates) {
    size_t gh = L->gh, rows = s->batch * s->steps;
    size_t both = s->cell == CLIPNN_CELL_GRU ? 2 * s->hidden : gh;
    const REAL *b_ih = P + L->p.b_ih, *b_hh = P + L->p.b_hh;
    for (size_t j = 0; j < gh; j++) gates[j] = j < both ? b_ih[j] + b_hh[j] : b_ih[j];
    for (size_t r = 1; r < rows; r++) memcpy(gates + r * gh, gates, gh * sizeof *gates);
    K_(gemm)(0, 1, rows, gh, s->in, x, x_stride, P + L->p.w_ih, s->in, 1, gates, gh);
}

/* Step t's recurrent term: gate rows of step t += h_{t-1} W_hh^T; GRU's n
 * block goes to its own rows (state) since r multiplies it. */
static void K_(step_hidden)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t, REAL *work) {
    size_t B = s->batch, T = s->steps, h = s->hidden, gh = L->gh;
    const REAL *W_hh = P + L->p.w_hh, *hp = work + L->hprev + t * h;
    REAL *g = work + L->gates + t * gh;
    if (s->cell == CLIPNN_CELL_GRU) {
        K_(gemm)(0, 1, B, 2 * h, h, hp, T * h, W_hh, h, 1, g, T * gh);
        K_(gemm)(0, 1, B, h, h, hp, T * h, W_hh + 2 * h * h, h, 0, work + L->state + t * h, T * h);
    } else {
        K_(gemm)(0, 1, B, gh, h, hp, T * h, W_hh, h, 1, g, T * gh);
    }
}

/* One row of one step: pre-activations in g become the activated gates
 * (RNN: h_t itself), h_t goes to out. */
static void K_(rnn_row)(int relu, REAL *restrict g, REAL *restrict out, size_t h) {
    if (relu) {
#pragma omp simd
        for (size_t j = 0; j < h; j++) g[j] = g[j] > 0 ? g[j] : 0;
    } else {
#pragma omp simd
        for (size_t j = 0; j < h; j++) g[j] = K_(tanh)(g[j]);
    }
    memcpy(out, g, h * sizeof *out);
}

static void K_(lstm_row)(REAL *restrict g, const REAL *restrict c_prev, REAL *restrict c, REAL *restrict out,
                         size_t h) {
#pragma omp simd
    for (size_t j = 0; j < h; j++) {
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
                        REAL *restrict out, size_t h) {
#pragma omp simd
    for (size_t j = 0; j < h; j++) {
        REAL r = K_(sigmoid)(g[j]), z = K_(sigmoid)(g[h + j]);
        REAL hv = hn[j] + b_hn[j];
        REAL n = K_(tanh)(g[2 * h + j] + r * hv);
        g[j] = r, g[h + j] = z, g[2 * h + j] = n;
        hn[j] = hv;
        out[j] = (1 - z) * n + z * h_prev[j];
    }
}

/* The fused pass of step t over the B rows; h_t also becomes the h_{t-1}
 * of row (b, t + 1). */
static void K_(step_cells)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t, REAL *H,
                           REAL *work) {
    size_t T = s->steps, h = s->hidden, gh = L->gh;
    for (size_t b = 0; b < s->batch; b++) {
        size_t row = b * T + t;
        REAL *g = work + L->gates + row * gh, *out = H + row * h;
        switch (s->cell) {
        case CLIPNN_CELL_RNN_TANH:
        case CLIPNN_CELL_RNN_RELU: K_(rnn_row)(s->cell == CLIPNN_CELL_RNN_RELU, g, out, h); break;
        case CLIPNN_CELL_LSTM: {
            REAL *c = work + L->state + row * h;
            K_(lstm_row)(g, t ? c - h : work + L->c0 + b * h, c, out, h);
            break;
        }
        case CLIPNN_CELL_GRU:
            K_(gru_row)(g, work + L->state + row * h, P + L->p.b_hh + 2 * h, work + L->hprev + row * h, out, h);
            break;
        default: break;
        }
        if (t + 1 < T) memcpy(work + L->hprev + (row + 1) * h, out, h * sizeof *out);
    }
}

/* rows[B][n] (row stride ld) = src[B][n] or zeros when src is NULL. */
static void K_(copy_rows)(REAL *rows, size_t ld, const REAL *src, size_t B, size_t n) {
    for (size_t b = 0; b < B; b++) {
        if (src) memcpy(rows + b * ld, src + b * n, n * sizeof *rows);
        else memset(rows + b * ld, 0, n * sizeof *rows);
    }
}

static void K_(forward)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                        size_t x_stride, const REAL *h0, const REAL *c0, REAL *H, REAL *hT, REAL *cT, REAL *work) {
    size_t B = s->batch, T = s->steps, h = s->hidden;
    K_(copy_rows)(work + L->hprev, T * h, h0, B, h);
    if (s->cell == CLIPNN_CELL_LSTM) K_(copy_rows)(work + L->c0, h, c0, B, h);
    K_(project_inputs)(s, L, P, x, x_stride, work + L->gates);
    for (size_t t = 0; t < T; t++) {
        K_(step_hidden)(s, L, P, t, work);
        K_(step_cells)(s, L, P, t, H, work);
    }
    for (size_t b = 0; b < B; b++) {
        size_t last = (b * T + T - 1) * h;
        if (hT) memcpy(hT + b * h, H + last, h * sizeof *hT);
        if (cT && s->cell == CLIPNN_CELL_LSTM) memcpy(cT + b * h, work + L->state + last, h * sizeof *cT);
    }
}

/* ----------------------------------------------------------- backward */

/* One row of one step backward. dh: d loss / d h_t on entry; g: the
 * activated gates on entry, d loss / d (gate pre-activations) on exit. */
static void K_(rnn_row_back)(int relu, REAL *restrict g, const REAL *restrict dh, size_t h) {
    if (relu) {
#pragma omp simd
        for (size_t j = 0; j < h; j++) g[j] = g[j] > 0 ? dh[j] : 0;
    } else {
#pragma omp simd
        for (size_t j = 0; j < h; j++) g[j] = dh[j] * (1 - g[j] * g[j]);
    }
}

/* dc: d loss / d c_t carried from step t + 1 on entry, d loss / d c_{t-1}
 * on exit. tanh(c_t) is recomputed (the same function as the forward, so
 * the same value). */
static void K_(lstm_row_back)(REAL *restrict g, const REAL *restrict c_prev, const REAL *restrict c,
                              const REAL *restrict dh, REAL *restrict dc, size_t h) {
#pragma omp simd
    for (size_t j = 0; j < h; j++) {
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
                             size_t h) {
#pragma omp simd
    for (size_t j = 0; j < h; j++) {
        REAL r = g[j], z = g[h + j], n = g[2 * h + j], d = dh[j];
        REAL dn = d * (1 - z) * (1 - n * n);
        g[j] = dn * hn[j] * r * (1 - r);
        g[h + j] = d * (h_prev[j] - n) * z * (1 - z);
        g[2 * h + j] = dn;
        hn[j] = dn * r;
        dh[j] = d * z;
    }
}

/* The fused pass of step t backward over the B rows: carry_h += dH of the
 * step, then the gate gradients of the cell. */
static void K_(step_cells_back)(const clipnn_rec_shape *s, const rec_layout *L, size_t t, const REAL *dH,
                                REAL *work) {
    size_t T = s->steps, h = s->hidden, gh = L->gh;
    for (size_t b = 0; b < s->batch; b++) {
        size_t row = b * T + t;
        REAL *g = work + L->gates + row * gh, *dh = work + L->carry_h + b * h;
        if (dH)
            for (size_t j = 0; j < h; j++) dh[j] += dH[row * h + j];
        switch (s->cell) {
        case CLIPNN_CELL_RNN_TANH:
        case CLIPNN_CELL_RNN_RELU: K_(rnn_row_back)(s->cell == CLIPNN_CELL_RNN_RELU, g, dh, h); break;
        case CLIPNN_CELL_LSTM: {
            const REAL *c = work + L->state + row * h;
            K_(lstm_row_back)(g, t ? c - h : work + L->c0 + b * h, c, dh, work + L->carry_c + b * h, h);
            break;
        }
        case CLIPNN_CELL_GRU: K_(gru_row_back)(g, work + L->state + row * h, work + L->hprev + row * h, dh, h); break;
        default: break;
        }
    }
}

/* carry_h = d loss / d h_{t-1} = dG_t W_hh (GRU: + the z dh already there;
 * its n block through the hidden part's gradient). */
static void K_(step_hidden_back)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, size_t t,
                                 REAL *work) {
    size_t B = s->batch, T = s->steps, h = s->hidden, gh = L->gh;
    const REAL *W_hh = P + L->p.w_hh, *dg = work + L->gates + t * gh;
    REAL *dh = work + L->carry_h;
    if (s->cell == CLIPNN_CELL_GRU) {
        K_(gemm)(0, 0, B, h, 2 * h, dg, T * gh, W_hh, h, 1, dh, h);
        K_(gemm)(0, 0, B, h, h, work + L->state + t * h, T * h, W_hh + 2 * h * h, h, 1, dh, h);
    } else {
        K_(gemm)(0, 0, B, h, gh, dg, T * gh, W_hh, h, 0, dh, h);
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

/* dW_ih += dG^T X, dW_hh += dG_hh^T H_prev, the biases += the column sums,
 * each one GEMM (or pass) over all B T rows; GRU's hidden gradient differs
 * from dG in the n block, which is in the state rows. */
static void K_(weight_grads)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *x, size_t x_stride,
                             REAL *grad, const REAL *work) {
    size_t rows = s->batch * s->steps, h = s->hidden, gh = L->gh;
    const REAL *dg = work + L->gates, *hp = work + L->hprev;
    K_(gemm)(1, 0, gh, s->in, rows, dg, gh, x, x_stride, 1, grad + L->p.w_ih, s->in);
    K_(add_column_sums)(grad + L->p.b_ih, dg, rows, gh, gh);
    if (s->cell == CLIPNN_CELL_GRU) {
        const REAL *dhn = work + L->state;
        K_(gemm)(1, 0, 2 * h, h, rows, dg, gh, hp, h, 1, grad + L->p.w_hh, h);
        K_(gemm)(1, 0, h, h, rows, dhn, h, hp, h, 1, grad + L->p.w_hh + 2 * h * h, h);
        K_(add_column_sums)(grad + L->p.b_hh, dg, rows, gh, 2 * h);
        K_(add_column_sums)(grad + L->p.b_hh + 2 * h, dhn, rows, h, h);
    } else {
        K_(gemm)(1, 0, gh, h, rows, dg, gh, hp, h, 1, grad + L->p.w_hh, h);
        K_(add_column_sums)(grad + L->p.b_hh, dg, rows, gh, gh);
    }
}

/* Truncation: the rows of steps before `first` carry no gradient. */
static void K_(zero_early_steps)(const clipnn_rec_shape *s, const rec_layout *L, size_t first, REAL *work) {
    size_t T = s->steps, h = s->hidden, gh = L->gh;
    for (size_t b = 0; b < s->batch && first > 0; b++) {
        memset(work + L->gates + b * T * gh, 0, first * gh * sizeof *work);
        if (s->cell == CLIPNN_CELL_GRU) memset(work + L->state + b * T * h, 0, first * h * sizeof *work);
    }
}

static void K_(backward)(const clipnn_rec_shape *s, const rec_layout *L, const REAL *P, const REAL *x,
                         size_t x_stride, const REAL *dH, const REAL *dhT, const REAL *dcT, size_t last_steps,
                         REAL *grad, REAL *dx, REAL *dh0, REAL *dc0, REAL *work) {
    size_t B = s->batch, T = s->steps, h = s->hidden;
    size_t first = last_steps ? T - last_steps : 0;
    int lstm = s->cell == CLIPNN_CELL_LSTM;
    K_(copy_rows)(work + L->carry_h, h, dhT, B, h);
    if (lstm) K_(copy_rows)(work + L->carry_c, h, dcT, B, h);
    for (size_t t = T; t-- > first;) {
        K_(step_cells_back)(s, L, t, dH, work);
        if (t > first || (first == 0 && dh0)) K_(step_hidden_back)(s, L, P, t, work);
    }
    K_(zero_early_steps)(s, L, first, work);
    if (grad) K_(weight_grads)(s, L, x, x_stride, grad, work);
    if (dx) K_(gemm)(0, 0, B * T, s->in, L->gh, work + L->gates, L->gh, P + L->p.w_ih, s->in, 0, dx, s->in);
    if (dh0) K_(copy_rows)(dh0, h, first ? NULL : work + L->carry_h, B, h);
    if (dc0 && lstm) K_(copy_rows)(dc0, h, first ? NULL : work + L->carry_c, B, h);
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
