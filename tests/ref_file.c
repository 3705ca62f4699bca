/* The reference files of tests/ref and the comparisons against them. */
#include "ref_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void ref_free(ref_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->a[i].v);
    free(f->a);
    free(f);
}

/* Parses the format described in scripts/torch_reference.py. A malformed
 * file fails the test with its name and line. */
ref_file *ref_load(const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/ref/%s", file);
    ref_file *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", check_repo_path(rel));
    FILE *in = fopen(f->path, "r");
    if (!in) {
        check_fail(__FILE__, __LINE__, "%s: cannot open (written by scripts/torch_*reference.py)", f->path);
        free(f);
        return NULL;
    }
    char line[4096];
    size_t lineno = 0, want = 0, filled = 0;
    ref_array *cur = NULL; /* the array being filled: `filled` of `want` values read */
    int ok = 1;
    while (ok && fgets(line, sizeof line, in)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!cur && line[0] == '=') {
            if (f->n_attrs < 16 &&
                sscanf(line + 1, "%63s %63s", f->attrs[f->n_attrs][0], f->attrs[f->n_attrs][1]) == 2)
                f->n_attrs++;
            continue;
        }
        if (!cur) {
            long count;
            if (f->n == f->cap) {
                f->cap = f->cap ? 2 * f->cap : 64;
                f->a = realloc(f->a, f->cap * sizeof *f->a);
            }
            cur = &f->a[f->n++];
            memset(cur, 0, sizeof *cur);
            if (sscanf(line, "%47s %ld", cur->name, &count) != 2 || count < 1 || count > 100000) {
                ok = 0;
                break;
            }
            want = (size_t)count;
            filled = 0;
            cur->v = calloc(want, sizeof *cur->v);
            continue;
        }
        char *p = line, *end;
        for (double v = strtod(p, &end); end != p && ok; v = strtod(p, &end)) {
            if (filled == want) ok = 0;
            else cur->v[filled++] = v;
            p = end;
        }
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (*p) ok = 0;
        if (ok && filled == want) {
            cur->n = want;
            cur = NULL;
        }
    }
    fclose(in);
    if (!ok || cur) {
        check_fail(__FILE__, __LINE__, "%s: line %zu: malformed reference file", f->path, lineno);
        ref_free(f);
        return NULL;
    }
    return f;
}

/* The array NAME with exactly n values; a missing or mis-sized one fails
 * the test and gives NULL. */
const double *ref_get(const ref_file *f, const char *name, size_t n) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->a[i].name, name)) {
            if (n && f->a[i].n != n) {
                check_fail(__FILE__, __LINE__, "%s: %s has %zu values, want %zu", f->path, name, f->a[i].n, n);
                return NULL;
            }
            return f->a[i].v;
        }
    check_fail(__FILE__, __LINE__, "%s: no array %s", f->path, name);
    return NULL;
}

size_t ref_size(const ref_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->a[i].name, name)) return f->a[i].n;
    return 0;
}

const char *ref_attr(const ref_file *f, const char *key) {
    for (size_t i = 0; i < f->n_attrs; i++)
        if (!strcmp(f->attrs[i][0], key)) return f->attrs[i][1];
    return "";
}

void to_float(const double *v, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)v[i];
}

double max_abs(const double *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* got[i] (clipnn) and torch's float32 ref32[i] (when not NULL) both within
 * tol of the truth t64[i]; the first few misses are reported by name. */
void check_pair(const char *what, const float *got, const double *ref32, const double *t64, size_t n,
                       double tol) {
    int bad = 0;
    for (size_t i = 0; i < n && bad < 3; i++) {
        if (!(fabs((double)got[i] - t64[i]) <= tol)) {
            bad++;
            check_fail(__FILE__, __LINE__, "%s[%zu]: clipnn %.9g, truth %.17g (tol %.3g)", what, i, got[i], t64[i],
                       tol);
        }
        if (ref32 && !(fabs(ref32[i] - t64[i]) <= tol)) {
            bad++;
            check_fail(__FILE__, __LINE__, "%s[%zu]: torch float32 %.9g, truth %.17g: tolerance %.3g too tight", what,
                       i, ref32[i], t64[i], tol);
        }
    }
}

