/* Counted, overflow-checked allocation. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/base.h"

static atomic_uint_fast64_t n_allocations;

uint64_t clipnn_allocation_count(void) { return (uint64_t)atomic_load(&n_allocations); }

int clipnn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int clipnn_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

void *clipnn_alloc(size_t bytes) {
    atomic_fetch_add(&n_allocations, 1);
    return malloc(bytes ? bytes : 1);
}

void *clipnn_alloc_array(size_t count, size_t size) {
    size_t bytes;
    if (clipnn_mul_size(count, size, &bytes)) return NULL;
    atomic_fetch_add(&n_allocations, 1);
    return calloc(bytes ? count : 1, bytes ? size : 1);
}

/* Large arrays from malloc start 16 bytes past a page, so every 64-byte vector
 * load of them straddles two cache lines; the hot blocks start on a line.
 * calloc underneath keeps large blocks lazily zeroed (untouched pages cost
 * nothing, which the memory limits rely on); the block's own address is kept
 * in the word before the aligned one. */
void *clipnn_alloc_aligned_array(size_t count, size_t size) {
    size_t bytes, padded;
    if (clipnn_mul_size(count, size, &bytes) || clipnn_add_size(bytes, 64 + sizeof(void *), &padded)) return NULL;
    atomic_fetch_add(&n_allocations, 1);
    unsigned char *raw = calloc(padded, 1);
    if (!raw) return NULL;
    uintptr_t at = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    void **p = (void **)at;
    p[-1] = raw;
    return p;
}

void clipnn_free_aligned(void *p) {
    if (p) free(((void **)p)[-1]);
}

void *clipnn_realloc_array(void *p, size_t count, size_t size) {
    size_t bytes;
    if (clipnn_mul_size(count, size, &bytes)) return NULL;
    atomic_fetch_add(&n_allocations, 1);
    return realloc(p, bytes ? bytes : 1);
}

void clipnn_free(void *p) { free(p); }
