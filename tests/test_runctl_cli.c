/* Run control in the tool, as a user meets it: progress on a stderr that is
 * a file or a pipe (lines) and on a terminal (the bar, through a pty); the
 * epoch history; SIGINT / SIGTERM sent to a running `clipnn train`, then
 * --resume, ending on the uninterrupted run's checkpoint byte for byte;
 * --save-every; a log that cannot be written keeping nothing from being
 * saved. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "file_util.h"

static int count_substr(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s ? strstr(s, sub) : NULL; p; p = strstr(p + 1, sub)) n++;
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t lines_in(const char *path) {
    char *text = slurp_file(path, NULL);
    int n = count_substr(text, "\n");
    free(text);
    return (size_t)n;
}

/* `clipnn ARGS` in the background, in directory dir, stdout and stderr to out. */
static pid_t spawn_tool(const char *dir, const char *args, const char *out) {
    const char *bin = getenv("CLIPNN_BIN");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %.2000s && exec %.2000s %.2000s >%.2000s 2>&1", dir, bin ? bin : "build/clipnn",
             args, out);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until path has at least `lines` lines (or 120 s): 1 when it did. */
static int wait_for_lines(const char *path, size_t lines) {
    for (int i = 0; i < 12000; i++) {
        if (lines_in(path) >= lines) return 1;
        sleep_ms(10);
    }
    return 0;
}

static int exit_code(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The scratch directory of check_tmp_path. */
static const char *tmp_dir(void) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s", check_tmp_path("x"));
    *strrchr(dir, '/') = 0;
    return dir;
}

/* Every line ends with a newline and has `commas` commas: rows are whole. */
static int whole_rows(const char *path, int commas) {
    char *text = slurp_file(path, NULL);
    int ok = text && *text && text[strlen(text) - 1] == '\n';
    for (char *line = text; ok && *line; line = strchr(line, '\n') + 1) {
        int c = 0;
        for (char *p = line; *p != '\n'; p++) c += *p == ',';
        ok = c == commas;
    }
    free(text);
    return ok;
}

/* Long enough (a few seconds) that a signal sent after two epochs arrives
 * mid-run; momentum, a schedule and AutoClip make the state matter. */
static const char LONG_RUN[] = "train --threads 1 --arch 256-256-10 --epochs 12 --momentum 0.9 --schedule rm:10,0.75 "
                               "--clip percentile";

/* `clipnn ARGS` run to its end in the scratch directory: its exit code,
 * its output in *said (malloc'd). */
static int run_in_tmp(const char *args, char **said) {
    const char *out = check_tmp_path("runctl_out.txt");
    int rc = exit_code(spawn_tool(tmp_dir(), args, out));
    *said = slurp_file(out, NULL);
    return rc;
}

TEST(runctl_sigint_then_resume_ends_on_the_same_checkpoint) {
    char args[1024], *said = NULL;
    const char *epochs = check_tmp_path("sig_ep.csv"), *steps = check_tmp_path("sig_steps.csv");
    const char *out = check_tmp_path("sig_out.txt");
    unlink(epochs);
    snprintf(args, sizeof args, "%s --save sig_cut.ckpt --log-epochs sig_ep.csv --log sig_steps.csv", LONG_RUN);
    pid_t pid = spawn_tool(tmp_dir(), args, out);
    CHECK(pid > 0 && wait_for_lines(epochs, 3)); /* the header and two epochs */
    kill(pid, SIGINT);
    int rc = exit_code(pid);
    said = slurp_file(out, NULL);
    CHECK_MSG(rc == 130, "interrupted run: exit %d: %s", rc, said);
    CHECK_MSG(count_substr(said, "stopped by SIGINT") == 1 && strstr(said, "sig_cut.ckpt"), "message: %s", said);
    free(said);
    CHECK_MSG(lines_in(epochs) < 13, "the run ended before the signal: make it longer");
    CHECK(whole_rows(epochs, 8) && whole_rows(steps, 15)); /* 9 and 16 columns */
    snprintf(args, sizeof args, "%s --quiet --save sig_whole.ckpt", LONG_RUN);
    CHECK(run_in_tmp(args, &said) == 0);
    free(said);
    /* --resume takes the architecture from the checkpoint */
    rc = run_in_tmp("train --threads 1 --epochs 12 --momentum 0.9 --schedule rm:10,0.75 --clip percentile --quiet "
                    "--resume sig_cut.ckpt --save sig_resumed.ckpt", &said);
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, said);
    free(said);
    CHECK_MSG(same_file(check_tmp_path("sig_whole.ckpt"), check_tmp_path("sig_resumed.ckpt")),
              "the resumed run's checkpoint differs from the uninterrupted one");
}

/* SIGTERM without --save: the run goes to a default name in the current
 * directory, which the message gives, and the model there evaluates. */
TEST(runctl_sigterm_saves_to_the_named_default) {
    const char *epochs = check_tmp_path("term_ep.csv"), *out = check_tmp_path("term_out.txt");
    const char *ckpt = check_tmp_path("clipnn-interrupted.ckpt");
    unlink(epochs), unlink(ckpt);
    char args[1024], *said;
    snprintf(args, sizeof args, "%s --log-epochs term_ep.csv", LONG_RUN);
    pid_t pid = spawn_tool(tmp_dir(), args, out);
    CHECK(pid > 0 && wait_for_lines(epochs, 2));
    kill(pid, SIGTERM);
    int rc = exit_code(pid);
    said = slurp_file(out, NULL);
    CHECK_MSG(rc == 130, "exit %d: %s", rc, said);
    CHECK_MSG(strstr(said, "stopped by SIGTERM") && strstr(said, "saved in clipnn-interrupted.ckpt"), "%s", said);
    free(said);
    CHECK(run_in_tmp("eval --model clipnn-interrupted.ckpt", &said) == 0);
    free(said);
    unlink(ckpt);
}

/* --save-every 2e: a run killed outright (SIGKILL: nothing saved at the
 * end) leaves the checkpoint of its last even epoch, which resumes onto
 * the uninterrupted run. */
TEST(runctl_save_every_survives_a_kill) {
    const char *epochs = check_tmp_path("every_ep.csv"), *out = check_tmp_path("every_out.txt");
    unlink(epochs), unlink(check_tmp_path("every.ckpt"));
    char args[1024], *said;
    snprintf(args, sizeof args, "%s --save every.ckpt --save-every 2e --log-epochs every_ep.csv", LONG_RUN);
    pid_t pid = spawn_tool(tmp_dir(), args, out);
    CHECK(pid > 0 && wait_for_lines(epochs, 4)); /* three epochs: the save after the second is done */
    kill(pid, SIGKILL);
    CHECK(exit_code(pid) == 128 + SIGKILL);
    CHECK_MSG(lines_in(epochs) < 13, "the run ended before the kill: make it longer");
    snprintf(args, sizeof args, "train --threads 1 --epochs 12 --momentum 0.9 --schedule rm:10,0.75 --clip percentile "
             "--quiet --resume every.ckpt --save every_resumed.ckpt --verbose");
    int rc = run_in_tmp(args, &said);
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, said);
    /* 1438 training rows in batches of 32: 45 steps an epoch */
    CHECK_MSG(strstr(said, "at step 90 of 540") || strstr(said, "at step 180 of 540") ||
                  strstr(said, "at step 270 of 540"), "not an even epoch's checkpoint: %s", said);
    free(said);
    snprintf(args, sizeof args, "%s --quiet --save every_whole.ckpt", LONG_RUN);
    CHECK(run_in_tmp(args, &said) == 0);
    free(said);
    CHECK(same_file(check_tmp_path("every_whole.ckpt"), check_tmp_path("every_resumed.ckpt")));
}

TEST(runctl_bad_options) {
    static const char *bad[] = {"--progress bogus", "--save-every 0 --save x.ckpt", "--save-every 3x --save x.ckpt",
                                "--save-every e --save x.ckpt", "--save-every 5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        const char *out;
        snprintf(args, sizeof args, "train --steps 3 %s", bad[i]);
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 2 && count_substr(out, "\n") == 1, "'%s': exit %d: %s", bad[i], rc, out);
    }
}

/* stderr is a pipe here: one line per epoch (compare: per run), no bar;
 * none and --quiet show nothing. */
TEST(runctl_progress_lines_off_a_terminal) {
    const char *out;
    CHECK(check_run_tool("train --epochs 3", &out) == 0);
    CHECK_MSG(count_substr(out, "clipnn train: epoch ") == 3 && count_substr(out, "epoch 3/3  train loss") == 1 &&
                  !strchr(out, '\r'), "%s", out);
    CHECK(check_run_tool("train --epochs 3 --progress none", &out) == 0);
    CHECK_MSG(count_substr(out, "clipnn train: epoch ") == 0, "%s", out);
    CHECK(check_run_tool("train --epochs 3 --progress lines --quiet", &out) == 0);
    CHECK_MSG(count_substr(out, "clipnn train: epoch ") == 0, "%s", out);
    /* compare: a line per run */
    CHECK(check_run_tool("compare --seeds 2 --rules none,norm --epochs 2", &out) == 0);
    CHECK_MSG(count_substr(out, "clipnn compare: ") == 4 && count_substr(out, "norm             seed 2:") == 1, "%s",
              out);
}

/* Field i (0-based) of a CSV line, as text into buf. */
static const char *csv_field(const char *line, int i, char *buf, size_t cap) {
    for (; i > 0 && line; i--) line = strchr(line, ',') ? strchr(line, ',') + 1 : NULL;
    if (!line) return NULL;
    size_t len = strcspn(line, ",\n");
    if (len >= cap) len = cap - 1;
    memcpy(buf, line, len);
    buf[len] = 0;
    return buf;
}

/* The CSV's exact header and a row per epoch; the --json "epochs" array
 * the same rows; the last row the summary's figures. */
TEST(runctl_epoch_history_csv_and_json) {
    const char *csv = check_tmp_path("hist.csv");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --epochs 4 --quiet --json --log-epochs %s", csv);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK_MSG(count_substr(out, "{\"epoch\":") == 4 && strstr(out, "\"epochs\":[{\"epoch\":1,\"train_loss\":"),
              "%s", out);
    char *text = slurp_file(csv, NULL);
    CHECK_MSG(text && !strncmp(text, "epoch,train_loss,train_acc,test_loss,test_acc,clipped_frac,seconds,lr,"
                                     "epsilon\n", 78), "header: %s", text ? text : "(none)");
    CHECK(count_substr(text, "\n") == 5 && whole_rows(csv, 8));
    /* the last row's test accuracy is the summary's, to the printed digits */
    const char *last = text ? strstr(text, "\n4,") : NULL;
    char field[64], want[64];
    CHECK(last && csv_field(last + 1, 4, field, sizeof field));
    const char *acc = strstr(out, "\"test_accuracy\":");
    CHECK(acc != NULL);
    if (last && acc) {
        snprintf(want, sizeof want, "%.6f", strtod(acc + 16, NULL));
        snprintf(args, sizeof args, "%.6f", strtod(field, NULL));
        CHECK_MSG(!strcmp(want, args), "last row test_acc %s, summary %s", field, want);
        double lr = strtod(csv_field(last + 1, 7, field, sizeof field), NULL);
        CHECK_NEAR(lr, 0.05, 0); /* the default constant step */
    }
    free(text);
    /* regression: the accuracy columns empty */
    snprintf(args, sizeof args, "train --data teacher --epochs 2 --quiet --log-epochs %s", csv);
    CHECK(check_run_tool(args, &out) == 0);
    text = slurp_file(csv, NULL);
    const char *row = text ? strstr(text, "\n2,") : NULL;
    CHECK_MSG(row && !*csv_field(row + 1, 2, field, sizeof field) && !*csv_field(row + 1, 4, field, sizeof field) &&
                  *csv_field(row + 1, 3, field, sizeof field), "%s", text);
    free(text);
}

/* A log on a full disk (/dev/full: every write fails with ENOSPC): the
 * model is saved all the same, the failure said, the exit code 4. */
TEST(runctl_failed_log_keeps_the_model) {
    static const char *logs[] = {"--log /dev/full", "--log-epochs /dev/full"};
    for (int i = 0; i < 2; i++) {
        const char *model = check_tmp_path("full_log.ckpt");
        unlink(model);
        char args[1024];
        const char *out;
        snprintf(args, sizeof args, "train --epochs 2 --quiet %s --save %s", logs[i], model);
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 4 && strstr(out, "/dev/full") && strstr(out, "No space left"), "%s: exit %d: %s", logs[i],
                  rc, out);
        snprintf(args, sizeof args, "eval --model %s", model);
        CHECK_MSG(check_run_tool(args, &out) == 0, "%s: model not saved: %s", logs[i], out);
    }
}

/* A terminal on stderr (a pty): the bar, redrawn in place (\r, erased to
 * the line's end), then each epoch's line. */
TEST(runctl_progress_bar_on_a_terminal) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
    if (master < 0) return;
    const char *slave = ptsname(master), *bin = getenv("CLIPNN_BIN");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(slave, O_RDWR);
        int null = open("/dev/null", O_WRONLY);
        if (fd < 0 || null < 0) _exit(127);
        dup2(fd, 2), dup2(null, 1);
        execl(bin ? bin : "build/clipnn", "clipnn", "train", "--epochs", "2", "--arch", "256-10", (char *)NULL);
        _exit(127);
    }
    static char seen[1 << 16];
    size_t len = 0;
    for (ssize_t got; len + 1 < sizeof seen && (got = read(master, seen + len, sizeof seen - 1 - len)) > 0;)
        len += (size_t)got; /* ends with EIO when the child closes the pty */
    seen[len] = 0;
    close(master);
    CHECK(exit_code(pid) == 0);
    CHECK_MSG(strstr(seen, "\rclipnn train: epoch 1/2 [") && strstr(seen, "samples/s") && strstr(seen, "\033[K") &&
                  strstr(seen, "\r\033[Kclipnn train: epoch 2/2  train loss"), "%s", seen);
}
