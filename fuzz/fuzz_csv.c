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
    char spec[128];
    snprintf(spec, sizeof spec, "csv:%s,target=0,task=regression", path);
    clipnn_dataset *train = NULL, *test = NULL;
    if (clipnn_dataset_load(spec, NULL, &train, &test) == CLIPNN_OK) {
        clipnn_dataset_free(train);
        clipnn_dataset_free(test);
    }
    return 0;
}
