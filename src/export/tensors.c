/* A model as PyTorch-named tensors and back (the names are documented with
 * clipnn_model_export in include/clipnn/export.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"

static const char *const format_names[CLIPNN_EXPORT_COUNT] = {"safetensors", "npz"};
CLIPNN_NAME_FUNCTIONS(clipnn_export_format, clipnn_export_format, format_names, CLIPNN_EXPORT_COUNT, "export format")

clipnn_import_options clipnn_import_options_default(void) {
    clipnn_import_options o = {CLIPNN_ACT_COUNT, 0, 0, 0};
    return o;
}

void clipnn_tensor_set_free(clipnn_tensor_set *ts) {
    for (size_t i = 0; i < ts->n; i++) {
        clipnn_free(ts->t[i].name);
        if (ts->owned) clipnn_free((float *)ts->t[i].data);
    }
    clipnn_free(ts->t);
    clipnn_data_info_free(ts->meta);
    memset(ts, 0, sizeof *ts);
}

clipnn_status clipnn_tensor_set_add(clipnn_tensor_set *ts, const char *name, const size_t *shape, size_t ndim,
                                    const float *data) {
    if (ts->n >= CLIPNN_TENSORS_MAX) return clipnn_fail(CLIPNN_ERR_FORMAT, "more than %d tensors", CLIPNN_TENSORS_MAX);
    clipnn_tensor *t = clipnn_realloc_array(ts->t, ts->n + 1, sizeof *t);
    if (!t) return clipnn_fail(CLIPNN_ERR_NOMEM, "out of memory for tensor %s", name);
    ts->t = t;
    size_t len = strlen(name), count = 1;
    for (size_t i = 0; i < ndim; i++)
        if (clipnn_mul_size(count, shape[i], &count))
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "tensor %s: too large", name);
    clipnn_tensor *n = &t[ts->n];
    memset(n, 0, sizeof *n);
    n->name = clipnn_alloc(len + 1);
    if (!n->name) return clipnn_fail(CLIPNN_ERR_NOMEM, "out of memory for tensor %s", name);
    memcpy(n->name, name, len + 1);
    n->ndim = ndim;
    for (size_t i = 0; i < ndim; i++) n->shape[i] = shape[i];
    n->count = count;
    n->data = data;
    ts->n++;
    return CLIPNN_OK;
}

/* ---------------------------------------------------------- the names */

static size_t n_recurrent(const clipnn_model *m) {
    size_t r = 0;
    while (r < clipnn_model_n_layers(m) && clipnn_model_layer_kind(m, r) != CLIPNN_LAYER_DENSE) r++;
    return r;
}

/* One torch module for the whole recurrent front (num_layers) when its
 * layers share kind and width. */
static int one_module(const clipnn_layer_spec *ls, size_t n_rec) {
    for (size_t l = 1; l < n_rec; l++)
        if (ls[l].kind != ls[0].kind || ls[l].width != ls[0].width) return 0;
    return 1;
}

/* The PyTorch name of group g of a model with layers ls (n_rec recurrent). */
void clipnn_export_group_name(char *out, size_t cap, const clipnn_layer_spec *ls, size_t n_rec, size_t g) {
    static const char *const rec[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    if (g < 4 * n_rec) {
        if (one_module(ls, n_rec)) snprintf(out, cap, "rnn.%s_l%zu", rec[g % 4], g / 4);
        else snprintf(out, cap, "rnn.%zu.%s_l0", g / 4, rec[g % 4]);
        return;
    }
    size_t d = (g - 4 * n_rec) / 2;
    snprintf(out, cap, "%s%zu.%s", n_rec ? "head." : "", 2 * d, (g - 4 * n_rec) % 2 ? "bias" : "weight");
}

static void model_specs(const clipnn_model *m, clipnn_layer_spec *ls) {
    for (size_t l = 0; l < clipnn_model_n_layers(m); l++)
        ls[l] = (clipnn_layer_spec){clipnn_model_layer_kind(m, l), clipnn_model_layer_width(m, l),
                                    clipnn_model_layer_act(m, l)};
}

/* ------------------------------------------------------------- export */

static clipnn_status set_size(clipnn_data_info *meta, const char *key, size_t v) {
    char text[32];
    snprintf(text, sizeof text, "%zu", v);
    return clipnn_data_info_set(meta, key, text);
}

static clipnn_status layout_meta(const clipnn_model *m, const clipnn_layer_spec *ls, clipnn_data_info *meta) {
    size_t nl = clipnn_model_n_layers(m), len = 0;
    char *text = clipnn_alloc_array(nl, 48);
    if (!text) return clipnn_fail(CLIPNN_ERR_NOMEM, "export: out of memory");
    for (size_t l = 0; l < nl; l++)
        len += (size_t)snprintf(text + len, 48, "%s%s:%zu:%s", l ? "," : "", clipnn_layer_kind_name(ls[l].kind),
                                ls[l].width, clipnn_act_name(ls[l].act));
    clipnn_status s = clipnn_data_info_set(meta, "clipnn.layers", text);
    clipnn_free(text);
    clipnn_seq_shape seq = clipnn_model_seq_shape(m);
    if (!s) s = set_size(meta, "clipnn.inputs", clipnn_model_n_inputs(m));
    if (!s && seq.steps) s = set_size(meta, "clipnn.steps", seq.steps);
    if (!s && seq.steps) s = set_size(meta, "clipnn.step_dim", seq.step_dim);
    if (!s && seq.steps) s = set_size(meta, "clipnn.every_step", (size_t)(seq.every_step != 0));
    return s;
}

clipnn_status clipnn_model_tensors(const clipnn_model *m, const clipnn_data_info *info, clipnn_tensor_set *ts) {
    memset(ts, 0, sizeof *ts);
    size_t nl = clipnn_model_n_layers(m), n_rec = n_recurrent(m);
    clipnn_layer_spec *ls = clipnn_alloc_array(nl, sizeof *ls);
    clipnn_status s = ls ? clipnn_data_info_create(&ts->meta) : clipnn_fail(CLIPNN_ERR_NOMEM, "export: out of memory");
    if (!s) model_specs(m, ls);
    if (!s) s = layout_meta(m, ls, ts->meta);
    for (size_t i = 0; !s && i < clipnn_data_info_count(info); i++) {
        const char *value, *key = clipnn_data_info_entry(info, i, &value);
        s = clipnn_data_info_set(ts->meta, key, value);
    }
    const float *params = clipnn_model_params((clipnn_model *)m);
    for (size_t g = 0; !s && g < clipnn_model_n_groups(m); g++) {
        clipnn_group G = clipnn_model_group(m, g);
        char name[64];
        clipnn_export_group_name(name, sizeof name, ls, n_rec, g);
        size_t shape[2] = {G.is_bias ? G.size : G.rows, G.cols};
        s = clipnn_tensor_set_add(ts, name, shape, G.is_bias ? 1 : 2, params + G.offset);
    }
    clipnn_free(ls);
    if (s) clipnn_tensor_set_free(ts);
    return s;
}

/* -------------------------------------------------------------- files */

clipnn_status clipnn_model_export(const char *path, clipnn_export_format format, const clipnn_model *m,
                                  const clipnn_data_info *info) {
    if (!path || !m) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "export: NULL argument");
    if ((unsigned)format >= CLIPNN_EXPORT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "export: unknown format %d", (int)format);
    clipnn_tensor_set ts;
    clipnn_status s = clipnn_model_tensors(m, info, &ts);
    if (s) return s;
    s = format == CLIPNN_EXPORT_NPZ ? clipnn_npz_write(path, &ts) : clipnn_safetensors_write(path, &ts);
    clipnn_tensor_set_free(&ts);
    return s;
}

clipnn_status clipnn_model_import(const char *path, clipnn_export_format format, const clipnn_import_options *o,
                                  clipnn_model **m, clipnn_data_info **info) {
    if (!path || !m || !info) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "import: NULL argument");
    *m = NULL;
    *info = NULL;
    if ((unsigned)format >= CLIPNN_EXPORT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "import: unknown format %d", (int)format);
    clipnn_tensor_set ts;
    clipnn_status s = format == CLIPNN_EXPORT_NPZ ? clipnn_npz_read(path, &ts) : clipnn_safetensors_read(path, &ts);
    if (s) return s;
    s = clipnn_model_from_tensors(path, &ts, o, m, info);
    clipnn_tensor_set_free(&ts);
    return s;
}
