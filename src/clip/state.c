/* The clipper's state as bytes: the CLIP section of a checkpoint, so that
 * a resumed run clips as the uninterrupted one would have. */
#include "base/bytes_le.h"
#include "clip/clip.h"

/* CLIP section (little-endian, docs/formats.md):
 *   0    u32 rule, u32 flags (bit 0: theta0 present, bit 1: lambda chosen
 *        by clipnn_auto_lambda)
 *   8    u64 n_params, history_length
 *   24   u64 n_steps, n_clipped, n_skipped
 *   48   u64 hist_count, hist_pos
 *   64   f64 z_mean, z_var; u64 z_seen
 *   88   u64 noise rng s[4]
 *   120  f64 history[history_length] when the rule is percentile
 *        f32 theta0[n_params] when flag bit 0
 *        then the state of the rules of src/clip/modern.c (AdaGC's EMAs,
 *        ACClip's and NSGD-M's momentum), clipnn_clip_modern_state_size
 *        when flag bit 1, last: f64 quantile, u64 warm-up steps, f64 lambda */
enum { CLIP_HEADER = 120, CLIP_AUTO = 24 };

static int has_auto(const clipnn_clipper *c) { return c->o.auto_quantile > 0; }

static size_t history_slots(const clipnn_clipper *c) { return c->history ? c->o.history_length : 0; }

size_t clipnn_clipper_state_size(const clipnn_clipper *c) {
    return CLIP_HEADER + 8 * history_slots(c) + (c->theta0 ? 4 * c->n_params : 0) + clipnn_clip_modern_state_size(c) +
           (has_auto(c) ? CLIP_AUTO : 0);
}

void clipnn_clipper_state_save(const clipnn_clipper *c, void *buf) {
    unsigned char *p = buf;
    le_put_u32(p, (uint32_t)c->o.rule);
    le_put_u32(p + 4, (c->theta0 ? 1u : 0u) | (has_auto(c) ? 2u : 0u));
    le_put_u64(p + 8, c->n_params);
    le_put_u64(p + 16, history_slots(c));
    le_put_u64(p + 24, c->n_steps);
    le_put_u64(p + 32, c->n_clipped);
    le_put_u64(p + 40, c->n_skipped);
    le_put_u64(p + 48, c->hist_count);
    le_put_u64(p + 56, c->hist_pos);
    le_put_f64(p + 64, c->z_mean);
    le_put_f64(p + 72, c->z_var);
    le_put_u64(p + 80, c->z_seen);
    for (int i = 0; i < 4; i++) le_put_u64(p + 88 + 8 * i, c->noise.s[i]);
    p += CLIP_HEADER;
    for (size_t i = 0; i < history_slots(c); i++, p += 8) le_put_f64(p, c->history[i]);
    if (c->theta0) le_put_f32s(p, c->theta0, c->n_params), p += 4 * c->n_params;
    clipnn_clip_modern_state_save(c, p);
    if (!has_auto(c)) return;
    p += clipnn_clip_modern_state_size(c);
    le_put_f64(p, c->o.auto_quantile);
    le_put_u64(p + 8, c->o.auto_steps);
    le_put_f64(p + 16, c->o.lambda);
}

int clipnn_clip_state_auto_lambda(const void *buf, size_t len, double *lambda, double *quantile, uint64_t *steps) {
    const unsigned char *p = buf;
    if (!p || len < CLIP_HEADER + CLIP_AUTO || !(le_get_u32(p + 4) & 2u)) return 0;
    p += len - CLIP_AUTO;
    if (quantile) *quantile = le_get_f64(p);
    if (steps) *steps = le_get_u64(p + 8);
    if (lambda) *lambda = le_get_f64(p + 16);
    return 1;
}

clipnn_status clipnn_clipper_state_load(clipnn_clipper *c, const void *buf, size_t len) {
    const unsigned char *p = buf;
    if (!c || (!buf && len)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "clip state: NULL argument");
    if (len < CLIP_HEADER)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "clip state: %zu bytes, want at least %d", len, CLIP_HEADER);
    uint32_t rule = le_get_u32(p), flags = le_get_u32(p + 4);
    if (rule != (uint32_t)c->o.rule)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "clip state: saved for rule %s, this run clips with %s",
                           clipnn_clip_rule_name((clipnn_clip_rule)rule), clipnn_clip_rule_name(c->o.rule));
    if (le_get_u64(p + 8) != c->n_params)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "clip state: saved for %llu parameters, the model has %zu",
                           (unsigned long long)le_get_u64(p + 8), c->n_params);
    if (le_get_u64(p + 16) != history_slots(c))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "clip state: history of %llu norms, this clipper keeps %zu",
                           (unsigned long long)le_get_u64(p + 16), history_slots(c));
    if ((flags & 1u) != (c->theta0 ? 1u : 0u))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "clip state: projection centre %s, this clipper %s",
                           flags & 1u ? "saved" : "absent", c->theta0 ? "needs one" : "has none");
    if (((flags >> 1) & 1u) != (has_auto(c) ? 1u : 0u))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "clip state: lambda %s automatically in the saved run, %s in this one",
                           flags & 2u ? "chosen" : "not chosen", has_auto(c) ? "chosen" : "given");
    if (len != clipnn_clipper_state_size(c))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "clip state: %zu bytes, want %zu", len, clipnn_clipper_state_size(c));
    uint64_t hc = le_get_u64(p + 48), hp = le_get_u64(p + 56);
    if (hc > history_slots(c) || (history_slots(c) && hp >= history_slots(c)))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "clip state: history position %llu/%llu out of range",
                           (unsigned long long)hp, (unsigned long long)hc);
    c->n_steps = le_get_u64(p + 24);
    c->n_clipped = le_get_u64(p + 32);
    c->n_skipped = le_get_u64(p + 40);
    c->hist_count = (size_t)hc;
    c->hist_pos = (size_t)hp;
    c->z_mean = le_get_f64(p + 64);
    c->z_var = le_get_f64(p + 72);
    c->z_seen = le_get_u64(p + 80);
    for (int i = 0; i < 4; i++) c->noise.s[i] = le_get_u64(p + 88 + 8 * i);
    p += CLIP_HEADER;
    for (size_t i = 0; i < history_slots(c); i++, p += 8) c->history[i] = le_get_f64(p);
    if (c->theta0) le_get_f32s(c->theta0, p, c->n_params), p += 4 * c->n_params;
    clipnn_clip_modern_state_load(c, p);
    return CLIPNN_OK;
}
