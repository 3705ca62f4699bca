/* IDX image and label files (MNIST's format): the input up to the first
 * "\n--\n" is the images file, the rest the labels file. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, "\n--\n", &a, &na, &b, &nb);
    const char *images = fuzz_file(0, a, na, "-images-idx3-ubyte");
    const char *labels = fuzz_file(1, b, nb, "-labels-idx1-ubyte");
    clipnn_dataset *d = NULL;
    if (clipnn_dataset_load_idx(images, labels, &d) == CLIPNN_OK) clipnn_dataset_free(d);
    char spec[160];
    snprintf(spec, sizeof spec, "idx:%s,%s", images, labels);
    clipnn_dataset *train = NULL, *test = NULL;
    if (clipnn_dataset_load(spec, NULL, &train, &test) == CLIPNN_OK) {
        clipnn_dataset_free(train);
        clipnn_dataset_free(test);
    }
    return 0;
}
