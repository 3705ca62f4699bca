/* clipnn: Array and image files: NumPy .npy and PNG. */
#ifndef CLIPNN_PUBLIC_IO_H
#define CLIPNN_PUBLIC_IO_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* A line plot as SVG: labelled axes, linear or log scales, a legend. */
typedef struct {
    const char *name;
    const double *x, *y; /* [n]; non-finite points (and <= 0 on a log axis) break the line */
    size_t n;
    int color;  /* palette index */
    int dashed; /* a bound or reference drawn beside the measured series of the same colour */
} clipnn_svg_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int logx, logy;
} clipnn_svg_axes;

/* Writes the plot to path; IO failure names the file. */
CLIPNN_API clipnn_status clipnn_svg_line_plot(const char *path, const clipnn_svg_axes *ax,
                                              const clipnn_svg_series *series, size_t n_series);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_IO_H */
