/* Seeded random numbers: xoshiro256** (Blackman and Vigna) seeded through
 * splitmix64, so that every seed gives a well-mixed state. */
#include <math.h>

#include "base/base.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void clipnn_rng_seed(clipnn_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t clipnn_rng_next(clipnn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double clipnn_rng_uniform(clipnn_rng *r) { return (double)(clipnn_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t clipnn_rng_below(clipnn_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* Rejection keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = clipnn_rng_next(r);
    while (x >= limit);
    return x % n;
}

double clipnn_rng_normal(clipnn_rng *r) {
    /* Box-Muller; one of the pair is dropped to keep the state simple. */
    double u1 = clipnn_rng_uniform(r), u2 = clipnn_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void clipnn_rng_normal_pair(clipnn_rng *r, double *z0, double *z1) {
    /* Marsaglia's polar method: a point uniform in the unit disc gives two
     * independent normals with one logarithm and no sine or cosine (the
     * disc takes pi/4 of the square's draws). */
    double u, v, s;
    do {
        u = 2.0 * clipnn_rng_uniform(r) - 1.0;
        v = 2.0 * clipnn_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    *z0 = u * f;
    *z1 = v * f;
}

void clipnn_rng_shuffle(clipnn_rng *r, size_t *items, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)clipnn_rng_below(r, i);
        size_t t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}
