/* Clipping before the average (--clip-where local | clip21): each process
 * clips its own slice's gradient, or moves its error-feedback vector
 * towards it by a clipped step (Clip21), before the slices are summed. */
#include <math.h>
#include <string.h>

#include "dist/dist.h"

static const char *const where_names[CLIPNN_CLIP_WHERE_COUNT] = {"global", "local", "clip21"};

/* The run's place: one per process, as a job trains one model at a time. */
static struct {
    clipnn_clip_where where;
    double tau;  /* the norm rule's lambda */
    float *feed; /* [n] Clip21's vector e_i of this process (zero at the start) */
    size_t n;
} slice_clip = {CLIPNN_CLIP_WHERE_GLOBAL, 0, NULL, 0};

const char *clipnn_clip_where_name(clipnn_clip_where w) {
    return (unsigned)w < CLIPNN_CLIP_WHERE_COUNT ? where_names[w] : "?";
}

clipnn_status clipnn_clip_where_parse(const char *name, clipnn_clip_where *out) {
    for (int i = 0; name && out && i < CLIPNN_CLIP_WHERE_COUNT; i++)
        if (!strcmp(name, where_names[i])) {
            *out = (clipnn_clip_where)i;
            return CLIPNN_OK;
        }
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "unknown clip place '%s' (want global, local or clip21)",
                       name ? name : "(null)");
}

clipnn_status clipnn_dist_check_where(const clipnn_train_options *o) {
    if (o->clip_where == CLIPNN_CLIP_WHERE_GLOBAL) return CLIPNN_OK;
    const char *w = clipnn_clip_where_name(o->clip_where);
    if ((unsigned)o->clip_where >= CLIPNN_CLIP_WHERE_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: clip_where %d is not a clip place", (int)o->clip_where);
    if (!clipnn_dist_active())
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: --clip-where %s needs an MPI job (the MPI build, "
                           "make MPI=1); one process clips its whole gradient (--clip-where global)", w);
    if (o->clip.rule != CLIPNN_CLIP_NORM || o->clip.p != 2)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: --clip-where %s clips each process's gradient by its "
                           "Euclidean norm: it needs --clip norm with p = 2", w);
    return CLIPNN_OK;
}

const clipnn_clip_options *clipnn_dist_global_clip(const clipnn_train_options *o, clipnn_clip_options *unclipped) {
    if (o->clip_where == CLIPNN_CLIP_WHERE_GLOBAL) return &o->clip;
    *unclipped = o->clip; /* the non-finite policy stays; the average is not clipped again */
    unclipped->rule = CLIPNN_CLIP_NONE;
    return unclipped;
}

clipnn_status clipnn_dist_open_where(const clipnn_train_options *o, size_t n) {
    /* Outside a job the place is global (clipnn_dist_check_where) and the
     * state is not touched: trainings in several threads may run at once. */
    if (!clipnn_dist_active()) return CLIPNN_OK;
    slice_clip.where = o->clip_where, slice_clip.tau = o->clip.lambda, slice_clip.n = n;
    if (o->clip_where != CLIPNN_CLIP_WHERE_CLIP21) return CLIPNN_OK;
    if (!(slice_clip.feed = clipnn_alloc_array(n, sizeof *slice_clip.feed)))
        return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory");
    return CLIPNN_OK;
}

float *clipnn_dist_feed(size_t *n) {
    *n = slice_clip.feed ? slice_clip.n : 0;
    return slice_clip.feed;
}

void clipnn_dist_close_where(void) {
    if (slice_clip.where == CLIPNN_CLIP_WHERE_GLOBAL && !slice_clip.feed) return; /* only reads, as above */
    clipnn_free(slice_clip.feed);
    slice_clip.feed = NULL, slice_clip.where = CLIPNN_CLIP_WHERE_GLOBAL;
}

/* min(1, tau / ||v||), or NAN when ||v|| is not finite. */
static float clip_factor(double sumsq, double tau) {
    double norm = sqrt(sumsq);
    if (!isfinite(norm)) return NAN;
    return norm > tau ? (float)(tau / norm) : 1.0f;
}

/* e <- e + clip(g - e), then g <- e; e kept as it was when g - e is not
 * finite (g then carries the NaN or Inf to the non-finite policy). */
static void clip21_step(float *g, float *e, size_t n, double tau) {
    double sumsq = 0;
    for (size_t j = 0; j < n; j++) sumsq += ((double)g[j] - e[j]) * ((double)g[j] - e[j]);
    float f = clip_factor(sumsq, tau);
    if (isnan(f)) return;
    for (size_t j = 0; j < n; j++) g[j] = e[j] += f * (g[j] - e[j]);
}

void clipnn_dist_clip_slice(float *g, size_t n) {
    if (slice_clip.where == CLIPNN_CLIP_WHERE_CLIP21 && n == slice_clip.n) {
        clip21_step(g, slice_clip.feed, n, slice_clip.tau);
    } else if (slice_clip.where == CLIPNN_CLIP_WHERE_LOCAL) {
        double sumsq = 0;
        for (size_t j = 0; j < n; j++) sumsq += (double)g[j] * g[j];
        float f = clip_factor(sumsq, slice_clip.tau);
        if (f < 1) for (size_t j = 0; j < n; j++) g[j] *= f;
    }
}

int clipnn_dist_slice_clipped(void) { return slice_clip.where != CLIPNN_CLIP_WHERE_GLOBAL; }
