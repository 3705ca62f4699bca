/* clipnn attack --report: one grid of clean inputs, adversarial inputs and
 * perturbations with the true and predicted class under each, the robust
 * accuracy against the budget, the table of the budgets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack_report.h"
#include "cli.h"

enum { CAPTION = 48 };

/* The class the model gives x (in the attack's space); -1 when it cannot say. */
static int predict(const cli_attack_page *p, const float *x, float *scratch) {
    for (size_t j = 0; j < p->dim; j++)
        scratch[j] = p->space->mean ? (x[j] - p->space->mean[j]) / p->space->std[j] : x[j];
    const float *out;
    if (clipnn_forward(p->m, scratch, 1, &out)) return -1;
    size_t k = clipnn_model_n_outputs(p->m), best = 0;
    for (size_t c = 1; c < k; c++)
        if (out[c] > out[best]) best = c;
    return (int)best;
}

/* Columns: clean, then per budget > 0 the adversarial input and the
 * perturbation (its colour scale spanning the budget under L-inf, the
 * largest change shown under L2). */
typedef struct {
    size_t cols;
    clipnn_grid_column col[1 + 2 * 32];
    size_t eps_of[1 + 2 * 32]; /* budget index of column j (j > 0) */
    char titles[1 + 2 * 32][48];
} grid_columns;

static void set_columns(const cli_attack_page *p, const float *pert, grid_columns *g) {
    g->cols = 1;
    g->col[0] = (clipnn_grid_column){"clean", 0, p->space->box_lo, p->space->box_hi, 1};
    for (size_t e = 0; e < p->n_eps && g->cols + 2 <= sizeof g->col / sizeof *g->col; e++) {
        if (!(p->eps[e] > 0)) continue;
        double amp = 0;
        for (size_t i = 0; i < p->n_img * p->dim; i++) amp = fmax(amp, fabs(pert[e * p->n_img * p->dim + i]));
        double scale = !p->l2 ? p->eps[e] : amp > 0 ? amp : 1;
        snprintf(g->titles[g->cols], 48, "eps %g", p->eps[e]);
        snprintf(g->titles[g->cols + 1], 48, "change, eps %g", p->eps[e]);
        g->col[g->cols] = (clipnn_grid_column){g->titles[g->cols], 0, p->space->box_lo, p->space->box_hi, 0};
        g->col[g->cols + 1] = (clipnn_grid_column){g->titles[g->cols + 1], 1, -scale, scale, 1};
        g->eps_of[g->cols] = g->eps_of[g->cols + 1] = e;
        g->cols += 2;
    }
}

/* Image and caption of cell (i, j). */
static void fill_cell(const cli_attack_page *p, const grid_columns *g, const float *pert, size_t i, size_t j,
                      float *scratch, const float **img, char *caption) {
    const size_t D = p->dim, e = g->eps_of[j];
    const float *x = j == 0 ? p->x + i * D : p->adv + (e * p->n_img + i) * D;
    int label = (int)p->labels[i];
    if (g->col[j].signed_map) {
        const float *d = pert + (e * p->n_img + i) * D;
        double big = 0;
        for (size_t k = 0; k < D; k++) big = fmax(big, fabs(d[k]));
        *img = d;
        snprintf(caption, CAPTION, "largest change %.3g", big);
        return;
    }
    int pred = predict(p, x, scratch);
    /* fooled: the attack changed a right answer (not one the model got wrong already) */
    int fooled = j > 0 && pred != label && predict(p, p->x + i * D, scratch) == label;
    *img = x;
    snprintf(caption, CAPTION, "true %d, predicted %d%s", label, pred, fooled ? "\nfooled" : "");
}

static int image_grid(clipnn_report *rep, const cli_attack_page *p) {
    const size_t D = p->dim, n = p->n_eps * p->n_img * D;
    float *pert = malloc((n ? n : 1) * sizeof *pert), *scratch = malloc(D * sizeof *scratch);
    grid_columns *g = calloc(1, sizeof *g);
    const float **imgs = NULL;
    char(*captions)[CAPTION] = NULL;
    const char **caption_ptr = NULL;
    int ok = pert && scratch && g;
    for (size_t e = 0; ok && e < p->n_eps; e++)
        for (size_t i = 0; i < p->n_img * D; i++) pert[e * p->n_img * D + i] = p->adv[e * p->n_img * D + i] - p->x[i];
    if (ok) set_columns(p, pert, g);
    size_t cells = ok ? p->n_img * g->cols : 0;
    ok = ok && (imgs = calloc(cells, sizeof *imgs)) && (captions = calloc(cells, sizeof *captions)) &&
         (caption_ptr = calloc(cells, sizeof *caption_ptr));
    for (size_t c = 0; ok && c < cells; c++) {
        fill_cell(p, g, pert, c / g->cols, c % g->cols, scratch, &imgs[c], captions[c]);
        caption_ptr[c] = captions[c];
    }
    if (ok) {
        clipnn_image_grid grid = {"Clean inputs, adversarial inputs and the changes (blue lower, red higher)",
                                  p->h, p->w, p->n_img, g->cols, g->col, imgs, caption_ptr};
        clipnn_report_image_grid(rep, &grid);
    }
    free(pert), free(scratch), free(g), free(imgs), free(captions), free(caption_ptr);
    return ok ? CLI_EXIT_OK : CLI_EXIT_NOMEM;
}

static void robust_curve(clipnn_report *rep, const cli_attack_page *p) {
    double clean[32], robust[32], one[32];
    size_t n = p->n_eps < 32 ? p->n_eps : 32;
    for (size_t e = 0; e < n; e++) {
        clean[e] = p->res[e].clean_accuracy;
        robust[e] = p->robust[e];
        one[e] = p->robust_one[e];
    }
    clipnn_chart_series s[] = {{p->targeted ? "not sent to the target" : "robust accuracy", p->eps, robust, n, 1, 0},
                               {"after one step (masking check)", p->eps, one, n, 3, 1},
                               {"clean accuracy", p->eps, clean, n, 0, 1}};
    int has_one = 0;
    for (size_t e = 0; e < n; e++) has_one |= !isnan(one[e]);
    clipnn_chart_axes ax = {"Accuracy against the budget", p->l2 ? "eps (L2)" : "eps (L-inf)", "accuracy", 0, 0, 0, 1};
    if (!has_one) s[1] = s[2];
    clipnn_report_line_chart(rep, &ax, s, has_one ? 3 : 2);
}

static void budget_table(clipnn_report *rep, const cli_attack_page *p) {
    enum { COLS = 7 };
    static const char *const head[COLS] = {"eps",        "clean",   "robust (first method)", "success",
                                           "mean L-inf", "mean L2", "unbroken by every method"};
    const char *cells[(32 + 1) * COLS];
    char text[32][COLS][24];
    size_t n = p->n_eps < 32 ? p->n_eps : 32;
    memcpy(cells, head, sizeof head);
    for (size_t e = 0; e < n; e++) {
        const clipnn_attack_result *r = &p->res[e];
        const double v[COLS] = {p->eps[e], r->clean_accuracy, r->robust_accuracy, r->success_rate, r->mean_linf,
                                r->mean_l2, p->robust[e]};
        for (size_t k = 0; k < COLS; k++) {
            int percent = (k >= 1 && k <= 3) || k == 6;
            if (isnan(v[k])) snprintf(text[e][k], 24, "-");
            else snprintf(text[e][k], 24, percent ? "%.2f%%" : "%.4g", percent ? 100 * v[k] : v[k]);
            cells[(e + 1) * COLS + k] = text[e][k];
        }
    }
    clipnn_report_table(rep, n + 1, COLS, cells);
}

int cli_attack_report(const char *cmd, const char *dir, const cli_attack_page *p) {
    clipnn_report *rep;
    clipnn_status st = clipnn_report_create(&rep, "clipnn attack");
    if (st) return cli_fail(cmd, st, "--report");
    clipnn_report_text(rep, p->setup);
    budget_table(rep, p);
    robust_curve(rep, p);
    int rc = CLI_EXIT_OK;
    if (p->h > 0 && p->n_img > 0) {
        clipnn_report_heading(rep, "Examples");
        rc = image_grid(rep, p);
    } else {
        clipnn_report_text(rep, "The data are not images: no pictures of the examples.");
    }
    if (!rc) st = clipnn_report_save(rep, dir);
    clipnn_report_free(rep);
    if (rc) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report");
    return st ? cli_fail(cmd, st, "--report") : CLI_EXIT_OK;
}
