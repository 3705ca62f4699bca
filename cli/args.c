/* Option parsing and error reporting shared by every subcommand. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

int cli_exit_code(clipnn_status s) {
    switch (s) {
    case CLIPNN_OK: return CLI_EXIT_OK;
    case CLIPNN_ERR_INVALID_ARG:
    case CLIPNN_ERR_UNSUPPORTED: return CLI_EXIT_USAGE;
    case CLIPNN_ERR_IO: return CLI_EXIT_IO;
    case CLIPNN_ERR_FORMAT:
    case CLIPNN_ERR_TRUNCATED:
    case CLIPNN_ERR_CHECKSUM:
    case CLIPNN_ERR_SHAPE: return CLI_EXIT_INPUT;
    case CLIPNN_ERR_NOMEM:
    case CLIPNN_ERR_OVERFLOW: return CLI_EXIT_NOMEM;
    default: return CLI_EXIT_FAILURE;
    }
}

int cli_fail(const char *cmd, clipnn_status s, const char *what) {
    const char *detail = clipnn_last_error();
    size_t len = strlen(what);
    char line[1024];
    /* The library's message usually names the file already. */
    if (!strncmp(detail, what, len) && detail[len] == ':')
        snprintf(line, sizeof line, "clipnn %s: %s", cmd, detail);
    else
        snprintf(line, sizeof line, "clipnn %s: %s: %s", cmd, what, detail);
    fprintf(stderr, "%s\n", line);
    cli_note_error(line);
    return cli_exit_code(s);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char line[1024], text[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "clipnn %s: %s (see 'clipnn %s --help')", cmd, text, cmd);
    fprintf(stderr, "%s\n", line);
    cli_note_error(line);
    return CLI_EXIT_USAGE;
}

const char *cli_did_you_mean(const char *word, const char *const *names, size_t n) {
    static char text[160];
    const char *close = clipnn_closest_name(word, names, n);
    if (!close) return "";
    snprintf(text, sizeof text, " (did you mean '%.128s'?)", close);
    return text;
}

/* " (did you mean '--NAME'?)" for an unknown option. */
static const char *option_hint(const char *arg, size_t len, const cli_option *opts) {
    enum { MAX_NAMES = 256 };
    const char *names[MAX_NAMES + 2];
    size_t n = 0;
    for (const cli_option *o = opts; o->name && n < MAX_NAMES; o++) names[n++] = o->name;
    names[n++] = "--help";
    names[n++] = "--verbose";
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word - 1 ? len : sizeof word - 1), arg);
    return cli_did_you_mean(word, names, n);
}

static void print_default(FILE *f, const cli_option *o) {
    switch (o->type) {
    case CLI_STR: {
        const char *v = *(const char **)o->dest;
        if (v) fprintf(f, " (default: %s)", v);
        break;
    }
    case CLI_INT: fprintf(f, " (default: %d)", *(int *)o->dest); break;
    case CLI_SIZE: fprintf(f, " (default: %zu)", *(size_t *)o->dest); break;
    case CLI_U64: fprintf(f, " (default: %" PRIu64 ")", *(uint64_t *)o->dest); break;
    case CLI_DOUBLE: fprintf(f, " (default: %g)", *(double *)o->dest); break;
    case CLI_FLAG: break;
    }
}

void cli_print_help(FILE *f, const char *cmd, const char *synopsis, const cli_option *opts) {
    fprintf(f, "usage: clipnn %s %s\n\noptions:\n", cmd, synopsis);
    for (const cli_option *o = opts; o->name; o++) {
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(f, "  %-24s %s", head, o->help ? o->help : "");
        print_default(f, o);
        fputc('\n', f);
    }
    fprintf(f, "  %-24s %s\n", "--verbose", "also print the library's information (data scaling, a resumed run)");
    fprintf(f, "  %-24s %s\n", "--help", "show this help");
}

typedef struct {
    const char *cmd;
    int verbose;
} log_sink;

static log_sink sink;
static int no_warnings;

void cli_log_no_warnings(void) { no_warnings = 1; }

/* The library's messages on stderr: warnings always, information with
 * --verbose. */
static void log_to_stderr(int level, const char *message, void *user) {
    const log_sink *s = user;
    if (level >= 1 && no_warnings) return;
    if (level >= 1 || s->verbose) cli_progress_interrupt(); /* the message on a line of its own */
    if (level >= 1)
        fprintf(stderr, "clipnn %s: warning: %s\n", s->cmd, message);
    else if (s->verbose)
        fprintf(stderr, "clipnn %s: %s\n", s->cmd, message);
}

static int parse_value(const char *cmd, const cli_option *o, const char *text) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_STR: *(const char **)o->dest = text; return 0;
    case CLI_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < INT_MIN || v > INT_MAX) break;
        *(int *)o->dest = (int)v;
        return 0;
    }
    case CLI_SIZE:
    case CLI_U64: {
        if (text[0] == '-') break;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text || *end) break;
        if (o->type == CLI_SIZE) {
            if (v > SIZE_MAX) break;
            *(size_t *)o->dest = (size_t)v;
        } else {
            *(uint64_t *)o->dest = (uint64_t)v;
        }
        return 0;
    }
    case CLI_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || isnan(v)) break;
        *(double *)o->dest = v;
        return 0;
    }
    case CLI_FLAG: break;
    }
    static const char *kind[] = {"a string", "an integer", "a non-negative integer",
                                 "a non-negative integer", "a number", ""};
    cli_usage_error(cmd, "%s: expected %s, got '%s'", o->name, kind[o->type], text);
    return CLI_EXIT_USAGE;
}

int cli_parse(const char *cmd, const char *synopsis, const cli_option *opts, int argc,
              char **argv, const char **positional, int max_positional, int *n_positional) {
    int npos = 0;
    sink = (log_sink){cmd, 0};
    clipnn_set_log(log_to_stderr, &sink);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            cli_print_help(stdout, cmd, synopsis, opts);
            return -1;
        }
        if (!strcmp(arg, "--verbose")) {
            sink.verbose = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (!positional || npos >= max_positional)
                return cli_usage_error(cmd, "unexpected argument '%s'", arg);
            positional[npos++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const cli_option *match = NULL;
        for (const cli_option *o = opts; o->name; o++)
            if (strlen(o->name) == name_len && !strncmp(o->name, arg, name_len)) match = o;
        if (!match)
            return cli_usage_error(cmd, "unknown option '%.*s'%s", (int)name_len, arg,
                                   option_hint(arg, name_len, opts));
        if (match->type == CLI_FLAG) {
            if (eq) return cli_usage_error(cmd, "%s takes no value", match->name);
            *(int *)match->dest = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", match->name);
            value = argv[++i];
        }
        int rc = parse_value(cmd, match, value);
        if (rc) return rc;
    }
    if (n_positional) *n_positional = npos;
    return 0;
}

int cli_is_tty(void) { return isatty(2); }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
