/* The gradient all-reduce fused (one after the backward) against buckets
 * sent during the backward, in one job: run under mpirun.
 *   overlap DATA ARCH BATCH STEPS REPS MB...
 * DATA a clipnn_dataset_load spec, ARCH the hidden and output widths
 * (e.g. 256-128-10, ReLU hidden layers), MB the bucket sizes in MiB to
 * compare (0: fused). Each repetition trains STEPS steps (SGD with momentum,
 * 1 thread) once per MB, the sizes alternating, from the same initial
 * weights. Process 0 prints, per MB, the medians over the repetitions of
 * the step time, of the communication the backward did not hide (process
 * 0's seconds in the all-reduce calls, the wait for the slower process
 * included) and of the rest (compute), and the median of each
 * repetition's step time over the first MB's (the baseline); with buckets
 * sent during the backward, the share of steps whose early buckets were
 * all summed when the backward ended (the overlap MPI's progress achieved).
 * Before that, on process 0 alone: the backward of one batch timed with
 * the nn's hook, the time from each layer's gradient being final to the
 * end of the backward (what a bucket sent then can overlap). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipnn.h"
#include "base/base.h"
#include "dist/dist.h"
#include "nn/nn.h"

enum { MAX_LAYERS = 16, MAX_MB = 8, MAX_REPS = 64 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[n] (sorted in place). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_arch(const char *text, size_t *widths, clipnn_act *acts) {
    int n = 0;
    for (const char *p = text; *p && n < MAX_LAYERS; n++) {
        char *end;
        widths[n] = strtoul(p, &end, 10);
        if (end == p || !widths[n]) return 0;
        acts[n] = CLIPNN_ACT_RELU;
        p = *end == '-' ? end + 1 : end;
    }
    if (n) acts[n - 1] = CLIPNN_ACT_IDENTITY;
    return n;
}

static struct {
    double t[MAX_LAYERS + 2];
    size_t from[MAX_LAYERS + 2];
    int n;
} marks;

static void mark_final(void *user, size_t from) {
    (void)user;
    if (marks.n < MAX_LAYERS + 2) marks.t[marks.n] = MPI_Wtime(), marks.from[marks.n++] = from;
}

/* The forward and backward of one batch, with the time left in the
 * backward after each tail of the gradient became final (median of 9). */
static void time_backward_tail(clipnn_model *m, const clipnn_dataset *d, size_t batch) {
    clipnn_loss_options lo = clipnn_loss_options_default();
    clipnn_fused_opts f = {0};
    f.grads_final = mark_final;
    double rest[9][MAX_LAYERS + 2], total[9], loss;
    int calls = 0;
    for (int r = 0; r < 9; r++) {
        marks.n = 0;
        double t0 = MPI_Wtime();
        if (clipnn_loss_grad_fused(m, &lo, clipnn_dataset_x(d), clipnn_dataset_y(d), batch, &f, &loss, NULL)) return;
        double t1 = MPI_Wtime();
        total[r] = t1 - t0, calls = marks.n;
        for (int c = 0; c < marks.n; c++) rest[r][c] = t1 - marks.t[c];
    }
    printf("# one batch of %zu rows, 1 process: forward + backward %.3f ms; backward left when the gradient's\n",
           batch, median(total, 9) * 1e3);
    for (int c = 0; c < calls; c++) {
        double col[9];
        for (int r = 0; r < 9; r++) col[r] = rest[r][c];
        printf("#   last %zu floats (%.2f MB) are final: %.3f ms\n", m->n_params - marks.from[c],
               4e-6 * (double)(m->n_params - marks.from[c]), median(col, 9) * 1e3);
    }
}

typedef struct {
    double step[MAX_REPS], comm[MAX_REPS], compute[MAX_REPS], ratio[MAX_REPS];
    int buckets;
    uint64_t early_steps, early_done; /* steps with buckets sent in the backward; all summed at its end */
} mode_times;

/* STEPS steps from the initial weights with buckets of mb MiB: seconds per
 * step and this process's seconds per step in the all-reduces. */
static int run_steps(clipnn_model *m, const clipnn_dataset *d, const char *mb, size_t batch, uint64_t steps,
                     double *step, double *comm) {
    if (clipnn_dist_bucket_from_env(mb)) return 0;
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = batch, o.steps = steps, o.clip.rule = CLIPNN_CLIP_NONE;
    clipnn_train_result res;
    if (clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) return 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double c0 = clipnn_dist_reduce_seconds(), t0 = MPI_Wtime();
    if (clipnn_train(m, d, NULL, &o, &res)) return 0;
    *step = (MPI_Wtime() - t0) / (double)steps, *comm = (clipnn_dist_reduce_seconds() - c0) / (double)steps;
    return 1;
}

static void report(const char *mb, mode_times *t, int reps) {
    double step = median(t->step, reps), comm = median(t->comm, reps), compute = median(t->compute, reps);
    printf("%8s %8d %10.3f %12.3f %12.3f %10.3f", mb, t->buckets, step * 1e3, compute * 1e3, comm * 1e3,
           median(t->ratio, reps));
    if (t->early_steps) printf(" %9.1f%%", 100.0 * (double)t->early_done / (double)t->early_steps);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: overlap DATA ARCH BATCH STEPS REPS MB...\n");
        return 2;
    }
    if (clipnn_dist_init(&argc, &argv)) return 3;
    size_t widths[MAX_LAYERS], batch = strtoul(argv[3], NULL, 10);
    clipnn_act acts[MAX_LAYERS];
    int layers = parse_arch(argv[2], widths, acts), reps = atoi(argv[5]), modes = argc - 6;
    uint64_t steps = strtoull(argv[4], NULL, 10);
    clipnn_dataset *d = NULL;
    clipnn_model *m = NULL;
    clipnn_set_threads(1);
    if (!layers || !batch || !steps || reps < 1 || reps > MAX_REPS || modes > MAX_MB ||
        clipnn_dataset_load(argv[1], NULL, &d, NULL) ||
        clipnn_model_create(&m, clipnn_dataset_dim(d), (size_t)layers, widths, acts) ||
        clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) {
        fprintf(stderr, "overlap: %s\n", clipnn_last_error());
        clipnn_dist_abort(3, "overlap: setup failed");
        return 3;
    }
    int rank = clipnn_dist_rank();
    if (rank == 0) {
        printf("# %s %s, batch %zu, %d processes, %zu parameters (%.2f MB)\n", argv[1], argv[2], batch,
               clipnn_dist_size(), clipnn_model_n_params(m), 4e-6 * (double)clipnn_model_n_params(m));
        time_backward_tail(m, d, batch);
    }
    static mode_times t[MAX_MB];
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < modes; k++) {
            double comm;
            uint64_t s0, d0, s1, d1;
            clipnn_dist_bucket_overlap(&s0, &d0);
            if (!run_steps(m, d, argv[6 + k], batch, steps, &t[k].step[r], &comm)) {
                clipnn_dist_abort(4, clipnn_last_error());
                return 4;
            }
            t[k].comm[r] = comm, t[k].compute[r] = t[k].step[r] - comm, t[k].buckets = clipnn_dist_last_buckets();
            t[k].ratio[r] = t[k].step[r] / t[0].step[r];
            clipnn_dist_bucket_overlap(&s1, &d1);
            t[k].early_steps += s1 - s0, t[k].early_done += d1 - d0;
        }
    if (rank == 0) {
        printf("# medians of %d repetitions of %llu steps, process 0\n", reps, (unsigned long long)steps);
        printf("%8s %8s %10s %12s %12s %10s %10s\n", "MiB", "buckets", "step ms", "compute ms", "comm ms",
               "step/first", "overlapped");
        for (int k = 0; k < modes; k++) report(argv[6 + k], &t[k], reps);
    }
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    clipnn_dist_finalize();
    return 0;
}
