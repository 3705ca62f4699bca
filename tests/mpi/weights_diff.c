/* weights_diff A.ckpt B.ckpt: the largest difference between the two
 * checkpoints' parameters, and the largest parameter, on one line:
 * "max_abs_diff MAXDIFF max_abs_param MAXPARAM n_params N". Exit 3 when the
 * files cannot be read or the models differ in size. */
#include <math.h>
#include <stdio.h>

#include "clipnn.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: weights_diff A.ckpt B.ckpt\n");
        return 2;
    }
    clipnn_model *a = NULL, *b = NULL;
    if (clipnn_checkpoint_load(argv[1], &a, NULL) || clipnn_checkpoint_load(argv[2], &b, NULL)) {
        fprintf(stderr, "weights_diff: %s\n", clipnn_last_error());
        return 3;
    }
    size_t n = clipnn_model_n_params(a);
    if (n != clipnn_model_n_params(b)) {
        fprintf(stderr, "weights_diff: %zu parameters against %zu\n", n, clipnn_model_n_params(b));
        return 3;
    }
    const float *pa = clipnn_model_params(a), *pb = clipnn_model_params(b);
    double diff = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)pa[i] - (double)pb[i]);
        if (!(d <= diff)) diff = d; /* a NaN makes the difference NaN */
        if (fabs((double)pa[i]) > big) big = fabs((double)pa[i]);
    }
    printf("max_abs_diff %.9g max_abs_param %.9g n_params %zu\n", diff, big, n);
    clipnn_model_free(a);
    clipnn_model_free(b);
    return 0;
}
