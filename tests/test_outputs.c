/* Outputs complete or absent: failed writes (a file-size limit makes them
 * fail with EFBIG) leave no partial file and no temporary; temporaries of
 * a killed writer are removed by the next save; names are checked before
 * any work; links are followed, FIFOs and directories refused. */
#include <dirent.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "file_util.h"
#include "clipnn.h"
#include "io/io.h"

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static const char *fresh_dir(const char *name) {
    const char *dir = check_tmp_path(name);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(cmd) == 0);
    return dir;
}

/* Writes past bytes fail with EFBIG while the limit is on. */
static struct rlimit saved_fsize;
static void (*saved_xfsz)(int);
static void limit_file_size(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_fsize);
    saved_xfsz = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved_fsize;
    small.rlim_cur = bytes;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
}
static void unlimit_file_size(void) {
    setrlimit(RLIMIT_FSIZE, &saved_fsize);
    signal(SIGXFSZ, saved_xfsz);
}

TEST(outputs_png_svg_npy_on_a_full_disk_leave_nothing) {
    const char *dir = fresh_dir("full");
    char png[4200], svg[4200], npy[4200];
    snprintf(png, sizeof png, "%s/img.png", dir);
    snprintf(svg, sizeof svg, "%s/plot.svg", dir);
    snprintf(npy, sizeof npy, "%s/x.npy", dir);
    enum { H = 256, W = 256, N = 2000 };
    unsigned char *rgb = malloc(H * W * 3);
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    float *v = malloc(N * sizeof *v);
    uint64_t state = 88172645463325252ull; /* xorshift: noise that PNG cannot compress */
    for (size_t i = 0; rgb && i < H * W * 3; i++) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        rgb[i] = (unsigned char)(state >> 56);
    }
    for (size_t i = 0; x && y && v && i < N; i++) x[i] = (double)i, y[i] = 1.0 / (1.0 + (double)i), v[i] = (float)i;
    clipnn_svg_series s = {"series", x, y, N, 0, 0};
    clipnn_svg_axes ax = {"title", "x", "y", 0, 0};
    limit_file_size(4096);
    clipnn_status a = clipnn_png_write_rgb(png, rgb, H, W);
    clipnn_status b = clipnn_svg_line_plot(svg, &ax, &s, 1);
    clipnn_status c = clipnn_npy_write(npy, v, N, 1);
    unlimit_file_size();
    CHECK_MSG(a == CLIPNN_ERR_IO && b == CLIPNN_ERR_IO && c == CLIPNN_ERR_IO, "png %d svg %d npy %d", a, b, c);
    CHECK(!exists(png) && !exists(svg) && !exists(npy));
    CHECK(count_prefixed(dir, "img.png.tmp.") == 0 && count_prefixed(dir, "plot.svg.tmp.") == 0 &&
          count_prefixed(dir, "x.npy.tmp.") == 0);
    /* without the limit the same calls write the files */
    CHECK_OK(clipnn_png_write_rgb(png, rgb, H, W));
    CHECK_OK(clipnn_svg_line_plot(svg, &ax, &s, 1));
    CHECK(exists(png) && exists(svg));
    free(rgb), free(x), free(y), free(v);
}

/* The tool's step log (450 rows, 42 kB) under a file-size limit of 8 kB
 * (16 blocks of 512 bytes; of 1 kB where sh is bash):
 * the run fails naming the log, and neither a partial log nor a temporary
 * stays. */
TEST(outputs_cli_step_log_on_a_full_disk_is_absent) {
    /* Not in the MPI build: the tool joins a job of one first, and Open
     * MPI's MPI_Init cannot size its shared-memory files under the limit. */
    if (clipnn_dist_available()) return;
    const char *dir = fresh_dir("full_cli");
    char args[9000];
    const char *bin = getenv("CLIPNN_BIN");
    snprintf(args, sizeof args,
             "-c \"trap '' XFSZ; ulimit -f 16; exec '%s' train --epochs 10 --log '%s/log.csv'\"",
             bin ? bin : "build/clipnn", dir);
    const char *out = NULL;
    int rc = check_run_program("sh", args, &out);
    CHECK_MSG(rc == 4 && strstr(out, "log.csv") && strstr(out, "not saved"), "rc %d: %s", rc, out);
    char log[4200];
    snprintf(log, sizeof log, "%s/log.csv", dir);
    CHECK(!exists(log));
    CHECK(count_prefixed(dir, "log.csv.tmp.") == 0);
}

static clipnn_model *small_model(void) {
    size_t widths[] = {3, 2};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 2, 2, widths, acts));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    return m;
}

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs("partial", f), fclose(f);
}

TEST(outputs_temporaries_of_a_killed_writer_are_removed_by_the_next_save) {
    const char *dir = fresh_dir("stale");
    char path[4200], stale[3][4300], other[4300];
    snprintf(path, sizeof path, "%s/m.ckpt", dir);
    for (int i = 0; i < 3; i++) snprintf(stale[i], sizeof stale[i], "%s.tmp.a%dcDeF", path, i), touch(stale[i]);
    snprintf(other, sizeof other, "%s/m.ckpt.tmp.other-file", dir); /* not a temporary's name: kept */
    touch(other);
    /* a live writer's temporary is locked: kept */
    int fd = open(stale[2], O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    clipnn_model *m = small_model();
    CHECK_OK(clipnn_model_save(m, path));
    CHECK(!exists(stale[0]) && !exists(stale[1]) && exists(stale[2]) && exists(other));
    close(fd);
    CHECK_OK(clipnn_model_save(m, path));
    CHECK(!exists(stale[2]) && exists(other));
    CHECK(count_prefixed(dir, "m.ckpt.tmp.") == 1);
    clipnn_model_free(m);
}

/* name of n bytes in dir */
static void long_name(char *out, size_t cap, const char *dir, size_t n) {
    size_t len = (size_t)snprintf(out, cap, "%s/", dir);
    for (size_t i = 0; i < n && len + 1 < cap; i++) out[len++] = (char)('a' + i % 26);
    out[len] = 0;
}

TEST(outputs_long_names_work_or_fail_before_training) {
    const char *dir = fresh_dir("long");
    char name[4400], args[9000];
    long_name(name, sizeof name, dir, 250); /* the temporary name is cut to fit */
    snprintf(args, sizeof args, "train --epochs 1 --save '%s'", name);
    const char *out = NULL;
    CHECK_MSG(check_run_tool(args, &out) == 0 && exists(name), "%s", out);
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_load(name, &m));
    clipnn_model_free(m);
    long_name(name, sizeof name, dir, 256); /* too long for any file: refused before training, reason in full */
    snprintf(args, sizeof args, "train --epochs 1 --save '%s'", name);
    CHECK(check_run_tool(args, &out) == 2);
    CHECK_MSG(strstr(out, "more than the 255") && !strstr(out, "epoch"), "%s", out);
}

TEST(outputs_save_onto_a_link_replaces_its_target_fifo_refused) {
    const char *dir = fresh_dir("links");
    char target[4200], link[4200], dangling[4200], fifo[4200];
    snprintf(target, sizeof target, "%s/real.ckpt", dir);
    snprintf(link, sizeof link, "%s/link.ckpt", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.ckpt", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.ckpt", dir);
    touch(target);
    CHECK(symlink("real.ckpt", link) == 0 && symlink("missing.ckpt", dangling) == 0 && mkfifo(fifo, 0600) == 0);
    clipnn_model *m = small_model(), *back = NULL;
    CHECK_OK(clipnn_model_save(m, link));
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode)); /* the link stays */
    CHECK_OK(clipnn_model_load(target, &back));           /* and its target is the checkpoint */
    clipnn_model_free(back);
    CHECK(clipnn_model_save(m, dangling) == CLIPNN_ERR_IO && strstr(clipnn_last_error(), "missing file"));
    CHECK(lstat(dangling, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(clipnn_model_save(m, fifo) == CLIPNN_ERR_IO && strstr(clipnn_last_error(), "a FIFO"));
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(clipnn_model_save(m, dir) == CLIPNN_ERR_IO && strstr(clipnn_last_error(), "a directory"));
    CHECK_OK(clipnn_model_save(m, "/dev/null")); /* a character device is written in place, never replaced */
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    char args[9000];
    const char *out = NULL;
    snprintf(args, sizeof args, "train --epochs 1 --save '%s'", fifo); /* refused at once, never blocks */
    CHECK(check_run_tool(args, &out) == 4 && strstr(out, "FIFO") && !strstr(out, "epoch"));
    clipnn_model_free(m);
}
