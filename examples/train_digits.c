/* Trains an MLP on the built-in digits with the library's defaults: the
 * same run as `clipnn train` with no options, from C. Built with nothing
 * but the public header and the library:
 *
 *     cc -std=c11 -Iinclude examples/train_digits.c -Lbuild -lclipnn -o train_digits
 *
 * The defaults (clipnn_train_options_default, clipnn_data_options_default
 * through a NULL options pointer) are the tool's; the network is the
 * tool's default one: 64 tanh units, then one output per class, Xavier
 * initialisation seeded with the training seed. */
#include <stdio.h>

#include <clipnn.h>

#define HIDDEN 64

/* The tool's default network for data d, initialised and sized for o. */
static clipnn_status build_model(const clipnn_dataset *d, const clipnn_train_options *o, clipnn_model **out) {
    size_t widths[2] = {HIDDEN, clipnn_dataset_n_classes(d)};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_status st = clipnn_model_create(out, clipnn_dataset_dim(d), 2, widths, acts);
    if (!st) st = clipnn_model_init(*out, CLIPNN_INIT_XAVIER, o->seed);
    if (!st) st = clipnn_model_reserve(*out, o->batch);
    return st;
}

static void print_run(const clipnn_train_options *o, const clipnn_train_result *r) {
    printf("sgd lr %g momentum %g, batch %zu, %zu epochs, rule %s lambda %g, seed %llu\n", o->schedule.a0,
           o->optim.momentum, o->batch, o->epochs, clipnn_clip_rule_name(o->clip.rule), o->clip.lambda,
           (unsigned long long)o->seed);
    printf("steps %llu  clipped %.1f%%  test loss %.10g  test accuracy %.10g\n", (unsigned long long)r->steps,
           100.0 * r->clipped_fraction, r->test_loss, r->test_accuracy);
}

int main(void) {
    clipnn_train_options o = clipnn_train_options_default();
    clipnn_dataset *train = NULL, *test = NULL;
    clipnn_model *m = NULL;
    clipnn_train_result r;
    clipnn_status st = clipnn_dataset_load("digits", NULL, &train, &test);
    if (!st) st = build_model(train, &o, &m);
    if (!st) st = clipnn_train(m, train, test, &o, &r);
    if (st) fprintf(stderr, "train_digits: %s: %s\n", clipnn_strerror(st), clipnn_last_error());
    else print_run(&o, &r);
    clipnn_model_free(m);
    clipnn_dataset_free(train);
    clipnn_dataset_free(test);
    return st ? 1 : 0;
}
