/* The sums of squares behind clipnn_sumsq_blocked and
 * clipnn_sumsq_diff_blocked, as inline pieces: src/nn/norm.c sums a vector
 * with them, the update of clipnn_train (src/train/optim.c) sums each
 * unit with them as it writes it, so that both give the same bits.
 *
 * Float partial sums: 64 lanes (four vectors of 16) each add up to 8
 * squares (a block of 512 floats, in steps of 64), the four vectors are
 * added lane by lane and the block's 16 lanes go into 8 double lanes,
 * added once at the end. A lane's 8 float additions and the two of the
 * combination bound the relative error by 10 roundings (6e-7, typically
 * 1e-7: the rounding of the float entries themselves), at a fraction of
 * the cost of converting every element to double. Four independent
 * accumulators keep the adds from waiting on each other's latency (one
 * accumulator of 16 lanes made the sum a chain of dependent adds). The
 * vectors are GCC's generic vectors, which each CPU level lowers to its
 * own width with the same per-lane arithmetic; everything is inlined and
 * passed by pointer (a vector passed by value between functions would take
 * the default level's calling convention). */
#ifndef CLIPNN_SUMSQ_KERNEL_H
#define CLIPNN_SUMSQ_KERNEL_H

#include <stddef.h>
#include <string.h>

typedef float clipnn_f32x16 __attribute__((vector_size(64)));
typedef float clipnn_f32x8 __attribute__((vector_size(32)));
typedef double clipnn_f64x8 __attribute__((vector_size(64)));

#define SUMSQ_INLINE static inline __attribute__((always_inline))
#define SUMSQ_STEP 64   /* floats a step */
#define SUMSQ_STEPS 8   /* steps a block */

typedef struct {
    clipnn_f32x16 v0, v1, v2, v3;
} clipnn_sumsq_block;

/* 16 squares of v (of v - c when diff) into *a. */
SUMSQ_INLINE void sumsq_add16(clipnn_f32x16 *a, const float *v, const float *c, int diff) {
    clipnn_f32x16 x, y;
    memcpy(&x, v, sizeof x);
    if (diff) {
        memcpy(&y, c, sizeof y);
        x -= y;
    }
    *a += x * x;
}

/* A step: the k <= 64 floats at v (and c), as if the rest of the step were
 * zeros (x + 0 * 0 = x: a shorter step adds nothing to the lanes it does
 * not reach), float q of it into lane q % 16 of accumulator q / 16. */
SUMSQ_INLINE void sumsq_add_step(clipnn_sumsq_block *b, const float *v, const float *c, size_t k, int diff) {
    if (k == SUMSQ_STEP) {
        sumsq_add16(&b->v0, v, c, diff);
        sumsq_add16(&b->v1, v + 16, c + 16, diff);
        sumsq_add16(&b->v2, v + 32, c + 32, diff);
        sumsq_add16(&b->v3, v + 48, c + 48, diff);
        return;
    }
    /* each accumulator named (an index into them would keep all four in
     * memory for the whole loop) */
    size_t full = k / 16, r = k % 16;
    if (full > 0) sumsq_add16(&b->v0, v, c, diff);
    if (full > 1) sumsq_add16(&b->v1, v + 16, c + 16, diff);
    if (full > 2) sumsq_add16(&b->v2, v + 32, c + 32, diff);
    if (!r) return;
    float pad[16] = {0}, cpad[16] = {0};
    memcpy(pad, v + 16 * full, r * sizeof *v);
    if (diff) memcpy(cpad, c + 16 * full, r * sizeof *c);
    if (full == 0) sumsq_add16(&b->v0, pad, cpad, diff);
    else if (full == 1) sumsq_add16(&b->v1, pad, cpad, diff);
    else if (full == 2) sumsq_add16(&b->v2, pad, cpad, diff);
    else sumsq_add16(&b->v3, pad, cpad, diff);
}

/* A finished block into the double lanes; the block starts again at zero. */
SUMSQ_INLINE void sumsq_fold(clipnn_f64x8 *acc, clipnn_sumsq_block *b) {
    clipnn_f32x16 t = (b->v0 + b->v1) + (b->v2 + b->v3);
    clipnn_f32x8 lo = __builtin_shufflevector(t, t, 0, 1, 2, 3, 4, 5, 6, 7);
    clipnn_f32x8 hi = __builtin_shufflevector(t, t, 8, 9, 10, 11, 12, 13, 14, 15);
    *acc += __builtin_convertvector(lo, clipnn_f64x8) + __builtin_convertvector(hi, clipnn_f64x8);
    memset(b, 0, sizeof *b);
}

SUMSQ_INLINE double sumsq_total(const clipnn_f64x8 *acc) {
    const clipnn_f64x8 a = *acc;
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

#endif
