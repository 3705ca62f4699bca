/* Output directories and files checked before the work starts: a command
 * whose --out or --report directory (or output file) cannot be written
 * fails at once with one line naming the option, the path and the
 * problem, exit code 4, before it loads a model or data. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "file_util.h"

/* The tool's output has exactly one line, holding want. */
static void check_one_line(const char *out, const char *want, const char *args) {
    const char *nl = strchr(out, '\n');
    CHECK_MSG(strstr(out, want) != NULL, "%s: no '%s' in: %s", args, want, out);
    CHECK_MSG(nl && nl[1] == 0, "%s: more than one line: %s", args, out);
}

/* A regular file where a directory is wanted. */
static const char *plain_file(void) {
    const char *path = check_tmp_path("outdir_plain_file");
    FILE *f = fopen(path, "w");
    if (f) fclose(f);
    return path;
}

/* Each command refuses a file given as its directory before it reads its
 * model (which does not exist here: a later check would name it). */
TEST(outdir_file_as_directory_is_refused_before_any_work) {
    const char *file = plain_file(), *missing = check_tmp_path("outdir_no_such.ckpt");
    const char *formats[] = {
        "attack --model %s --method fgsm --out %s",
        "attack --model %s --method pgd-linf --report %s",
        "optimize-input --model %s --target-class 3 --out %s",
        "report %s --out %s",
        "train --data csv:%s --report %s",
        "compare --data csv:%s --report %s",
    };
    char args[1024], want[600];
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        snprintf(args, sizeof args, formats[i], missing, file);
        const char *out;
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 4, "%s: exit %d: %s", args, rc, out);
        snprintf(want, sizeof want, "%s: exists and is not a directory", file);
        check_one_line(out, want, args);
    }
    snprintf(args, sizeof args, "lab gd-clip --out %s", file);
    const char *out;
    CHECK(check_run_tool(args, &out) == 4);
    check_one_line(out, "clipnn lab: --out", args);
}

/* /proc takes no new files, even from root: neither a directory made in
 * it nor a file made there. */
TEST(outdir_unwritable_directories_are_refused) {
    struct stat st;
    if (stat("/proc/self", &st) != 0) return; /* no procfs: nothing to try */
    const char *missing = check_tmp_path("outdir_no_such.ckpt");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "attack --model %s --method fgsm --out /proc/clipnn-outdir/a", missing);
    CHECK(check_run_tool(args, &out) == 4);
    check_one_line(out, "clipnn attack: --out /proc/clipnn-outdir/a: cannot create /proc/clipnn-outdir", args);
    snprintf(args, sizeof args, "lab gd-clip --out /proc");
    CHECK(check_run_tool(args, &out) == 4);
    check_one_line(out, "clipnn lab: --out /proc: cannot write a file there", args);
    snprintf(args, sizeof args, "train --data csv:%s --log-epochs /proc/epochs.csv", missing);
    CHECK(check_run_tool(args, &out) == 4);
    check_one_line(out, "clipnn train: --log-epochs /proc/epochs.csv: cannot write a file in its directory", args);
    snprintf(args, sizeof args, "compare --data csv:%s --sweep lambda=0.1:1:2 --out /proc/frontier.svg", missing);
    CHECK(check_run_tool(args, &out) == 4);
    check_one_line(out, "clipnn compare: --out /proc/frontier.svg: cannot write a file in its directory", args);
}

/* A missing directory is made with its parents, and the probe file is
 * gone afterwards. */
TEST(outdir_missing_directories_are_made_and_left_clean) {
    const char *model = check_tmp_path("outdir_model.ckpt"), *dir = check_tmp_path("outdir_new/a/b");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --quiet --epochs 1 --threads 1 --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "attack --model %s --method fgsm --eps 0.1 --n 4 --no-checks --out %s", model, dir);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    char trace[1100];
    snprintf(trace, sizeof trace, "%s/trace.csv", dir);
    CHECK(stat(trace, &st) == 0);
    CHECK(count_prefixed(dir, ".clipnn-check") == 0);
}
