/* NumPy .npy files: one array on its own (clipnn_npy_read_nd and
 * clipnn_npy_read), and an X, Y pair as npy:X.npy,Y.npy (the input up to
 * the first "\n--\n" is X, the rest Y). */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

static void read_one(const char *path) {
    float *v = NULL;
    size_t shape[CLIPNN_NPY_MAX_DIMS], ndim, rows, cols;
    if (clipnn_npy_read_nd(path, &v, shape, &ndim) == CLIPNN_OK) free(v);
    v = NULL;
    if (clipnn_npy_read(path, &v, &rows, &cols) == CLIPNN_OK) free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_one(fuzz_file(0, data, size, ".npy"));
    const char *x, *y;
    fuzz_pair_files(data, size, 1, "-x.npy", "-y.npy", &x, &y);
    fuzz_load_spec("npy:%s,%s", x, y);
    return 0;
}
