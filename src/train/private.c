/* Private runs: the accountant a run keeps (composition of the per-step
 * RDP), its PRIV checkpoint payload, and Poisson sampling.
 *
 * PRIV layout (little-endian, docs/formats.md):
 *   0    u64 n_orders, u64 steps (noisy steps taken)
 *   16   f64 q (sampling rate), f64 sigma (noise multiplier), f64 delta
 *   40   u64 poisson (1: the batches were Poisson-sampled, 0: they were not)
 *   48   f64 orders[n_orders], then f64 rdp[n_orders] (the total so far)
 */
#include <math.h>
#include <string.h>

#include "base/bytes_le.h"
#include "train/train.h"

enum { PRIV_HEADER = 48 };

clipnn_status clipnn_dp_open(clipnn_dp_state *d, double q, double sigma, double delta) {
    memset(d, 0, sizeof *d);
    if (!(sigma > 0)) return CLIPNN_OK;
    d->n_orders = clipnn_dp_orders(NULL);
    d->step_rdp = clipnn_alloc_array(2 * d->n_orders, sizeof *d->step_rdp);
    if (!d->step_rdp) return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory for the privacy accountant");
    d->rdp = d->step_rdp + d->n_orders;
    clipnn_status s = clipnn_dp_rdp(q, sigma, d->step_rdp);
    if (!s && !(delta > 0 && delta < 1))
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: delta %g, want 0 < delta < 1", delta);
    if (s) {
        clipnn_dp_close(d);
        return s;
    }
    d->on = 1, d->q = q, d->sigma = sigma, d->delta = delta;
    return CLIPNN_OK;
}

void clipnn_dp_close(clipnn_dp_state *d) {
    clipnn_free(d->step_rdp);
    memset(d, 0, sizeof *d);
}

void clipnn_dp_step(clipnn_dp_state *d) {
    if (!d->on) return;
    for (size_t k = 0; k < d->n_orders; k++) d->rdp[k] += d->step_rdp[k];
    d->steps++;
}

double clipnn_dp_spent(const clipnn_dp_state *d) {
    double eps = NAN;
    if (d->on) clipnn_dp_epsilon_of_rdp(d->rdp, d->delta, &eps, NULL);
    return eps;
}

clipnn_status clipnn_dp_encode(const clipnn_dp_state *d, unsigned char **out, size_t *len) {
    const double *orders;
    size_t n = clipnn_dp_orders(&orders), bytes = PRIV_HEADER + 16 * n;
    unsigned char *p = clipnn_alloc(bytes);
    if (!p) return clipnn_fail(CLIPNN_ERR_NOMEM, "training state: out of memory for the privacy accountant");
    le_put_u64(p, n);
    le_put_u64(p + 8, d->steps);
    le_put_f64(p + 16, d->q);
    le_put_f64(p + 24, d->sigma);
    le_put_f64(p + 32, d->delta);
    le_put_u64(p + 40, (uint64_t)(d->poisson != 0));
    for (size_t k = 0; k < n; k++) {
        le_put_f64(p + PRIV_HEADER + 8 * k, orders[k]);
        le_put_f64(p + PRIV_HEADER + 8 * (n + k), d->rdp[k]);
    }
    *out = p;
    *len = bytes;
    return CLIPNN_OK;
}

clipnn_status clipnn_dp_check(const unsigned char *p, size_t len, const char *path) {
    const double *orders;
    size_t n = clipnn_dp_orders(&orders);
    if (len < PRIV_HEADER || le_get_u64(p) != n || len != PRIV_HEADER + 16 * n)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: privacy (PRIV) section of %zu bytes, this build's accountant "
                           "keeps %zu orders", path, len, n);
    for (size_t k = 0; k < n; k++) {
        double rdp = le_get_f64(p + PRIV_HEADER + 8 * (n + k));
        if (le_get_f64(p + PRIV_HEADER + 8 * k) != orders[k])
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: privacy (PRIV) section over other orders than this build's",
                               path);
        if (!(rdp >= 0)) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: privacy (PRIV) section with RDP %g", path, rdp);
    }
    double q = le_get_f64(p + 16), sigma = le_get_f64(p + 24), delta = le_get_f64(p + 32);
    if (!(q > 0 && q <= 1 && sigma > 0 && delta > 0 && delta < 1) || le_get_u64(p + 40) > 1)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: privacy (PRIV) section with sampling rate %g, noise %g, delta %g",
                           path, q, sigma, delta);
    return CLIPNN_OK;
}

clipnn_status clipnn_dp_decode(const unsigned char *p, clipnn_dp_state *d, const char *origin) {
    double q = le_get_f64(p + 16), sigma = le_get_f64(p + 24);
    if (q != d->q || sigma != d->sigma)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: the run was made at sampling rate %.17g with noise %.17g; "
                           "continue it with the same (here %.17g and %.17g)", origin, q, sigma, d->q, d->sigma);
    d->steps = le_get_u64(p + 8);
    for (size_t k = 0; k < d->n_orders; k++) d->rdp[k] = le_get_f64(p + PRIV_HEADER + 8 * (d->n_orders + k));
    return CLIPNN_OK;
}

size_t clipnn_poisson_gap(clipnn_rng *rng, double q, size_t n) {
    if (q >= 1) return 0;
    /* 1 - U in (0, 1]: the gap floor(log(1 - U) / log(1 - q)) is
     * geometric, P(gap = k) = (1 - q)^k q */
    double g = floor(log(1 - clipnn_rng_uniform(rng)) / log1p(-q));
    return g < (double)n ? (size_t)g : n;
}

size_t clipnn_poisson_fill(clipnn_rng *rng, double q, size_t n, size_t *next, size_t *idx, size_t cap) {
    size_t count = 0;
    while (count < cap && *next < n) {
        idx[count++] = *next;
        size_t gap = clipnn_poisson_gap(rng, q, n);
        *next = gap >= n - *next ? n : *next + 1 + gap;
    }
    return count;
}

static const char *const sampling_names[CLIPNN_SAMPLING_COUNT] = {"auto", "shuffle", "poisson"};

const char *clipnn_sampling_name(clipnn_sampling v) {
    return (unsigned)v < CLIPNN_SAMPLING_COUNT ? sampling_names[v] : "?";
}

clipnn_status clipnn_sampling_parse(const char *name, clipnn_sampling *out) {
    for (int i = 0; name && out && i < CLIPNN_SAMPLING_COUNT; i++)
        if (!strcmp(name, sampling_names[i])) {
            *out = (clipnn_sampling)i;
            return CLIPNN_OK;
        }
    return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "unknown sampling '%s' (want auto, shuffle or poisson)",
                       name ? name : "(null)");
}

clipnn_sampling clipnn_train_sampling_of(const clipnn_train_options *o) {
    if (o->sampling != CLIPNN_SAMPLING_AUTO) return o->sampling;
    int private = o->clip.rule == CLIPNN_CLIP_PER_SAMPLE && o->clip.noise_multiplier > 0;
    return private && !o->replacement && !o->carry_state ? CLIPNN_SAMPLING_POISSON : CLIPNN_SAMPLING_SHUFFLE;
}

clipnn_status clipnn_train_check_sampling(const clipnn_train_options *o) {
    if ((unsigned)o->sampling >= CLIPNN_SAMPLING_COUNT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: unknown sampling %d", (int)o->sampling);
    if (o->physical_batch && o->clip.rule != CLIPNN_CLIP_PER_SAMPLE)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: physical batches are for per-sample clipping");
    if (o->sampling != CLIPNN_SAMPLING_POISSON) return CLIPNN_OK;
    if (o->clip.rule != CLIPNN_CLIP_PER_SAMPLE)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: Poisson sampling is for per-sample clipping (DP-SGD)");
    if (o->replacement || o->carry_state)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: Poisson sampling draws its own batches: no %s",
                           o->replacement ? "replacement" : "carried state");
    return CLIPNN_OK;
}

clipnn_status clipnn_train_noise_for_epsilon(clipnn_train_options *o, size_t n, double target) {
    if (!o || n == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "target epsilon: no options or no examples");
    if (o->clip.rule != CLIPNN_CLIP_PER_SAMPLE)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "target epsilon: needs per-sample clipping (DP-SGD), not %s",
                           clipnn_clip_rule_name(o->clip.rule));
    if (o->batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "target epsilon: batch size must be >= 1");
    size_t B = o->batch < n ? o->batch : n;
    uint64_t steps = o->steps ? o->steps : (uint64_t)o->epochs * ((n + B - 1) / B);
    double delta = o->dp_delta > 0 ? o->dp_delta : clipnn_dp_default_delta(n), sigma;
    clipnn_status s = clipnn_dp_noise_for_epsilon((double)B / (double)n, steps, delta, target, &sigma);
    if (s) return s;
    o->clip.noise_multiplier = sigma;
    return CLIPNN_OK;
}

clipnn_status clipnn_train_state_privacy(const clipnn_train_state *s, clipnn_privacy_spent *out) {
    if (!s || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "privacy: NULL argument");
    if (!s->priv) return clipnn_fail(CLIPNN_ERR_STATE, "privacy: the training state holds no private run");
    const unsigned char *p = s->priv;
    size_t n = clipnn_dp_orders(NULL);
    double *rdp = clipnn_alloc_array(n, sizeof *rdp);
    if (!rdp) return clipnn_fail(CLIPNN_ERR_NOMEM, "privacy: out of memory");
    for (size_t k = 0; k < n; k++) rdp[k] = le_get_f64(p + PRIV_HEADER + 8 * (n + k));
    *out = (clipnn_privacy_spent){.steps = le_get_u64(p + 8), .sampling_rate = le_get_f64(p + 16),
                                  .noise_multiplier = le_get_f64(p + 24), .delta = le_get_f64(p + 32),
                                  .poisson = le_get_u64(p + 40) == 1};
    clipnn_status st = clipnn_dp_epsilon_of_rdp(rdp, out->delta, &out->epsilon, NULL);
    clipnn_free(rdp);
    return st;
}
