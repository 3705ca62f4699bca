/* The training state a resumed run continues from (a resumed run
 * continues the same trajectory, bit for bit). A step of clipnn_train
 * depends on the parameters, the step count t (schedule, Adam's bias
 * correction, SGD's first momentum step), the minibatch RNG and the current
 * shuffle permutation (each pass shuffles the previous order in place), the
 * optimizer's buffers and the clipper's state; the record adds theta(0) and
 * the running sums. Everything but the parameters is kept here as the
 * payloads of the checkpoint sections OPTM, CLIP and TRAN.
 *
 * TRAN layout (little-endian, docs/formats.md):
 *   0    u64 step (steps taken)
 *   8    u64 rng[4] (xoshiro256** state)
 *   40   u64 cursor, epoch, epoch_steps, epoch_clipped, clipped, skipped
 *   88   f64 sum_lr, sum_lr2, epoch_loss, max_dist
 *   120  u64 n (training set size), u64 n_params
 *   136  u64 order[n] (a permutation of 0..n-1), then f32 theta0[n_params]
 */
#include <string.h>

#include "base/bytes_le.h"
#include "train/train.h"

enum { TRAN_HEADER = 136 };

clipnn_status clipnn_train_state_create(clipnn_train_state **out) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "training state: NULL argument");
    *out = clipnn_alloc_array(1, sizeof **out);
    return *out ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory");
}

static void clear(clipnn_train_state *s) {
    clipnn_free(s->optim);
    clipnn_free(s->clip);
    clipnn_free(s->loop);
    s->optim = s->clip = s->loop = NULL;
    s->optim_len = s->clip_len = s->loop_len = 0;
}

void clipnn_train_state_free(clipnn_train_state *s) {
    if (!s) return;
    clear(s);
    clipnn_free(s);
}

uint64_t clipnn_train_state_steps(const clipnn_train_state *s) {
    return s && s->loop ? le_get_u64(s->loop) : 0;
}

/* Bytes of a TRAN payload for n examples and n_params parameters; 0 when
 * that overflows. */
static uint64_t tran_bytes(uint64_t n, uint64_t n_params) {
    if (n > (UINT64_MAX / 2 - TRAN_HEADER) / 8 || n_params > (UINT64_MAX / 2) / 4) return 0;
    return TRAN_HEADER + 8 * n + 4 * n_params;
}

clipnn_status clipnn_train_loop_encode(const clipnn_train_loop *l, const size_t *order, size_t n,
                                       const float *theta0, size_t n_params, unsigned char **out,
                                       size_t *len) {
    uint64_t tb = tran_bytes(n, n_params);
    if (tb == 0 || tb > SIZE_MAX)
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "training state: %zu examples and %zu parameters are too many",
                           n, n_params);
    unsigned char *p = clipnn_alloc((size_t)tb);
    if (!p) return clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory");
    *out = p;
    *len = (size_t)tb;
    le_put_u64(p, l->step);
    for (int i = 0; i < 4; i++) le_put_u64(p + 8 + 8 * i, l->rng.s[i]);
    const uint64_t counts[6] = {l->cursor, l->epoch, l->epoch_steps, l->epoch_clipped, l->clipped, l->skipped};
    for (int i = 0; i < 6; i++) le_put_u64(p + 40 + 8 * i, counts[i]);
    const double sums[4] = {l->sum_lr, l->sum_lr2, l->epoch_loss, l->max_dist};
    for (int i = 0; i < 4; i++) le_put_f64(p + 88 + 8 * i, sums[i]);
    le_put_u64(p + 120, n);
    le_put_u64(p + 128, n_params);
    p += TRAN_HEADER;
    for (size_t i = 0; i < n; i++) le_put_u64(p + 8 * i, order[i]);
    le_put_f32s(p + 8 * n, theta0, n_params);
    return CLIPNN_OK;
}

uint64_t clipnn_train_loop_examples(const unsigned char *p) { return le_get_u64(p + 120); }

void clipnn_train_loop_decode(const unsigned char *p, clipnn_train_loop *l, size_t *order, size_t n,
                              float *theta0, size_t n_params) {
    l->step = le_get_u64(p);
    for (int i = 0; i < 4; i++) l->rng.s[i] = le_get_u64(p + 8 + 8 * i);
    l->cursor = (size_t)le_get_u64(p + 40);
    l->epoch = le_get_u64(p + 48);
    l->epoch_steps = le_get_u64(p + 56);
    l->epoch_clipped = le_get_u64(p + 64);
    l->clipped = le_get_u64(p + 72);
    l->skipped = le_get_u64(p + 80);
    l->sum_lr = le_get_f64(p + 88);
    l->sum_lr2 = le_get_f64(p + 96);
    l->epoch_loss = le_get_f64(p + 104);
    l->max_dist = le_get_f64(p + 112);
    p += TRAN_HEADER;
    for (size_t i = 0; i < n; i++) order[i] = (size_t)le_get_u64(p + 8 * i);
    le_get_f32s(theta0, p + 8 * n, n_params);
}

clipnn_status clipnn_train_state_validate(const clipnn_train_state *s, size_t n_params, const char *path) {
    if (!s->loop) return CLIPNN_OK;
    if (s->loop_len < TRAN_HEADER)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: training section of %zu bytes, shorter than its %d-byte header",
                           path, s->loop_len, TRAN_HEADER);
    const unsigned char *p = s->loop;
    uint64_t n = le_get_u64(p + 120), np = le_get_u64(p + 128), cursor = le_get_u64(p + 40);
    if (np != n_params)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: training state for %llu parameters, the model has %zu", path,
                           (unsigned long long)np, n_params);
    uint64_t want = tran_bytes(n, np);
    if (want == 0 || want != s->loop_len)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: training section of %zu bytes does not hold %llu examples",
                           path, s->loop_len, (unsigned long long)n);
    if (cursor > n)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: shuffle position %llu past the %llu examples", path,
                           (unsigned long long)cursor, (unsigned long long)n);
    /* An index out of range would read outside the data: the order must be
     * a permutation. n <= the section length / 8, so this is bounded. */
    unsigned char *seen = clipnn_alloc_array((size_t)n, 1);
    if (!seen && n) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", path);
    clipnn_status st = CLIPNN_OK;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = le_get_u64(p + TRAN_HEADER + 8 * i);
        if (k >= n || seen[k]) {
            st = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the saved shuffle order is not a permutation (entry %llu)",
                             path, (unsigned long long)i);
            break;
        }
        seen[k] = 1;
    }
    clipnn_free(seen);
    if (st) return st;
    if (!s->optim) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: training state without optimizer (OPTM) section", path);
    if (!s->clip) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: training state without clipper (CLIP) section", path);
    return clipnn_optimizer_state_check(s->optim, s->optim_len, n_params, path);
}

