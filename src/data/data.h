/* Private declarations shared by the dataset sources: src/data/dataset.c
 * (the object), src/data/load.c (specs, split, scaling), src/data/formats.c
 * (file reading, CSV, IDX), src/data/npy_data.c (NumPy arrays, sequences),
 * src/data/builtin.c (the embedded sets), src/data/synthetic.c
 * (spirals, teacher) and src/data/seq_tasks.c (the sequence tasks). */
#ifndef CLIPNN_DATA_INTERNAL_H
#define CLIPNN_DATA_INTERNAL_H

#include "base/base.h"

struct clipnn_dataset {
    char *name;          /* file path or set name, used in messages */
    size_t n, dim;       /* rows, features */
    size_t first, total; /* the rows held are rows [first, first + n) of a set of total rows (a shard) */
    size_t n_classes;    /* 0: regression */
    size_t n_targets;    /* 1 for classification */
    size_t h, w, c;      /* image geometry, 0 when not an image set */
    size_t seq_len, seq_dim; /* x rows as [seq_len][seq_dim] steps; 0 when not read as sequences */
    size_t target_steps; /* targets per step: y rows are [target_steps][n_targets / target_steps]; 0: per example */
    float pixel_max;     /* full-scale pixel value of an image set (16, 255), else 0 */
    float *x;            /* [n][dim] */
    float *y;            /* [n][n_targets] */
    char *class_names;   /* the names of text class labels joined by '\n', or NULL */
};

/* An empty dataset with room for n rows (x and y zeroed). */
clipnn_status clipnn_dataset_new(const char *name, size_t n, size_t dim, size_t n_classes,
                                 size_t n_targets, clipnn_dataset **out);


/* Numeric text table (comma- or whitespace-separated) in text[len] (text[len]
 * == 0) into a dataset named name. classification < 0: decide from the
 * targets; 0: regression; > 0: classes. */
clipnn_status clipnn_parse_csv(const char *name, const char *text, size_t len, long target_column,
                               int classification, clipnn_dataset **out);
/* The same from a file; target_name, when not NULL, picks the target
 * column by its name in the header line instead of target_column. */
clipnn_status clipnn_load_csv_file(const char *path, long target_column, const char *target_name,
                                   int classification, clipnn_dataset **out);

/* Synthetic sets (src/data/synthetic.c). */
clipnn_status clipnn_make_spirals(size_t n, uint64_t seed, clipnn_dataset **out);
clipnn_status clipnn_make_teacher(size_t n, uint64_t seed, clipnn_dataset **out);

/* ------------------------------------------------------------- built-in */

/* The CSV files of the built-in sets (gzip), embedded at build time
 * (src/data/builtin.c): the 8x8 digits and breast cancer. */
extern const unsigned char clipnn_digits_csv_gz[];
extern const unsigned char clipnn_digits_csv_gz_end[];
extern const unsigned char clipnn_breast_cancer_csv_gz[];
extern const unsigned char clipnn_breast_cancer_csv_gz_end[];

/* Shards (src/data/shard.c; the rows of each: clipnn_part_bounds). */
/* d keeps only its shard (a no-op for shards < 2): the other rows are
 * released (the arrays are allocated anew at the shard's size). */
clipnn_status clipnn_dataset_keep_shard(clipnn_dataset *d, size_t shard, size_t shards);
/* The shard of IDX images and labels, reading only the shard's image bytes
 * (the labels are read whole: the class count is that of the whole file). */
clipnn_status clipnn_load_idx_shard(const char *images, const char *labels, size_t shard, size_t shards,
                                    clipnn_dataset **out);

/* Copies what describes the rows (image and sequence geometry, pixel
 * scale) from one set to another of the same rows' shape. */
void clipnn_dataset_copy_geometry(clipnn_dataset *to, const clipnn_dataset *from);
/* Copies the class names (when from has them). */
clipnn_status clipnn_dataset_copy_class_names(clipnn_dataset *to, const clipnn_dataset *from);

/* The DATA section of a checkpoint: a record as bytes (encode allocates
 * *out with clipnn_alloc), and back, refusing a malformed payload (FORMAT)
 * with a message naming name. */
clipnn_status clipnn_data_info_encode(const clipnn_data_info *info, unsigned char **out, size_t *len);
clipnn_status clipnn_data_info_decode(const char *name, const unsigned char *b, size_t len, clipnn_data_info **out);

/* x: [n][T][d] or [n][d] and y: [n], [n][k] or [n][T][k] .npy files
 * (task as for CSV: < 0 decide, 0 regression, > 0 classes). */
clipnn_status clipnn_load_npy_pair(const char *x_path, const char *y_path, int task, clipnn_dataset **out);

/* ------------------------------------------------------- sequence tasks */

/* The pathological tasks of recurrent networks (src/data/seq_tasks.c):
 * sequences of T steps, each answer read at the last step. */
typedef enum {
    CLIPNN_SEQ_TEMPORAL_ORDER = 0,  /* 6 one-hot symbols, 4 classes */
    CLIPNN_SEQ_TEMPORAL_ORDER_3BIT, /* 6 one-hot symbols, 8 classes */
    CLIPNN_SEQ_ADDITION,            /* (value, marker), regression */
    CLIPNN_SEQ_MULTIPLICATION,      /* (value, marker), regression */
    CLIPNN_SEQ_RANDOM_PERMUTATION,  /* `symbols` one-hot symbols, 2 classes */
    CLIPNN_SEQ_MEMORIZATION,        /* 4 one-hot symbols, 2^CLIPNN_SEQ_MEMORY_BITS classes */
    CLIPNN_SEQ_TASK_COUNT
} clipnn_seq_task_kind;

#define CLIPNN_SEQ_MIN_STEPS 10
#define CLIPNN_SEQ_MAX_STEPS 100000
#define CLIPNN_SEQ_MEMORY_BITS 5
/* The test part's stream: seed ^ this, apart from the training part's. */
#define CLIPNN_SEQ_TEST_STREAM 0x7e57c0de5eed0001ull

typedef struct {
    clipnn_seq_task_kind kind;
    size_t steps;   /* T */
    size_t symbols; /* alphabet of the random permutation task */
} clipnn_seq_task;

typedef struct {
    clipnn_seq_task task;
    size_t n_train, n_test;
} clipnn_seq_task_spec;

const char *clipnn_seq_task_name(clipnn_seq_task_kind kind);
size_t clipnn_seq_task_dim(const clipnn_seq_task *task); /* values per step */
clipnn_status clipnn_seq_task_check(const clipnn_seq_task *task);
/* n sequences drawn from seed: x [n][T][dim], y [n] (class or value). */
clipnn_status clipnn_seq_task_make(const clipnn_seq_task *task, size_t n, uint64_t seed, clipnn_dataset **out);
/* "NAME[:T=N][,train=N][,test=N][,symbols=K]": 0 when spec names no task;
 * else 1, with *status the parse's. */
int clipnn_seq_task_parse(const char *spec, clipnn_seq_task_spec *out, clipnn_status *status);
/* The training part from seed, the test part (when test != NULL) from
 * seed ^ CLIPNN_SEQ_TEST_STREAM. */
clipnn_status clipnn_seq_task_load(const clipnn_seq_task_spec *spec, uint64_t seed, clipnn_dataset **train,
                                   clipnn_dataset **test);

#endif
