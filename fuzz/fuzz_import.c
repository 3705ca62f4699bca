/* Model files of other tools: safetensors and npz as clipnn_model_import
 * reads them, with and without import options (the input's first byte
 * picks the activation and step count given). */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

static void import_as(const char *path, clipnn_export_format format, const clipnn_import_options *o) {
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    if (clipnn_model_import(path, format, o, &m, &info) == CLIPNN_OK) clipnn_model_free(m);
    clipnn_data_info_free(info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    clipnn_import_options o = clipnn_import_options_default();
    if (size) {
        o.act = (clipnn_act)(data[0] % (CLIPNN_ACT_COUNT + 1));
        o.steps = data[0] >> 5;
        o.rnn_relu = data[0] & 1;
    }
    import_as(fuzz_file(0, data, size, ".safetensors"), CLIPNN_EXPORT_SAFETENSORS, NULL);
    import_as(fuzz_file(1, data, size, ".npz"), CLIPNN_EXPORT_NPZ, NULL);
    import_as(fuzz_file(0, data, size, ".safetensors"), CLIPNN_EXPORT_SAFETENSORS, &o);
    import_as(fuzz_file(1, data, size, ".npz"), CLIPNN_EXPORT_NPZ, &o);
    return 0;
}
