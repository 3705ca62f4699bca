/* A tiny test harness. TEST(name) defines and registers a test; CHECK and
 * friends record failures and keep going; the runner (tests/runner.c) runs
 * every test (or those whose name contains argv[1]) and ends with the line
 * "N passed, M failed". */
#ifndef CLIPNN_CHECK_H
#define CLIPNN_CHECK_H

#include <math.h>
#include <stdio.h>

typedef void (*check_fn)(void);
void check_register(const char *name, const char *file, check_fn fn);
void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Path of a file in the repository (CLIPNN_ROOT) or a scratch path. */
const char *check_repo_path(const char *relative);
const char *check_tmp_path(const char *name);
/* Runs the clipnn tool with the given argument string; returns its exit
 * status; stdout+stderr go to *output (static buffer) when not NULL. */
int check_run_tool(const char *args, const char **output);
/* The same for a program of examples/ (built beside the tool). */
int check_run_example(const char *name, const char *args, const char **output);
/* The same for any program; the output buffer is shared by all three. */
int check_run_program(const char *program, const char *args, const char **output);

#define TEST(name)                                                            \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void register_##name(void) {        \
        check_register(#name, __FILE__, test_##name);                        \
    }                                                                        \
    static void test_##name(void)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);      \
    } while (0)

#define CHECK_MSG(cond, ...)                                                  \
    do {                                                                      \
        if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__);             \
    } while (0)

#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int check_status_ = (int)(expr);                                      \
        if (check_status_ != 0)                                               \
            check_fail(__FILE__, __LINE__, "%s returned %d (%s)", #expr,      \
                       check_status_, clipnn_last_error());                   \
    } while (0)

/* |a - b| <= tol, reported with both values. */
#define CHECK_NEAR(a, b, tol)                                                 \
    do {                                                                      \
        double check_a_ = (double)(a), check_b_ = (double)(b),                \
               check_t_ = (double)(tol);                                      \
        if (!(fabs(check_a_ - check_b_) <= check_t_))                         \
            check_fail(__FILE__, __LINE__, "%s = %.17g vs %s = %.17g (tol %.3g)", \
                       #a, check_a_, #b, check_b_, check_t_);                 \
    } while (0)

#endif
