/* Datasets: the spec strings of clipnn_dataset_load, the seeded train/test
 * split and the scaling fitted on the training part. The object is in
 * dataset.c, file formats in formats.c, NumPy arrays in npy_data.c,
 * synthetic sets in synthetic.c, the sequence tasks in seq_tasks.c, the
 * embedded files in builtin.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

static const char *const scaling_names[CLIPNN_SCALE_COUNT] = {
    [CLIPNN_SCALE_NONE] = "none",
    [CLIPNN_SCALE_STANDARDIZE] = "standardize",
    [CLIPNN_SCALE_UNIT] = "unit",
    [CLIPNN_SCALE_AUTO] = "auto",
};

CLIPNN_NAME_FUNCTIONS(clipnn_scaling, clipnn_scaling, scaling_names, CLIPNN_SCALE_COUNT, "scaling")

clipnn_data_options clipnn_data_options_default(void) {
    clipnn_data_options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.test_fraction = 0.2;
    o.scaling = CLIPNN_SCALE_AUTO;
    o.target_column = -1;
    o.synthetic_n = 2000;
    return o;
}

/* Rows keep[i] != 0 (want = 1) or == 0 (want = 0) of d, in order, into a new set. */
static clipnn_status subset(const clipnn_dataset *d, const unsigned char *keep, int want, size_t count,
                            clipnn_dataset **out) {
    clipnn_status s = clipnn_dataset_new(d->name, count, d->dim, d->n_classes, d->n_targets, out);
    if (s) return s;
    clipnn_dataset *o = *out;
    clipnn_dataset_copy_geometry(o, d);
    s = clipnn_dataset_copy_class_names(o, d);
    if (s) {
        clipnn_dataset_free(o);
        *out = NULL;
        return s;
    }
    for (size_t i = 0, r = 0; i < d->n; i++) {
        if ((keep[i] != 0) != want) continue;
        memcpy(o->x + r * d->dim, d->x + i * d->dim, d->dim * sizeof(float));
        memcpy(o->y + r * d->n_targets, d->y + i * d->n_targets, d->n_targets * sizeof(float));
        r++;
    }
    return CLIPNN_OK;
}

/* ---------------------------------------------------------------- split */

/* A seeded split: round(n * fraction) rows, at least one, chosen by a
 * shuffle, go to the test part; both parts keep the file's order. The split
 * stream is seeded apart from the synthetic sets' stream of the same seed. */
static clipnn_status split(clipnn_dataset *all, double fraction, uint64_t seed, clipnn_dataset **train,
                           clipnn_dataset **test) {
    *train = *test = NULL;
    size_t n = all->n, n_test = (size_t)floor(fraction * (double)n + 0.5);
    if (fraction > 0 && n_test == 0) n_test = 1;
    if (n_test == 0) {
        *train = all;
        return CLIPNN_OK;
    }
    if (n_test >= n)
        return clipnn_fail(CLIPNN_ERR_SHAPE,
                           "%s: %zu rows cannot be split into a training and a test part (test fraction %g)", all->name,
                           n, fraction);
    size_t *order = clipnn_alloc_array(n, sizeof *order);
    unsigned char *is_test = clipnn_alloc_array(n, 1);
    clipnn_status s = CLIPNN_OK;
    if (!order || !is_test) s = clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory splitting", all->name);
    if (!s) {
        clipnn_rng r;
        clipnn_rng_seed(&r, seed ^ 0x5b1d7e57c0ffee00ull);
        for (size_t i = 0; i < n; i++) order[i] = i;
        clipnn_rng_shuffle(&r, order, n);
        for (size_t i = 0; i < n_test; i++) is_test[order[i]] = 1;
        s = subset(all, is_test, 0, n - n_test, train);
    }
    if (!s) s = subset(all, is_test, 1, n_test, test);
    if (s) {
        clipnn_dataset_free(*train);
        *train = NULL;
    }
    clipnn_free(order);
    clipnn_free(is_test);
    if (!s) clipnn_dataset_free(all);
    return s;
}

/* -------------------------------------------------------------- scaling */

/* The statistics of a scaling, fitted on train: standardize: first = mean,
 * second = population std; unit: first = min, second = max per feature, or
 * 0 and the full-scale pixel value of an image set. */
static void fit_stats(clipnn_scaling how, const clipnn_dataset *train, double *first, double *second) {
    size_t dim = train->dim, n = train->n;
    if (how == CLIPNN_SCALE_UNIT && train->pixel_max > 0) {
        for (size_t j = 0; j < dim; j++) first[j] = 0, second[j] = train->pixel_max;
    } else if (how == CLIPNN_SCALE_UNIT) {
        for (size_t j = 0; j < dim; j++) first[j] = INFINITY, second[j] = -INFINITY;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < dim; j++) {
                double v = train->x[i * dim + j];
                first[j] = v < first[j] ? v : first[j];
                second[j] = v > second[j] ? v : second[j];
            }
    } else {
        for (size_t j = 0; j < dim; j++) first[j] = second[j] = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < dim; j++) first[j] += train->x[i * dim + j];
        for (size_t j = 0; j < dim; j++) first[j] /= (double)(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < dim; j++) {
                double dv = train->x[i * dim + j] - first[j];
                second[j] += dv * dv;
            }
        for (size_t j = 0; j < dim; j++) second[j] = sqrt(second[j] / (double)(n ? n : 1));
    }
}

/* x <- (x - shift) * mul with the statistics of fit_stats: a constant
 * feature (std 0, or max == min) is shifted and left unscaled. */
static void apply_stats(clipnn_scaling how, const double *first, const double *second, clipnn_dataset *d) {
    if (!d || how == CLIPNN_SCALE_NONE) return;
    size_t dim = d->dim;
    for (size_t j = 0; j < dim; j++) {
        double spread = how == CLIPNN_SCALE_UNIT ? second[j] - first[j] : second[j];
        double mul = spread > 0 ? 1.0 / spread : 1.0, shift = first[j];
        for (size_t i = 0; i < d->n; i++) {
            float *v = &d->x[i * dim + j];
            *v = (float)((*v - shift) * mul);
        }
    }
}

/* Fit on train, apply to train and test (which may be NULL); the
 * statistics go to *stats ([2][dim], NULL for no scaling) when asked. */
static clipnn_status scale(clipnn_scaling how, clipnn_dataset *train, clipnn_dataset *test, double **stats) {
    if (stats) *stats = NULL;
    if (how == CLIPNN_SCALE_NONE) return CLIPNN_OK;
    size_t dim = train->dim;
    double *first = clipnn_alloc_array(2 * dim, sizeof *first), *second = first + dim;
    if (!first) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for scaling", train->name);
    fit_stats(how, train, first, second);
    apply_stats(how, first, second, train);
    apply_stats(how, first, second, test);
    if (stats) *stats = first;
    else clipnn_free(first);
    return CLIPNN_OK;
}

/* Which scaling the inputs got, for the log: the model's inputs depend on
 * it, and "auto" chooses per data set. */
static void log_scaling(clipnn_scaling how, int automatic, const clipnn_dataset *train) {
    const char *why = automatic ? " (the data set's automatic scaling)" : "";
    if (how == CLIPNN_SCALE_NONE)
        clipnn_log(0, "%s: inputs left unscaled%s", train->name, why);
    else if (how == CLIPNN_SCALE_STANDARDIZE)
        clipnn_log(0, "%s: inputs standardized per feature on the %zu training rows%s", train->name, train->n, why);
    else if (train->pixel_max > 0)
        clipnn_log(0, "%s: pixels divided by %g into [0, 1]%s", train->name, (double)train->pixel_max, why);
    else
        clipnn_log(0, "%s: inputs min-max scaled per feature on the %zu training rows%s", train->name, train->n, why);
}

/* ---------------------------------------------------------------- specs */

/* The sets embedded in the library: a gzipped CSV each, last column the
 * class; image geometry and full-scale pixel value for the image sets. */
typedef struct {
    const char *name;
    const unsigned char *gz, *gz_end;
    size_t h, w;
    float pixel_max;
} builtin_set;

static const builtin_set builtin_sets[] = {
    {"digits", clipnn_digits_csv_gz, clipnn_digits_csv_gz_end, 8, 8, 16.0f},
    {"breast-cancer", clipnn_breast_cancer_csv_gz, clipnn_breast_cancer_csv_gz_end, 0, 0, 0.0f},
};

static const builtin_set *find_builtin(const char *spec) {
    for (size_t i = 0; i < sizeof builtin_sets / sizeof builtin_sets[0]; i++)
        if (!strcmp(spec, builtin_sets[i].name)) return &builtin_sets[i];
    return NULL;
}

static clipnn_status load_builtin(const builtin_set *set, clipnn_dataset **out) {
    unsigned char *text;
    size_t len;
    char what[64];
    snprintf(what, sizeof what, "%s (built in)", set->name);
    clipnn_status s = clipnn_gunzip_memory(what, set->gz, (size_t)(set->gz_end - set->gz), &text, &len);
    if (s) return s;
    s = clipnn_parse_csv(set->name, (const char *)text, len, -1, 1, out);
    clipnn_free(text);
    if (s) return s;
    if (set->h) (*out)->h = set->h, (*out)->w = set->w, (*out)->c = 1;
    (*out)->pixel_max = set->pixel_max;
    return CLIPNN_OK;
}

/* "csv:PATH[,target=COLUMN][,task=classification|regression]". The options
 * are taken from the end, so a path may itself hold commas. */
static clipnn_status load_csv_spec(const char *arg, long target, clipnn_dataset **out) {
    size_t len = strlen(arg);
    char *path = clipnn_alloc(len + 1);
    if (!path) return clipnn_fail(CLIPNN_ERR_NOMEM, "csv: out of memory");
    memcpy(path, arg, len + 1);
    int task = -1;
    const char *target_name = NULL; /* points into path, after a cut comma */
    clipnn_status s = CLIPNN_OK;
    for (char *comma; !s && (comma = strrchr(path, ',')) != NULL;) {
        const char *opt = comma + 1;
        if (!strncmp(opt, "target=", 7)) {
            char *end;
            long col = strtol(opt + 7, &end, 10);
            if (end == opt + 7 || *end) {
                if (!opt[7]) s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "csv:%s: empty target", arg);
                target_name = opt + 7; /* a column named in the header line */
            } else {
                target = col, target_name = NULL;
            }
        } else if (!strcmp(opt, "task=classification")) {
            task = 1;
        } else if (!strcmp(opt, "task=regression")) {
            task = 0;
        } else {
            break; /* part of the path */
        }
        *comma = 0;
    }
    if (!s && !*path) s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "csv: no file name in 'csv:%s'", arg);
    if (!s) s = clipnn_load_csv_file(path, target, target_name, task, out);
    clipnn_free(path);
    return s;
}

/* Split "A,B,..." of the spec "KIND:A,B,..." into at most max fresh
 * strings in one block (*block, freed by the caller even on failure). */
static clipnn_status split_list(const char *kind, const char *arg, size_t max, char **block, char **parts,
                                size_t *count) {
    size_t len = strlen(arg);
    *count = 0;
    *block = clipnn_alloc(len + 1);
    if (!*block) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", kind);
    memcpy(*block, arg, len + 1);
    *count = 0;
    for (char *p = *block; p;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*count == max) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s:%s: more than %zu parts", kind, arg, max);
        parts[(*count)++] = p;
        p = c ? c + 1 : NULL;
    }
    return CLIPNN_OK;
}

/* Train and test parts read from their own files must agree in features
 * (and image or sequence geometry) and targets. */
static clipnn_status match_parts(clipnn_dataset *train, clipnn_dataset *test) {
    if (train->dim != test->dim || train->h != test->h || train->w != test->w)
        return clipnn_fail(CLIPNN_ERR_SHAPE,
                           "%s: %zu features (%zux%zu images), but the training set %s has %zu (%zux%zu)", test->name,
                           test->dim, test->h, test->w, train->name, train->dim, train->h, train->w);
    if (train->seq_len != test->seq_len || train->n_targets != test->n_targets ||
        train->target_steps != test->target_steps || (train->n_classes == 0) != (test->n_classes == 0))
        return clipnn_fail(CLIPNN_ERR_SHAPE,
                           "%s: %zu steps and %zu targets per row, but the training set %s has %zu and %zu", test->name,
                           test->seq_len, test->n_targets, train->name, train->seq_len, train->n_targets);
    size_t k = train->n_classes > test->n_classes ? train->n_classes : test->n_classes;
    train->n_classes = test->n_classes = k;
    return CLIPNN_OK;
}

/* A shard of IDX training images is read alone when the scaling needs no
 * statistics of the whole part (none, or unit, which divides by 255). */
static clipnn_status load_idx_pair(const char *images, const char *labels, const char *timages,
                                   const char *tlabels, const clipnn_data_options *o, clipnn_dataset **train,
                                   clipnn_dataset **test) {
    int alone = o->shards > 1 && o->scaling != CLIPNN_SCALE_STANDARDIZE;
    clipnn_status s = alone ? clipnn_load_idx_shard(images, labels, o->shard, o->shards, train)
                            : clipnn_dataset_load_idx(images, labels, train);
    if (!s && test) s = clipnn_dataset_load_idx(timages, tlabels, test);
    if (!s && test) s = match_parts(*train, *test);
    return s;
}

/* "npy:X,Y[,TX,TY][,task=classification|regression]". */
static clipnn_status load_npy_spec(const char *arg, int want_test, clipnn_dataset **all, clipnn_dataset **train,
                                   clipnn_dataset **test, int *has_test) {
    char *block = NULL, *part[5];
    size_t count = 0;
    int task = -1;
    clipnn_status s = split_list("npy", arg, 5, &block, part, &count);
    if (!s && count > 1 && !strncmp(part[count - 1], "task=", 5)) {
        const char *t = part[--count] + 5;
        task = !strcmp(t, "classification") ? 1 : !strcmp(t, "regression") ? 0 : -2;
        if (task == -2)
            s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy:%s: task=%s (want classification or regression)", arg, t);
    }
    if (!s && count != 2 && count != 4)
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy:%s: want npy:X.npy,Y.npy or npy:X.npy,Y.npy,TEST_X.npy,TEST_Y.npy",
                        arg);
    *has_test = count == 4;
    if (!s && count == 2) s = clipnn_load_npy_pair(part[0], part[1], task, all);
    if (!s && count == 4) s = clipnn_load_npy_pair(part[0], part[1], task, train);
    if (!s && count == 4 && want_test) s = clipnn_load_npy_pair(part[2], part[3], task, test);
    if (!s && count == 4 && want_test) s = match_parts(*train, *test);
    clipnn_free(block);
    return s;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* The four Fashion-MNIST files in dir, gzipped (as Debian's
 * dataset-fashion-mnist ships them) or not. */
static clipnn_status load_fashion(const char *dir, const clipnn_data_options *o, clipnn_dataset **train,
                                  clipnn_dataset **test) {
    static const char *const base[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char path[4][4096];
    for (int i = 0; i < 4; i++) {
        int len = snprintf(path[i], sizeof path[i], "%s/%s.gz", dir, base[i]);
        if (len < 0 || (size_t)len >= sizeof path[i])
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "fashion-mnist: directory name too long");
        if (!file_exists(path[i])) path[i][len - 3] = 0;
    }
    clipnn_status s = load_idx_pair(path[0], path[1], path[2], path[3], o, train, test);
    if (s == CLIPNN_ERR_IO) {
        char why[512];
        snprintf(why, sizeof why, "%s", clipnn_last_error());
        return clipnn_fail(s, "%s (Debian: apt-get install dataset-fashion-mnist, or give fashion-mnist:DIR)", why);
    }
    if (!s) {
        clipnn_dataset *parts[2] = {*train, test ? *test : NULL};
        for (int k = 0; k < 2; k++) {
            if (!parts[k]) continue;
            char *name = clipnn_alloc(sizeof "fashion-mnist");
            if (!name) return clipnn_fail(CLIPNN_ERR_NOMEM, "fashion-mnist: out of memory");
            memcpy(name, "fashion-mnist", sizeof "fashion-mnist");
            clipnn_free(parts[k]->name);
            parts[k]->name = name;
        }
    }
    return s;
}

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* What a data spec read: the whole set (all), or a train part (and test
 * part) of its own; the scaling "auto" means for it. */
typedef struct {
    clipnn_dataset *all, *tr, *te;
    int has_test;
    clipnn_scaling auto_scale;
} spec_data;

/* idx:IMAGES,LABELS or idx:IMAGES,LABELS,TEST_IMAGES,TEST_LABELS. */
static clipnn_status load_idx_spec(const char *spec, const clipnn_data_options *o, spec_data *d, int want_test) {
    char *block = NULL, *part[4];
    size_t count = 0;
    clipnn_status s = split_list("idx", spec + 4, 4, &block, part, &count);
    if (!s && count != 2 && count != 4)
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                        "%s: want idx:IMAGES,LABELS or idx:IMAGES,LABELS,TEST_IMAGES,TEST_LABELS", spec);
    if (!s && count == 2) s = clipnn_dataset_load_idx(part[0], part[1], &d->all);
    if (!s && count == 4) s = load_idx_pair(part[0], part[1], part[2], part[3], o, &d->tr, want_test ? &d->te : NULL);
    d->has_test = count == 4;
    d->auto_scale = CLIPNN_SCALE_UNIT;
    clipnn_free(block);
    return s;
}

/* The data a spec names, before the split and the scaling. */
static clipnn_status load_spec(const char *spec, const clipnn_data_options *o, int want_test, spec_data *d) {
    d->auto_scale = CLIPNN_SCALE_STANDARDIZE;
    const builtin_set *builtin = find_builtin(spec);
    if (builtin) return load_builtin(builtin, &d->all);
    if (!strcmp(spec, "spirals") || !strcmp(spec, "teacher")) {
        if (o->synthetic_n < 2)
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset %s: synthetic_n %zu must be >= 2", spec,
                               o->synthetic_n);
        d->auto_scale = CLIPNN_SCALE_NONE;
        return spec[0] == 's' ? clipnn_make_spirals(o->synthetic_n, o->seed, &d->all)
                              : clipnn_make_teacher(o->synthetic_n, o->seed, &d->all);
    }
    if (has_prefix(spec, "csv:")) return load_csv_spec(spec + 4, o->target_column, &d->all);
    if (!strcmp(spec, "fashion-mnist") || has_prefix(spec, "fashion-mnist:")) {
        const char *dir = spec[13] == ':' ? spec + 14 : "/usr/share/datasets/fashion-mnist";
        d->has_test = 1;
        d->auto_scale = CLIPNN_SCALE_UNIT;
        return load_fashion(dir, o, &d->tr, want_test ? &d->te : NULL);
    }
    if (has_prefix(spec, "idx:")) return load_idx_spec(spec, o, d, want_test);
    if (has_prefix(spec, "npy:")) return load_npy_spec(spec + 4, want_test, &d->all, &d->tr, &d->te, &d->has_test);
    clipnn_seq_task_spec task;
    clipnn_status task_status;
    if (clipnn_seq_task_parse(spec, &task, &task_status)) {
        d->has_test = 1;
        d->auto_scale = CLIPNN_SCALE_NONE; /* one-hot symbols, values in [0, 1) */
        if (task_status) return task_status;
        return clipnn_seq_task_load(&task, o->seed, &d->tr, want_test ? &d->te : NULL);
    }
    return clipnn_fail(
        CLIPNN_ERR_INVALID_ARG,
        "unknown dataset '%s' (want digits, breast-cancer, fashion-mnist[:DIR], "
        "idx:IMAGES,LABELS[,TIMAGES,TLABELS], csv:PATH[,target=COLUMN], npy:X,Y[,TEST_X,TEST_Y], "
        "spirals, teacher, or a sequence task: temporal-order, temporal-order-3bit, addition, multiplication, "
        "random-permutation, memorization[:T=N,train=N,test=N])",
        spec);
}

/* Load, split and scale; *stats receives the fitted statistics ([2][dim])
 * and *how the scaling chosen when stats is not NULL. */
static clipnn_status load_scaled(const char *spec, const clipnn_data_options *opts, clipnn_dataset **train,
                                 clipnn_dataset **test, clipnn_scaling *how_out, double **stats, int announce) {
    if (!spec || !train) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset: NULL argument");
    *train = NULL;
    if (test) *test = NULL;
    clipnn_data_options o = opts ? *opts : clipnn_data_options_default();
    if (!(o.test_fraction >= 0 && o.test_fraction < 1))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset %s: test fraction %g must be in [0, 1)", spec,
                           o.test_fraction);
    if ((unsigned)o.scaling >= CLIPNN_SCALE_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset %s: unknown scaling %d", spec, (int)o.scaling);
    if (o.shards > 1 && o.shard >= o.shards)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset %s: shard %zu of %zu (shards count from 0)", spec, o.shard,
                           o.shards);
    spec_data d = {0};
    clipnn_status s = load_spec(spec, &o, test != NULL, &d);
    if (!s && !d.has_test) s = split(d.all, o.test_fraction, o.seed, &d.tr, &d.te);
    if (s && d.all != d.tr) clipnn_dataset_free(d.all);
    if (!s && d.tr->total == 0) s = clipnn_fail(CLIPNN_ERR_SHAPE, "%s: no training rows", d.tr->name);
    clipnn_scaling how = o.scaling == CLIPNN_SCALE_AUTO ? d.auto_scale : o.scaling;
    if (how_out) *how_out = how;
    if (!s) s = scale(how, d.tr, d.te, stats);
    if (!s) s = clipnn_dataset_keep_shard(d.tr, o.shard, o.shards); /* after the whole part's statistics */
    if (!s && announce) log_scaling(how, o.scaling == CLIPNN_SCALE_AUTO, d.tr);
    if (s) {
        clipnn_dataset_free(d.tr);
        clipnn_dataset_free(d.te);
        return s;
    }
    *train = d.tr;
    if (test)
        *test = d.te;
    else
        clipnn_dataset_free(d.te);
    return CLIPNN_OK;
}

clipnn_status clipnn_dataset_load(const char *spec, const clipnn_data_options *opts,
                                  clipnn_dataset **train, clipnn_dataset **test) {
    return load_scaled(spec, opts, train, test, NULL, NULL, 1);
}

/* ------------------------------------------------------------ records */

/* The shortest of %.15g and %.17g that strtod reads back as v (at most 25
 * characters). */
static int format_double(char *out, size_t cap, double v) {
    int n = snprintf(out, cap, "%.15g", v);
    if (strtod(out, NULL) != v) n = snprintf(out, cap, "%.17g", v);
    return n;
}

/* dim numbers joined by commas, each read back as the same double. */
static char *number_list(const double *v, size_t dim) {
    size_t cap;
    if (clipnn_mul_size(dim, 26, &cap)) return NULL;
    char *out = clipnn_alloc(cap + 1), *p = out;
    if (!out) return NULL;
    for (size_t j = 0; j < dim; j++) {
        if (j) *p++ = ',';
        p += format_double(p, 26, v[j]);
    }
    *p = 0;
    return out;
}

static clipnn_status set_number(clipnn_data_info *info, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static clipnn_status set_number(clipnn_data_info *info, const char *key, const char *fmt, ...) {
    char text[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return clipnn_data_info_set(info, key, text);
}

static clipnn_status set_stats_entries(clipnn_data_info *info, clipnn_scaling how, const double *stats, size_t dim) {
    if (how == CLIPNN_SCALE_NONE) return CLIPNN_OK;
    static const char *const names[2][2] = {{"data.mean", "data.std"}, {"data.min", "data.max"}};
    clipnn_status s = CLIPNN_OK;
    for (int k = 0; !s && k < 2; k++) {
        char *text = number_list(stats + k * dim, dim);
        if (!text) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory for the scaling");
        s = clipnn_data_info_set(info, names[how == CLIPNN_SCALE_UNIT][k], text);
        clipnn_free(text);
    }
    return s;
}

/* The record of a load: spec, options, the scaling with its statistics,
 * the class names. */
static clipnn_status record(const char *spec, const clipnn_data_options *o, clipnn_scaling how, const double *stats,
                            const clipnn_dataset *train, clipnn_data_info *info) {
    clipnn_status s = clipnn_data_info_set(info, "data.spec", spec);
    if (!s) s = clipnn_data_info_set(info, "data.scaling", clipnn_scaling_name(how));
    if (!s) s = set_number(info, "data.seed", "%llu", (unsigned long long)o->seed);
    char fraction[32];
    format_double(fraction, sizeof fraction, o->test_fraction);
    if (!s) s = clipnn_data_info_set(info, "data.test_fraction", fraction);
    if (!s) s = set_number(info, "data.target_column", "%ld", o->target_column);
    if (!s) s = set_number(info, "data.dim", "%zu", train->dim);
    if (!s) s = set_stats_entries(info, how, stats, train->dim);
    if (!s && train->class_names) s = clipnn_data_info_set(info, "data.classes", train->class_names);
    return s;
}

clipnn_status clipnn_dataset_load_info(const char *spec, const clipnn_data_options *opts, clipnn_dataset **train,
                                       clipnn_dataset **test, clipnn_data_info **info) {
    if (!info) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset: NULL argument");
    *info = NULL;
    clipnn_data_options o = opts ? *opts : clipnn_data_options_default();
    double *stats = NULL;
    clipnn_scaling how = CLIPNN_SCALE_NONE;
    clipnn_status s = load_scaled(spec, &o, train, test, &how, &stats, 1);
    if (s) return s;
    s = clipnn_data_info_create(info);
    if (!s) s = record(spec, &o, how, stats, *train, *info);
    clipnn_free(stats);
    if (s) {
        clipnn_data_info_free(*info);
        *info = NULL;
        clipnn_dataset_free(*train);
        *train = NULL;
        if (test) clipnn_dataset_free(*test), *test = NULL;
    }
    return s;
}

static clipnn_status check_recorded(const clipnn_data_info *info, const clipnn_dataset *train) {
    const double *first, *second;
    size_t dim = clipnn_data_info_stats(info, &first, &second);
    clipnn_scaling how = clipnn_data_info_options(info).scaling;
    if (how != CLIPNN_SCALE_NONE && dim == 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "data record: scaling %s without its statistics",
                           clipnn_scaling_name(how));
    if (how != CLIPNN_SCALE_NONE && dim != train->dim)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %zu features, the recorded scaling has %zu", train->name, train->dim,
                           dim);
    return CLIPNN_OK;
}

clipnn_status clipnn_dataset_load_recorded(const clipnn_data_info *info, const char *spec, clipnn_dataset **train,
                                           clipnn_dataset **test) {
    if (!info || !train) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "dataset: NULL argument");
    if (!spec) spec = clipnn_data_info_spec(info);
    if (!spec) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "data record: no data spec recorded, and none given");
    clipnn_data_options o = clipnn_data_info_options(info);
    clipnn_scaling how = o.scaling;
    o.scaling = CLIPNN_SCALE_NONE;
    clipnn_status s = load_scaled(spec, &o, train, test, NULL, NULL, 0);
    if (!s) s = check_recorded(info, *train);
    if (s) {
        clipnn_dataset_free(*train);
        *train = NULL;
        if (test) clipnn_dataset_free(*test), *test = NULL;
        return s;
    }
    const double *first, *second;
    clipnn_data_info_stats(info, &first, &second);
    apply_stats(how, first, second, *train);
    if (test) apply_stats(how, first, second, *test);
    clipnn_log(0, "%s: inputs scaled (%s) with the recorded training statistics", (*train)->name,
               clipnn_scaling_name(how));
    return CLIPNN_OK;
}
