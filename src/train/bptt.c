/* Truncated backpropagation through time and the state carried between
 * batches, for clipnn_train: the options resolved and checked, the window
 * of each chunk (which steps are forwarded, which have a loss, how far the
 * gradient flows back, where the next chunk's state is taken), the chunk's
 * input and targets sliced out of the batch, and the state handed from
 * chunk to chunk and from batch to batch. Every buffer is allocated when
 * the run opens. */
#include <string.h>

#include "dist/dist.h"
#include "train/train.h"

static int bptt_wanted(const clipnn_train_options *o) { return o->bptt_chunk || o->bptt_steps || o->carry_state; }

clipnn_status clipnn_bptt_check(const clipnn_train_options *o, const clipnn_model *m) {
    if (!bptt_wanted(o)) return CLIPNN_OK;
    if (!m->n_rec)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: truncated backpropagation through time and a carried "
                           "state need a model with recurrent layers");
    size_t T = m->steps, k1 = o->bptt_chunk ? o->bptt_chunk : T, k2 = o->bptt_steps ? o->bptt_steps : k1;
    if (k1 > T || k2 > T)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: chunks of %zu steps, %zu steps back: the sequences have "
                           "%zu steps, neither can be more", k1, k2, T);
    if (!m->every_step && k1 < T)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: a many-to-one model has a loss at its last step only, "
                           "so chunks of %zu of its %zu steps would have none; chunks of all its steps with fewer "
                           "steps back truncate its gradient", k1, T);
    if (o->carry_state && o->replacement)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: a carried state needs the batches in the data's order, "
                           "not drawn with replacement");
    if (o->clip.rule == CLIPNN_CLIP_PER_SAMPLE)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "train: per-sample clipping does not take truncated "
                           "backpropagation through time or a carried state");
    return CLIPNN_OK;
}

void clipnn_bptt_close(clipnn_bptt_run *b) {
    clipnn_free(b->loop.idx), clipnn_free(b->loop.state), clipnn_free(b->next);
    clipnn_free(b->xw), clipnn_free(b->yw);
    clipnn_free(b->lanes), clipnn_free(b->own_in), clipnn_free(b->own_out);
    memset(b, 0, sizeof *b);
}

/* The options (checked by clipnn_bptt_check) for batches of up to
 * max_batch sequences with y_row targets each; nothing when none is set. */
clipnn_status clipnn_bptt_open(clipnn_bptt_run *b, const clipnn_train_options *o, const clipnn_model *m,
                               size_t max_batch, size_t y_row) {
    memset(b, 0, sizeof *b);
    b->loop.chunks = 1;
    if (!bptt_wanted(o)) return CLIPNN_OK;
    size_t T = m->steps;
    b->on = 1;
    b->T = T;
    b->step_dim = m->step_dim;
    b->y_step = m->every_step ? y_row / T : 0;
    clipnn_bptt_loop *L = &b->loop;
    L->k1 = o->bptt_chunk ? o->bptt_chunk : T;
    L->k2 = o->bptt_steps ? o->bptt_steps : L->k1;
    L->carry = o->carry_state != 0;
    L->chunks = (T + L->k1 - 1) / L->k1;
    L->max_batch = max_batch;
    L->state_width = clipnn_front_state_floats(m, 1);
    L->idx = clipnn_alloc_array(max_batch, sizeof *L->idx);
    L->state = clipnn_alloc_array(max_batch * L->state_width, sizeof *L->state);
    b->next = clipnn_alloc_array(max_batch * L->state_width, sizeof *b->next);
    b->xw = clipnn_alloc_array(max_batch * m->n_inputs, sizeof *b->xw);
    b->yw = clipnn_alloc_array(max_batch * (y_row ? y_row : 1), sizeof *b->yw);
    int job = clipnn_dist_active();
    if (job) {
        b->lanes = clipnn_alloc_array(max_batch, sizeof *b->lanes);
        b->own_in = clipnn_alloc_array(max_batch * L->state_width, sizeof *b->own_in);
        b->own_out = clipnn_alloc_array(max_batch * L->state_width, sizeof *b->own_out);
    }
    if (L->idx && L->state && b->next && b->xw && b->yw && (!job || (b->lanes && b->own_in && b->own_out)))
        return CLIPNN_OK;
    clipnn_bptt_close(b);
    return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory for truncated backpropagation");
}

void clipnn_bptt_new_batch(clipnn_bptt_run *b, const size_t *idx, size_t batch, int new_pass) {
    clipnn_bptt_loop *L = &b->loop;
    memcpy(L->idx, idx, batch * sizeof *idx);
    L->batch = batch;
    L->chunk = 0;
    if (!L->carry || new_pass) memset(L->state, 0, batch * L->state_width * sizeof *L->state);
}

size_t clipnn_bptt_own_lanes(clipnn_bptt_run *b, size_t *rows) {
    memcpy(rows, b->loop.idx, b->loop.batch * sizeof *rows);
    return b->own = clipnn_dist_take_owned(rows, b->loop.batch, b->lanes);
}

/* The lanes b->lanes[own] of a state of the batch's sequences (blocks
 * [batch][hidden] layer after layer: h, then c for an LSTM) to a packed
 * state of `own` sequences (pack), or back. */
static void move_lanes(const clipnn_model *m, const clipnn_bptt_run *b, float *whole, float *packed, int pack) {
    size_t B = b->loop.batch, own = b->own, wo = 0, po = 0;
    for (size_t l = 0; l < m->n_rec; l++)
        for (int part = 0; part < (m->rec[l].shape.cell == CLIPNN_CELL_LSTM ? 2 : 1); part++) {
            size_t w = m->rec[l].shape.hidden;
            for (size_t k = 0; k < own; k++) {
                float *a = whole + wo + b->lanes[k] * w, *p = packed + po + k * w;
                memcpy(pack ? p : a, pack ? a : p, w * sizeof *a);
            }
            wo += B * w, po += own * w;
        }
}

/* A chunk in a job: this process's lanes from their states, the gradient
 * summed over the processes, and every lane's next state on every process
 * (each lane's from the process that computed it, the others' zeros
 * summed in: exact), so that a lane can be computed by another process at
 * the next batch and a checkpoint holds them all. */
static clipnn_status job_chunk(clipnn_bptt_run *b, clipnn_model *m, const clipnn_loss_options *lo, const float *x,
                               const float *y, clipnn_window *w, const clipnn_fused_opts *f, double *loss) {
    size_t n = b->loop.batch * b->loop.state_width;
    move_lanes(m, b, b->loop.state, b->own_in, 1);
    w->state_in = b->own_in, w->state_out = b->own_out;
    clipnn_status s = clipnn_dist_window_grad(m, lo, x, y, b->own, b->loop.batch, w, f, loss);
    if (s) return s;
    memset(b->next, 0, n * sizeof *b->next);
    move_lanes(m, b, b->next, b->own_out, 0);
    clipnn_dist_sum_f32(b->next, n, 1);
    return CLIPNN_OK;
}

/* The steps of chunk c: its first and end, and the first step it forwards:
 * the window's start k2 steps before the end (not before 0), or the
 * chunk's own when k2 < k1. */
static void chunk_steps(const clipnn_bptt_run *b, size_t c, size_t *start, size_t *end, size_t *window,
                        size_t *first) {
    size_t k1 = (size_t)b->loop.k1, k2 = (size_t)b->loop.k2;
    *start = c * k1;
    *end = *start + k1 < b->T ? *start + k1 : b->T;
    *window = *end > k2 ? *end - k2 : 0;
    *first = *start < *window ? *start : *window;
}

/* The window of chunk c; the state it leaves is the one the next chunk
 * starts from (after the last chunk: the batch's final state, which a
 * stream carries into the next batch). */
static clipnn_window chunk_window(const clipnn_bptt_run *b, size_t c, int every_step, size_t *start, size_t *end,
                                  size_t *first) {
    size_t window, next = b->T, s1, e1, w1;
    chunk_steps(b, c, start, end, &window, first);
    if (c + 1 < b->loop.chunks) chunk_steps(b, c + 1, &s1, &e1, &w1, &next);
    return (clipnn_window){.steps = *end - *first,
                           .loss_from = every_step ? *start - *first : 0,
                           .back = *end - window,
                           .state_in = b->loop.state,
                           .state_out = b->next,
                           .carry_at = next - *first};
}

clipnn_status clipnn_bptt_loss_grad(clipnn_bptt_run *b, clipnn_model *m, const clipnn_loss_options *lo,
                                    const float *xb, const float *yb, const clipnn_fused_opts *f, double *loss) {
    int job = clipnn_dist_active();
    size_t start, end, first, B = job ? b->own : b->loop.batch;
    clipnn_window w = chunk_window(b, b->loop.chunk, m->every_step, &start, &end, &first);
    const float *x = xb, *y = yb;
    if (w.steps < b->T) {
        clipnn_slice_steps(b->xw, xb, B, b->T, b->step_dim, first, end);
        x = b->xw;
    }
    if (m->every_step && end - start < b->T) {
        clipnn_slice_steps(b->yw, yb, B, b->T, b->y_step, start, end);
        y = b->yw;
    }
    return job ? job_chunk(b, m, lo, x, y, &w, f, loss) : clipnn_loss_grad_window(m, lo, x, y, B, &w, f, loss);
}

void clipnn_bptt_advance(clipnn_bptt_run *b) {
    clipnn_bptt_loop *L = &b->loop;
    float *carried = b->next;
    b->next = L->state;
    L->state = carried;
    L->chunk = (L->chunk + 1) % L->chunks;
}
