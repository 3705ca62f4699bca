/* SIGINT and SIGTERM as a request to stop between steps. */
#include <signal.h>
#include <string.h>

#include "signals.h"

static volatile sig_atomic_t stop_signal;
static const int SIGNALS[2] = {SIGINT, SIGTERM};
static struct sigaction previous[2];
static int installed[2];

/* Only async-signal-safe work: the flag, and sigaction to make a second
 * signal (of either kind) end the process with its default action. */
static void on_stop_signal(int sig) {
    stop_signal = sig;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int i = 0; i < 2; i++) sigaction(SIGNALS[i], &dfl, NULL);
}

int cli_stop_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* restart the system calls a signal interrupts (writes of the logs) */
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 2; i++) {
        if (sigaction(SIGNALS[i], NULL, &previous[i])) return -1;
        /* a signal the tool was started to ignore (nohup, a background job) stays ignored */
        if (previous[i].sa_handler == SIG_IGN) continue;
        if (sigaction(SIGNALS[i], &sa, NULL)) return -1;
        installed[i] = 1;
    }
    return 0;
}

void cli_stop_restore(void) {
    for (int i = 0; i < 2; i++)
        if (installed[i]) sigaction(SIGNALS[i], &previous[i], NULL), installed[i] = 0;
}

int cli_stop_requested(void) { return stop_signal; }

const char *cli_stop_signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
}
