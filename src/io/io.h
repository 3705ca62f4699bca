/* A small SVG line-plot writer (src/io/svg.c): labelled axes, linear or log
 * scales, a legend. Private to the library. */
#ifndef CLIPNN_SVG_H
#define CLIPNN_SVG_H

#include "base/base.h"

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
clipnn_status clipnn_svg_line_plot(const char *path, const clipnn_svg_axes *ax,
                                   const clipnn_svg_series *series, size_t n_series);

#endif
