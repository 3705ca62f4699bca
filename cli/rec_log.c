/* clipnn train --log-radius-every, --log-time-grad: the recurrent side files
 * of the step log, one row per gate block or per step of the sequence. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rec_log.h"
#include "report.h"

char *cli_log_side_path(const char *log, const char *suffix) {
    size_t len = strlen(log), add = strlen(suffix);
    if (len >= 4 && !strcmp(log + len - 4, ".csv")) len -= 4;
    char *out = malloc(len + add + 1);
    if (!out) return NULL;
    memcpy(out, log, len);
    memcpy(out + len, suffix, add + 1);
    return out;
}

/* "every:N" (N >= 1) or a list of steps "S1,S2,...". */
static int parse_time_grad(const char *cmd, const char *text, cli_rec_log *l, clipnn_train_options *o) {
    char *end;
    if (!strncmp(text, "every:", 6)) {
        errno = 0;
        unsigned long long n = strtoull(text + 6, &end, 10);
        if (errno || end == text + 6 || *end || n == 0 || text[6] == '-')
            return cli_usage_error(cmd, "--log-time-grad %s: want every:N with N >= 1", text);
        o->log_time_grad_every = n;
        return 0;
    }
    size_t count = 1;
    for (const char *c = text; *c; c++) count += *c == ',';
    if (!(l->steps = malloc(count * sizeof *l->steps))) return CLI_EXIT_NOMEM;
    const char *p = text;
    for (size_t i = 0; i < count; i++) {
        errno = 0;
        l->steps[i] = strtoull(p, &end, 10);
        if (errno || end == p || *p == '-' || *p == '+' || (*end && *end != ','))
            return cli_usage_error(cmd, "--log-time-grad %s: want every:N or steps S1,S2,... (integers >= 0)", text);
        p = end + 1;
    }
    l->n_steps = count;
    o->log_time_grad_steps = l->steps;
    o->n_log_time_grad_steps = count;
    return 0;
}

static int open_side(const char *cmd, const char *log, const char *suffix, const char *header, char **path,
                     FILE **f) {
    if (!(*path = cli_log_side_path(log, suffix))) return CLI_EXIT_NOMEM;
    clipnn_status st = clipnn_output_open_live(*path, f);
    if (st) return cli_fail(cmd, st, *path);
    fputs(header, *f);
    return 0;
}

int cli_rec_log_open(cli_rec_log *l, const char *cmd, const char *log, const clipnn_model *m, uint64_t radius_every,
                     const char *time_grad, clipnn_train_options *o) {
    memset(l, 0, sizeof *l);
    if (!radius_every && !time_grad) return 0;
    const char *which = radius_every ? "--log-radius-every" : "--log-time-grad";
    if (!log) return cli_usage_error(cmd, "%s needs --log FILE.csv (its rows go beside it)", which);
    if (clipnn_model_layer_gates(m, 0) == 0)
        return cli_usage_error(cmd, "%s: the model has no recurrent layers", which);
    int rc = time_grad ? parse_time_grad(cmd, time_grad, l, o) : 0;
    if (!rc && radius_every)
        rc = open_side(cmd, log, ".radius.csv", "step,layer,gate,radius\n", &l->radius_path, &l->radius);
    if (!rc && time_grad) rc = open_side(cmd, log, ".time.csv", "step,layer,t,norm\n", &l->time_path, &l->time);
    o->log_radius_every = radius_every;
    return rc;
}

void cli_rec_log_row(cli_rec_log *l, const clipnn_model *m, const clipnn_step_record *r) {
    if (l->radius && r->rec_radius) {
        size_t i = 0;
        for (size_t layer = 0; clipnn_model_layer_gates(m, layer); layer++)
            for (size_t g = 0; g < clipnn_model_layer_gates(m, layer); g++)
                fprintf(l->radius, "%" PRIu64 ",%zu,%zu,%.9g\n", r->step, layer, g, r->rec_radius[i++]);
    }
    if (l->time && r->time_grad_norms) {
        size_t T = r->time_grad_steps;
        for (size_t layer = 0; clipnn_model_layer_gates(m, layer); layer++)
            for (size_t t = 0; t < T; t++)
                fprintf(l->time, "%" PRIu64 ",%zu,%zu,%.9g\n", r->step, layer, t + 1,
                        r->time_grad_norms[layer * T + t]);
    }
}

int cli_rec_log_close(cli_rec_log *l, const char *cmd) {
    int rc = cli_close_file(l->radius, cmd, l->radius_path);
    int rc2 = cli_close_file(l->time, cmd, l->time_path);
    free(l->radius_path), free(l->time_path), free(l->steps);
    memset(l, 0, sizeof *l);
    return rc ? rc : rc2;
}
