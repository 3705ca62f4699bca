/* Gaussian noise in blocks, for DP-SGD's one draw per parameter per step.
 *
 * Uniform bits: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011), a counter-based generator: the
 * words for counter i under a key depend on nothing else, so a block of the
 * stream is computed without the ones before it (a threaded fill would give
 * the same numbers for any thread count) and every lane of a vector loop
 * computes its own counter. It passes TestU01's BigCrush.
 *
 * Normals: Box-Muller in float, one pair per two 32-bit words. The radius
 * sqrt(-2 ln u) takes u = (k + 1/2) 2^-31 from 31 bits (so u is never 0 and
 * |z| <= sqrt(64 ln 2) = 6.66: a normal exceeds that with probability
 * 2.7e-11); the angle is a uniform quadrant (2 bits) plus a uniform offset in
 * [-pi/4, pi/4) (23 bits), which is a uniform angle on the circle and needs
 * sine and cosine polynomials only on [-pi/4, pi/4]. The log, sine and cosine
 * are Cephes' float polynomials (the normals within 5e-7 absolute of the same
 * bits through libm in double); no libm call, so the loop vectorizes, and
 * only +, * and sqrt, so every machine and every clone of the kernel gives
 * the same bits. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math") /* selects; -fno-math-errno comes from the Makefile */
#endif

#include <math.h>
#include <string.h>

#include "base/base.h"

/* The kernel's loop vectorizes only with every helper inlined into it. */
#if defined(__GNUC__)
#define CLIPNN_INLINE static inline __attribute__((always_inline))
#else
#define CLIPNN_INLINE static inline
#endif

enum { GROUPS = CLIPNN_NORMAL_BLOCK / 4, ROUNDS = 10 };

/* One Philox round: two 32 x 32 -> 64-bit products mixed with the key. */
CLIPNN_INLINE void philox_round(uint32_t x[4], uint32_t k0, uint32_t k1) {
    uint64_t p0 = (uint64_t)0xD2511F53u * x[0], p1 = (uint64_t)0xCD9E8D57u * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0, y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
    x[1] = (uint32_t)p1;
    x[3] = (uint32_t)p0;
    x[0] = y0;
    x[2] = y2;
}

/* The round keys: the key bumped by the Weyl constants before rounds 2..10. */
static void round_keys(const uint32_t key[2], uint32_t k0[ROUNDS], uint32_t k1[ROUNDS]) {
    for (int r = 0; r < ROUNDS; r++) {
        k0[r] = key[0] + (uint32_t)r * 0x9E3779B9u;
        k1[r] = key[1] + (uint32_t)r * 0xBB67AE85u;
    }
}

CLIPNN_INLINE void philox_rounds(uint32_t x[4], const uint32_t k0[ROUNDS], const uint32_t k1[ROUNDS]) {
    /* written out: GCC vectorizes the caller's loop over counters only
     * when nothing inside it loops */
    philox_round(x, k0[0], k1[0]);
    philox_round(x, k0[1], k1[1]);
    philox_round(x, k0[2], k1[2]);
    philox_round(x, k0[3], k1[3]);
    philox_round(x, k0[4], k1[4]);
    philox_round(x, k0[5], k1[5]);
    philox_round(x, k0[6], k1[6]);
    philox_round(x, k0[7], k1[7]);
    philox_round(x, k0[8], k1[8]);
    philox_round(x, k0[9], k1[9]);
}

void clipnn_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t k0[ROUNDS], k1[ROUNDS];
    round_keys(key, k0, k1);
    memcpy(out, ctr, 4 * sizeof *out);
    philox_rounds(out, k0, k1);
}

/* -2 ln u for u in [2^-32, 1]: u = 2^e m with m in [sqrt(1/2), sqrt(2)),
 * ln u = e ln 2 + ln m, ln m by Cephes' logf polynomial in m - 1 and
 * ln 2 in two parts so that e ln 2 adds no rounding error. */
CLIPNN_INLINE float minus_two_log(float u) {
    int32_t bits;
    memcpy(&bits, &u, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    int32_t mbits = (bits & 0x7fffff) | 0x3f000000; /* m in [1/2, 1) */
    float m;
    memcpy(&m, &mbits, sizeof m);
    int32_t low = m < 0.707106781186547524f;
    float x = m * (float)(1 + low) - 1.0f, fe = (float)(e - low);
    float z = x * x;
    float y = 7.0376836292e-2f;
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * x * z + fe * -2.12194440e-4f - 0.5f * z;
    float ln = (x + y) + fe * 0.693359375f;
    return -2.0f * ln;
}

/* Two independent normals from two 32-bit words (radius bits, angle bits). */
CLIPNN_INLINE void box_muller(uint32_t wr, uint32_t wa, float *zc, float *zs) {
    float u = ((float)(int32_t)(wr >> 1) + 0.5f) * 0x1p-31f;
    float r = sqrtf(minus_two_log(u));
    /* the quadrant is bits 30-31, the offset f bits 7-29: x = ((2f + 1)
     * 2^-24 - 1/2) pi/2, 2f + 1 < 2^24 exact in float */
    float x = (float)(int32_t)(((wa >> 7) & 0x7fffffu) * 2u + 1u) * (1.57079632679489662f * 0x1p-24f) -
              0.785398163397448310f;
    float z = x * x;
    float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
    float c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
              0.5f * z + 1.0f;
    /* rotate (c, s) by the quadrant q: (c, s), (-s, c), (-c, -s), (s, -c) */
    uint32_t q = wa >> 30, swap = 0u - (q & 1), cb, sb;
    memcpy(&cb, &c, sizeof cb);
    memcpy(&sb, &s, sizeof sb);
    uint32_t cq = (cb & ~swap) | (sb & swap), sq = (sb & ~swap) | (cb & swap);
    cq ^= ((q ^ (q >> 1)) & 1) << 31; /* negative in quadrants 1 and 2 */
    sq ^= (q >> 1) << 31;             /* and in 2 and 3 */
    memcpy(&c, &cq, sizeof c);
    memcpy(&s, &sq, sizeof s);
    *zc = r * c;
    *zs = r * s;
}

/* Block b: counters b GROUPS .. b GROUPS + GROUPS - 1, each giving two
 * pairs, stored by quarter so that the stores are contiguous. */
CLIPNN_HOT_KERNEL void normal_block_kernel(const uint32_t *k0, const uint32_t *k1, uint64_t block, float *z) {
    uint64_t first = block * GROUPS;
    for (size_t g = 0; g < GROUPS; g++) {
        uint64_t ctr = first + g;
        uint32_t x[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0};
        philox_rounds(x, k0, k1);
        box_muller(x[0], x[1], &z[g], &z[GROUPS + g]);
        box_muller(x[2], x[3], &z[2 * GROUPS + g], &z[3 * GROUPS + g]);
    }
}

static void key_words(uint64_t key, uint32_t k0[ROUNDS], uint32_t k1[ROUNDS]) {
    uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    round_keys(k, k0, k1);
}

void clipnn_normal_block(uint64_t key, uint64_t block, float z[CLIPNN_NORMAL_BLOCK]) {
    uint32_t k0[ROUNDS], k1[ROUNDS];
    key_words(key, k0, k1);
    normal_block_kernel(k0, k1, block, z);
}

/* Entries [j, j + len) of a block: g = (a g + std z) inv in double. */
CLIPNN_HOT_KERNEL void scale_block(float *g, const float *z, size_t len, double a, double std, double inv) {
#pragma omp simd
    for (size_t j = 0; j < len; j++) g[j] = (float)((a * (double)g[j] + std * (double)z[j]) * inv);
}

CLIPNN_HOT_KERNEL void mean_block(float *g, const double *sum, const float *z, size_t len, double std, double inv) {
#pragma omp simd
    for (size_t j = 0; j < len; j++) g[j] = (float)((sum[j] + std * (double)z[j]) * inv);
}

/* One pass over g in generator blocks: with sum, g = (sum + std z) inv;
 * without, g = (a g + std z) inv. */
static void add_noise(uint64_t key, double a, double std, double inv, const double *sum, float *g, size_t n) {
    uint32_t k0[ROUNDS], k1[ROUNDS];
    float z[CLIPNN_NORMAL_BLOCK];
    key_words(key, k0, k1);
    for (size_t b = 0; b * CLIPNN_NORMAL_BLOCK < n; b++) {
        size_t at = b * CLIPNN_NORMAL_BLOCK, len = n - at < CLIPNN_NORMAL_BLOCK ? n - at : CLIPNN_NORMAL_BLOCK;
        normal_block_kernel(k0, k1, b, z);
        if (sum) mean_block(g + at, sum + at, z, len, std, inv);
        else scale_block(g + at, z, len, a, std, inv);
    }
}

void clipnn_normal_scale(uint64_t key, double a, double std, double inv, float *g, size_t n) {
    add_noise(key, a, std, inv, NULL, g, n);
}

void clipnn_normal_mean(uint64_t key, double std, double inv, const double *sum, float *g, size_t n) {
    add_noise(key, 0, std, inv, sum, g, n);
}
