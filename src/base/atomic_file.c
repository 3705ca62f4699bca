/* Files written whole or not at all: every output goes to a temporary file
 * beside its destination and is renamed over it once complete. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/bytes_le.h"

#ifndef NAME_MAX
#define NAME_MAX 255
#endif

static const char tmp_suffix[] = ".tmp.XXXXXX";
enum { SUFFIX_LEN = sizeof tmp_suffix - 1 };

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

/* The directory part of path ("." when there is none) into dir[cap]. */
static int dir_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (len >= cap) return -1;
    memcpy(dir, slash ? path : ".", len);
    dir[len] = 0;
    return 0;
}

/* fsync the directory holding path so that the rename is durable. Some file
 * systems refuse fsync on directories; the file itself is complete by then,
 * so this is best effort. */
static void sync_parent_dir(const char *path) {
    char dir[PATH_MAX];
    if (dir_of(path, dir, sizeof dir)) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The file an output named path replaces: path itself, or the file a
 * symbolic link points to (the link stays and sees the new file); into
 * *target (clipnn_alloc); *device: it is a character device (/dev/null,
 * /dev/stdout), written in place. Refuses a directory, a FIFO, a socket or
 * a block device, and a link to nothing. */
static clipnn_status resolve_target(const char *path, char **target, int *device) {
    struct stat st;
    const char *name = path;
    char *resolved = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        resolved = realpath(path, NULL);
        if (!resolved)
            return clipnn_fail(CLIPNN_ERR_IO, "%s: a symbolic link to a missing file (%s); outputs follow links to "
                               "existing files only", path, strerror(errno));
        name = resolved;
    }
    clipnn_status s = CLIPNN_OK;
    int exists = stat(name, &st) == 0;
    *device = exists && S_ISCHR(st.st_mode);
    if (exists && !S_ISREG(st.st_mode) && !*device)
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: %s, not a regular file; outputs go to regular files or character devices",
                        path, S_ISDIR(st.st_mode) ? "a directory"
                              : S_ISFIFO(st.st_mode) ? "a FIFO" : "a socket or block device");
    size_t len = strlen(name);
    *target = s ? NULL : clipnn_alloc(len + 1);
    if (!s && !*target) s = clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    if (!s) memcpy(*target, name, len + 1);
    free(resolved);
    return s;
}

/* The temporary name of target: its name cut to leave room for the suffix
 * within NAME_MAX, then ".tmp.XXXXXX"; *prefix_len: the bytes before the
 * six random letters. */
static char *tmp_name_for(const char *target, size_t *prefix_len) {
    const char *slash = strrchr(target, '/');
    size_t dir_len = slash ? (size_t)(slash - target) + 1 : 0, base = strlen(target) - dir_len;
    if (base > NAME_MAX - SUFFIX_LEN) base = NAME_MAX - SUFFIX_LEN;
    char *tmp = clipnn_alloc(dir_len + base + sizeof tmp_suffix);
    if (!tmp) return NULL;
    memcpy(tmp, target, dir_len + base);
    memcpy(tmp + dir_len + base, tmp_suffix, sizeof tmp_suffix);
    *prefix_len = dir_len + base + SUFFIX_LEN - 6;
    return tmp;
}

/* Removes the temporary files an earlier writer of the same target left
 * when it was killed: those no live writer holds locked (each writer holds
 * an exclusive flock on its temporary file until it is renamed). */
static void remove_stale_temporaries(const char *tmp, size_t prefix_len) {
    char dir[PATH_MAX];
    if (dir_of(tmp, dir, sizeof dir)) return;
    const char *slash = strrchr(tmp, '/');
    const char *prefix = slash ? slash + 1 : tmp;
    size_t plen = prefix_len - (size_t)(prefix - tmp);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strlen(e->d_name) != plen + 6 || strncmp(e->d_name, prefix, plen)) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

clipnn_status clipnn_output_check(const char *path) {
    if (!path || !*path) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "output: empty file name");
    char *target = NULL;
    int device;
    clipnn_status s = resolve_target(path, &target, &device);
    if (s || device) {
        clipnn_free(target);
        return s;
    }
    char dir[PATH_MAX];
    const char *slash = strrchr(target, '/');
    size_t base = strlen(slash ? slash + 1 : target);
    if (strlen(target) >= PATH_MAX || dir_of(target, dir, sizeof dir))
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%.200s...: path longer than %d bytes", path, PATH_MAX - 1);
    else if (base == 0 || base > NAME_MAX)
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the file name has %zu bytes, more than the %d a name may have",
                        path, base, NAME_MAX);
    else if (access(dir, W_OK | X_OK) != 0)
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: cannot write in the directory %s: %s", path, dir, strerror(errno));
    clipnn_free(target);
    return s;
}

/* The outputs open now: each stream's temporary file and destination. */
typedef struct open_output {
    FILE *f;
    char *target, *tmp; /* tmp NULL: written in place */
    int device;         /* a character device: never removed */
    struct open_output *next;
} open_output;

static open_output *outputs;
static pthread_mutex_t outputs_lock = PTHREAD_MUTEX_INITIALIZER;

static void free_output(open_output *o) {
    if (!o) return;
    clipnn_free(o->target);
    clipnn_free(o->tmp);
    clipnn_free(o);
}

/* mkstemp(tmp), locked until the rename: not stale while this writer
 * lives. Another writer's cleaning may remove the file between its
 * creation and the lock; then it is made again. */
static int locked_temporary(char *tmp) {
    size_t len = strlen(tmp);
    for (int attempt = 0; attempt < 8; attempt++) {
        memcpy(tmp + len - 6, "XXXXXX", 6);
        int fd = mkstemp(tmp);
        if (fd < 0) return -1;
        (void)flock(fd, LOCK_EX); /* best effort: some network file systems have no locks */
        struct stat mine, named;
        if (fstat(fd, &mine) != 0 || stat(tmp, &named) != 0 || mine.st_ino != named.st_ino ||
            mine.st_dev != named.st_dev) {
            close(fd); /* removed by another writer's cleaning before the lock: make another */
            continue;
        }
        return fd;
    }
    errno = EAGAIN;
    return -1;
}

/* A temporary file for target, locked and with the mode target has (or a
 * new file would get), opened as o->f. */
static clipnn_status create_temporary(const char *path, open_output *o) {
    size_t prefix_len;
    o->tmp = tmp_name_for(o->target, &prefix_len);
    if (!o->tmp) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    remove_stale_temporaries(o->tmp, prefix_len);
    int fd = locked_temporary(o->tmp);
    if (fd < 0)
        return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
    struct stat old;
    (void)fchmod(fd, stat(o->target, &old) == 0 && S_ISREG(old.st_mode) ? old.st_mode & 07777 : new_file_mode());
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        int e = errno;
        close(fd);
        unlink(o->tmp);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: cannot open a stream: %s", path, strerror(e));
    }
    return CLIPNN_OK;
}

/* The file itself, truncated, for an output written in place. */
static clipnn_status open_in_place(const char *path, open_output *o) {
    o->f = fopen(o->target, "wb");
    return o->f ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
}

static clipnn_status open_output_as(const char *path, int in_place, FILE **out) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "output: NULL argument");
    *out = NULL;
    clipnn_status s = clipnn_output_check(path);
    if (s) return s;
    open_output *o = clipnn_alloc_array(1, sizeof *o);
    if (!o) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    s = resolve_target(path, &o->target, &o->device);
    if (!s) s = in_place || o->device ? open_in_place(path, o) : create_temporary(path, o);
    if (s) {
        free_output(o);
        return s;
    }
    pthread_mutex_lock(&outputs_lock);
    o->next = outputs;
    outputs = o;
    pthread_mutex_unlock(&outputs_lock);
    *out = o->f;
    return CLIPNN_OK;
}

clipnn_status clipnn_output_open(const char *path, FILE **f) { return open_output_as(path, 0, f); }
clipnn_status clipnn_output_open_live(const char *path, FILE **f) { return open_output_as(path, 1, f); }

static open_output *take_output(FILE *f) {
    pthread_mutex_lock(&outputs_lock);
    open_output **p = &outputs;
    while (*p && (*p)->f != f) p = &(*p)->next;
    open_output *o = *p;
    if (o) *p = o->next;
    pthread_mutex_unlock(&outputs_lock);
    return o;
}

/* Flush, sync (files), close and rename (temporaries) o; 0 or the errno
 * of the failing stage. */
static int finish(open_output *o, const char **stage) {
    int err = 0;
    *stage = "writing";
    if (ferror(o->f)) { /* stdio keeps what it could not write: flushing again says why */
        clearerr(o->f);
        errno = 0;
        err = fflush(o->f) != 0 && errno ? errno : EIO;
    }
    if (!err && fflush(o->f) != 0) err = errno, *stage = "flushing";
    if (!err && !o->device && fsync(fileno(o->f)) != 0) err = errno, *stage = "syncing";
    if (fclose(o->f) != 0 && !err) err = errno, *stage = "closing";
    if (!err && o->tmp && rename(o->tmp, o->target) != 0) err = errno, *stage = "renaming";
    return err;
}

clipnn_status clipnn_output_close(FILE *f, const char *what) {
    if (!f) return CLIPNN_OK;
    open_output *o = take_output(f);
    if (!o) {
        fclose(f);
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "output: a stream clipnn_output_open did not open");
    }
    clipnn_status s = CLIPNN_OK;
    const char *stage = "writing";
    int err = what ? finish(o, &stage) : (fclose(o->f), ECANCELED);
    if (err) {
        if (!o->device) unlink(o->tmp ? o->tmp : o->target);
        if (what)
            s = clipnn_fail(CLIPNN_ERR_IO, "%s: %s not saved (%s: %s)%s", o->target, what, stage,
                            err == EIO && !strcmp(stage, "writing") ? "a write failed" : strerror(err),
                            o->tmp ? "; an existing file is left unchanged" : o->device ? "" : "; removed");
    } else if (!o->device) {
        sync_parent_dir(o->target);
    }
    free_output(o);
    return s;
}

clipnn_status clipnn_write_atomic(const char *path, const char *what, clipnn_fill_fn fill, void *user) {
    FILE *f;
    clipnn_status s = clipnn_output_open(path, &f);
    if (s) return s;
    int err = fill(f, user);
    if (!err) return clipnn_output_close(f, what);
    clipnn_output_close(f, NULL);
    return clipnn_fail(CLIPNN_ERR_IO, "%s: %s not saved (writing: %s); an existing file is left unchanged", path, what,
                       strerror(err));
}

static int fwrite_chunk(void *f, const void *p, size_t n) {
    errno = 0;
    return fwrite(p, 1, n, f) == n ? 0 : errno ? errno : EIO;
}

int clipnn_fwrite_f32s(FILE *f, const float *v, size_t n) {
    return le_write_f32s(v, n, fwrite_chunk, f);
}
