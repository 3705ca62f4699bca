/* The library's one clock: the seconds that training and the lab report. */
#include <time.h>

#include "base/base.h"

double clipnn_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
