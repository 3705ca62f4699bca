/* Models with recurrent layers, through the public API: the float path
 * against the double reference path and the reference against central
 * finite differences (every kind, many-to-one and many-to-many, one and two
 * recurrent layers); 20 clipped SGD steps of clipnn's model, clipper and
 * optimizer against PyTorch's trajectories (tests/ref/rec_train_*.txt);
 * the parameter groups every clipping rule reads; the recurrent
 * initialisations; steps that allocate nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rec_fixture.h"
#include "clipnn.h"
#include "npy_fixture.h"
#include "ref_file.h"

typedef struct {
    clipnn_layer_kind kind;
    size_t layers, in, hidden, steps, batch, classes;
    int every_step;
} rec_case;

static clipnn_model *make_model(const rec_case *c) {
    return rec_fixture_model(c->kind, c->layers, c->in, c->hidden, c->steps, c->classes, c->every_step);
}

/* Inputs in [-1, 1] and class targets (one per output row). */
static void make_batch(const rec_case *c, uint64_t seed, float *x, float *y) {
    size_t rows = c->batch * (c->every_step ? c->steps : 1);
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < c->batch * c->steps * c->in; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    for (size_t r = 0; r < rows; r++) y[r] = (float)((r * 7 + seed) % c->classes);
}

static double max_abs_diff(const float *a, const double *b, size_t n, double *scale) {
    double worst = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        big = fmax(big, fabs(b[i]));
    }
    *scale = big;
    return worst;
}

/* The float path's error bound in units of u = 2^-24, the kernels' (two
 * roundings per multiply-add along the longest chain: every layer and step,
 * fan-in n plus the gate arithmetic) plus the head's and the loss's 64. */
static double float_k(const rec_case *c) {
    double n = (double)(c->in > c->hidden ? c->in : c->hidden) + (double)c->hidden + 2;
    return 2.0 * (double)(c->layers + 2) * (double)c->steps * (n + 8) + 64;
}

static void float_vs_reference(const rec_case *c) {
    clipnn_model *m = make_model(c);
    if (!m) return;
    size_t P = clipnn_model_n_params(m), nx = c->batch * c->steps * c->in, rows = c->batch * (c->every_step ? c->steps : 1);
    float *x = calloc(nx, sizeof *x), *y = calloc(rows, sizeof *y), *dx = calloc(nx, sizeof *dx);
    double *xd = calloc(nx, sizeof *xd), *yd = calloc(rows, sizeof *yd), *g = calloc(P, sizeof *g);
    double *dxd = calloc(nx, sizeof *dxd), loss32, loss64, scale;
    make_batch(c, 3, x, y);
    for (size_t i = 0; i < nx; i++) xd[i] = x[i];
    for (size_t i = 0; i < rows; i++) yd[i] = y[i];
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, c->batch, &loss32, dx));
    CHECK_OK(clipnn_reference_loss_grad(m, NULL, &lo, xd, yd, c->batch, &loss64, NULL, g, dxd));
    double k = float_k(c), err = max_abs_diff(clipnn_model_grads(m), g, P, &scale);
    CHECK_MSG(err <= k * U * scale, "%s layers %zu every_step %d: gradient error %.3g > %.3g (scale %.3g)",
              clipnn_layer_kind_name(c->kind), c->layers, c->every_step, err, k * U * scale, scale);
    err = max_abs_diff(dx, dxd, nx, &scale);
    CHECK_MSG(err <= k * U * scale, "%s: dx error %.3g > %.3g", clipnn_layer_kind_name(c->kind), err, k * U * scale);
    CHECK_NEAR(loss32, loss64, k * U * fabs(loss64));
    CHECK(scale > 0);
    free(x), free(y), free(dx), free(xd), free(yd), free(g), free(dxd);
    clipnn_model_free(m);
}

/* Central differences of the reference loss, step h = 1e-5 on parameters
 * of size ~0.5: truncation h^2 |f'''| / 6 ~ 1e-11 and rounding 1e-16 / h ~
 * 1e-11, so 1e-8 absolute leaves a margin of 1000 while a wrong term of the
 * chain rule (a gradient entry off by its own size, >= 1e-4 here) fails. */
static void reference_vs_differences(const rec_case *c) {
    clipnn_model *m = make_model(c);
    if (!m) return;
    size_t P = clipnn_model_n_params(m), nx = c->batch * c->steps * c->in, rows = c->batch * (c->every_step ? c->steps : 1);
    float *x = calloc(nx, sizeof *x), *y = calloc(rows, sizeof *y);
    double *xd = calloc(nx, sizeof *xd), *yd = calloc(rows, sizeof *yd), *g = calloc(P, sizeof *g);
    double *theta = calloc(P, sizeof *theta), *dxd = calloc(nx, sizeof *dxd);
    make_batch(c, 5, x, y);
    for (size_t i = 0; i < nx; i++) xd[i] = x[i];
    for (size_t i = 0; i < rows; i++) yd[i] = y[i];
    for (size_t i = 0; i < P; i++) theta[i] = clipnn_model_params(m)[i];
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, xd, yd, c->batch, NULL, NULL, g, dxd));
    const double h = 1e-5;
    double worst = 0;
    for (size_t i = 0; i < P; i += 1 + P / 97) { /* about 100 parameters of every group */
        double lp, lm, keep = theta[i];
        theta[i] = keep + h;
        CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, xd, yd, c->batch, &lp, NULL, NULL, NULL));
        theta[i] = keep - h;
        CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, xd, yd, c->batch, &lm, NULL, NULL, NULL));
        theta[i] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[i]));
    }
    for (size_t i = 0; i < nx; i += 1 + nx / 31) {
        double lp, lm, keep = xd[i];
        xd[i] = keep + h;
        CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, xd, yd, c->batch, &lp, NULL, NULL, NULL));
        xd[i] = keep - h;
        CHECK_OK(clipnn_reference_loss_grad(m, theta, &lo, xd, yd, c->batch, &lm, NULL, NULL, NULL));
        xd[i] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2 * h) - dxd[i]));
    }
    CHECK_MSG(worst < 1e-8, "%s layers %zu every_step %d: finite differences off by %.3g",
              clipnn_layer_kind_name(c->kind), c->layers, c->every_step, worst);
    free(x), free(y), free(xd), free(yd), free(g), free(theta), free(dxd);
    clipnn_model_free(m);
}

static const clipnn_layer_kind KINDS[4] = {CLIPNN_LAYER_RNN, CLIPNN_LAYER_RNN_RELU, CLIPNN_LAYER_LSTM,
                                           CLIPNN_LAYER_GRU};

TEST(recurrent_model_float_path_matches_reference) {
    for (int k = 0; k < 4; k++)
        for (size_t layers = 1; layers <= 2; layers++)
            for (int every = 0; every <= 1; every++) {
                rec_case c = {KINDS[k], layers, 3, 6, 9, 5, 3, every};
                float_vs_reference(&c);
            }
}

TEST(recurrent_model_reference_matches_finite_differences) {
    for (int k = 0; k < 4; k++)
        for (size_t layers = 1; layers <= 2; layers++)
            for (int every = 0; every <= 1; every++) {
                rec_case c = {KINDS[k], layers, 2, 4, 5, 3, 3, every};
                reference_vs_differences(&c);
            }
}

/* ---------------------------------------------- against PyTorch */

static clipnn_layer_kind kind_of(const char *cell) {
    static const char *const cells[4] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
    for (int k = 0; k < 4; k++)
        if (!strcmp(cell, cells[k])) return KINDS[k];
    return CLIPNN_LAYER_COUNT;
}

static size_t attr(const ref_file *f, const char *key) { return (size_t)strtoul(ref_attr(f, key), NULL, 10); }

/* The file's classifier as a clipnn model: its recurrent layers, then one
 * dense layer on the last step's h; torch's parameters in the same order. */
static clipnn_model *torch_classifier(const ref_file *f, size_t *P) {
    clipnn_layer_kind kind = kind_of(ref_attr(f, "cell"));
    size_t layers = attr(f, "layers"), K = attr(f, "classes");
    clipnn_layer_spec ls[3];
    for (size_t l = 0; l < layers && l < 2; l++) ls[l] = (clipnn_layer_spec){kind, attr(f, "hidden"), CLIPNN_ACT_IDENTITY};
    ls[layers] = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, K, CLIPNN_ACT_IDENTITY};
    clipnn_seq_shape seq = {attr(f, "steps"), attr(f, "in"), 0};
    clipnn_model *m = NULL;
    CHECK_MSG(kind != CLIPNN_LAYER_COUNT && layers <= 2, "%s: unexpected cell or layers", f->path);
    if (kind == CLIPNN_LAYER_COUNT || layers > 2) return NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, layers + 1, ls));
    const double *params = m ? ref_get(f, "params", clipnn_model_n_params(m)) : NULL;
    if (!params) {
        clipnn_model_free(m);
        return NULL;
    }
    *P = clipnn_model_n_params(m);
    to_float(params, clipnn_model_params(m), *P);
    return m;
}

/* As the kernel test derives it: per step lr times a clipped gradient of
 * norm <= max_norm with float32 errors of K u max_norm (K the stack's
 * bound plus 64 for the head and the loss), the update's 2 u |theta|; t
 * steps, their feedback at most doubling it. */
static double theta_tol(size_t t, double k, double lr, double max_norm, double scale) {
    return 2.0 * U * (double)t * (k * lr * max_norm + 2.0 * scale);
}

static void torch_trajectory(const char *file) {
    ref_file *f = ref_load(file);
    size_t P = 0;
    clipnn_model *m = f ? torch_classifier(f, &P) : NULL;
    if (!m) {
        ref_free(f);
        return;
    }
    size_t B = attr(f, "batch"), T = attr(f, "steps"), in = attr(f, "in"), updates = attr(f, "updates");
    double lr = *ref_get(f, "lr", 1), max_norm = *ref_get(f, "max_norm", 1);
    const double *x = ref_get(f, "x", updates * B * T * in), *y = ref_get(f, "y", updates * B);
    const double *at = ref_get(f, "theta_steps", 5), *th = ref_get(f, "theta64", 5 * P), *l64 = ref_get(f, "loss64", updates);
    clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_NORM_TORCH);
    co.lambda = max_norm;
    clipnn_optim_options oo = clipnn_optim_options_default();
    clipnn_clipper *clip = NULL;
    clipnn_optimizer *opt = NULL;
    CHECK_OK(clipnn_clipper_create(&clip, m, &co));
    CHECK_OK(clipnn_optimizer_create(&opt, P, &oo));
    rec_case c = {CLIPNN_LAYER_LSTM, attr(f, "layers"), in, attr(f, "hidden"), T, B, 0, 0};
    double k = float_k(&c);
    float *xf = calloc(B * T * in, sizeof *xf), yf[64];
    size_t next = 0;
    for (size_t t = 0; x && y && at && th && l64 && clip && opt && xf && B <= 64 && t < updates; t++) {
        to_float(x + t * B * T * in, xf, B * T * in);
        to_float(y + t * B, yf, B);
        double loss, scale;
        clipnn_loss_options lo = clipnn_loss_options_default();
        CHECK_OK(clipnn_loss_grad(m, &lo, xf, yf, B, &loss, NULL));
        CHECK_NEAR(loss, l64[t], k * U * fmax(1.0, fabs(l64[t])) * (double)(t + 1));
        CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, NULL));
        CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), lr, 1.0));
        if (next == 5 || (size_t)at[next] != t + 1) continue;
        double err = max_abs_diff(clipnn_model_params(m), th + next * P, P, &scale);
        double tol = theta_tol(t + 1, k, lr, max_norm, scale);
        CHECK_MSG(err <= tol, "%s: theta after step %zu off by %.3g (tolerance %.3g)", file, t + 1, err, tol);
        next++;
    }
    CHECK_MSG(next == 5, "%s: theta checked after %zu of 5 steps", file, next);
    free(xf);
    clipnn_clipper_free(clip);
    clipnn_optimizer_free(opt);
    clipnn_model_free(m);
    ref_free(f);
}

TEST(recurrent_model_matches_torch_twenty_clipped_sgd_steps) {
    static const char *const files[] = {"rec_train_rnn_tanh_l1.txt", "rec_train_rnn_relu_l1.txt",
                                        "rec_train_lstm_l2.txt", "rec_train_gru_l2.txt"};
    for (size_t i = 0; i < 4; i++) torch_trajectory(files[i]);
}

/* ------------------------------------------- groups and clipping */

TEST(recurrent_model_groups_tile_the_block_and_every_rule_runs) {
    rec_case c = {CLIPNN_LAYER_GRU, 2, 3, 5, 4, 6, 3, 0};
    clipnn_model *m = make_model(&c);
    if (!m) return;
    size_t G = clipnn_model_n_groups(m), next = 0;
    CHECK(G == 4 * 2 + 2 * 2);
    for (size_t i = 0; i < G; i++) {
        clipnn_group g = clipnn_model_group(m, i);
        CHECK(g.offset == next && g.size == g.rows * g.cols);
        next += g.size;
        if (i < 8) {
            size_t want_rows[4] = {15, 15, 1, 1}, want_cols[4] = {i < 4 ? 3u : 5u, 5, 15, 15};
            CHECK(g.layer == i / 4 && g.is_bias == (i % 4 >= 2));
            CHECK(g.rows == want_rows[i % 4] && g.cols == want_cols[i % 4]);
        }
    }
    CHECK(next == clipnn_model_n_params(m));
    CHECK(clipnn_model_n_layers(m) == 4 && clipnn_model_layer_kind(m, 1) == CLIPNN_LAYER_GRU);
    CHECK(clipnn_model_layer_width(m, 1) == 5 && clipnn_model_layer_kind(m, 2) == CLIPNN_LAYER_DENSE);
    /* every rule clips a recurrent model's gradient, finite */
    float x[6 * 4 * 3], y[6];
    make_batch(&c, 1, x, y);
    clipnn_loss_options lo = clipnn_loss_options_default();
    for (int r = CLIPNN_CLIP_NONE; r < CLIPNN_CLIP_COUNT; r++) {
        clipnn_clip_options co = clipnn_clip_options_for((clipnn_clip_rule)r);
        clipnn_clipper *clip = NULL;
        CHECK_OK(clipnn_clipper_create(&clip, m, &co));
        CHECK_OK(clipnn_loss_grad(m, &lo, x, y, 6, NULL, NULL));
        /* spam against a zero second moment past its delay: every nonzero entry clipped to 0 */
        float *v = calloc(clipnn_model_n_params(m), sizeof *v);
        clipnn_clipper_set_moment(clip, v, co.spam_delay, 0);
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, &rec));
        free(v);
        /* the rules that give the step: nsgdm's is a unit vector, acclip's bounded by its momentum */
        double bound = r == CLIPNN_CLIP_NSGDM || r == CLIPNN_CLIP_NSGDM_CLIP ? 1.0 : rec.pre_norm;
        CHECK_MSG(isfinite(rec.pre_norm) && isfinite(rec.post_norm) && rec.post_norm <= bound * (1 + 1e-6),
                  "rule %s: pre %g post %g", clipnn_clip_rule_name((clipnn_clip_rule)r), rec.pre_norm, rec.post_norm);
        clipnn_clipper_free(clip);
    }
    clipnn_model_free(m);
}

/* ------------------------------------------- initialisations */

/* rho(A) = lim ||A^k||^(1/k), by repeated squaring with rescaling in
 * double: an estimate independent of the library's vector iteration. */
static double spectral_radius_by_squaring(const float *a, size_t n) {
    double *p = calloc(n * n, sizeof *p), *q = calloc(n * n, sizeof *q), log_scale = 0;
    for (size_t i = 0; i < n * n; i++) p[i] = a[i];
    const int squarings = 12; /* A^4096 */
    for (int s = 0; s < squarings; s++) {
        double norm = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double v = 0;
                for (size_t k = 0; k < n; k++) v += p[i * n + k] * p[k * n + j];
                q[i * n + j] = v;
                norm = fmax(norm, fabs(v));
            }
        for (size_t i = 0; i < n * n; i++) p[i] = q[i] / norm;
        log_scale = 2 * log_scale + log(norm);
    }
    double fro = 0;
    for (size_t i = 0; i < n * n; i++) fro += p[i] * p[i];
    free(p), free(q);
    return exp((log_scale + 0.5 * log(fro)) / 4096.0);
}

TEST(recurrent_init_orthogonal_and_spectral_radius) {
    rec_case c = {CLIPNN_LAYER_LSTM, 1, 3, 16, 4, 2, 3, 0};
    clipnn_model *m = make_model(&c);
    if (!m) return;
    const size_t h = 16, w_hh = 4 * h * 3; /* W_hh follows W_ih [4h][3] */
    CHECK_OK(clipnn_model_init_recurrent(m, CLIPNN_RECURRENT_INIT_ORTHOGONAL, 0, 3));
    for (size_t g = 0; g < 4; g++) {
        const float *Q = clipnn_model_params(m) + w_hh + g * h * h;
        double worst = 0;
        for (size_t i = 0; i < h; i++)
            for (size_t j = 0; j < h; j++) {
                double d = 0;
                for (size_t k = 0; k < h; k++) d += (double)Q[k * h + i] * Q[k * h + j];
                worst = fmax(worst, fabs(d - (i == j)));
            }
        CHECK_MSG(worst < 1e-6, "gate %zu: Q^T Q - I up to %.3g", g, worst);
    }
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 7));
    CHECK_OK(clipnn_model_init_recurrent(m, CLIPNN_RECURRENT_INIT_SCALED, 1.5, 3));
    for (size_t g = 0; g < 4; g++) {
        double rho = spectral_radius_by_squaring(clipnn_model_params(m) + w_hh + g * h * h, h);
        CHECK_MSG(fabs(rho - 1.5) < 0.015, "gate %zu: spectral radius %.4f, want 1.5", g, rho);
    }
    CHECK(clipnn_model_init_recurrent(m, CLIPNN_RECURRENT_INIT_SCALED, -1, 3) == CLIPNN_ERR_INVALID_ARG);
    clipnn_recurrent_init how;
    CHECK_OK(clipnn_recurrent_init_parse("orthogonal", &how));
    CHECK(how == CLIPNN_RECURRENT_INIT_ORTHOGONAL && !strcmp(clipnn_recurrent_init_name(how), "orthogonal"));
    clipnn_model_free(m);
}

/* Sparse: every row of every gate block holds exactly K nonzero weights
 * (all h when K >= h), in columns that differ from row to row, and the
 * block has the spectral radius asked for (the same estimate and
 * tolerance as scaled above). */
static void check_sparse_blocks(clipnn_model *m, size_t gates, size_t h, size_t w_hh, size_t K, double radius) {
    size_t want = K < h ? K : h, distinct_patterns = 0;
    for (size_t g = 0; g < gates; g++) {
        const float *A = clipnn_model_params(m) + w_hh + g * h * h;
        for (size_t i = 0; i < h; i++) {
            size_t nz = 0, same_as_row0 = 1;
            for (size_t j = 0; j < h; j++) {
                nz += A[i * h + j] != 0;
                same_as_row0 &= (A[i * h + j] != 0) == (A[j] != 0);
            }
            CHECK_MSG(nz == want, "gate %zu row %zu: %zu nonzero weights, want %zu", g, i, nz, want);
            distinct_patterns += !same_as_row0;
        }
        double rho = spectral_radius_by_squaring(A, h);
        CHECK_MSG(fabs(rho - radius) < 0.01 * radius, "gate %zu: spectral radius %.4f, want %g", g, rho, radius);
    }
    if (want < h) CHECK(distinct_patterns > 0);
}

TEST(recurrent_init_sparse_connections_and_radius) {
    const size_t h = 40;
    clipnn_model *rnn = rec_fixture_model(CLIPNN_LAYER_RNN, 1, 3, h, 4, 2, 0);
    clipnn_model *gru = rec_fixture_model(CLIPNN_LAYER_GRU, 1, 3, h, 4, 2, 0);
    if (!rnn || !gru) goto done;
    CHECK_OK(clipnn_model_init_recurrent_sparse(rnn, 15, 0.95, 5));
    check_sparse_blocks(rnn, 1, h, h * 3, 15, 0.95);
    CHECK_OK(clipnn_model_init_recurrent_sparse(gru, 60, 1.2, 5)); /* more connections than units: dense */
    check_sparse_blocks(gru, 3, h, 3 * h * 3, 60, 1.2);
    CHECK_OK(clipnn_model_init_recurrent(gru, CLIPNN_RECURRENT_INIT_SPARSE, 0.5, 6));
    check_sparse_blocks(gru, 3, h, 3 * h * 3, CLIPNN_SPARSE_CONNECTIONS, 0.5);
    CHECK(clipnn_model_init_recurrent_sparse(rnn, 0, 0.95, 5) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_model_init_recurrent_sparse(rnn, 15, 0, 5) == CLIPNN_ERR_INVALID_ARG);
    clipnn_recurrent_init how;
    CHECK_OK(clipnn_recurrent_init_parse("sparse", &how));
    CHECK(how == CLIPNN_RECURRENT_INIT_SPARSE);
done:
    clipnn_model_free(rnn);
    clipnn_model_free(gru);
}

/* ------------------------------------------- no allocation in a step */

TEST(recurrent_model_steps_allocate_nothing) {
    for (int every = 0; every <= 1; every++) {
        rec_case c = {CLIPNN_LAYER_LSTM, 2, 3, 8, 5, 4, 3, every};
        clipnn_model *m = make_model(&c);
        if (!m) return;
        CHECK_OK(clipnn_model_reserve(m, 4));
        clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_AGC);
        clipnn_optim_options oo = clipnn_optim_options_default();
        clipnn_clipper *clip = NULL;
        clipnn_optimizer *opt = NULL;
        CHECK_OK(clipnn_clipper_create(&clip, m, &co));
        CHECK_OK(clipnn_optimizer_create(&opt, clipnn_model_n_params(m), &oo));
        float x[4 * 5 * 3], y[4 * 5];
        make_batch(&c, 2, x, y);
        clipnn_loss_options lo = clipnn_loss_options_default();
        uint64_t before = 0;
        for (int step = 0; clip && opt && step < 6; step++) {
            if (step == 1) before = clipnn_allocation_count();
            CHECK_OK(clipnn_loss_grad(m, &lo, x, y, 4, NULL, NULL));
            CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, NULL));
            CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), 0.1, 1.0));
        }
        CHECK(clipnn_allocation_count() == before);
        clipnn_clipper_free(clip);
        clipnn_optimizer_free(opt);
        clipnn_model_free(m);
    }
}

/* ------------------------------------------- checkpoints */

/* A recurrent model saves as format version 2 (an MLP still as version 1,
 * which every earlier build reads) and loads back identical: the same
 * layers, parameters and outputs; a damaged sequence section is refused. */
TEST(recurrent_model_checkpoint_round_trip) {
    rec_case c = {CLIPNN_LAYER_LSTM, 2, 3, 6, 5, 4, 3, 1};
    clipnn_model *m = make_model(&c), *back = NULL;
    if (!m) return;
    const char *path = check_tmp_path("rec.ckpt");
    CHECK_OK(clipnn_model_save(m, path));
    CHECK_OK(clipnn_model_load(path, &back));
    if (!back) return;
    clipnn_seq_shape a = clipnn_model_seq_shape(m), b = clipnn_model_seq_shape(back);
    CHECK(a.steps == b.steps && a.step_dim == b.step_dim && a.every_step == b.every_step && b.every_step == 1);
    CHECK(clipnn_model_n_layers(back) == 4 && clipnn_model_layer_kind(back, 1) == CLIPNN_LAYER_LSTM);
    size_t P = clipnn_model_n_params(m);
    CHECK(P == clipnn_model_n_params(back));
    CHECK(memcmp(clipnn_model_params(m), clipnn_model_params(back), P * sizeof(float)) == 0);
    float x[4 * 5 * 3], y[4 * 5];
    make_batch(&c, 4, x, y);
    const float *o1, *o2;
    CHECK_OK(clipnn_forward(m, x, 4, &o1));
    CHECK_OK(clipnn_forward(back, x, 4, &o2));
    CHECK(memcmp(o1, o2, 4 * 5 * 3 * sizeof(float)) == 0);
    FILE *f = fopen(path, "rb");
    unsigned char head[12] = {0};
    CHECK(f && fread(head, 1, 12, f) == 12);
    if (f) fclose(f);
    CHECK(head[8] == 2);
    clipnn_model_free(back);
    clipnn_model_free(m);
}

/* ------------------------------------------- many-to-many training */

/* The running mean of a sequence, every step a target: an RNN read at
 * every step learns it (the test loss falls tenfold), and a model that
 * reads only the last step is refused for such targets. */
TEST(recurrent_model_trains_many_to_many_on_step_targets) {
    enum { N = 400, T = 6 };
    static float x[N][T][1], y[N][T][1];
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int t = 0; t < T; t++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i][t][0] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            sum += x[i][t][0];
            y[i][t][0] = (float)(sum / (t + 1));
        }
    }
    char spec[2048];
    snprintf(spec, sizeof spec, "npy:%s,%s", save_npy("mm_x.npy", &x[0][0][0], N, T, 1),
             save_npy("mm_y.npy", &y[0][0][0], N, T, 1));
    clipnn_data_options dopt = clipnn_data_options_default();
    dopt.scaling = CLIPNN_SCALE_NONE;
    clipnn_dataset *tr = NULL, *te = NULL;
    CHECK_OK(clipnn_dataset_load(spec, &dopt, &tr, &te));
    if (!tr || !te) return;
    clipnn_layer_spec ls[2] = {{CLIPNN_LAYER_RNN, 16, CLIPNN_ACT_IDENTITY}, {CLIPNN_LAYER_DENSE, 1, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {T, 1, 1};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (!m) return;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.epochs = 1;
    clipnn_train_result first, last;
    CHECK_OK(clipnn_train(m, tr, te, &o, &first));
    o.epochs = 30;
    CHECK_OK(clipnn_train(m, tr, te, &o, &last));
    CHECK_MSG(last.test_loss < first.test_loss / 10, "test loss %g after 1 epoch, %g after 30 more", first.test_loss,
              last.test_loss);
    /* a many-to-one model does not fit targets for every step */
    clipnn_seq_shape one = {T, 1, 0};
    clipnn_model *m1 = NULL;
    CHECK_OK(clipnn_model_create_seq(&m1, &one, 2, ls));
    clipnn_status st = m1 ? clipnn_train(m1, tr, te, &o, &last) : CLIPNN_OK;
    CHECK_MSG(st == CLIPNN_ERR_SHAPE, "status %d: %s", (int)st, clipnn_last_error());
    CHECK(strstr(clipnn_last_error(), "targets for 6 steps") != NULL);
    /* nor does a many-to-many model fit one target per sequence */
    clipnn_dataset *per_row = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(&x[0][0][0], &y[0][0][0], N / T, T, 0, 1, &per_row));
    double l, a;
    st = per_row ? clipnn_evaluate(m, per_row, &o.loss, &l, &a) : CLIPNN_OK;
    CHECK_MSG(st == CLIPNN_ERR_SHAPE && strstr(clipnn_last_error(), "one target row per sequence"), "status %d: %s",
              (int)st, clipnn_last_error());
    clipnn_dataset_free(per_row);
    clipnn_model_free(m1);
    clipnn_model_free(m);
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
}

/* ------------------------------------------- the tool */

/* clipnn train takes recurrent layers (on the digits: 8 steps of 8
 * pixels), saves them, and eval reads them back; the commands that
 * optimize inputs refuse a recurrent model with one line and exit 2, the
 * diagnosis runs its tests through time. */
TEST(recurrent_model_through_the_tool) {
    const char *out, *ckpt = check_tmp_path("lstm_digits.ckpt");
    char args[1200];
    snprintf(args, sizeof args, "train --arch lstm:24-10 --epochs 3 --save %s --json", ckpt);
    CHECK(check_run_tool(args, &out) == 0);
    const char *acc = strstr(out, "\"test_accuracy\":");
    double a = acc ? strtod(acc + 16, NULL) : 0;
    CHECK_MSG(a > 0.8, "lstm on the digits: test accuracy %g after 3 epochs\n%s", a, out);
    CHECK(strstr(out, "\"arch\":\"lstm:24-10\"") != NULL);
    snprintf(args, sizeof args, "eval --model %s", ckpt);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK(strstr(out, "64-lstm:24-10") != NULL);
    const char *refusing[] = {"attack --method fgsm --eps 0.1", "optimize-input --target-class 3"};
    for (size_t i = 0; i < sizeof refusing / sizeof refusing[0]; i++) {
        snprintf(args, sizeof args, "%s --model %s", refusing[i], ckpt);
        int rc = check_run_tool(args, &out);
        /* one line, before anything else is printed */
        CHECK_MSG(rc == 2 && strstr(out, "a model with recurrent layers (the first: lstm)") &&
                      strchr(out, '\n') == out + strlen(out) - 1,
                  "%s: exit %d: %s", refusing[i], rc, out);
    }
    /* the diagnosis takes it: the tests through time */
    snprintf(args, sizeof args, "diagnose --input data:3 --target-class 3 --model %s", ckpt);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK_MSG(strstr(out, "gradient-through-time") || strstr(out, "through-time"), "%s", out);
    CHECK(check_run_tool("train --arch 10-lstm:5-10", &out) != 0);
    CHECK(strstr(out, "recurrent layers come first") != NULL);
    CHECK(check_run_tool("train --arch lstm:8-2 --data breast-cancer", &out) == 2);
    CHECK(strstr(out, "--seq-steps") != NULL);
    CHECK(check_run_tool("train --arch lstm:8-2 --data breast-cancer --seq-steps 7", &out) == 2);
    CHECK(strstr(out, "not a multiple") != NULL);
    /* --rec-init: a bad radius is named as such; nothing to initialise in an MLP */
    CHECK(check_run_tool("train --arch rnn:8-10 --epochs 1 --quiet --rec-init scaled --rec-radius 0.9", &out) == 0);
    CHECK(check_run_tool("train --arch rnn:8-10 --rec-init scaled --rec-radius -1", &out) == 2);
    CHECK_MSG(strstr(out, "--rec-radius") && strstr(out, "spectral radius -1"), "%s", out);
    CHECK(check_run_tool("train --arch 64-10 --rec-init orthogonal", &out) == 2);
    CHECK_MSG(strstr(out, "no recurrent layers"), "%s", out);
}

/* A .npy file with the header dict given and `floats` float32 zeros after it. */
static const char *save_raw_npy(const char *name, const char *dict, size_t floats) {
    const char *path = check_tmp_path(name);
    size_t len = strlen(dict), padded = (10 + len + 1 + 63) / 64 * 64;
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)((padded - 10) & 0xff), f), fputc((int)((padded - 10) >> 8), f);
    fputs(dict, f);
    for (size_t i = 10 + len; i + 1 < padded; i++) fputc(' ', f);
    fputc('\n', f);
    float zero = 0;
    for (size_t i = 0; i < floats; i++) fwrite(&zero, sizeof zero, 1, f);
    fclose(f);
    return path;
}

/* Sequence files the tool cannot use: one line on stderr naming the file
 * and exit 3, whatever the reason (a shape, a value, a kind of array the
 * reader does not take), as docs/recurrent.md says. */
TEST(recurrent_data_errors_exit_3_naming_the_file) {
    enum { N = 6, T = 3, D = 2 };
    float x[N][T][D] = {{{0}}}, y[N] = {0, 1, 0, 1, 0, 1};
    char xs[1024], ys[1024], args[2400];
    snprintf(ys, sizeof ys, "%s", save_npy("bad_y.npy", y, N, 1, 0));
    struct {
        const char *name, *dict;
        size_t floats;
    } bad[] = {
        {"x4d.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3, 2, 1), }", N * T * D},
        {"xobj.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", 0},
        {"xfortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (6, 3, 2), }", N * T * D},
        {"xempty.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 0, 2), }", 0},
        {"xshort.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3, 2), }", N * T * D - 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(xs, sizeof xs, "%s", save_raw_npy(bad[i].name, bad[i].dict, bad[i].floats));
        snprintf(args, sizeof args, "train --arch gru:4-2 --epochs 1 --data npy:%s,%s", xs, ys);
        const char *out;
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 3 && strstr(out, bad[i].name) && strchr(out, '\n') == out + strlen(out) - 1,
                  "%s: exit %d: %s", bad[i].name, rc, out);
    }
    x[N - 1][T - 1][D - 1] = NAN;
    snprintf(args, sizeof args, "train --arch gru:4-2 --epochs 1 --data npy:%s,%s",
             save_npy("xnan.npy", &x[0][0][0], N, T, D), ys);
    const char *out;
    CHECK(check_run_tool(args, &out) == 3 && strstr(out, "xnan.npy") && strstr(out, "non-finite"));
}
