/* .npy arrays in memory, for the arrays inside an npz file (src/io/npy.c).
 * Private to the library. */
#ifndef CLIPNN_IO_NPY_H
#define CLIPNN_IO_NPY_H

#include "base/base.h"

/* The longest header clipnn_npy_header writes. */
#define CLIPNN_NPY_HEADER_MAX 256

/* The version 1.0 header of a C-order little-endian float32 array of
 * shape[0..ndim) (1 to CLIPNN_NPY_MAX_DIMS dimensions) into out, padded to
 * 64 bytes as numpy.save does; returns its length. */
size_t clipnn_npy_header(unsigned char *out, const size_t *shape, size_t ndim);

/* An array held in bytes[len] (an npz member named name), read as
 * clipnn_npy_read_nd reads a file. */
clipnn_status clipnn_npy_read_mem(const char *name, const unsigned char *bytes, size_t len, float **data,
                                  size_t shape[CLIPNN_NPY_MAX_DIMS], size_t *ndim);

#endif
