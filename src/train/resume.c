/* Capturing a run of clipnn_train into a clipnn_train_state and putting it
 * back, so that the resumed run takes exactly the steps the uninterrupted
 * one would have taken. Kept apart from src/train/train_state.c (the TRAN bytes)
 * so that reading a checkpoint does not pull in the optimizer and clipper. */
#include <stdio.h>

#include "dist/dist.h"
#include "train/train.h"

clipnn_status clipnn_train_state_capture(clipnn_train_state *s, const clipnn_train_loop *l,
                                         const size_t *order, size_t n, const float *theta0,
                                         size_t n_params, const clipnn_optimizer *o,
                                         const clipnn_clipper *c, const clipnn_bptt_loop *bptt) {
    unsigned char *loop = NULL, *bp = NULL;
    size_t loop_len = 0, bp_len = 0;
    clipnn_status st = clipnn_train_loop_encode(l, order, n, theta0, n_params, &loop, &loop_len);
    if (!st && bptt) st = clipnn_bptt_loop_encode(bptt, &bp, &bp_len);
    if (st) {
        clipnn_free(loop);
        return st;
    }
    size_t olen = clipnn_optimizer_state_size(o), clen = clipnn_clipper_state_size(c);
    /* clipnn_alloc never returns NULL for 0 bytes, so an empty clipper
     * state is still a (zero-length) section of the file. */
    unsigned char *ob = clipnn_alloc(olen), *cb = clipnn_alloc(clen);
    if (!ob || !cb) {
        clipnn_free(loop), clipnn_free(bp), clipnn_free(ob), clipnn_free(cb);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory");
    }
    clipnn_optimizer_state_save(o, ob);
    clipnn_clipper_state_save(c, cb);

    clipnn_free(s->optim), clipnn_free(s->clip), clipnn_free(s->loop), clipnn_free(s->bptt), clipnn_free(s->priv);
    clipnn_free(s->epch);
    s->priv = NULL, s->priv_len = 0;
    s->epch = NULL, s->epch_len = 0;
    s->loop = loop, s->loop_len = loop_len;
    s->bptt = bp, s->bptt_len = bp_len;
    s->optim = ob, s->optim_len = olen;
    s->clip = cb, s->clip_len = clen;
    s->source[0] = 0;
    return CLIPNN_OK;
}

clipnn_status clipnn_train_state_restore(const clipnn_train_state *s, clipnn_train_loop *l, size_t *order,
                                         size_t n, float *theta0, size_t n_params, clipnn_optimizer *o,
                                         clipnn_clipper *c, clipnn_bptt_loop *bptt) {
    const char *origin = s->source[0] ? s->source : "training state";
    if (!s->loop) return clipnn_fail(CLIPNN_ERR_STATE, "%s: empty, nothing to resume", origin);
    clipnn_status st = clipnn_train_state_validate(s, n_params, origin);
    if (st) return st;
    uint64_t saved_n = clipnn_train_loop_examples(s->loop);
    if (saved_n != n)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: the run was trained on %llu examples, this training set has %zu",
                           origin, (unsigned long long)saved_n, n);
    if (!s->bptt != !bptt)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the run was made %s truncated backpropagation through time "
                           "or a carried state; continue it %s them", origin, s->bptt ? "with" : "without",
                           s->bptt ? "with" : "without");
    /* decoded first: it checks the most and leaves o and c as they were */
    if (bptt && (st = clipnn_bptt_loop_decode(s->bptt, bptt, n, origin))) return st;
    st = clipnn_optimizer_state_load(o, s->optim, s->optim_len);
    if (!st) st = clipnn_clipper_state_load(c, s->clip, s->clip_len);
    if (st) {
        /* The detail is in the same thread-local buffer clipnn_fail writes. */
        char why[512];
        snprintf(why, sizeof why, "%s", clipnn_last_error());
        return clipnn_fail(st, "%s: %s", origin, why);
    }
    clipnn_train_loop_decode(s->loop, l, order, n, theta0, n_params);
    return CLIPNN_OK;
}

clipnn_status clipnn_train_state_capture_privacy(clipnn_train_state *s, const clipnn_dp_state *d) {
    unsigned char *p = NULL;
    size_t len = 0;
    clipnn_status st = d->on ? clipnn_dp_encode(d, &p, &len) : CLIPNN_OK;
    if (st) return st;
    clipnn_free(s->priv);
    s->priv = p, s->priv_len = len;
    return CLIPNN_OK;
}

clipnn_status clipnn_train_state_restore_privacy(const clipnn_train_state *s, clipnn_dp_state *d) {
    const char *origin = s->source[0] ? s->source : "training state";
    if (!s->priv != !d->on)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the run was made %s per-sample clipping with noise (a private "
                           "run); continue it %s", origin, s->priv ? "with" : "without",
                           s->priv ? "with the same noise" : "without noise");
    return s->priv ? clipnn_dp_decode(s->priv, d, origin) : CLIPNN_OK;
}

clipnn_status clipnn_train_state_capture_feed(clipnn_train_state *s) {
    unsigned char *p = NULL;
    size_t len = 0;
    clipnn_status st = clipnn_dist_save_feed(&p, &len);
    if (st) return st;
    clipnn_free(s->feed);
    s->feed = p, s->feed_len = len;
    return CLIPNN_OK;
}

clipnn_status clipnn_train_state_restore_feed(const clipnn_train_state *s) {
    return clipnn_dist_restore_feed(s->feed, s->feed_len, s->source[0] ? s->source : "training state");
}
