/* Checkpoints that remember their data, on the command line (recorded.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recorded.h"
#include "report.h"
#include "resume_opts.h"

static clipnn_data_info *recorded;
static char announcement[1024]; /* said once, when the record is applied */

const clipnn_data_info *cli_recorded(void) { return recorded; }

void cli_recorded_free(void) {
    clipnn_data_info_free(recorded);
    recorded = NULL;
    announcement[0] = 0;
}

int cli_recorded_matches(const cli_settings *s) {
    const char *spec = clipnn_data_info_spec(recorded);
    if (!spec) return 0;
    clipnn_data_options o = clipnn_data_info_options(recorded);
    return !strcmp(s->data, spec) && !strcmp(s->scale, clipnn_scaling_name(o.scaling)) &&
           s->data_seed == o.seed && s->test_fraction == o.test_fraction;
}

/* A data option given on the command line that the record contradicts:
 * its name, or NULL. --data none (no data at all) contradicts nothing. */
static const char *conflict(const cli_settings *s, int argc, char **argv) {
    clipnn_data_options o = clipnn_data_info_options(recorded);
    if (cli_argv_has(argc, argv, "--data") && strcmp(s->data, "none") &&
        strcmp(s->data, clipnn_data_info_spec(recorded)))
        return "--data";
    if (cli_argv_has(argc, argv, "--scale") && strcmp(s->scale, clipnn_scaling_name(o.scaling))) return "--scale";
    if (cli_argv_has(argc, argv, "--test-fraction") && s->test_fraction != o.test_fraction) return "--test-fraction";
    if (cli_argv_has(argc, argv, "--data-seed") && s->data_seed != o.seed) return "--data-seed";
    return NULL;
}

/* The record's settings into s (a given --data none stays). */
static void adopt(cli_settings *s, const char *cmd, const char *path) {
    clipnn_data_options o = clipnn_data_info_options(recorded);
    if (strcmp(s->data, "none")) s->data = clipnn_data_info_spec(recorded);
    s->scale = clipnn_scaling_name(o.scaling);
    s->data_seed = o.seed;
    s->test_fraction = o.test_fraction;
    snprintf(announcement, sizeof announcement, "clipnn %s: data as recorded in %s: %s, scaling %s with the "
             "training statistics, split seed %llu, test fraction %g\n", cmd, path, clipnn_data_info_spec(recorded),
             s->scale, (unsigned long long)o.seed, o.test_fraction);
}

void cli_recorded_announce(void) {
    fputs(announcement, stderr);
    announcement[0] = 0;
}

int cli_recorded_use(const char *cmd, const char *path, clipnn_data_info *info, cli_settings *s, int argc,
                     char **argv) {
    cli_recorded_free();
    recorded = info;
    if (!clipnn_data_info_spec(recorded)) return 0;
    const char *which = conflict(s, argc, argv);
    if (which && !s->force)
        return cli_usage_error(cmd, "%s differs from the data %s was trained on (%s, scaling %s); "
                               "add --force to use it anyway", which, path, clipnn_data_info_spec(recorded),
                               clipnn_scaling_name(clipnn_data_info_options(recorded).scaling));
    if (!which) adopt(s, cmd, path);
    return 0;
}

int cli_load_model_recorded(const char *cmd, const char *path, cli_settings *s, int argc, char **argv,
                            clipnn_model **m) {
    clipnn_data_info *info = NULL;
    clipnn_status st = clipnn_checkpoint_load_info(path, m, NULL, &info);
    if (st) return cli_fail(cmd, st, path);
    int rc = cli_recorded_use(cmd, path, info, s, argc, argv);
    if (rc) {
        clipnn_model_free(*m);
        *m = NULL;
    }
    return rc;
}

static int set_text(clipnn_data_info *info, const char *key, const char *value) {
    return value ? (int)clipnn_data_info_set(info, key, value) : 0;
}

static int set_num(clipnn_data_info *info, const char *key, double v) {
    char text[32];
    cli_num_text(v, text, sizeof text);
    return (int)clipnn_data_info_set(info, key, text);
}

int cli_record_options(const char *cmd, clipnn_data_info *info, const cli_settings *s, const char *arch,
                       const clipnn_train_options *o) {
    int bad = set_text(info, "train.arch", arch);
    bad = bad || set_text(info, "train.act", s->act);
    bad = bad || set_num(info, s->steps ? "train.steps" : "train.epochs", (double)(s->steps ? s->steps : s->epochs));
    bad = bad || cli_record_trajectory(info, s, o);
    bad = bad || set_num(info, "train.lambda", cli_rule_threshold(&o->clip));
    return bad ? cli_fail(cmd, CLIPNN_ERR_NOMEM, "data record") : 0;
}

int cli_record_run(const char *cmd, clipnn_data_info *info, const cli_settings *s, const char *arch,
                   const clipnn_train_options *o, const clipnn_train_result *r) {
    int rc = cli_record_options(cmd, info, s, arch, o);
    if (rc) return rc;
    int bad = set_num(info, "result.steps", (double)r->steps);
    bad = bad || set_num(info, "result.train_loss", r->train_loss);
    bad = bad || set_num(info, "result.test_loss", r->test_loss);
    bad = bad || set_num(info, "result.test_accuracy", r->test_accuracy);
    return bad ? cli_fail(cmd, CLIPNN_ERR_NOMEM, "data record") : 0;
}
