/* One version everywhere: the header's numbers, CLIPNN_VERSION,
 * clipnn_version() of the linked library, `clipnn --version`, the Version
 * line of the generated clipnn.pc and the shared library's soname (MAJOR.MINOR
 * while MAJOR is 0, MAJOR after), all in the build tree the tests run from
 * (CLIPNN_BUILD). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

static const char *build_path(const char *name) {
    static char buf[4][4096];
    static int slot;
    const char *dir = getenv("CLIPNN_BUILD");
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%.2000s/%.2000s", dir ? dir : "build", name);
    return out;
}

/* The first line of f that starts with prefix, after the
 * prefix, without its newline ("" when none). */
static const char *line_after(FILE *f, const char *prefix) {
    static char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, strlen(prefix))) continue;
        line[strcspn(line, "\n")] = 0;
        return line + strlen(prefix);
    }
    return "";
}

TEST(version_agrees_everywhere) {
    char numbers[64];
    snprintf(numbers, sizeof numbers, "%d.%d.%d", CLIPNN_VERSION_MAJOR, CLIPNN_VERSION_MINOR, CLIPNN_VERSION_PATCH);
    CHECK_MSG(!strcmp(CLIPNN_VERSION, numbers), "CLIPNN_VERSION %s, numbers %s", CLIPNN_VERSION, numbers);
    CHECK_MSG(!strcmp(clipnn_version(), CLIPNN_VERSION), "library %s, header %s", clipnn_version(), CLIPNN_VERSION);

    const char *out = NULL;
    CHECK(check_run_tool("--version", &out) == 0);
    char want[256];
    snprintf(want, sizeof want, "clipnn %s (library %s, BLAS: ", CLIPNN_VERSION, CLIPNN_VERSION);
    CHECK_MSG(out && !strncmp(out, want, strlen(want)), "clipnn --version says '%.200s', want '%s...'", out ? out : "",
              want);

    FILE *pc = fopen(build_path("clipnn.pc"), "r");
    CHECK_MSG(pc != NULL, "no %s", build_path("clipnn.pc"));
    const char *pc_version = line_after(pc, "Version: ");
    CHECK_MSG(!strcmp(pc_version, CLIPNN_VERSION), "clipnn.pc Version '%s', header %s", pc_version, CLIPNN_VERSION);
    if (pc) fclose(pc);

    char soname[64], cmd[4300];
    if (CLIPNN_VERSION_MAJOR == 0)
        snprintf(soname, sizeof soname, "libclipnn.so.0.%d", CLIPNN_VERSION_MINOR);
    else
        snprintf(soname, sizeof soname, "libclipnn.so.%d", CLIPNN_VERSION_MAJOR);
    snprintf(cmd, sizeof cmd, "readelf -d %s", build_path("libclipnn.so"));
    FILE *elf = popen(cmd, "r");
    CHECK_MSG(elf != NULL, "cannot run %s", cmd);
    char line[1024], found[256] = "";
    while (elf && fgets(line, sizeof line, elf)) {
        const char *p = strstr(line, "(SONAME)");
        const char *open = p ? strchr(p, '[') : NULL, *close = open ? strchr(open, ']') : NULL;
        if (close) snprintf(found, sizeof found, "%.*s", (int)(close - open - 1), open + 1);
    }
    if (elf) pclose(elf);
    CHECK_MSG(!strcmp(found, soname), "soname '%s', want %s", found, soname);
    FILE *link = fopen(build_path(soname), "rb");
    CHECK_MSG(link != NULL, "no %s beside the library", build_path(soname));
    if (link) fclose(link);
}
