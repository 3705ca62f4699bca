/* Shared by attack, optimize-input and diagnose: the data in the space the
 * input is optimized in (pixels in [0, 1] for image sets, whatever scaling
 * the model was trained with), objectives from options, inputs from
 * "data:INDEX" or .npy files, images and diagnosis reports. */
#ifndef CLIPNN_CLI_INPUTOPT_COMMON_H
#define CLIPNN_CLI_INPUTOPT_COMMON_H

#include <stdio.h>

#include "cli.h"
#include "options.h"

typedef struct {
    clipnn_dataset *train, *test; /* as the model was trained (--scale) */
    clipnn_dataset *pixels;       /* the test part in [0, 1] when the model's scaling differs, else NULL */
    float *mean, *std;            /* the model sees (x - mean) / std; NULL: it sees x */
    clipnn_input_space space;
    size_t h, w;                  /* image geometry, 0 for other data */
} cli_io_data;

/* Loads --data with the model's --scale and, for image sets, the pixels in
 * [0, 1] with the map between the two. box: "LO,HI" or NULL (images
 * [0, 1], other data unbounded). n_inputs: the model's, checked. */
int cli_io_load(const char *cmd, const cli_settings *s, const char *box, size_t n_inputs, cli_io_data *d);
void cli_io_free(cli_io_data *d);
/* The test inputs in the optimization space, [n][dim]. */
const float *cli_io_test_x(const cli_io_data *d);

/* "A,B" into two numbers (a < b). */
int cli_parse_pair(const char *cmd, const char *opt, const char *text, double *a, double *b);
/* "A[,B...]" into out[cap]. */
int cli_parse_list(const char *cmd, const char *opt, const char *text, double *out, size_t cap, size_t *n);
/* "xent", "margin" or "margin:KAPPA" (and "mse", "bce" when allow_output). */
int cli_parse_io_loss(const char *cmd, const char *text, int allow_output, clipnn_loss *loss, double *kappa);

/* An input: "data:INDEX" (a test example; *label receives its class, or -1)
 * or a .npy file holding n_inputs numbers. x: [n_inputs]. */
int cli_io_input(const char *cmd, const char *spec, const cli_io_data *d, size_t n_inputs, float *x, int *label);

/* Prints a diagnosis: findings (cause, test, numbers, remedy), then the checks. */
void cli_print_diagnosis(FILE *f, const clipnn_diagnosis *d);

/* Creates DIR (and parents); 0 or the exit code with the message printed. */
int cli_make_dir(const char *cmd, const char *dir);
/* DIR/NAME as a PNG: gray image in [lo, hi], or a signed one. */
int cli_write_gray(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                   double lo, double hi);
int cli_write_signed(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                     double amp);

#endif
