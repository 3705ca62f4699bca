/* make install into a scratch DESTDIR: the tool runs from there without
 * LD_LIBRARY_PATH, the README's C example compiles with pkg-config against
 * the installed files and runs; make uninstall removes every file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

/* The README's ```c block under "## Using the library from C", into path. */
static int extract_example(const char *path) {
    FILE *in = fopen(check_repo_path("README.md"), "r"), *out = fopen(path, "w");
    int state = 0, lines = 0; /* 0 before the section, 1 in it, 2 in the code */
    char line[1024];
    while (in && out && state < 3 && fgets(line, sizeof line, in)) {
        if (state == 0 && !strncmp(line, "## Using the library from C", 27)) state = 1;
        else if (state == 1 && !strncmp(line, "```c", 4)) state = 2;
        else if (state == 2 && !strncmp(line, "```", 3)) state = 3;
        else if (state == 2) fputs(line, out), lines++;
    }
    if (in) fclose(in);
    if (out) fclose(out);
    return state == 3 ? lines : -1;
}

static int count_files(const char *dir) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "find %s -type f -o -type l | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

TEST(install_tool_example_and_uninstall) {
    const char *root = check_tmp_path("destdir"), *build = getenv("CLIPNN_BUILD"), *san = getenv("CLIPNN_SANITIZE");
    char cmd[16384], prefix[4200];
    const char *out;
    snprintf(prefix, sizeof prefix, "%s/usr/local", root);
    /* -o all: install what this build tree holds, without rebuilding it */
    snprintf(cmd, sizeof cmd, "-C %s -s -o all BUILD=%s DESTDIR=%s PREFIX=/usr/local install", check_repo_path("."),
             build ? build : "build", root);
    int rc = check_run_program("make", cmd, &out);
    CHECK_MSG(rc == 0, "make install: %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "env -u LD_LIBRARY_PATH %s/bin/clipnn --version", prefix);
    rc = check_run_program(cmd, "", &out);
    CHECK_MSG(rc == 0 && strstr(out, CLIPNN_VERSION), "installed tool: %d: %s", rc, out);
    const char *src = check_tmp_path("readme_example.c"), *exe = check_tmp_path("readme_example");
    int lines = extract_example(src);
    CHECK_MSG(lines >= 20 && lines <= 40, "README example: %d lines", lines);
    /* the .pc names the final prefix; pkg-config's sysroot maps it into DESTDIR */
    snprintf(cmd, sizeof cmd,
             "-c 'PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_PATH=%s/lib/pkgconfig cc -std=c11 -Wall -Wextra "
             "-Werror %s %s -o %s $(PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags "
             "--libs clipnn)'",
             root, prefix, san ? san : "", src, exe, root, prefix);
    rc = check_run_program("sh", cmd, &out);
    CHECK_MSG(rc == 0, "compiling the README example: %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "-c 'cd %s && LD_LIBRARY_PATH=%s/lib %s'", check_tmp_path(""), prefix, exe);
    rc = check_run_program("sh", cmd, &out);
    CHECK_MSG(rc == 0 && strstr(out, "test accuracy 0.9"), "README example: %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "-C %s -s -o all BUILD=%s DESTDIR=%s PREFIX=/usr/local uninstall", check_repo_path("."),
             build ? build : "build", root);
    rc = check_run_program("make", cmd, &out);
    CHECK_MSG(rc == 0 && count_files(root) == 0, "make uninstall: %d, %d files left: %s", rc, count_files(root), out);
}
