/* The training loop: minibatches, loss and backward, clipping, the update,
 * the per-step record of SPEC sections 2 and 3, evaluation per epoch.
 * Everything is allocated before the first step. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "train/train.h"

clipnn_train_options clipnn_train_options_default(void) {
    clipnn_train_options o;
    memset(&o, 0, sizeof o);
    o.optim = clipnn_optim_options_default();
    o.schedule = clipnn_schedule_default();
    o.clip = clipnn_clip_options_default();
    o.loss = clipnn_loss_options_default();
    o.batch = 32;
    o.epochs = 10;
    o.seed = 1;
    return o;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_class_loss(clipnn_loss l) { return l == CLIPNN_LOSS_XENT || l == CLIPNN_LOSS_MARGIN; }

/* Does the model's output fit the data and the loss? */
static clipnn_status check_fit(const clipnn_model *m, const clipnn_dataset *d, const clipnn_loss_options *lo) {
    size_t k = clipnn_model_n_outputs(m), nc = clipnn_dataset_n_classes(d);
    if (clipnn_dataset_dim(d) != m->n_inputs)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %zu features but the model takes %zu inputs",
                           clipnn_dataset_name(d), clipnn_dataset_dim(d), m->n_inputs);
    if (is_class_loss(lo->loss) && nc == 0)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: loss %s needs class labels, the data are a regression set",
                           clipnn_dataset_name(d), clipnn_loss_name(lo->loss));
    if (nc > 0 && k != nc && !(k == 1 && nc == 2 && lo->loss == CLIPNN_LOSS_BCE))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %zu classes but the model has %zu outputs",
                           clipnn_dataset_name(d), nc, k);
    if (nc == 0 && k != clipnn_dataset_n_targets(d))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: %zu targets but the model has %zu outputs",
                           clipnn_dataset_name(d), clipnn_dataset_n_targets(d), k);
    return CLIPNN_OK;
}

/* Targets of rows idx[0..B) in the form the loss wants: class indices for
 * XENT/MARGIN, else values; class data meet MSE/BCE as one-hot rows (or the
 * label itself for one BCE output). y_out: [B][k] (k = 1 for class losses). */
static void gather_targets(const clipnn_dataset *d, const size_t *idx, size_t B, clipnn_loss loss,
                           size_t k, float *y_out) {
    const float *y = clipnn_dataset_y(d);
    size_t nt = clipnn_dataset_n_targets(d);
    int one_hot = clipnn_dataset_n_classes(d) > 0 && !is_class_loss(loss) && k > 1;
    for (size_t r = 0; r < B; r++) {
        const float *src = y + idx[r] * nt;
        if (one_hot) {
            float *row = y_out + r * k;
            memset(row, 0, k * sizeof *row);
            row[(size_t)src[0]] = 1.0f;
        } else {
            memcpy(y_out + r * nt, src, nt * sizeof *y_out);
        }
    }
}

static void gather_rows(const clipnn_dataset *d, const size_t *idx, size_t B, float *x_out) {
    size_t dim = clipnn_dataset_dim(d);
    const float *x = clipnn_dataset_x(d);
    for (size_t r = 0; r < B; r++) memcpy(x_out + r * dim, x + idx[r] * dim, dim * sizeof *x_out);
}

static size_t argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Mean loss and accuracy over d in chunks of the reserved batch; x/y
 * scratch comes from the caller so that evaluation inside training does not
 * allocate. */
static clipnn_status evaluate_with(clipnn_model *m, const clipnn_dataset *d, const clipnn_loss_options *lo,
                                   float *xb, float *yb, size_t *idx, size_t chunk, double *loss_out,
                                   double *acc_out) {
    size_t n = clipnn_dataset_n(d), k = clipnn_model_n_outputs(m);
    size_t nc = clipnn_dataset_n_classes(d);
    double loss_sum = 0;
    size_t correct = 0;
    const float *y = clipnn_dataset_y(d);
    for (size_t start = 0; start < n; start += chunk) {
        size_t B = n - start < chunk ? n - start : chunk;
        for (size_t r = 0; r < B; r++) idx[r] = start + r;
        gather_rows(d, idx, B, xb);
        gather_targets(d, idx, B, lo->loss, k, yb);
        const float *out;
        clipnn_status s = clipnn_forward(m, xb, B, &out);
        if (s) return s;
        loss_sum += (double)B * clipnn_loss_forward_backward(lo, out, yb, B, k, NULL, NULL);
        if (nc > 0)
            for (size_t r = 0; r < B; r++) {
                size_t label = (size_t)y[start + r];
                size_t pred = k == 1 ? (out[r] > 0 ? 1 : 0) : argmax(out + r * k, k);
                correct += pred == label;
            }
    }
    *loss_out = loss_sum / (double)n;
    *acc_out = nc > 0 ? (double)correct / (double)n : NAN;
    return CLIPNN_OK;
}

clipnn_status clipnn_evaluate(clipnn_model *m, const clipnn_dataset *d, const clipnn_loss_options *lo,
                              double *loss, double *accuracy) {
    clipnn_status s = check_fit(m, d, lo);
    if (s) return s;
    size_t chunk = 256, dim = clipnn_dataset_dim(d), k = clipnn_model_n_outputs(m);
    float *xb = clipnn_alloc_array(chunk * dim, sizeof *xb);
    float *yb = clipnn_alloc_array(chunk * k, sizeof *yb);
    size_t *idx = clipnn_alloc_array(chunk, sizeof *idx);
    double l = NAN, a = NAN;
    if (!xb || !yb || !idx) s = clipnn_fail(CLIPNN_ERR_NOMEM, "evaluate: out of memory");
    else s = evaluate_with(m, d, lo, xb, yb, idx, chunk, &l, &a);
    if (loss) *loss = l;
    if (accuracy) *accuracy = a;
    clipnn_free(xb), clipnn_free(yb), clipnn_free(idx);
    return s;
}

CLIPNN_HOT_KERNEL double distance(const float *a, const float *b, size_t n) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return sqrt(s);
}

static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static clipnn_status check_options(const clipnn_train_options *o, const clipnn_dataset *train) {
    if (o->batch == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: batch size must be >= 1");
    if (o->epochs == 0 && o->steps == 0)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: needs epochs or steps > 0");
    if (!(o->schedule.a0 >= 0) || !isfinite(o->schedule.a0))
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: step size %g must be finite and >= 0", o->schedule.a0);
    if (clipnn_dataset_n(train) == 0) return clipnn_fail(CLIPNN_ERR_SHAPE, "train: empty training set");
    return CLIPNN_OK;
}

/* Theorem 1's H(theta) = mean over the data of g/c next to the plain mean
 * gradient, per example with a fresh clipper of the same rule. */
static clipnn_status expected_gradients(clipnn_model *m, const clipnn_dataset *d, const clipnn_train_options *o,
                                        float *x1, float *y1, clipnn_train_result *res) {
    size_t P = m->n_params, k = clipnn_model_n_outputs(m);
    double *h = clipnn_alloc_array(2 * P, sizeof *h), *mean = h + P;
    clipnn_clipper *c = NULL;
    clipnn_status s = h ? clipnn_clipper_create(&c, m, &o->clip) : clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory");
    size_t n = clipnn_dataset_n(d);
    for (size_t i = 0; s == CLIPNN_OK && i < n; i++) {
        gather_rows(d, &i, 1, x1);
        gather_targets(d, &i, 1, o->loss.loss, k, y1);
        s = clipnn_loss_grad(m, &o->loss, x1, y1, 1, NULL, NULL);
        if (s) break;
        for (size_t j = 0; j < P; j++) mean[j] += m->grads[j];
        double scale = 1;
        clipnn_clip_record rec;
        s = clipnn_clipper_apply(c, m, -1, 1, &scale, NULL, &rec);
        if (s) break;
        for (size_t j = 0; j < P; j++) h[j] += scale * m->grads[j];
    }
    if (s == CLIPNN_OK) {
        double hs = 0, ms = 0;
        for (size_t j = 0; j < P; j++) {
            hs += (h[j] / (double)n) * (h[j] / (double)n);
            ms += (mean[j] / (double)n) * (mean[j] / (double)n);
        }
        res->expected_clipped_grad_norm = sqrt(hs);
        res->mean_grad_norm = sqrt(ms);
    }
    clipnn_clipper_free(c);
    clipnn_free(h);
    return s;
}

typedef struct {
    float *xb, *yb, *theta0;
    size_t *order, *idx;
    double *group_norms;
    double *unit_scale, *theta_acc; /* [n_units]: per-unit clipping factors, theta's unit sums of squares */
} train_buffers;

static void free_buffers(train_buffers *b) {
    clipnn_free(b->xb), clipnn_free(b->yb), clipnn_free(b->theta0);
    clipnn_free(b->order), clipnn_free(b->idx), clipnn_free(b->group_norms);
    clipnn_free(b->unit_scale), clipnn_free(b->theta_acc);
}

clipnn_status clipnn_train(clipnn_model *m, const clipnn_dataset *train, const clipnn_dataset *test,
                           const clipnn_train_options *o, clipnn_train_result *result) {
    if (!m || !train || !o || !result) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "train: NULL argument");
    memset(result, 0, sizeof *result);
    result->test_loss = result->test_accuracy = NAN;
    result->expected_clipped_grad_norm = result->mean_grad_norm = NAN;
    clipnn_status s = check_options(o, train);
    if (!s) s = check_fit(m, train, &o->loss);
    if (!s && test) s = check_fit(m, test, &o->loss);
    if (s) return s;

    const size_t n = clipnn_dataset_n(train), dim = m->n_inputs, k = clipnn_model_n_outputs(m);
    const size_t B = o->batch < n || o->replacement ? o->batch : n;
    const size_t eval_chunk = B > 256 ? B : 256;
    const size_t P = m->n_params, G = clipnn_model_n_groups(m);
    const uint64_t steps_per_epoch = o->replacement ? (n + B - 1) / B : (n + B - 1) / B;
    const uint64_t total = o->steps ? o->steps : (uint64_t)o->epochs * steps_per_epoch;

    train_buffers b = {0};
    clipnn_optimizer *opt = NULL;
    clipnn_clipper *clip = NULL;
    s = clipnn_model_reserve(m, eval_chunk);
    if (s) return s;
    b.xb = clipnn_alloc_array(eval_chunk * dim, sizeof *b.xb);
    b.yb = clipnn_alloc_array(eval_chunk * k, sizeof *b.yb);
    b.theta0 = clipnn_alloc_array(P, sizeof *b.theta0);
    b.order = clipnn_alloc_array(n, sizeof *b.order);
    b.idx = clipnn_alloc_array(eval_chunk, sizeof *b.idx);
    b.group_norms = clipnn_alloc_array(G, sizeof *b.group_norms);
    b.unit_scale = clipnn_alloc_array(m->n_units, sizeof *b.unit_scale);
    b.theta_acc = clipnn_alloc_array(m->n_units, sizeof *b.theta_acc);
    if (!b.xb || !b.yb || !b.theta0 || !b.order || !b.idx || !b.group_norms || !b.unit_scale || !b.theta_acc) {
        free_buffers(&b);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "train: out of memory");
    }
    s = clipnn_optimizer_create(&opt, P, &o->optim);
    if (!s) s = clipnn_clipper_create(&clip, m, &o->clip);
    /* Unit norms from the backward from the first step on: a run split by
     * a resume must compute every step's norms the same way. */
    if (!s) m->row_acc_order = clipnn_clipper_norm_order(clip);
    if (s) {
        clipnn_optimizer_free(opt);
        free_buffers(&b);
        return s;
    }
    memcpy(b.theta0, m->params, P * sizeof *b.theta0);
    for (size_t i = 0; i < n; i++) b.order[i] = i;

    clipnn_rng rng;
    clipnn_rng_seed(&rng, o->seed);
    clipnn_schedule sched = o->schedule;
    if (sched.kind == CLIPNN_SCHED_COSINE && sched.total_steps == 0) sched.total_steps = total;
    /* The rules that read ||theta|| get it from the update before (summed
     * while the update writes theta); none is there before the first. */
    const int need_theta = clipnn_clipper_reads_theta_units(clip);
    int theta_valid = 0;
    const int lazy_ok = clipnn_clipper_reads_unit_norms_only(clip);
    double sum_lr = 0, sum_lr2 = 0, epoch_loss = 0, t0 = now_seconds();
    uint64_t epoch_steps = 0, clipped = 0, epoch_clipped = 0;
    uint64_t epoch_skipped = 0; /* not in the saved state: a resumed epoch counts from the resume */
    size_t cursor = n; /* forces a shuffle before the first step */
    size_t epoch = 0;
    clipnn_step_record rec;
    memset(&rec, 0, sizeof rec);

    uint64_t t_start = 0;
    if (o->state && o->state->loop) {
        /* Resume: every variable a step depends on comes back as it was. */
        clipnn_train_loop L;
        s = clipnn_train_state_restore(o->state, &L, b.order, n, b.theta0, P, opt, clip);
        if (s) {
            m->row_acc_order = 0;
            clipnn_clipper_free(clip);
            clipnn_optimizer_free(opt);
            free_buffers(&b);
            return s;
        }
        t_start = result->steps = L.step;
        rng = L.rng;
        cursor = L.cursor;
        epoch = (size_t)L.epoch;
        epoch_steps = L.epoch_steps;
        epoch_clipped = L.epoch_clipped;
        clipped = L.clipped;
        result->skipped_steps = L.skipped;
        sum_lr = L.sum_lr;
        sum_lr2 = L.sum_lr2;
        epoch_loss = L.epoch_loss;
        result->max_dist_from_start = L.max_dist;
    }

    for (uint64_t t = t_start; t < total; t++) {
        /* Draw the minibatch: a shuffled pass, or uniform with replacement. */
        size_t Bt = B;
        if (o->replacement) {
            for (size_t r = 0; r < B; r++) b.idx[r] = (size_t)clipnn_rng_below(&rng, n);
        } else {
            if (cursor >= n) {
                clipnn_rng_shuffle(&rng, b.order, n);
                cursor = 0;
            }
            Bt = n - cursor < B ? n - cursor : B;
            memcpy(b.idx, b.order + cursor, Bt * sizeof *b.idx);
            cursor += Bt;
        }
        gather_rows(train, b.idx, Bt, b.xb);
        gather_targets(train, b.idx, Bt, o->loss.loss, k, b.yb);
        double loss;
        m->lazy_rank1 = lazy_ok && Bt == 1;
        s = clipnn_loss_grad(m, &o->loss, b.xb, b.yb, Bt, &loss, NULL);
        if (s) break;
        double scale = 1;
        /* A loss past float range can come with a finite gradient
         * (cross-entropy's is bounded): the clipper's non-finite policy
         * decides that step as it decides a non-finite gradient. */
        s = clipnn_clipper_apply_train(clip, m, isfinite(loss) ? -1.0 : NAN, theta_valid ? b.theta_acc : NULL,
                                       b.unit_scale, &scale, o->log_groups ? b.group_norms : NULL, &rec.clip);
        if (rec.clip.nonfinite) result->diverged_step = t;
        if (s == CLIPNN_ERR_NONFINITE) {
            result->diverged = 1;
            s = clipnn_fail(s, "train: step %llu: the %s is %g; parameters left as before it", (unsigned long long)t,
                            isfinite(loss) ? "gradient norm" : "loss", isfinite(loss) ? rec.clip.pre_norm : loss);
        }
        if (s) break;
        double lr = clipnn_schedule_lr(&sched, t);
        if (!rec.clip.skipped) {
            s = clipnn_optimizer_step_units(opt, m, lr, scale, b.unit_scale, need_theta ? b.theta_acc : NULL);
            theta_valid = need_theta;
            if (s == CLIPNN_ERR_NONFINITE) {
                /* The update would have left float range: the optimizer kept
                 * those parameters, so none is NaN or Inf, but the run has
                 * diverged; skip goes on from the parameters as they are. */
                result->diverged_step = t;
                if (o->clip.nonfinite != CLIPNN_NONFINITE_SKIP) {
                    result->diverged = 1;
                    if (o->clip.nonfinite == CLIPNN_NONFINITE_PROPAGATE) s = CLIPNN_OK;
                    break;
                }
                s = CLIPNN_OK;
                rec.clip.skipped = 1;
            }
            if (!s) s = clipnn_clipper_after_update(clip, m, &rec.clip);
            if (s) break;
        }
        if (!rec.clip.skipped) {
            sum_lr += lr;
            sum_lr2 += lr * lr;
        } else {
            result->skipped_steps++;
            epoch_skipped++;
        }
        clipped += rec.clip.clipped;
        epoch_clipped += rec.clip.clipped;
        if (!rec.clip.skipped) epoch_loss += loss;
        epoch_steps++;
        result->steps = t + 1;
        if (!isfinite(loss) && !rec.clip.skipped) {
            /* The parameters are spoiled (propagate policy or an unclipped
             * explosion): nothing further can be learnt from this run. */
            result->diverged = 1;
            result->diverged_step = t;
            break;
        }
        if (o->on_step) {
            double lam = o->clip.lambda;
            rec.step = t;
            rec.lr = lr;
            rec.sum_lr = sum_lr;
            rec.sum_lr2 = sum_lr2;
            rec.loss = loss;
            rec.dist_from_start = distance(m->params, b.theta0, P);
            if (isnan(rec.clip.theta_norm)) rec.clip.theta_norm = clipnn_norm(m->params, P, o->clip.p);
            rec.det_bound = lam * sum_lr;
            rec.lemma1_bound = o->stability_m > 0 && sum_lr2 > 0
                                   ? 2.0 * exp(-2.0 * o->stability_m * o->stability_m / (sum_lr2 * lam * lam))
                                   : NAN;
            rec.group_norms = o->log_groups ? b.group_norms : NULL;
            if (rec.dist_from_start > result->max_dist_from_start)
                result->max_dist_from_start = rec.dist_from_start;
            o->on_step(&rec, o->user);
        }
        int epoch_end = o->replacement ? (t + 1) % steps_per_epoch == 0 : cursor >= n;
        if (epoch_end || t + 1 == total) {
            /* Skipped steps have no loss to count (NaN when all were skipped). */
            result->train_loss = epoch_steps > epoch_skipped ? epoch_loss / (double)(epoch_steps - epoch_skipped) : NAN;
            if (test) {
                s = evaluate_with(m, test, &o->loss, b.xb, b.yb, b.idx, eval_chunk, &result->test_loss,
                                  &result->test_accuracy);
                if (s) break;
            }
            /* A run that stops mid-epoch reports the partial epoch but keeps
             * its sums, so that a resumed run completes the same epoch. */
            if (epoch_end) epoch++;
            if (o->on_epoch) {
                double secs = now_seconds() - t0;
                clipnn_epoch_record er = {
                    .epoch = epoch_end ? epoch : epoch + 1,
                    .n_epochs = o->steps ? (size_t)((total + steps_per_epoch - 1) / steps_per_epoch) : o->epochs,
                    .train_loss = result->train_loss,
                    .test_loss = result->test_loss,
                    .test_accuracy = result->test_accuracy,
                    .clipped_fraction = (double)epoch_clipped / (double)epoch_steps,
                    .seconds = secs,
                    .samples_per_second = secs > 0 ? (double)(t + 1 - t_start) * (double)B / secs : 0,
                };
                o->on_epoch(&er, o->user);
            }
            if (epoch_end) {
                epoch_loss = 0;
                epoch_steps = epoch_skipped = 0;
                epoch_clipped = 0;
            }
        }
    }
    m->row_acc_order = 0; /* other callers of clipnn_loss_grad do not pay for the unit norms */
    m->lazy_rank1 = 0;
    result->seconds = now_seconds() - t0;
    result->clipped_fraction = result->steps ? (double)clipped / (double)result->steps : 0;
    if (s == CLIPNN_OK && !result->diverged && !all_finite(m->params, P)) {
        result->diverged = 1;
        result->diverged_step = result->steps;
    }
    if (s == CLIPNN_OK && o->expected_grad && !result->diverged)
        s = expected_gradients(m, train, o, b.xb, b.yb, result);
    if (s == CLIPNN_OK && o->state) {
        clipnn_train_loop L = {.step = result->steps, .rng = rng, .cursor = cursor, .epoch = epoch,
                               .epoch_steps = epoch_steps, .epoch_clipped = epoch_clipped,
                               .clipped = clipped, .skipped = result->skipped_steps, .sum_lr = sum_lr,
                               .sum_lr2 = sum_lr2, .epoch_loss = epoch_loss,
                               .max_dist = result->max_dist_from_start};
        s = clipnn_train_state_capture(o->state, &L, b.order, n, b.theta0, P, opt, clip);
    }
    clipnn_clipper_free(clip);
    clipnn_optimizer_free(opt);
    free_buffers(&b);
    return s;
}
