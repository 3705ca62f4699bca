/* Bounded resources: the input limit (files, gzip bombs, endless streams),
 * the memory estimates that refuse a model, workspace or run before it is
 * allocated, and step counts that would overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "check.h"
#include "clipnn.h"
#include "run_measured.h"

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

/* n bytes of the repeated pattern, gzipped into path. */
static void write_gzip_of(const char *path, const char *pattern, size_t n) {
    gzFile g = gzopen(path, "wb1");
    CHECK(g != NULL);
    if (!g) return;
    char block[1 << 16];
    size_t k = strlen(pattern);
    for (size_t i = 0; i < sizeof block; i++) block[i] = k ? pattern[i % k] : 0;
    for (size_t done = 0; done < n; done += sizeof block) CHECK(gzwrite(g, block, sizeof block) > 0);
    gzclose(g);
}

/* MemAvailable as the test reads it. */
static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

TEST(limits_input_file_past_the_limit_is_refused) {
    const char *small = check_tmp_path("limit_small.csv"), *big = check_tmp_path("limit_big.csv");
    char text[8192];
    size_t n = 0;
    n += (size_t)snprintf(text, sizeof text, "a,b\n");
    while (n < 2000) n += (size_t)snprintf(text + n, sizeof text - n, "1,0\n2,1\n");
    write_bytes(small, text, n);
    while (n < 6000) n += (size_t)snprintf(text + n, sizeof text - n, "1,0\n2,1\n");
    write_bytes(big, text, n);
    clipnn_set_max_input_bytes(4096);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_load_csv(small, -1, -1, &d));
    clipnn_dataset_free(d);
    d = NULL;
    CHECK(clipnn_dataset_load_csv(big, -1, -1, &d) == CLIPNN_ERR_NOMEM && d == NULL);
    CHECK_MSG(strstr(clipnn_last_error(), "input limit of 4 KB") &&
                  strstr(clipnn_last_error(), "CLIPNN_MAX_INPUT_BYTES="),
              "message: %s", clipnn_last_error());
    clipnn_set_max_input_bytes(0);
}

TEST(limits_endless_zero_stream_stops_at_the_first_chunk) {
    clipnn_dataset *train = NULL, *test = NULL;
    uint64_t before = clipnn_allocation_count();
    CHECK(clipnn_dataset_load("csv:/dev/zero", NULL, &train, &test) == CLIPNN_ERR_FORMAT);
    CHECK_MSG(strstr(clipnn_last_error(), "NUL byte at byte 0"), "message: %s", clipnn_last_error());
    CHECK(clipnn_allocation_count() - before < 8); /* one buffer, no growth */
}

/* Peak memory of the tool refusing a tiny bad CSV: what the process takes
 * anyway (about 10 MB; some 190 MB under AddressSanitizer). */
static long baseline_kb(void) {
    const char *bad = check_tmp_path("baseline.csv");
    write_bytes(bad, "a,b\n1,x\n", 8);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", bad);
    measured_run r;
    run_measured(NULL, (char *[]){"train", "--data", spec, NULL}, &r);
    CHECK_MSG(r.status == 3, "status %d: %s", r.status, r.output);
    return r.max_rss_kb;
}

/* 64 MB of NULs in 64 KB of gzip: refused at the first inflated chunk, the
 * process stays small (the limit would be reached only at 64 MB). */
TEST(limits_gzip_bomb_of_nul_bytes_is_refused_small) {
    const char *bomb = check_tmp_path("bomb.csv.gz");
    write_gzip_of(bomb, "", (size_t)64 << 20);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", bomb);
    measured_run r;
    run_measured(NULL, (char *[]){"train", "--data", spec, NULL}, &r);
    CHECK_MSG(r.status == 3 && strstr(r.output, "NUL byte"), "status %d: %s", r.status, r.output);
    long base = baseline_kb();
    CHECK_MSG(r.max_rss_kb < base + 24 * 1024, "peak %ld KB, %ld KB for a tiny file", r.max_rss_kb, base);
}

/* 64 MB of valid rows in a small gzip, under a 4 MB limit: refused when
 * the inflated text passes the limit, with the limit and the way to raise it. */
TEST(limits_gzip_of_rows_past_the_limit_is_refused_small) {
    const char *rows = check_tmp_path("rows.csv.gz");
    write_gzip_of(rows, "1,2,3,0\n4,5,6,1\n", (size_t)64 << 20);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", rows);
    measured_run r;
    run_measured((char *[]){"CLIPNN_MAX_INPUT_BYTES=4M", NULL}, (char *[]){"train", "--data", spec, NULL}, &r);
    CHECK_MSG(r.status == 5 && strstr(r.output, "input limit of 4 MB") && strstr(r.output, "CLIPNN_MAX_INPUT_BYTES"),
              "status %d: %s", r.status, r.output);
    long base = baseline_kb();
    CHECK_MSG(r.max_rss_kb < base + 24 * 1024, "peak %ld KB, %ld KB for a tiny file", r.max_rss_kb, base);
}

TEST(limits_defaults_follow_available_memory_and_the_environment) {
    clipnn_set_max_input_bytes(0);
    clipnn_set_max_memory(0);
    const char *saved = getenv("CLIPNN_MAX_INPUT_BYTES");
    unsetenv("CLIPNN_MAX_INPUT_BYTES");
    unsetenv("CLIPNN_MAX_MEMORY");
    double avail = mem_available();
    /* other processes move MemAvailable between the two reads: a tenth */
    CHECK_NEAR((double)clipnn_max_input_bytes(), avail / 8, avail / 80);
    CHECK_NEAR((double)clipnn_max_memory(), avail, avail / 10);
    setenv("CLIPNN_MAX_INPUT_BYTES", "3K", 1);
    CHECK(clipnn_max_input_bytes() == 3072);
    setenv("CLIPNN_MAX_INPUT_BYTES", "1.5m", 1);
    CHECK(clipnn_max_input_bytes() == 3 << 19);
    setenv("CLIPNN_MAX_INPUT_BYTES", "12x", 1); /* not a size: the default */
    CHECK_NEAR((double)clipnn_max_input_bytes(), avail / 8, avail / 80);
    clipnn_set_max_input_bytes(1000); /* the API wins over the environment */
    CHECK(clipnn_max_input_bytes() == 1000);
    setenv("CLIPNN_MAX_MEMORY", "2G", 1);
    CHECK(clipnn_max_memory() == (uint64_t)2 << 30);
    unsetenv("CLIPNN_MAX_MEMORY");
    clipnn_set_max_input_bytes(0);
    if (saved) setenv("CLIPNN_MAX_INPUT_BYTES", saved, 1);
    else unsetenv("CLIPNN_MAX_INPUT_BYTES");
}

/* 64 inputs x 2^24 units, then 10: 1.26e9 parameters, 9.4 GiB with the gradients. */
TEST(limits_model_past_the_memory_limit_is_refused_before_allocating) {
    clipnn_set_max_memory((uint64_t)64 << 20);
    size_t widths[] = {(size_t)1 << 24, 10};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    uint64_t before = clipnn_allocation_count();
    CHECK(clipnn_model_create(&m, 64, 2, widths, acts) == CLIPNN_ERR_NOMEM && m == NULL);
    CHECK(clipnn_allocation_count() - before <= 1); /* the layer list, nothing of the model */
    CHECK_MSG(strstr(clipnn_last_error(), "would take about 9.") && strstr(clipnn_last_error(), "GB") &&
                  strstr(clipnn_last_error(), "64 MB"),
              "message: %s", clipnn_last_error());
    clipnn_set_max_memory(0);
}

/* 200000 dense layers of width 1: a small model (600k parameters) whose
 * workspace for the evaluation chunk of 256 rows is 600 MB. */
TEST(limits_workspace_of_a_deep_thin_model_is_refused_before_allocating) {
    enum { L = 200000 };
    size_t *widths = calloc(L, sizeof *widths);
    clipnn_act *acts = calloc(L, sizeof *acts);
    for (size_t l = 0; widths && acts && l < L; l++) widths[l] = 1, acts[l] = CLIPNN_ACT_TANH;
    clipnn_model *m = NULL;
    clipnn_set_max_memory((uint64_t)128 << 20);
    CHECK_OK(clipnn_model_create(&m, 1, L, widths, acts));
    uint64_t before = clipnn_allocation_count();
    CHECK(m && clipnn_model_reserve(m, 256) == CLIPNN_ERR_NOMEM);
    CHECK(clipnn_allocation_count() == before);
    CHECK_MSG(strstr(clipnn_last_error(), "workspace for a batch of 256") && strstr(clipnn_last_error(), "MB"),
              "message: %s", clipnn_last_error());
    CHECK(m && clipnn_model_reserve(m, 16) == CLIPNN_OK); /* 38 MB */
    clipnn_set_max_memory(0);
    clipnn_model_free(m);
    free(widths);
    free(acts);
}

/* The tool refuses at once, naming the estimate (it used to run 28 s and
 * take 4.8 GB before failing). */
TEST(limits_cli_huge_arch_fails_fast_with_the_estimate) {
    measured_run r;
    run_measured((char *[]){"CLIPNN_MAX_MEMORY=1G", NULL}, (char *[]){"train", "--arch", "16777216-10", NULL}, &r);
    CHECK_MSG(r.status == 5 && strstr(r.output, "would take about") && strstr(r.output, "--arch"), "status %d: %s",
              r.status, r.output);
    CHECK_MSG(r.seconds < 5, "took %.1f s", r.seconds);
    long base = baseline_kb();
    CHECK_MSG(r.max_rss_kb < base + 64 * 1024, "peak %ld KB, %ld KB for a tiny file", r.max_rss_kb, base);
}

/* 64 rows: 64 steps an epoch at batch 1. */
static clipnn_dataset *rows64(void) {
    float x[128], y[64];
    for (int i = 0; i < 64; i++) x[2 * i] = (float)(i % 3), x[2 * i + 1] = (float)(i % 5), y[i] = (float)(i % 2);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, 64, 2, 2, 1, &d));
    return d;
}

/* 409927646082434496 epochs of 45 steps (digits at batch 32) wrapped to
 * 704 steps, and the run ended with status OK; here 64 steps an epoch. */
TEST(limits_epochs_times_steps_overflow_is_refused) {
    clipnn_dataset *d = rows64();
    size_t widths[] = {2};
    clipnn_act acts[] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 2, 1, widths, acts));
    clipnn_train_options o = clipnn_train_options_default();
    o.batch = 1;
    o.epochs = (size_t)409927646082434496ull;
    clipnn_train_result r;
    CHECK(m && d && clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_OVERFLOW);
    CHECK_MSG(strstr(clipnn_last_error(), "409927646082434496 epochs"), "message: %s", clipnn_last_error());
    o.epochs = 3; /* the same model and data train */
    CHECK(m && d && clipnn_train(m, d, NULL, &o, &r) == CLIPNN_OK && r.steps == 192);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    const char *out = NULL;
    CHECK(check_run_tool("train --epochs 409927646082434496", &out) == 5);
    CHECK_MSG(out && strstr(out, "epochs"), "%s", out ? out : "");
}

/* Checkpoints and arrays are read by size: past the limit before reading. */
TEST(limits_checkpoint_and_npy_past_the_input_limit_are_refused) {
    const char *ckpt = check_tmp_path("limit.ckpt"), *npy = check_tmp_path("limit.npy");
    size_t widths[] = {8, 2};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL, *back = NULL;
    CHECK_OK(clipnn_model_create(&m, 4, 2, widths, acts));
    float v[100] = {0};
    CHECK_OK(clipnn_model_save(m, ckpt));
    CHECK_OK(clipnn_npy_write(npy, v, 100, 0));
    clipnn_set_max_input_bytes(256);
    CHECK(clipnn_model_load(ckpt, &back) == CLIPNN_ERR_NOMEM && back == NULL);
    CHECK_MSG(strstr(clipnn_last_error(), "input limit of 256 bytes"), "message: %s", clipnn_last_error());
    float *r = NULL;
    size_t rows, cols;
    CHECK(clipnn_npy_read(npy, &r, &rows, &cols) == CLIPNN_ERR_NOMEM && r == NULL);
    clipnn_set_max_input_bytes(0);
    CHECK_OK(clipnn_model_load(ckpt, &back));
    CHECK_OK(clipnn_npy_read(npy, &r, &rows, &cols));
    free(r);
    clipnn_model_free(back);
    clipnn_model_free(m);
}

/* The evaluation chunk shrinks for a deep, thin model: 200000 width-1
 * layers take 2.3 MB of workspace a row, 600 MB for the usual 256 rows;
 * evaluated within a 300 MB memory limit, in chunks of at most 256 MB. */
TEST(limits_deep_thin_model_is_evaluated_in_smaller_chunks) {
    enum { L = 200000, N = 300 };
    size_t *widths = calloc(L, sizeof *widths);
    clipnn_act *acts = calloc(L, sizeof *acts);
    for (size_t l = 0; widths && acts && l < L; l++) widths[l] = 1, acts[l] = CLIPNN_ACT_TANH;
    if (acts) acts[L - 1] = CLIPNN_ACT_IDENTITY;
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)(i % 7) - 3, y[i] = (float)(i % 2);
    clipnn_model *m = NULL;
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_model_create(&m, 1, L, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N, 1, 0, 1, &d));
    clipnn_set_max_memory((uint64_t)300 << 20);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    double loss = NAN, acc;
    CHECK(m && d);
    if (m && d) CHECK_OK(clipnn_evaluate(m, d, &lo, &loss, &acc));
    CHECK(isfinite(loss));
    clipnn_set_max_memory(0);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    free(widths);
    free(acts);
}
