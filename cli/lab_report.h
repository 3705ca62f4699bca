/* The index page of clipnn lab --out DIR. */
#ifndef CLIPNN_CLI_LAB_REPORT_H
#define CLIPNN_CLI_LAB_REPORT_H

#include "clipnn.h"

/* Writes DIR/index.html over the experiments that ran (res[i].n_claims >
 * 0, i over clipnn_lab_count()): verdicts and the experiment's SVG figures
 * found in DIR. Prints the failure and returns its exit code. */
int cli_lab_index(const char *cmd, const char *dir, const clipnn_lab_result *res);

#endif
