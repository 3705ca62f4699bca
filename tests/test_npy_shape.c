/* attack and optimize-input write their inputs as .npy arrays in the
 * data's shape ([n][h][w] for images), and read such arrays back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

TEST(npy_write_nd_round_trip) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i * 0.5f - 3;
    size_t shape[3] = {2, 3, 4}, got[CLIPNN_NPY_MAX_DIMS], ndim;
    const char *path = check_tmp_path("nd.npy");
    CHECK_OK(clipnn_npy_write_nd(path, v, shape, 3));
    float *back = NULL;
    CHECK_OK(clipnn_npy_read_nd(path, &back, got, &ndim));
    CHECK(ndim == 3 && got[0] == 2 && got[1] == 3 && got[2] == 4 && back && !memcmp(back, v, sizeof v));
    free(back);
    CHECK(clipnn_npy_write_nd(path, v, shape, 4) == CLIPNN_ERR_INVALID_ARG);
}

TEST(cli_inputs_written_in_image_shape) {
    const char *model = check_tmp_path("shape.ckpt"), *dir = check_tmp_path("shape_out");
    char args[8192], path[4200];
    const char *out;
    snprintf(args, sizeof args, "train --steps 40 --quiet --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "attack --model %s --method fgsm --eps 0.1 --n 7 --out %s", model, dir);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    const char *files[2] = {"original.npy", "eps0.1_adversarial.npy"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        float *v = NULL;
        size_t shape[CLIPNN_NPY_MAX_DIMS], ndim = 0;
        CHECK_OK(clipnn_npy_read_nd(path, &v, shape, &ndim));
        CHECK_MSG(ndim == 3 && shape[0] == 7 && shape[1] == 8 && shape[2] == 8, "%s: %zu dims", files[k], ndim);
        free(v);
    }
    snprintf(args, sizeof args, "optimize-input --model %s --start data:0 --target-class 3 --steps 20 --out %s", model,
             dir);
    CHECK_MSG(check_run_tool(args, &out) <= 1, "%s", out);
    snprintf(path, sizeof path, "%s/class3.npy", dir);
    float *v = NULL;
    size_t shape[CLIPNN_NPY_MAX_DIMS], ndim = 0;
    CHECK_OK(clipnn_npy_read_nd(path, &v, shape, &ndim));
    CHECK(ndim == 3 && shape[0] == 1 && shape[1] == 8 && shape[2] == 8);
    free(v);
    /* and the image-shaped array is a valid start */
    snprintf(args, sizeof args, "optimize-input --model %s --start %s --target-class 3 --steps 5", model, path);
    CHECK_MSG(check_run_tool(args, &out) <= 1, "%s", out);
}
