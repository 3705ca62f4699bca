/* PNG images through libpng: RGB and grayscale renderings of inputs, and
 * signed perturbations in a diverging colour map with a colour bar. */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "io/io.h"

/* libpng's errors come back as the status; it prints nothing of its own. */
static void png_quiet_error(png_structp png, png_const_charp message) {
    (void)message;
    png_longjmp(png, 1);
}

/* libpng reports errors by longjmp; everything the jump can skip is
 * volatile or released after it. */
clipnn_status clipnn_png_encode(FILE *f, const char *name, const unsigned char *rgb, size_t h, size_t w) {
    if (h > 0x7fffffff || w > 0x7fffffff / 3)
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: image %zu x %zu is too large for PNG", name, h, w);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_quiet_error, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: libpng could not start", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return clipnn_fail(CLIPNN_ERR_IO, "%s: libpng failed while writing", name);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t r = 0; r < h; r++) png_write_row(png, (png_const_bytep)(rgb + r * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return CLIPNN_OK;
}

clipnn_status clipnn_png_write_rgb(const char *path, const unsigned char *rgb, size_t h, size_t w) {
    if (!path || !rgb || h == 0 || w == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "png: empty image or NULL argument");
    FILE *f;
    clipnn_status st = clipnn_output_open(path, &f);
    if (st) return st;
    st = clipnn_png_encode(f, path, rgb, h, w);
    if (st) {
        clipnn_output_close(f, NULL); /* complete or absent */
        return st;
    }
    return clipnn_output_close(f, "image");
}

static unsigned char to_byte(double v) {
    if (!(v > 0)) return 0; /* NaN shows black */
    if (v >= 1) return 255;
    return (unsigned char)lround(v * 255.0);
}

void clipnn_colour_diverging(double v, double amp, unsigned char rgb[3]) {
    double t = amp > 0 ? v / amp : 0.0;
    if (!(t == t)) t = 0;
    t = t > 1 ? 1 : t < -1 ? -1 : t;
    /* white at 0, towards red (0.70, 0.09, 0.17) or blue (0.13, 0.40, 0.67) */
    const double red[3] = {0.70, 0.09, 0.17}, blue[3] = {0.13, 0.40, 0.67};
    const double *c = t >= 0 ? red : blue;
    double a = fabs(t);
    for (int i = 0; i < 3; i++) rgb[i] = to_byte(1.0 + a * (c[i] - 1.0));
}

clipnn_status clipnn_png_render(const float *img, size_t h, size_t w, size_t zoom, chart_colour_map map, double lo,
                                double hi, unsigned char **out) {
    size_t H, W, bytes;
    if (clipnn_mul_size(h, zoom, &H) || clipnn_mul_size(w, zoom, &W) || clipnn_mul_size(H, W, &bytes) ||
        clipnn_mul_size(bytes, 3, &bytes))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "image %zu x %zu zoomed %zu times is too large", h, w, zoom);
    unsigned char *rgb = clipnn_alloc(bytes ? bytes : 1);
    if (!rgb) return clipnn_fail(CLIPNN_ERR_NOMEM, "image: out of memory");
    const double from = map == COLOUR_DIVERGING ? -hi : lo;
    for (size_t r = 0; r < H; r++)
        for (size_t c = 0; c < W; c++)
            chart_colour(map, (img[(r / zoom) * w + c / zoom] - from) / (hi - from), rgb + (r * W + c) * 3);
    *out = rgb;
    return CLIPNN_OK;
}

/* An [h][w] float image in the map, zoomed, with extra rows (bar_rows)
 * appended that draw a colour bar over [-hi, hi]. */
static clipnn_status render(const char *path, const float *img, size_t h, size_t w, size_t zoom,
                            chart_colour_map map, double lo, double hi, size_t bar_rows) {
    if (!img || h == 0 || w == 0 || zoom == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "png: empty image");
    unsigned char *rgb = NULL, *all;
    size_t W = w * zoom, H, bytes;
    clipnn_status s = clipnn_png_render(img, h, w, zoom, map, lo, hi, &rgb);
    if (s) return s;
    if (clipnn_add_size(h * zoom, bar_rows, &H) || clipnn_mul_size(H, W * 3, &bytes)) {
        clipnn_free(rgb);
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: image too large", path);
    }
    if (!(all = clipnn_alloc(bytes))) {
        clipnn_free(rgb);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(all, rgb, h * zoom * W * 3);
    for (size_t r = h * zoom; r < H; r++) /* colour bar: one gap row, then the scale */
        for (size_t c = 0; c < W; c++) {
            unsigned char *px = all + (r * W + c) * 3;
            if (r == h * zoom) px[0] = px[1] = px[2] = 255;
            else clipnn_colour_diverging(-hi + 2.0 * hi * ((double)c + 0.5) / (double)W, hi, px);
        }
    s = clipnn_png_write_rgb(path, all, H, W);
    clipnn_free(rgb);
    clipnn_free(all);
    return s;
}

clipnn_status clipnn_png_write_gray(const char *path, const float *img, size_t h, size_t w,
                                    double lo, double hi, size_t zoom) {
    if (!(hi > lo)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: gray range [%g, %g] is empty", path, lo, hi);
    return render(path, img, h, w, zoom, COLOUR_GRAY, lo, hi, 0);
}

clipnn_status clipnn_png_write_signed(const char *path, const float *img, size_t h, size_t w,
                                      double amp, size_t zoom) {
    if (!(amp > 0) || !isfinite(amp))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: colour range %g must be > 0", path, amp);
    size_t bar = zoom * 2 > 6 ? zoom * 2 : 6;
    return render(path, img, h, w, zoom, COLOUR_DIVERGING, -amp, amp, bar + 1);
}
