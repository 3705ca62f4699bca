#include "file_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *slurp_file(const char *path, size_t *len) {
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n + 1 : 1);
    size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, f) : 0;
    if (buf) buf[got] = 0;
    if (len) *len = got;
    fclose(f);
    return buf;
}

int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = slurp_file(a, &la), *y = slurp_file(b, &lb);
    int same = x && y && la == lb && la > 0 && !memcmp(x, y, la);
    free(x), free(y);
    return same;
}

int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int k = 0;
    for (struct dirent *e; (e = readdir(d));) k += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return k;
}
