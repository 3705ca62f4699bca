/* Output directories (--out DIR, --report DIR) checked before the work
 * starts, so that a long attack, lab or training run cannot end with
 * nothing written because of its directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* One line naming the option, the directory and the problem; the exit
 * code of a file that cannot be written. */
static int dir_error(const char *cmd, const char *option, const char *dir, const char *problem, int err) {
    char line[1024];
    if (err) snprintf(line, sizeof line, "clipnn %s: %s %.400s: %s: %s", cmd, option, dir, problem, strerror(err));
    else snprintf(line, sizeof line, "clipnn %s: %s %.400s: %s", cmd, option, dir, problem);
    fprintf(stderr, "%s\n", line);
    cli_note_error(line);
    return CLI_EXIT_IO;
}

/* mkdir -p: each missing component of path made in turn; 0 or the errno
 * of the component that could not be made (its name left in path). */
static int make_parents(char *path) {
    size_t len = strlen(path);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != 0) continue;
        char keep = path[i];
        path[i] = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return errno;
        path[i] = keep;
    }
    return 0;
}

/* A file made and removed in dir: what access() cannot tell (root on a
 * read-only file system, /proc). */
static int try_write(const char *dir) {
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.clipnn-check-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) return errno;
    close(fd);
    unlink(probe);
    return 0;
}

int cli_check_out_file(const char *cmd, const char *option, const char *path) {
    if (!path) return CLI_EXIT_OK;
    clipnn_status st = clipnn_output_check(path);
    if (st) return cli_fail(cmd, st, option);
    /* a device is written in place, a link's target replaced beside it */
    struct stat info;
    if (lstat(path, &info) == 0 && (S_ISCHR(info.st_mode) || S_ISLNK(info.st_mode))) return CLI_EXIT_OK;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int err = try_write(dir);
    return err ? dir_error(cmd, option, path, "cannot write a file in its directory", err) : CLI_EXIT_OK;
}

int cli_check_out_dir(const char *cmd, const char *option, const char *dir) {
    if (!dir) return CLI_EXIT_OK;
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0) return dir_error(cmd, option, "''", "empty directory name", 0);
    if (len >= sizeof path) return dir_error(cmd, option, dir, "directory name too long", ENAMETOOLONG);
    memcpy(path, dir, len + 1);
    int err = make_parents(path);
    if (err) {
        char what[4200];
        snprintf(what, sizeof what, "cannot create %s", path);
        return dir_error(cmd, option, dir, what, err);
    }
    struct stat st;
    if (stat(dir, &st) != 0) return dir_error(cmd, option, dir, "cannot be read", errno);
    if (!S_ISDIR(st.st_mode)) return dir_error(cmd, option, dir, "exists and is not a directory", 0);
    if ((err = try_write(dir))) return dir_error(cmd, option, dir, "cannot write a file there", err);
    return CLI_EXIT_OK;
}
