/* Data-parallel training over MPI: what clipnn_train calls when the process
 * is part of a job (include/clipnn/dist.h). Private; builds on nn and base.
 * The MPI calls are compiled only with CLIPNN_MPI (make MPI=1); without it
 * no job is ever active and these functions are never reached. */
#ifndef CLIPNN_DIST_H
#define CLIPNN_DIST_H

#include "clipnn/train.h"
#include "nn/nn.h"

/* The process is part of a job (clipnn_dist_init ran in an MPI build):
 * clipnn_train computes the slice of each batch and reduces the gradient. */
int clipnn_dist_active(void);

/* Options a distributed run cannot keep exactly (INVALID_ARG naming them);
 * dp_logical: the options ask for Poisson sampling or physical batches. */
clipnn_status clipnn_dist_check(const clipnn_train_options *o, int dp_logical);

/* This process's slice of a batch of B rows idx[B] moved to idx[0 ..]:
 * its count (rows B r / N to B (r + 1) / N, r the rank, N the size; 0 for
 * some ranks when B < N). */
size_t clipnn_dist_take_slice(size_t *idx, size_t B);

/* The gradient of the global batch of B rows on every process: this
 * process's `rows` rows x, y go through clipnn_loss_grad_fused (none when
 * rows is 0), the gradient block and the loss are weighted by rows / B and
 * summed over the processes (one all-reduce of the gradient block, after
 * a small one of the loss and of failures). */
clipnn_status clipnn_dist_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                    size_t rows, size_t B, const clipnn_fused_opts *f, double *loss);

/* The current step's rows on this process and its global batch (the last
 * clipnn_dist_loss_grad's rows and B). */
size_t clipnn_dist_rows(void);
size_t clipnn_dist_batch(void);

/* A vector of the current step computed from this process's rows as a mean
 * over them (g[n]) becomes the mean over the global batch: weighted by rows
 * / B (zero when the process has no rows) and summed over the processes. */
void clipnn_dist_sum_slices(float *g, size_t n);

/* CLIPNN_OK when v[n] has the same bits on every process (a hash of them
 * compared), else STATE. */
clipnn_status clipnn_dist_check_same(const float *v, size_t n);

/* The bitwise OR of `bits` over the processes (the caller's requests to
 * save or stop, which every process must act on at the same step). */
int clipnn_dist_agree(int bits);

/* a[0 .. n) summed over the processes, in place. */
void clipnn_dist_sum_u64(uint64_t *a, int n);

#endif
