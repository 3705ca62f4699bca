/* Files and pictures: SVG charts (chart.c, line_chart.c, heat_bar.c), the
 * standalone SVG line plot (svg.c), PNG encoding (png.c), HTML reports
 * (html.c). Private to the library. */
#ifndef CLIPNN_SVG_H
#define CLIPNN_SVG_H

#include "base/base.h"

/* clipnn_svg_series, clipnn_svg_axes and clipnn_svg_line_plot are public
 * (include/clipnn/io.h), as are the chart types. */
#include "clipnn/io.h"

/* A file composed in memory (open_memstream), then written atomically. */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} io_page;
clipnn_status io_page_open(io_page *p, const char *name);
void io_page_discard(io_page *p);
/* Closes the stream and writes its bytes to path atomically; the page is
 * released either way. */
clipnn_status io_page_save(io_page *p, const char *path, const char *what);

/* ---------------------------------------------------------- chart.c */

/* Charts are never wider than this unless a single label is (a legend
 * that does not fit beside the plot goes under it). */
enum { CHART_MAX_WIDTH = 1000, CHART_FONT = 12 };

typedef struct {
    double lo, hi;   /* in axis units (log10 of the value on a log axis) */
    int log;
    double px0, px1; /* pixel coordinates of lo and hi */
    int integer;     /* the values are whole numbers (epochs): no ticks between them */
} chart_axis;

typedef enum { COLOUR_VIRIDIS, COLOUR_GRAY, COLOUR_DIVERGING } chart_colour_map;

const char *chart_palette(int index);
/* A width in pixels that the text does not exceed at font_px in a sans-serif font. */
double chart_text_width(const char *s, double font_px);
void chart_text_escaped(FILE *f, const char *s);
/* <text ...>s</text> at (x, y) with the given anchor and extra attributes. */
void chart_text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s);
int chart_usable(double v, int log);
double chart_to_px(const chart_axis *a, double v);
/* lo..hi (in values) as the range of the axis, widened to whole decades on
 * a log axis (and a little beyond with log_margin) and padded by 4% on a
 * linear one. */
void chart_fit_axis(chart_axis *a, double lo, double hi, int log_margin);
void chart_draw_ticks(FILE *f, const chart_axis *a, const chart_axis *other, int horizontal);
/* Opens the SVG element (standalone: as a file, with the XML prolog and
 * namespace) and paints it white. */
void chart_svg_open(FILE *f, double width, double height, int standalone);
/* t in [0, 1] to a colour of the map. */
void chart_colour(chart_colour_map map, double t, unsigned char rgb[3]);
/* A colour bar for values lo..hi of the map at (x, y), w x h pixels, with
 * three or five numbers (log: lo and hi are log10 of the values, the numbers
 * the values). */
typedef struct {
    double x, y, w, h;
    int horizontal, log;
    double lo, hi;
    chart_colour_map map;
    const char *label;
} chart_colour_bar;
void chart_draw_colour_bar(FILE *f, const chart_colour_bar *b);

/* ----------------------------------------------- line_chart.c, heat_bar.c */

clipnn_status chart_line(FILE *f, const clipnn_chart_axes *ax, const clipnn_chart_series *s, size_t ns, int standalone);
void chart_bars(FILE *f, const clipnn_chart_axes *ax, const clipnn_chart_bar *bars, size_t n);
/* INVALID_ARG for missing values; heat maps allocate their pixel columns. */
clipnn_status chart_heat_map(FILE *f, const clipnn_heat_map *h);

/* ----------------------------------------------------------- html.c */

/* The report's page when it can still be written to (*st OK), else NULL
 * with *st the reason. */
FILE *io_report_stream(clipnn_report *r, clipnn_status *st);
/* Records the report's first failure; returns it. */
clipnn_status io_report_fail(clipnn_report *r, clipnn_status st);

/* ------------------------------------------------------------ png.c */

/* An RGB image [h][w][3] as a PNG into an open stream. */
clipnn_status clipnn_png_encode(FILE *f, const char *name, const unsigned char *rgb, size_t h, size_t w);
/* A float image [h][w] in the map (gray: lo..hi; diverging: -hi..hi) as
 * RGB pixels, each zoom x zoom; *rgb released with clipnn_free. */
clipnn_status clipnn_png_render(const float *img, size_t h, size_t w, size_t zoom, chart_colour_map map, double lo,
                                double hi, unsigned char **rgb);

#endif
