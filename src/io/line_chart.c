/* Line charts: linear or log axes, long series summarised per pixel column
 * (mean line, min-max band), points an axis cannot show marked on the edge,
 * a legend that fits inside the declared size. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/io.h"

enum { PLOT_W = 640, PLOT_H = 372, LEFT = 84, TOP = 44, BOTTOM = 64, GAP = 16, RIGHT = 16, ROW = 16 };

static const char NOTE_BAND[] = "mean, min-max per pixel";
static const char NOTE_LEQ0[] = "value <= 0: not on the log axis";
static const char NOTE_NONFINITE[] = "value not finite";

typedef struct {
    chart_axis ax, ay;
    double width, height, legend_x, legend_y, legend_w;
    int banded, leq0, nonfinite; /* what the legend explains */
    size_t n_entries;
} layout;

typedef enum { MARK_LEQ0, MARK_NONFINITE } mark_kind;

static int banded(const clipnn_chart_series *s) { return s->n > PLOT_W; }

/* Ranges of the usable coordinates, and what the legend must explain. */
static void scan(layout *L, const clipnn_chart_series *s, size_t ns, double range[4]) {
    range[0] = range[2] = INFINITY;
    range[1] = range[3] = -INFINITY;
    L->ax.integer = !L->ax.log;
    for (size_t i = 0; i < ns; i++) {
        L->banded |= banded(&s[i]);
        for (size_t j = 0; j < s[i].n; j++) {
            double x = s[i].x[j], y = s[i].y[j];
            if (chart_usable(x, L->ax.log)) range[0] = fmin(range[0], x), range[1] = fmax(range[1], x);
            if (isfinite(x) && x != floor(x)) L->ax.integer = 0;
            if (chart_usable(y, L->ay.log)) range[2] = fmin(range[2], y), range[3] = fmax(range[3], y);
            if (chart_usable(x, L->ax.log) && chart_usable(y, L->ay.log)) continue;
            if (isfinite(x) && isfinite(y)) L->leq0 = 1;
            else L->nonfinite = 1;
        }
    }
}

static double legend_text_width(const clipnn_chart_series *s, size_t ns, const layout *L) {
    double w = 0;
    for (size_t i = 0; i < ns; i++) w = fmax(w, chart_text_width(s[i].name, CHART_FONT));
    if (L->banded) w = fmax(w, chart_text_width(NOTE_BAND, CHART_FONT));
    if (L->leq0) w = fmax(w, chart_text_width(NOTE_LEQ0, CHART_FONT));
    if (L->nonfinite) w = fmax(w, chart_text_width(NOTE_NONFINITE, CHART_FONT));
    return w;
}

/* The legend goes right of the plot when the chart stays within
 * CHART_MAX_WIDTH, under it otherwise; the chart grows to hold it. */
static void place(layout *L, const clipnn_chart_axes *a, const clipnn_chart_series *s, size_t ns) {
    L->n_entries = ns + (size_t)L->banded + (size_t)L->leq0 + (size_t)L->nonfinite;
    L->legend_w = 42 + legend_text_width(s, ns, L);
    double legend_h = L->n_entries ? 8 + ROW * (double)L->n_entries : 0;
    double base_h = TOP + PLOT_H + BOTTOM;
    L->width = LEFT + PLOT_W + RIGHT;
    L->height = base_h;
    if (L->n_entries && LEFT + PLOT_W + GAP + L->legend_w + RIGHT <= CHART_MAX_WIDTH) {
        L->legend_x = LEFT + PLOT_W + GAP;
        L->legend_y = TOP;
        L->width = L->legend_x + L->legend_w + RIGHT;
        L->height = fmax(base_h, TOP + legend_h + 8);
    } else if (L->n_entries) {
        L->legend_x = LEFT;
        L->legend_y = base_h - 6;
        L->width = fmax(L->width, LEFT + L->legend_w + RIGHT);
        L->height = base_h + legend_h;
    }
    L->width = fmax(L->width, chart_text_width(a->title, 15) + 16);
}

static void mark(FILE *f, const char *colour, double x, double y, mark_kind kind) {
    if (kind == MARK_LEQ0)
        fprintf(f, "<path d=\"M%.1f %.1fl-4 -6h8z\" fill=\"%s\"/>\n", x, y + 3, colour);
    else
        fprintf(f, "<path d=\"M%.1f %.1fl7 7m0 -7l-7 7\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", x - 3.5, y - 3.5,
                colour);
}

/* Where an unusable point is marked: its own coordinate when usable, the
 * left edge else; the top edge for NaN and +inf, the bottom for the rest. */
static mark_kind mark_point(FILE *f, const clipnn_chart_series *s, size_t j, const layout *L, double *px) {
    double x = s->x[j], y = s->y[j];
    *px = chart_usable(x, L->ax.log) ? chart_to_px(&L->ax, x) : L->ax.px0 + 5;
    double py = chart_usable(y, L->ay.log) ? chart_to_px(&L->ay, y)
                : (isnan(y) || y > 0) ? L->ay.px1 + 6 : L->ay.px0 - 6;
    mark_kind kind = isfinite(x) && isfinite(y) ? MARK_LEQ0 : MARK_NONFINITE;
    mark(f, chart_palette(s->color), *px, py, kind);
    return kind;
}

static void polyline_start(FILE *f, const clipnn_chart_series *s) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", chart_palette(s->color),
            s->dashed ? " stroke-dasharray=\"6,4\"" : "");
}

static void dot(FILE *f, const clipnn_chart_series *s, double x, double y) {
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", x, y, chart_palette(s->color));
}

/* Point by point; an unusable point ends the line and is marked (once per
 * pixel column and kind). A short series, or a point alone between
 * unusable ones, also gets a dot per point. */
static void draw_points(FILE *f, const clipnn_chart_series *s, const layout *L) {
    const int dots = s->n <= 40 && s->n > 2; /* two points make a visible line */
    int open = 0;
    long last_mark[2] = {-1, -1};
    double px = 0, py = 0;
    for (size_t j = 0; j < s->n; j++) {
        if (chart_usable(s->x[j], L->ax.log) && chart_usable(s->y[j], L->ay.log)) {
            if (!open) polyline_start(f, s);
            px = chart_to_px(&L->ax, s->x[j]), py = chart_to_px(&L->ay, s->y[j]);
            fprintf(f, "%s%.1f,%.1f", open ? " " : "", px, py);
            open++;
            continue;
        }
        if (open) fputs("\"/>\n", f);
        if (open == 1) dot(f, s, px, py);
        open = 0;
        double mx;
        long col = lround(chart_to_px(&L->ax, chart_usable(s->x[j], L->ax.log) ? s->x[j] : NAN));
        mark_kind kind = (isfinite(s->x[j]) && isfinite(s->y[j])) ? MARK_LEQ0 : MARK_NONFINITE;
        if (last_mark[kind] == col && col >= 0) continue;
        mark_point(f, s, j, L, &mx);
        last_mark[kind] = col;
    }
    if (open) fputs("\"/>\n", f);
    if (open == 1) dot(f, s, px, py);
    for (size_t j = 0; dots && j < s->n; j++)
        if (chart_usable(s->x[j], L->ax.log) && chart_usable(s->y[j], L->ay.log))
            dot(f, s, chart_to_px(&L->ax, s->x[j]), chart_to_px(&L->ay, s->y[j]));
}

/* The points of one series gathered per pixel column. */
typedef struct {
    double min[PLOT_W], max[PLOT_W], sum[PLOT_W];
    unsigned count[PLOT_W];
    unsigned char broken[PLOT_W]; /* an unusable point fell here: the line stops */
    int seg[PLOT_W];
} columns;

static void gather(FILE *f, const clipnn_chart_series *s, const layout *L, columns *c) {
    memset(c->count, 0, sizeof c->count);
    memset(c->broken, 0, sizeof c->broken);
    long last_mark[2] = {-2, -2};
    for (size_t j = 0; j < s->n; j++) {
        double x = s->x[j], y = s->y[j];
        long col = chart_usable(x, L->ax.log) ? lround(floor(chart_to_px(&L->ax, x) - LEFT)) : -1;
        col = col >= PLOT_W ? PLOT_W - 1 : col;
        if (col >= 0 && chart_usable(y, L->ay.log)) {
            if (!c->count[col] || y < c->min[col]) c->min[col] = y;
            if (!c->count[col] || y > c->max[col]) c->max[col] = y;
            c->sum[col] = (c->count[col] ? c->sum[col] : 0) + y;
            c->count[col]++;
            continue;
        }
        if (col >= 0) c->broken[col] = 1;
        mark_kind kind = isfinite(x) && isfinite(y) ? MARK_LEQ0 : MARK_NONFINITE;
        if (last_mark[kind] == col) continue;
        double px;
        mark_point(f, s, j, L, &px);
        last_mark[kind] = col;
    }
}

/* One run of columns: the band (max left to right, min back) and the mean. */
static void draw_segment(FILE *f, const clipnn_chart_series *s, const layout *L, const columns *c, int n) {
    const char *colour = chart_palette(s->color);
    fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.25\" stroke=\"none\" points=\"", colour);
    for (int k = 0; k < n; k++) {
        int col = c->seg[k];
        double y = chart_to_px(&L->ay, c->max[col]);
        fprintf(f, "%.1f,%.1f %.1f,%.1f ", (double)LEFT + col, y, (double)LEFT + col + 1, y);
    }
    for (int k = n - 1; k >= 0; k--) {
        int col = c->seg[k];
        double y = chart_to_px(&L->ay, c->min[col]);
        fprintf(f, "%.1f,%.1f %.1f,%.1f%s", (double)LEFT + col + 1, y, (double)LEFT + col, y, k ? " " : "");
    }
    fputs("\"/>\n", f);
    polyline_start(f, s);
    for (int k = 0; k < n; k++) {
        int col = c->seg[k];
        fprintf(f, "%s%.1f,%.1f", k ? " " : "", LEFT + col + 0.5, chart_to_px(&L->ay, c->sum[col] / c->count[col]));
    }
    fputs("\"/>\n", f);
}

/* Columns without points are bridged, unless an unusable point broke the line there. */
static void draw_banded(FILE *f, const clipnn_chart_series *s, const layout *L, columns *c) {
    gather(f, s, L, c);
    int n = 0;
    for (int col = 0; col < PLOT_W; col++) {
        if (c->count[col]) c->seg[n++] = col;
        if ((c->broken[col] || col == PLOT_W - 1) && n) {
            draw_segment(f, s, L, c, n);
            n = 0;
        }
    }
}

static void legend_entry(FILE *f, const layout *L, size_t i, const char *colour, int dashed, int band,
                         const char *text) {
    double x = L->legend_x, y = L->legend_y + 14 + ROW * (double)i;
    if (band)
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"24\" height=\"10\" fill=\"#888\" fill-opacity=\"0.3\"/>\n",
                x + 6, y - 9);
    if (colour)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                x + 6, y - 4, x + 30, y - 4, colour, dashed ? " stroke-dasharray=\"6,4\"" : "");
    chart_text(f, x + 36, y, "start", NULL, text);
}

static void draw_legend(FILE *f, const layout *L, const clipnn_chart_series *s, size_t ns) {
    if (!L->n_entries) return;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" stroke=\"#999\"/>\n",
            L->legend_x, L->legend_y, L->legend_w, 8 + ROW * (double)L->n_entries);
    size_t i = 0;
    for (; i < ns; i++) legend_entry(f, L, i, chart_palette(s[i].color), s[i].dashed, 0, s[i].name ? s[i].name : "");
    if (L->banded) legend_entry(f, L, i++, "#888", 0, 1, NOTE_BAND);
    double y0 = L->legend_y + 10;
    if (L->leq0) {
        mark(f, "#555", L->legend_x + 18, y0 + ROW * (double)i, MARK_LEQ0);
        legend_entry(f, L, i++, NULL, 0, 0, NOTE_LEQ0);
    }
    if (L->nonfinite) {
        mark(f, "#555", L->legend_x + 18, y0 + ROW * (double)i, MARK_NONFINITE);
        legend_entry(f, L, i++, NULL, 0, 0, NOTE_NONFINITE);
    }
}

static void draw_frame(FILE *f, const layout *L, const clipnn_chart_axes *a) {
    double title_w = chart_text_width(a->title, 15);
    if (title_w <= PLOT_W) chart_text(f, LEFT + PLOT_W / 2.0, 24, "middle", "font-size=\"15\"", a->title);
    else chart_text(f, 8, 24, "start", "font-size=\"15\"", a->title);
    chart_draw_ticks(f, &L->ax, &L->ay, 1);
    chart_draw_ticks(f, &L->ay, &L->ax, 0);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", LEFT, TOP,
            PLOT_W, PLOT_H);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", LEFT + PLOT_W / 2.0, TOP + PLOT_H + 46);
    chart_text_escaped(f, a->xlabel);
    fputs(a->logx ? " (log scale)</text>\n" : "</text>\n", f);
    fprintf(f, "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\">", TOP + PLOT_H / 2.0);
    chart_text_escaped(f, a->ylabel);
    fputs(a->logy ? " (log scale)</text>\n" : "</text>\n", f);
}

clipnn_status chart_line(FILE *f, const clipnn_chart_axes *a, const clipnn_chart_series *s, size_t ns,
                         int standalone) {
    for (size_t i = 0; i < ns; i++)
        if (s[i].n && (!s[i].x || !s[i].y))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "chart '%s': series %zu has no x or y", a->title, i);
    columns *cols = clipnn_alloc(sizeof *cols); /* 20 kB, too much for a small thread stack */
    if (!cols) return clipnn_fail(CLIPNN_ERR_NOMEM, "chart '%s': out of memory", a->title);
    layout L = {.ax = {.log = a->logx, .px0 = LEFT, .px1 = LEFT + PLOT_W},
                .ay = {.log = a->logy, .px0 = TOP + PLOT_H, .px1 = TOP}};
    double range[4];
    scan(&L, s, ns, range);
    chart_fit_axis(&L.ax, range[0], range[1], 0);
    int fixed = a->ymin < a->ymax && (!a->logy || a->ymin > 0);
    chart_fit_axis(&L.ay, fixed ? a->ymin : range[2], fixed ? a->ymax : range[3], 1);
    place(&L, a, s, ns);
    chart_svg_open(f, L.width, L.height, standalone);
    draw_frame(f, &L, a);
    fprintf(f, "<svg x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"%d %d %d %d\" overflow=\"hidden\">\n", LEFT,
            TOP, PLOT_W, PLOT_H, LEFT, TOP, PLOT_W, PLOT_H);
    for (size_t i = 0; i < ns; i++)
        if (banded(&s[i])) draw_banded(f, &s[i], &L, cols);
        else draw_points(f, &s[i], &L);
    fputs("</svg>\n", f);
    draw_legend(f, &L, s, ns);
    fputs("</svg>\n", f);
    clipnn_free(cols);
    return CLIPNN_OK;
}
