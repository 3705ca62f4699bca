/* The progress bar and the per-epoch progress lines. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "report.h"

/* A redraw costs a write to the terminal: ten a second look continuous. */
#define REDRAW_SECONDS 0.1

/* A bar is on the terminal's last line, whichever cli_progress drew it. */
static int bar_on_screen;

void cli_progress_interrupt(void) {
    if (!bar_on_screen) return;
    fputs("\r\033[K", stderr);
    bar_on_screen = 0;
}

int cli_progress_parse(const char *cmd, const char *text, cli_progress_mode *out) {
    static const char *const names[] = {"auto", "bar", "lines", "none"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(text, names[i])) {
            *out = (cli_progress_mode)i;
            return 0;
        }
    return cli_usage_error(cmd, "--progress %s: want auto, bar, lines or none", text);
}

cli_progress_mode cli_progress_resolve(cli_progress_mode mode, int quiet) {
    if (quiet) return CLI_PROGRESS_NONE;
    if (mode == CLI_PROGRESS_AUTO) return cli_is_tty() ? CLI_PROGRESS_BAR : CLI_PROGRESS_LINES;
    return mode;
}

void cli_progress_begin(cli_progress *p, const char *cmd, const char *label, cli_progress_mode mode,
                        size_t rows_per_epoch) {
    *p = (cli_progress){.mode = mode, .cmd = cmd, .label = label, .rows_per_epoch = (double)rows_per_epoch,
                        .t_start = cli_now()};
}

/* "m:ss", or "h:mm:ss" from an hour on. */
static void format_duration(char *buf, size_t cap, double seconds) {
    unsigned long s = seconds > 0 && seconds < 1e9 ? (unsigned long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, cap, "%lu:%02lu", s / 60, s % 60);
}

void cli_progress_format(char *buf, size_t cap, size_t width, const char *prefix, const cli_bar *b) {
    uint64_t per = b->per_epoch ? b->per_epoch : 1, done = b->done < b->total ? b->done : b->total;
    /* the epoch the next step belongs to; the last step closes the last one */
    uint64_t epoch = done < b->total ? done / per : (done ? (done - 1) / per : 0);
    uint64_t n_epochs = (b->total + per - 1) / per, in_epoch = done - epoch * per;
    uint64_t epoch_len = b->total - epoch * per < per ? b->total - epoch * per : per;
    char elapsed[32], left[32], tail[128];
    format_duration(elapsed, sizeof elapsed, b->elapsed);
    if (b->seconds_left >= 0) format_duration(left, sizeof left, b->seconds_left);
    else snprintf(left, sizeof left, "?");
    int percent = epoch_len ? (int)(100 * in_epoch / epoch_len) : 100;
    snprintf(tail, sizeof tail, "] %3d%%  %.0f samples/s  %s < %s", percent, b->samples_per_second, elapsed, left);
    int head = snprintf(buf, cap, "%s epoch %llu/%llu [", prefix, (unsigned long long)(epoch + 1),
                        (unsigned long long)n_epochs);
    if (head < 0 || (size_t)head >= cap) return;
    /* the bar takes what the text leaves of the line, 10 to 40 columns */
    size_t text = (size_t)head + strlen(tail), cells = width > text + 10 ? width - text : 10;
    if (cells > 40) cells = 40;
    size_t filled = epoch_len ? (size_t)(cells * in_epoch / epoch_len) : cells, len = (size_t)head;
    for (size_t i = 0; i < cells && len + 1 < cap; i++) buf[len++] = i < filled ? '#' : '-';
    snprintf(buf + len, cap - len, "%s", tail);
}

/* Columns of the terminal on stderr (80 when it does not say). */
static size_t terminal_width(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

static void draw_bar(cli_progress *p, const clipnn_step_record *r, double now) {
    char prefix[128], line[512];
    snprintf(prefix, sizeof prefix, "clipnn %s:%s%s", p->cmd, p->label ? " " : "", p->label ? p->label : "");
    uint64_t done = r->step + 1, taken = done - p->first_step;
    double elapsed = now - p->t_start, per_step = taken ? elapsed / (double)taken : 0;
    double rows_per_step = r->steps_per_epoch ? p->rows_per_epoch / (double)r->steps_per_epoch : 0;
    cli_bar b = {done, r->total_steps, r->steps_per_epoch, elapsed, per_step > 0 ? rows_per_step / per_step : 0,
                 per_step > 0 ? per_step * (double)(r->total_steps - done) : -1};
    size_t width = terminal_width();
    cli_progress_format(line, sizeof line, width > 1 ? width - 1 : width, prefix, &b);
    /* \r back to the line's start, \033[K erases what a longer line left */
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->bar_shown = bar_on_screen = 1;
    p->last_draw = now;
}

void cli_progress_step(cli_progress *p, const clipnn_step_record *r) {
    if (p->mode != CLI_PROGRESS_BAR) return;
    double now = cli_now();
    if (!p->started) {
        p->started = 1;
        p->first_step = r->step;
        p->last_draw = -INFINITY;
    }
    if (now - p->last_draw >= REDRAW_SECONDS) draw_bar(p, r, now);
}

void cli_progress_clear(cli_progress *p) {
    if (!p->bar_shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->bar_shown = bar_on_screen = 0;
}

void cli_progress_epoch_done(cli_progress *p, const clipnn_epoch_record *r) {
    if (p->mode == CLI_PROGRESS_NONE) return;
    cli_progress_clear(p);
    cli_progress_epoch(p->cmd, p->label, r);
    fflush(stderr);
    /* the bar comes back at the next step */
    p->last_draw = -INFINITY;
}
