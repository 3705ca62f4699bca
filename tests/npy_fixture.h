/* .npy files written by hand for the tests that load sequence data
 * (test_recurrent_model.c, test_tbptt.c). */
#ifndef CLIPNN_NPY_FIXTURE_H
#define CLIPNN_NPY_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "check.h"

/* A .npy file of float32 [d0][d1] (d2 = 0) or [d0][d1][d2] written by
 * hand (numpy.save's v1.0); returns its path. */
static inline const char *save_npy(const char *name, const float *v, size_t d0, size_t d1, size_t d2) {
    const char *path = check_tmp_path(name);
    char dict[128], shape[64];
    if (d2) snprintf(shape, sizeof shape, "(%zu, %zu, %zu)", d0, d1, d2);
    else snprintf(shape, sizeof shape, "(%zu, %zu)", d0, d1);
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t total = 10 + (size_t)len + 1, padded = (total + 63) / 64 * 64;
    unsigned char head[256];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = (unsigned char)(padded - 10), head[9] = 0;
    memcpy(head + 10, dict, (size_t)len);
    memset(head + 10 + len, ' ', padded - 11 - (size_t)len);
    head[padded - 1] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    fwrite(head, 1, padded, f);
    fwrite(v, sizeof *v, d0 * d1 * (d2 ? d2 : 1), f); /* little-endian host */
    fclose(f);
    return path;
}

#endif
