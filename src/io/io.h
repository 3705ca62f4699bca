/* A small SVG line-plot writer (src/io/svg.c): labelled axes, linear or log
 * scales, a legend. Private to the library. */
#ifndef CLIPNN_SVG_H
#define CLIPNN_SVG_H

#include "base/base.h"

/* clipnn_svg_series, clipnn_svg_axes and clipnn_svg_line_plot are public
 * (include/clipnn/io.h). */
#include "clipnn/io.h"

#endif
