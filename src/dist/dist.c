/* Data-parallel training over MPI (the MPI calls only with CLIPNN_MPI). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

#ifdef CLIPNN_MPI
#include <mpi.h>
#endif

static struct {
    int active, rank, size, we_initialised;
    size_t rows, batch; /* the current step: this process's rows of a global batch */
    double reducing;    /* seconds in the all-reduces of the steps */
} job = {0, 0, 1, 0, 0, 0, 0};

double clipnn_dist_reduce_seconds(void) { return job.reducing + clipnn_dist_bucket_seconds(); }

int clipnn_dist_available(void) {
#ifdef CLIPNN_MPI
    return 1;
#else
    return 0;
#endif
}

int clipnn_dist_active(void) { return job.active; }
int clipnn_dist_rank(void) { return job.rank; }
int clipnn_dist_size(void) { return job.size; }

clipnn_status clipnn_dist_init(int *argc, char ***argv) {
#ifdef CLIPNN_MPI
    if (job.active) return CLIPNN_OK;
    clipnn_status s = clipnn_dist_bucket_from_env(getenv("CLIPNN_ALLREDUCE_BUCKET_MB"));
    if (s) return s;
    int ready = 0, threads = MPI_THREAD_SINGLE;
    MPI_Initialized(&ready);
    if (!ready) {
        /* Funneled: the buckets are sent by the backward's first thread (the
         * main one) while the others compute. */
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &threads) != MPI_SUCCESS)
            return clipnn_fail(CLIPNN_ERR_IO, "dist: MPI_Init failed");
        job.we_initialised = 1;
    } else {
        MPI_Query_thread(&threads);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &job.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &job.size);
    clipnn_dist_bucket_agree(threads >= MPI_THREAD_FUNNELED);
    job.active = 1;
#else
    (void)argc, (void)argv;
#endif
    return CLIPNN_OK;
}

void clipnn_dist_finalize(void) {
#ifdef CLIPNN_MPI
    if (job.active && job.we_initialised) MPI_Finalize();
#endif
    job.active = 0, job.rank = 0, job.size = 1;
}

void clipnn_dist_abort(int code, const char *why) {
#ifdef CLIPNN_MPI
    if (!job.active) return;
    fprintf(stderr, "clipnn: process %d of %d: %s; ending the whole job (exit %d)\n", job.rank, job.size,
            why ? why : "failed", code);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
#else
    (void)code, (void)why;
#endif
}

size_t clipnn_dist_rows(void) { return job.rows; }
size_t clipnn_dist_batch(void) { return job.batch; }

void clipnn_dist_weigh_slice(float *g, size_t n) {
    if (job.rows && job.rows != job.batch) {
        float w = (float)((double)job.rows / (double)job.batch);
        for (size_t j = 0; j < n; j++) g[j] *= w;
    } else if (!job.rows) {
        memset(g, 0, n * sizeof *g);
    }
}

void clipnn_dist_sum_slices(float *g, size_t n) {
    clipnn_dist_weigh_slice(g, n);
    clipnn_dist_sum_f32(g, n, 1);
}

clipnn_status clipnn_dist_sum_failures(double *part, size_t n, clipnn_status s, const char *what) {
    part[n - 1] = s != CLIPNN_OK;
    clipnn_dist_sum_doubles(part, n, 1);
    if (part[n - 1] > 0 && !s)
        s = clipnn_fail(CLIPNN_ERR_STATE, "train: %g of %d processes failed to compute their %s", part[n - 1],
                        job.size, what);
    return s;
}

/* This process's rows through the fused gradient (w NULL; its buckets sent
 * during the backward) or window w of truncated BPTT, then the weighted
 * sum over the processes that clipnn_dist_loss_grad describes. */
static clipnn_status slice_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                size_t rows, size_t B, const clipnn_window *w, const clipnn_fused_opts *f,
                                double *loss) {
    double part[2] = {0, 0}; /* the slice's share of the mean loss; a failure */
    clipnn_status s = CLIPNN_OK;
    job.rows = rows, job.batch = B;
    int bucketed = !w && clipnn_dist_buckets_begin(m);
    if (rows) {
        clipnn_fused_opts hooked = f ? *f : (clipnn_fused_opts){0};
        if (bucketed) hooked.grads_final = clipnn_dist_bucket_ready;
        s = w ? clipnn_loss_grad_window(m, lo, x, y, rows, w, f, &part[0])
              : clipnn_loss_grad_fused(m, lo, x, y, rows, &hooked, &part[0], NULL);
        part[0] *= (double)rows / (double)B;
        if (!s) clipnn_dist_clip_slice(m->grads, m->n_params);
    }
    /* Every process takes part in every bucket, a failed one too, before
     * the reduction below (collectives match in order), and every process
     * reaches that reduction: the others learn of a failure there instead
     * of waiting for it. */
    if (bucketed) clipnn_dist_buckets_finish();
    s = clipnn_dist_sum_failures(part, 2, s, w ? "sequences' gradient" : "slice's gradient");
    if (!s && !bucketed) clipnn_dist_sum_slices(m->grads, m->n_params);
    *loss = part[0];
    return s;
}

clipnn_status clipnn_dist_loss_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                    size_t rows, size_t B, const clipnn_fused_opts *f, double *loss) {
    return slice_grad(m, lo, x, y, rows, B, NULL, f, loss);
}

clipnn_status clipnn_dist_window_grad(clipnn_model *m, const clipnn_loss_options *lo, const float *x, const float *y,
                                      size_t rows, size_t B, const clipnn_window *w, const clipnn_fused_opts *f,
                                      double *loss) {
    return slice_grad(m, lo, x, y, rows, B, w, f, loss);
}

clipnn_status clipnn_dist_check_same(const float *v, size_t n) {
    if (!job.active) return CLIPNN_OK;
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the bits */
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof *v; i++) h = (h ^ b[i]) * 1099511628211ull;
    uint64_t lo = h, hi = h;
#ifdef CLIPNN_MPI
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
#endif
    if (lo != hi)
        return clipnn_fail(CLIPNN_ERR_STATE, "train: the processes' parameters differ after the run (the all-reduce "
                           "did not give every process the same sum)");
    return CLIPNN_OK;
}

int clipnn_dist_agree(int bits) {
#ifdef CLIPNN_MPI
    if (job.active) MPI_Allreduce(MPI_IN_PLACE, &bits, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
#endif
    return bits;
}

void clipnn_dist_sum_u64(uint64_t *a, int n) {
#ifdef CLIPNN_MPI
    if (job.active) MPI_Allreduce(MPI_IN_PLACE, a, n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)a, (void)n;
#endif
}

void clipnn_dist_count_reduce(double seconds) { job.reducing += seconds; }
