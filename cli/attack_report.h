/* The HTML page of clipnn attack --report: the images, the curve, the table. */
#ifndef CLIPNN_CLI_ATTACK_REPORT_H
#define CLIPNN_CLI_ATTACK_REPORT_H

#include "clipnn.h"

typedef struct {
    clipnn_model *m;
    const clipnn_input_space *space; /* what the model sees of an input */
    size_t h, w, dim;                /* image geometry (h = 0: not images) */
    size_t n_img;                    /* examples shown */
    const float *x, *labels;         /* the clean examples [n_img][dim], their classes */
    const float *adv;                /* [n_eps][n_img][dim] */
    size_t n_eps;
    const double *eps;
    int l2;                          /* budgets in L2 (else L-inf) */
    const clipnn_attack_result *res; /* [n_eps] the (first) method's results, for the table */
    const double *robust;            /* [n_eps] examples left unbroken by every method */
    int targeted;                    /* then "unbroken" means not sent to the target */
    const double *robust_one;        /* [n_eps] the one-step check's robust accuracy, NaN: not run */
    const char *setup;               /* one line: model, data, method */
} cli_attack_page;

/* Writes DIR/index.html; prints the failure and returns its exit code. */
int cli_attack_report(const char *cmd, const char *dir, const cli_attack_page *p);

#endif
