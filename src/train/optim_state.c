/* Optimizer state as bytes, the OPTM section of a checkpoint, so that a
 * resumed run takes the same steps as one never interrupted: the step count
 * matters (torch.optim.SGD starts its momentum buffer at the first gradient,
 * Adam's bias corrections use t) as much as the buffers do.
 *
 * Layout (little-endian, docs/formats.md):
 *   0   u32 kind (0 SGD, 1 Adam, 2 SPAM)
 *   4   u32 buffers: bit 0 first buffer m present, bit 1 second moment v
 *   8   u64 n, the parameter count
 *   16  u64 steps taken
 *   24  f64 momentum, weight_decay, beta1, beta2, adam_eps (for inspection:
 *       a resumed run may change them, as torch's load_state_dict allows)
 *   64  u32 nesterov, u32 0
 *   72  f32 m[n] when bit 0, then f32 v[n] when bit 1
 */
#include <string.h>

#include "base/bytes_le.h"
#include "train/train.h"

enum { OPTM_HEADER = 72 };

static uint32_t buffer_bits(const clipnn_optimizer *o) { return (o->m ? 1u : 0u) | (o->v ? 2u : 0u); }

/* Size of the state of n parameters with the given buffers; 0 on overflow. */
static size_t state_bytes(uint64_t n, uint32_t bits) {
    uint64_t n_buffers = (bits & 1) + ((bits >> 1) & 1);
    if (n_buffers && n > (UINT64_MAX - OPTM_HEADER) / (4 * n_buffers)) return 0;
    uint64_t total = OPTM_HEADER + 4 * n_buffers * n;
    return total > SIZE_MAX ? 0 : (size_t)total;
}

size_t clipnn_optimizer_state_size(const clipnn_optimizer *o) { return state_bytes(o->n, buffer_bits(o)); }

void clipnn_optimizer_state_save(const clipnn_optimizer *o, void *buf) {
    unsigned char *p = buf;
    const clipnn_optim_options *op = &o->opts;
    le_put_u32(p, (uint32_t)op->kind);
    le_put_u32(p + 4, buffer_bits(o));
    le_put_u64(p + 8, o->n);
    le_put_u64(p + 16, o->steps);
    le_put_f64(p + 24, op->momentum);
    le_put_f64(p + 32, op->weight_decay);
    le_put_f64(p + 40, op->beta1);
    le_put_f64(p + 48, op->beta2);
    le_put_f64(p + 56, op->adam_eps);
    le_put_u32(p + 64, (uint32_t)op->nesterov);
    le_put_u32(p + 68, 0);
    p += OPTM_HEADER;
    if (o->m) {
        le_put_f32s(p, o->m, o->n);
        p += 4 * o->n;
    }
    if (o->v) le_put_f32s(p, o->v, o->n);
}

static const char *kind_name(uint32_t kind) {
    return kind < CLIPNN_OPT_COUNT ? clipnn_opt_kind_name((clipnn_opt_kind)kind) : "unknown";
}

static const char *buffers_name(uint32_t bits) {
    static const char *const names[4] = {"no buffers", "a momentum buffer", "a second-moment buffer only",
                                         "first and second moments"};
    return names[bits & 3];
}

clipnn_status clipnn_optimizer_state_load(clipnn_optimizer *o, const void *buf, size_t len) {
    const unsigned char *p = buf;
    if (!o || (!buf && len)) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "optimizer state: NULL argument");
    if (len < OPTM_HEADER)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "optimizer state: %zu bytes, the header alone takes %d", len,
                           OPTM_HEADER);
    uint32_t kind = le_get_u32(p), bits = le_get_u32(p + 4);
    uint64_t n = le_get_u64(p + 8);
    if (kind != (uint32_t)o->opts.kind)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "optimizer state: saved for %s, the optimizer is %s",
                           kind_name(kind), kind_name((uint32_t)o->opts.kind));
    if (bits != buffer_bits(o))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "optimizer state: saved with %s, the optimizer has %s "
                                             "(momentum 0 keeps no buffer)",
                           buffers_name(bits), buffers_name(buffer_bits(o)));
    if (n != o->n)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "optimizer state: saved for %llu parameters, the optimizer has %zu",
                           (unsigned long long)n, o->n);
    size_t want = clipnn_optimizer_state_size(o);
    if (len != want)
        return clipnn_fail(len < want ? CLIPNN_ERR_TRUNCATED : CLIPNN_ERR_FORMAT,
                           "optimizer state: %zu bytes, %zu expected for %zu parameters", len, want, o->n);
    o->steps = le_get_u64(p + 16);
    p += OPTM_HEADER;
    if (o->m) {
        le_get_f32s(o->m, p, o->n);
        p += 4 * o->n;
    }
    if (o->v) le_get_f32s(o->v, p, o->n);
    return CLIPNN_OK;
}

clipnn_status clipnn_optimizer_state_check(const void *buf, size_t len, size_t n_params, const char *path) {
    const unsigned char *p = buf;
    if (len < OPTM_HEADER)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: optimizer section of %zu bytes, shorter than its %d-byte header",
                           path, len, OPTM_HEADER);
    uint32_t kind = le_get_u32(p), bits = le_get_u32(p + 4);
    uint64_t n = le_get_u64(p + 8);
    if (kind >= CLIPNN_OPT_COUNT)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: unknown optimizer code %u", path, kind);
    if (bits > 3) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: unknown optimizer buffer flags %#x", path, bits);
    if (n != n_params)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: optimizer state for %llu parameters, the model has %zu", path,
                           (unsigned long long)n, n_params);
    size_t want = state_bytes(n, bits);
    if (len != want)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: optimizer section of %zu bytes, %zu expected", path, len, want);
    return CLIPNN_OK;
}
