/* A stop on request: SIGINT (Ctrl-C) and SIGTERM during a long run set a
 * flag that the run reads between its steps, so that it ends after a whole
 * step and saves what it has. The first signal also gives both signals back
 * their default action: a second one ends the tool at once. */
#ifndef CLIPNN_CLI_SIGNALS_H
#define CLIPNN_CLI_SIGNALS_H

/* The tool's exit code after a stop on request (128 + SIGINT, what a shell
 * reports for a command that Ctrl-C ended). */
#define CLI_EXIT_INTERRUPTED 130

/* Installs the handlers; returns 0, or -1 when sigaction fails. */
int cli_stop_install(void);
/* The default actions back (a stop already requested stays requested). */
void cli_stop_restore(void);
/* The signal that asked for a stop, or 0. */
int cli_stop_requested(void);
/* Its name: "SIGINT", "SIGTERM". */
const char *cli_stop_signal_name(int sig);

#endif
