/* Gzip CSV files: the input as it is (corrupt, truncated or concatenated
 * gzip members, from the seeds' real ones), and the input compressed, so
 * that the CSV parser also sees text arriving through the decompressor. */
#include <zlib.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

static void load(const char *path) {
    clipnn_dataset *d = NULL;
    if (clipnn_dataset_load_csv(path, -1, -1, &d) == CLIPNN_OK) clipnn_dataset_free(d);
}

/* data gzipped into a temporary file; NULL when zlib cannot (never for
 * inputs this small). */
static const char *gzip_file(const uint8_t *data, size_t size) {
    static unsigned char out[1 << 21];
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    z.next_in = (unsigned char *)data, z.avail_in = (unsigned)size;
    z.next_out = out, z.avail_out = sizeof out;
    int r = deflate(&z, Z_FINISH);
    size_t n = sizeof out - z.avail_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? fuzz_file(1, out, n, ".csv.gz") : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 20)) return 0;
    load(fuzz_file(0, data, size, ".csv.gz"));
    const char *gz = gzip_file(data, size);
    if (gz) load(gz);
    return 0;
}
