/* The clipnn command-line tool: shared declarations. Built only on the
 * public API (include/clipnn.h). */
#ifndef CLIPNN_CLI_H
#define CLIPNN_CLI_H

#include <stdio.h>

#include "clipnn.h"

/* Exit codes: what failed. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1, /* the work itself failed (e.g. non-finite under --nonfinite error) */
    CLI_EXIT_USAGE = 2,   /* bad option or option value */
    CLI_EXIT_INPUT = 3,   /* bad input file: format, truncated, checksum, shape, NaN */
    CLI_EXIT_IO = 4,      /* a file could not be opened, read or written */
    CLI_EXIT_NOMEM = 5
};

/* Map a library status to an exit code. */
int cli_exit_code(clipnn_status s);
/* Print "clipnn CMD: <what>: <clipnn_last_error()>" and return the exit code. */
int cli_fail(const char *cmd, clipnn_status s, const char *what);
/* Print "clipnn CMD: message" to stderr and return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef enum { CLI_STR, CLI_INT, CLI_SIZE, CLI_U64, CLI_DOUBLE, CLI_FLAG } cli_type;

typedef struct {
    const char *name;    /* "--lr" */
    cli_type type;
    void *dest;          /* const char **, int *, size_t *, uint64_t *, double *, int * */
    const char *metavar; /* "A0" */
    const char *help;    /* one line; the current value of *dest is shown as default */
} cli_option;

/* Parse argv[first..argc) against opts (terminated by a {NULL} entry).
 * Returns -1 when --help was printed (exit 0), CLI_EXIT_USAGE on error
 * (message printed), 0 on success. Positional arguments go to *positional
 * (may be NULL: then they are an error), up to max_positional. Every
 * command takes --help and --verbose: cli_parse installs the library's log
 * sink for cmd, which prints warnings on stderr, and information too with
 * --verbose. */
int cli_parse(const char *cmd, const char *synopsis, const cli_option *opts, int argc,
              char **argv, const char **positional, int max_positional, int *n_positional);
void cli_print_help(FILE *f, const char *cmd, const char *synopsis, const cli_option *opts);

/* --json (see main): the text goes to stderr, the JSON objects are
 * collected and printed at the end as one document. begin returns 0 or
 * an exit code; end prints the document (an error object when the command
 * failed without writing one) and returns rc. cli_json_docs is the stream
 * the objects go to while the mode is on (NULL otherwise); cli_fail and
 * cli_usage_error note their line for the error object. */
int cli_json_mode_begin(void);
int cli_json_mode_end(const char *cmd, int rc);
int cli_json_mode(void);
FILE *cli_json_docs(void);
void cli_json_doc_written(void);
void cli_note_error(const char *line);
/* stdout, and with --json the real stdout the document goes to, sent to
 * /dev/null (a process of a job other than 0 prints no results): 0, or -1
 * when it could not be done. */
int cli_stdout_to_null(void);
/* From now on the library's warnings are not printed (information still is
 * with --verbose): a process of a job other than 0, whose warnings are
 * process 0's. */
void cli_log_no_warnings(void);

/* The name of names[0..n) closest to word, as " (did you mean 'NAME'?)",
 * or "" when none is close. */
const char *cli_did_you_mean(const char *word, const char *const *names, size_t n);

/* An output directory (--out DIR, --report DIR) before any work: made
 * with its parents when missing, a directory, and a file can be made and
 * removed in it. NULL dir: nothing to check. Otherwise one line
 * "clipnn CMD: OPTION DIR: problem" and CLI_EXIT_IO. */
int cli_check_out_dir(const char *cmd, const char *option, const char *dir);
/* An output file (--save, --log, --out FILE.svg) before any work: what
 * clipnn_output_check refuses, and a directory where no file can be made.
 * NULL path: nothing to check. */
int cli_check_out_file(const char *cmd, const char *option, const char *path);

/* 1 when stderr is a terminal (progress lines are shown there). */
int cli_is_tty(void);
/* Monotonic seconds. */
double cli_now(void);

/* Subcommands: int cmd_NAME(int argc, char **argv), argv[0] = "NAME". */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_lab(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_optimize_input(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
