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
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, "\n--\n", &a, &na, &b, &nb);
    const char *x = fuzz_file(1, a, na, "-x.npy"), *y = fuzz_file(2, b, nb, "-y.npy");
    char spec[160];
    snprintf(spec, sizeof spec, "npy:%s,%s", x, y);
    clipnn_dataset *train = NULL, *test = NULL;
    if (clipnn_dataset_load(spec, NULL, &train, &test) == CLIPNN_OK) {
        clipnn_dataset_free(train);
        clipnn_dataset_free(test);
    }
    return 0;
}
