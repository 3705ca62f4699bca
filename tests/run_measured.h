/* Running the tool in a child process with extra environment variables and
 * measuring its peak memory (wait4's ru_maxrss), for the tests that show a
 * hostile input or option is refused before it grows the process. */
#ifndef CLIPNN_RUN_MEASURED_H
#define CLIPNN_RUN_MEASURED_H

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int status;      /* exit status, 128 + signal when killed */
    long max_rss_kb; /* peak resident memory */
    double seconds;
    char output[8192]; /* stdout and stderr */
} measured_run;

/* Runs CLIPNN_BIN with argv (NULL-terminated, without the program) after
 * putenv of each of env (NULL-terminated, may be NULL). */
static inline void run_measured(char *const *env, char *const *args, measured_run *r) {
    const char *bin = getenv("CLIPNN_BIN");
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)(bin ? bin : "build/clipnn");
    for (size_t i = 0; args[i] && argc < 63; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    char out_path[] = "/tmp/clipnn-measured-XXXXXX";
    int fd = mkstemp(out_path);
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (fd < 0) return;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 1), dup2(fd, 2);
        for (size_t i = 0; env && env[i]; i++) putenv(env[i]);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid > 0 && wait4(pid, &status, 0, &ru) == pid) {
        r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r->max_rss_kb = ru.ru_maxrss;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    ssize_t n = pread(fd, r->output, sizeof r->output - 1, 0);
    r->output[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(out_path);
}

#endif
