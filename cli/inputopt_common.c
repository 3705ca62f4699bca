/* Helpers of attack, optimize-input and diagnose (see inputopt_common.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inputopt_common.h"

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
    if (!strcmp(text, "xent")) {
        *loss = CLIPNN_LOSS_XENT;
    } else if (!strncmp(text, "margin", 6) && (text[6] == 0 || text[6] == ':')) {
        *loss = CLIPNN_LOSS_MARGIN;
        if (text[6] == ':') {
            char *end;
            *kappa = strtod(text + 7, &end);
            if (end == text + 7 || *end || !(*kappa >= 0) || !isfinite(*kappa))
                return cli_usage_error(cmd, "--loss '%s': KAPPA must be a number >= 0", text);
        }
    } else if (allow_output && !strcmp(text, "mse")) {
        *loss = CLIPNN_LOSS_MSE;
    } else if (allow_output && !strcmp(text, "bce")) {
        *loss = CLIPNN_LOSS_BCE;
    } else {
        return cli_usage_error(cmd, "--loss '%s': want xent, margin or margin:KAPPA%s", text,
                               allow_output ? ", mse or bce" : "");
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
            fprintf(stderr, "clipnn %s: feature %zu is constant in the training data and its scale is unknown\n", cmd, j);
            return CLI_EXIT_INPUT;
        }
        std[j] = (float)sd;
        mean[j] = (float)(xu[lo * dim + j] - xs[lo * dim + j] * sd);
    }
    return 0;
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
    /* The model saw other units than pixels: optimize the pixels and map. */
    cli_settings su = *s;
    su.scale = "unit";
    clipnn_dataset *utrain = NULL, *raw = NULL, *rawtest = NULL;
    if ((rc = cli_load_data(cmd, &su, &utrain, &d->pixels))) return rc;
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
    size_t rows, cols;
    clipnn_status st = clipnn_npy_read(spec, &v, &rows, &cols);
    if (st) return cli_fail(cmd, st, spec);
    size_t count = rows * (cols ? cols : 1);
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
    if (d->n_findings == 0) fprintf(f, "causes: none found\n");
    for (size_t i = 0; i < d->n_findings; i++) {
        const clipnn_finding *c = &d->findings[i];
        fprintf(f, "cause: %s\n  test:   %s\n  found:  %s\n  remedy: %s\n", clipnn_cause_name(c->cause), c->test,
                c->numbers, c->remedy);
    }
    for (size_t i = 0; i < d->n_checks; i++)
        fprintf(f, "check %-24s %s  %s\n", d->checks[i].test, d->checks[i].passed ? "ok  " : "note", d->checks[i].numbers);
}

int cli_make_dir(const char *cmd, const char *dir) {
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) return cli_usage_error(cmd, "--out: bad directory name");
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++)
        if (path[i] == '/' || path[i] == 0) {
            char keep = path[i];
            path[i] = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "clipnn %s: %s: cannot create directory: %s\n", cmd, path, strerror(errno));
                return CLI_EXIT_IO;
            }
            path[i] = keep;
        }
    return 0;
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
