/* Defaults and names of the public API: every enum the tool parses reads
 * back the name it prints, a wrong name is refused with the valid ones
 * listed, and each clipping rule's defaults are the tool's and valid. */
#include <string.h>

#include "check.h"
#include "clipnn.h"

/* For each value below count: parse(name(value)) gives value back, names
 * are distinct; parse of an unknown name fails with INVALID_ARG and a
 * message naming every valid name. */
#define CHECK_NAMES(type, count, name_fn, parse_fn)                                                         \
    do {                                                                                                    \
        for (int i_ = 0; i_ < (int)(count); i_++) {                                                         \
            type back_ = (type)-1;                                                                          \
            CHECK_MSG(parse_fn(name_fn((type)i_), &back_) == CLIPNN_OK && back_ == (type)i_,                \
                      #parse_fn "(\"%s\") does not give %d back", name_fn((type)i_), i_);                   \
            for (int k_ = 0; k_ < i_; k_++) CHECK(strcmp(name_fn((type)i_), name_fn((type)k_)) != 0);       \
        }                                                                                                   \
        type out_;                                                                                          \
        CHECK(parse_fn("no-such-name", &out_) == CLIPNN_ERR_INVALID_ARG);                                   \
        for (int i_ = 0; i_ < (int)(count); i_++)                                                           \
            CHECK_MSG(strstr(clipnn_last_error(), name_fn((type)i_)) != NULL, "%s: '%s' not listed in: %s", \
                      #parse_fn, name_fn((type)i_), clipnn_last_error());                                   \
        CHECK(parse_fn(NULL, &out_) == CLIPNN_ERR_INVALID_ARG);                                             \
        CHECK(!strcmp(name_fn((type)(count)), "unknown"));                                                  \
    } while (0)

TEST(defaults_names_parse_back) {
    CHECK_NAMES(clipnn_act, CLIPNN_ACT_COUNT, clipnn_act_name, clipnn_act_parse);
    CHECK_NAMES(clipnn_loss, CLIPNN_LOSS_COUNT, clipnn_loss_name, clipnn_loss_parse);
    CHECK_NAMES(clipnn_init, CLIPNN_INIT_COUNT, clipnn_init_name, clipnn_init_parse);
    CHECK_NAMES(clipnn_clip_rule, CLIPNN_CLIP_COUNT, clipnn_clip_rule_name, clipnn_clip_rule_parse);
    CHECK_NAMES(clipnn_nonfinite, CLIPNN_NONFINITE_COUNT, clipnn_nonfinite_name, clipnn_nonfinite_parse);
    CHECK_NAMES(clipnn_scaling, CLIPNN_SCALE_COUNT, clipnn_scaling_name, clipnn_scaling_parse);
    CHECK_NAMES(clipnn_opt_kind, CLIPNN_OPT_COUNT, clipnn_opt_kind_name, clipnn_opt_kind_parse);
    CHECK_NAMES(clipnn_param, CLIPNN_PARAM_COUNT, clipnn_param_name, clipnn_param_parse);
    CHECK_NAMES(clipnn_attack_method, CLIPNN_ATTACK_COUNT, clipnn_attack_method_name, clipnn_attack_method_parse);
    /* the other names the frameworks use */
    clipnn_init init;
    CHECK(clipnn_init_parse("glorot", &init) == CLIPNN_OK && init == CLIPNN_INIT_XAVIER);
    CHECK(clipnn_init_parse("kaiming", &init) == CLIPNN_OK && init == CLIPNN_INIT_HE);
    /* a schedule kind's name starts what clipnn_schedule_parse reads */
    clipnn_schedule s = clipnn_schedule_default();
    CHECK(clipnn_schedule_parse(clipnn_sched_kind_name(CLIPNN_SCHED_COSINE), &s) == CLIPNN_OK);
    CHECK(s.kind == CLIPNN_SCHED_COSINE);
    CHECK(clipnn_schedule_parse(clipnn_sched_kind_name(CLIPNN_SCHED_CONST), &s) == CLIPNN_OK);
    CHECK(s.kind == CLIPNN_SCHED_CONST);
}

/* clipnn_clip_options_for(rule) is the common default with the rule and
 * its own lambda; every rule's defaults make a clipper. */
TEST(defaults_clip_options_per_rule) {
    size_t widths[2] = {3, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 4, 2, widths, acts));
    if (!m) return;
    const clipnn_clip_options base = clipnn_clip_options_default();
    CHECK(base.rule == CLIPNN_CLIP_NONE);
    for (int r = 0; r < CLIPNN_CLIP_COUNT; r++) {
        clipnn_clip_options o = clipnn_clip_options_for((clipnn_clip_rule)r);
        const char *name = clipnn_clip_rule_name((clipnn_clip_rule)r);
        CHECK_MSG(o.rule == (clipnn_clip_rule)r, "%s: rule not set", name);
        if (!clipnn_clip_rule_uses_lambda((clipnn_clip_rule)r))
            CHECK_MSG(o.lambda == base.lambda, "%s reads no lambda but its default moved", name);
        CHECK(o.eps == base.eps && o.p == base.p && o.value == base.value);
        CHECK(o.project_radius == base.project_radius && o.percentile == base.percentile);
        CHECK(o.z_threshold == base.z_threshold && o.nonfinite == base.nonfinite);
        clipnn_clipper *c = NULL;
        CHECK_MSG(clipnn_clipper_create(&c, m, &o) == CLIPNN_OK, "%s: defaults refused: %s", name,
                  clipnn_last_error());
        clipnn_clipper_free(c);
    }
    /* The rules whose lambda is not the common default: the adaptive ones
     * take a step relative to ||theta||. */
    CHECK(clipnn_clip_options_for(CLIPNN_CLIP_NORM).lambda == 1.0);
    CHECK(clipnn_clip_options_for(CLIPNN_CLIP_ADAPTIVE).lambda == 0.01);
    CHECK(clipnn_clip_options_for(CLIPNN_CLIP_ADAPTIVE_LAYER).lambda == 0.01);
    CHECK(clipnn_clip_options_for(CLIPNN_CLIP_AGC).lambda == 0.01);
    CHECK(clipnn_clip_rule_uses_lambda(CLIPNN_CLIP_PER_SAMPLE) && !clipnn_clip_rule_uses_lambda(CLIPNN_CLIP_VALUE));
    /* an unknown rule is kept and refused where it is used */
    clipnn_clip_options bad = clipnn_clip_options_for(CLIPNN_CLIP_COUNT);
    clipnn_clipper *c = NULL;
    CHECK(!clipnn_clip_rule_uses_lambda(CLIPNN_CLIP_COUNT));
    CHECK(clipnn_clipper_create(&c, m, &bad) == CLIPNN_ERR_INVALID_ARG && c == NULL);
    clipnn_model_free(m);
}
