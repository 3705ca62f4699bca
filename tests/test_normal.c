/* The Gaussian noise generator: Philox4x32-10 against the published
 * known-answer vectors, and the normals' distribution on 1e6 draws (mean,
 * variance, tails, Kolmogorov-Smirnov, independence within a block, between
 * Box-Muller siblings and between the streams of consecutive steps). Every
 * bound is 5 standard errors of the statistic (or the KS quantile at 1e-6),
 * so a correct generator fails one with probability under 1e-6. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "check.h"

/* Random123's kat_vectors, the three philox4x32 10 lines: counter, key, output. */
TEST(normal_philox_known_answers) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        clipnn_philox4x32(kat[i], kat[i] + 4, out);
        for (int w = 0; w < 4; w++) CHECK(out[w] == kat[i][6 + w]);
    }
}

enum { N_BLOCKS = 977, N_DRAWS = N_BLOCKS * CLIPNN_NORMAL_BLOCK, QUARTER = CLIPNN_NORMAL_BLOCK / 4 };

static float *draws(uint64_t key) {
    float *z = malloc((size_t)N_DRAWS * sizeof *z);
    if (!z) return NULL;
    for (size_t b = 0; b < N_BLOCKS; b++) clipnn_normal_block(key, b, z + b * CLIPNN_NORMAL_BLOCK);
    return z;
}

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* sup |F_n - Phi| over the sorted sample (z is sorted in place). */
static double ks_distance(float *z, size_t n) {
    qsort(z, n, sizeof *z, by_value);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double phi = 0.5 * erfc(-(double)z[i] / sqrt(2.0));
        double above = (double)(i + 1) / (double)n - phi, below = phi - (double)i / (double)n;
        if (above > d) d = above;
        if (below > d) d = below;
    }
    return d;
}

/* Binomial count of |z| > t: expected n p, sd sqrt(n p (1 - p)). */
static void check_tail(const float *z, size_t n, double t) {
    double p = erfc(t / sqrt(2.0)), count = 0;
    for (size_t i = 0; i < n; i++) count += fabs((double)z[i]) > t;
    double want = (double)n * p, sd = sqrt(want * (1 - p));
    CHECK_NEAR(count, want, 5 * sd);
}

TEST(normal_distribution) {
    float *z = draws(0x5eed5eed12345678ull);
    if (!z) return;
    double n = N_DRAWS, mean = 0, sq = 0, biggest = 0;
    for (size_t i = 0; i < N_DRAWS; i++) {
        mean += z[i] / n, sq += (double)z[i] * z[i] / n;
        if (fabs(z[i]) > biggest) biggest = fabs(z[i]);
    }
    CHECK_NEAR(mean, 0, 5 / sqrt(n));
    CHECK_NEAR(sq - mean * mean, 1, 5 * sqrt(2 / n)); /* Var(z^2) = 2 */
    CHECK(biggest <= sqrt(64 * log(2.0)) + 1e-5);      /* u >= 2^-32 bounds the radius */
    check_tail(z, N_DRAWS, 1);
    check_tail(z, N_DRAWS, 2);
    check_tail(z, N_DRAWS, 3);
    check_tail(z, N_DRAWS, 4);
    /* P(sqrt(n) D > t) -> 2 e^(-2 t^2) (Kolmogorov): 1e-6 at t = 2.69 */
    CHECK(ks_distance(z, N_DRAWS) < sqrt(log(2 / 1e-6) / 2) / sqrt(n));
    free(z);
}

/* mean of (a_i b_i) and of (a_i^2 - 1)(b_i^2 - 1) over pairs of draws that
 * must be independent: standard errors 1 and 2 over sqrt(pairs). */
static void check_independent(const float *a, const float *b, size_t stride_a, size_t stride_b, size_t pairs) {
    double prod = 0, sq = 0;
    for (size_t i = 0; i < pairs; i++) {
        double x = a[i * stride_a], y = b[i * stride_b];
        prod += x * y / (double)pairs;
        sq += (x * x - 1) * (y * y - 1) / (double)pairs;
    }
    CHECK_NEAR(prod, 0, 5 / sqrt((double)pairs));
    CHECK_NEAR(sq, 0, 5 * 2 / sqrt((double)pairs));
}

TEST(normal_independence) {
    clipnn_rng r;
    clipnn_rng_seed(&r, 3);
    uint64_t k1 = clipnn_rng_next(&r), k2 = clipnn_rng_next(&r); /* two steps' keys */
    float *z = draws(k1), *w = draws(k2);
    if (z && w) {
        check_independent(z, z + 1, 1, 1, N_DRAWS - 1); /* consecutive entries */
        check_independent(z, w, 1, 1, N_DRAWS);         /* the same entry, two steps */
        /* Box-Muller siblings (same radius, angles pi/2 apart): entries g
         * and g + QUARTER of each block */
        size_t pairs = 0;
        float *a = malloc((size_t)N_DRAWS / 4 * sizeof *a), *b = malloc((size_t)N_DRAWS / 4 * sizeof *b);
        for (size_t blk = 0; a && b && blk < N_BLOCKS; blk++)
            for (size_t g = 0; g < QUARTER; g++, pairs++) {
                a[pairs] = z[blk * CLIPNN_NORMAL_BLOCK + g];
                b[pairs] = z[blk * CLIPNN_NORMAL_BLOCK + QUARTER + g];
            }
        if (a && b) check_independent(a, b, 1, 1, pairs);
        free(a);
        free(b);
    }
    free(z);
    free(w);
}

/* The fills are the stream's entries: (a g + std z_j) inv and (sum + std z_j) inv
 * for j < n, n not a multiple of the block, the same z as by blocks. */
TEST(normal_fills_follow_the_stream) {
    enum { N = 2 * CLIPNN_NORMAL_BLOCK + 37 };
    static float z[3 * CLIPNN_NORMAL_BLOCK], g[N], h[N];
    static double sum[N];
    uint64_t key = 0x0123456789abcdefull;
    for (size_t b = 0; b < 3; b++) clipnn_normal_block(key, b, z + b * CLIPNN_NORMAL_BLOCK);
    for (size_t j = 0; j < N; j++) g[j] = (float)j, sum[j] = 0.25 * (double)j;
    memcpy(h, g, sizeof h);
    clipnn_normal_scale(key, 3, 0.5, 1 / 3.0, g, N);
    clipnn_normal_mean(key, 0.5, 1 / 3.0, sum, h, N);
    int scale_ok = 1, mean_ok = 1;
    for (size_t j = 0; j < N; j++) {
        scale_ok &= g[j] == (float)((3 * (double)j + 0.5 * (double)z[j]) * (1 / 3.0));
        mean_ok &= h[j] == (float)((sum[j] + 0.5 * (double)z[j]) * (1 / 3.0));
    }
    CHECK(scale_ok);
    CHECK(mean_ok);
    float again[CLIPNN_NORMAL_BLOCK];
    clipnn_normal_block(key, 1, again); /* a block alone, as a thread would make it */
    CHECK(memcmp(again, z + CLIPNN_NORMAL_BLOCK, sizeof again) == 0);
}
