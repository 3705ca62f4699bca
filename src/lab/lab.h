/* The theory lab's shared machinery (src/lab/lab.c) and the experiments
 * (the other files of src/lab). Private to the library. */
#ifndef CLIPNN_LAB_INTERNAL_H
#define CLIPNN_LAB_INTERNAL_H

#include "train/train.h"
#include "data/data.h"
#include "io/io.h"

/* ------------------------------------------------------------ context */

typedef struct {
    const clipnn_lab_options *opt;
    clipnn_lab_result *res;
    const char *name; /* the experiment running */
    clipnn_rng rng;   /* seeded from opt->seed and the experiment's name */
} lab_ctx;

/* Table text through the caller's write callback (nothing without one). */
void lab_printf(lab_ctx *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a claim and prints its verdict line. condition: for HOLDS UNDER. */
void lab_claim(lab_ctx *L, const char *id, clipnn_claim_verdict v, const char *condition,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* full or quick, as the options ask. */
size_t lab_size(const lab_ctx *L, size_t full, size_t quick);
/* 1 for the steps worth keeping in a trace: all below 100, then about 60
 * per decade (log-spaced plots stay small). */
int lab_log_point(uint64_t k);

/* ------------------------------------------------------------- traces */

#define LAB_MAX_SERIES 10

typedef struct {
    char name[64];
    double *x, *y;
    size_t n, cap;
    int color, dashed;
} lab_series;

typedef struct {
    char title[160], xlabel[80], ylabel[80];
    int logx, logy;
    size_t n_series;
    int nomem; /* an append failed: the plot is incomplete */
    lab_series series[LAB_MAX_SERIES];
} lab_plot;

void lab_plot_init(lab_plot *p, const char *title, const char *xlabel, const char *ylabel, int logx,
                   int logy);
/* Adds a series and returns its index (LAB_MAX_SERIES - 1 is reused when full). */
size_t lab_plot_series(lab_plot *p, const char *name);
/* A dashed series in the colour of the previous one: the bound or the
 * prediction that goes with a measured series. */
size_t lab_plot_companion(lab_plot *p, const char *name);
void lab_plot_add(lab_plot *p, size_t series, double x, double y);
/* Writes <out_dir>/<experiment>-<base>.csv (series,x,y) and .svg when the
 * options name an out_dir; frees nothing. */
clipnn_status lab_plot_save(lab_ctx *L, const lab_plot *p, const char *base);
void lab_plot_free(lab_plot *p);

/* --------------------------------------------------------- small math */

/* C(g) factor of the exercise: min(1, c / ||g||) (1 for c = INFINITY). */
double lab_clip_factor(double norm, double c);
/* Solves A x = b for symmetric positive definite A ([n][n], overwritten by
 * its Cholesky factor); -1 when A is not positive definite. */
int lab_cholesky_solve(double *A, double *b, size_t n);
/* Spectral norm (largest |eigenvalue|) of a symmetric operator by power iteration. */
typedef void (*lab_matvec_fn)(const double *v, double *out, void *user);
double lab_power_iteration(lab_matvec_fn mv, void *user, size_t n, size_t iters, clipnn_rng *rng,
                           double *work /* [2n] */);

/* Real data for logistic regression: the built-in breast cancer set (the
 * first max_n rows when max_n > 0). X: [n][d] standardized
 * with a last column of ones (intercept), y in {0, 1}; columns with no
 * variance are dropped. *name names what was used. */
clipnn_status lab_logistic_data(lab_ctx *L, size_t max_n, double **X, double **y, size_t *n,
                                size_t *d, const char **name);

/* Mean logistic loss + mu/2 ||w||^2 over X: [n][d], y in {0, 1}. */
typedef struct {
    const double *X, *y;
    size_t n, d;
    double mu;
} lab_logistic;
double lab_sigmoid(double z);
/* f(w); g = grad f(w) when not NULL. */
double lab_logistic_fg(const lab_logistic *p, const double *w, double *g);
/* Newton's method from 0 with backtracking: the minimizer w ([d]) and f*. */
clipnn_status lab_logistic_min(const lab_logistic *p, double *w, double *fstar);

/* One 1-D noise law of the SGD experiments: discrete (values, probabilities)
 * or Gaussian N(0, sigma^2). */
typedef struct {
    size_t k;             /* > 0: discrete with k atoms */
    const double *v, *p;  /* atoms and their probabilities */
    double sigma;         /* k == 0: Gaussian */
} lab_noise;
/* E[clip_c(x + xi)], clip_c(u) = max(-c, min(c, u)); exact (closed form). */
double lab_noise_clipped_mean(const lab_noise *z, double x, double c);
/* The point where E[clip_c(x + xi)] = 0 (bisection on [lo, hi]; the map is
 * nondecreasing in x). */
double lab_noise_fixed_point(const lab_noise *z, double c, double lo, double hi);
double lab_noise_draw(const lab_noise *z, clipnn_rng *r);

/* The exercise's rate bound (docs/lab.md): for gamma <= 1/beta,
 * min_{k<K} ||grad|| <= max(sqrt(v), v / c) with v = 2 (f(x0) - f*) / (gamma K). */
double lab_q5_bound(double gap, double gamma, double c, double K);

/* Clipped SGD (classic eq. 11 or adaptive eq. 17) on separable logistic
 * regression without regularisation, where H has no zero. */
typedef struct {
    double norm_at[4]; /* ||theta|| at T/1000, T/100, T/10, T */
    size_t T;
    double uH_max;     /* largest u.H(theta) at those points, u separating: < 0 means no zero of H there */
    double H_T;        /* ||H(theta_T)|| */
    int unbounded;     /* ||theta|| grew by 5% or more over each of the last three decades */
} lab_unbounded;
clipnn_status lab_separable_run(lab_ctx *L, int adaptive, lab_unbounded *out);

/* ------------------------------------------------------------ experiments */

clipnn_status lab_gd_clip(lab_ctx *L);
clipnn_status lab_sgd_bias(lab_ctx *L);
clipnn_status lab_sgd_condition(lab_ctx *L);
clipnn_status lab_stability(lab_ctx *L);
clipnn_status lab_fixed_point(lab_ctx *L);
clipnn_status lab_l0l1(lab_ctx *L);
clipnn_status lab_clip_scale(lab_ctx *L);
clipnn_status lab_growth(lab_ctx *L);
clipnn_status lab_sgd_exercise(lab_ctx *L);
clipnn_status lab_noise_floor(lab_ctx *L);
clipnn_status lab_heavy_tail(lab_ctx *L);
clipnn_status lab_rnn_cliff(lab_ctx *L);
clipnn_status lab_rnn_temporal_order(lab_ctx *L);
clipnn_status lab_rnn_addition(lab_ctx *L);
clipnn_status lab_local_clip(lab_ctx *L);

#endif
