/* Files written whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

/* The mode a new file would get from open(2): 0666 less the umask, read
 * without changing it (umask(2) would race with other threads). */
static mode_t new_file_mode(void) {
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        unsigned int m;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Umask: %o", &m) == 1) {
                mask = (mode_t)m;
                break;
            }
        fclose(f);
    }
    return 0666 & ~mask;
}

/* fsync the directory holding path so that the rename is durable. Some file
 * systems refuse fsync on directories; the file itself is complete by then,
 * so this is best effort. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof dir) return;
        memcpy(dir, path, len);
        dir[len] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

clipnn_status clipnn_write_atomic(const char *path, const char *what, clipnn_fill_fn fill, void *user) {
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    char *tmp = clipnn_alloc(plen + sizeof suffix);
    if (!tmp) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        clipnn_status s = clipnn_fail(CLIPNN_ERR_IO, "%s: cannot create the temporary file %s: %s", path, tmp,
                                      strerror(e));
        clipnn_free(tmp);
        return s;
    }
    /* mkstemp creates 0600; give the file the mode a plain open would, or
     * keep the mode of the file it replaces. */
    struct stat old;
    mode_t mode = stat(path, &old) == 0 && S_ISREG(old.st_mode) ? old.st_mode & 07777 : new_file_mode();
    (void)fchmod(fd, mode);

    const char *stage = "writing";
    int err = 0;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        err = errno;
        close(fd);
    } else {
        err = fill(f, user);
        if (!err && fflush(f) != 0) err = errno, stage = "flushing";
        if (!err && fsync(fileno(f)) != 0) err = errno, stage = "syncing";
        if (fclose(f) != 0 && !err) err = errno, stage = "closing";
    }
    if (!err && rename(tmp, path) != 0) err = errno, stage = "renaming";
    clipnn_status s = CLIPNN_OK;
    if (err) {
        unlink(tmp);
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: %s not saved (%s %s: %s); an existing file is left unchanged", path,
                        what, stage, tmp, strerror(err));
    } else {
        sync_parent_dir(path);
    }
    clipnn_free(tmp);
    return s;
}
