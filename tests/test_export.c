/* Export and import: PyTorch's modules (tests/ref/export_*, written by
 * scripts/torch_export_check.py) imported give torch's logits; an export
 * re-imports to the same checkpoint byte for byte; malformed files are
 * refused without a crash; the tool's export and import. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "file_util.h"
#include "clipnn.h"
#include "ref_file.h"

static void spit(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, len, f);
    fclose(f);
}

static const char *const torch_cases[] = {"mlp", "lstm", "gru", "rnn_relu"};

/* The module's logits: torch's float32 ones within 1e-6 (both compute
 * sums of under 20 products of values below 1 in float32: their rounding
 * differences are a few units of 2^-24, far below the bound). */
static void check_torch_case(const char *name, clipnn_export_format fmt) {
    char file[64], path[64];
    snprintf(file, sizeof file, "export_%s.txt", name);
    ref_file *r = ref_load(file);
    if (!r) return;
    snprintf(path, sizeof path, "tests/ref/export_%s.%s", name, clipnn_export_format_name(fmt));
    clipnn_import_options o = clipnn_import_options_default();
    CHECK_OK(clipnn_act_parse(ref_attr(r, "act"), &o.act));
    o.steps = (size_t)atol(ref_attr(r, "steps"));
    o.rnn_relu = !strcmp(name, "rnn_relu");
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    CHECK_OK(clipnn_model_import(check_repo_path(path), fmt, &o, &m, &info));
    CHECK(clipnn_data_info_spec(info) == NULL); /* a PyTorch file carries no data record */
    clipnn_data_info_free(info);
    size_t nx = ref_size(r, "x"), nl = ref_size(r, "logits");
    if (m && nx && nl) {
        size_t batch = nx / clipnn_model_n_inputs(m);
        float *x = malloc(nx * sizeof *x);
        to_float(ref_get(r, "x", nx), x, nx);
        const float *z;
        CHECK_OK(clipnn_forward(m, x, batch, &z));
        CHECK(batch * clipnn_model_n_outputs(m) == nl);
        const double *want = ref_get(r, "logits", nl);
        for (size_t i = 0; i < nl; i++)
            CHECK_MSG(fabs(z[i] - want[i]) <= 1e-6, "%s %s logit %zu: %.9g vs torch %.9g", name,
                      clipnn_export_format_name(fmt), i, (double)z[i], want[i]);
        free(x);
    }
    /* and clipnn's export of it loaded into torch gave the same logits */
    CHECK_MSG(atof(ref_attr(r, "export_max_abs_diff")) == 0, "%s: export into torch differs by %s", name,
              ref_attr(r, "export_max_abs_diff"));
    clipnn_model_free(m);
    ref_free(r);
}

TEST(export_torch_modules_import_with_their_logits) {
    for (size_t i = 0; i < sizeof torch_cases / sizeof torch_cases[0]; i++) {
        check_torch_case(torch_cases[i], CLIPNN_EXPORT_SAFETENSORS);
        check_torch_case(torch_cases[i], CLIPNN_EXPORT_NPZ);
    }
}

/* A checkpoint with a data record, exported and imported: the same bytes. */
static void round_trip(const char *arch_case, const clipnn_seq_shape *seq, const clipnn_layer_spec *ls, size_t nl) {
    clipnn_model *m = NULL, *back = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, seq, nl, ls));
    if (!m) return;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_TORCH, 5));
    clipnn_data_info *info;
    CHECK_OK(clipnn_data_info_create(&info));
    CHECK_OK(clipnn_data_info_set(info, "data.spec", "digits"));
    CHECK_OK(clipnn_data_info_set(info, "data.classes", "a \"quoted\"\nname\\with\tescapes"));
    CHECK_OK(clipnn_data_info_set(info, "result.test_accuracy", "0.97"));
    const char *a = check_tmp_path("rt_a.ckpt"), *b = check_tmp_path("rt_b.ckpt");
    CHECK_OK(clipnn_checkpoint_save_info(a, m, NULL, info));
    for (int f = 0; f < CLIPNN_EXPORT_COUNT; f++) {
        const char *ex = check_tmp_path(f ? "rt.npz" : "rt.safetensors");
        CHECK_OK(clipnn_model_export(ex, (clipnn_export_format)f, m, info));
        clipnn_data_info *info2 = NULL;
        CHECK_OK(clipnn_model_import(ex, (clipnn_export_format)f, NULL, &back, &info2));
        if (!back) continue;
        CHECK_OK(clipnn_checkpoint_save_info(b, back, NULL, info2));
        size_t la, lb;
        unsigned char *ba = slurp_file(a, &la), *bb = slurp_file(b, &lb);
        CHECK_MSG(ba && bb && la == lb && !memcmp(ba, bb, la), "%s via %s: %zu vs %zu bytes differ", arch_case,
                  clipnn_export_format_name((clipnn_export_format)f), la, lb);
        free(ba), free(bb);
        clipnn_model_free(back);
        clipnn_data_info_free(info2);
    }
    clipnn_data_info_free(info);
    clipnn_model_free(m);
}

TEST(export_reimports_byte_identical) {
    clipnn_layer_spec mlp[3] = {{CLIPNN_LAYER_DENSE, 7, CLIPNN_ACT_GELU}, {CLIPNN_LAYER_DENSE, 5, CLIPNN_ACT_SOFTPLUS},
                                {CLIPNN_LAYER_DENSE, 3, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape flat = {1, 9, 0};
    round_trip("mlp", &flat, mlp, 3);
    /* stacked layers of two kinds: one torch module per layer */
    clipnn_layer_spec rec[4] = {{CLIPNN_LAYER_LSTM, 4, CLIPNN_ACT_TANH}, {CLIPNN_LAYER_GRU, 3, CLIPNN_ACT_TANH},
                                {CLIPNN_LAYER_DENSE, 6, CLIPNN_ACT_RELU}, {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {5, 2, 1};
    round_trip("lstm-gru", &seq, rec, 4);
}

/* Every truncation of a valid file is refused; a byte changed anywhere in
 * its header either is refused or gives a model (never a crash: the
 * sanitizer build runs this). */
static void check_malformed(const char *src, clipnn_export_format fmt, size_t header_bytes) {
    size_t len;
    unsigned char *b = slurp_file(src, &len), *c = malloc(len ? len : 1);
    if (!b || !c) {
        CHECK(0);
        free(b), free(c);
        return;
    }
    const char *bad = check_tmp_path(fmt == CLIPNN_EXPORT_NPZ ? "bad.npz" : "bad.safetensors");
    clipnn_import_options o = clipnn_import_options_default();
    o.act = CLIPNN_ACT_TANH;
    o.steps = 4;
    for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
        spit(bad, b, cut);
        clipnn_model *m = NULL;
        clipnn_data_info *info = NULL;
        clipnn_status s = clipnn_model_import(bad, fmt, &o, &m, &info);
        CHECK_MSG(s != CLIPNN_OK && !m && !info && clipnn_last_error()[0], "%s cut at %zu: status %d", src, cut,
                  (int)s);
    }
    size_t span = header_bytes < len ? header_bytes : len;
    for (size_t i = 0; i < span; i++)
        for (int k = 0; k < 3; k++) {
            static const unsigned char repl[3] = {0x00, 0xff, '9'};
            memcpy(c, b, len);
            c[i] = repl[k];
            spit(bad, c, len);
            clipnn_model *m = NULL;
            clipnn_data_info *info = NULL;
            clipnn_status s = clipnn_model_import(bad, fmt, &o, &m, &info);
            CHECK(s == CLIPNN_OK ? m != NULL : m == NULL && info == NULL);
            clipnn_model_free(m);
            clipnn_data_info_free(info);
        }
    free(b), free(c);
}

TEST(export_malformed_files_are_refused) {
    check_malformed(check_repo_path("tests/ref/export_lstm.safetensors"), CLIPNN_EXPORT_SAFETENSORS, 700);
    /* an npz: numpy's own, with its zip64 extra fields; the headers are
     * spread over the file, so every byte is changed */
    const char *npz = check_repo_path("tests/ref/export_mlp.npz");
    check_malformed(npz, CLIPNN_EXPORT_NPZ, 1u << 20);
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    /* a file of the other format, an empty one */
    CHECK(clipnn_model_import(npz, CLIPNN_EXPORT_SAFETENSORS, NULL, &m, &info) != CLIPNN_OK);
    CHECK(clipnn_model_import("/nonexistent.npz", CLIPNN_EXPORT_NPZ, NULL, &m, &info) == CLIPNN_ERR_IO);
}

TEST(export_import_needs_what_the_file_does_not_say) {
    clipnn_model *m = NULL;
    clipnn_data_info *info = NULL;
    const char *path = check_repo_path("tests/ref/export_lstm.safetensors");
    clipnn_import_options o = clipnn_import_options_default();
    CHECK(clipnn_model_import(path, CLIPNN_EXPORT_SAFETENSORS, &o, &m, &info) == CLIPNN_ERR_INVALID_ARG);
    CHECK_MSG(strstr(clipnn_last_error(), "--seq-steps") != NULL, "%s", clipnn_last_error());
    path = check_repo_path("tests/ref/export_mlp.npz");
    CHECK(clipnn_model_import(path, CLIPNN_EXPORT_NPZ, &o, &m, &info) == CLIPNN_ERR_INVALID_ARG);
    CHECK_MSG(strstr(clipnn_last_error(), "--act") != NULL, "%s", clipnn_last_error());
}

TEST(cli_export_import_round_trip) {
    const char *model = check_tmp_path("cli_ex.ckpt"), *st = check_tmp_path("cli_ex.safetensors"),
               *back = check_tmp_path("cli_ex_back.ckpt"), *again = check_tmp_path("cli_ex_again.safetensors");
    char args[8000];
    const char *out;
    snprintf(args, sizeof args, "train --steps 30 --quiet --save %s", model);
    CHECK(check_run_tool(args, &out) == 0);
    snprintf(args, sizeof args, "export --model %s %s", model, st);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    snprintf(args, sizeof args, "import %s %s --arch 64-10", st, back);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    snprintf(args, sizeof args, "export --model %s %s", back, again);
    CHECK(check_run_tool(args, &out) == 0);
    size_t la, lb;
    unsigned char *a = slurp_file(st, &la), *b = slurp_file(again, &lb);
    CHECK_MSG(a && b && la == lb && !memcmp(a, b, la), "re-export differs: %zu vs %zu bytes", la, lb);
    free(a), free(b);
    /* the imported model evaluates as the original, on its recorded data */
    char je[2][256] = {"", ""};
    const char *models[2] = {model, back};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "eval --model %s --json", models[i]);
        CHECK(check_run_tool(args, &out) == 0);
        const char *acc = strstr(out, "\"accuracy\""), *end = acc ? strstr(acc, ",\"model\"") : NULL;
        if (end) snprintf(je[i], sizeof je[i], "%.*s", (int)(end - acc), acc);
    }
    CHECK_MSG(je[0][0] && !strcmp(je[0], je[1]), "original %s, imported %s", je[0], je[1]);
    snprintf(args, sizeof args, "import %s %s --arch 64-32-10", st, back);
    CHECK(check_run_tool(args, &out) == 2 && strstr(out, "64-10"));
    snprintf(args, sizeof args, "import %s %s", check_repo_path("tests/ref/export_gru.npz"), back);
    CHECK_MSG(check_run_tool(args, &out) == 2 && strstr(out, "--seq-steps"), "%s", out);
}

/* A state_dict as PyTorch's own writer lays it out (names under a module
 * prefix, no clipnn metadata) but with the preprocessing as data.*
 * metadata: imported, the tool evaluates, attacks and diagnoses it on the
 * recorded data. The file is written here byte by byte, apart from the
 * library's writer. */
static void write_torch_like(const char *path) {
    static float w0[16 * 64], b0[16], w1[10 * 16], b1[10];
    for (size_t i = 0; i < sizeof w0 / sizeof w0[0]; i++) w0[i] = (float)((int)(i * 7919 % 97) - 48) / 400.0f;
    for (size_t i = 0; i < sizeof w1 / sizeof w1[0]; i++) w1[i] = (float)((int)(i * 104729 % 89) - 44) / 100.0f;
    for (size_t i = 0; i < 16; i++) b0[i] = 0.01f * (float)i;
    for (size_t i = 0; i < 10; i++) b1[i] = -0.02f * (float)i;
    char mean[64 * 4] = "", sd[64 * 4] = "";
    for (int j = 0; j < 64; j++) {
        strcat(mean, j ? ",4" : "4");
        strcat(sd, j ? ",5" : "5");
    }
    char header[4096];
    int n = snprintf(header, sizeof header,
                     "{\"__metadata__\":{\"format\":\"pt\",\"data.spec\":\"digits\",\"data.scaling\":\"standardize\","
                     "\"data.dim\":\"64\",\"data.mean\":\"%s\",\"data.std\":\"%s\"},"
                     "\"net.0.weight\":{\"dtype\":\"F32\",\"shape\":[16,64],\"data_offsets\":[0,4096]},"
                     "\"net.0.bias\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[4096,4160]},"
                     "\"net.2.weight\":{\"dtype\":\"F32\",\"shape\":[10,16],\"data_offsets\":[4160,4800]},"
                     "\"net.2.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[4800,4840]}}",
                     mean, sd);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    unsigned char len[8] = {(unsigned char)n, (unsigned char)(n >> 8), 0, 0, 0, 0, 0, 0};
    fwrite(len, 1, 8, f);
    fwrite(header, 1, (size_t)n, f);
    fwrite(w0, 4, 16 * 64, f), fwrite(b0, 4, 16, f), fwrite(w1, 4, 160, f), fwrite(b1, 4, 10, f);
    fclose(f);
}

TEST(cli_torch_state_dict_evaluated_attacked_diagnosed) {
    const char *st = check_tmp_path("torch_like.safetensors"), *ckpt = check_tmp_path("torch_like.ckpt");
    write_torch_like(st);
    char args[8400];
    const char *out;
    snprintf(args, sizeof args, "import %s %s --act relu --arch 16-10", st, ckpt);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "with its data record"), "import: %d: %s", rc, out);
    const char *runs[] = {"eval --model %s", "attack --model %s --method pgd-linf --eps 0.1 --steps 5 --n 20",
                          "diagnose --model %s --input data:3 --target-class 3", "info %s"};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        snprintf(args, sizeof args, runs[i], ckpt);
        rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 0, "%s: exit %d: %s", args, rc, out);
        if (i < 3) CHECK_MSG(strstr(out, "data as recorded in"), "%s: record not applied: %s", args, out);
    }
    /* the recorded statistics, not refitted ones: x' = (x - 4) / 5 */
    snprintf(args, sizeof args, "info %s", ckpt);
    CHECK(check_run_tool(args, &out) == 0 && strstr(out, "mean: 4,4,4") && strstr(out, "format: pt"));
}
