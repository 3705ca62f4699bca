/* Progress of a long command on stderr: on a terminal a bar redrawn within
 * the epoch (samples/s, elapsed time, time left), elsewhere one line per
 * epoch, so that a run whose stderr goes to a file or a pipe shows too. */
#ifndef CLIPNN_CLI_PROGRESS_H
#define CLIPNN_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "clipnn.h"

typedef enum { CLI_PROGRESS_AUTO = 0, CLI_PROGRESS_BAR, CLI_PROGRESS_LINES, CLI_PROGRESS_NONE } cli_progress_mode;

/* "auto", "bar", "lines" or "none" into *out; otherwise a usage error
 * naming cmd (CLI_EXIT_USAGE). */
int cli_progress_parse(const char *cmd, const char *text, cli_progress_mode *out);
/* What mode shows: auto is a bar when stderr is a terminal, lines
 * otherwise; --quiet shows nothing whatever the mode. */
cli_progress_mode cli_progress_resolve(cli_progress_mode mode, int quiet);

typedef struct {
    cli_progress_mode mode; /* resolved: BAR, LINES or NONE */
    const char *cmd, *label;
    double rows_per_epoch;  /* training rows one epoch passes over, for samples/s */
    double t_start, last_draw; /* t_start: cli_progress_begin, just before the training starts */
    uint64_t first_step;    /* the first step this process took (a resumed run starts late) */
    int started, bar_shown;
} cli_progress;

/* label (may be NULL) follows "clipnn CMD:" in every line, e.g. a rule. */
void cli_progress_begin(cli_progress *p, const char *cmd, const char *label, cli_progress_mode mode,
                        size_t rows_per_epoch);
/* After every step: the bar, redrawn at most ten times a second. */
void cli_progress_step(cli_progress *p, const clipnn_step_record *r);
/* At the end of an epoch: the bar erased, the epoch's line. */
void cli_progress_epoch_done(cli_progress *p, const clipnn_epoch_record *r);
/* Erases the bar (before other output on stderr, and at the end). */
void cli_progress_clear(cli_progress *p);
/* Erases whatever bar is on the screen, for a message that does not know
 * the run (the library's warnings); the bar comes back at its next redraw. */
void cli_progress_interrupt(void);

/* What the bar shows: steps done of the run's total, in epochs of
 * per_epoch steps; seconds elapsed; the rate. */
typedef struct {
    uint64_t done, total, per_epoch;
    double elapsed, samples_per_second, seconds_left; /* seconds_left < 0: not known yet */
} cli_bar;

/* The bar as one line of at most width columns (no newline), after
 * prefix: "PREFIX epoch E/N [#####-----]  42%  1234 samples/s  0:12 < 1:40". */
void cli_progress_format(char *buf, size_t cap, size_t width, const char *prefix, const cli_bar *b);

#endif
