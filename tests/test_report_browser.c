/* Every kind of report rendered by headless Chromium: the screenshot is not
 * blank (and shows the charts' colours), the page asks for nothing outside
 * (no URL, script or outside file in its text; no such request in
 * Chromium's network log), and a chart's legend stays inside the chart's
 * declared size. Chromium is /usr/bin/chromium (CLIPNN_CHROMIUM to choose
 * another); without it these tests fail unless CLIPNN_SKIP_BROWSER=1. */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clipnn.h"
#include "io/io.h"
#include "report_fixture.h"

static const char *chromium(void) {
    const char *path = getenv("CLIPNN_CHROMIUM");
    return path && *path ? path : "/usr/bin/chromium";
}

/* 1 when the browser tests can run; else a failure (or, when asked, a skip). */
static int browser_ready(void) {
    if (access(chromium(), X_OK) == 0) return 1;
    const char *skip = getenv("CLIPNN_SKIP_BROWSER");
    if (skip && !strcmp(skip, "1")) {
        printf("    skipped: no %s and CLIPNN_SKIP_BROWSER=1\n", chromium());
        return 0;
    }
    CHECK_MSG(0, "%s not found: install Debian's chromium (scripts/install-deps.sh does), set CLIPNN_CHROMIUM, "
                 "or set CLIPNN_SKIP_BROWSER=1 to skip the browser tests", chromium());
    return 0;
}

/* Chromium renders file `page` into png (width x height), its network log
 * into netlog; no name resolves, and its background services are off. */
static int render(const char *page, const char *png, const char *netlog, int width, int height) {
    char args[8192];
    snprintf(args, sizeof args,
             "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --disable-background-networking "
             "--disable-component-update --disable-sync --no-first-run --disable-default-apps --disable-extensions "
             "--host-resolver-rules='MAP * ~NOTFOUND' --user-data-dir=%s --log-net-log=%s --screenshot=%s "
             "--window-size=%d,%d file://%s",
             check_tmp_path("chromium-profile"), netlog, png, width, height, page);
    char program[4200];
    snprintf(program, sizeof program, "timeout 180 %s", chromium());
    const char *out;
    int rc = check_run_program(program, args, &out);
    CHECK_MSG(rc == 0 && access(png, R_OK) == 0, "chromium failed (%d) on %s: %.2000s", rc, page, out);
    return rc == 0;
}

typedef struct {
    size_t w, h, not_white, colourful;
    size_t outside; /* not white at x >= box_w or y >= box_h */
} shot_stats;

static int shot(const char *path, size_t box_w, size_t box_h, shot_stats *s) {
    png_image im;
    memset(&im, 0, sizeof im);
    memset(s, 0, sizeof *s);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return 0;
    im.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
    int ok = px && png_image_finish_read(&im, NULL, px, 0, NULL);
    s->w = im.width, s->h = im.height;
    for (size_t i = 0; ok && i < (size_t)im.width * im.height; i++) {
        const unsigned char *p = px + 3 * i;
        int lo = p[0] < p[1] ? (p[0] < p[2] ? p[0] : p[2]) : (p[1] < p[2] ? p[1] : p[2]);
        int hi = p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]);
        if (lo >= 245) continue;
        s->not_white++;
        s->colourful += hi - lo > 60;
        s->outside += i % im.width >= box_w || i / im.width >= box_h;
    }
    free(px);
    png_image_free(&im);
    return ok;
}

/* Nothing in the page's text can make a browser fetch: no URL, no script,
 * no stylesheet or frame, no src; href only to data: images. */
static void check_static(const char *page_path) {
    char *page = report_slurp(page_path);
    CHECK_MSG(page != NULL, "%s not written", page_path);
    if (!page) return;
    static const char *const banned[] = {"http://", "https://", "<script", "src=", "url(", "@import", "<link",
                                         "<iframe", "<object", "<embed", "file:"};
    for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
        CHECK_MSG(!strstr(page, banned[i]), "%s holds '%s'", page_path, banned[i]);
    for (const char *p = page; (p = strstr(p, "href=\"")); p += 6)
        CHECK_MSG(!strncmp(p + 6, "data:image/png;base64,", 22), "%s: href to '%.40s'", page_path, p + 6);
    free(page);
}

/* Chromium's own background services (update checks, accounts) show up in
 * its log whatever the flags; nothing of the page's may. */
static int chromium_own(const char *url) {
    static const char *const hosts[] = {".google.com", ".googleapis.com", ".gvt1.com"};
    const char *host = strstr(url, "://");
    if (!host || strncmp(url, "http", 4)) return 0;
    host += 3;
    size_t len = strcspn(host, "/:?");
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        size_t n = strlen(hosts[i]);
        if (len >= n && !strncmp(host + len - n, hosts[i], n)) return 1;
    }
    return 0;
}

/* The URLs of the network log other than the page itself, its data: images
 * and Chromium's own; how many. */
static size_t outside_requests(const char *netlog, const char *page_url, int report) {
    char *log = report_slurp(netlog);
    CHECK_MSG(log != NULL, "no network log %s", netlog);
    size_t n = 0;
    for (const char *p = log; log && (p = strstr(p, "\"url\":\"")); p += 7) {
        char url[512];
        size_t len = strcspn(p + 7, "\"");
        snprintf(url, sizeof url, "%.*s", (int)(len < 511 ? len : 511), p + 7);
        if (!strcmp(url, page_url) || !strncmp(url, "data:", 5) || chromium_own(url)) continue;
        if (report) CHECK_MSG(0, "%s requested %s", page_url, url);
        n++;
    }
    free(log);
    return n;
}

/* Renders dir/index.html, checks it; min_colourful: pixels of chart colours expected. */
static void check_page(const char *dir, const char *name, int height, size_t min_colourful) {
    char page[4200], png[4200], netlog[4300], url[4300];
    snprintf(page, sizeof page, "%s/index.html", dir);
    snprintf(png, sizeof png, "%s", check_tmp_path(name));
    snprintf(netlog, sizeof netlog, "%s.netlog.json", png);
    snprintf(url, sizeof url, "file://%s", page);
    check_static(page);
    if (!render(page, png, netlog, 1100, height)) return;
    shot_stats s;
    CHECK_MSG(shot(png, 1100, (size_t)height, &s), "%s: not a PNG", png);
    /* text, frames and charts cover several percent of a report */
    CHECK_MSG(s.not_white > s.w * s.h / 50, "%s: %zu of %zu pixels not white", png, s.not_white, s.w * s.h);
    CHECK_MSG(s.colourful >= min_colourful, "%s: %zu coloured pixels, want %zu", png, s.colourful, min_colourful);
    outside_requests(netlog, url, 1);
}

static void tool(const char *args) {
    const char *out;
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "clipnn %s: exit %d: %.1500s", args, rc, out);
}

TEST(report_browser_train_and_log_pages) {
    if (!browser_ready()) return;
    char args[4096];
    const char *log = check_tmp_path("b_run.csv");
    snprintf(args, sizeof args, "train --quiet --epochs 3 --log %s --log-groups --report %s", log,
             check_tmp_path("b_train"));
    tool(args);
    check_page(check_tmp_path("b_train"), "b_train.png", 4000, 5000);
    snprintf(args, sizeof args, "report %s --out %s", log, check_tmp_path("b_log"));
    tool(args);
    check_page(check_tmp_path("b_log"), "b_log.png", 3000, 5000);
}

TEST(report_browser_compare_page) {
    if (!browser_ready()) return;
    char args[4096];
    snprintf(args, sizeof args, "compare --quiet --epochs 2 --seeds 2 --rules none,norm,agc --report %s",
             check_tmp_path("b_compare"));
    tool(args);
    check_page(check_tmp_path("b_compare"), "b_compare.png", 2000, 5000);
}

TEST(report_browser_attack_page) {
    if (!browser_ready()) return;
    char args[4096];
    const char *model = check_tmp_path("b_attack.model");
    snprintf(args, sizeof args, "train --quiet --epochs 3 --save %s", model);
    tool(args);
    snprintf(args, sizeof args, "attack --model %s --method pgd-linf --eps 0,0.1,0.2 --steps 10 --n 40 --images 4 "
                                "--report %s",
             model, check_tmp_path("b_attack"));
    tool(args);
    check_page(check_tmp_path("b_attack"), "b_attack.png", 1600, 5000);
    char *page = report_slurp(check_tmp_path("b_attack/index.html"));
    CHECK(page && report_count(page, "data:image/png;base64,") == 4 * 5); /* clean + 2 x (adversarial, change) */
    free(page);
}

TEST(report_browser_lab_page) {
    if (!browser_ready()) return;
    char args[4096];
    snprintf(args, sizeof args, "lab gd-clip --quick --out %s", check_tmp_path("b_lab"));
    tool(args);
    check_page(check_tmp_path("b_lab"), "b_lab.png", 2000, 5000);
    char *page = report_slurp(check_tmp_path("b_lab/index.html"));
    CHECK(page && report_count(page, "<svg") >= 2 && strstr(page, "HOLDS"));
    free(page);
}

/* The checks above are not vacuous: a page that loads an outside image is caught by both. */
TEST(report_browser_checks_catch_outside_requests) {
    if (!browser_ready()) return;
    const char *page = check_tmp_path("b_bad.html");
    FILE *f = fopen(page, "w");
    if (!f) return;
    fputs("<!DOCTYPE html><html><body><p>text</p><img src=\"http://example.com/x.png\"></body></html>\n", f);
    fclose(f);
    char *text = report_slurp(page);
    CHECK(text && strstr(text, "http://"));
    free(text);
    const char *png = check_tmp_path("b_bad.png"), *netlog = check_tmp_path("b_bad.netlog.json");
    char url[4300];
    snprintf(url, sizeof url, "file://%s", page);
    if (render(page, png, netlog, 400, 300)) CHECK(outside_requests(netlog, url, 0) >= 1);
}

/* A chart with long legend entries of wide letters, shown with nothing
 * clipped: every pixel it paints lies inside its declared size. */
TEST(report_browser_legend_inside_declared_size) {
    if (!browser_ready()) return;
    const double x[3] = {1, 10, 100}, y[3] = {1, 0, 3};
    clipnn_svg_series s[6];
    const char *names[6] = {"WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", "MMMMMMMMMMMM mmmmmmmmmmmm",
                            "lambda sum a, a(t) = 0.1/(1+t/100)", "@@@@@@@@@@@@@@@@", "short", "%%%%%%%%%%%%%%"};
    for (int i = 0; i < 6; i++) s[i] = (clipnn_svg_series){names[i], x, y, 3, i, i % 2};
    clipnn_svg_axes ax = {"A title WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", "x", "y", 1, 1};
    const char *svg_path = check_tmp_path("b_legend.svg");
    CHECK_OK(clipnn_svg_line_plot(svg_path, &ax, s, 6));
    char *svg = report_slurp(svg_path);
    double w = 0, h = 0;
    const char *open = svg ? strstr(svg, "<svg") : NULL;
    CHECK(open && sscanf(strstr(open, "width="), "width=\"%lf\" height=\"%lf\"", &w, &h) == 2);
    const char *page = check_tmp_path("b_legend.html");
    FILE *f = open ? fopen(page, "w") : NULL;
    if (f) {
        fprintf(f, "<!DOCTYPE html><html><body style=\"margin:0\"><style>svg{overflow:visible}</style>%s</body>"
                   "</html>\n", open);
        fclose(f);
    }
    free(svg);
    const char *png = check_tmp_path("b_legend.png");
    if (!f || !render(page, png, check_tmp_path("b_legend.netlog.json"), (int)w + 300, (int)h + 300)) return;
    shot_stats st;
    CHECK(shot(png, (size_t)w, (size_t)h, &st));
    CHECK_MSG(st.outside == 0, "%zu pixels painted outside the declared %gx%g", st.outside, w, h);
    CHECK(st.not_white > 1000);
}
