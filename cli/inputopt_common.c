/* Helpers of attack, optimize-input and diagnose (see inputopt_common.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inputopt_common.h"
#include "recorded.h"

int cli_parse_list(const char *cmd, const char *opt, const char *text, double *out, size_t cap, size_t *n) {
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || (*end && *end != ','))
            return cli_usage_error(cmd, "%s '%s': want numbers separated by commas", opt, text);
        if (*n >= cap) return cli_usage_error(cmd, "%s '%s': at most %zu values", opt, text, cap);
        out[(*n)++] = v;
        p = *end ? end + 1 : end;
        if (*end && !*p) return cli_usage_error(cmd, "%s '%s': trailing comma", opt, text);
    }
    if (*n == 0) return cli_usage_error(cmd, "%s: empty list", opt);
    return 0;
}

int cli_parse_pair(const char *cmd, const char *opt, const char *text, double *a, double *b) {
    double v[2];
    size_t n;
    int rc = cli_parse_list(cmd, opt, text, v, 2, &n);
    if (rc) return rc;
    if (n != 2 || !(v[0] < v[1])) return cli_usage_error(cmd, "%s '%s': want LO,HI with LO < HI", opt, text);
    *a = v[0], *b = v[1];
    return 0;
}

int cli_parse_io_loss(const char *cmd, const char *text, int allow_output, clipnn_loss *loss, double *kappa) {
    *kappa = 0;
    /* LOSS or margin:KAPPA; the names are the library's, the choice of
     * them this command's. */
    char name[16];
    size_t len = strcspn(text, ":");
    int known = len < sizeof name;
    if (known) {
        memcpy(name, text, len);
        name[len] = 0;
        known = clipnn_loss_parse(name, loss) == CLIPNN_OK;
    }
    int class_loss = known && (*loss == CLIPNN_LOSS_XENT || *loss == CLIPNN_LOSS_MARGIN);
    if (!known || !(class_loss || allow_output) || (text[len] && *loss != CLIPNN_LOSS_MARGIN))
        return cli_usage_error(cmd, "--loss '%s': want xent, margin or margin:KAPPA%s", text,
                               allow_output ? ", mse or bce" : "");
    if (text[len]) {
        char *end;
        *kappa = strtod(text + len + 1, &end);
        if (end == text + len + 1 || *end || !(*kappa >= 0) || !isfinite(*kappa))
            return cli_usage_error(cmd, "--loss '%s': KAPPA must be a number >= 0", text);
    }
    return 0;
}

/* Per feature, the affine map from pixels in [0, 1] (u) to the model's
 * scaled input (s): s = (u - mean) / std, read off the two loaded copies
 * of the training set (the lowest and highest pixel of each feature). A
 * feature constant over the training set has no slope to read: the model
 * then saw 0 for it and the library scaled it by 1 in raw units, so its
 * slope is the full-scale pixel value. */
static int fit_map(const char *cmd, const clipnn_dataset *u, const clipnn_dataset *s, const clipnn_dataset *raw,
                   float *mean, float *std) {
    size_t n = clipnn_dataset_n(u), dim = clipnn_dataset_dim(u);
    const float *xu = clipnn_dataset_x(u), *xs = clipnn_dataset_x(s);
    double full_scale = 0;
    if (raw) {
        const float *xr = clipnn_dataset_x(raw);
        for (size_t i = 0; i < n * dim && full_scale == 0; i++)
            if (xu[i] > 0) full_scale = xr[i] / xu[i];
    }
    for (size_t j = 0; j < dim; j++) {
        size_t lo = 0, hi = 0;
        for (size_t i = 1; i < n; i++) {
            if (xu[i * dim + j] < xu[lo * dim + j]) lo = i;
            if (xu[i * dim + j] > xu[hi * dim + j]) hi = i;
        }
        double du = (double)xu[hi * dim + j] - xu[lo * dim + j], ds = (double)xs[hi * dim + j] - xs[lo * dim + j];
        double sd;
        if (du > 0 && ds != 0) {
            sd = du / ds;
        } else if (full_scale > 0) {
            sd = 1.0 / full_scale;
        } else {
            fprintf(stderr, "clipnn %s: feature %zu is constant in the training data and its scale is unknown\n", cmd,
                    j);
            return CLI_EXIT_INPUT;
        }
        std[j] = (float)sd;
        mean[j] = (float)(xu[lo * dim + j] - xs[lo * dim + j] * sd);
    }
    return 0;
}

/* The model saw other units than pixels: the pixels in d->pixels and the
 * map from them to the model's inputs (d->mean, d->std), read off the
 * training set loaded as pixels and, for the constant features, raw. */
static int map_pixels(const char *cmd, const cli_settings *s, size_t dim, cli_io_data *d) {
    cli_settings su = *s;
    su.scale = "unit";
    clipnn_dataset *utrain = NULL, *raw = NULL, *rawtest = NULL;
    int rc = cli_load_data(cmd, &su, &utrain, &d->pixels);
    if (rc) return rc;
    /* "auto" may well have chosen the pixels already */
    const float *a = clipnn_dataset_x(utrain), *b = clipnn_dataset_x(d->train);
    int same = clipnn_dataset_n(utrain) == clipnn_dataset_n(d->train);
    for (size_t i = 0; same && i < clipnn_dataset_n(utrain) * dim; i++) same = a[i] == b[i];
    if (same) {
        clipnn_dataset_free(utrain);
        clipnn_dataset_free(d->pixels);
        d->pixels = NULL;
        return 0;
    }
    if (!strcmp(s->scale, "none")) {
        raw = d->train;
    } else {
        cli_settings sr = *s;
        sr.scale = "none";
        if ((rc = cli_load_data(cmd, &sr, &raw, &rawtest))) {
            clipnn_dataset_free(utrain);
            return rc;
        }
    }
    d->mean = malloc(2 * dim * sizeof *d->mean);
    if (!d->mean) {
        rc = cli_fail(cmd, CLIPNN_ERR_NOMEM, "input map");
    } else {
        d->std = d->mean + dim;
        rc = fit_map(cmd, utrain, d->train, raw, d->mean, d->std);
    }
    if (raw != d->train) clipnn_dataset_free(raw);
    clipnn_dataset_free(rawtest);
    clipnn_dataset_free(utrain);
    d->space.mean = d->mean;
    d->space.std = d->std;
    return rc;
}

int cli_io_load(const char *cmd, const cli_settings *s, const char *box, size_t n_inputs, cli_io_data *d) {
    memset(d, 0, sizeof *d);
    int rc = cli_load_data(cmd, s, &d->train, &d->test);
    if (rc) return rc;
    size_t dim = clipnn_dataset_dim(d->train);
    if (dim != n_inputs) {
        fprintf(stderr, "clipnn %s: --data %s has %zu features but the model takes %zu inputs\n", cmd, s->data, dim,
                n_inputs);
        return CLI_EXIT_INPUT;
    }
    if (!d->test) {
        fprintf(stderr, "clipnn %s: --data %s has no test part\n", cmd, s->data);
        return CLI_EXIT_USAGE;
    }
    size_t c;
    clipnn_dataset_image_shape(d->train, &d->h, &d->w, &c);
    int image = d->h > 0 && d->w > 0 && c == 1 && d->h * d->w == dim;
    if (!image) d->h = d->w = 0;
    d->space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    if (image) d->space.box_lo = 0, d->space.box_hi = 1;
    if (box && (rc = cli_parse_pair(cmd, "--box", box, &d->space.box_lo, &d->space.box_hi))) return rc;
    if (!image || !strcmp(s->scale, "unit")) return 0;
    return map_pixels(cmd, s, dim, d);
}

void cli_io_free(cli_io_data *d) {
    clipnn_dataset_free(d->train);
    clipnn_dataset_free(d->test);
    clipnn_dataset_free(d->pixels);
    free(d->mean);
    memset(d, 0, sizeof *d);
}

const float *cli_io_test_x(const cli_io_data *d) {
    return clipnn_dataset_x(d->pixels ? d->pixels : d->test);
}

int cli_write_inputs(const char *cmd, const char *dir, const char *name, const float *x, size_t n, size_t dim,
                     const cli_io_data *d) {
    size_t steps = 0, step_dim = 0;
    if (d->train) clipnn_dataset_seq_shape(d->train, &steps, &step_dim);
    size_t shape[3] = {n, steps, step_dim};
    if (steps * step_dim != dim || steps == 0) shape[1] = dim;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clipnn_status st = clipnn_npy_write_nd(path, x, shape, shape[1] == dim ? 2 : 3);
    return st ? cli_fail(cmd, st, path) : 0;
}

int cli_io_input(const char *cmd, const char *spec, const cli_io_data *d, size_t n_inputs, float *x, int *label) {
    *label = -1;
    if (!strncmp(spec, "data:", 5)) {
        if (!d || !d->test) return cli_usage_error(cmd, "'%s' needs --data", spec);
        char *end;
        errno = 0;
        unsigned long long i = strtoull(spec + 5, &end, 10);
        size_t n = clipnn_dataset_n(d->test);
        if (end == spec + 5 || *end || errno || spec[5] == '-')
            return cli_usage_error(cmd, "'%s': want data:INDEX with a non-negative integer", spec);
        if (i >= n) return cli_usage_error(cmd, "'%s': the test part has %zu examples (0 to %zu)", spec, n, n - 1);
        memcpy(x, cli_io_test_x(d) + (size_t)i * n_inputs, n_inputs * sizeof *x);
        if (clipnn_dataset_n_classes(d->test) > 0) *label = (int)clipnn_dataset_y(d->test)[i];
        return 0;
    }
    float *v = NULL;
    size_t shape[CLIPNN_NPY_MAX_DIMS], ndim = 0, count = 1;
    clipnn_status st = clipnn_npy_read_nd(spec, &v, shape, &ndim);
    if (st) return cli_fail(cmd, st, spec);
    for (size_t i = 0; i < ndim; i++) count *= shape[i]; /* bounded by the file's size */
    int rc = 0;
    if (count != n_inputs) {
        fprintf(stderr, "clipnn %s: %s: holds %zu numbers, the model takes %zu inputs\n", cmd, spec, count, n_inputs);
        rc = CLI_EXIT_INPUT;
    } else {
        for (size_t i = 0; i < count && !rc; i++)
            if (!isfinite(v[i])) {
                fprintf(stderr, "clipnn %s: %s: value %zu is not finite\n", cmd, spec, i);
                rc = CLI_EXIT_INPUT;
            }
        if (!rc) memcpy(x, v, n_inputs * sizeof *x);
    }
    free(v);
    return rc;
}

void cli_print_diagnosis(FILE *f, const clipnn_diagnosis *d) {
    fprintf(f, "gradient the optimizer sees: norm %.4g (%.4g before the box projection); double reference: %.4g\n",
            d->grad_norm, d->grad_norm_raw, d->grad_norm_ref);
    fprintf(f, "objective %.8g (double %.8g); %s, %s\n", d->value, d->value_ref,
            d->stalled ? "stalled (gradient tiny)" : "not stalled", d->stationary ? "stationary" : "not stationary");
    if (d->n_findings == 0)
        fprintf(f, "causes: none found%s\n",
                d->at_target ? " (the objective is met here: nothing stops the optimization short of it)" : "");
    for (size_t i = 0; i < d->n_findings; i++) {
        const clipnn_finding *c = &d->findings[i];
        fprintf(f, "cause: %s\n  test:   %s\n  found:  %s\n  remedy: %s\n", clipnn_cause_name(c->cause), c->test,
                c->numbers, c->remedy);
    }
    for (size_t i = 0; i < d->n_checks; i++)
        fprintf(f, "check %-24s %s  %s\n", d->checks[i].test, d->checks[i].passed ? "ok  " : "note",
                d->checks[i].numbers);
}

static size_t zoom_for(size_t h, size_t w) {
    size_t big = h > w ? h : w, z = 256 / (big ? big : 1);
    return z < 1 ? 1 : z;
}

int cli_write_gray(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                   double lo, double hi) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clipnn_status st = clipnn_png_write_gray(path, x, h, w, lo, hi, zoom_for(h, w));
    return st ? cli_fail(cmd, st, path) : 0;
}

int cli_write_signed(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                     double amp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clipnn_status st = clipnn_png_write_signed(path, x, h, w, amp, zoom_for(h, w));
    return st ? cli_fail(cmd, st, path) : 0;
}

int cli_io_load_or_none(const char *cmd, const cli_settings *s, const char *box, size_t n_inputs, cli_io_data *d,
                        int *have_data) {
    *have_data = strcmp(s->data, "none") != 0;
    if (*have_data) return cli_io_load(cmd, s, box, n_inputs, d);
    memset(d, 0, sizeof *d);
    d->space = (clipnn_input_space){-INFINITY, INFINITY, NULL, NULL};
    return box ? cli_parse_pair(cmd, "--box", box, &d->space.box_lo, &d->space.box_hi) : 0;
}

void cli_objective_options(cli_objective_args *a, int leave, cli_option *table, size_t *n) {
    table[(*n)++] = (cli_option){"--target-class", CLI_STR, &a->target_class, "K",
                                 leave ? "objective: reach class K" : "reach class K (or all)"};
    if (leave)
        table[(*n)++] = (cli_option){"--leave-class", CLI_STR, &a->leave_class, "K",
                                     "objective: leave class K (default: the input's label)"};
    table[(*n)++] = (cli_option){"--target-output", CLI_STR, &a->target_output, "V,..", "reach this output vector"};
    table[(*n)++] =
        (cli_option){"--maximize-unit", CLI_STR, &a->max_unit, "L:U", "maximize unit U of layer L (0-based)"};
    table[(*n)++] = (cli_option){"--loss", CLI_STR, &a->loss, "L", "xent | margin[:KAPPA] (class), mse | bce (output)"};
    table[(*n)++] = (cli_option){"--box", CLI_STR, &a->box, "LO,HI", "input box (images: 0,1)"};
    table[(*n)++] = (cli_option){"--param", CLI_STR, &a->param, "P", "pixel | tanh"};
}

int cli_objective_count_check(const char *cmd, const cli_objective_args *a, int required) {
    int count = !!a->target_class + !!a->leave_class + !!a->target_output + !!a->max_unit;
    if (count > 1 || (required && count == 0))
        return cli_usage_error(cmd, "give %s one of --target-class, %s--target-output, --maximize-unit",
                               required ? "exactly" : "at most", a->leave_class || !required ? "--leave-class, " : "");
    return 0;
}

int cli_parse_param(const char *cmd, const char *text, clipnn_param *out) {
    clipnn_status st = text ? clipnn_param_parse(text, out) : CLIPNN_OK;
    return st ? cli_fail(cmd, st, "--param") : 0;
}

void cli_tanh_variable(const clipnn_input_space *sp, const float *x, float *w, size_t n) {
    const double lo = sp->box_lo, half = (sp->box_hi - sp->box_lo) / 2;
    for (size_t i = 0; i < n; i++) w[i] = (float)atanh(0.999999 * ((x[i] - lo) / half - 1));
}

/* A non-negative integer below limit, the whole text. */
static int parse_index(const char *text, size_t limit, size_t *out, char stop) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || text[0] == '-' || errno || *end != stop || v >= limit) return -1;
    *out = (size_t)v;
    return 0;
}

int cli_objective_build(const char *cmd, const cli_objective_args *a, clipnn_model *m, int label,
                        clipnn_objective *obj, float *y, int *all) {
    size_t k = clipnn_model_n_outputs(m);
    *obj = clipnn_objective_default();
    if (all) *all = 0;
    if (a->target_output) {
        double v[256];
        size_t nv;
        obj->kind = CLIPNN_OBJ_TARGET_OUTPUT;
        int rc = cli_parse_list(cmd, "--target-output", a->target_output, v, 256, &nv);
        if (rc) return rc;
        if (nv != k) return cli_usage_error(cmd, "--target-output: %zu values for a model of %zu outputs", nv, k);
        for (size_t j = 0; j < k; j++) y[j] = (float)v[j];
        rc = cli_parse_io_loss(cmd, a->loss ? a->loss : "mse", 1, &obj->loss, &obj->kappa);
        if (!rc && obj->loss != CLIPNN_LOSS_MSE && obj->loss != CLIPNN_LOSS_BCE)
            rc = cli_usage_error(cmd, "--target-output takes --loss mse or bce");
        return rc;
    }
    if (a->max_unit) {
        obj->kind = CLIPNN_OBJ_MAXIMIZE_UNIT;
        const char *colon = strchr(a->max_unit, ':');
        size_t L = clipnn_model_n_layers(m);
        if (!colon || parse_index(a->max_unit, L, &obj->layer, ':') ||
            parse_index(colon + 1, clipnn_model_layer_width(m, obj->layer), &obj->unit, 0))
            return cli_usage_error(cmd, "--maximize-unit '%s': want L:U naming a unit (layers 0..%zu)", a->max_unit,
                                   L - 1);
        return 0;
    }
    const char *cls = a->target_class ? a->target_class : a->leave_class;
    obj->kind = a->target_class ? CLIPNN_OBJ_TARGET_CLASS : CLIPNN_OBJ_LEAVE_CLASS;
    size_t c = 0;
    if (all && cls && !strcmp(cls, "all")) {
        *all = 1;
    } else if (cls ? parse_index(cls, k, &c, 0) != 0 : label < 0 || (size_t)label >= k) {
        return cli_usage_error(cmd, "%s: name a class 0..%zu%s", cls ? cls : "the input has no label", k - 1,
                               all ? " or all" : " (--target-class K or --leave-class K)");
    } else if (!cls) {
        c = (size_t)label;
    }
    y[0] = (float)c;
    return cli_parse_io_loss(cmd, a->loss ? a->loss : "xent", 0, &obj->loss, &obj->kappa);
}

int cli_io_model_any(const char *cmd, cli_settings *s, unsigned groups, int argc, char **argv,
                     const char *path, clipnn_model **m) {
    *m = NULL;
    int rc = cli_settings_check(cmd, s, groups, argc, argv);
    if (rc) return rc;
    clipnn_set_threads(s->threads);
    return cli_load_model_recorded(cmd, path, s, argc, argv, m);
}

int cli_io_model(const char *cmd, cli_settings *s, unsigned groups, int argc, char **argv, const char *path,
                 clipnn_model **m) {
    int rc = cli_io_model_any(cmd, s, groups, argc, argv, path, m);
    if (rc || clipnn_model_seq_shape(*m).steps == 0) return rc;
    /* refused before anything is printed or loaded for it */
    fprintf(stderr, "clipnn %s: %s: a model with recurrent layers (the first: %s); attacks and input optimization "
            "take models without them\n", cmd, path,
            clipnn_layer_kind_name(clipnn_model_layer_kind(*m, 0)));
    clipnn_model_free(*m);
    *m = NULL;
    return CLI_EXIT_USAGE;
}

int cli_open_csv(const char *cmd, const char *dir, const char *name, const char *header, FILE **f) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    clipnn_status st = clipnn_output_open(path, f);
    if (st) return cli_fail(cmd, st, path);
    fprintf(*f, "%s\n", header);
    return 0;
}

int cli_close_csv(const char *cmd, FILE *f, int rc) {
    clipnn_status st = clipnn_output_close(f, "trace");
    return st && !rc ? cli_fail(cmd, st, "trace") : rc;
}
