/* Private declarations shared by the dataset sources: src/data/dataset.c
 * (the object), src/data/load.c (specs, split, scaling), src/data/formats.c
 * (file reading, CSV, IDX), src/data/npy_data.c (NumPy arrays, sequences),
 * src/data/builtin.c (the embedded sets) and src/data/synthetic.c
 * (spirals, teacher). */
#ifndef CLIPNN_DATA_INTERNAL_H
#define CLIPNN_DATA_INTERNAL_H

#include "base/base.h"

struct clipnn_dataset {
    char *name;          /* file path or set name, used in messages */
    size_t n, dim;       /* rows, features */
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

#endif
