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
/* DIR/NAME as a .npy array of the n inputs x ([n][dim]) in the data's
 * shape: [n][h][w] for images, [n][T][d] for sequences, else [n][dim]. */
int cli_write_inputs(const char *cmd, const char *dir, const char *name, const float *x, size_t n, size_t dim,
                     const cli_io_data *d);

/* "A,B" into two numbers (a < b). */
int cli_parse_pair(const char *cmd, const char *opt, const char *text, double *a, double *b);
/* "A[,B...]" into out[cap]. */
int cli_parse_list(const char *cmd, const char *opt, const char *text, double *out, size_t cap, size_t *n);
/* "xent", "margin" or "margin:KAPPA" (and "mse", "bce" when allow_output). */
int cli_parse_io_loss(const char *cmd, const char *text, int allow_output, clipnn_loss *loss, double *kappa);

/* An input: "data:INDEX" (a test example; *label receives its class, or -1)
 * or a .npy file holding n_inputs numbers. x: [n_inputs]. */
int cli_io_input(const char *cmd, const char *spec, const cli_io_data *d, size_t n_inputs, float *x, int *label);

/* Checks the settings of groups, sets --threads and loads the model at path,
 * which must have no recurrent layers (0, or the exit code with the message
 * printed). */
int cli_io_model(const char *cmd, cli_settings *s, unsigned groups, int argc, char **argv, const char *path,
                 clipnn_model **m);
/* The same for any model, recurrent layers or not (the diagnosis). */
int cli_io_model_any(const char *cmd, cli_settings *s, unsigned groups, int argc, char **argv,
                     const char *path, clipnn_model **m);

/* --data, or --data none (the model's own inputs, no box unless --box). */
int cli_io_load_or_none(const char *cmd, const cli_settings *s, const char *box, size_t n_inputs, cli_io_data *d,
                        int *have_data);

/* The objective options shared by optimize-input and diagnose. */
typedef struct {
    const char *target_class, *leave_class, *target_output, *max_unit, *loss, *box, *param;
} cli_objective_args;
/* Adds --target-class, --leave-class (when leave), --target-output,
 * --maximize-unit, --loss, --box and --param to table[*n...]. */
void cli_objective_options(cli_objective_args *a, int leave, cli_option *table, size_t *n);
/* At most one objective given (exactly one when required). */
int cli_objective_count_check(const char *cmd, const cli_objective_args *a, int required);
/* The objective of the args for model m: *obj and its target y ([k] for an
 * output, the class in y[0] otherwise). Without a class objective option the
 * objective is to leave class `label` (-1: none, an error). --target-class
 * "all" is accepted when all != NULL (*all = 1, y[0] = 0). */
int cli_objective_build(const char *cmd, const cli_objective_args *a, clipnn_model *m, int label,
                        clipnn_objective *obj, float *y, int *all);
/* --param pixel|tanh; text NULL leaves *out as it is (the caller's default). */
int cli_parse_param(const char *cmd, const char *text, clipnn_param *out);
/* The tanh parametrization's variable of x in the box of sp (finite):
 * w = atanh(0.999999 (2 (x - lo) / (hi - lo) - 1)), [n] (w may be x). */
void cli_tanh_variable(const clipnn_input_space *sp, const float *x, float *w, size_t n);

/* Prints a diagnosis: findings (cause, test, numbers, remedy), then the checks. */
void cli_print_diagnosis(FILE *f, const clipnn_diagnosis *d);

/* Opens DIR/NAME for writing (clipnn_output_open: complete or absent) and
 * writes the CSV header line; 0 or the exit code with the message printed. */
int cli_open_csv(const char *cmd, const char *dir, const char *name, const char *header, FILE **f);
/* Closes a CSV of cli_open_csv (f may be NULL): renamed into place when
 * every write succeeded, else removed; rc, or the IO exit code with the
 * message printed when rc was 0. */
int cli_close_csv(const char *cmd, FILE *f, int rc);
/* DIR/NAME as a PNG: gray image in [lo, hi], or a signed one. */
int cli_write_gray(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                   double lo, double hi);
int cli_write_signed(const char *cmd, const char *dir, const char *name, const float *x, size_t h, size_t w,
                     double amp);

#endif
