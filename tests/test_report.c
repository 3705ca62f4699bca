/* HTML reports and SVG charts: long series summarised per pixel column,
 * points a log axis cannot show marked, legends inside the declared size,
 * heat maps, bars, image grids, failures; and the report commands on logs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "clipnn.h"
#include "io/io.h"
#include "report_fixture.h"

/* A report of one line chart saved into dir; the page's text (free()). */
static char *line_page(const char *dir, const clipnn_chart_axes *ax, const clipnn_chart_series *s, size_t n) {
    clipnn_report *r;
    CHECK_OK(clipnn_report_create(&r, "test"));
    CHECK_OK(clipnn_report_line_chart(r, ax, s, n));
    CHECK_OK(clipnn_report_save(r, dir));
    clipnn_report_free(r);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", dir);
    return report_slurp(path);
}

/* The distinct y coordinates of the first element starting with tag whose
 * points attribute follows (at most cap of them). */
static size_t distinct_y(const char *page, const char *tag, double *ys, size_t cap) {
    const char *p = strstr(page, tag);
    p = p ? strstr(p, "points=\"") : NULL;
    size_t n = 0;
    if (!p) return 0;
    for (p += 8; *p && *p != '"';) {
        double x, y;
        int used;
        if (sscanf(p, "%lf,%lf%n", &x, &y, &used) != 2) break;
        size_t k = 0;
        while (k < n && ys[k] != y) k++;
        if (k == n && n < cap) ys[n++] = y;
        p += used;
        while (*p == ' ') p++;
    }
    return n;
}

TEST(report_long_series_is_banded_per_pixel_column) {
    enum { N = 100000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (size_t i = 0; i < N; i++) x[i] = (double)i, y[i] = i % 2 ? 100.0 : 1.0;
    clipnn_chart_series s = {"alternating", x, y, N, 0, 0};
    clipnn_chart_axes ax = {"band", "step", "y", 0, 1, 0, 0};
    char *page = line_page(check_tmp_path("band"), &ax, &s, 1);
    CHECK(page != NULL);
    if (page) {
        /* drawn point by point, 100000 points would take over a megabyte */
        CHECK_MSG(strlen(page) < 100000, "page of %zu bytes", strlen(page));
        double band[4], mean[16];
        size_t nb = distinct_y(page, "<polygon", band, 4), nm = distinct_y(page, "<polyline", mean, 16);
        /* every column holds about 156 points, half 1 and half 100: the band
         * spans them, the mean is 50.5 give or take 99 / 156 */
        CHECK(nb == 2);
        CHECK(nm >= 1 && nm < 16);
        for (size_t k = 0; nb == 2 && k < nm; k++) {
            double lo = fmax(band[0], band[1]), hi = fmin(band[0], band[1]); /* pixels grow downwards */
            double slack = (log10(50.5 + 0.7) - log10(50.5)) / 2 + 0.1 / (lo - hi); /* and %.1f rounding */
            CHECK_NEAR((lo - mean[k]) / (lo - hi), log10(50.5) / 2, slack);
        }
        CHECK(strstr(page, "min-max per pixel") != NULL);
    }
    free(page);
    free(x);
    free(y);
}

TEST(report_log_axis_marks_what_it_cannot_show) {
    const double x[7] = {1, 2, 3, 4, 5, 6, 7}, y[7] = {1, 0, -1, NAN, 2, INFINITY, 3};
    clipnn_chart_series s = {"y", x, y, 7, 0, 0};
    clipnn_chart_axes logy = {"marks", "x", "y", 0, 1, 0, 0}, liny = {"marks", "x", "y", 0, 0, 0, 0};
    char *page = line_page(check_tmp_path("marks_log"), &logy, &s, 1);
    const char *triangle = "l-4 -6h8z", *cross = "l7 7m0 -7l-7 7";
    if (page) {
        /* two points <= 0 and two non-finite ones, each marked, plus one of each in the legend */
        CHECK(report_count(page, triangle) == 3);
        CHECK(report_count(page, cross) == 3);
        CHECK(strstr(page, "value &lt;= 0: not on the log axis") != NULL);
    }
    free(page);
    page = line_page(check_tmp_path("marks_lin"), &liny, &s, 1);
    if (page) {
        CHECK(report_count(page, triangle) == 0); /* 0 and -1 are on a linear axis */
        CHECK(report_count(page, cross) == 3);
    }
    free(page);
}

/* The svg element's declared size and its legend box. */
static int legend_box(const char *page, double *w, double *h, double box[4]) {
    const char *svg = strstr(page, "<svg width=");
    const char *rect = strstr(page, "fill=\"white\" stroke=\"#999\"");
    while (rect && rect > page && strncmp(rect, "<rect", 5)) rect--;
    return svg && rect && sscanf(svg, "<svg width=\"%lf\" height=\"%lf\"", w, h) == 2 &&
           sscanf(rect, "<rect x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"", &box[0], &box[1], &box[2],
                  &box[3]) == 4;
}

TEST(report_legend_fits_the_declared_size) {
    const double x[3] = {1, 2, 3}, y[3] = {1, 2, 3};
    clipnn_chart_series s[12];
    char names[12][96];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "MMWW series %d with a rather long name, a(t) = 0.1/(1+t/100)", i);
        s[i] = (clipnn_chart_series){names[i], x, y, 3, i, 0};
    }
    clipnn_chart_axes ax = {"legend", "x", "y", 0, 0, 0, 0};
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1)
            for (int i = 0; i < 12; i++) s[i].name = i % 2 ? "short" : "also short";
        char *page = line_page(check_tmp_path(variant ? "legend_short" : "legend_long"), &ax, s, 12);
        double w = 0, h = 0, box[4] = {0};
        CHECK(page && legend_box(page, &w, &h, box));
        CHECK_MSG(box[0] + box[2] <= w && box[1] + box[3] <= h, "legend %g,%g %gx%g in %gx%g", box[0], box[1],
                  box[2], box[3], w, h);
        CHECK_MSG(w <= CHART_MAX_WIDTH, "width %g", w);
        /* long names go under the plot, short ones beside it */
        CHECK(variant ? box[0] > 700 : box[0] < 100);
        free(page);
    }
}

TEST(report_heat_map_bars_and_grid) {
    enum { ROWS = 3, COLS = 2000 };
    double *v = malloc(ROWS * COLS * sizeof *v);
    for (size_t i = 0; i < ROWS * COLS; i++) v[i] = i / COLS == 1 ? NAN : 1 + (double)(i % COLS);
    const char *rows[ROWS] = {"layer 0 W", "all NaN", "layer 1 W"};
    clipnn_heat_map h = {"heat", "step", "norm", ROWS, COLS, v, rows, NULL, 1};
    clipnn_chart_bar bars[2] = {{"a", 0.5, 0.4, 0.6, "note a", 0}, {"b", NAN, NAN, NAN, "no value", 1}};
    clipnn_chart_axes bax = {"bars", "rule", "accuracy", 0, 0, 0, 0};
    const float img[16] = {0, 0.25f, 0.5f, 1, -1, 0, 1, 0.5f, 0, 0, 0, 0, 1, 1, 1, 1};
    const float *imgs[2] = {img, img};
    clipnn_grid_column cols[2] = {{"gray", 0, 0, 1, 0}, {"signed", 1, -0.5, 0.5, 1}};
    const char *caps[2] = {"true 1\npredicted 2", "change"};
    clipnn_image_grid g = {"grid", 4, 4, 1, 2, cols, imgs, caps};
    clipnn_report *r;
    CHECK_OK(clipnn_report_create(&r, "kinds"));
    CHECK_OK(clipnn_report_heat_map(r, &h));
    CHECK_OK(clipnn_report_bar_chart(r, &bax, bars, 2));
    CHECK_OK(clipnn_report_image_grid(r, &g));
    CHECK_OK(clipnn_report_save(r, check_tmp_path("kinds")));
    clipnn_report_free(r);
    char *page = report_slurp(check_tmp_path("kinds/index.html"));
    CHECK(page != NULL);
    if (page) {
        /* 2000 columns over at most 320 cells a row (runs of one colour merged) */
        CHECK_MSG(report_count(page, "<rect") < ROWS * 320 + 200, "%zu rects", report_count(page, "<rect"));
        CHECK(strstr(page, "grey: no value &gt; 0 and finite there") != NULL);
        CHECK(strstr(page, "no value") != NULL && strstr(page, "note a") != NULL);
        CHECK(report_count(page, "href=\"data:image/png;base64,iVBORw0KGgo") == 2); /* the PNG signature */
        CHECK(strstr(page, ">-0.5</text>") && strstr(page, ">0.5</text>"));          /* the colour bar's numbers */
        CHECK(strstr(page, ">predicted 2</text>") != NULL);
        CHECK(!strstr(page, "http://") && !strstr(page, "https://"));
        CHECK(!strstr(page, "<script") && !strstr(page, "src="));
    }
    free(page);
    free(v);
}

TEST(report_failures_are_kept_and_reported) {
    clipnn_report *r;
    CHECK_OK(clipnn_report_create(&r, "bad"));
    clipnn_heat_map h = {"empty", "x", "v", 2, 2, NULL, NULL, NULL, 0};
    CHECK(clipnn_report_heat_map(r, &h) == CLIPNN_ERR_INVALID_ARG);
    CHECK(clipnn_report_text(r, "later") == CLIPNN_ERR_INVALID_ARG);
    const char *dir = check_tmp_path("bad_report");
    CHECK(clipnn_report_save(r, dir) == CLIPNN_ERR_INVALID_ARG);
    char *page = report_slurp(check_tmp_path("bad_report/index.html"));
    CHECK(page == NULL);
    free(page);
    clipnn_report_free(r);
    CHECK_OK(clipnn_report_create(&r, "nowhere"));
    CHECK(clipnn_report_save(r, "/nonexistent/clipnn/report") == CLIPNN_ERR_IO);
    CHECK(strstr(clipnn_last_error(), "/nonexistent/clipnn/report") != NULL);
    clipnn_report_free(r);
    CHECK_OK(clipnn_report_create(&r, "twice"));
    CHECK_OK(clipnn_report_save(r, check_tmp_path("twice")));
    CHECK(clipnn_report_save(r, check_tmp_path("twice")) == CLIPNN_ERR_INVALID_ARG);
    clipnn_report_free(r);
}

TEST(report_svg_plot_written_whole) {
    const double x[2] = {0, 1}, y[2] = {0, 1};
    clipnn_svg_series s = {"y", x, y, 2, 0, 0};
    clipnn_svg_axes ax = {.title = "t", .xlabel = "x", .ylabel = "y"};
    CHECK_OK(clipnn_svg_line_plot(check_tmp_path("plot.svg"), &ax, &s, 1));
    char *svg = report_slurp(check_tmp_path("plot.svg"));
    CHECK(svg && strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\"") && strstr(svg, "</svg>\n"));
    free(svg);
    CHECK(clipnn_svg_line_plot("/nonexistent/clipnn/plot.svg", &ax, &s, 1) == CLIPNN_ERR_IO);
}

TEST(report_command_reads_logs) {
    char args[4096];
    const char *out;
    const char *log = check_tmp_path("rlog.csv"), *dir = check_tmp_path("rlog_report");
    const char *epochs = check_tmp_path("rlog_epochs.csv");
    snprintf(args, sizeof args, "train --quiet --epochs 2 --lr 0.5 --log %s --log-groups --log-epochs %s", log, epochs);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "report %s --epochs %s --out %s", log, epochs, dir);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    char *page = report_slurp(check_tmp_path("rlog_report/index.html"));
    CHECK(page != NULL);
    if (page) {
        CHECK(strstr(page, "Gradient norm per step") != NULL);
        CHECK(strstr(page, "threshold lambda = 1<") != NULL); /* det_bound / sum a of the log */
        CHECK(strstr(page, ">layer 1 b</text>") != NULL);      /* the groups file beside the log */
        CHECK(strstr(page, ">training accuracy</text>") != NULL); /* from the epochs file */
        CHECK(report_count(page, "<td class=\"num\">2</td>") >= 1);  /* the second epoch's row */
    }
    free(page);
    FILE *f = fopen(check_tmp_path("broken.csv"), "w");
    if (f) {
        fputs("step,lr,loss,pre_norm\n0,0.1,x,1\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "report %s --out %s", check_tmp_path("broken.csv"), dir);
    CHECK(check_run_tool(args, &out) == 3);
    CHECK(strstr(out, "broken.csv:2: a field is not a number") != NULL);
    snprintf(args, sizeof args, "report /nonexistent/run.csv --out %s", dir);
    CHECK(check_run_tool(args, &out) == 4);
    snprintf(args, sizeof args, "report %s --epochs %s --out %s --json", log, epochs, dir);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK(strstr(out, "\"epochs\":2,\"groups\":4}") != NULL);
    CHECK(check_run_tool("report", &out) == 2);
}

/* A report that fails when it is written (its directory passed the check
 * before the run: here its index.html is a directory) keeps the model. */
TEST(report_failure_keeps_the_saved_model) {
    char args[4096];
    const char *out, *model = check_tmp_path("kept.model"), *dir = check_tmp_path("kept_report");
    const char *page = check_tmp_path("kept_report/index.html");
    remove(model);
    mkdir(dir, 0777);
    mkdir(page, 0777);
    snprintf(args, sizeof args, "train --quiet --epochs 1 --save %s --report %s", model, dir);
    CHECK(check_run_tool(args, &out) == 4);
    CHECK_MSG(strstr(out, "--report") != NULL && strstr(out, "kept_report/index.html") != NULL, "%s", out);
    FILE *f = fopen(model, "rb");
    CHECK_MSG(f != NULL, "the model was not saved: %s", out);
    if (f) fclose(f);
}
