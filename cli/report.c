/* JSON summary writer, per-step CSV log, a training run as reported, progress line. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "run_report.h"

/* ---------------------------------------------------------------- JSON */

static void json_key(cli_json *j, const char *key) {
    if (j->count[j->depth]++) fputc(',', j->f);
    if (!key) return;
    fputc('"', j->f);
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) fputc(*c, j->f);
    fputs("\":", j->f);
}

void cli_json_begin(cli_json *j, FILE *f) {
    memset(j, 0, sizeof *j);
    /* under --json the objects meant for stdout are collected (cli.h) */
    j->f = f == stdout && cli_json_docs() ? cli_json_docs() : f;
    fputc('{', j->f);
}

void cli_json_end(cli_json *j) {
    fputs("}\n", j->f);
    fflush(j->f);
    if (j->f == cli_json_docs()) cli_json_doc_written();
}

void cli_json_open(cli_json *j, const char *key, char bracket) {
    json_key(j, key);
    fputc(bracket, j->f);
    if (j->depth + 1 < CLI_JSON_DEPTH) j->count[++j->depth] = 0;
}

void cli_json_close(cli_json *j, char bracket) {
    fputc(bracket, j->f);
    if (j->depth > 0) j->depth--;
}

void cli_json_str(cli_json *j, const char *key, const char *value) {
    json_key(j, key);
    if (!value) {
        fputs("null", j->f);
        return;
    }
    fputc('"', j->f);
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(j->f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", j->f);
        else if (*c == '\t') fputs("\\t", j->f);
        else if (*c < 0x20) fprintf(j->f, "\\u%04x", *c);
        else fputc(*c, j->f);
    }
    fputc('"', j->f);
}

void cli_json_num(cli_json *j, const char *key, double value) {
    json_key(j, key);
    /* JSON has no NaN or Infinity: a reader gets null and can tell. */
    if (isfinite(value)) fprintf(j->f, "%.10g", value);
    else fputs("null", j->f);
}

void cli_json_u64(cli_json *j, const char *key, uint64_t value) {
    json_key(j, key);
    fprintf(j->f, "%" PRIu64, value);
}

void cli_json_bool(cli_json *j, const char *key, int value) {
    json_key(j, key);
    fputs(value ? "true" : "false", j->f);
}

void cli_json_null(cli_json *j, const char *key) {
    json_key(j, key);
    fputs("null", j->f);
}

/* ------------------------------------------------------------ step log */

static const char STEP_HEADER[] =
    "step,lr,loss,pre_norm,post_norm,c,clipped,skipped,theta_norm,dist_from_start,"
    "sum_lr,sum_lr2,det_bound,lemma1_bound,batch_size,epsilon\n";
static const char GROUP_HEADER[] = "step,group,layer,tensor,pre_norm,post_norm,factor\n";

int cli_steplog_open(cli_steplog *l, const char *cmd, const char *path, const char *groups_path,
                     const clipnn_model *m) {
    memset(l, 0, sizeof *l);
    l->path = path;
    l->groups_path = groups_path;
    l->model = m;
    clipnn_status st = clipnn_output_open_live(path, &l->f);
    if (st) return cli_fail(cmd, st, path);
    fputs(STEP_HEADER, l->f);
    if (groups_path) {
        if ((st = clipnn_output_open_live(groups_path, &l->groups))) {
            clipnn_output_close(l->f, NULL);
            l->f = NULL;
            return cli_fail(cmd, st, groups_path);
        }
        fputs(GROUP_HEADER, l->groups);
    }
    return CLI_EXIT_OK;
}

/* %.9g keeps every float32 digit; nan and inf are written as such (CSV
 * readers such as numpy and pandas parse them). */
static void csv_num(FILE *f, double v, char sep) { fprintf(f, "%.9g%c", v, sep); }

void cli_group_name(const clipnn_model *m, size_t g, char *buf, size_t cap, const char **tensor) {
    static const char *const rec_tensors[4] = {"W_ih", "W_hh", "b_ih", "b_hh"};
    clipnn_group info = clipnn_model_group(m, g);
    /* a recurrent layer's four tensors come first, in PyTorch's order */
    int dense = clipnn_model_layer_kind(m, info.layer) == CLIPNN_LAYER_DENSE;
    const char *t = dense ? (info.is_bias ? "b" : "W") : rec_tensors[g % 4];
    if (tensor) *tensor = t;
    snprintf(buf, cap, "layer %zu %s", info.layer, t);
}

/* The clipper's own per-group norms and factors: the gradient block after
 * the step may hold the unclipped gradient (factors left to the update). */
static void group_rows(cli_steplog *l, const clipnn_step_record *r) {
    if (!r->group_norms) return;
    for (size_t g = 0; g < clipnn_model_n_groups(l->model); g++) {
        char name[64];
        const char *tensor;
        cli_group_name(l->model, g, name, sizeof name, &tensor);
        fprintf(l->groups, "%" PRIu64 ",%zu,%zu,%s,", r->step, g, clipnn_model_group(l->model, g).layer, tensor);
        csv_num(l->groups, r->group_norms[g], ',');
        csv_num(l->groups, r->group_post_norms[g], ',');
        csv_num(l->groups, r->group_factors[g], '\n');
    }
}

void cli_steplog_row(cli_steplog *l, const clipnn_step_record *r) {
    if (!l->f) return;
    FILE *f = l->f;
    fprintf(f, "%" PRIu64 ",", r->step);
    csv_num(f, r->lr, ',');
    csv_num(f, r->loss, ',');
    csv_num(f, r->clip.pre_norm, ',');
    csv_num(f, r->clip.post_norm, ',');
    csv_num(f, r->clip.factor, ',');
    fprintf(f, "%d,%d,", r->clip.clipped ? 1 : 0, r->clip.skipped ? 1 : 0);
    csv_num(f, r->clip.theta_norm, ',');
    csv_num(f, r->dist_from_start, ',');
    csv_num(f, r->sum_lr, ',');
    csv_num(f, r->sum_lr2, ',');
    csv_num(f, r->det_bound, ',');
    csv_num(f, r->lemma1_bound, ',');
    fprintf(f, "%zu,", r->batch_size);
    csv_num(f, r->epsilon, '\n');
    if (l->groups) group_rows(l, r);
}

/* Kept when every write succeeded, else removed (a device is only closed). */
int cli_close_file(FILE *f, const char *cmd, const char *path) {
    clipnn_status st = clipnn_output_close(f, "log");
    return st ? cli_fail(cmd, st, path) : CLI_EXIT_OK;
}

int cli_steplog_close(cli_steplog *l, const char *cmd) {
    int rc = cli_close_file(l->f, cmd, l->path);
    int rc2 = cli_close_file(l->groups, cmd, l->groups_path);
    memset(l, 0, sizeof *l);
    return rc ? rc : rc2;
}

/* ------------------------------------------------------------ training */

clipnn_status cli_train(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                        const clipnn_train_options *o, clipnn_train_result *r) {
    clipnn_status st = clipnn_train(m, train, test, o, r);
    if (st && !(st == CLIPNN_ERR_NONFINITE && r->diverged)) return st;
    if (r->diverged) {
        /* The last per-epoch figures predate the divergence. */
        r->train_loss = NAN;
        if (test) clipnn_evaluate(m, test, &o->loss, &r->test_loss, &r->test_accuracy);
    }
    return CLIPNN_OK;
}

void cli_model_arch(const clipnn_model *m, int with_inputs, char *buf, size_t cap) {
    size_t len = with_inputs ? (size_t)snprintf(buf, cap, "%zu", clipnn_model_n_inputs(m)) : 0;
    if (!with_inputs) buf[0] = 0;
    for (size_t l = 0; l < clipnn_model_n_layers(m) && len < cap; l++) {
        clipnn_layer_kind kind = clipnn_model_layer_kind(m, l);
        char name[16] = "";
        if (kind != CLIPNN_LAYER_DENSE) snprintf(name, sizeof name, "%s:", clipnn_layer_kind_name(kind));
        for (char *c = name; *c; c++) *c = *c == '-' ? '_' : *c; /* as --arch writes it */
        len += (size_t)snprintf(buf + len, cap - len, "%s%s%zu", len ? "-" : "", name, clipnn_model_layer_width(m, l));
    }
}

/* ------------------------------------------------------------ progress */

void cli_progress_epoch(const char *cmd, const char *label, const clipnn_epoch_record *r) {
    char acc[32];
    if (isnan(r->test_accuracy)) snprintf(acc, sizeof acc, "-");
    else snprintf(acc, sizeof acc, "%.2f%%", 100.0 * r->test_accuracy);
    char eps[64] = ""; /* a private run's epsilon so far */
    if (isfinite(r->epsilon)) snprintf(eps, sizeof eps, "  epsilon %.4f at delta %g", r->epsilon, r->delta);
    fprintf(stderr, "clipnn %s:%s%s epoch %zu/%zu  train loss %.4g  test loss %.4g  test acc %s  "
                    "clipped %.1f%%  %.0f samples/s%s\n",
            cmd, label ? " " : "", label ? label : "", r->epoch, r->n_epochs, r->train_loss,
            r->test_loss, acc, 100.0 * r->clipped_fraction, r->samples_per_second, eps);
}
