/* The HTML report of a training run: its options and final figures, loss and
 * accuracy per epoch, and per step the gradient norms before and after
 * clipping, c(t), the clipped fraction, the distance travelled against
 * lambda * sum a(t), the per-group norms and the learning rate. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_report.h"

enum { MAX_EPOCH_ROWS = 60 };

/* The columns of a table, copied out as series. */
typedef struct {
    double *c[RL_MAX_COLS];
    size_t n;
} columns;

static int columns_of(const cli_table *t, columns *out) {
    memset(out, 0, sizeof *out);
    out->n = t->n;
    for (size_t k = 0; k < t->width && k < sizeof out->c / sizeof *out->c; k++) {
        if (!(out->c[k] = malloc((t->n ? t->n : 1) * sizeof *out->c[k]))) return CLI_EXIT_NOMEM;
        for (size_t i = 0; i < t->n; i++) out->c[k][i] = t->v[i * t->width + k];
    }
    return CLI_EXIT_OK;
}

static void columns_free(columns *c) {
    for (size_t k = 0; k < sizeof c->c / sizeof *c->c; k++) free(c->c[k]);
}

static int any_finite(const double *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) return 1;
    return 0;
}

/* A chart of the series that hold a finite value (a column never measured,
 * such as a training accuracy the log lacks, is left out, not marked). */
static void chart(clipnn_report *rep, const clipnn_chart_axes *ax, clipnn_chart_series *s, size_t n) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].n && any_finite(s[i].y, s[i].n)) s[kept++] = s[i];
    if (kept) clipnn_report_line_chart(rep, ax, s, kept);
}

static void epoch_table(clipnn_report *rep, const columns *e) {
    static const char *const head[] = {"epoch", "train loss", "train acc", "test loss", "test acc",
                                       "clipped", "seconds", "lr"};
    const size_t every = (e->n + MAX_EPOCH_ROWS - 1) / MAX_EPOCH_ROWS, cols = RL_EPOCH_COLS;
    char (*text)[24] = calloc((MAX_EPOCH_ROWS + 1) * cols, sizeof *text);
    const char **cells = calloc((MAX_EPOCH_ROWS + 2) * cols, sizeof *cells);
    size_t rows = 1;
    if (!text || !cells) goto done;
    for (size_t k = 0; k < cols; k++) cells[k] = head[k];
    for (size_t i = 0; i < e->n; i++) {
        if (i % every && i != e->n - 1) continue;
        for (size_t k = 0; k < cols; k++) {
            char *t = text[(rows - 1) * cols + k];
            double v = e->c[k][i];
            int percent = k == RL_TRAIN_ACC || k == RL_TEST_ACC || k == RL_CLIPPED_FRAC;
            if (isnan(v)) snprintf(t, 24, "-");
            else if (percent) snprintf(t, 24, "%.2f%%", 100 * v);
            else snprintf(t, 24, k == RL_EPOCH ? "%.0f" : "%.4g", v);
            cells[rows * cols + k] = t;
        }
        if (++rows > MAX_EPOCH_ROWS + 1) break;
    }
    clipnn_report_table(rep, rows, cols, cells);
done:
    free(text);
    free(cells);
}

static void epoch_section(clipnn_report *rep, const columns *e) {
    clipnn_report_heading(rep, "Loss and accuracy per epoch");
    if (!e->n) {
        clipnn_report_text(rep, "No per-epoch figures (the log of a run written without --log-epochs).");
        return;
    }
    const double *x = e->c[RL_EPOCH];
    clipnn_chart_series loss[] = {{"training loss (epoch mean)", x, e->c[RL_TRAIN_LOSS], e->n, 0, 0},
                                  {"test loss", x, e->c[RL_TEST_LOSS], e->n, 1, 0}};
    clipnn_chart_axes ax = {"Loss per epoch", "epoch", "loss", 0, 1, 0, 0};
    chart(rep, &ax, loss, 2);
    clipnn_chart_series acc[] = {{"training accuracy", x, e->c[RL_TRAIN_ACC], e->n, 0, 0},
                                 {"test accuracy", x, e->c[RL_TEST_ACC], e->n, 1, 0},
                                 {"steps clipped", x, e->c[RL_CLIPPED_FRAC], e->n, 2, 1}};
    clipnn_chart_axes ax2 = {"Accuracy and clipped fraction per epoch", "epoch", "fraction", 0, 0, 0, 1};
    chart(rep, &ax2, acc, 3);
    epoch_table(rep, e);
}

/* The rule's threshold: as the run gave it, else from a log that clipped,
 * lambda = det_bound / sum a (a rule that never clips may have none). */
static double threshold_of(const cli_runlog *l, const columns *s) {
    if (l->threshold_known) return l->threshold;
    int clipped = 0;
    for (size_t i = 0; i < s->n && !clipped; i++) clipped = s->c[RL_CLIPPED][i] > 0;
    const double *bound = s->c[RL_DET_BOUND], *sum_lr = s->c[RL_SUM_LR];
    for (size_t i = s->n; clipped && i-- > 0;)
        if (isfinite(bound[i]) && sum_lr[i] > 0) return bound[i] / sum_lr[i];
    return NAN;
}

static void norm_chart(clipnn_report *rep, const cli_runlog *l, const columns *s) {
    const double *x = s->c[RL_STEP];
    double lambda = threshold_of(l, s), tx[2] = {x[0], x[s->n - 1]}, ty[2] = {lambda, lambda};
    char name[64];
    snprintf(name, sizeof name, "threshold lambda = %.4g", lambda);
    /* after first: where nothing was clipped the line before clipping covers it */
    clipnn_chart_series g[] = {{"after clipping ||g / c||", x, s->c[RL_POST], s->n, 2, 0},
                               {"before clipping ||g||", x, s->c[RL_PRE], s->n, 0, 0},
                               {name, tx, ty, isfinite(lambda) ? 2 : 0, 1, 1}};
    clipnn_chart_axes ax = {"Gradient norm per step", "step", "norm", 0, 1, 0, 0};
    chart(rep, &ax, g, 3);
}

/* The fraction of clipped steps in windows of about n / 300 steps. */
static void clipped_chart(clipnn_report *rep, const columns *s) {
    size_t w = s->n / 300 ? s->n / 300 : 1, n = (s->n + w - 1) / w;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t k = 0; x && y && k < n; k++) {
        size_t a = k * w, b = a + w < s->n ? a + w : s->n;
        double clipped = 0;
        for (size_t i = a; i < b; i++) clipped += s->c[RL_CLIPPED][i] > 0;
        x[k] = 0.5 * (s->c[RL_STEP][a] + s->c[RL_STEP][b - 1]);
        y[k] = clipped / (double)(b - a);
    }
    char name[64];
    snprintf(name, sizeof name, "fraction of steps clipped, windows of %zu step%s", w, w > 1 ? "s" : "");
    clipnn_chart_series c[] = {{name, x, y, x && y ? n : 0, 3, 0}};
    clipnn_chart_axes ax = {"Clipped fraction", "step", "fraction clipped", 0, 0, 0, 1};
    chart(rep, &ax, c, 1);
    free(x);
    free(y);
}

static void step_section(clipnn_report *rep, const cli_runlog *l, const columns *s) {
    const double *x = s->c[RL_STEP];
    clipnn_report_heading(rep, "Per step");
    clipnn_chart_series loss[] = {{"minibatch loss", x, s->c[RL_LOSS], s->n, 0, 0}};
    clipnn_chart_axes ax = {"Training loss per step", "step", "loss", 0, 1, 0, 0};
    chart(rep, &ax, loss, 1);
    norm_chart(rep, l, s);
    clipnn_chart_series c[] = {{"c(t): the step is g / c(t)", x, s->c[RL_C], s->n, 4, 0}};
    clipnn_chart_axes axc = {"Clipping factor c(t)", "step", "c(t)", 0, 1, 0, 0};
    chart(rep, &axc, c, 1);
    clipped_chart(rep, s);
    clipnn_chart_series d[] = {{"||theta(t) - theta(0)||", x, s->c[RL_DIST], s->n, 0, 0},
                               {"lambda * sum a(t)", x, s->c[RL_DET_BOUND], s->n, 1, 1}};
    clipnn_chart_axes axd = {"Distance from the start", "step", "distance", 0, 1, 0, 0};
    chart(rep, &axd, d, 2);
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->c[RL_LR][i] > 0) lo = fmin(lo, s->c[RL_LR][i]), hi = fmax(hi, s->c[RL_LR][i]);
    clipnn_chart_series lr[] = {{"a(t)", x, s->c[RL_LR], s->n, 5, 0}};
    clipnn_chart_axes axl = {"Learning rate", "step", "a(t)", 0, hi > 100 * lo, 0, 0};
    chart(rep, &axl, lr, 1);
}

/* The groups' norms as a heat map, one row per group. */
static void group_section(clipnn_report *rep, const cli_runlog *l) {
    const size_t n = l->groups.n, G = l->n_groups;
    if (!n || !G) return;
    double *v = malloc(n * G * sizeof *v), *x = malloc(n * sizeof *x);
    if (v && x) {
        for (size_t i = 0; i < n; i++) {
            x[i] = l->groups.v[i * (G + 1)];
            for (size_t g = 0; g < G; g++) v[g * n + i] = l->groups.v[i * (G + 1) + 1 + g];
        }
        clipnn_report_heading(rep, "Per parameter group");
        clipnn_heat_map h = {"Gradient norm of each parameter group before clipping", "step", "norm (log scale)",
                             G, n, v, (const char *const *)l->group_names, x, 1};
        clipnn_report_heat_map(rep, &h);
    }
    free(v);
    free(x);
}

int cli_runlog_report(const cli_runlog *l, const char *cmd, const char *title, const char *const *names,
                      const char *const *values, size_t n_info, const char *dir) {
    clipnn_report *rep;
    clipnn_status st = clipnn_report_create(&rep, title);
    if (st) return cli_fail(cmd, st, "--report");
    columns s = {{0}, 0}, e = {{0}, 0};
    int rc = columns_of(&l->steps, &s);
    if (!rc) rc = columns_of(&l->epochs, &e);
    if (!rc) {
        const char **cells = malloc(2 * (n_info + 1) * sizeof *cells);
        if (cells) {
            cells[0] = "option or figure", cells[1] = "value";
            for (size_t i = 0; i < n_info; i++) cells[2 + 2 * i] = names[i], cells[3 + 2 * i] = values[i];
            clipnn_report_table(rep, n_info + 1, 2, cells);
        }
        free(cells);
        epoch_section(rep, &e);
        if (s.n) step_section(rep, l, &s);
        group_section(rep, l);
        st = clipnn_report_save(rep, dir);
    }
    columns_free(&s);
    columns_free(&e);
    clipnn_report_free(rep);
    if (rc) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report");
    return st ? cli_fail(cmd, st, "--report") : CLI_EXIT_OK;
}

/* ------------------------------------------------------ clipnn train */

int cli_train_runlog(cli_runlog *l, const clipnn_model *m, const clipnn_train_options *o) {
    cli_runlog_init(l);
    l->threshold = cli_rule_threshold(&o->clip);
    l->threshold_known = 1;
    return o->log_groups ? cli_runlog_groups(l, m) : CLI_EXIT_OK;
}

enum { MAX_INFO = 32 };

typedef struct {
    const char *names[MAX_INFO];
    const char *values[MAX_INFO];
    char text[MAX_INFO][96];
    size_t n;
} info_table;

static void info_add(info_table *t, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void info_add(info_table *t, const char *name, const char *fmt, ...) {
    if (t->n == MAX_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->text[t->n], sizeof t->text[0], fmt, ap);
    va_end(ap);
    t->names[t->n] = name;
    t->values[t->n] = t->text[t->n];
    t->n++;
}

static void train_options_info(info_table *t, const cli_train_info *in) {
    const cli_settings *s = in->s;
    info_add(t, "data", "%s: %zu training, %zu test examples, %zu inputs", s->data, cli_whole_rows(in->train),
             in->test ? clipnn_dataset_n(in->test) : (size_t)0, clipnn_dataset_dim(in->train));
    info_add(t, "model", "%s (%s), %zu parameters", in->arch, s->act, in->n_params);
    info_add(t, "loss", "%s", clipnn_loss_name(in->o->loss.loss));
    info_add(t, "optimizer", "%s, lr %g, momentum %g, weight decay %g", s->opt, s->lr, s->momentum, s->wd);
    info_add(t, "schedule", "%s", s->schedule);
    info_add(t, "batch", "%zu", s->batch);
    if (s->steps) info_add(t, "steps asked", "%llu", (unsigned long long)s->steps);
    else info_add(t, "epochs", "%zu", s->epochs);
    info_add(t, "clipping rule", "%s", clipnn_clip_rule_name(in->o->clip.rule));
    double lambda = cli_rule_threshold(&in->o->clip);
    if (isnan(lambda)) info_add(t, "threshold", "-");
    else info_add(t, "threshold", "%g", lambda);
    info_add(t, "seed", "%llu", (unsigned long long)s->seed);
    info_add(t, "threads", "%d", clipnn_get_threads());
}

static void train_result_info(info_table *t, const clipnn_train_result *r) {
    info_add(t, "test accuracy", "%.2f%%", 100 * r->test_accuracy);
    info_add(t, "test loss", "%.4g", r->test_loss);
    info_add(t, "training loss", "%.4g", r->train_loss);
    if (r->diverged) info_add(t, "diverged", "at step %llu", (unsigned long long)r->diverged_step);
    else info_add(t, "diverged", "no");
    info_add(t, "steps", "%llu", (unsigned long long)r->steps);
    info_add(t, "steps clipped", "%.1f%%", 100 * r->clipped_fraction);
    info_add(t, "steps skipped", "%llu", (unsigned long long)r->skipped_steps);
    info_add(t, "max ||theta - theta(0)||", "%.4g", r->max_dist_from_start);
    info_add(t, "seconds", "%.2f", r->seconds);
}

int cli_train_report(const char *cmd, const char *dir, cli_runlog *l, const cli_train_info *in) {
    if (cli_runlog_epochs(l, in->history)) return cli_fail(cmd, CLIPNN_ERR_NOMEM, "--report");
    info_table t = {.n = 0};
    train_options_info(&t, in);
    train_result_info(&t, in->r);
    return cli_runlog_report(l, cmd, "clipnn train", t.names, t.values, t.n, dir);
}
