/* The shared library exports exactly the public API: every function declared
 * with CLIPNN_API in include/clipnn/ and nothing else (no private helper, no
 * name without the clipnn_ prefix). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

#define MAX_SYMBOLS 1024

typedef struct {
    char *name[MAX_SYMBOLS];
    size_t n;
} symbol_set;

static void set_add(symbol_set *s, const char *name, size_t len) {
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->name[i]) == len && !memcmp(s->name[i], name, len)) return;
    if (s->n == MAX_SYMBOLS) return;
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, name, len);
    copy[len] = 0;
    s->name[s->n++] = copy;
}

static int set_has(const symbol_set *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return 1;
    return 0;
}

static void set_free(symbol_set *s) {
    for (size_t i = 0; i < s->n; i++) free(s->name[i]);
    s->n = 0;
}

/* The function name of a declaration that starts with CLIPNN_API: the last
 * identifier before the first '(' (the declaration may span lines, but its
 * name is on the first). */
static void add_declared(symbol_set *s, const char *line) {
    const char *paren = strchr(line, '(');
    if (!paren) return;
    const char *end = paren;
    while (end > line && isspace((unsigned char)end[-1])) end--;
    const char *start = end;
    while (start > line && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) start--;
    if (end > start) set_add(s, start, (size_t)(end - start));
}

/* A line at column 0 that declares a clipnn_ function without CLIPNN_API
 * (it would be hidden from the shared library). */
static int unmarked_declaration(const char *line) {
    static const char *const skip[] = {"CLIPNN_API", "typedef", "#", "/*", " ", "\t", "}", "struct", "enum", "\n"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strncmp(line, skip[i], strlen(skip[i]))) return 0;
    const char *name = strstr(line, "clipnn_");
    return name && strchr(name, '(') != NULL;
}

static int read_declared(symbol_set *s) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls '%.4000s'/*.h 2>/dev/null", check_repo_path("include/clipnn"));
    FILE *ls = popen(cmd, "r");
    if (!ls) return -1;
    char path[4200], line[1024];
    int files = 0;
    while (fgets(path, sizeof path, ls)) {
        path[strcspn(path, "\n")] = 0;
        FILE *f = fopen(path, "r");
        if (!f) continue;
        files++;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "CLIPNN_API ", 11))
                add_declared(s, line + 11);
            else
                CHECK_MSG(!unmarked_declaration(line), "%s: declared without CLIPNN_API: %s", path, line);
        fclose(f);
    }
    pclose(ls);
    return files;
}

static int read_exported(symbol_set *s, const char *lib) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%.1000s'", lib);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        /* "<address> <type> <name>"; functions are T, data D/B/R */
        char addr[64], type[8], name[400];
        if (sscanf(line, "%63s %7s %399s", addr, type, name) != 3) continue;
        if (strchr("TDBRVW", type[0])) set_add(s, name, strlen(name));
    }
    return pclose(p) == 0 ? 0 : -1;
}

TEST(api_exports_exactly_the_public_functions) {
    symbol_set declared = {0}, exported = {0};
    CHECK_MSG(read_declared(&declared) >= 9, "cannot read the public headers in %s",
              check_repo_path("include/clipnn"));
    const char *lib = getenv("CLIPNN_LIB");
    CHECK_MSG(lib != NULL, "CLIPNN_LIB (the shared library) is not set");
    if (lib) CHECK_OK(read_exported(&exported, lib));
    CHECK(declared.n >= 100);
    for (size_t i = 0; i < exported.n; i++)
        CHECK_MSG(set_has(&declared, exported.name[i]), "exported but not public: %s", exported.name[i]);
    for (size_t i = 0; i < declared.n; i++)
        CHECK_MSG(set_has(&exported, declared.name[i]), "public but not exported: %s", declared.name[i]);
    for (size_t i = 0; i < exported.n; i++)
        CHECK_MSG(!strncmp(exported.name[i], "clipnn_", 7), "exported without the clipnn_ prefix: %s",
                  exported.name[i]);
    set_free(&declared);
    set_free(&exported);
}
