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
 *
 * BPTT layout (a run with truncated BPTT or a carried state only):
 *   0    u64 k1, k2, carry_state (the options, as resolved)
 *   24   u64 chunk (the next step's chunk of the current batch)
 *   32   u64 batch (its sequences, 0: none drawn yet), u64 state floats
 *   48   u64 idx[batch] (its rows), then f32 state[state floats]
 *
 * EPCH layout (optional; written by every build that knows it):
 *   0    u64 skipped (the epoch's skipped steps and empty Poisson batches)
 *   8    u64 correct, rows (the running accuracy's counts, over every process)
 */
#include <string.h>

#include "base/bytes_le.h"
#include "dist/dist.h"
#include "train/train.h"

enum { TRAN_HEADER = 136, BPTT_HEADER = 48, EPCH_BYTES = 24 };

clipnn_status clipnn_train_state_create(clipnn_train_state **out) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "training state: NULL argument");
    *out = clipnn_alloc_array(1, sizeof **out);
    return *out ? CLIPNN_OK : clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory");
}

static void clear(clipnn_train_state *s) {
    clipnn_free(s->optim);
    clipnn_free(s->clip);
    clipnn_free(s->loop);
    clipnn_free(s->bptt);
    clipnn_free(s->priv);
    clipnn_free(s->epch);
    clipnn_free(s->feed);
    s->optim = s->clip = s->loop = s->bptt = s->priv = s->epch = s->feed = NULL;
    s->optim_len = s->clip_len = s->loop_len = s->bptt_len = s->priv_len = s->epch_len = s->feed_len = 0;
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

/* ---------------------------------------------------------------- EPCH */

clipnn_status clipnn_train_state_capture_epoch(clipnn_train_state *s, const clipnn_epoch_sums *e) {
    unsigned char *p = s->epch ? s->epch : clipnn_alloc(EPCH_BYTES);
    if (!p) return clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory");
    le_put_u64(p, e->skipped);
    le_put_u64(p + 8, e->correct);
    le_put_u64(p + 16, e->rows);
    s->epch = p, s->epch_len = EPCH_BYTES;
    return CLIPNN_OK;
}

void clipnn_train_state_restore_epoch(const clipnn_train_state *s, clipnn_epoch_sums *e) {
    *e = (clipnn_epoch_sums){0, 0, 0};
    if (!s->epch) return;
    *e = (clipnn_epoch_sums){le_get_u64(s->epch), le_get_u64(s->epch + 8), le_get_u64(s->epch + 16)};
}

clipnn_status clipnn_epoch_sums_check(const unsigned char *p, size_t len, const unsigned char *tran,
                                      const char *path) {
    if (len != EPCH_BYTES)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: epoch section of %zu bytes, not %d", path, len, EPCH_BYTES);
    uint64_t skipped = le_get_u64(p), correct = le_get_u64(p + 8), rows = le_get_u64(p + 16);
    uint64_t epoch_steps = le_get_u64(tran + 56);
    if (skipped > epoch_steps || correct > rows)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: epoch section with %llu skipped of %llu steps, %llu right of %llu "
                           "rows", path, (unsigned long long)skipped, (unsigned long long)epoch_steps,
                           (unsigned long long)correct, (unsigned long long)rows);
    return CLIPNN_OK;
}

/* ---------------------------------------------------------------- BPTT */

/* Bytes of a BPTT payload; 0 when that overflows. */
static uint64_t bptt_bytes(uint64_t batch, uint64_t floats) {
    if (batch > (UINT64_MAX / 4) / 8 || floats > (UINT64_MAX / 4) / 4) return 0;
    return BPTT_HEADER + 8 * batch + 4 * floats;
}

clipnn_status clipnn_bptt_loop_encode(const clipnn_bptt_loop *b, unsigned char **out, size_t *len) {
    size_t floats = b->batch * b->state_width;
    uint64_t bytes = bptt_bytes(b->batch, floats);
    unsigned char *p = bytes && bytes <= SIZE_MAX ? clipnn_alloc((size_t)bytes) : NULL;
    if (!p) return clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory for the carried state");
    const uint64_t fields[6] = {b->k1, b->k2, b->carry, b->chunk, b->batch, floats};
    for (int i = 0; i < 6; i++) le_put_u64(p + 8 * i, fields[i]);
    for (size_t i = 0; i < b->batch; i++) le_put_u64(p + BPTT_HEADER + 8 * i, b->idx[i]);
    le_put_f32s(p + BPTT_HEADER + 8 * b->batch, b->state, floats);
    *out = p;
    *len = (size_t)bytes;
    return CLIPNN_OK;
}

clipnn_status clipnn_bptt_loop_check(const unsigned char *p, size_t len, const char *path) {
    if (len < BPTT_HEADER)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: BPTT section of %zu bytes, shorter than its %d-byte header", path,
                           len, BPTT_HEADER);
    uint64_t k1 = le_get_u64(p), k2 = le_get_u64(p + 8), carry = le_get_u64(p + 16);
    uint64_t batch = le_get_u64(p + 32), floats = le_get_u64(p + 40);
    if (k1 == 0 || k2 == 0 || carry > 1)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: BPTT section with chunks of %llu steps, %llu back, carry %llu",
                           path, (unsigned long long)k1, (unsigned long long)k2, (unsigned long long)carry);
    uint64_t want = bptt_bytes(batch, floats);
    if (want == 0 || want != len)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: BPTT section of %zu bytes does not hold %llu rows and %llu state "
                           "values", path, len, (unsigned long long)batch, (unsigned long long)floats);
    return CLIPNN_OK;
}

/* The saved run's options against this run's. */
static clipnn_status bptt_same_options(const unsigned char *p, const clipnn_bptt_loop *b, const char *origin) {
    uint64_t k1 = le_get_u64(p), k2 = le_get_u64(p + 8), carry = le_get_u64(p + 16);
    if (k1 == b->k1 && k2 == b->k2 && carry == b->carry) return CLIPNN_OK;
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the run was made with chunks of %llu steps, %llu steps back%s; "
                       "continue it with the same (here %llu, %llu%s)", origin, (unsigned long long)k1,
                       (unsigned long long)k2, carry ? " and the state carried" : "", (unsigned long long)b->k1,
                       (unsigned long long)b->k2, b->carry ? " and the state carried" : "");
}

clipnn_status clipnn_bptt_loop_decode(const unsigned char *p, clipnn_bptt_loop *b, size_t n, const char *origin) {
    clipnn_status st = bptt_same_options(p, b, origin);
    if (st) return st;
    uint64_t chunk = le_get_u64(p + 24), batch = le_get_u64(p + 32), floats = le_get_u64(p + 40);
    if (batch > b->max_batch || floats != batch * b->state_width || chunk >= b->chunks || (chunk && !batch))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: a batch of %llu sequences with %llu state values at chunk %llu, "
                           "this run takes %zu with %zu each in %llu chunks", origin, (unsigned long long)batch,
                           (unsigned long long)floats, (unsigned long long)chunk, b->max_batch, b->state_width,
                           (unsigned long long)b->chunks);
    for (uint64_t i = 0; i < batch; i++) {
        uint64_t row = le_get_u64(p + BPTT_HEADER + 8 * i);
        if (row >= n)
            return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: the current batch holds row %llu of %zu", origin,
                               (unsigned long long)row, n);
        b->idx[i] = (size_t)row;
    }
    b->chunk = (size_t)chunk;
    b->batch = (size_t)batch;
    le_get_f32s(b->state, p + BPTT_HEADER + 8 * batch, (size_t)floats);
    return CLIPNN_OK;
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
    if (s->bptt && (st = clipnn_bptt_loop_check(s->bptt, s->bptt_len, path))) return st;
    if (s->priv && (st = clipnn_dp_check(s->priv, s->priv_len, path))) return st;
    if (s->epch && (st = clipnn_epoch_sums_check(s->epch, s->epch_len, s->loop, path))) return st;
    if (s->feed && (st = clipnn_dist_check_feed(s->feed, s->feed_len, n_params, path))) return st;
    return clipnn_optimizer_state_check(s->optim, s->optim_len, n_params, path);
}

