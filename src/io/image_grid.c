/* Image grids in a report: each image a PNG inside the page (a data: URL),
 * captions under the images, colour bars with numbers under the columns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

enum { CELL_IMG = 112, PAD = 12, CAPTION_LINE = 13, HEAD_H = 48, BAR_BAND = 58 };

static void base64(FILE *f, const unsigned char *b, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        fputc(digits[v >> 18 & 63], f);
        fputc(digits[v >> 12 & 63], f);
        fputc(i + 1 < n ? digits[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? digits[v & 63] : '=', f);
    }
}

/* The image, zoomed, as an <image> holding its PNG. */
static clipnn_status grid_image(FILE *f, const clipnn_image_grid *g, const clipnn_grid_column *col, const float *img,
                                size_t zoom, double x, double y) {
    unsigned char *rgb;
    chart_colour_map map = col->signed_map ? COLOUR_DIVERGING : COLOUR_GRAY;
    clipnn_status st = clipnn_png_render(img, g->h, g->w, zoom, map, col->lo, col->hi, &rgb);
    io_page png = {0};
    if (!st) st = io_page_open(&png, "image");
    if (!st) st = clipnn_png_encode(png.f, "image", rgb, g->h * zoom, g->w * zoom);
    if (!st && (fflush(png.f) != 0 || ferror(png.f))) st = clipnn_fail(CLIPNN_ERR_NOMEM, "image: out of memory");
    if (!st) {
        fprintf(f, "<image x=\"%.1f\" y=\"%.1f\" width=\"%zu\" height=\"%zu\" href=\"data:image/png;base64,", x, y,
                g->w * zoom, g->h * zoom);
        base64(f, (const unsigned char *)png.buf, png.len);
        fputs("\"/>\n", f);
        /* a frame: an image of white pixels (no change) is still seen as an image */
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%zu\" height=\"%zu\" fill=\"none\" stroke=\"#bbb\"/>\n",
                x - 0.5, y - 0.5, g->w * zoom + 1, g->h * zoom + 1);
    }
    io_page_discard(&png);
    clipnn_free(rgb);
    return st;
}

static size_t caption_lines(const char *s) {
    size_t n = s && *s ? 1 : 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

/* Width of the widest line of a caption (font 11). */
static double caption_width(const char *s) {
    double w = 0;
    char line[256];
    while (s && *s) {
        size_t len = strcspn(s, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), s);
        w = fmax(w, chart_text_width(line, 11));
        s += len + (s[len] == '\n');
    }
    return w;
}

static void draw_caption(FILE *f, const char *s, double cx, double y) {
    char line[256];
    for (size_t i = 0; s && *s; i++) {
        size_t len = strcspn(s, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), s);
        chart_text(f, cx, y + CAPTION_LINE * (double)(i + 1), "middle", "font-size=\"11\"", line);
        s += len + (s[len] == '\n');
    }
}

typedef struct {
    size_t zoom, lines;
    double cell_w, row_h, width, height;
    int bars;
} grid_layout;

static grid_layout grid_place(const clipnn_image_grid *g) {
    grid_layout L = {.zoom = g->h >= CELL_IMG || g->w >= CELL_IMG ? 1 : CELL_IMG / (g->h > g->w ? g->h : g->w)};
    double w = (double)(g->w * L.zoom);
    for (size_t j = 0; j < g->cols; j++) {
        w = fmax(w, chart_text_width(g->columns[j].title, CHART_FONT));
        L.bars |= g->columns[j].bar;
    }
    for (size_t k = 0; g->captions && k < g->rows * g->cols; k++) {
        w = fmax(w, caption_width(g->captions[k]));
        L.lines = L.lines > caption_lines(g->captions[k]) ? L.lines : caption_lines(g->captions[k]);
    }
    L.cell_w = w + PAD;
    L.row_h = (double)(g->h * L.zoom) + CAPTION_LINE * (double)L.lines + PAD;
    L.width = fmax(PAD + L.cell_w * (double)g->cols, chart_text_width(g->title, 15) + 2 * PAD);
    L.height = HEAD_H + L.row_h * (double)g->rows + (L.bars ? BAR_BAND : 0) + PAD;
    return L;
}

static void column_bar(FILE *f, const clipnn_grid_column *c, double x, double y, double w) {
    chart_colour_bar bar = {x, y, w, 12, 1, 0, c->signed_map ? -c->hi : c->lo, c->hi,
                            c->signed_map ? COLOUR_DIVERGING : COLOUR_GRAY, NULL};
    chart_draw_colour_bar(f, &bar);
}

static clipnn_status check_grid(const clipnn_image_grid *g) {
    if (!g || !g->columns || !g->images || g->h == 0 || g->w == 0 || g->rows * g->cols == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "image grid: empty or missing images");
    for (size_t j = 0; j < g->cols; j++) {
        const clipnn_grid_column *c = &g->columns[j];
        if (!(c->signed_map ? c->hi > 0 : c->hi > c->lo) || !isfinite(c->hi) || !isfinite(c->lo))
            return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "image grid: column %zu has the empty range [%g, %g]", j,
                               c->signed_map ? -c->hi : c->lo, c->hi);
    }
    return CLIPNN_OK;
}

clipnn_status clipnn_report_image_grid(clipnn_report *r, const clipnn_image_grid *g) {
    clipnn_status st;
    FILE *f = io_report_stream(r, &st);
    if (!f) return st;
    if ((st = check_grid(g))) return io_report_fail(r, st);
    const grid_layout L = grid_place(g);
    fputs("<figure>\n", f);
    chart_svg_open(f, L.width, L.height, 0);
    chart_text(f, PAD, 22, "start", "font-size=\"15\"", g->title);
    for (size_t j = 0; j < g->cols; j++)
        chart_text(f, PAD + L.cell_w * ((double)j + 0.5), HEAD_H - 8, "middle", "font-weight=\"bold\"",
                   g->columns[j].title);
    for (size_t i = 0; i < g->rows && !st; i++)
        for (size_t j = 0; j < g->cols && !st; j++) {
            const float *img = g->images[i * g->cols + j];
            double x = PAD + L.cell_w * (double)j, y = HEAD_H + L.row_h * (double)i;
            double ix = x + (L.cell_w - PAD - (double)(g->w * L.zoom)) / 2;
            if (img) st = grid_image(f, g, &g->columns[j], img, L.zoom, ix, y);
            if (g->captions) draw_caption(f, g->captions[i * g->cols + j], x + (L.cell_w - PAD) / 2,
                                          y + (double)(g->h * L.zoom));
        }
    for (size_t j = 0; j < g->cols && L.bars; j++)
        if (g->columns[j].bar)
            column_bar(f, &g->columns[j], PAD + L.cell_w * (double)j + 8,
                       HEAD_H + L.row_h * (double)g->rows + 14, L.cell_w - PAD - 16);
    fputs("</svg>\n</figure>\n", f);
    return st ? io_report_fail(r, st) : CLIPNN_OK;
}
