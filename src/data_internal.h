/* Private declarations shared by the dataset sources: src/data.c (the object,
 * specs, split, scaling), src/data_formats.c (file reading, CSV, IDX) and
 * src/data_synthetic.c (spirals, teacher). */
#ifndef CLIPNN_DATA_INTERNAL_H
#define CLIPNN_DATA_INTERNAL_H

#include "internal.h"

struct clipnn_dataset {
    char *name;          /* file path or set name, used in messages */
    size_t n, dim;       /* rows, features */
    size_t n_classes;    /* 0: regression */
    size_t n_targets;    /* 1 for classification */
    size_t h, w, c;      /* image geometry, 0 when not an image set */
    float pixel_max;     /* full-scale pixel value of an image set (16, 255), else 0 */
    float *x;            /* [n][dim] */
    float *y;            /* [n][n_targets] */
};

/* An empty dataset with room for n rows (x and y zeroed). */
clipnn_status clipnn_dataset_new(const char *name, size_t n, size_t dim, size_t n_classes,
                                 size_t n_targets, clipnn_dataset **out);

/* The whole content of a file, plain or gzip (zlib reads both), into *buf
 * (NUL-terminated, [*len + 1], free with clipnn_free). Reading stops once
 * more than max_len bytes have arrived, so a caller that knows how long the
 * file must be never holds much more than that: *len is then max_len + 1.
 * Memory grows with the bytes actually read, never with a size the file
 * claims. Missing file: IO; corrupt gzip: FORMAT; gzip cut short: TRUNCATED. */
clipnn_status clipnn_read_file(const char *path, size_t max_len, unsigned char **buf, size_t *len);
/* The same for a gzip stream held in memory (the built-in digits). */
clipnn_status clipnn_gunzip_memory(const char *name, const unsigned char *gz, size_t gz_len,
                                   unsigned char **buf, size_t *len);

/* Numeric text table (comma- or whitespace-separated) in text[len] (text[len]
 * == 0) into a dataset named name. classification < 0: decide from the
 * targets; 0: regression; > 0: classes. */
clipnn_status clipnn_parse_csv(const char *name, const char *text, size_t len, long target_column,
                               int classification, clipnn_dataset **out);
/* The same from a file; target_name, when not NULL, picks the target
 * column by its name in the header line instead of target_column. */
clipnn_status clipnn_load_csv_file(const char *path, long target_column, const char *target_name,
                                   int classification, clipnn_dataset **out);

/* Synthetic sets (src/data_synthetic.c). */
clipnn_status clipnn_make_spirals(size_t n, uint64_t seed, clipnn_dataset **out);
clipnn_status clipnn_make_teacher(size_t n, uint64_t seed, clipnn_dataset **out);

#endif
