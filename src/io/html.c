/* HTML reports: one self-contained page, composed in memory and written
 * atomically as DIR/index.html. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io.h"

struct clipnn_report {
    io_page page;
    clipnn_status status; /* the first failure, returned again by every later call */
};

/* The page may load nothing (no script, no URL): the policy makes the
 * browser refuse anything else, and the images are data: URLs. */
static const char HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font-family:sans-serif;margin:16px auto;max-width:1060px;padding:0 16px;color:#222;background:#fff}\n"
    "h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}\n"
    "p{margin:6px 0;line-height:1.4}figure{margin:10px 0}svg{max-width:100%;height:auto;display:block}\n"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}\n"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "</style>\n";

static clipnn_status failed(clipnn_report *r, clipnn_status st) {
    if (!r->status) r->status = st;
    return r->status;
}

clipnn_status clipnn_report_create(clipnn_report **out, const char *title) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report: NULL argument");
    *out = NULL;
    clipnn_report *r = clipnn_alloc_array(1, sizeof *r);
    if (!r) return clipnn_fail(CLIPNN_ERR_NOMEM, "report: out of memory");
    clipnn_status st = io_page_open(&r->page, "report");
    if (st) {
        clipnn_free(r);
        return st;
    }
    fputs(HEAD, r->page.f);
    fputs("<title>", r->page.f);
    chart_text_escaped(r->page.f, title);
    fputs("</title>\n</head>\n<body>\n<h1>", r->page.f);
    chart_text_escaped(r->page.f, title);
    fputs("</h1>\n", r->page.f);
    *out = r;
    return CLIPNN_OK;
}

void clipnn_report_free(clipnn_report *r) {
    if (!r) return;
    io_page_discard(&r->page);
    clipnn_free(r);
}

/* The page's stream when the report can still be written to. */
static FILE *page(clipnn_report *r) {
    if (!r || r->status) return NULL;
    if (!r->page.f) {
        failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report: already saved"));
        return NULL;
    }
    return r->page.f;
}

static clipnn_status status_of(clipnn_report *r) {
    return r ? r->status : clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report: NULL report");
}

FILE *io_report_stream(clipnn_report *r, clipnn_status *st) {
    FILE *f = page(r);
    *st = f ? CLIPNN_OK : status_of(r);
    return f;
}

clipnn_status io_report_fail(clipnn_report *r, clipnn_status st) { return failed(r, st); }

static clipnn_status element(clipnn_report *r, const char *tag, const char *text) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    fprintf(f, "<%s>", tag);
    chart_text_escaped(f, text);
    fprintf(f, "</%s>\n", tag);
    return CLIPNN_OK;
}

clipnn_status clipnn_report_heading(clipnn_report *r, const char *text) { return element(r, "h2", text); }

clipnn_status clipnn_report_text(clipnn_report *r, const char *text) { return element(r, "p", text); }

static int is_number(const char *s) {
    char *end;
    if (!s || !*s) return 0;
    strtod(s, &end);
    return end != s && (*end == 0 || *end == '%');
}

clipnn_status clipnn_report_table(clipnn_report *r, size_t rows, size_t cols, const char *const *cells) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    if (!cells && rows && cols) return failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report table: no cells"));
    fputs("<table>\n", f);
    for (size_t i = 0; i < rows; i++) {
        fputs("<tr>", f);
        for (size_t j = 0; j < cols; j++) {
            const char *c = cells[i * cols + j];
            fputs(i == 0 ? "<th>" : is_number(c) ? "<td class=\"num\">" : "<td>", f);
            chart_text_escaped(f, c);
            fputs(i == 0 ? "</th>" : "</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    return CLIPNN_OK;
}

clipnn_status clipnn_report_line_chart(clipnn_report *r, const clipnn_chart_axes *ax, const clipnn_chart_series *s,
                                       size_t n) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    if (!ax || (!s && n)) return failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report line chart: NULL argument"));
    fputs("<figure>\n", f);
    clipnn_status st = chart_line(f, ax, s, n, 0);
    fputs("</figure>\n", f);
    return st ? failed(r, st) : CLIPNN_OK;
}

clipnn_status clipnn_report_bar_chart(clipnn_report *r, const clipnn_chart_axes *ax, const clipnn_chart_bar *bars,
                                      size_t n) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    if (!ax || (!bars && n)) return failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report bar chart: NULL argument"));
    fputs("<figure>\n", f);
    chart_bars(f, ax, bars, n);
    fputs("</figure>\n", f);
    return CLIPNN_OK;
}

clipnn_status clipnn_report_heat_map(clipnn_report *r, const clipnn_heat_map *h) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    if (!h) return failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report heat map: NULL argument"));
    fputs("<figure>\n", f);
    clipnn_status st = chart_heat_map(f, h);
    fputs("</figure>\n", f);
    return st ? failed(r, st) : CLIPNN_OK;
}

/* The SVG element of the file, without the XML prolog, and without the
 * namespace declaration, which an HTML page gives its svg elements itself. */
clipnn_status clipnn_report_svg_file(clipnn_report *r, const char *path) {
    static const char ns[] = " xmlns=\"http://www.w3.org/2000/svg\"";
    FILE *f = page(r);
    if (!f) return status_of(r);
    unsigned char *buf;
    size_t len;
    clipnn_status st = clipnn_read_file(path, (size_t)64 << 20, &buf, &len);
    if (st) return failed(r, st);
    const char *svg = strstr((const char *)buf, "<svg");
    if (!svg) {
        clipnn_free(buf);
        return failed(r, clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not an SVG file", path));
    }
    fputs("<figure>\n", f);
    for (const char *p = svg, *hit; *p; p = hit + sizeof ns - 1) {
        if (!(hit = strstr(p, ns))) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(hit - p), f);
    }
    fputs("</figure>\n", f);
    clipnn_free(buf);
    return CLIPNN_OK;
}

/* dir itself may exist already; its parent must. */
static clipnn_status make_dir(const char *dir) {
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot create the report directory: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return clipnn_fail(CLIPNN_ERR_IO, "%s: exists and is not a directory", dir);
    return CLIPNN_OK;
}

clipnn_status clipnn_report_save(clipnn_report *r, const char *dir) {
    FILE *f = page(r);
    if (!f) return status_of(r);
    if (!dir) return failed(r, clipnn_fail(CLIPNN_ERR_INVALID_ARG, "report: no directory"));
    clipnn_status st = make_dir(dir);
    size_t len = strlen(dir);
    char *path = st ? NULL : clipnn_alloc(len + sizeof "/index.html");
    if (!st && !path) st = clipnn_fail(CLIPNN_ERR_NOMEM, "report: out of memory");
    if (st) return failed(r, st);
    memcpy(path, dir, len);
    memcpy(path + len, "/index.html", sizeof "/index.html");
    fputs("</body>\n</html>\n", f);
    st = io_page_save(&r->page, path, "report");
    clipnn_free(path);
    return st ? failed(r, st) : CLIPNN_OK;
}
