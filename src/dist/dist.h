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

/* Seconds of a step's all-reduce made elsewhere, added to the steps' total. */
void clipnn_dist_count_reduce(double seconds);

/* a[0 .. n) summed over the processes, in place. */
void clipnn_dist_sum_u64(uint64_t *a, int n);

/* g[n], a part of this process's slice gradient, weighted by rows / B of
 * the current step (zeroed when the process has no rows): what every part
 * gets before the sum over the processes. */
void clipnn_dist_weigh_slice(float *g, size_t n);

/* The gradient all-reduce in buckets overlapping the backward (dist/bucket.c). */
/* The bucket size in MiB unless CLIPNN_ALLREDUCE_BUCKET_MB says otherwise
 * (0: one all-reduce of the whole block after the backward). */
#define CLIPNN_DIST_BUCKET_MB 0.0
/* text: a size in MiB >= 0 into *mb (INVALID_ARG, one line, otherwise). */
clipnn_status clipnn_dist_bucket_parse(const char *text, double *mb);
/* The bucket size from the environment variable's text (NULL: unset, the
 * default kept); before the job starts. */
clipnn_status clipnn_dist_bucket_from_env(const char *text);
/* Once the job runs: process 0's bucket size for every process; funneled:
 * MPI may be called by the main thread while other threads run. */
void clipnn_dist_bucket_agree(int funneled);
double clipnn_dist_bucket_mb(void);
/* Seconds in the buckets' MPI calls (posting, testing, the final wait). */
double clipnn_dist_bucket_seconds(void);
/* Steps that sent buckets during the backward, and those of them whose
 * buckets were all summed when the backward ended (the overlap achieved). */
void clipnn_dist_bucket_overlap(uint64_t *steps, uint64_t *done);
/* Starts a step's bucketed all-reduce of m->grads: 1 when the step uses
 * buckets (a job, a bucket size > 0, the global clip place), 0 when the
 * caller must sum the block after the backward. No allocation. */
int clipnn_dist_buckets_begin(clipnn_model *m);
/* clipnn_fused_opts.grads_final: grads[from, n) is final; the buckets
 * inside it are weighted and sent, the ones sent before tested. */
void clipnn_dist_bucket_ready(void *user, size_t from);
/* Sends the buckets not sent yet (all of them on a process that ran no
 * backward: every process takes part in every bucket) and waits for all:
 * the block then holds the sum over the processes. */
void clipnn_dist_buckets_finish(void);

/* Clipping before the average (clipnn_train_options.clip_where; dist/local.c). */
/* Options a clip place cannot keep (INVALID_ARG, one line): local and
 * clip21 outside a job, with a rule other than the Euclidean norm. */
clipnn_status clipnn_dist_check_where(const clipnn_train_options *o);
/* The rule the run's clipper applies to the averaged gradient: o->clip, or
 * with local or clip21 a copy in *unclipped with rule none (its non-finite
 * policy kept). */
const clipnn_clip_options *clipnn_dist_global_clip(const clipnn_train_options *o, clipnn_clip_options *unclipped);
/* Setup of the run's clip place: Clip21's vector of n zeros, allocated
 * here once; close frees it. */
clipnn_status clipnn_dist_open_where(const clipnn_train_options *o, size_t n);
void clipnn_dist_close_where(void);
/* This process's slice gradient g[n] as the clip place sends it: unchanged
 * (global), clipped to norm lambda (local), or Clip21's updated vector. */
void clipnn_dist_clip_slice(float *g, size_t n);
/* 1 when clipnn_dist_clip_slice changes the slice gradient (local, clip21):
 * it needs the whole block before any of it is sent. */
int clipnn_dist_slice_clipped(void);
/* Clip21's vector of this process and its length (*n), or NULL when the
 * run's place is not clip21. */
float *clipnn_dist_feed(size_t *n);

/* Clip21's vectors in a checkpoint's FEED section (dist/clip21_state.c). */
/* Every process's vector gathered into *out on process 0 (NULL on the
 * others, and everywhere when the place is not clip21): every process of
 * the job calls it at the same step. */
clipnn_status clipnn_dist_save_feed(unsigned char **out, size_t *len);
/* FORMAT (one line naming path) unless p[len] holds vectors of n_params floats. */
clipnn_status clipnn_dist_check_feed(const unsigned char *p, size_t len, size_t n_params, const char *path);
/* This process's vector back from a saved payload (NULL: none saved);
 * INVALID_ARG when the saved run and this one differ in the place or in
 * the number of processes. */
clipnn_status clipnn_dist_restore_feed(const unsigned char *p, size_t len, const char *origin);

/* Owner computes (dist/shard.c). The training set's n rows are cut into
 * one contiguous part per process (clipnn_part_bounds); the set given holds
 * rows [first, first + held) of row_bytes each (logged). INVALID_ARG when
 * they do not cover this process's part; allocates the load measurement.
 * close frees it. Outside a job it only checks that the set is whole and
 * keeps no state (trainings may run in several threads at once). */
clipnn_status clipnn_dist_open_shard(size_t n, size_t first, size_t held, size_t row_bytes);
void clipnn_dist_close_shard(void);
/* The rows of global indices idx[len] that this process owns, in order,
 * moved to idx[0 ..] as indices into the set it holds, and their positions
 * in idx into pos (when not NULL): their count. Every index is tallied for
 * the load measurement, which batch_done closes for the step's global
 * batch (it may come in several pieces). */
size_t clipnn_dist_take_owned(size_t *idx, size_t len, size_t *pos);
void clipnn_dist_batch_done(void);
/* In a job: the rows this process owns, as indices [*lo, *hi) into the set it holds. */
void clipnn_dist_owned_rows(size_t *lo, size_t *hi);
/* a[n] summed over the processes, in place (nothing outside a job); step:
 * part of a training step (its time counted in clipnn_dist_reduce_seconds). */
void clipnn_dist_sum_doubles(double *a, size_t n, int step);
void clipnn_dist_sum_f32(float *a, size_t n, int step);
/* part[n - 1] set to this process's failure (s != OK) and part[0 .. n)
 * summed over the processes (counted with the steps' all-reduces); every
 * process calls it, a failed one too. s, or STATE ("failed to compute
 * their <what>") when another process failed. */
clipnn_status clipnn_dist_sum_failures(double *part, size_t n, clipnn_status s, const char *what);
/* clipnn_dist_loss_grad for window w of truncated BPTT: this process's
 * `rows` sequences (their state in w) through clipnn_loss_grad_window, the
 * gradient and loss weighted by rows / B and summed over the processes. */
clipnn_status clipnn_dist_window_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                      size_t rows, size_t B, const clipnn_window *w, const clipnn_fused_opts *f,
                                      double *loss);

/* The relay in rank order (dist/relay.c): receive fills buf[len] with the
 * bytes process r - 1 sent and returns 1 when a process before failed, 0
 * when none did, -1 when nothing was received (process 0, or no job); send passes buf[len]
 * and the flag to process r + 1 (nothing on the last). Every process of
 * the job calls receive and then send, with the same len (< INT_MAX). */
int clipnn_dist_relay_receive(void *buf, size_t len);
void clipnn_dist_relay_send(const void *buf, size_t len, int failed);

#endif
