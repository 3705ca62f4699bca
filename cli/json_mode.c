/* One convention for --json on every command: stdout carries exactly one
 * JSON document. While a command runs with --json, its text output goes to
 * stderr (stdout's descriptor points there) and its JSON objects are
 * collected; at the end the one object, {"results": [...]} around several,
 * or {"error": "...", "exit": N} for a failure that wrote none, is printed
 * on the real stdout. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"

static struct {
    FILE *out;   /* the real stdout */
    FILE *docs;  /* the objects written so far, one per line */
    char *buf;
    size_t len;
    int n_docs;
} mode;

static char last_error[1024]; /* the last "clipnn CMD: ..." error line */

void cli_note_error(const char *line) {
    size_t n = strcspn(line, "\n");
    if (n >= sizeof last_error) n = sizeof last_error - 1;
    memcpy(last_error, line, n);
    last_error[n] = 0;
}

int cli_json_mode(void) { return mode.docs != NULL; }

FILE *cli_json_docs(void) { return mode.docs; }

void cli_json_doc_written(void) { mode.n_docs++; }

int cli_json_mode_begin(void) {
    fflush(stdout);
    int fd = dup(1);
    mode.out = fd >= 0 ? fdopen(fd, "w") : NULL;
    mode.docs = mode.out ? open_memstream(&mode.buf, &mode.len) : NULL;
    if (!mode.docs || dup2(2, 1) < 0) {
        if (mode.docs) fclose(mode.docs);
        if (mode.out) fclose(mode.out);
        free(mode.buf);
        memset(&mode, 0, sizeof mode);
        fprintf(stderr, "clipnn: --json: cannot set up the output\n");
        return CLI_EXIT_IO;
    }
    return 0;
}

/* The documents, one per line in buf, joined into one. */
static void print_documents(void) {
    if (mode.n_docs == 1) {
        fputs(mode.buf, mode.out);
        return;
    }
    fputs("{\"results\":[", mode.out);
    for (char *p = mode.buf, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        fprintf(mode.out, "%s%.*s", p == mode.buf ? "" : ",", (int)(nl - p), p);
    }
    fputs("]}\n", mode.out);
}

int cli_json_mode_end(const char *cmd, int rc) {
    fflush(stdout);
    fclose(mode.docs);
    mode.docs = NULL;
    if (mode.n_docs > 0) {
        print_documents();
    } else {
        char fallback[128];
        snprintf(fallback, sizeof fallback, "clipnn %s: failed with exit code %d (see stderr)", cmd, rc);
        cli_json j;
        cli_json_begin(&j, mode.out);
        if (rc) cli_json_str(&j, "error", last_error[0] ? last_error : fallback);
        cli_json_u64(&j, "exit", (uint64_t)rc);
        cli_json_end(&j);
    }
    fflush(mode.out);
    fclose(mode.out);
    free(mode.buf);
    memset(&mode, 0, sizeof mode);
    return rc;
}

int cli_stdout_to_null(void) {
    fflush(stdout);
    if (mode.out) fflush(mode.out);
    int fd = open("/dev/null", O_WRONLY);
    int ok = fd >= 0 && dup2(fd, STDOUT_FILENO) >= 0 && (!mode.out || dup2(fd, fileno(mode.out)) >= 0);
    if (fd > STDERR_FILENO) close(fd);
    return ok ? 0 : -1;
}
