/* clipnn: Datasets: the built-in digits and breast cancer, CSV, IDX, Fashion-MNIST, NumPy arrays (sequences
 * included), synthetic sets, splits and scaling. */
#ifndef CLIPNN_PUBLIC_DATA_H
#define CLIPNN_PUBLIC_DATA_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- datasets */

typedef struct clipnn_dataset clipnn_dataset;

/* Input scaling, fitted on the training part and applied to both parts.
 * STANDARDIZE: (x - mean) / std per feature (population std; a constant
 * feature becomes 0). UNIT: to [0, 1]: image sets divided by their
 * full-scale pixel value (digits 16, IDX 255), other sets min-max per
 * feature (test values may fall outside). AUTO: the set's own default:
 * digits, breast-cancer, CSV and npy standardize; IDX and Fashion-MNIST unit
 * (/255); spirals and teacher none (already of order 1). */
typedef enum {
    CLIPNN_SCALE_NONE = 0,
    CLIPNN_SCALE_STANDARDIZE,
    CLIPNN_SCALE_UNIT,
    CLIPNN_SCALE_AUTO,
    CLIPNN_SCALE_COUNT
} clipnn_scaling;

/* "none", "standardize", "unit", "auto". parse fails with INVALID_ARG and
 * a message listing the valid names. */
CLIPNN_API const char *clipnn_scaling_name(clipnn_scaling scaling);
CLIPNN_API clipnn_status clipnn_scaling_parse(const char *name, clipnn_scaling *out);

typedef struct {
    uint64_t seed;          /* synthetic sets and splits (1) */
    double test_fraction;   /* in [0, 1): split for sets without a test part (0.2) */
    clipnn_scaling scaling; /* fitted on train, applied to both (AUTO) */
    long target_column;     /* CSV: 0-based, negative counts from the end; -1 = last (default) */
    size_t synthetic_n;     /* spirals / teacher size (default 2000) */
    /* Keep only shard `shard` of `shards` of the training part (0 or 1
     * shards: all of it): its rows [n shard / shards, n (shard + 1) /
     * shards) of the n the whole part has, after the split and the scaling,
     * which are those of the whole part. The test part stays whole. */
    size_t shard, shards;
} clipnn_data_options;
CLIPNN_API clipnn_data_options clipnn_data_options_default(void);

/* spec: "digits" | "breast-cancer" | "fashion-mnist[:DIR]" | "idx:IMAGES,LABELS[,TIMAGES,TLABELS]"
 *     | "csv:PATH[,target=COLUMN|NAME][,task=classification|regression]"
 *     (COLUMN a number, negative from the end; NAME a cell of the header line)
 *     | "npy:X.npy,Y.npy[,TEST_X.npy,TEST_Y.npy][,task=classification|regression]"
 *     | "spirals" | "teacher"
 *     | "TASK[:T=N][,train=N][,test=N]" (TASK a sequence task below).
 *   digits: built in (no file), 1797 rows, 64 pixels 0..16 (8x8), 10 classes.
 *   breast-cancer: built in (no file), 569 rows, 30 features in their own
 *     units, 2 classes (0 malignant, 1 benign).
 *   fashion-mnist: the four IDX files (.gz or plain) in DIR, default
 *     /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist);
 *     60000 train, 10000 test rows of 784 pixels (28x28), 10 classes.
 *   idx: MNIST-format files, plain or gzip; labels are classes 0..max.
 *   csv: numbers separated by commas, semicolons or blanks; blank lines and
 *     lines starting with '#' are skipped; the first line is a header, and
 *     skipped, when any of its cells is not a number. Targets are classes
 *     (remapped to 0..K-1 in increasing order) when they are all integers
 *     with at most 100 distinct values and at least two rows per value,
 *     else one regression target; task= forces either. Targets that are
 *     not numbers are class names: classes 0..K-1 in the byte order of the
 *     names (a first line is a header when a cell other than the target is
 *     not a number).
 *   npy: NumPy arrays (numpy.save; any float or integer dtype). X is
 *     [n][T][d] (n sequences of T steps of d features) or [n][d]; Y is [n]
 *     (one target per row: classes 0..K-1 when all are integers >= 0, as
 *     for CSV, else a regression value), [n][k] (k regression targets) or
 *     [n][T][k] (k regression targets per step, T as in X). Every value
 *     must be finite; a file that breaks any of this is refused naming it.
 *   spirals: two interleaved spirals, 2 features, 2 classes, synthetic_n rows.
 *   teacher: regression, 10 N(0,1) inputs, target = a random 10-32-1 tanh
 *     MLP's output (no noise), synthetic_n rows.
 *   Sequence tasks (the long-term dependency problems of Hochreiter and
 *     Schmidhuber 1997 as Pascanu, Mikolov and Bengio 2013 use them): train
 *     (default 10000) and test (default 10000) sequences of T steps
 *     (default 50, at least 10), drawn from opts->seed, the test part from
 *     a stream of its own; one target per sequence, read at its last step;
 *     inputs left unscaled by "auto". Windows are in tenths of T, both
 *     ends included ([1,2]: steps T/10 to 2T/10, rounded down, from 0):
 *   temporal-order: 6 one-hot symbols a, b, c, d, A, B per step; a random
 *     distractor a-d at every step but one in window [1,2] and one in [5,6],
 *     which hold A or B; 4 classes, the order: AA 0, AB 1, BA 2, BB 3.
 *   temporal-order-3bit: the same with three relevant steps in [1,2], [3,4]
 *     and [6,7]; 8 classes (A = 0, B = 1, the first the most significant).
 *   addition, multiplication: 2 values per step, a value U[0,1) and a
 *     marker 0 or 1; one marked step in [0, T/10), one in [T/10, T/2); the
 *     target is the sum (in [0, 2)) or the product of the marked values.
 *   random-permutation[:...,symbols=K]: K one-hot symbols (default 10, 3 to
 *     1000); the first step is symbol 0 or 1 and is the class (2 classes),
 *     the others are drawn from 2..K-1.
 *   memorization: 4 one-hot symbols (bit 0, bit 1, blank, marker): a
 *     pattern of 5 bits in the first 5 steps, blanks, the marker at the last
 *     step; 32 classes, the pattern read as a binary number.
 * Sets without a test part (all but fashion-mnist, four-file idx,
 * four-file npy and the sequence tasks) are
 * split by a shuffle seeded with opts->seed: round(n * test_fraction) rows
 * (at least one when the fraction is > 0) go to the test part, both parts
 * keep the file order; the split is the same whether or not test is asked
 * for. test_fraction 0 gives no test part (*test = NULL). opts may be NULL
 * (defaults). *test may be NULL when test is NULL. A set's name (in
 * messages) is its file path (the images' for IDX) or its spec name. */
CLIPNN_API clipnn_status clipnn_dataset_load(const char *spec, const clipnn_data_options *opts,
                                  clipnn_dataset **train, clipnn_dataset **test);
/* One file, unscaled and unsplit. classification < 0: decide from the
 * targets as above; 0: regression; > 0: classes. */
CLIPNN_API clipnn_status clipnn_dataset_load_csv(const char *path, long target_column, int classification,
                                      clipnn_dataset **out);
/* Raw pixel values 0..255; image shape from the header. */
CLIPNN_API clipnn_status clipnn_dataset_load_idx(const char *images, const char *labels,
                                      clipnn_dataset **out);
/* From caller arrays (copied). n_classes = 0 means regression with n_targets
 * targets per row; otherwise y holds class indices. */
CLIPNN_API clipnn_status clipnn_dataset_from_arrays(const float *x, const float *y, size_t n, size_t dim,
                                         size_t n_classes, size_t n_targets,
                                         clipnn_dataset **out);
CLIPNN_API void clipnn_dataset_free(clipnn_dataset *d);

CLIPNN_API size_t clipnn_dataset_n(const clipnn_dataset *d);
CLIPNN_API size_t clipnn_dataset_dim(const clipnn_dataset *d);
CLIPNN_API size_t clipnn_dataset_n_classes(const clipnn_dataset *d); /* 0 for regression */
CLIPNN_API size_t clipnn_dataset_n_targets(const clipnn_dataset *d); /* 1 for classification */
/* Image geometry when known (height, width, channels), else 0. */
CLIPNN_API void clipnn_dataset_image_shape(const clipnn_dataset *d, size_t *h, size_t *w, size_t *c);
/* A row as a sequence of *steps steps of *step_dim values each (steps *
 * step_dim == dim): the file's [T][d] for a sequence set, h rows of w * c
 * values for an image (row-sequential), else 0 and 0. */
CLIPNN_API void clipnn_dataset_seq_shape(const clipnn_dataset *d, size_t *steps, size_t *step_dim);
/* Targets given per step ([n][T][k] files): T, and each row of y holds
 * T * k values, step after step; 0 when targets are per example. */
CLIPNN_API size_t clipnn_dataset_target_steps(const clipnn_dataset *d);
/* The rows, the targets and the name: owned by the dataset, unchanged and
 * valid until clipnn_dataset_free(d). */
CLIPNN_API const float *clipnn_dataset_x(const clipnn_dataset *d); /* [n][dim] */
CLIPNN_API const float *clipnn_dataset_y(const clipnn_dataset *d); /* [n][n_targets] */
CLIPNN_API const char *clipnn_dataset_name(const clipnn_dataset *d);
/* A set that holds one shard of a larger one (clipnn_data_options.shards):
 * its n rows are rows [*first, *first + n) of the *total rows of the whole
 * set; a whole set gives 0 and n. Either pointer may be NULL. */
CLIPNN_API void clipnn_dataset_shard_range(const clipnn_dataset *d, size_t *first, size_t *total);

/* ------------------------------------------------------------ records */

/* How a model's inputs were prepared, so that the model can be evaluated
 * (or exported) without being told again: an ordered list of (key, value)
 * texts. The keys "data.*" have a meaning and their values are checked
 * when set:
 *   data.spec          the spec given to clipnn_dataset_load
 *   data.scaling       none | standardize | unit (the scaling chosen, never auto)
 *   data.seed, data.test_fraction, data.target_column   the options of the split
 *   data.dim           features per row (before the statistics)
 *   data.mean, data.std    (standardize) or data.min, data.max (unit): one number
 *                      per feature, separated by commas; x' = (x - mean) / std
 *                      (a std of 0 leaves the feature unscaled), x' = (x - min) /
 *                      (max - min) (likewise when max == min)
 *   data.classes       the class names of text labels, separated by newlines.
 * Other keys (clipnn's tool writes train.* options and result.* figures)
 * are kept as given. Numbers are written so that reading them back gives
 * the same doubles. */
typedef struct clipnn_data_info clipnn_data_info;

CLIPNN_API clipnn_status clipnn_data_info_create(clipnn_data_info **out);
CLIPNN_API void clipnn_data_info_free(clipnn_data_info *info);
/* Sets key (replacing its value, keeping its place, or appended); a
 * data.* value that does not parse is refused (FORMAT) and nothing changes. */
CLIPNN_API clipnn_status clipnn_data_info_set(clipnn_data_info *info, const char *key, const char *value);
/* The value of key, or NULL. */
CLIPNN_API const char *clipnn_data_info_get(const clipnn_data_info *info, const char *key);
/* Entries in order: the key of entry i (NULL past the end), its value in *value. */
CLIPNN_API size_t clipnn_data_info_count(const clipnn_data_info *info);
CLIPNN_API const char *clipnn_data_info_entry(const clipnn_data_info *info, size_t i, const char **value);
/* Typed views: the spec (NULL when not recorded); the split options and
 * the scaling kind (the defaults, scaling NONE, for what is not recorded);
 * the statistics (returns their count, 0 when none; first = mean or min,
 * second = std or max); the class names (0 and NULL when none). */
CLIPNN_API const char *clipnn_data_info_spec(const clipnn_data_info *info);
CLIPNN_API clipnn_data_options clipnn_data_info_options(const clipnn_data_info *info);
CLIPNN_API size_t clipnn_data_info_stats(const clipnn_data_info *info, const double **first, const double **second);
CLIPNN_API size_t clipnn_data_info_n_classes(const clipnn_data_info *info);
CLIPNN_API const char *clipnn_data_info_class_name(const clipnn_data_info *info, size_t k);

/* clipnn_dataset_load, and a record of it in *info: the spec, the split
 * options, the scaling chosen with the statistics fitted on the training
 * part, the class names of text labels. */
CLIPNN_API clipnn_status clipnn_dataset_load_info(const char *spec, const clipnn_data_options *opts,
                                                  clipnn_dataset **train, clipnn_dataset **test,
                                                  clipnn_data_info **info);
/* Loads spec (NULL: the recorded one) split as recorded and scaled with the
 * recorded statistics (not fitted again: a model imported with the
 * statistics of its own training gets its inputs as it saw them). A set
 * whose features do not match the statistics is refused (SHAPE). */
CLIPNN_API clipnn_status clipnn_dataset_load_recorded(const clipnn_data_info *info, const char *spec,
                                                      clipnn_dataset **train, clipnn_dataset **test);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_DATA_H */
