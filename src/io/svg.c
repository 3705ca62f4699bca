/* Standalone SVG line plots (one file per figure, readable in any browser)
 * and the in-memory pages the HTML reports are written from. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

clipnn_status io_page_open(io_page *p, const char *name) {
    p->buf = NULL;
    p->len = 0;
    p->f = open_memstream(&p->buf, &p->len);
    if (!p->f) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: cannot start the page in memory: %s", name, strerror(errno));
    return CLIPNN_OK;
}

void io_page_discard(io_page *p) {
    if (p->f) fclose(p->f);
    free(p->buf);
    p->f = NULL;
    p->buf = NULL;
}

static int fill_page(FILE *f, void *user) {
    const io_page *p = user;
    return fwrite(p->buf, 1, p->len, f) == p->len ? 0 : errno ? errno : EIO;
}

clipnn_status io_page_save(io_page *p, const char *path, const char *what) {
    int bad = ferror(p->f);
    if (fclose(p->f) != 0 || bad) {
        p->f = NULL;
        io_page_discard(p);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory while composing the %s", path, what);
    }
    p->f = NULL;
    clipnn_status st = clipnn_write_atomic(path, what, fill_page, p);
    io_page_discard(p);
    return st;
}

clipnn_status clipnn_svg_line_plot(const char *path, const clipnn_svg_axes *a, const clipnn_svg_series *s,
                                   size_t ns) {
    io_page page;
    clipnn_status st = io_page_open(&page, path);
    clipnn_chart_axes ax = {a->title, a->xlabel, a->ylabel, a->logx, a->logy, 0, 0};
    if (!st) st = chart_line(page.f, &ax, s, ns, 1);
    if (st) {
        io_page_discard(&page);
        return st;
    }
    return io_page_save(&page, path, "plot");
}
