/* Synthetic datasets made from a seed: the same seed gives
 * the same rows, bit for bit, with the same libm (the draws are xoshiro256**;
 * sin, cos and tanh are computed in double and rounded once to float). */
#include <math.h>

#include "data/data.h"

/* Two interleaved spirals, 2 features, 2 classes (even rows class 0, odd
 * rows class 1). Each point sits at t in [0, 1) along its arm: radius t,
 * angle 3 pi t (one and a half turns), class 1 the point reflected through
 * the origin, plus N(0, 0.02^2) noise per coordinate. Adjacent passes of
 * the two arms are 1/3 apart radially, so the classes are separable, but
 * only by a curved boundary: a linear model stays near 50%. */
clipnn_status clipnn_make_spirals(size_t n, uint64_t seed, clipnn_dataset **out) {
    clipnn_status s = clipnn_dataset_new("spirals", n, 2, 2, 1, out);
    if (s) return s;
    clipnn_dataset *d = *out;
    clipnn_rng r;
    clipnn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double t = clipnn_rng_uniform(&r), a = 3.0 * M_PI * t;
        double sign = (i & 1) ? -1.0 : 1.0;
        double px = sign * t * cos(a), py = sign * t * sin(a);
        px += 0.02 * clipnn_rng_normal(&r);
        py += 0.02 * clipnn_rng_normal(&r);
        d->x[2 * i] = (float)px;
        d->x[2 * i + 1] = (float)py;
        d->y[i] = (float)(i & 1);
    }
    return CLIPNN_OK;
}

enum { TEACHER_IN = 10, TEACHER_HIDDEN = 32 };

/* Regression on the output of a random teacher MLP, 10 -> 32 tanh -> 1:
 * W1 ~ N(0, 1/10), b1 ~ U(-0.5, 0.5), w2 ~ N(0, 1/32), b2 = 0, drawn first,
 * then the inputs x ~ N(0, I_10). The targets carry no noise, so a student
 * of the teacher's shape can reach zero loss; their standard deviation is
 * about 0.6. */
clipnn_status clipnn_make_teacher(size_t n, uint64_t seed, clipnn_dataset **out) {
    clipnn_status s = clipnn_dataset_new("teacher", n, TEACHER_IN, 0, 1, out);
    if (s) return s;
    clipnn_dataset *d = *out;
    clipnn_rng r;
    clipnn_rng_seed(&r, seed);
    double w1[TEACHER_HIDDEN][TEACHER_IN], b1[TEACHER_HIDDEN], w2[TEACHER_HIDDEN];
    for (int h = 0; h < TEACHER_HIDDEN; h++) {
        for (int j = 0; j < TEACHER_IN; j++) w1[h][j] = clipnn_rng_normal(&r) / sqrt((double)TEACHER_IN);
        b1[h] = clipnn_rng_uniform(&r) - 0.5;
        w2[h] = clipnn_rng_normal(&r) / sqrt((double)TEACHER_HIDDEN);
    }
    for (size_t i = 0; i < n; i++) {
        double x[TEACHER_IN];
        for (int j = 0; j < TEACHER_IN; j++) {
            x[j] = clipnn_rng_normal(&r);
            d->x[i * TEACHER_IN + j] = (float)x[j];
        }
        double y = 0;
        for (int h = 0; h < TEACHER_HIDDEN; h++) {
            double z = b1[h];
            for (int j = 0; j < TEACHER_IN; j++) z += w1[h][j] * (double)(float)x[j];
            y += w2[h] * tanh(z);
        }
        d->y[i] = (float)y;
    }
    return CLIPNN_OK;
}
