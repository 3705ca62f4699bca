/* clipnn: data-parallel training over MPI. A library built with MPI trains
 * one model on every process of the job: the training set is cut into one
 * contiguous part per process, every process draws the same minibatches
 * and computes the gradient of the rows in its part, the parts' gradients
 * are summed across processes before clipping (with the default clip
 * place, CLIPNN_CLIP_WHERE_GLOBAL), and every process then clips
 * and updates the same parameters identically. A library built without
 * MPI runs one process; these functions then say so. */
#ifndef CLIPNN_PUBLIC_DIST_H
#define CLIPNN_PUBLIC_DIST_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library was built with MPI, else 0. */
CLIPNN_API int clipnn_dist_available(void);

/* Joins the job (MPI_Init unless the program initialised MPI already);
 * from then on clipnn_train trains with every process of the job. Without
 * MPI: CLIPNN_OK and nothing changes. */
CLIPNN_API clipnn_status clipnn_dist_init(int *argc, char ***argv);

/* Leaves the job after a run that succeeded on every process (MPI_Finalize
 * when clipnn_dist_init initialised MPI). */
CLIPNN_API void clipnn_dist_finalize(void);

/* Ends every process of the job with exit code `code` (MPI_Abort), after
 * printing `why` (may be NULL) with this process's rank on stderr: for a
 * process that failed while the others wait for it. Returns only when no
 * job is running (a build without MPI, or before clipnn_dist_init). */
CLIPNN_API void clipnn_dist_abort(int code, const char *why);

/* This process's rank (0 .. size - 1) and the number of processes: 0 and 1
 * outside a job. */
CLIPNN_API int clipnn_dist_rank(void);
CLIPNN_API int clipnn_dist_size(void);

/* Seconds this process has spent in the training steps' all-reduces (the
 * communication, including the wait for slower processes); 0 outside a job. */
CLIPNN_API double clipnn_dist_reduce_seconds(void);

/* The load imbalance of the last clipnn_train in a job: each process
 * computes the rows of each global batch that fall in its part of the
 * training set, a number that varies from batch to batch; the sum over the
 * batches of the largest process's rows, over the sum of the mean rows per
 * process, minus 1 (0: perfectly even; 0.05: the slowest process computed
 * 5% more rows than the mean). 0 outside a job. */
CLIPNN_API double clipnn_dist_imbalance(void);

/* The buckets the last training step's gradient was summed in while the
 * backward ran (the environment variable CLIPNN_ALLREDUCE_BUCKET_MB sets
 * their size in MiB, the same on every process: process 0's); 0 when it
 * was summed in one all-reduce after the backward, or outside a job. */
CLIPNN_API int clipnn_dist_last_buckets(void);

#ifdef __cplusplus
}
#endif

#endif
