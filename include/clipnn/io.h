/* clipnn: Array and image files (NumPy .npy, PNG), charts and HTML reports. */
#ifndef CLIPNN_PUBLIC_IO_H
#define CLIPNN_PUBLIC_IO_H

#include <stdio.h>

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- outputs */

/* Output files are complete or absent. clipnn_output_open gives a stream
 * on a temporary file beside path (PATH.tmp.XXXXXX, the name cut to fit
 * the file-name limit), locked while it is written; clipnn_output_close
 * with a description (e.g. "image") flushes, syncs and renames it over
 * path when every write succeeded, and otherwise removes it and fails (IO)
 * with "PATH: WHAT not saved (...)", an existing file left as it was;
 * with what NULL it removes it (abandoned output). Opening removes the
 * temporary files of the same path that no live writer holds (left by a
 * killed process). clipnn_output_open_live writes path itself, so that a
 * log can be read while it grows; closing it after a failed write removes
 * it. path may be a symbolic link to an existing file: that file is
 * written, the link kept. A character device (/dev/null, /dev/stdout) is
 * written in place and never removed. A link to nothing, a directory, a
 * FIFO, a socket or a block device is refused (IO). clipnn_output_check
 * makes the checks of opening without creating anything (the link, the
 * kind of file, the name within the limits of the file system, a writable
 * directory), so that a program can refuse a bad name before its work. */
CLIPNN_API clipnn_status clipnn_output_check(const char *path);
CLIPNN_API clipnn_status clipnn_output_open(const char *path, FILE **f);
CLIPNN_API clipnn_status clipnn_output_open_live(const char *path, FILE **f);
CLIPNN_API clipnn_status clipnn_output_close(FILE *f, const char *what);

/* ------------------------------------------------------------------- files */

/* NumPy .npy, C order, 1 or 2 dimensions: written as float32
 * little-endian; read from any dtype clipnn_npy_read_nd reads, converted to
 * float. cols == 0 means a 1-D array of rows elements, on writing and on
 * reading; the data then hold rows * max(cols, 1) floats (*data from
 * clipnn_npy_read is released with free()). Writing is atomic like
 * checkpoints. Reading refuses a missing (IO), foreign or malformed
 * (FORMAT), truncated (TRUNCATED), or other-dtype, Fortran-order or >2-D
 * (UNSUPPORTED) file with a message naming it. */
CLIPNN_API clipnn_status clipnn_npy_write(const char *path, const float *data, size_t rows, size_t cols);
CLIPNN_API clipnn_status clipnn_npy_read(const char *path, float **data, size_t *rows, size_t *cols);

/* Any .npy array of 1 to CLIPNN_NPY_MAX_DIMS dimensions whose elements are
 * little-endian floats (f4, f8) or integers (i1..i8, u1..u8), converted to
 * float: shape[0..*ndim) receives its dimensions (the rest 0), *data their
 * product of floats in C order (released with free()). Refuses a file as
 * clipnn_npy_read does. */
#define CLIPNN_NPY_MAX_DIMS 3
CLIPNN_API clipnn_status clipnn_npy_read_nd(const char *path, float **data, size_t shape[CLIPNN_NPY_MAX_DIMS],
                                            size_t *ndim);
/* Writes data as a float32 array of shape[0..ndim) (1 to
 * CLIPNN_NPY_MAX_DIMS dimensions, C order), atomically like checkpoints. */
CLIPNN_API clipnn_status clipnn_npy_write_nd(const char *path, const float *data, const size_t *shape, size_t ndim);

/* ------------------------------------------------------------ images */

/* 8-bit PNG files through libpng. rgb: [h][w][3]; gray: [h][w]. */
CLIPNN_API clipnn_status clipnn_png_write_rgb(const char *path, const unsigned char *rgb, size_t h, size_t w);
/* A float image [h][w] shown in gray, lo -> black, hi -> white, each pixel
 * drawn as a zoom x zoom block. */
CLIPNN_API clipnn_status clipnn_png_write_gray(const char *path, const float *img, size_t h, size_t w,
                                    double lo, double hi, size_t zoom);
/* Diverging colour map for signed values: -amp blue, 0 white, +amp red
 * (values beyond clamp). */
CLIPNN_API void clipnn_colour_diverging(double v, double amp, unsigned char rgb[3]);
/* A perturbation [h][w] in the diverging map, zoomed, with a colour bar
 * (from -amp on the left to +amp on the right) under the image. */
CLIPNN_API clipnn_status clipnn_png_write_signed(const char *path, const float *img, size_t h, size_t w,
                                      double amp, size_t zoom);

/* ------------------------------------------------------------ charts */

/* A line of a chart: n points (x[i], y[i]). A point a log axis cannot show
 * (a value <= 0) or a non-finite one breaks the line and is marked on the
 * edge of the plot (a triangle for <= 0, a cross for NaN or infinity), not
 * dropped. A series longer than the plot is wide in pixels is summarised
 * per pixel column: a line through the mean and a band from the minimum to
 * the maximum of the column's points. */
typedef struct {
    const char *name;     /* in the legend */
    const double *x, *y;  /* [n] */
    size_t n;
    int color;            /* palette index (10 colours, then again) */
    int dashed;           /* a bound or reference drawn beside the measured series of the same colour */
} clipnn_chart_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx, logy;
    double ymin, ymax; /* the vertical range when ymin < ymax (such as 0 to 1 for fractions); else the data's */
} clipnn_chart_axes;

/* One bar of a bar chart, with an error bar from lo to hi (NaN: none) and
 * a note written above it (NULL: none). A NaN value draws no bar: the note
 * then says why. */
typedef struct {
    const char *label;
    double value, lo, hi;
    const char *note;
    int color;
} clipnn_chart_bar;

/* A heat map of values[rows][cols] (row-major), the rows named on the left,
 * column j at x[j] (NULL: j + 1) along the horizontal axis, with a colour
 * bar and its numbers. More columns than the plot has pixels are averaged
 * per pixel column. Cells with no finite value (or none > 0 with log) are
 * drawn grey. */
typedef struct {
    const char *title, *xlabel, *value_label;
    size_t rows, cols;
    const double *values;
    const char *const *row_names; /* [rows], NULL: 1, 2, ... */
    const double *x;
    int log;                      /* colour by log10 of the value */
} clipnn_heat_map;

/* A grid of float images, all h x w: rows x cols cells, cell (i, j) =
 * images[i * cols + j] (NULL: an empty cell) with its caption under it
 * (lines separated by '\n'). A column shows its images in gray from lo
 * (black) to hi (white), or signed in the diverging map of
 * clipnn_colour_diverging from -hi to hi; with bar set, a colour bar with
 * its numbers is drawn under the column. */
typedef struct {
    const char *title;
    int signed_map;
    double lo, hi;
    int bar;
} clipnn_grid_column;

typedef struct {
    const char *title;
    size_t h, w, rows, cols;
    const clipnn_grid_column *columns; /* [cols] */
    const float *const *images;        /* [rows * cols] */
    const char *const *captions;       /* [rows * cols], NULL: none */
} clipnn_image_grid;

/* ------------------------------------------------------------ HTML reports */

/* One self-contained HTML page (inline SVG and images, no script, nothing
 * fetched from elsewhere) built piece by piece and written as DIR/index.html.
 * The builders return the first failure again on every later call, so a
 * caller may check only clipnn_report_save. */
typedef struct clipnn_report clipnn_report;

CLIPNN_API clipnn_status clipnn_report_create(clipnn_report **out, const char *title);
CLIPNN_API void clipnn_report_free(clipnn_report *r);
CLIPNN_API clipnn_status clipnn_report_heading(clipnn_report *r, const char *text);
CLIPNN_API clipnn_status clipnn_report_text(clipnn_report *r, const char *text);
/* A table of rows x cols cells (row-major), the first row its header. */
CLIPNN_API clipnn_status clipnn_report_table(clipnn_report *r, size_t rows, size_t cols, const char *const *cells);
CLIPNN_API clipnn_status clipnn_report_line_chart(clipnn_report *r, const clipnn_chart_axes *ax,
                                                  const clipnn_chart_series *s, size_t n_series);
CLIPNN_API clipnn_status clipnn_report_bar_chart(clipnn_report *r, const clipnn_chart_axes *ax,
                                                 const clipnn_chart_bar *bars, size_t n_bars);
CLIPNN_API clipnn_status clipnn_report_heat_map(clipnn_report *r, const clipnn_heat_map *h);
CLIPNN_API clipnn_status clipnn_report_image_grid(clipnn_report *r, const clipnn_image_grid *g);
/* An SVG file (such as the lab's figures) copied into the page. */
CLIPNN_API clipnn_status clipnn_report_svg_file(clipnn_report *r, const char *path);
/* Creates dir when missing and writes dir/index.html atomically. */
CLIPNN_API clipnn_status clipnn_report_save(clipnn_report *r, const char *dir);

/* A line chart written as a standalone SVG file (atomically; an IO failure
 * names the file): the series of clipnn_chart_series, the axes without a
 * fixed vertical range. */
typedef clipnn_chart_series clipnn_svg_series;
typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx, logy;
} clipnn_svg_axes;
CLIPNN_API clipnn_status clipnn_svg_line_plot(const char *path, const clipnn_svg_axes *ax,
                                              const clipnn_svg_series *series, size_t n_series);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_IO_H */
