/* Dense layer kernels on CBLAS sgemm. Row-major throughout; W is
 * [out][in] like torch.nn.Linear.weight so that a row is one unit. */
#include <cblas.h>
#include <string.h>

#include "internal.h"

/* z[B][out] = a[B][in] W[out][in]^T + b[out]
 * The bias is written first and the product accumulated onto it (beta = 1),
 * which saves a separate pass over z. */
void clipnn_dense_forward(float *z, const float *a, const float *W, const float *b, size_t B,
                          size_t in, size_t out) {
    for (size_t r = 0; r < B; r++) memcpy(z + r * out, b, out * sizeof *z);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)out, (int)in, 1.0f, a,
                (int)in, W, (int)in, 1.0f, z, (int)out);
}

/* dW[out][in] = dz[B][out]^T a[B][in]
 * db[out]     = sum over B of dz[B][out]
 * da[B][in]   = dz[B][out] W[out][in]      (skipped when da is NULL)
 * dW and db are skipped when NULL (input gradient only). */
void clipnn_dense_backward(float *dW, float *db, float *da, const float *dz, const float *a,
                           const float *W, size_t B, size_t in, size_t out) {
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)B, 1.0f, dz,
                    (int)out, a, (int)in, 0.0f, dW, (int)in);
    if (db) {
        memcpy(db, dz, out * sizeof *db);
        for (size_t r = 1; r < B; r++) {
            const float *row = dz + r * out;
            for (size_t j = 0; j < out; j++) db[j] += row[j];
        }
    }
    if (da)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)in, (int)out, 1.0f, dz,
                    (int)out, W, (int)in, 0.0f, da, (int)in);
}
