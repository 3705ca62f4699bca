/* Checkpoints that remember their data: the record (clipnn_data_info), its
 * DATA section, loading with recorded statistics, text class labels, and
 * the tool applying a record (eval, info, --force). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "data/data.h"

TEST(data_info_set_get_and_typed_views) {
    clipnn_data_info *info;
    CHECK_OK(clipnn_data_info_create(&info));
    CHECK_OK(clipnn_data_info_set(info, "data.spec", "digits"));
    CHECK_OK(clipnn_data_info_set(info, "data.scaling", "standardize"));
    CHECK_OK(clipnn_data_info_set(info, "data.seed", "42"));
    CHECK_OK(clipnn_data_info_set(info, "data.test_fraction", "0.25"));
    CHECK_OK(clipnn_data_info_set(info, "data.dim", "3"));
    CHECK_OK(clipnn_data_info_set(info, "data.mean", "1,2,3.5"));
    CHECK_OK(clipnn_data_info_set(info, "data.std", "0.5,0,2"));
    CHECK_OK(clipnn_data_info_set(info, "data.classes", "cat\ndog"));
    CHECK_OK(clipnn_data_info_set(info, "train.lr", "0.1"));
    CHECK(!strcmp(clipnn_data_info_spec(info), "digits"));
    clipnn_data_options o = clipnn_data_info_options(info);
    CHECK(o.seed == 42 && o.test_fraction == 0.25 && o.scaling == CLIPNN_SCALE_STANDARDIZE);
    const double *a, *b;
    CHECK(clipnn_data_info_stats(info, &a, &b) == 3);
    CHECK(a[2] == 3.5 && b[0] == 0.5 && b[1] == 0);
    CHECK(clipnn_data_info_n_classes(info) == 2 && !strcmp(clipnn_data_info_class_name(info, 1), "dog"));
    CHECK(clipnn_data_info_count(info) == 9 && !strcmp(clipnn_data_info_get(info, "train.lr"), "0.1"));
    /* bad values are refused and change nothing */
    CHECK(clipnn_data_info_set(info, "data.mean", "1,2") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_data_info_set(info, "data.mean", "1,2,nan") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_data_info_set(info, "data.scaling", "auto") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_data_info_set(info, "data.test_fraction", "1") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_data_info_set(info, "data.seed", "-1") == CLIPNN_ERR_FORMAT);
    CHECK(clipnn_data_info_stats(info, &a, NULL) == 3 && a[0] == 1 && clipnn_data_info_count(info) == 9);
    /* replacing keeps the place */
    CHECK_OK(clipnn_data_info_set(info, "data.spec", "breast-cancer"));
    const char *v;
    CHECK(!strcmp(clipnn_data_info_entry(info, 0, &v), "data.spec") && !strcmp(v, "breast-cancer"));
    CHECK(!strcmp(clipnn_data_info_spec(info), "breast-cancer"));
    clipnn_data_info_free(info);
}

TEST(data_info_encoding_round_trip_and_malformed) {
    clipnn_data_info *info, *back;
    CHECK_OK(clipnn_data_info_create(&info));
    CHECK_OK(clipnn_data_info_set(info, "data.spec", "csv:x.csv,target=label"));
    CHECK_OK(clipnn_data_info_set(info, "result.note", "a\nb"));
    unsigned char *b;
    size_t len;
    CHECK_OK(clipnn_data_info_encode(info, &b, &len));
    CHECK_OK(clipnn_data_info_decode("t", b, len, &back));
    CHECK(back && clipnn_data_info_count(back) == 2 && !strcmp(clipnn_data_info_get(back, "result.note"), "a\nb"));
    clipnn_data_info_free(back);
    /* every truncation is refused, none crashes */
    for (size_t cut = 0; cut < len; cut++) {
        back = NULL;
        CHECK_MSG(clipnn_data_info_decode("t", b, cut, &back) == CLIPNN_ERR_FORMAT && !back, "cut %zu", cut);
    }
    /* a count beyond the payload, a length beyond it */
    unsigned char forged[16] = {0xff, 0xff, 0xff, 0x7f};
    CHECK(clipnn_data_info_decode("t", forged, sizeof forged, &back) == CLIPNN_ERR_FORMAT);
    unsigned char longkey[12] = {1, 0, 0, 0, 0xf0, 0xff, 0xff, 0xff};
    CHECK(clipnn_data_info_decode("t", longkey, sizeof longkey, &back) == CLIPNN_ERR_FORMAT);
    free(b);
    clipnn_data_info_free(info);
}

static clipnn_model *small_model(size_t inputs, size_t outputs) {
    size_t widths[2] = {5, outputs};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, inputs, 2, widths, acts) == CLIPNN_OK) clipnn_model_init(m, CLIPNN_INIT_TORCH, 3);
    return m;
}

TEST(checkpoint_keeps_data_record) {
    clipnn_dataset *train, *test;
    clipnn_data_info *info, *back = NULL;
    clipnn_data_options o = clipnn_data_options_default();
    o.scaling = CLIPNN_SCALE_UNIT;
    CHECK_OK(clipnn_dataset_load_info("digits", &o, &train, &test, &info));
    clipnn_model *m = small_model(64, 10), *m2 = NULL;
    const char *path = check_tmp_path("recorded.ckpt");
    CHECK_OK(clipnn_checkpoint_save_info(path, m, NULL, info));
    CHECK_OK(clipnn_checkpoint_load_info(path, &m2, NULL, &back));
    CHECK(back && clipnn_data_info_count(back) == clipnn_data_info_count(info));
    for (size_t i = 0; back && i < clipnn_data_info_count(info); i++) {
        const char *va, *vb, *ka = clipnn_data_info_entry(info, i, &va), *kb = clipnn_data_info_entry(back, i, &vb);
        CHECK_MSG(!strcmp(ka, kb) && !strcmp(va, vb), "entry %zu: %s=%s vs %s=%s", i, ka, va, kb, vb);
    }
    clipnn_model_free(m2);
    /* readers that do not ask for the record skip the section */
    CHECK_OK(clipnn_model_load(path, &m2));
    CHECK(m2 && clipnn_model_n_params(m2) == clipnn_model_n_params(m));
    clipnn_model_free(m2);
    /* a model saved without one has none */
    CHECK_OK(clipnn_model_save(m, path));
    clipnn_data_info_free(back);
    back = info;
    CHECK_OK(clipnn_checkpoint_load_info(path, &m2, NULL, &back));
    CHECK(back == NULL);
    clipnn_model_free(m2);
    /* the recorded load gives exactly the fitted load's inputs */
    clipnn_dataset *rtrain, *rtest;
    CHECK_OK(clipnn_dataset_load_recorded(info, NULL, &rtrain, &rtest));
    CHECK(!memcmp(clipnn_dataset_x(rtest), clipnn_dataset_x(test),
                  clipnn_dataset_n(test) * clipnn_dataset_dim(test) * sizeof(float)));
    clipnn_dataset_free(rtrain);
    clipnn_dataset_free(rtest);
    clipnn_dataset_free(train);
    clipnn_dataset_free(test);
    clipnn_data_info_free(info);
    clipnn_model_free(m);
}

/* Recorded statistics are applied, not fitted again: x' = (x - mean) / std. */
TEST(recorded_statistics_are_applied) {
    clipnn_data_info *info;
    CHECK_OK(clipnn_data_info_create(&info));
    CHECK_OK(clipnn_data_info_set(info, "data.spec", "breast-cancer"));
    CHECK_OK(clipnn_data_info_set(info, "data.scaling", "standardize"));
    CHECK_OK(clipnn_data_info_set(info, "data.dim", "30"));
    char mean[30 * 8] = "", std[30 * 8] = "";
    for (int j = 0; j < 30; j++) {
        snprintf(mean + strlen(mean), 8, "%s%d", j ? "," : "", j);
        snprintf(std + strlen(std), 8, "%s%d", j ? "," : "", j % 3);
    }
    CHECK_OK(clipnn_data_info_set(info, "data.mean", mean));
    CHECK_OK(clipnn_data_info_set(info, "data.std", std));
    clipnn_data_options raw_opts = clipnn_data_info_options(info);
    raw_opts.scaling = CLIPNN_SCALE_NONE;
    clipnn_dataset *raw, *rawt, *tr, *te;
    CHECK_OK(clipnn_dataset_load("breast-cancer", &raw_opts, &raw, &rawt));
    CHECK_OK(clipnn_dataset_load_recorded(info, NULL, &tr, &te));
    const float *x = clipnn_dataset_x(rawt), *s = clipnn_dataset_x(te);
    for (size_t i = 0; i < clipnn_dataset_n(te) * 30; i++) {
        int j = (int)(i % 30);
        float want = (float)(((double)x[i] - j) / (j % 3 ? j % 3 : 1));
        CHECK_MSG(s[i] == want, "element %zu: %g vs %g", i, (double)s[i], (double)want);
    }
    /* a set of another width is refused */
    clipnn_dataset *d1, *d2;
    CHECK(clipnn_dataset_load_recorded(info, "digits", &d1, &d2) == CLIPNN_ERR_SHAPE);
    clipnn_dataset_free(raw);
    clipnn_dataset_free(rawt);
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
    clipnn_data_info_free(info);
}

static const char *write_text_csv(void) {
    const char *path = check_tmp_path("labels.csv");
    FILE *f = fopen(path, "w");
    if (!f) return path;
    fputs("width,height,kind\n", f);
    for (int i = 0; i < 60; i++) {
        const char *kind = i % 3 == 0 ? "zebra" : i % 3 == 1 ? "ant" : "\"mole\"";
        fprintf(f, "%d,%g,%s\n", i % 3 * 10 + i % 7, (i % 3) * 0.5 + 0.01 * i, kind);
    }
    fclose(f);
    return path;
}

TEST(csv_text_labels_are_classes) {
    const char *path = write_text_csv();
    clipnn_dataset *d;
    CHECK_OK(clipnn_dataset_load_csv(path, -1, -1, &d));
    CHECK(clipnn_dataset_n(d) == 60 && clipnn_dataset_dim(d) == 2 && clipnn_dataset_n_classes(d) == 3);
    /* classes in byte order of the names: ant 0, mole 1, zebra 2 */
    CHECK(clipnn_dataset_y(d)[0] == 2 && clipnn_dataset_y(d)[1] == 0 && clipnn_dataset_y(d)[2] == 1);
    clipnn_dataset_free(d);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", path);
    clipnn_dataset *tr, *te;
    clipnn_data_info *info;
    CHECK_OK(clipnn_dataset_load_info(spec, NULL, &tr, &te, &info));
    CHECK(clipnn_data_info_n_classes(info) == 3 && !strcmp(clipnn_data_info_class_name(info, 1), "mole"));
    CHECK(clipnn_dataset_load_csv(path, -1, 0, &d) == CLIPNN_ERR_FORMAT); /* regression on names */
    clipnn_dataset_free(tr);
    clipnn_dataset_free(te);
    clipnn_data_info_free(info);
}

/* The last line of out that starts with '{', copied into buf. */
static const char *json_line(const char *out, char *buf, size_t cap) {
    const char *best = NULL;
    for (const char *p = out; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (*p == '{') best = p;
    }
    size_t len = best ? strcspn(best, "\n") : 0;
    if (len >= cap) len = cap - 1;
    memcpy(buf, best ? best : "", len);
    buf[len] = 0;
    return buf;
}

static int json_text(const char *json, const char *key, char *buf, size_t cap) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return 0;
    p += strlen(pat);
    size_t len = strcspn(p, ",}");
    if (len >= cap) len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return 1;
}

/* The acceptance: eval of a unit-scaled model, with no options, gives the
 * test accuracy of its training run; another scaling is refused unless
 * forced. */
TEST(cli_eval_applies_the_record) {
    const char *model = check_tmp_path("unit.ckpt");
    char args[4400], jt[4096], je[4096], a[64], b[64];
    const char *out;
    snprintf(args, sizeof args, "train --scale unit --epochs 3 --quiet --json --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    json_line(out, jt, sizeof jt);
    snprintf(args, sizeof args, "eval --model %s --json", model);
    CHECK(check_run_tool(args, &out) == 0);
    CHECK_MSG(strstr(out, "data as recorded in") != NULL, "no information line: %s", out);
    json_line(out, je, sizeof je);
    CHECK(json_text(jt, "test_accuracy", a, sizeof a) && json_text(je, "accuracy", b, sizeof b));
    CHECK_MSG(!strcmp(a, b), "train %s, eval %s", a, b);
    snprintf(args, sizeof args, "eval --model %s --scale standardize", model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 2 && strstr(out, "--force") && strstr(out, "--scale"), "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "eval --model %s --data breast-cancer", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 2 && strstr(out, "--data differs"), "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "eval --model %s --scale standardize --force --json", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && json_text(json_line(out, je, sizeof je), "accuracy", b, sizeof b) && strcmp(a, b),
              "forced: exit %d, accuracy %s (trained %s): %s", rc, b, a, out);
    snprintf(args, sizeof args, "info %s", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "scaling: unit") && strstr(out, "test_accuracy: ") && strstr(out, "arch: 64-10"),
              "info: exit %d: %s", rc, out);
}

TEST(cli_text_labels_recorded) {
    const char *path = write_text_csv();
    const char *model = check_tmp_path("labels.ckpt");
    char args[8800];
    const char *out;
    snprintf(args, sizeof args, "train --data csv:%s --epochs 2 --quiet --save %s", path, model);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "info %s", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "classes: ant") != NULL, "info: %s", out);
    snprintf(args, sizeof args, "eval --model %s", model);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "accuracy"), "eval: exit %d: %s", rc, out);
}
