/* The recurrent telemetry of clipnn_train's step record: the spectral
 * radius of every gate block of W_hh and the norm of d loss / d h_t at
 * every step t of the pass, at the steps the options ask for. Every buffer
 * is allocated when the run opens, only for what is asked; a step that
 * asks for nothing costs a comparison. */
#include <math.h>
#include <string.h>

#include "train/train.h"

void clipnn_rec_telemetry_close(clipnn_rec_telemetry *t) {
    clipnn_free(t->radius), clipnn_free(t->scratch), clipnn_free(t->trace.dh), clipnn_free(t->norms);
    memset(t, 0, sizeof *t);
}

static size_t gate_blocks(const clipnn_model *m, size_t *hmax) {
    size_t n = 0;
    *hmax = 0;
    for (size_t l = 0; l < m->n_rec; l++) {
        n += clipnn_model_layer_gates(m, l);
        if (m->rec[l].shape.hidden > *hmax) *hmax = m->rec[l].shape.hidden;
    }
    return n;
}

static int time_grad_wanted(const clipnn_train_options *o) {
    return o->log_time_grad_every > 0 || o->n_log_time_grad_steps > 0;
}

clipnn_status clipnn_rec_telemetry_open(clipnn_rec_telemetry *t, const clipnn_train_options *o,
                                        const clipnn_model *m, size_t max_batch) {
    memset(t, 0, sizeof *t);
    if (!m->n_rec) return CLIPNN_OK;
    if (o->n_log_time_grad_steps && !o->log_time_grad_steps)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: %zu steps of d loss / d h_t to log, but no list",
                           o->n_log_time_grad_steps);
    t->o = o;
    size_t hmax, blocks = gate_blocks(m, &hmax);
    int ok = 1;
    if (o->log_radius_every) {
        t->radius = clipnn_alloc_array(blocks, sizeof *t->radius);
        t->scratch = clipnn_alloc_array(2 * hmax, sizeof *t->scratch);
        ok = t->radius && t->scratch;
    }
    if (ok && time_grad_wanted(o)) {
        t->trace.dh = clipnn_alloc_array(clipnn_front_trace_floats(m, max_batch, m->steps), sizeof *t->trace.dh);
        t->norms = clipnn_alloc_array(m->n_rec * m->steps, sizeof *t->norms);
        ok = t->trace.dh && t->norms;
    }
    if (ok) return CLIPNN_OK;
    clipnn_rec_telemetry_close(t);
    return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory for the recurrent telemetry");
}

static int time_grad_due(const clipnn_train_options *o, uint64_t step) {
    if (o->log_time_grad_every && step % o->log_time_grad_every == 0) return 1;
    for (size_t i = 0; i < o->n_log_time_grad_steps; i++)
        if (o->log_time_grad_steps[i] == step) return 1;
    return 0;
}

void clipnn_rec_telemetry_begin(clipnn_rec_telemetry *t, const clipnn_model *m, uint64_t step,
                                clipnn_fused_opts *f) {
    t->radius_now = t->radius && step % t->o->log_radius_every == 0;
    t->grad_now = t->norms && time_grad_due(t->o, step);
    f->trace = t->grad_now ? &t->trace : NULL;
    if (!t->radius_now) return;
    size_t i = 0;
    for (size_t l = 0; l < m->n_rec; l++)
        for (size_t g = 0; g < clipnn_model_layer_gates(m, l); g++)
            t->radius[i++] = clipnn_rec_block_radius(m, l, g, t->scratch);
}

/* The 2-norm over the batch and the units of each step's row of one
 * layer's trace rows [batch][steps][h], into norms[steps]. */
static void step_norms(const float *rows, size_t batch, size_t steps, size_t h, double *norms) {
    for (size_t s = 0; s < steps; s++) {
        double acc = 0;
        for (size_t b = 0; b < batch; b++) acc += clipnn_norm_accumulate(rows + (b * steps + s) * h, h, 2.0);
        norms[s] = sqrt(acc);
    }
}

void clipnn_rec_telemetry_end(clipnn_rec_telemetry *t, const clipnn_model *m, clipnn_fused_opts *f) {
    f->trace = NULL;
    if (!t->grad_now) return;
    const clipnn_dh_trace *tr = &t->trace;
    const float *rows = tr->dh;
    for (size_t l = 0; l < m->n_rec; l++) {
        size_t h = m->rec[l].shape.hidden;
        step_norms(rows, tr->batch, tr->steps, h, t->norms + l * tr->steps);
        rows += tr->batch * tr->steps * h;
    }
}

void clipnn_rec_telemetry_fill(const clipnn_rec_telemetry *t, clipnn_step_record *rec) {
    rec->rec_radius = t->radius_now ? t->radius : NULL;
    rec->time_grad_norms = t->grad_now ? t->norms : NULL;
    rec->time_grad_steps = t->grad_now ? t->trace.steps : 0;
}
