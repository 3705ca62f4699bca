/* The gradient all-reduce in buckets overlapping the backward: as the
 * backward finishes a dense layer's W and b (top layer first; the gradient
 * block is contiguous, so what is final is always a tail grads[from, n)),
 * the tail's unsent part goes into a non-blocking all-reduce once it holds
 * at least the bucket size, and the backward goes on with the layers below.
 * Each bucket is weighted by rows / B as the fused path weights the whole
 * block, and summed by the same MPI_SUM per element. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "dist/dist.h"

#ifdef CLIPNN_MPI
#include <mpi.h>
#endif

/* Buckets (pieces of at most INT_MAX floats) of one step; a model that
 * would need more runs the fused all-reduce. */
#define MAX_REQUESTS 64

static struct {
    double cap_mb;  /* the bucket size in MiB; 0: one fused all-reduce after the backward */
    int funneled;   /* the backward's first thread may call MPI inside a parallel region */
    float *g;       /* the step's gradient block [n] */
    size_t n;
    size_t lower[MAX_REQUESTS]; /* bucket b is g[lower[b], b ? lower[b - 1] : n): sent in this order */
    int buckets, posted, requests;
    int last_buckets; /* the last step's buckets, 0: it ran the fused all-reduce */
    double seconds; /* in the buckets' MPI calls: the communication the backward did not hide */
    uint64_t early_steps, early_done; /* steps with buckets sent during the backward; those done at its end */
#ifdef CLIPNN_MPI
    MPI_Request req[MAX_REQUESTS];
    /* filled, never read: MPICH's MPI_STATUSES_IGNORE, (MPI_Status *)1,
     * fails GCC's check of the array MPICH's header says is written */
    MPI_Status statuses[MAX_REQUESTS];
#endif
} bk = {.cap_mb = CLIPNN_DIST_BUCKET_MB};

clipnn_status clipnn_dist_bucket_parse(const char *text, double *mb) {
    char *end;
    double v = text ? strtod(text, &end) : NAN;
    if (!text || end == text || *end || !(v >= 0) || !(v <= 1e6))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "CLIPNN_ALLREDUCE_BUCKET_MB='%s': want a size in MiB from 0 (one "
                           "all-reduce after the backward) to 1e6", text ? text : "(null)");
    *mb = v;
    return CLIPNN_OK;
}

clipnn_status clipnn_dist_bucket_from_env(const char *text) {
    return text ? clipnn_dist_bucket_parse(text, &bk.cap_mb) : CLIPNN_OK;
}

void clipnn_dist_bucket_agree(int funneled) {
    bk.funneled = funneled;
#ifdef CLIPNN_MPI
    MPI_Bcast(&bk.cap_mb, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD); /* every process must cut the same buckets */
#endif
}

double clipnn_dist_bucket_mb(void) { return bk.cap_mb; }
double clipnn_dist_bucket_seconds(void) { return bk.seconds; }

void clipnn_dist_bucket_overlap(uint64_t *steps, uint64_t *done) { *steps = bk.early_steps, *done = bk.early_done; }

/* The step's buckets from the model's layout alone (the same on every
 * process, whichever rows it has): from the top, a dense layer's start
 * closes a bucket once it holds cap floats; the rest down to 0 is the last.
 * 0 when the buckets would need more than MAX_REQUESTS requests. */
static int plan(const clipnn_model *m, size_t cap) {
    size_t upper = m->n_params;
    int pieces = 0;
    bk.buckets = 0;
    for (size_t l = m->n_layers + 1; l-- > 0;) {
        size_t from = l ? m->layers[l - 1].w_offset : 0;
        if (upper == 0 || (from > 0 && upper - from < cap)) continue;
        pieces += (int)((upper - from + INT_MAX - 1) / INT_MAX);
        if (pieces > MAX_REQUESTS) return 0;
        bk.lower[bk.buckets++] = from;
        upper = from;
    }
    return bk.buckets;
}

int clipnn_dist_last_buckets(void) { return bk.last_buckets; }

int clipnn_dist_buckets_begin(clipnn_model *m) {
    if (!clipnn_dist_active()) return 0; /* trainings outside a job may run in several threads: touch nothing */
    bk.last_buckets = 0;
    if (!(bk.cap_mb > 0) || !bk.funneled || clipnn_dist_slice_clipped()) return 0;
    double cap = ceil(bk.cap_mb * 1048576.0 / sizeof(float));
    if (!plan(m, cap < (double)SIZE_MAX ? (size_t)cap : SIZE_MAX)) return 0;
    bk.g = m->grads, bk.n = m->n_params, bk.posted = 0, bk.requests = 0;
    bk.last_buckets = bk.buckets;
    return 1;
}

#ifdef CLIPNN_MPI
/* Bucket b weighted and summed in place: by MPI_Iallreduce while the
 * backward goes on, or (wait) by the blocking MPI_Allreduce, the fused
 * path's, for the last bucket, which has nothing left to hide behind (and
 * the blocking algorithms are the faster on large blocks). */
static void post(int b, int wait) {
    size_t lo = bk.lower[b], n = (b ? bk.lower[b - 1] : bk.n) - lo;
    clipnn_dist_weigh_slice(bk.g + lo, n);
    double t0 = clipnn_now_seconds();
    for (float *v = bk.g + lo; n > 0;) {
        int piece = n > INT_MAX ? INT_MAX : (int)n;
        if (wait) MPI_Allreduce(MPI_IN_PLACE, v, piece, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else MPI_Iallreduce(MPI_IN_PLACE, v, piece, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &bk.req[bk.requests++]);
        v += piece, n -= (size_t)piece;
    }
    bk.seconds += clipnn_now_seconds() - t0;
}
#endif

void clipnn_dist_bucket_ready(void *user, size_t from) {
    (void)user;
#ifdef CLIPNN_MPI
    while (bk.posted < bk.buckets - 1 && bk.lower[bk.posted] >= from) post(bk.posted++, 0);
    /* MPI moves a non-blocking collective on only inside MPI calls: one
     * between layers lets the buckets already sent progress (at the end,
     * from 0, the caller's clipnn_dist_buckets_finish follows). */
    double t0 = clipnn_now_seconds();
    int done;
    if (bk.requests && from > 0) MPI_Testall(bk.requests, bk.req, &done, bk.statuses);
    bk.seconds += clipnn_now_seconds() - t0;
#else
    (void)from;
#endif
}

void clipnn_dist_buckets_finish(void) {
#ifdef CLIPNN_MPI
    double t0 = clipnn_now_seconds();
    if (bk.requests) { /* the overlap achieved: the buckets sent during the backward already summed? */
        int done;
        MPI_Testall(bk.requests, bk.req, &done, bk.statuses);
        bk.early_steps++, bk.early_done += done != 0;
    }
    bk.seconds += clipnn_now_seconds() - t0;
    /* A process without a backward sends every bucket here. */
    while (bk.posted < bk.buckets - 1) post(bk.posted++, 0);
    if (bk.posted < bk.buckets) post(bk.posted++, 1);
    t0 = clipnn_now_seconds();
    MPI_Waitall(bk.requests, bk.req, bk.statuses);
    bk.seconds += clipnn_now_seconds() - t0;
#endif
    bk.g = NULL, bk.requests = 0;
}
