/* Files as the tests look at them: whole contents, and left-over
 * temporaries in a directory. */
#ifndef CLIPNN_TEST_FILE_UTIL_H
#define CLIPNN_TEST_FILE_UTIL_H

#include <stddef.h>

/* Whole contents of path (malloc'd, NUL-terminated), its length in *len
 * (len may be NULL); NULL and length 0 when the file cannot be read. */
void *slurp_file(const char *path, size_t *len);
/* 1 when a and b both read, not empty, hold the same bytes. */
int same_file(const char *a, const char *b);
/* Files in dir whose name starts with prefix; -1 when dir cannot be read. */
int count_prefixed(const char *dir, const char *prefix);

#endif
