/* Shared by the libFuzzer harnesses (fuzz/fuzz_NAME.c, built and run by
 * `make fuzz`): the library reads files, so each harness hands its input to
 * it as a file, and every harness runs under the same small limits so that
 * a forged size is refused instead of growing the process. */
#ifndef CLIPNN_FUZZ_H
#define CLIPNN_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipnn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Limits far below libFuzzer's 2 GB malloc limit: a forged header must be
 * refused by the library's own checks, which name the limit. */
#define FUZZ_MAX_INPUT_BYTES ((uint64_t)16 << 20)
#define FUZZ_MAX_MEMORY ((uint64_t)256 << 20)

/* Path of temporary file number slot (0..3) holding bytes[0..n), rewritten
 * on every call; the files are removed at exit. */
static char fuzz_paths[4][64];

static inline void fuzz_remove_files(void) {
    for (int i = 0; i < 4; i++)
        if (fuzz_paths[i][0]) unlink(fuzz_paths[i]);
}

static inline const char *fuzz_file(int slot, const void *bytes, size_t n, const char *suffix) {
    if (!fuzz_paths[slot][0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_paths[slot], sizeof fuzz_paths[slot], "%s/clipnn-fuzz-%d-%d%s", dir, (int)getpid(), slot,
                 suffix);
        if (slot == 0) atexit(fuzz_remove_files);
    }
    FILE *f = fopen(fuzz_paths[slot], "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n) || fclose(f)) abort(); /* the harness itself is broken */
    return fuzz_paths[slot];
}

/* The limits above, once per process (each harness calls it first). */
static inline void fuzz_limits(void) {
    clipnn_set_max_input_bytes(FUZZ_MAX_INPUT_BYTES);
    clipnn_set_max_memory(FUZZ_MAX_MEMORY);
}

/* Split data at the first occurrence of sep (a byte string): the part
 * before into *a, after into *b. No separator: all of it is a, b empty. */
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **a, size_t *na,
                       const uint8_t **b, size_t *nb) {
    size_t k = strlen(sep);
    for (size_t i = 0; i + k <= size; i++)
        if (!memcmp(data + i, sep, k)) {
            *a = data, *na = i, *b = data + i + k, *nb = size - i - k;
            return;
        }
    *a = data, *na = size, *b = data + size, *nb = 0;
}

/* The input split at the first "\n--\n" into temporary files number slot
 * (the part before, *pa) and slot + 1 (the rest, *pb). */
static inline void fuzz_pair_files(const uint8_t *data, size_t size, int slot, const char *suffix_a,
                                   const char *suffix_b, const char **pa, const char **pb) {
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, "\n--\n", &a, &na, &b, &nb);
    *pa = fuzz_file(slot, a, na, suffix_a);
    *pb = fuzz_file(slot + 1, b, nb, suffix_b);
}

/* Loads the data spec printf(fmt, ...) as clipnn_dataset_load does for
 * --data, and frees what it made. */
static inline void fuzz_load_spec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fuzz_load_spec(const char *fmt, ...) {
    char spec[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(spec, sizeof spec, fmt, ap);
    va_end(ap);
    clipnn_dataset *train = NULL, *test = NULL;
    if (clipnn_dataset_load(spec, NULL, &train, &test) == CLIPNN_OK) {
        clipnn_dataset_free(train);
        clipnn_dataset_free(test);
    }
}

#endif
