/* Loss kernel body, included twice by src/nn/loss.c: once with REAL = float
 * (the training path) and once with REAL = double (the reference path), so
 * that the two can never drift apart. Sums and the log-sum-exp run in double
 * in both. Expects REAL and LOSS_FN defined; the per-row functions get
 * REAL's name as a suffix.
 *
 * z: [B][k] outputs, y: targets (class indices [B] for XENT and MARGIN,
 * values [B][k] for MSE and BCE), losses: [B] or NULL, dz: [B][k] or NULL
 * receives d(mean loss)/dz. Returns the mean loss. */
#ifndef LOSS_KERNEL_JOIN
#define LOSS_KERNEL_JOIN2(a, b) a##_##b
#define LOSS_KERNEL_JOIN(a, b) LOSS_KERNEL_JOIN2(a, b)
#endif
#define ROW_FN(name) LOSS_KERNEL_JOIN(name, REAL)

/* Each row function returns the row's loss and, when dr is not NULL,
 * writes d(mean loss)/dz of the row (inv_b = 1/B, inv_bk = 1/(B k)). */

static double ROW_FN(xent_row)(const REAL *zr, size_t label, size_t k, double inv_b, REAL *dr) {
    REAL zmax = zr[0];
    for (size_t j = 1; j < k; j++)
        if (zr[j] > zmax) zmax = zr[j];
    /* Shifted by the max so exp never overflows; the shift is
     * exact in floating point for the dominant term. */
    double sum = 0.0;
    for (size_t j = 0; j < k; j++) sum += exp((double)(zr[j] - zmax));
    double lse = (double)zmax + log(sum);
    if (dr) {
        /* d/dz_y = p_y - 1 is computed as -sum_{j != y} p_j: when
         * p_y rounds to 1 the difference would be lost in float32. */
        double rest = 0.0;
        for (size_t j = 0; j < k; j++) {
            if (j == label) continue;
            double p = exp((double)zr[j] - lse);
            rest += p;
            dr[j] = (REAL)(p * inv_b);
        }
        dr[label] = (REAL)(-rest * inv_b);
    }
    return lse - (double)zr[label];
}

static double ROW_FN(mse_row)(const REAL *zr, const REAL *yr, size_t k, double inv_bk, REAL *dr) {
    double loss = 0.0;
    for (size_t j = 0; j < k; j++) {
        double e = (double)zr[j] - (double)yr[j];
        loss += e * e;
        if (dr) dr[j] = (REAL)(2.0 * e * inv_bk);
    }
    return loss / (double)k;
}

static double ROW_FN(bce_row)(const REAL *zr, const REAL *yr, size_t k, double inv_bk, REAL *dr) {
    double loss = 0.0;
    for (size_t j = 0; j < k; j++) {
        double x = (double)zr[j], t = (double)yr[j];
        /* max(x,0) - x t + log(1 + e^-|x|): no overflow either way. */
        loss += (x > 0 ? x : 0.0) - x * t + log1p(exp(-fabs(x)));
        if (dr) {
            double s = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
            dr[j] = (REAL)((s - t) * inv_bk);
        }
    }
    return loss / (double)k;
}

static double ROW_FN(margin_row)(const REAL *zr, size_t label, size_t k, double kappa, double inv_b, REAL *dr) {
    size_t other = label == 0 ? 1 : 0;
    for (size_t j = 0; j < k; j++)
        if (j != label && zr[j] > zr[other]) other = j;
    double m = (double)zr[label] - (double)zr[other] + kappa;
    if (dr) {
        for (size_t j = 0; j < k; j++) dr[j] = 0;
        if (m > 0) {
            dr[label] = (REAL)inv_b;
            dr[other] = (REAL)(-inv_b);
        }
    }
    return m > 0 ? m : 0.0;
}

static double LOSS_FN(const clipnn_loss_options *lo, const REAL *z, const REAL *y, size_t B, size_t k,
               REAL *losses, REAL *dz) {
    double total = 0.0;
    const double inv_b = 1.0 / (double)B;
    const double inv_bk = 1.0 / ((double)B * (double)k);
    for (size_t r = 0; r < B; r++) {
        const REAL *zr = z + r * k;
        REAL *dr = dz ? dz + r * k : NULL;
        double loss = 0.0;
        switch (lo->loss) {
        case CLIPNN_LOSS_XENT: loss = ROW_FN(xent_row)(zr, (size_t)y[r], k, inv_b, dr); break;
        case CLIPNN_LOSS_MSE: loss = ROW_FN(mse_row)(zr, y + r * k, k, inv_bk, dr); break;
        case CLIPNN_LOSS_BCE: loss = ROW_FN(bce_row)(zr, y + r * k, k, inv_bk, dr); break;
        case CLIPNN_LOSS_MARGIN: loss = ROW_FN(margin_row)(zr, (size_t)y[r], k, lo->kappa, inv_b, dr); break;
        default: break;
        }
        if (losses) losses[r] = (REAL)loss;
        total += loss;
    }
    return total * inv_b;
}

#undef ROW_FN
