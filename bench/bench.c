/* bench_clipnn: the clipnn side of `make bench` (bench/run.sh).
 *
 *   bench_clipnn sgemm  [--threads T] [--n 512] [--reps R]
 *       cblas_sgemm n x n x n GFLOP/s (median), the yardstick of the table.
 *   bench_clipnn grid   --arch 784-256-128-10 --batch B [--clips none,norm,...]
 *                       [--threads T] [--reps R] [--rep-seconds S]
 *       Training throughput through clipnn_train (the path the CLI takes):
 *       tanh hidden layers, softmax cross-entropy, plain SGD, minibatches
 *       drawn with replacement from 4096 synthetic examples. The rules are
 *       interleaved within each repetition so that a noisy machine hits
 *       all of them alike; each rule trains its own copy of the model.
 *       RULE@tool trains with the callbacks `clipnn train` always installs
 *       (per-step record, epoch record, control), doing nothing, and the
 *       record's distance from theta(0) at the epochs' ends, as the tool
 *       takes it: the tool's step, whose overhead is against RULE without
 *       them. RULE@log: the same with the distance at every step, as
 *       `clipnn train --log` (or --report) takes it.
 *   bench_clipnn naive  --arch ... --batch B [--threads T] [--reps R]
 *       Per-sample (DP-SGD) clipping: the per-example norm trick against
 *       the naive computation (one backward per example, each clipped and
 *       summed), with the largest difference between the two updates.
 *   bench_clipnn recdp  --cell lstm --hidden 64 --seq-steps 28 --step-dim 28
 *                       --batch B [--every-step 1] [--threads T] [--reps R]
 *       Per-sample clipping of a recurrent model (one recurrent layer, a
 *       dense layer of 10 outputs): a step (loss and gradient, clipping,
 *       SGD) with per-sample clipping (C small enough to clip every
 *       example; noise 1, and none) against one with norm clipping,
 *       interleaved; the loss and gradient alone (what a second forward and
 *       backpropagation through time would add); the naive computation;
 *       the largest difference between the per-sample and the naive
 *       gradients.
 *   bench_clipnn kernels [--elements 65536] [--reps R]
 *       The element-wise kernels outside BLAS on n floats, one thread: ns
 *       per element, the fastest repetition; what a build's compiler flags
 *       change (bench/builds.sh compares build trees).
 *   bench_clipnn update --arch ... [--threads T] [--reps R]
 *       The fused step's update alone (plain SGD, every weight gradient
 *       stored) without sums, with theta's unit sums of squares (the
 *       adaptive rules), and with those and the distance from theta(0)
 *       (the step record): us per update, the fastest repetition (on one
 *       thread its CPU time, which another process's turn on the core
 *       does not count).
 *   bench_clipnn shapes --arch ... --batch B [--threads T] [--reps R]
 *       The training step's own GEMMs alone at their exact shapes (every
 *       layer's forward, weight gradient and, but for the first layer,
 *       input gradient): GFLOP/s as the step runs them (T threads, each a
 *       single-threaded BLAS call on its slice, a barrier between calls),
 *       on one thread at the whole shape, and in one call with BLAS's own
 *       T threads at the whole shape; a row per GEMM and one for all (the step's flops
 *       over the sum of the GEMMs' times): what sgemm reaches at these
 *       shapes, the bound of the step's GFLOP/s. Also, interleaved: the
 *       step (clipnn_train, no clipping), the step with whole slices (no
 *       tiles: --direct-macs 0 for every GEMM) and sgemm 512^3 on one
 *       thread. The "shapes" row: arch, batch, threads; GFLOP/s of the
 *       step, of the step with whole slices, of sgemm 512^3, of the GEMMs
 *       split as the step, on one thread times T, on BLAS's threads; all
 *       but sgemm's against T x sgemm; the step against the three; the
 *       tile limit (multiply-adds; 0: no tiles with this BLAS and CPU).
 *   bench_clipnn pgd    --arch ... [--method pgd-linf|apgd-ce|apgd-dlr] [--batch 256] [--steps 40] [--n 2560]
 *                       [--threads T] [--reps R]
 *       PGD-Linf, APGD-CE or APGD-DLR (eps 0.1, no random start) through
 *       clipnn_attack on n synthetic inputs of a ReLU MLP, labelled with the
 *       model's predictions so that the attack works on every example (as
 *       the PyTorch loop does): seconds (median), GFLOP/s (2 x
 *       the multiply-adds of the forward and of every layer's input
 *       gradient, steps + 1 times per example), and a training step's
 *       GFLOP/s at the same batch (clipnn_train, no clipping) for the
 *       ratio.
 *   bench_clipnn inputopt --arch ... [--steps S] [--threads T] [--reps R]
 *       Input optimization (clipnn_optimize_input: one input towards class
 *       1, cross-entropy, sign steps of 0.01, S steps without stopping) on
 *       a ReLU MLP: seconds (median), GFLOP/s as for pgd, and a training
 *       step's GFLOP/s at batch 1.
 *   bench_clipnn rec    --cell lstm --hidden 64 --seq-steps 50 --step-dim 32
 *                       --batch B [--threads T] [--reps R] [--rep-seconds S]
 *       Training throughput of a recurrent classifier through clipnn_train:
 *       one recurrent layer, the loss on the last step through a dense
 *       layer of 10 outputs (softmax cross-entropy), global norm clipping
 *       at 1, plain SGD (lr 0.01), minibatches drawn with replacement from
 *       1024 synthetic sequences. Also the spread of the repetitions
 *       ((max - min) / median), how noisy the machine was.
 *
 * Output: tab-separated lines starting with the mode, read by run.sh. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clipnn.h"
#include "nn/nn.h"       /* private: the library's clock, the backward with and without its unit norms, the kernels */
#include "train/train.h" /* private: the fused step's update, with and without its sums */

#define MAX_LAYERS 8
#define MAX_CLIPS 12
#define MAX_REPS 64
#define N_EXAMPLES 4096

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[n] (v is reordered). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what) {
    fprintf(stderr, "bench_clipnn: %s: %s\n", what, clipnn_last_error());
    exit(1);
}

static void usage(const char *msg) {
    fprintf(stderr, "bench_clipnn: %s\nusage: bench_clipnn sgemm|grid|shapes|naive|recdp|rec|kernels|update|pgd "
                    "[options] (see bench/bench.c)\n",
            msg);
    exit(2);
}

typedef struct {
    int threads, reps;
    size_t n, batch, elements;
    double rep_seconds;
    size_t widths[MAX_LAYERS];
    size_t n_layers, n_inputs;
    clipnn_clip_rule clips[MAX_CLIPS];
    int tool[MAX_CLIPS]; /* the rule trained with the tool's callbacks: TOOL_* */
    int n_clips;
    const char *arch;
    clipnn_layer_kind cell; /* recdp */
    size_t hidden, seq_steps, step_dim;
    int every_step;
    size_t steps; /* pgd */
    clipnn_attack_method method;
} bench_args;

static void parse_arch(bench_args *a, const char *text) {
    char *copy = strdup(text), *save = NULL;
    size_t count = 0, v[MAX_LAYERS + 1];
    for (char *tok = strtok_r(copy, "-", &save); tok; tok = strtok_r(NULL, "-", &save)) {
        if (count == MAX_LAYERS + 1) usage("--arch: too many layers");
        v[count++] = (size_t)strtoul(tok, NULL, 10);
    }
    free(copy);
    if (count < 2) usage("--arch wants INPUTS-W1-...-OUT");
    a->n_inputs = v[0];
    a->n_layers = count - 1;
    for (size_t i = 1; i < count; i++) a->widths[i - 1] = v[i];
    a->arch = text;
}

/* A grid entry's callbacks: none, those of `clipnn train` ("RULE@tool": the
 * distance from theta(0) at the epochs' ends), or of `clipnn train --log`
 * ("RULE@log": at every step). */
enum { TOOL_NONE = 0, TOOL_DEFAULT, TOOL_LOG };
static const char *const tool_suffix[] = {"", "@tool", "@log"};

static void parse_clips(bench_args *a, const char *text) {
    char *copy = strdup(text), *save = NULL;
    a->n_clips = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (a->n_clips == MAX_CLIPS) usage("--clips: too many");
        char *at = strchr(tok, '@');
        a->tool[a->n_clips] = TOOL_NONE;
        for (int k = TOOL_DEFAULT; at && k <= TOOL_LOG; k++)
            if (!strcmp(at, tool_suffix[k])) a->tool[a->n_clips] = k;
        if (at && !a->tool[a->n_clips]) usage("--clips: RULE, RULE@tool or RULE@log");
        if (at) *at = 0;
        if (clipnn_clip_rule_parse(tok, &a->clips[a->n_clips++])) die("--clips");
    }
    free(copy);
}

static bench_args parse_args(int argc, char **argv) {
    bench_args a = {.threads = 2, .reps = 7, .n = 512, .batch = 32, .elements = 65536, .rep_seconds = 0.1,
                    .steps = 40, .method = CLIPNN_ATTACK_PGD_LINF,
                    .cell = CLIPNN_LAYER_LSTM, .hidden = 64, .seq_steps = 28, .step_dim = 28};
    parse_arch(&a, "784-256-128-10");
    parse_clips(&a, "none,norm,adaptive-layer,agc,per-sample,norm@tool,norm@log");
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage("option without a value");
        if (!strcmp(k, "--threads")) a.threads = atoi(v);
        else if (!strcmp(k, "--reps")) a.reps = atoi(v);
        else if (!strcmp(k, "--n")) a.n = (size_t)atol(v);
        else if (!strcmp(k, "--batch")) a.batch = (size_t)atol(v);
        else if (!strcmp(k, "--elements")) a.elements = (size_t)atol(v);
        else if (!strcmp(k, "--rep-seconds")) a.rep_seconds = atof(v);
        else if (!strcmp(k, "--arch")) parse_arch(&a, v);
        else if (!strcmp(k, "--clips")) parse_clips(&a, v);
        else if (!strcmp(k, "--cell")) {
            if (clipnn_layer_kind_parse(v, &a.cell) || a.cell == CLIPNN_LAYER_DENSE)
                usage("--cell: rnn, rnn-relu, lstm, gru");
        } else if (!strcmp(k, "--hidden")) a.hidden = (size_t)atol(v);
        else if (!strcmp(k, "--seq-steps")) a.seq_steps = (size_t)atol(v);
        else if (!strcmp(k, "--step-dim")) a.step_dim = (size_t)atol(v);
        else if (!strcmp(k, "--every-step")) a.every_step = atoi(v) != 0;
        else if (!strcmp(k, "--steps")) a.steps = (size_t)atol(v);
        else if (!strcmp(k, "--direct-macs")) clipnn_gemm_direct_macs = (size_t)atol(v);
        else if (!strcmp(k, "--method")) {
            if (clipnn_attack_method_parse(v, &a.method)) die("--method");
        }
        else usage("unknown option");
        i++;
    }
    if (a.reps < 1 || a.reps > MAX_REPS) usage("--reps must be 1..64");
    if (a.threads < 1) usage("--threads must be >= 1");
    if (a.elements < 1) usage("--elements must be >= 1");
    return a;
}

/* ------------------------------------------------------------- sgemm */

/* OpenBLAS's own threads for the sgemm yardstick (clipnn_set_threads keeps
 * BLAS on one thread per slice); absent with other BLAS. */
extern void openblas_set_num_threads(int) __attribute__((weak));

static void bench_sgemm(const bench_args *a) {
    clipnn_set_threads(a->threads);
    if (openblas_set_num_threads) openblas_set_num_threads(a->threads);
    size_t n = a->n;
    float *A = malloc(n * n * sizeof *A), *B = malloc(n * n * sizeof *B), *C = malloc(n * n * sizeof *C);
    if (!A || !B || !C) usage("out of memory");
    for (size_t i = 0; i < n * n; i++) {
        A[i] = (float)((i * 7 % 13) - 6) * 0.1f;
        B[i] = (float)((i * 5 % 11) - 5) * 0.1f;
        C[i] = 0;
    }
    const double flops = 2.0 * (double)n * (double)n * (double)n;
    int inner = (int)ceil(0.05 / (flops / 50e9)); /* ~50 ms per repetition */
    double rate[MAX_REPS];
    for (int r = -1; r < a->reps; r++) {
        double t0 = clipnn_now_seconds();
        for (int k = 0; k < inner; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, A, (int)n, B,
                        (int)n, 0.0f, C, (int)n);
        double dt = clipnn_now_seconds() - t0;
        if (r >= 0) rate[r] = flops * inner / dt / 1e9;
    }
    printf("sgemm\t%zu\t%d\t%.2f\t%s\n", n, a->threads, median(rate, a->reps), clipnn_blas_name());
    free(A), free(B), free(C);
}

/* ----------------------------------------------------------- kernels */

typedef struct {
    float *x, *y, *zero, *d, *g, *p;
    size_t n;
    clipnn_optimizer *opt;
    volatile double sink; /* keeps the norms from being optimized away */
} kernel_data;

static const char *const kernel_names[] = {"tanh forward", "relu forward",   "tanh backward", "sgd momentum",
                                           "sum of squares", "2-norm", "scale"};
#define N_KERNELS (sizeof kernel_names / sizeof *kernel_names)

/* One call of kernel k. Values stay put from call to call (the backward
 * multiplies by 1 - 0^2, the scale alternates 2 and 1/2): no drift into
 * subnormals, which would time the FPU's slow path instead. */
static void run_kernel(size_t k, kernel_data *kd, int call) {
    size_t n = kd->n;
    switch (k) {
    case 0: clipnn_act_forward(CLIPNN_ACT_TANH, kd->y, kd->x, n); break;
    case 1: clipnn_act_forward(CLIPNN_ACT_RELU, kd->y, kd->x, n); break;
    case 2: clipnn_act_backward(CLIPNN_ACT_TANH, kd->d, kd->x, kd->zero, n); break;
    case 3:
        if (clipnn_optimizer_step(kd->opt, kd->p, kd->g, 1e-9, 1.0)) die("optimizer");
        break;
    case 4: kd->sink += clipnn_sumsq_blocked(kd->x, n); break;
    case 5: kd->sink += clipnn_norm_accumulate(kd->x, n, 2.0); break;
    default: clipnn_scale(kd->d, n, call % 2 ? 0.5f : 2.0f); break;
    }
}

static void bench_kernels(const bench_args *a) {
    clipnn_set_threads(1);
    kernel_data kd = {.n = a->elements};
    float **arrays[] = {&kd.x, &kd.y, &kd.zero, &kd.d, &kd.g, &kd.p};
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++)
        if (!(*arrays[i] = calloc(kd.n, sizeof(float)))) usage("out of memory");
    for (size_t i = 0; i < kd.n; i++) {
        kd.x[i] = (float)((double)(i * 7919 % 2000) - 1000.0) / 300.0f; /* [-3.3, 3.3]: both tanh ranges */
        kd.d[i] = 1e-3f * (float)(i % 13 + 1);
        kd.g[i] = 1e-3f * (float)(i % 17);
        kd.p[i] = 1e-2f * (float)(i % 11);
    }
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.momentum = 0.9;
    if (clipnn_optimizer_create(&kd.opt, kd.n, &oo)) die("optimizer");
    int inner = (int)ceil(2e6 / (double)kd.n); /* ~2M elements, about a millisecond */
    for (size_t k = 0; k < N_KERNELS; k++) {
        double best = INFINITY;
        for (int r = -1; r < a->reps; r++) {
            double t0 = clipnn_now_seconds();
            for (int c = 0; c < inner; c++) run_kernel(k, &kd, c);
            double t = (clipnn_now_seconds() - t0) / inner;
            if (r >= 0 && t < best) best = t;
        }
        printf("kernel\t%s\t%zu\t%.4f\n", kernel_names[k], kd.n, best * 1e9 / (double)kd.n);
    }
    clipnn_optimizer_free(kd.opt);
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) free(*arrays[i]);
}

/* ------------------------------------------------------ model and data */

static clipnn_model *make_model(const bench_args *a) {
    clipnn_act acts[MAX_LAYERS];
    for (size_t l = 0; l < a->n_layers; l++) acts[l] = l + 1 < a->n_layers ? CLIPNN_ACT_TANH : CLIPNN_ACT_IDENTITY;
    clipnn_model *m;
    if (clipnn_model_create(&m, a->n_inputs, a->n_layers, a->widths, acts)) die("model");
    if (clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) die("init");
    return m;
}

/* n examples of d inputs uniform in [0, 1) (pixel-like), k classes from a
 * fixed linear rule of the inputs so that there is something to learn. */
static clipnn_dataset *make_examples(size_t n, size_t d, size_t k) {
    float *x = malloc(n * d * sizeof *x), *y = malloc(n * sizeof *y);
    if (!x || !y) usage("out of memory");
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (size_t j = 0; j < d; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            x[i * d + j] = (float)((double)(s >> 11) / 9007199254740992.0);
            acc += x[i * d + j] * ((double)(j * 31 % 17) - 8.0); /* signed, as torch_bench.py */
        }
        y[i] = (float)((uint64_t)fabs(acc * 7.0) % k);
    }
    clipnn_dataset *ds;
    if (clipnn_dataset_from_arrays(x, y, n, d, k, 1, &ds)) die("data");
    free(x), free(y);
    return ds;
}

static clipnn_dataset *make_data(const bench_args *a) {
    return make_examples(N_EXAMPLES, a->n_inputs, a->widths[a->n_layers - 1]);
}

/* Multiply-adds x 2 of one training step, as both frameworks do them:
 * forward, weight gradient, and the input gradient of every layer but the
 * first (the data need none). */
static double step_flops(const bench_args *a) {
    double f = 0;
    size_t in = a->n_inputs;
    for (size_t l = 0; l < a->n_layers; l++) {
        double mk = (double)in * (double)a->widths[l];
        f += 2.0 * (double)a->batch * mk * (l == 0 ? 2.0 : 3.0);
        in = a->widths[l];
    }
    return f;
}

/* The thresholds of the table: each rule active on a good part of the
 * steps of this synthetic problem (the clipped fraction is printed). */
static clipnn_clip_options clip_for(clipnn_clip_rule rule) {
    clipnn_clip_options c = clipnn_clip_options_default();
    c.rule = rule;
    switch (rule) {
    case CLIPNN_CLIP_ADAPTIVE_LAYER: c.lambda = 0.01; break;
    case CLIPNN_CLIP_AGC: c.lambda = 0.01; break;
    case CLIPNN_CLIP_PER_SAMPLE: c.lambda = 1.0; break;
    default: c.lambda = 1.0; break;
    }
    return c;
}

/* The callbacks `clipnn train` always installs (its per-step log, progress
 * and stop request), here doing nothing with what they are given: what
 * the tool's step costs the library. */
static void tool_on_step(const clipnn_step_record *r, void *user) {
    if (!isnan(r->dist_from_start)) *(double *)user += r->dist_from_start;
}
static void tool_on_epoch(const clipnn_epoch_record *r, void *user) { *(double *)user += r->train_loss; }
static int tool_control(void *user) { return *(double *)user < 0; }
static double tool_sink;

static clipnn_train_options train_options(const bench_args *a, clipnn_clip_rule rule, uint64_t steps) {
    clipnn_train_options o = clipnn_train_options_default();
    o.optim = clipnn_optim_options_default(); /* plain SGD, as torch_bench.py's grid */
    o.schedule.kind = CLIPNN_SCHED_CONST;
    o.schedule.a0 = 0.01;
    o.clip = clip_for(rule);
    o.loss.loss = CLIPNN_LOSS_XENT;
    o.batch = a->batch;
    o.steps = steps;
    o.replacement = 1;
    return o;
}

/* Entry c of the grid's rules: the tool's callbacks when it asks for them. */
static clipnn_train_options grid_options(const bench_args *a, int c, uint64_t steps) {
    clipnn_train_options o = train_options(a, a->clips[c], steps);
    if (a->tool[c]) {
        o.on_step = tool_on_step;
        o.on_epoch = tool_on_epoch;
        o.control = tool_control;
        o.user = &tool_sink;
        o.record_params = a->tool[c] == TOOL_LOG ? CLIPNN_RECORD_EVERY_STEP : CLIPNN_RECORD_EPOCH_ENDS;
    }
    return o;
}

/* A tool entry's yardstick: the same rule without the callbacks (or the
 * first rule). */
static int grid_base(const bench_args *a, int c) {
    for (int k = 0; a->tool[c] && k < a->n_clips; k++)
        if (!a->tool[k] && a->clips[k] == a->clips[c]) return k;
    return 0;
}

static const char *grid_name(const bench_args *a, int c, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s", clipnn_clip_rule_name(a->clips[c]), tool_suffix[a->tool[c]]);
    return buf;
}

/* ------------------------------------------------------------- grid */

static void bench_grid(const bench_args *a) {
    clipnn_set_threads(a->threads);
    clipnn_dataset *ds = make_data(a);
    clipnn_model *models[MAX_CLIPS];
    for (int c = 0; c < a->n_clips; c++) models[c] = make_model(a);
    clipnn_train_result res;

    /* Calibration (also the warm-up): steps per repetition so that one
     * takes about rep_seconds. */
    uint64_t steps = 2;
    for (;;) {
        clipnn_train_options o = train_options(a, a->clips[0], steps);
        if (clipnn_train(models[0], ds, NULL, &o, &res)) die("train");
        if (res.seconds >= 0.02 || steps >= 100000) break;
        steps *= 2;
    }
    /* The fastest of three runs of that length: a busy machine only
     * ever slows a run down. */
    double per_step = res.seconds / (double)steps;
    for (int k = 0; k < 3; k++) {
        clipnn_train_options o = train_options(a, a->clips[0], steps);
        if (clipnn_train(models[0], ds, NULL, &o, &res)) die("train");
        if (res.seconds / (double)steps < per_step) per_step = res.seconds / (double)steps;
    }
    steps = (uint64_t)ceil(a->rep_seconds / per_step);
    if (steps < 2) steps = 2;

    double secs[MAX_CLIPS][MAX_REPS], frac[MAX_CLIPS] = {0};
    for (int r = -1; r < a->reps; r++) /* r = -1: warm-up of every rule */
        for (int c = 0; c < a->n_clips; c++) {
            clipnn_train_options o = grid_options(a, c, r < 0 ? 2 : steps);
            if (clipnn_train(models[c], ds, NULL, &o, &res)) die("train");
            if (res.diverged) fprintf(stderr, "bench_clipnn: %s diverged\n", clipnn_clip_rule_name(a->clips[c]));
            if (r < 0) continue;
            secs[c][r] = res.seconds / (double)steps;
            frac[c] += res.clipped_fraction / a->reps;
        }

    /* What the unit norms fused into the backward cost (every rule, none
     * included, has them: the non-finite check and the record read them):
     * clipnn_loss_grad with and without, interleaved, on one batch. */
    double norm_cost;
    {
        clipnn_model *m = models[0];
        const float *x = clipnn_dataset_x(ds), *y = clipnn_dataset_y(ds);
        clipnn_loss_options lo = clipnn_loss_options_default();
        int inner = (int)ceil(0.25 * a->rep_seconds / per_step);
        if (inner < 1) inner = 1;
        double diff[MAX_REPS];
        for (int r = -1; r < a->reps; r++) {
            double t[2];
            for (int with = 0; with < 2; with++) {
                clipnn_fused_opts fused = {.unit_norm_order = with ? 2.0 : 0.0};
                double t0 = clipnn_now_seconds();
                for (int k = 0; k < inner; k++)
                    if (clipnn_loss_grad_fused(m, &lo, x, y, a->batch, &fused, NULL, NULL)) die("loss_grad");
                t[with] = (clipnn_now_seconds() - t0) / inner;
            }
            if (r >= 0) diff[r] = t[1] - t[0];
        }
        norm_cost = median(diff, a->reps);
    }

    const double flops = step_flops(a);
    for (int c = 0; c < a->n_clips; c++) {
        /* Overhead against the first rule (none) from the paired
         * repetitions: (t_rule - t_none) / t_rule, median over r. */
        /* The rule's cost on top of none's, plus the unit norms that
         * none pays for too. */
        /* A tool entry: against the same rule without the callbacks, no
         * unit norms to add (both have them). */
        double over[MAX_REPS], t[MAX_REPS];
        int base = grid_base(a, c);
        double add = base == 0 ? norm_cost : 0.0;
        for (int r = 0; r < a->reps; r++) {
            over[r] = (secs[c][r] - secs[base][r] + add) / secs[c][r];
            t[r] = secs[c][r];
        }
        char name[64];
        double tm = median(t, a->reps);
        printf("grid\t%s\t%zu\t%s\t%d\t%.1f\t%.6g\t%.2f\t%.4f\t%.3f\t%d\t%llu\t%.4f\n", a->arch, a->batch,
               grid_name(a, c, name, sizeof name), a->threads, (double)a->batch / tm, tm * 1e3, flops / tm / 1e9,
               c == 0 ? 0.0 : median(over, a->reps), frac[c], a->reps, (unsigned long long)steps, norm_cost / tm);
    }
    for (int c = 0; c < a->n_clips; c++) clipnn_model_free(models[c]);
    clipnn_dataset_free(ds);
}

/* ------------------------------------------------------------- naive */

/* One DP-SGD gradient (no noise) the naive way: a backward per example (a
 * whole sequence, its targets for every step when the model reads them), its
 * gradient clipped to C and summed, the sum divided by the batch. */
static void naive_per_sample(clipnn_model *m, const float *x, const float *y, size_t B, double C, float *sum) {
    size_t P = clipnn_model_n_params(m), d = clipnn_model_n_inputs(m), rows = clipnn_model_output_steps(m);
    const float *g = clipnn_model_grads(m);
    clipnn_loss_options lo = clipnn_loss_options_default();
    memset(sum, 0, P * sizeof *sum);
    for (size_t i = 0; i < B; i++) {
        if (clipnn_loss_grad(m, &lo, x + i * d, y + i * rows, 1, NULL, NULL)) die("loss_grad");
        double norm = clipnn_norm(g, P, 2.0);
        float f = (float)(norm > C ? C / norm : 1.0);
        for (size_t j = 0; j < P; j++) sum[j] += f * g[j];
    }
    for (size_t j = 0; j < P; j++) sum[j] /= (float)B;
}

static void bench_naive(const bench_args *a) {
    clipnn_set_threads(a->threads);
    clipnn_dataset *ds = make_data(a);
    clipnn_model *m = make_model(a);
    size_t B = a->batch, P = clipnn_model_n_params(m), d = a->n_inputs;
    if (clipnn_model_reserve(m, B)) die("reserve");
    const float *x = clipnn_dataset_x(ds), *y = clipnn_dataset_y(ds);
    clipnn_clip_options co = clip_for(CLIPNN_CLIP_PER_SAMPLE);
    clipnn_clipper *clip;
    if (clipnn_clipper_create(&clip, m, &co)) die("clipper");
    clipnn_loss_options lo = clipnn_loss_options_default();
    float *sum = malloc(P * sizeof *sum);
    if (!sum) usage("out of memory");

    /* Both on the same batch and parameters: the gradient is all that is
     * timed (the update that follows is the same for both). */
    double t_trick[MAX_REPS], t_naive[MAX_REPS], maxdiff = 0, maxg = 0;
    for (int r = -1; r < a->reps; r++) {
        const float *xb = x + ((size_t)(r + 1) * B % (N_EXAMPLES - B)) * d;
        const float *yb = y + ((size_t)(r + 1) * B % (N_EXAMPLES - B));
        double t0 = clipnn_now_seconds();
        if (clipnn_loss_grad(m, &lo, xb, yb, B, NULL, NULL)) die("loss_grad");
        double scale;
        clipnn_clip_record rec;
        if (clipnn_clipper_apply(clip, m, -1, 1, &scale, NULL, &rec)) die("clip");
        double t1 = clipnn_now_seconds();
        if (r >= 0) t_trick[r] = t1 - t0;
        t0 = clipnn_now_seconds();
        naive_per_sample(m, xb, yb, B, co.lambda, sum);
        t1 = clipnn_now_seconds();
        if (r >= 0) t_naive[r] = t1 - t0;
        if (r == 0) {
            /* The trick's gradient again (the naive loop overwrote the
             * gradient block), compared with the naive sum. */
            if (clipnn_loss_grad(m, &lo, xb, yb, B, NULL, NULL)) die("loss_grad");
            if (clipnn_clipper_apply(clip, m, -1, 1, &scale, NULL, &rec)) die("clip");
            const float *g = clipnn_model_grads(m);
            for (size_t j = 0; j < P; j++) {
                double diff = fabs((double)g[j] - (double)sum[j]);
                if (diff > maxdiff) maxdiff = diff;
                if (fabs((double)g[j]) > maxg) maxg = fabs((double)g[j]);
            }
        }
    }
    double tt = median(t_trick, a->reps), tn = median(t_naive, a->reps);
    printf("naive\t%s\t%zu\t%d\t%.4g\t%.4g\t%.1f\t%.3g\n", a->arch, B, a->threads, tt * 1e3, tn * 1e3, tn / tt,
           maxg > 0 ? maxdiff / maxg : maxdiff);
    free(sum);
    clipnn_clipper_free(clip);
    clipnn_model_free(m);
    clipnn_dataset_free(ds);
}

/* -------------------------------------------- recurrent per-sample */

static clipnn_model *make_rec_model(const bench_args *a) {
    clipnn_layer_spec ls[2] = {{a->cell, a->hidden, CLIPNN_ACT_IDENTITY},
                               {CLIPNN_LAYER_DENSE, 10, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {a->seq_steps, a->step_dim, a->every_step};
    clipnn_model *m;
    if (clipnn_model_create_seq(&m, &seq, 2, ls)) die("model");
    if (clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1)) die("init");
    if (clipnn_model_reserve(m, a->batch)) die("reserve");
    return m;
}

/* Seconds of `steps` steps: loss and gradient, clipping (c NULL: none),
 * plain SGD. */
static double time_steps(clipnn_model *m, clipnn_clipper *c, const float *x, const float *y, size_t B, int steps) {
    clipnn_loss_options lo = clipnn_loss_options_default();
    float *theta = clipnn_model_params(m);
    const float *g = clipnn_model_grads(m);
    size_t P = clipnn_model_n_params(m);
    double t0 = clipnn_now_seconds();
    for (int k = 0; k < steps; k++) {
        if (clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL)) die("loss_grad");
        if (c && clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, NULL)) die("clip");
        for (size_t j = 0; j < P; j++) theta[j] -= 1e-3f * g[j];
    }
    return clipnn_now_seconds() - t0;
}

/* The largest difference between the per-sample gradient (no noise, C as
 * dp's) and the naive one, relative to the largest entry. */
static double rec_naive_diff(clipnn_model *m, clipnn_clip_options dp, const float *x, const float *y, size_t B) {
    size_t P = clipnn_model_n_params(m);
    float *sum = malloc(P * sizeof *sum), *got = malloc(P * sizeof *got);
    if (!sum || !got) usage("out of memory");
    clipnn_loss_options lo = clipnn_loss_options_default();
    clipnn_clipper *c;
    dp.noise_multiplier = 0;
    if (clipnn_clipper_create(&c, m, &dp) || clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL) ||
        clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, NULL))
        die("per-sample");
    memcpy(got, clipnn_model_grads(m), P * sizeof *got);
    naive_per_sample(m, x, y, B, dp.lambda, sum);
    double diff = 0, big = 0;
    for (size_t j = 0; j < P; j++) {
        diff = fmax(diff, fabs((double)got[j] - (double)sum[j]));
        big = fmax(big, fabs((double)sum[j]));
    }
    clipnn_clipper_free(c);
    free(sum), free(got);
    return big > 0 ? diff / big : diff;
}

/* Per repetition, interleaved: ms per step with norm clipping (t[0]), with
 * per-sample clipping and noise 1 (t[1]), of the loss and gradient alone
 * (t[2]), of the naive per-sample gradient (t[3]), per-sample / norm
 * (t[4]), per-sample without noise (t[5]); medians. */
static void time_recdp(const bench_args *a, clipnn_model *m, const float *x, const float *y, clipnn_clip_options dp,
                       double t[6]) {
    clipnn_clip_options norm = clip_for(CLIPNN_CLIP_NORM), dp0 = dp;
    dp.noise_multiplier = 1.0;
    clipnn_clipper *c_norm, *c_dp, *c_dp0;
    if (clipnn_clipper_create(&c_norm, m, &norm) || clipnn_clipper_create(&c_dp, m, &dp) ||
        clipnn_clipper_create(&c_dp0, m, &dp0))
        die("clipper");
    float *sum = malloc(clipnn_model_n_params(m) * sizeof *sum);
    if (!sum) usage("out of memory");
    const int steps = 10;
    double v[6][MAX_REPS];
    for (int r = -1; r < a->reps; r++) {
        double tp = time_steps(m, c_norm, x, y, a->batch, steps), td = time_steps(m, c_dp, x, y, a->batch, steps);
        double tg = time_steps(m, NULL, x, y, a->batch, steps), td0 = time_steps(m, c_dp0, x, y, a->batch, steps);
        double t0 = clipnn_now_seconds();
        naive_per_sample(m, x, y, a->batch, dp.lambda, sum);
        double tn = clipnn_now_seconds() - t0;
        if (r < 0) continue;
        v[0][r] = tp / steps * 1e3, v[1][r] = td / steps * 1e3, v[2][r] = tg / steps * 1e3, v[3][r] = tn * 1e3;
        v[4][r] = td / tp, v[5][r] = td0 / steps * 1e3;
    }
    for (int i = 0; i < 6; i++) t[i] = median(v[i], a->reps);
    clipnn_clipper_free(c_norm), clipnn_clipper_free(c_dp), clipnn_clipper_free(c_dp0);
    free(sum);
}

static void bench_recdp(const bench_args *a) {
    clipnn_set_threads(a->threads);
    size_t B = a->batch, nx = B * a->seq_steps * a->step_dim, ny = B * (a->every_step ? a->seq_steps : 1);
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    if (!x || !y) usage("out of memory");
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < nx; i++) s ^= s << 13, s ^= s >> 7, s ^= s << 17, x[i] = (float)(s >> 40) / 16777216.0f;
    for (size_t i = 0; i < ny; i++) y[i] = (float)(i * 7 % 10);
    clipnn_model *m = make_rec_model(a);
    /* C small enough that every example is clipped, as in DP-SGD practice:
     * the step then forms the weight gradients again every time. */
    clipnn_clip_options dp = clip_for(CLIPNN_CLIP_PER_SAMPLE);
    dp.lambda = 1e-3;
    double t[6], diff = rec_naive_diff(m, dp, x, y, B);
    time_recdp(a, m, x, y, dp, t);
    printf("recdp\t%s:%zu\t%zu\t%zu\t%d\t%d\t%.4g\t%.4g\t%.2f\t%.4g\t%.4g\t%.3g\t%.4g\n",
           clipnn_layer_kind_name(a->cell), a->hidden, a->seq_steps, B, a->every_step, a->threads, t[0], t[1], t[4],
           t[2], t[3], diff, t[5]);
    clipnn_model_free(m);
    free(x), free(y);
}

/* --------------------------------------------------------------- pgd */

/* The ReLU MLP of --arch (identity output), Xavier weights, seed 1. */
static clipnn_model *relu_mlp(const bench_args *a) {
    clipnn_act acts[MAX_LAYERS];
    for (size_t l = 0; l < a->n_layers; l++) acts[l] = l + 1 < a->n_layers ? CLIPNN_ACT_RELU : CLIPNN_ACT_IDENTITY;
    clipnn_model *m;
    if (clipnn_model_create(&m, a->n_inputs, a->n_layers, a->widths, acts) ||
        clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1))
        die("model");
    return m;
}

/* Forward and input gradient of every layer, 2 x multiply-adds, per iterate of one example. */
static double iterate_flops(const bench_args *a) {
    double macs = 0;
    size_t in = a->n_inputs;
    for (size_t l = 0; l < a->n_layers; l++) macs += (double)in * (double)a->widths[l], in = a->widths[l];
    return 4.0 * macs;
}

/* A training step's GFLOP/s at a->batch: the fastest of five runs of 100
 * steps (a busy machine only slows a run down). */
static double train_gflops(const bench_args *a, clipnn_model *m, const clipnn_dataset *ds) {
    clipnn_train_options to = train_options(a, CLIPNN_CLIP_NONE, 100);
    clipnn_train_result tr;
    double best = INFINITY;
    for (int r = 0; r < 5; r++) {
        if (clipnn_train(m, ds, NULL, &to, &tr)) die("train");
        best = fmin(best, tr.seconds / 100);
    }
    return step_flops(a) / best / 1e9;
}

/* The first n examples of ds labelled with m's predictions. */
static float *predicted_labels(clipnn_model *m, const clipnn_dataset *ds, size_t n) {
    const size_t k = clipnn_model_n_outputs(m);
    float *y = malloc(n * sizeof *y);
    const float *z;
    if (!y || clipnn_forward(m, clipnn_dataset_x(ds), n, &z)) die("predictions");
    for (size_t i = 0; i < n; i++) {
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            if (z[i * k + j] > z[i * k + best]) best = j;
        y[i] = (float)best;
    }
    return y;
}

static void bench_pgd(const bench_args *a) {
    clipnn_set_threads(a->threads);
    clipnn_model *m = relu_mlp(a);
    clipnn_dataset *ds = make_data(a);
    size_t n = a->n > N_EXAMPLES ? N_EXAMPLES : a->n;
    float *labels = predicted_labels(m, ds, n);
    clipnn_attack_options o = clipnn_attack_options_default();
    o.method = a->method;
    o.eps = 0.1;
    o.steps = a->steps;
    o.batch = a->batch;
    clipnn_attack_result res;
    double t[MAX_REPS];
    for (int r = -1; r < a->reps; r++) {
        double t0 = clipnn_now_seconds();
        if (clipnn_attack(m, &o, clipnn_dataset_x(ds), labels, n, NULL, &res)) die("attack");
        if (r >= 0) t[r] = clipnn_now_seconds() - t0;
    }
    if (res.eligible != n) die("pgd: an example the model does not predict");
    double secs = median(t, a->reps), flops = iterate_flops(a) * (double)n * (double)(a->steps + 1);
    printf("pgd\t%s\t%s\t%zu\t%d\t%zu\t%zu\t%.4f\t%.2f\t%.2f\n", clipnn_attack_method_name(a->method), a->arch,
           a->batch, a->threads, a->steps, n, secs, flops / secs / 1e9, train_gflops(a, m, ds));
    free(labels);
    clipnn_model_free(m);
    clipnn_dataset_free(ds);
}

/* ----------------------------------------------------------- inputopt */

static void bench_inputopt(const bench_args *a) {
    clipnn_set_threads(a->threads);
    clipnn_model *m = relu_mlp(a);
    clipnn_dataset *ds = make_data(a);
    const size_t d = a->n_inputs;
    float *x = malloc(d * sizeof *x), y = 1.0f;
    if (!x) usage("out of memory");
    clipnn_inputopt_options o = clipnn_inputopt_options_default();
    o.lr = 0.01;
    o.steps = a->steps;
    o.stop_on_success = 0;
    o.stall_steps = 0;
    o.grad_tol = -1; /* never stops on the gradient either */
    clipnn_inputopt_result res;
    double t[MAX_REPS];
    for (int r = -1; r < a->reps; r++) {
        memcpy(x, clipnn_dataset_x(ds), d * sizeof *x);
        double t0 = clipnn_now_seconds();
        if (clipnn_optimize_input(m, &o, &y, x, &res)) die("optimize-input");
        if (r >= 0) t[r] = clipnn_now_seconds() - t0;
    }
    if (res.steps != a->steps) die("inputopt: stopped early");
    bench_args one = *a;
    one.batch = 1;
    double secs = median(t, a->reps), flops = iterate_flops(a) * (double)(a->steps + 1);
    printf("inputopt\t%s\t%d\t%zu\t%.4f\t%.2f\t%.2f\n", a->arch, a->threads, a->steps, secs, flops / secs / 1e9,
           train_gflops(&one, m, ds));
    free(x);
    clipnn_model_free(m);
    clipnn_dataset_free(ds);
}

/* ------------------------------------------------------------ shapes */

typedef enum { GEMM_FORWARD, GEMM_WEIGHT, GEMM_INPUT } gemm_kind;
static const char *const gemm_names[] = {"forward", "weight", "input"};

typedef struct {
    float *a, *W, *z, *dW, *dz, *da;
    size_t B, in, out;
} gemm_bufs;

/* Thread t of T: its slice of one GEMM, split as the step splits it
 * (units for the forward and dW, inputs for da). */
static void gemm_slice(gemm_kind k, const gemm_bufs *g, int t, int T) {
    size_t lo, hi;
    clipnn_chunk(k == GEMM_INPUT ? g->in : g->out, t, T, &lo, &hi);
    if (k == GEMM_FORWARD) clipnn_dense_forward_cols(g->z, g->a, g->W, g->B, g->in, g->out, lo, hi);
    else if (k == GEMM_WEIGHT) clipnn_dense_weight_grad_rows(g->dW, NULL, g->dz, g->a, g->B, g->in, g->out, lo, hi);
    else clipnn_dense_input_grad_cols(g->da, g->dz, g->W, g->B, g->in, g->out, lo, hi);
}

/* Seconds per call of GEMM k, `inner` calls: how = 0 as the step (T
 * threads, slices, a barrier between calls), 1 one thread at the whole
 * shape (in tiles where the step takes them), 2 one call to BLAS at the
 * whole shape on its own T threads. */
static double time_gemm(gemm_kind k, const gemm_bufs *g, int how, int T, int inner) {
    clipnn_barrier bar = {0, 0};
    size_t direct = clipnn_gemm_direct_macs;
    if (how == 2) clipnn_gemm_direct_macs = 0; /* BLAS's own call, whole */
    if (how == 2 && openblas_set_num_threads) openblas_set_num_threads(T);
    double t0 = clipnn_now_seconds();
    if (how == 0) {
#pragma omp parallel num_threads(T) if (T > 1)
        for (int c = 0; c < inner; c++) {
            gemm_slice(k, g, clipnn_thread_id(), clipnn_thread_count());
            clipnn_barrier_wait(&bar, clipnn_thread_count());
        }
    } else {
        for (int c = 0; c < inner; c++) gemm_slice(k, g, 0, 1);
    }
    double t = (clipnn_now_seconds() - t0) / inner;
    if (how == 2 && openblas_set_num_threads) openblas_set_num_threads(1);
    clipnn_gemm_direct_macs = direct;
    return t;
}

static gemm_bufs gemm_alloc(size_t B, size_t in, size_t out) {
    gemm_bufs g = {.B = B, .in = in, .out = out};
    float **bufs[] = {&g.a, &g.W, &g.z, &g.dW, &g.dz, &g.da};
    size_t sizes[] = {B * in, out * in, B * out, out * in, B * out, B * in};
    for (size_t i = 0; i < 6; i++) {
        if (!(*bufs[i] = malloc(sizes[i] * sizeof(float)))) usage("out of memory");
        for (size_t j = 0; j < sizes[i]; j++) (*bufs[i])[j] = 1e-2f * (float)((int)((j * 7 + i) % 13) - 6);
    }
    return g;
}

static void gemm_free(gemm_bufs *g) { free(g->a), free(g->W), free(g->z), free(g->dW), free(g->dz), free(g->da); }

/* GFLOP/s of one thread's sgemm n^3, `inner` calls (the yardstick, timed
 * between the GEMMs of the step so that both meet the same load). */
static double sgemm_rate(const float *A, const float *Bm, float *C, int n, int inner) {
    double t0 = clipnn_now_seconds();
    for (int k = 0; k < inner; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
    return 2.0 * n * (double)n * n * inner / (clipnn_now_seconds() - t0) / 1e9;
}

/* The step's GEMMs of layer l: forward, weight gradient, input gradient
 * (none for the first layer); *count of them. */
static void layer_gemms(size_t l, gemm_kind *kinds, int *count) {
    *count = 0;
    kinds[(*count)++] = GEMM_FORWARD;
    kinds[(*count)++] = GEMM_WEIGHT;
    if (l > 0) kinds[(*count)++] = GEMM_INPUT;
}

/* One repetition: seconds per call of every GEMM of the step in the three
 * ways (t[gemm][how]), alternating; the sums into total[how]. */
static void shapes_rep(const bench_args *a, gemm_bufs *bufs, double t[][3], double total[3]) {
    size_t i = 0;
    total[0] = total[1] = total[2] = 0;
    for (size_t l = 0; l < a->n_layers; l++) {
        gemm_kind kinds[3];
        int count;
        layer_gemms(l, kinds, &count);
        double flops = 2.0 * (double)bufs[l].B * (double)bufs[l].in * (double)bufs[l].out;
        int inner = (int)ceil(0.005 / (flops / 100e9)); /* ~5 ms per way */
        for (int k = 0; k < count; k++, i++)
            for (int how = 0; how < 3; how++) {
                t[i][how] = time_gemm(kinds[k], &bufs[l], how, a->threads, inner);
                total[how] += t[i][how];
            }
    }
}

static void print_shape_rows(const bench_args *a, const gemm_bufs *bufs, double v[][3][MAX_REPS]) {
    size_t i = 0;
    for (size_t l = 0; l < a->n_layers; l++) {
        gemm_kind kinds[3];
        int count;
        layer_gemms(l, kinds, &count);
        const gemm_bufs *g = &bufs[l];
        double flops = 2.0 * (double)g->B * (double)g->in * (double)g->out;
        for (int k = 0; k < count; k++, i++) {
            /* M x N x K of the row-major product */
            size_t M = kinds[k] == GEMM_WEIGHT ? g->out : g->B, N = kinds[k] == GEMM_FORWARD ? g->out : g->in;
            size_t K = kinds[k] == GEMM_FORWARD ? g->in : kinds[k] == GEMM_WEIGHT ? g->B : g->out;
            printf("shape\t%s\t%zu\t%d\t%zu:%s\t%zu\t%zu\t%zu", a->arch, a->batch, a->threads, l, gemm_names[kinds[k]],
                   M, N, K);
            for (int how = 0; how < 3; how++) printf("\t%.2f", flops / median(v[i][how], a->reps) / 1e9);
            printf("\n");
        }
    }
}

/* Seconds per step of clipnn_train without clipping (as the grid's none). */
static double step_seconds(const bench_args *a, clipnn_model *m, const clipnn_dataset *ds, uint64_t steps) {
    clipnn_train_options o = train_options(a, CLIPNN_CLIP_NONE, steps);
    clipnn_train_result res;
    if (clipnn_train(m, ds, NULL, &o, &res)) die("train");
    return res.seconds / (double)steps;
}

static void bench_shapes(const bench_args *a) {
    clipnn_set_threads(a->threads);
    gemm_bufs bufs[MAX_LAYERS];
    for (size_t l = 0, in = a->n_inputs; l < a->n_layers; in = a->widths[l], l++)
        bufs[l] = gemm_alloc(a->batch, in, a->widths[l]);
    gemm_bufs big = gemm_alloc(512, 512, 512);
    clipnn_model *m = make_model(a);
    clipnn_dataset *ds = make_data(a);
    uint64_t steps = (uint64_t)ceil(0.02 / (step_flops(a) / 100e9)); /* ~20 ms */
    static double v[3 * MAX_LAYERS][3][MAX_REPS];
    /* per repetition, GFLOP/s: the step, the step with whole slices (no
     * tiles), sgemm 512^3 on one thread, the GEMMs at the step's shapes in
     * the three ways (one thread's rate times T: the ceiling of T threads
     * that split perfectly) */
    double rate[6][MAX_REPS], f = step_flops(a);
    size_t direct = clipnn_gemm_direct_macs;
    for (int r = -1; r < a->reps; r++) {
        double t[3 * MAX_LAYERS][3], total[3];
        shapes_rep(a, bufs, t, total);
        double one = sgemm_rate(big.a, big.W, big.z, 512, 20), step = f / step_seconds(a, m, ds, steps) / 1e9;
        clipnn_gemm_direct_macs = 0;
        double whole = f / step_seconds(a, m, ds, steps) / 1e9;
        clipnn_gemm_direct_macs = direct;
        if (r < 0) continue;
        for (size_t i = 0; i < 3 * a->n_layers; i++)
            for (int how = 0; how < 3; how++) v[i][how][r] = t[i][how];
        rate[0][r] = step, rate[1][r] = whole, rate[2][r] = one;
        rate[3][r] = f / total[0] / 1e9, rate[4][r] = a->threads * f / total[1] / 1e9, rate[5][r] = f / total[2] / 1e9;
    }
    print_shape_rows(a, bufs, v);
    printf("shapes\t%s\t%zu\t%d", a->arch, a->batch, a->threads);
    for (int k = 0; k < 6; k++) printf("\t%.2f", median(rate[k], a->reps));
    for (int k = 0; k < 6; k++) { /* every rate but sgemm's against T x sgemm */
        double ratio[MAX_REPS];
        for (int r = 0; r < a->reps; r++) ratio[r] = rate[k][r] / (a->threads * rate[2][r]);
        if (k != 2) printf("\t%.4f", median(ratio, a->reps));
    }
    for (int k = 3; k < 6; k++) { /* the step against the GEMMs at its shapes */
        double ratio[MAX_REPS];
        for (int r = 0; r < a->reps; r++) ratio[r] = rate[0][r] / rate[k][r];
        printf("\t%.4f", median(ratio, a->reps));
    }
    printf("\t%zu\n", direct);
    for (size_t l = 0; l < a->n_layers; l++) gemm_free(&bufs[l]);
    gemm_free(&big);
    clipnn_model_free(m);
    clipnn_dataset_free(ds);
}

/* ------------------------------------------------------------ update */

/* CPU time of the calling thread: a shared machine's other processes
 * take the core away without counting here (one thread only). */
static double thread_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_update(const bench_args *a) {
    clipnn_set_threads(a->threads);
    clipnn_model *m = make_model(a);
    size_t P = clipnn_model_n_params(m), U = m->n_units;
    clipnn_optim_options oo = clipnn_optim_options_default();
    clipnn_optimizer *opt;
    if (clipnn_optimizer_create(&opt, P, &oo)) die("optimizer");
    float *theta0 = malloc(P * sizeof *theta0);
    double *acc = malloc(2 * U * sizeof *acc);
    if (!theta0 || !acc) usage("out of memory");
    memcpy(theta0, clipnn_model_params(m), P * sizeof *theta0);
    float *g = m->grads;
    for (size_t j = 0; j < P; j++) g[j] = 1e-3f * (float)((int)(j % 7) - 3);
    const clipnn_update_sums with[3] = {{0}, {acc, NULL, NULL}, {acc, acc + U, theta0}};
    const char *names[3] = {"none", "theta", "theta+dist"};
    int inner = (int)ceil(2e7 / (double)P);
    double best[3] = {INFINITY, INFINITY, INFINITY};
    for (int r = -1; r < a->reps; r++)
        for (int k = 0; k < 3; k++) {
            double t0 = a->threads == 1 ? thread_seconds() : clipnn_now_seconds();
            for (int c = 0; c < inner; c++) /* lr alternates sign: theta stays put */
                if (clipnn_optimizer_step_units(opt, m, NULL, 1e-3, c % 2 ? -1.0 : 1.0, NULL, k ? &with[k] : NULL))
                    die("update");
            double t = ((a->threads == 1 ? thread_seconds() : clipnn_now_seconds()) - t0) / inner;
            if (r >= 0 && t < best[k]) best[k] = t;
        }
    for (int k = 0; k < 3; k++) printf("update\t%s\t%d\t%s\t%.2f\n", a->arch, a->threads, names[k], best[k] * 1e6);
    free(theta0), free(acc);
    clipnn_optimizer_free(opt);
    clipnn_model_free(m);
}

/* -------------------------------------------- recurrent throughput */

#define REC_EXAMPLES 1024

/* Steps of clipnn_train per repetition so that one takes about
 * rep_seconds: the fastest of three calibration runs (a busy machine only
 * ever slows a run down), which also warm up the model and the caches. */
static uint64_t calibrate_steps(clipnn_model *m, const clipnn_dataset *ds, const clipnn_train_options *base,
                                double rep_seconds) {
    clipnn_train_options o = *base;
    clipnn_train_result res;
    double per_step = 1e30;
    for (uint64_t steps = 2;; steps *= 2) {
        o.steps = steps;
        if (clipnn_train(m, ds, NULL, &o, &res)) die("train");
        if (res.seconds >= 0.02 || steps >= 100000) {
            for (int k = 0; k < 3; k++) {
                if (k && clipnn_train(m, ds, NULL, &o, &res)) die("train");
                per_step = fmin(per_step, res.seconds / (double)steps);
            }
            break;
        }
    }
    uint64_t steps = (uint64_t)ceil(rep_seconds / per_step);
    return steps < 2 ? 2 : steps;
}

static void bench_rec(const bench_args *a) {
    clipnn_set_threads(a->threads);
    bench_args ra = *a;
    ra.every_step = 0;
    clipnn_model *m = make_rec_model(&ra);
    clipnn_dataset *ds = make_examples(REC_EXAMPLES, a->seq_steps * a->step_dim, 10);
    clipnn_train_options o = train_options(a, CLIPNN_CLIP_NORM, 2);
    uint64_t steps = calibrate_steps(m, ds, &o, a->rep_seconds);
    o.steps = steps;
    double secs[MAX_REPS];
    clipnn_train_result res;
    for (int r = 0; r < a->reps; r++) {
        if (clipnn_train(m, ds, NULL, &o, &res)) die("train");
        if (res.diverged) fprintf(stderr, "bench_clipnn: rec diverged\n");
        secs[r] = res.seconds / (double)steps;
    }
    double lo = secs[0], hi = secs[0];
    for (int r = 1; r < a->reps; r++) lo = fmin(lo, secs[r]), hi = fmax(hi, secs[r]);
    double tm = median(secs, a->reps);
    printf("rec\t%s\t%zu\t%zu\t%zu\t%zu\t%d\t%.1f\t%.6g\t%.3f\t%d\t%llu\n", clipnn_layer_kind_name(a->cell),
           a->hidden, a->seq_steps, a->step_dim, a->batch, a->threads, (double)a->batch / tm, tm * 1e3,
           (hi - lo) / tm, a->reps, (unsigned long long)steps);
    clipnn_model_free(m);
    clipnn_dataset_free(ds);
}

int main(int argc, char **argv) {
    if (argc < 2) usage("missing mode");
    bench_args a = parse_args(argc, argv);
    if (!strcmp(argv[1], "sgemm")) bench_sgemm(&a);
    else if (!strcmp(argv[1], "grid")) bench_grid(&a);
    else if (!strcmp(argv[1], "naive")) bench_naive(&a);
    else if (!strcmp(argv[1], "recdp")) bench_recdp(&a);
    else if (!strcmp(argv[1], "kernels")) bench_kernels(&a);
    else if (!strcmp(argv[1], "rec")) bench_rec(&a);
    else if (!strcmp(argv[1], "update")) bench_update(&a);
    else if (!strcmp(argv[1], "pgd")) bench_pgd(&a);
    else if (!strcmp(argv[1], "inputopt")) bench_inputopt(&a);
    else if (!strcmp(argv[1], "shapes")) bench_shapes(&a);
    else usage("unknown mode");
    return 0;
}
