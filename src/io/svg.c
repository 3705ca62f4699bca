/* SVG line plots: one file per figure, readable in any browser. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/io.h"

enum { PLOT_WIDTH = 640, HEIGHT = 480, LEFT = 84, GAP = 16, RIGHT = 12, TOP = 44, BOTTOM = 64 };

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

typedef struct {
    double lo, hi; /* in axis units (log10 of the value on a log axis) */
    int log;
    double px0, px1; /* pixel coordinates of lo and hi */
} axis;

static int usable(double v, int log) { return isfinite(v) && (!log || v > 0); }

static double to_axis(double v, int log) { return log ? log10(v) : v; }

static double to_px(const axis *a, double v) {
    return a->px0 + (to_axis(v, a->log) - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

/* Range of the usable values of one coordinate over all series, widened to
 * whole decades on a log axis and to a non-empty interval always. */
static void fit_axis(axis *a, const clipnn_svg_series *s, size_t ns, int use_x) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].n; j++) {
            double v = use_x ? s[i].x[j] : s[i].y[j];
            if (!usable(v, a->log)) continue;
            double t = to_axis(v, a->log);
            if (t < lo) lo = t;
            if (t > hi) hi = t;
        }
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (a->log) {
        double margin = use_x ? 0 : 0.05; /* so that a line at a decade is not drawn on the frame */
        lo = floor(lo - margin);
        hi = ceil(hi + margin);
        if (hi <= lo) hi = lo + 1;
    } else {
        if (hi == lo) {
            double pad = fabs(lo) > 0 ? 0.5 * fabs(lo) : 1.0;
            lo -= pad, hi += pad;
        } else {
            double pad = 0.04 * (hi - lo);
            lo -= pad, hi += pad;
        }
    }
    a->lo = lo, a->hi = hi;
}

/* 1, 2 or 5 times a power of ten near range / 6. */
static double nice_step(double range) {
    double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void text_escaped(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
}

static void tick_label(char *buf, size_t cap, double v, int log) {
    if (log) snprintf(buf, cap, "1e%d", (int)lrint(v));
    else snprintf(buf, cap, "%.4g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* Grid lines and labels of one axis; horizontal = the x axis. */
static void draw_ticks(FILE *f, const axis *a, const axis *other, int horizontal) {
    double step = a->log ? ceil((a->hi - a->lo) / 10) : nice_step(a->hi - a->lo);
    double first = ceil(a->lo / step - 1e-9) * step;
    for (double t = first; t <= a->hi + 1e-9 * step; t += step) {
        double p = a->px0 + (t - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
        char label[32];
        tick_label(label, sizeof label, t, a->log);
        if (horizontal) {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p,
                    other->px0, p, other->px1);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", p, other->px0 + 18,
                    label);
        } else {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                    other->px0, p, other->px1, p);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", other->px0 - 6, p + 4,
                    label);
        }
    }
}

static const char *color_of(const clipnn_svg_series *s) {
    return PALETTE[(size_t)s->color % (sizeof PALETTE / sizeof *PALETTE)];
}

static void draw_series(FILE *f, const clipnn_svg_series *s, const axis *ax, const axis *ay) {
    int open = 0;
    for (size_t j = 0; j < s->n; j++) {
        if (!usable(s->x[j], ax->log) || !usable(s->y[j], ay->log)) {
            if (open) fputs("\"/>\n", f);
            open = 0;
            continue;
        }
        if (!open)
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", color_of(s),
                    s->dashed ? " stroke-dasharray=\"6,4\"" : "");
        fprintf(f, "%s%.1f,%.1f", open ? " " : "", to_px(ax, s->x[j]), to_px(ay, s->y[j]));
        open = 1;
    }
    if (open) fputs("\"/>\n", f);
}

static double legend_width(const clipnn_svg_series *s, size_t ns) {
    size_t longest = 0;
    for (size_t i = 0; i < ns; i++)
        if (s[i].name && strlen(s[i].name) > longest) longest = strlen(s[i].name);
    return 44 + 6.8 * (double)longest;
}

/* The legend sits right of the plot area, so it never hides a line. */
static void draw_legend(FILE *f, const clipnn_svg_series *s, size_t ns, double x) {
    double w = legend_width(s, ns), h = 8 + 16 * (double)ns, y = TOP;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
               "fill-opacity=\"0.85\" stroke=\"#999\"/>\n", x, y, w, h);
    for (size_t i = 0; i < ns; i++) {
        double yy = y + 14 + 16 * (double)i;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                x + 6, yy - 4, x + 30, yy - 4, color_of(&s[i]), s[i].dashed ? " stroke-dasharray=\"6,4\"" : "");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 36, yy);
        text_escaped(f, s[i].name);
        fputs("</text>\n", f);
    }
}

clipnn_status clipnn_svg_line_plot(const char *path, const clipnn_svg_axes *a,
                                   const clipnn_svg_series *s, size_t ns) {
    FILE *f;
    clipnn_status st = clipnn_output_open(path, &f);
    if (st) return st;
    const int right = LEFT + PLOT_WIDTH, WIDTH = right + GAP + (int)legend_width(s, ns) + RIGHT;
    axis ax = {.log = a->logx, .px0 = LEFT, .px1 = right};
    axis ay = {.log = a->logy, .px0 = HEIGHT - BOTTOM, .px1 = TOP};
    fit_axis(&ax, s, ns, 1);
    fit_axis(&ay, s, ns, 0);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", (LEFT + right) / 2);
    text_escaped(f, a->title);
    fputs("</text>\n", f);
    draw_ticks(f, &ax, &ay, 1);
    draw_ticks(f, &ay, &ax, 0);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", LEFT,
            TOP, PLOT_WIDTH, HEIGHT - TOP - BOTTOM);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + right) / 2, HEIGHT - 18);
    text_escaped(f, a->xlabel);
    fputs(a->logx ? " (log scale)</text>\n" : "</text>\n", f);
    fprintf(f, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">",
            (TOP + HEIGHT - BOTTOM) / 2);
    text_escaped(f, a->ylabel);
    fputs(a->logy ? " (log scale)</text>\n" : "</text>\n", f);
    fprintf(f, "<svg x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"%d %d %d %d\" overflow=\"hidden\">\n",
            LEFT, TOP, PLOT_WIDTH, HEIGHT - TOP - BOTTOM, LEFT, TOP, PLOT_WIDTH, HEIGHT - TOP - BOTTOM);
    for (size_t i = 0; i < ns; i++) draw_series(f, &s[i], &ax, &ay);
    fputs("</svg>\n", f);
    draw_legend(f, s, ns, right + GAP);
    fputs("</svg>\n", f);
    return clipnn_output_close(f, "plot");
}
