/* What the SVG charts share: text, axes and ticks, colour maps, colour bars. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/io.h"

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

const char *chart_palette(int index) {
    size_t n = sizeof PALETTE / sizeof *PALETTE;
    return PALETTE[(size_t)(index < 0 ? -index : index) % n];
}

/* Upper bounds of the advance widths of Helvetica/Arial/DejaVu Sans glyphs,
 * in ems, so that a legend box is never narrower than its text. */
double chart_text_width(const char *s, double font_px) {
    double em = 0;
    for (const unsigned char *c = (const unsigned char *)s; s && *c; c++) {
        if ((*c & 0xC0) == 0x80) continue; /* a UTF-8 continuation byte */
        if (*c >= 0x80) em += 1.0;
        else if (strchr("MWmw@%", *c)) em += 1.0;
        else if (isupper(*c)) em += 0.74;
        else if (strchr("iljtfr.,:;!|'()[] ", *c)) em += 0.36;
        else em += 0.58;
    }
    return em * font_px;
}

void chart_text_escaped(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

void chart_text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "",
            extra ? extra : "");
    chart_text_escaped(f, s);
    fputs("</text>\n", f);
}

int chart_usable(double v, int log) { return isfinite(v) && (!log || v > 0); }

double chart_to_px(const chart_axis *a, double v) {
    double t = a->log ? log10(v) : v;
    return a->px0 + (t - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

void chart_fit_axis(chart_axis *a, double lo, double hi, int log_margin) {
    if (!(lo <= hi)) lo = a->log ? 1 : 0, hi = a->log ? 10 : 1;
    if (a->log) {
        double margin = log_margin ? 0.05 : 0; /* so that a line at a decade is not drawn on the frame */
        lo = floor(log10(lo) - margin);
        hi = ceil(log10(hi) + margin);
        if (hi <= lo) hi = lo + 1;
    } else if (hi == lo) {
        double half = fabs(lo) > 0 ? 0.5 * fabs(lo) : 1.0;
        lo -= half, hi += half;
    } else {
        double d = 0.04 * (hi - lo);
        lo -= d, hi += d;
    }
    a->lo = lo, a->hi = hi;
}

/* 1, 2 or 5 times a power of ten near range / 6. */
static double nice_step(double range) {
    double raw = range / 6, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void tick_label(char *buf, size_t cap, double v, int log) {
    if (log) snprintf(buf, cap, "1e%d", (int)lrint(v));
    else snprintf(buf, cap, "%.6g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* Grid lines and labels of one axis; horizontal = the x axis. */
void chart_draw_ticks(FILE *f, const chart_axis *a, const chart_axis *other, int horizontal) {
    double step = a->log ? ceil((a->hi - a->lo) / 10) : nice_step(a->hi - a->lo);
    if (a->integer && step < 1) step = 1;
    double first = ceil(a->lo / step - 1e-9) * step;
    for (double t = first; t <= a->hi + 1e-9 * step; t += step) {
        double p = a->px0 + (t - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
        char label[32];
        tick_label(label, sizeof label, t, a->log);
        if (horizontal) {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p,
                    other->px0, p, other->px1);
            chart_text(f, p, other->px0 + 18, "middle", NULL, label);
        } else {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                    other->px0, p, other->px1, p);
            chart_text(f, other->px0 - 6, p + 4, "end", NULL, label);
        }
    }
}

void chart_svg_open(FILE *f, double width, double height, int standalone) {
    if (standalone) fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f, "<svg%s width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
               "font-size=\"%d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            standalone ? " xmlns=\"http://www.w3.org/2000/svg\"" : "", width, height, width, height, CHART_FONT);
}

/* Viridis at nine stops, interpolated linearly. */
static void viridis(double t, unsigned char rgb[3]) {
    static const unsigned char stops[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                              {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                              {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    double u = t * 8;
    int i = u >= 8 ? 7 : (int)u;
    double w = u - i;
    for (int k = 0; k < 3; k++) rgb[k] = (unsigned char)lround(stops[i][k] * (1 - w) + stops[i + 1][k] * w);
}

void chart_colour(chart_colour_map map, double t, unsigned char rgb[3]) {
    if (isnan(t)) t = map == COLOUR_DIVERGING ? 0.5 : 0; /* white or black: nothing there */
    t = t > 1 ? 1 : t > 0 ? t : 0;
    if (map == COLOUR_VIRIDIS) viridis(t, rgb);
    else if (map == COLOUR_DIVERGING) clipnn_colour_diverging(2 * t - 1, 1, rgb);
    else rgb[0] = rgb[1] = rgb[2] = (unsigned char)lround(t * 255);
}

/* The bar in 64 strips (no gradient element: ids could clash between the
 * charts of one page), its frame, and numbers along it. */
void chart_draw_colour_bar(FILE *f, const chart_colour_bar *b) {
    const int strips = 64;
    for (int i = 0; i < strips; i++) {
        unsigned char c[3];
        double t = (i + 0.5) / strips;
        chart_colour(b->map, b->horizontal ? t : 1 - t, c);
        double x = b->horizontal ? b->x + b->w * i / strips : b->x, y = b->horizontal ? b->y : b->y + b->h * i / strips;
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%02x%02x%02x\"/>\n", x, y,
                b->horizontal ? b->w / strips + 0.3 : b->w, b->horizontal ? b->h : b->h / strips + 0.3, c[0], c[1],
                c[2]);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", b->x,
            b->y, b->w, b->h);
    /* evenly spaced numbers, the ends included, whatever the range: five,
     * or three on a short bar */
    const int parts = (b->horizontal ? b->w : b->h) >= 150 ? 4 : 2;
    for (int i = 0; i <= parts; i++) {
        double t = b->lo + (b->hi - b->lo) * i / parts, v = b->log ? pow(10, t) : t;
        char label[32];
        snprintf(label, sizeof label, "%.3g", fabs(v) < 1e-12 * fabs(b->hi - b->lo) ? 0.0 : v);
        double p = b->horizontal ? b->x + b->w * i / parts : b->y + b->h * (parts - i) / parts;
        if (b->horizontal) chart_text(f, p, b->y + b->h + 14, "middle", "font-size=\"11\"", label);
        else chart_text(f, b->x + b->w + 4, p + 4, "start", "font-size=\"11\"", label);
    }
    if (b->label && b->horizontal) chart_text(f, b->x + b->w / 2, b->y - 4, "middle", "font-size=\"11\"", b->label);
    else if (b->label) chart_text(f, b->x, b->y - 8, "start", "font-size=\"11\"", b->label);
}
