/* Private declarations of the export subsystem: named float32 tensors with
 * string metadata, as safetensors and npz files hold them
 * (src/export/safetensors.c, src/export/npz.c), and the mapping between a
 * model and PyTorch's names for its tensors (src/export/tensors.c). */
#ifndef CLIPNN_EXPORT_INTERNAL_H
#define CLIPNN_EXPORT_INTERNAL_H

#include "base/base.h"

/* The readers' bounds: tensors per file, dimensions per tensor, and the
 * length of a header or metadata entry (a safetensors header beyond 100 MB
 * is refused, as the format's own reader does). */
enum { CLIPNN_TENSORS_MAX = 4096, CLIPNN_TENSOR_MAX_DIMS = 2 };
#define CLIPNN_HEADER_MAX ((uint64_t)100 << 20)

typedef struct {
    char *name;
    size_t ndim, shape[CLIPNN_TENSOR_MAX_DIMS];
    size_t count;      /* elements: the product of the shape */
    const float *data; /* a model's parameters when writing; owned (clipnn_alloc) when read */
} clipnn_tensor;

typedef struct {
    clipnn_tensor *t;
    size_t n;
    clipnn_data_info *meta; /* string metadata, in file order */
    int owned;              /* names and data were allocated by a reader */
} clipnn_tensor_set;

void clipnn_tensor_set_free(clipnn_tensor_set *ts);
/* Appends a tensor (the name is copied; data is borrowed unless owned). */
clipnn_status clipnn_tensor_set_add(clipnn_tensor_set *ts, const char *name, const size_t *shape, size_t ndim,
                                    const float *data);

/* The PyTorch name of parameter group g of a model with layers ls (the
 * first n_rec recurrent). */
void clipnn_export_group_name(char *out, size_t cap, const clipnn_layer_spec *ls, size_t n_rec, size_t g);

/* The model's tensors under PyTorch's names and its layout as clipnn.*
 * metadata, followed by the entries of info (may be NULL). */
clipnn_status clipnn_model_tensors(const clipnn_model *m, const clipnn_data_info *info, clipnn_tensor_set *ts);
/* A model from tensors (by the clipnn.* metadata, else inferred from the
 * names and shapes, with o for what they cannot tell); *info receives the
 * metadata entries that are not clipnn.* (NULL when there are none). */
clipnn_status clipnn_model_from_tensors(const char *name, const clipnn_tensor_set *ts, const clipnn_import_options *o,
                                        clipnn_model **m, clipnn_data_info **info);

clipnn_status clipnn_safetensors_write(const char *path, const clipnn_tensor_set *ts);
clipnn_status clipnn_safetensors_read(const char *path, clipnn_tensor_set *ts);
clipnn_status clipnn_npz_write(const char *path, const clipnn_tensor_set *ts);
clipnn_status clipnn_npz_read(const char *path, clipnn_tensor_set *ts);

/* Reads a whole file (bounded by the input size limit) and hands its bytes to
 * parse, which fills ts (owned; meta already created); on failure ts is
 * left empty. */
typedef clipnn_status (*clipnn_tensor_parser)(const char *path, const unsigned char *b, size_t len,
                                              clipnn_tensor_set *ts);
clipnn_status clipnn_tensor_set_read(const char *path, clipnn_tensor_parser parse, clipnn_tensor_set *ts);

#endif
