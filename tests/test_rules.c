/* The clipping rules of the 2020s: AdaGC and SPAM against vectors written
 * from their public PyTorch code (scripts/torch_rules_reference.py), ACClip
 * and NSGD-M against their formulas in double, Pascanu's random step, and
 * a training split by a checkpoint continuing bit for bit for each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "ref_file.h"

enum { NP = 26 }; /* the 3-4-2 MLP: W0 4x3, b0 4, W1 2x4, b1 2 */

static clipnn_model *mlp342(void) {
    size_t widths[2] = {4, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 3, 2, widths, acts));
    if (m) CHECK(clipnn_model_n_params(m) == NP);
    return m;
}

/* The clipped gradients of AdaGC's reference at every step. Each is g h_l
 * with h_l from gamma_l, a chain of norms (26 products summed: 26 U) and
 * EMA steps (about 3 U each over 14 steps): 128 U of the largest entry
 * bounds the float32 error of both implementations. */
TEST(rules_adagc_matches_its_reference_code) {
    ref_file *f = ref_load("rules_adagc.txt");
    clipnn_model *m = mlp342();
    if (!f || !m) goto out;
    size_t T = ref_size(f, "grads") / NP;
    const double *g = ref_get(f, "grads", T * NP), *r32 = ref_get(f, "clipped", T * NP),
                 *r64 = ref_get(f, "clipped64", T * NP);
    clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_ADAGC);
    o.adagc_abs = atof(ref_attr(f, "lambda_abs"));
    o.lambda = atof(ref_attr(f, "lambda_rel"));
    o.adagc_beta = atof(ref_attr(f, "beta"));
    o.adagc_warmup = (size_t)atoi(ref_attr(f, "warmup"));
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    int clipped_after_warmup = 0;
    for (size_t t = 0; c && g && r32 && r64 && t < T; t++) {
        to_float(g + t * NP, clipnn_model_grads(m), NP);
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec));
        clipped_after_warmup += t + 1 >= o.adagc_warmup && rec.clipped;
        char what[32];
        snprintf(what, sizeof what, "adagc step %zu", t);
        check_pair(what, clipnn_model_grads(m), r32 + t * NP, r64 + t * NP, NP, 128 * U * max_abs(r64 + t * NP, NP));
    }
    CHECK(clipped_after_warmup >= 1); /* the spike is clipped by the EMA threshold */
    clipnn_clipper_free(c);
out:
    clipnn_model_free(m);
    ref_free(f);
}

/* SPAM's optimizer and clipping on fixed gradients with three spikes,
 * resets every 8 steps: the parameters after every step. An Adam step
 * moves a parameter by at most about lr (|m| / sqrt(v) <= 1 for these
 * betas after the first steps, up to ~3 right after a reset), each with a
 * relative float32 error of a few U; 24 steps of 16 U (|theta| + 3 lr)
 * bound the difference of the two float32 runs from the float64 one. */
TEST(rules_spam_matches_its_reference_code) {
    ref_file *f = ref_load("rules_spam.txt");
    clipnn_model *m = mlp342();
    if (!f || !m) goto out;
    size_t T = ref_size(f, "grads") / NP;
    const double *g = ref_get(f, "grads", T * NP), *th0 = ref_get(f, "theta0", NP),
                 *p32 = ref_get(f, "params", T * NP), *p64 = ref_get(f, "params64", T * NP);
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.kind = CLIPNN_OPT_SPAM;
    oo.beta1 = atof(ref_attr(f, "beta1"));
    oo.beta2 = atof(ref_attr(f, "beta2"));
    oo.adam_eps = atof(ref_attr(f, "eps"));
    oo.reset_every = (uint64_t)atoi(ref_attr(f, "delta_t"));
    oo.reset_warmup = (uint64_t)atoi(ref_attr(f, "warmup"));
    double lr = atof(ref_attr(f, "lr"));
    clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_SPAM);
    co.lambda = atof(ref_attr(f, "threshold"));
    co.spam_delay = (size_t)atoi(ref_attr(f, "delay"));
    clipnn_optimizer *o = NULL;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_optimizer_create(&o, NP, &oo));
    CHECK_OK(clipnn_clipper_create(&c, m, &co));
    if (!o || !c || !g || !th0 || !p32 || !p64) goto free_all;
    float *theta = clipnn_model_params(m);
    to_float(th0, theta, NP);
    const double *n_clipped = ref_get(f, "clipped_entries", T);
    int spikes = 0;
    for (size_t t = 0; n_clipped && t < T; t++) {
        to_float(g + t * NP, clipnn_model_grads(m), NP);
        clipnn_clipper_set_moment(c, clipnn_optimizer_second_moment(o), clipnn_optimizer_steps(o), oo.reset_every);
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec));
        CHECK_MSG(rec.clipped == (n_clipped[t] > 0), "step %zu: clipped %d, the reference clipped %g entries", t,
                  rec.clipped, n_clipped[t]);
        spikes += rec.clipped;
        CHECK_OK(clipnn_optimizer_step(o, theta, clipnn_model_grads(m), lr, 1.0));
        char what[32];
        snprintf(what, sizeof what, "spam step %zu", t);
        check_pair(what, theta, p32 + t * NP, p64 + t * NP, NP, 24 * 16 * U * (max_abs(p64 + t * NP, NP) + 3 * lr));
    }
    CHECK_MSG(spikes >= 3, "%d steps clipped, the sequence has 3 spikes", spikes);
free_all:
    clipnn_clipper_free(c);
    clipnn_optimizer_free(o);
out:
    clipnn_model_free(m);
    ref_free(f);
}

/* A fixed gradient sequence: entry i at step t. */
static double seq_grad(size_t i, int t) { return cos(0.5 + 1.3 * (double)i + 0.7 * t) * (1 + (double)(i % 5)) / 10; }

/* ACClip in double with its state rounded to float as the clipper keeps
 * it: each output entry is one product of doubles rounded once (U). */
TEST(rules_acclip_formula) {
    clipnn_model *m = mlp342();
    if (!m) return;
    clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_ACCLIP);
    o.acclip_alpha = 1.5; /* neither of the exact special cases */
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    float mom[NP] = {0}, ta[NP] = {0};
    int some_clipped = 0, some_free = 0;
    for (int t = 0; c && t < 6; t++) {
        float *g = clipnn_model_grads(m);
        for (size_t i = 0; i < NP; i++) g[i] = (float)(seq_grad(i, t) * (t == 4 && i % 3 == 0 ? 50 : 1));
        double want[NP];
        for (size_t i = 0; i < NP; i++) {
            double gi = g[i];
            mom[i] = (float)(o.acclip_beta1 * mom[i] + (1 - o.acclip_beta1) * gi);
            ta[i] = (float)(o.acclip_beta2 * ta[i] + (1 - o.acclip_beta2) * pow(fabs(gi), o.acclip_alpha));
            double tau = pow(ta[i], 1 / o.acclip_alpha), f = fmin(tau / (fabs(mom[i]) + o.acclip_eps), 1.0);
            want[i] = f * mom[i];
            some_clipped |= f < 1, some_free |= f == 1;
        }
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec));
        for (size_t i = 0; i < NP; i++) CHECK_NEAR(g[i], want[i], 4 * U * fabs(want[i]) + 1e-30);
    }
    CHECK(some_clipped && some_free); /* both branches of the min were taken */
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* NSGD-M and its clipped variant: the direction m / ||m||, m in float. */
static void check_nsgdm(clipnn_clip_rule rule, double lambda) {
    clipnn_model *m = mlp342();
    if (!m) return;
    clipnn_clip_options o = clipnn_clip_options_for(rule);
    if (lambda > 0) o.lambda = lambda;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    float mom[NP] = {0};
    int clipped = 0;
    for (int t = 0; c && t < 5; t++) {
        float *g = clipnn_model_grads(m);
        double acc = 0, macc = 0, want[NP];
        for (size_t i = 0; i < NP; i++) g[i] = (float)(seq_grad(i, t) * (t == 2 ? 30 : 1)), acc += (double)g[i] * g[i];
        double in = rule == CLIPNN_CLIP_NSGDM_CLIP && sqrt(acc) > o.lambda ? o.lambda / sqrt(acc) : 1;
        for (size_t i = 0; i < NP; i++) {
            mom[i] = (float)(o.nsgdm_beta * mom[i] + (1 - o.nsgdm_beta) * in * g[i]);
            macc += (double)mom[i] * mom[i];
        }
        for (size_t i = 0; i < NP; i++) want[i] = mom[i] / sqrt(macc);
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec));
        clipped += rec.clipped;
        CHECK(fabs(rec.post_norm - 1) < 4 * U);
        for (size_t i = 0; i < NP; i++) CHECK_NEAR(g[i], want[i], 2 * U * fabs(want[i]) + 1e-30);
    }
    /* the clipped variant clips the spike (and only what exceeds lambda) */
    CHECK(rule == CLIPNN_CLIP_NSGDM ? clipped == 0 : clipped >= 1);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

TEST(rules_nsgdm_formula) {
    check_nsgdm(CLIPNN_CLIP_NSGDM, 0);
    check_nsgdm(CLIPNN_CLIP_NSGDM_CLIP, 0.5);
}

/* The random policy: a NaN gradient, or one above the bound, becomes a
 * finite random step of 2-norm random_step; one below goes to the rule. */
TEST(rules_random_nonfinite_step) {
    clipnn_model *m = mlp342();
    if (!m) return;
    clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_NORM);
    o.nonfinite = CLIPNN_NONFINITE_RANDOM;
    o.random_step = 0.03;
    o.nonfinite_bound = 5;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    float *g = clipnn_model_grads(m);
    const double scale[4] = {NAN, INFINITY, 10, 0.2}; /* NaN, Inf, above the bound (norm > 5), below */
    float first[NP];
    for (int k = 0; c && k < 4; k++) {
        for (size_t i = 0; i < NP; i++)
            g[i] = (float)(!isfinite(scale[k]) && i == 7 ? scale[k] : seq_grad(i, 0) * scale[k]);
        double pre = 0;
        for (size_t i = 0; i < NP; i++) pre += (double)g[i] * g[i];
        clipnn_clip_record rec;
        CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec));
        double norm = 0;
        for (size_t i = 0; i < NP; i++) norm += (double)g[i] * g[i];
        if (k < 3) {
            CHECK(rec.clipped && !rec.skipped && rec.nonfinite == (k < 2));
            CHECK_NEAR(sqrt(norm), 0.03, 0.03 * 4 * U * NP);
            CHECK_NEAR(rec.post_norm, 0.03, 0.03 * 4 * U * NP);
            if (k == 0) memcpy(first, g, sizeof first);
            else CHECK(memcmp(first, g, sizeof first) != 0); /* a new direction each time */
        } else {
            CHECK(sqrt(pre) < 1 && !rec.clipped && fabs(sqrt(norm) - sqrt(pre)) < 4 * U * sqrt(pre));
        }
    }
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* --------------------------------------------------------------- resume */

enum { RN = 64, RDIM = 3 };

static clipnn_dataset *resume_data(void) {
    float x[RN * RDIM], y[RN];
    for (int i = 0; i < RN; i++) {
        for (int j = 0; j < RDIM; j++) x[i * RDIM + j] = (float)sin(1.1 * i + 0.7 * j);
        y[i] = (float)(i % 2);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, RN, RDIM, 2, 1, &d));
    return d;
}

static clipnn_train_options resume_options(clipnn_clip_rule rule, clipnn_opt_kind kind, uint64_t steps) {
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(rule);
    o.clip.adagc_warmup = 4;
    o.optim = clipnn_optim_options_default();
    o.optim.kind = kind;
    o.optim.reset_every = 7;
    o.optim.reset_warmup = 3;
    o.schedule.a0 = kind == CLIPNN_OPT_SGD ? 0.1 : 0.01;
    o.batch = 8;
    o.steps = steps;
    return o;
}

/* 30 steps straight, against 13, a checkpoint written and read, then the
 * rest from it: the same parameters, bit for bit. */
static void check_resume(clipnn_clip_rule rule, clipnn_opt_kind kind) {
    const char *path = check_tmp_path("rules_resume.ckpt");
    clipnn_dataset *d = resume_data();
    size_t widths[2] = {5, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *a = NULL, *b = NULL, *back = NULL;
    CHECK_OK(clipnn_model_create(&a, RDIM, 2, widths, acts));
    CHECK_OK(clipnn_model_create(&b, RDIM, 2, widths, acts));
    clipnn_train_state *st = NULL, *got = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    if (!d || !a || !b || !st) goto out;
    CHECK_OK(clipnn_model_init(a, CLIPNN_INIT_XAVIER, 3));
    CHECK_OK(clipnn_model_init(b, CLIPNN_INIT_XAVIER, 3));
    clipnn_train_result r;
    clipnn_train_options whole = resume_options(rule, kind, 30), part = resume_options(rule, kind, 13);
    CHECK_OK(clipnn_train(a, d, NULL, &whole, &r));
    part.state = st;
    CHECK_OK(clipnn_train(b, d, NULL, &part, &r));
    CHECK_OK(clipnn_checkpoint_save(path, b, st));
    CHECK_OK(clipnn_checkpoint_load(path, &back, &got));
    if (!back || !got) goto out;
    whole.state = got;
    CHECK_OK(clipnn_train(back, d, NULL, &whole, &r));
    CHECK_MSG(memcmp(clipnn_model_params(a), clipnn_model_params(back), clipnn_model_n_params(a) * sizeof(float)) == 0,
              "rule %s, optimizer %s: the resumed run left the trajectory", clipnn_clip_rule_name(rule),
              clipnn_opt_kind_name(kind));
out:
    clipnn_train_state_free(st);
    clipnn_train_state_free(got);
    clipnn_model_free(a), clipnn_model_free(b), clipnn_model_free(back);
    clipnn_dataset_free(d);
    remove(path);
}

TEST(rules_resume_continues_bit_for_bit) {
    check_resume(CLIPNN_CLIP_ADAGC, CLIPNN_OPT_SGD);
    check_resume(CLIPNN_CLIP_SPAM, CLIPNN_OPT_SPAM);
    check_resume(CLIPNN_CLIP_ACCLIP, CLIPNN_OPT_SGD);
    check_resume(CLIPNN_CLIP_NSGDM, CLIPNN_OPT_SGD);
    check_resume(CLIPNN_CLIP_NSGDM_CLIP, CLIPNN_OPT_SGD);
}

/* The rules that need an optimizer of a kind refuse the others by name. */
TEST(rules_refuse_unfit_optimizers) {
    clipnn_dataset *d = resume_data();
    size_t widths[2] = {5, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, RDIM, 2, widths, acts));
    clipnn_train_result r;
    clipnn_train_options o = resume_options(CLIPNN_CLIP_SPAM, CLIPNN_OPT_SGD, 3);
    if (d && m) CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "second moment") != NULL);
    o = resume_options(CLIPNN_CLIP_ACCLIP, CLIPNN_OPT_ADAM, 3);
    if (d && m) CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "own momentum") != NULL);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* clipnn_train's fused step (unit factors left to the update, a batch of
 * one's weight gradients formed in the update) against the public
 * two-phase calls, full batch: the two differ only by the order of float
 * sums, float32 rounding (6e-8) times the terms summed (<= 64 rows) on
 * parameters moved by at most lr per step: 6e-8 * 64 * 3 * 8 steps < 1e-4. */
static void check_fused(clipnn_clip_rule rule, clipnn_opt_kind kind, size_t n) {
    clipnn_dataset *full = resume_data(), *d = NULL;
    if (full) CHECK_OK(clipnn_dataset_from_arrays(clipnn_dataset_x(full), clipnn_dataset_y(full), n, RDIM, 2, 1, &d));
    size_t widths[2] = {5, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *a = NULL, *b = NULL;
    CHECK_OK(clipnn_model_create(&a, RDIM, 2, widths, acts));
    CHECK_OK(clipnn_model_create(&b, RDIM, 2, widths, acts));
    clipnn_train_options o = resume_options(rule, kind, 8);
    o.clip.adagc_warmup = 2;
    o.clip.lambda = rule == CLIPNN_CLIP_ADAGC ? 0.5 : o.clip.lambda;
    o.batch = n;
    clipnn_clipper *c = NULL;
    clipnn_optimizer *opt = NULL;
    clipnn_train_result r;
    if (!d || !a || !b) goto out;
    CHECK_OK(clipnn_model_init(a, CLIPNN_INIT_XAVIER, 5));
    CHECK_OK(clipnn_model_init(b, CLIPNN_INIT_XAVIER, 5));
    CHECK_OK(clipnn_train(a, d, NULL, &o, &r));
    CHECK_OK(clipnn_clipper_create(&c, b, &o.clip));
    CHECK_OK(clipnn_optimizer_create(&opt, clipnn_model_n_params(b), &o.optim));
    for (uint64_t t = 0; c && opt && t < o.steps; t++) {
        double loss, scale = 1;
        CHECK_OK(clipnn_loss_grad(b, &o.loss, clipnn_dataset_x(d), clipnn_dataset_y(d), n, &loss, NULL));
        clipnn_clipper_set_moment(c, clipnn_optimizer_second_moment(opt), clipnn_optimizer_steps(opt),
                                  kind == CLIPNN_OPT_SPAM ? o.optim.reset_every : 0);
        CHECK_OK(clipnn_clipper_apply(c, b, -1, 1, &scale, NULL, NULL));
        CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(b), clipnn_model_grads(b), o.schedule.a0, scale));
    }
    double worst = 0;
    for (size_t i = 0; i < clipnn_model_n_params(a); i++)
        worst = fmax(worst, fabs((double)clipnn_model_params(a)[i] - (double)clipnn_model_params(b)[i]));
    CHECK_MSG(worst <= 1e-4, "rule %s, %zu examples: fused and two-phase steps differ by %g",
              clipnn_clip_rule_name(rule), n, worst);
out:
    clipnn_clipper_free(c);
    clipnn_optimizer_free(opt);
    clipnn_model_free(a), clipnn_model_free(b);
    clipnn_dataset_free(d), clipnn_dataset_free(full);
}

TEST(rules_fused_step_matches_two_phase_calls) {
    for (size_t n = 1; n <= RN; n += RN - 1) {
        check_fused(CLIPNN_CLIP_ADAGC, CLIPNN_OPT_SGD, n);
        check_fused(CLIPNN_CLIP_SPAM, CLIPNN_OPT_SPAM, n);
        check_fused(CLIPNN_CLIP_ACCLIP, CLIPNN_OPT_SGD, n);
        check_fused(CLIPNN_CLIP_NSGDM_CLIP, CLIPNN_OPT_SGD, n);
    }
}

/* Each new rule is a row of compare; spam's needs Adam. */
TEST(rules_compare_rows_cli) {
    const char *out;
    int rc = check_run_tool("compare --steps 20 --seeds 1 --rules adagc,acclip,nsgdm,nsgdm-clip --json --quiet", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    const char *rules[] = {"\"rule\":\"adagc\"", "\"rule\":\"acclip\"", "\"rule\":\"nsgdm\"", "\"rule\":\"nsgdm-clip\"",
                           "\"lambda\":1.05"};
    for (int i = 0; i < 5; i++) CHECK_MSG(strstr(out, rules[i]) != NULL, "no %s in %s", rules[i], out);
    rc = check_run_tool("compare --opt adam --lr 0.01 --steps 20 --seeds 1 --rules none,spam --json --quiet", &out);
    CHECK_MSG(rc == 0 && strstr(out, "\"rule\":\"spam\"") && strstr(out, "\"lambda\":5000"), "exit %d: %s", rc, out);
    CHECK(check_run_tool("train --quiet --steps 5 --clip spam", &out) != 0 && strstr(out, "second moment"));
}

/* The step log of nsgdm: the step direction is a unit vector. */
TEST(rules_step_log_cli) {
    char args[400], path[300];
    snprintf(path, sizeof path, "%s", check_tmp_path("nsgdm.csv"));
    snprintf(args, sizeof args, "train --quiet --steps 12 --clip nsgdm --log %s", path);
    const char *out;
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s", out);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[1024];
    int rows = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "step,", 5)) continue;
        double v[6];
        CHECK(sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6);
        CHECK_MSG(fabs(v[4] - 1) < 1e-6, "row %d: post_norm %g", rows, v[4]); /* printed with 9 digits */
        CHECK(fabs(v[5] - v[3] / v[4]) <= 1e-6 * v[5]);                        /* c = pre / post */
        rows++;
    }
    CHECK(rows == 12);
    if (f) fclose(f);
    remove(path);
}

/* Under the random policy a run whose gradients overflow keeps going on
 * small random steps (under error it stops at the first). */
TEST(rules_random_policy_trains_through_overflow) {
    float x[RN * RDIM], y[RN];
    for (int i = 0; i < RN; i++) {
        for (int j = 0; j < RDIM; j++) x[i * RDIM + j] = (float)sin(1.1 * i + 0.7 * j);
        y[i] = 3e38f; /* the residual's gradient leaves float range */
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, RN, RDIM, 0, 1, &d));
    size_t widths[2] = {5, 1};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, RDIM, 2, widths, acts));
    if (!d || !m) goto out;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    clipnn_train_options o = resume_options(CLIPNN_CLIP_NORM, CLIPNN_OPT_SGD, 20);
    o.loss.loss = CLIPNN_LOSS_MSE;
    clipnn_train_result r;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_NONFINITE && r.diverged && r.steps == 0);
    o.clip.nonfinite = CLIPNN_NONFINITE_RANDOM;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1));
    float theta0[64];
    size_t P = clipnn_model_n_params(m);
    memcpy(theta0, clipnn_model_params(m), P * sizeof *theta0);
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK_MSG(!r.diverged && r.steps == 20 && r.clipped_fraction == 1 && r.skipped_steps == 0,
              "diverged %d, steps %llu, clipped %g, skipped %llu", r.diverged, (unsigned long long)r.steps,
              r.clipped_fraction, (unsigned long long)r.skipped_steps);
    /* 20 steps of length lr * random_step at most, in float */
    double moved = 0, bound = 20 * o.schedule.a0 * o.clip.random_step;
    for (size_t i = 0; i < P; i++) moved += pow((double)clipnn_model_params(m)[i] - theta0[i], 2);
    CHECK_MSG(sqrt(moved) > 0 && sqrt(moved) <= bound * (1 + 1e-5), "moved %g, bound %g", sqrt(moved), bound);
out:
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}
