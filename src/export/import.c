/* A model from PyTorch-named tensors: by the clipnn.* metadata a clipnn
 * export carries, else inferred from the names and shapes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"

enum { MAX_LAYERS = 1024 };

/* Where each of the model's groups comes from: a tensor index per group. */
typedef struct {
    clipnn_layer_spec ls[MAX_LAYERS];
    size_t n_layers, n_rec;
    clipnn_seq_shape seq;
    long source[4 * MAX_LAYERS];
} import_plan;

static clipnn_status meta_size(const char *name, const clipnn_data_info *meta, const char *key, size_t *out) {
    const char *v = clipnn_data_info_get(meta, key);
    char *end;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || v[0] == '-' || x > ((unsigned long long)1 << 30))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: metadata %s is %s%s%s, want an integer up to 2^30", name, key,
                           v ? "'" : "missing", v ? v : "", v ? "'" : "");
    *out = (size_t)x;
    return CLIPNN_OK;
}

/* "KIND:WIDTH:ACT" into a layer spec. */
static clipnn_status parse_layer(const char *name, char *item, clipnn_layer_spec *ls) {
    char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
    if (!c2) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: clipnn.layers item '%s': want KIND:WIDTH:ACT", name, item);
    *c1 = *c2 = 0;
    errno = 0;
    unsigned long long w = strtoull(c1 + 1, &end, 10);
    if (clipnn_layer_kind_parse(item, &ls->kind) || clipnn_act_parse(c2 + 1, &ls->act) || end == c1 + 1 || *end ||
        errno || w == 0 || w > ((unsigned long long)1 << 30))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: clipnn.layers item '%s:%s:%s' is not a layer", name, item, c1 + 1,
                           c2 + 1);
    ls->width = (size_t)w;
    return CLIPNN_OK;
}

static clipnn_status plan_from_meta(const char *name, const clipnn_data_info *meta, import_plan *p) {
    const char *text = clipnn_data_info_get(meta, "clipnn.layers");
    size_t len = strlen(text), inputs = 0;
    char *copy = clipnn_alloc(len + 1);
    if (!copy) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", name);
    memcpy(copy, text, len + 1);
    clipnn_status s = CLIPNN_OK;
    for (char *item = copy, *next; !s && item; item = next) {
        next = strchr(item, ',');
        if (next) *next++ = 0;
        if (p->n_layers == MAX_LAYERS) s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: more than %d layers", name, MAX_LAYERS);
        else s = parse_layer(name, item, &p->ls[p->n_layers++]);
    }
    clipnn_free(copy);
    while (!s && p->n_rec < p->n_layers && p->ls[p->n_rec].kind != CLIPNN_LAYER_DENSE) p->n_rec++;
    if (!s) s = meta_size(name, meta, "clipnn.inputs", &inputs);
    p->seq = (clipnn_seq_shape){1, inputs, 0};
    if (!s && p->n_rec) s = meta_size(name, meta, "clipnn.steps", &p->seq.steps);
    if (!s && p->n_rec) s = meta_size(name, meta, "clipnn.step_dim", &p->seq.step_dim);
    size_t every = 0;
    if (!s && p->n_rec) s = meta_size(name, meta, "clipnn.every_step", &every);
    p->seq.every_step = every != 0;
    return s;
}

/* ------------------------------------------------------------ inference */

/* A name's parts: prefix (up to the last component that is not ours), the
 * index, and which tensor (0..3 recurrent W_ih, W_hh, b_ih, b_hh; 4 dense
 * weight, 5 dense bias); -1 when the name is none of ours. */
typedef struct {
    size_t prefix_len;
    unsigned long index;
    int which;
} tensor_role;

static int parse_index(const char *s, const char *end, unsigned long *out) {
    if (s == end || end - s > 9) return -1;
    unsigned long v = 0;
    for (const char *c = s; c < end; c++) {
        if (*c < '0' || *c > '9') return -1;
        v = v * 10 + (unsigned long)(*c - '0');
    }
    *out = v;
    return 0;
}

static tensor_role role_of(const char *name) {
    static const char *const rec[4] = {"weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"};
    tensor_role r = {0, 0, -1};
    const char *dot = strrchr(name, '.'), *last = dot ? dot + 1 : name, *end = name + strlen(name);
    for (int k = 0; k < 4; k++) {
        size_t n = strlen(rec[k]);
        if (!strncmp(last, rec[k], n) && !parse_index(last + n, end, &r.index))
            return (tensor_role){(size_t)(last - name), r.index, k};
    }
    if (!dot || (strcmp(last, "weight") && strcmp(last, "bias"))) return r;
    const char *start = dot;
    while (start > name && start[-1] != '.') start--;
    if (parse_index(start, dot, &r.index)) return r;
    return (tensor_role){(size_t)(start - name), r.index, strcmp(last, "weight") ? 5 : 4};
}

/* Layer slot of a tensor: the recurrent ones by prefix and index (a
 * ModuleList "rnn.0." ... numbered by its own index), dense ones by index. */
static long slot_of(const char *name, const tensor_role *r) {
    if (r->which >= 4) return (long)r->index;
    unsigned long outer = 0;
    const char *end = name + r->prefix_len - 1, *start = end; /* the prefix without its dot */
    while (start > name && start[-1] != '.') start--;
    if (r->prefix_len && !parse_index(start, end, &outer)) return (long)(outer * 64 + r->index);
    return (long)r->index;
}

/* Distinct slots of the tensors with roles in [lo, hi], ascending, into
 * slots[]; returns their count. */
static size_t distinct_slots(const clipnn_tensor_set *ts, const tensor_role *roles, const long *slot, int lo, int hi,
                             long *slots) {
    size_t n = 0;
    for (size_t i = 0; i < ts->n; i++) {
        if (roles[i].which < lo || roles[i].which > hi) continue;
        size_t at = 0;
        while (at < n && slots[at] < slot[i]) at++;
        if (at < n && slots[at] == slot[i]) continue;
        memmove(slots + at + 1, slots + at, (n - at) * sizeof *slots);
        slots[at] = slot[i];
        n++;
    }
    return n;
}

/* The tensor of layer slot `want` and role `which`; -1 when missing. */
static long find_role(const clipnn_tensor_set *ts, const tensor_role *roles, const long *slot, long want, int which) {
    for (size_t i = 0; i < ts->n; i++)
        if (roles[i].which == which && slot[i] == want) return (long)i;
    return -1;
}

/* A recurrent layer from its four tensors: the kind from the gate count,
 * the width from W_hh. */
static clipnn_status infer_recurrent(const char *name, const clipnn_tensor_set *ts, const long *src,
                                     const clipnn_import_options *o, clipnn_layer_spec *ls) {
    const clipnn_tensor *hh = &ts->t[src[1]], *ih = &ts->t[src[0]];
    size_t h = hh->ndim == 2 ? hh->shape[1] : 0, gh = hh->shape[0];
    size_t G = h ? gh / h : 0;
    if (!h || gh % h || (G != 1 && G != 3 && G != 4))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %s is not [G * hidden][hidden] with G 1, 3 or 4 gates", name,
                           hh->name);
    ls->kind = G == 4        ? CLIPNN_LAYER_LSTM
               : G == 3      ? CLIPNN_LAYER_GRU
               : o->rnn_relu ? CLIPNN_LAYER_RNN_RELU
                             : CLIPNN_LAYER_RNN;
    ls->width = h;
    ls->act = CLIPNN_ACT_TANH;
    /* the input widths are checked against the model built from these layers */
    if (ih->ndim != 2) return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %s is not a matrix", name, ih->name);
    return CLIPNN_OK;
}

static clipnn_status infer_dense(const char *name, const clipnn_tensor *w, int last, const clipnn_import_options *o,
                                 clipnn_layer_spec *ls) {
    if (w->ndim != 2) return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %s is not a matrix", name, w->name);
    if (!last && o->act == CLIPNN_ACT_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the file does not say the activation of the hidden layers; "
                           "give it (--act)", name);
    *ls = (clipnn_layer_spec){CLIPNN_LAYER_DENSE, w->shape[0], last ? CLIPNN_ACT_IDENTITY : o->act};
    return CLIPNN_OK;
}

/* Layers, their tensors and the input shape from the names and shapes. */
static clipnn_status plan_from_names(const char *name, const clipnn_tensor_set *ts, const tensor_role *roles,
                                     const long *slot, const clipnn_import_options *o, import_plan *p) {
    long slots[CLIPNN_TENSORS_MAX];
    size_t n_rec = distinct_slots(ts, roles, slot, 0, 3, slots), step_dim = 0;
    clipnn_status s = n_rec > MAX_LAYERS ? clipnn_fail(CLIPNN_ERR_FORMAT, "%s: too many layers", name) : CLIPNN_OK;
    for (size_t l = 0; !s && l < n_rec; l++) {
        for (int k = 0; k < 4; k++) p->source[4 * l + (size_t)k] = find_role(ts, roles, slot, slots[l], k);
        for (int k = 0; !s && k < 4; k++)
            if (p->source[4 * l + (size_t)k] < 0)
                s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: recurrent layer %zu lacks one of its four tensors", name, l);
        if (!s) s = infer_recurrent(name, ts, &p->source[4 * l], o, &p->ls[l]);
        if (!s && l == 0) step_dim = ts->t[p->source[0]].shape[1];
    }
    size_t n_dense = s ? 0 : distinct_slots(ts, roles, slot, 4, 5, slots);
    if (!s && (n_dense == 0 || n_rec + n_dense > MAX_LAYERS))
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %zu dense layers (N.weight, N.bias); a model ends with 1 to %d", name,
                        n_dense, MAX_LAYERS);
    for (size_t d = 0; !s && d < n_dense; d++) {
        long *src = &p->source[4 * n_rec + 2 * d];
        src[0] = find_role(ts, roles, slot, slots[d], 4);
        src[1] = find_role(ts, roles, slot, slots[d], 5);
        if (src[0] < 0 || src[1] < 0)
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: dense layer %ld lacks its weight or bias", name, slots[d]);
        else s = infer_dense(name, &ts->t[src[0]], d + 1 == n_dense, o, &p->ls[n_rec + d]);
    }
    if (s) return s;
    p->n_rec = n_rec;
    p->n_layers = n_rec + n_dense;
    if (n_rec && o->steps == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the file does not say how many time steps an input has; give "
                           "them (--seq-steps)", name);
    if (n_rec) p->seq = (clipnn_seq_shape){o->steps, step_dim, o->every_step};
    else p->seq = (clipnn_seq_shape){1, ts->t[p->source[0]].shape[1], 0};
    return CLIPNN_OK;
}

static clipnn_status infer_plan(const char *name, const clipnn_tensor_set *ts, const clipnn_import_options *o,
                                import_plan *p) {
    tensor_role *roles = clipnn_alloc_array(ts->n ? ts->n : 1, sizeof *roles);
    long *slot = clipnn_alloc_array(ts->n ? ts->n : 1, sizeof *slot);
    clipnn_status s = roles && slot ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; !s && i < ts->n; i++) {
        roles[i] = role_of(ts->t[i].name);
        if (roles[i].which < 0)
            s = clipnn_fail(CLIPNN_ERR_FORMAT,
                            "%s: tensor '%s' is none of N.weight, N.bias, weight_ih_lK, weight_hh_lK, "
                            "bias_ih_lK, bias_hh_lK",
                            name, ts->t[i].name);
        else slot[i] = slot_of(ts->t[i].name, &roles[i]);
    }
    for (size_t i = 0; !s && i < ts->n; i++)
        for (size_t j = 0; !s && j < i; j++)
            if (roles[i].which == roles[j].which && slot[i] == slot[j])
                s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: tensors %s and %s hold the same parameter", name, ts->t[j].name,
                                ts->t[i].name);
    if (!s) s = plan_from_names(name, ts, roles, slot, o, p);
    clipnn_free(roles);
    clipnn_free(slot);
    return s;
}

/* ------------------------------------------------------------ building */

static long find_tensor(const clipnn_tensor_set *ts, const char *want) {
    for (size_t i = 0; i < ts->n; i++)
        if (!strcmp(ts->t[i].name, want)) return (long)i;
    return -1;
}

/* By the export's own names: every group's tensor, and no other. */
static clipnn_status sources_by_name(const char *name, const clipnn_tensor_set *ts, const clipnn_model *m,
                                     import_plan *p) {
    size_t n_groups = clipnn_model_n_groups(m);
    for (size_t g = 0; g < n_groups; g++) {
        char want[64];
        clipnn_export_group_name(want, sizeof want, p->ls, p->n_rec, g);
        p->source[g] = find_tensor(ts, want);
        if (p->source[g] < 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: no tensor %s", name, want);
    }
    if (ts->n != n_groups)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %zu tensors, the layers in its metadata have %zu", name, ts->n,
                           n_groups);
    return CLIPNN_OK;
}

/* Copies each group from its tensor, shape checked. */
static clipnn_status fill_params(const char *name, const clipnn_tensor_set *ts, const import_plan *p, clipnn_model *m) {
    float *params = clipnn_model_params(m);
    for (size_t g = 0; g < clipnn_model_n_groups(m); g++) {
        clipnn_group G = clipnn_model_group(m, g);
        const clipnn_tensor *t = &ts->t[p->source[g]];
        int ok = G.is_bias ? t->ndim == 1 && t->shape[0] == G.size
                           : t->ndim == 2 && t->shape[0] == G.rows && t->shape[1] == G.cols;
        if (!ok)
            return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: tensor %s has shape [%zu%s%zu], the model needs [%zu%s%zu]", name,
                               t->name, t->shape[0], t->ndim == 2 ? ", " : "", t->ndim == 2 ? t->shape[1] : 0,
                               G.is_bias ? G.size : G.rows, G.is_bias ? "" : ", ", G.is_bias ? 0 : G.cols);
        memcpy(params + G.offset, t->data, G.size * sizeof(float));
    }
    return CLIPNN_OK;
}

/* The metadata entries that are not clipnn.*: the model's data record. */
static clipnn_status record_of(const clipnn_data_info *meta, clipnn_data_info **info) {
    *info = NULL;
    clipnn_status s = CLIPNN_OK;
    for (size_t i = 0; !s && i < clipnn_data_info_count(meta); i++) {
        const char *value, *key = clipnn_data_info_entry(meta, i, &value);
        if (!strncmp(key, "clipnn.", 7)) continue;
        if (!*info) s = clipnn_data_info_create(info);
        if (!s) s = clipnn_data_info_set(*info, key, value);
    }
    if (s) {
        clipnn_data_info_free(*info);
        *info = NULL;
    }
    return s;
}

clipnn_status clipnn_model_from_tensors(const char *name, const clipnn_tensor_set *ts, const clipnn_import_options *o,
                                        clipnn_model **m, clipnn_data_info **info) {
    *m = NULL;
    *info = NULL;
    clipnn_import_options def = clipnn_import_options_default();
    import_plan *p = clipnn_alloc_array(1, sizeof *p);
    if (!p) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", name);
    int by_meta = clipnn_data_info_get(ts->meta, "clipnn.layers") != NULL;
    clipnn_status s = by_meta ? plan_from_meta(name, ts->meta, p) : infer_plan(name, ts, o ? o : &def, p);
    if (!s && p->n_layers == 0) s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: no layers", name);
    if (!s) s = clipnn_model_create_seq(m, &p->seq, p->n_layers, p->ls);
    if (!s && by_meta) s = sources_by_name(name, ts, *m, p);
    if (!s) s = fill_params(name, ts, p, *m);
    if (!s) s = record_of(ts->meta, info);
    clipnn_free(p);
    if (s) {
        clipnn_model_free(*m);
        *m = NULL;
    }
    return s;
}
