/* Test runner: runs every registered test and prints "N passed, M failed". */
#include "check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipnn.h"

#define MAX_TESTS 1024

typedef struct {
    const char *name;
    const char *file;
    check_fn fn;
} test_entry;

static test_entry tests[MAX_TESTS];
static int n_tests;
static int current_failures;

void check_register(const char *name, const char *file, check_fn fn) {
    if (n_tests < MAX_TESTS) tests[n_tests++] = (test_entry){name, file, fn};
}

void check_fail(const char *file, int line, const char *fmt, ...) {
    if (current_failures < 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "    %s:%d: ", file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    current_failures++;
}

const char *check_repo_path(const char *relative) {
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("CLIPNN_ROOT");
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%s/%s", root ? root : ".", relative);
    return out;
}

const char *check_tmp_path(const char *name) {
    static char dir[4096];
    static char buf[8][4096];
    static int slot;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/clipnn-test-%ld", (long)getpid());
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", dir);
    }
    char *out = buf[slot++ % 8];
    snprintf(out, sizeof buf[0], "%.2000s/%.2000s", dir, name);
    return out;
}

int check_run_tool(const char *args, const char **output) {
    const char *bin = getenv("CLIPNN_BIN");
    return check_run_program(bin ? bin : "build/clipnn", args, output);
}

int check_run_example(const char *name, const char *args, const char **output) {
    const char *dir = getenv("CLIPNN_EXAMPLES");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "build/examples", name);
    return check_run_program(path, args, output);
}

int check_run_program(const char *program, const char *args, const char **output) {
    static char out[1 << 16];
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", program, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = 0;
    int status = pclose(p);
    if (output) *output = out;
    if (status == -1) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter) && !strstr(tests[i].file, filter)) continue;
        current_failures = 0;
        tests[i].fn();
        if (current_failures) {
            failed++;
            printf("FAIL %s (%s, %d checks failed)\n", tests[i].name, tests[i].file,
                   current_failures);
        } else {
            passed++;
            printf("  ok %s\n", tests[i].name);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
