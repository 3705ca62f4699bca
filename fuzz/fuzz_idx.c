/* IDX image and label files (MNIST's format): the input up to the first
 * "\n--\n" is the images file, the rest the labels file. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *images, *labels;
    fuzz_pair_files(data, size, 0, "-images-idx3-ubyte", "-labels-idx1-ubyte", &images, &labels);
    clipnn_dataset *d = NULL;
    if (clipnn_dataset_load_idx(images, labels, &d) == CLIPNN_OK) clipnn_dataset_free(d);
    fuzz_load_spec("idx:%s,%s", images, labels);
    return 0;
}
