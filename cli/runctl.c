/* The run's progress, history, periodic checkpoints and stop on request. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "runctl.h"
#include "signals.h"

int cli_save_every_parse(const char *cmd, const char *text, cli_save_every *out) {
    char *end = NULL;
    unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    int epochs = end && *end == 'e';
    if (!end || end == text || v == 0 || (epochs ? end[1] != 0 : *end != 0))
        return cli_usage_error(cmd, "--save-every %s: want N steps or Ne epochs, N >= 1 (e.g. 500 or 2e)", text);
    *out = (cli_save_every){(uint64_t)v, epochs};
    return 0;
}

int cli_runctl_open(cli_runctl *c, const char *cmd, cli_progress_mode mode, size_t rows_per_epoch,
                    const char *epochs_csv, cli_save_every save_every, const char *save_path) {
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->save_every = save_every;
    c->save_path = save_path;
    cli_progress_begin(&c->progress, cmd, NULL, mode, rows_per_epoch);
    return cli_history_open(&c->history, cmd, epochs_csv);
}

void cli_runctl_step(cli_runctl *c, const clipnn_step_record *r) {
    cli_history_step(&c->history, r);
    cli_progress_step(&c->progress, r);
    c->last_step = r->step + 1 == r->total_steps;
    if (!c->save_every.epochs && c->save_every.every && (r->step + 1) % c->save_every.every == 0)
        c->save_pending = !c->last_step;
}

void cli_runctl_epoch(cli_runctl *c, const clipnn_epoch_record *r) {
    cli_history_epoch(&c->history, r);
    cli_progress_epoch_done(&c->progress, r);
    if (c->save_every.epochs && r->epoch % c->save_every.every == 0) c->save_pending = !c->last_step;
}

int cli_runctl_control(cli_runctl *c) {
    int ask = cli_stop_requested() ? CLIPNN_TRAIN_STOP : CLIPNN_TRAIN_CONTINUE;
    /* a stop saves the run anyway, once */
    if (c->save_pending && !ask) ask = CLIPNN_TRAIN_SAVE;
    c->save_pending = 0;
    return ask;
}

void cli_runctl_save(cli_runctl *c, const clipnn_model *m, const clipnn_train_state *s) {
    clipnn_status st = clipnn_checkpoint_save_info(c->save_path, m, s, c->info);
    if (!st) return;
    cli_progress_clear(&c->progress);
    int rc = cli_fail(c->cmd, st, "--save-every");
    if (!c->save_failed) c->save_failed = rc;
}

int cli_runctl_close_logs(cli_runctl *c) {
    cli_progress_clear(&c->progress);
    return cli_history_close_csv(&c->history);
}

void cli_runctl_free(cli_runctl *c) { cli_history_free(&c->history); }
