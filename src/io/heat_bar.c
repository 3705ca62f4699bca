/* Bar charts with error bars, and heat maps with a colour bar. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/io.h"

enum { PLOT_W = 640, LEFT = 84, TOP = 44, RIGHT = 24 };

/* ---------------------------------------------------------------- bars */

enum { BAR_PLOT_H = 300 };

static void bar_range(const clipnn_chart_bar *b, size_t n, double *lo, double *hi) {
    *lo = 0, *hi = 0;
    for (size_t i = 0; i < n; i++) {
        const double v[3] = {b[i].value, b[i].lo, b[i].hi};
        for (int k = 0; k < 3; k++)
            if (isfinite(v[k])) *lo = fmin(*lo, v[k]), *hi = fmax(*hi, v[k]);
    }
}

static void draw_bar(FILE *f, const clipnn_chart_bar *b, const chart_axis *ay, double cx, double w) {
    const double base = chart_to_px(ay, fmax(ay->lo, 0));
    double top = base;
    if (isfinite(b->value)) {
        top = chart_to_px(ay, b->value);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", cx - w / 2,
                fmin(top, base), w, fabs(base - top), chart_palette(b->color));
    }
    if (isfinite(b->lo) && isfinite(b->hi)) {
        double y0 = chart_to_px(ay, b->lo), y1 = chart_to_px(ay, b->hi);
        fprintf(f, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh12M%.1f %.1fh12\" stroke=\"#222\" stroke-width=\"1.5\"/>\n",
                cx, y0, y1, cx - 6, y0, cx - 6, y1);
        top = fmin(top, fmin(y0, y1));
    }
    if (b->note) chart_text(f, cx, fmin(top, base) - 6, "middle", "font-size=\"11\"", b->note);
}

/* Labels under the bars, turned when they are wider than a bar's slot. */
static double label_room(const clipnn_chart_bar *b, size_t n, double slot, int *turn) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, chart_text_width(b[i].label, CHART_FONT));
    *turn = w > slot - 4;
    return *turn ? 0.6 * w + 20 : 22;
}

void chart_bars(FILE *f, const clipnn_chart_axes *a, const clipnn_chart_bar *b, size_t n) {
    const double slot = (double)PLOT_W / (double)(n ? n : 1);
    int turn;
    const double room = label_room(b, n, slot, &turn);
    const double height = TOP + BAR_PLOT_H + room + 30;
    chart_axis ay = {.px0 = TOP + BAR_PLOT_H, .px1 = TOP + 16};
    chart_axis ax = {.lo = 0, .hi = 1, .px0 = LEFT, .px1 = LEFT + PLOT_W};
    double lo, hi;
    bar_range(b, n, &lo, &hi);
    chart_fit_axis(&ay, lo, hi, 0);
    if (lo >= 0) ay.lo = 0; /* bars stand on the frame */
    chart_svg_open(f, fmax(LEFT + PLOT_W + RIGHT, chart_text_width(a->title, 15) + 16), height, 0);
    chart_text(f, LEFT + PLOT_W / 2.0, 24, "middle", "font-size=\"15\"", a->title);
    chart_draw_ticks(f, &ay, &ax, 0);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", LEFT, TOP,
            PLOT_W, BAR_PLOT_H);
    for (size_t i = 0; i < n; i++) {
        double cx = LEFT + slot * ((double)i + 0.5), y = TOP + BAR_PLOT_H + 16;
        draw_bar(f, &b[i], &ay, cx, fmin(0.6 * slot, 60));
        if (!turn) {
            chart_text(f, cx, y, "middle", NULL, b[i].label);
            continue;
        }
        char rot[64];
        snprintf(rot, sizeof rot, "transform=\"rotate(-35 %.1f %.1f)\"", cx, y - 4);
        chart_text(f, cx + 4, y - 4, "end", rot, b[i].label);
    }
    fprintf(f, "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\">", TOP + BAR_PLOT_H / 2.0);
    chart_text_escaped(f, a->ylabel);
    fputs("</text>\n", f);
    chart_text(f, LEFT + PLOT_W / 2.0, height - 10, "middle", NULL, a->xlabel);
    fputs("</svg>\n", f);
}

/* ------------------------------------------------------------ heat map */

enum { CELL_MIN_W = 2 };

typedef struct {
    size_t cells, rows;
    double left, row_h, plot_h, lo, hi;
    double *v; /* [rows][cells], colour units; NaN: nothing to show */
    int grey;  /* some cell has nothing to show */
} heat_layout;

/* Mean (in colour units) of the usable values of data columns [c0, c1) of a row. */
static double cell_value(const clipnn_heat_map *h, size_t row, size_t c0, size_t c1) {
    double sum = 0;
    size_t n = 0;
    for (size_t c = c0; c < c1; c++) {
        double v = h->values[row * h->cols + c];
        if (!chart_usable(v, h->log)) continue;
        sum += h->log ? log10(v) : v;
        n++;
    }
    return n ? sum / (double)n : NAN;
}

static void heat_cells(const clipnn_heat_map *h, heat_layout *L) {
    L->lo = INFINITY, L->hi = -INFINITY;
    for (size_t r = 0; r < h->rows; r++)
        for (size_t k = 0; k < L->cells; k++) {
            double v = cell_value(h, r, k * h->cols / L->cells, (k + 1) * h->cols / L->cells);
            L->v[r * L->cells + k] = v;
            if (isnan(v)) L->grey = 1;
            else L->lo = fmin(L->lo, v), L->hi = fmax(L->hi, v);
        }
    if (!(L->lo <= L->hi)) L->lo = 0, L->hi = 1;
    if (L->lo == L->hi) L->lo -= 0.5, L->hi += 0.5;
}

/* One row, runs of cells of the same colour drawn as one rectangle. */
static void heat_row(FILE *f, const heat_layout *L, size_t r, double y) {
    const double cw = (double)PLOT_W / (double)L->cells;
    size_t k = 0;
    while (k < L->cells) {
        unsigned char c[3];
        double v = L->v[r * L->cells + k];
        if (isnan(v)) c[0] = c[1] = c[2] = 0xbb;
        else chart_colour(COLOUR_VIRIDIS, (v - L->lo) / (L->hi - L->lo), c);
        size_t end = k + 1;
        for (; end < L->cells; end++) {
            unsigned char d[3];
            double u = L->v[r * L->cells + end];
            if (isnan(u) != isnan(v)) break;
            if (isnan(u)) continue;
            chart_colour(COLOUR_VIRIDIS, (u - L->lo) / (L->hi - L->lo), d);
            if (memcmp(c, d, 3)) break;
        }
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%02x%02x%02x\"/>\n",
                L->left + cw * (double)k, y, cw * (double)(end - k) + 0.2, L->row_h, c[0], c[1], c[2]);
        k = end;
    }
}

static void heat_axes(FILE *f, const clipnn_heat_map *h, const heat_layout *L) {
    double x0 = h->x ? h->x[0] : 1, x1 = h->x ? h->x[h->cols - 1] : (double)h->cols;
    chart_axis ax = {.lo = x0, .hi = x1 > x0 ? x1 : x0 + 1, .px0 = L->left, .px1 = L->left + PLOT_W};
    chart_axis ay = {.px0 = TOP + L->plot_h, .px1 = TOP};
    chart_draw_ticks(f, &ax, &ay, 1);
    for (size_t r = 0; r < h->rows; r++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", r + 1);
        const char *name = h->row_names && h->row_names[r] ? h->row_names[r] : num;
        chart_text(f, L->left - 6, TOP + L->row_h * ((double)r + 0.5) + 4, "end", NULL, name);
    }
    chart_text(f, L->left + PLOT_W / 2.0, TOP + L->plot_h + 40, "middle", NULL, h->xlabel);
    if (L->grey) chart_text(f, L->left, TOP + L->plot_h + 58, "start", "font-size=\"11\"",
                            h->log ? "grey: no value > 0 and finite there" : "grey: no finite value there");
}

static double heat_left(const clipnn_heat_map *h) {
    double w = 0;
    for (size_t r = 0; h->row_names && r < h->rows; r++) w = fmax(w, chart_text_width(h->row_names[r], CHART_FONT));
    return fmax(LEFT, w + 14);
}

clipnn_status chart_heat_map(FILE *f, const clipnn_heat_map *h) {
    if (!h->values || h->rows == 0 || h->cols == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "heat map '%s': no values", h->title ? h->title : "");
    heat_layout L = {.rows = h->rows, .left = heat_left(h)};
    L.cells = h->cols < PLOT_W / CELL_MIN_W ? h->cols : PLOT_W / CELL_MIN_W;
    L.row_h = fmin(28, fmax(8, 300.0 / (double)h->rows));
    L.plot_h = L.row_h * (double)h->rows;
    if (!(L.v = clipnn_alloc_array(h->rows * L.cells, sizeof *L.v)))
        return clipnn_fail(CLIPNN_ERR_NOMEM, "heat map '%s': out of memory", h->title ? h->title : "");
    heat_cells(h, &L);
    const double bar_h = fmax(L.plot_h, 160), width = L.left + PLOT_W + 110;
    chart_svg_open(f, fmax(width, chart_text_width(h->title, 15) + 16), TOP + fmax(bar_h, L.plot_h + 64) + 8, 0);
    chart_text(f, L.left + PLOT_W / 2.0, 24, "middle", "font-size=\"15\"", h->title);
    heat_axes(f, h, &L);
    for (size_t r = 0; r < h->rows; r++) heat_row(f, &L, r, TOP + L.row_h * (double)r);
    fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%d\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", L.left, TOP,
            PLOT_W, L.plot_h);
    chart_colour_bar bar = {L.left + PLOT_W + 16, TOP, 16, bar_h, 0, h->log, L.lo, L.hi, COLOUR_VIRIDIS,
                            h->value_label};
    chart_draw_colour_bar(f, &bar);
    fputs("</svg>\n", f);
    clipnn_free(L.v);
    return CLIPNN_OK;
}
