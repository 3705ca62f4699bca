/* Little-endian encoding of integers and IEEE floats for the file formats
 * (checkpoints, optimizer and training state). Byte by byte, so the files
 * are the same on every host whatever its endianness; floats go through
 * their bit patterns, so every value (NaN payloads included) survives a
 * round trip exactly. */
#ifndef CLIPNN_BYTES_LE_H
#define CLIPNN_BYTES_LE_H

#include <stdint.h>
#include <string.h>

static inline void le_put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline void le_put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t le_get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t le_get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline void le_put_f32(unsigned char *p, float f) {
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    le_put_u32(p, v);
}

static inline float le_get_f32(const unsigned char *p) {
    uint32_t v = le_get_u32(p);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

static inline void le_put_f64(unsigned char *p, double d) {
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    le_put_u64(p, v);
}

static inline double le_get_f64(const unsigned char *p) {
    uint64_t v = le_get_u64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* float arrays: [n] <-> 4n bytes */
static inline void le_put_f32s(unsigned char *p, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) le_put_f32(p + 4 * i, v[i]);
}

static inline void le_get_f32s(float *v, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = le_get_f32(p + 4 * i);
}

/* Float arrays of any length written through a bounded buffer: put receives
 * each chunk of little-endian bytes; its first nonzero return stops the
 * writing and is returned. */
static inline int le_write_f32s(const float *v, size_t n, int (*put)(void *ctx, const void *p, size_t len),
                                void *ctx) {
    unsigned char buf[4096];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        le_put_f32s(buf, v + i, k);
        int err = put(ctx, buf, 4 * k);
        if (err) return err;
    }
    return 0;
}

#endif
