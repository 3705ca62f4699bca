/* CSV files as the tool reads them (csv:PATH with and without options). */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size, ".csv");
    clipnn_dataset *d = NULL;
    if (clipnn_dataset_load_csv(path, -1, -1, &d) == CLIPNN_OK) clipnn_dataset_free(d);
    fuzz_load_spec("csv:%s,target=0,task=regression", path);
    return 0;
}
