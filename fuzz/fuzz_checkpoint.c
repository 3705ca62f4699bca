/* Checkpoints: the model and training state as clipnn_checkpoint_load
 * reads them, then, when the model is small, a resumed run of a few steps
 * on a data set of the right shape, so that a forged but well-formed state
 * (step counts, batch order, optimizer and clipper buffers) reaches the
 * training loop. The seeds are written by this file built with
 * -DFUZZ_MAKE_SEEDS (see `make fuzz-seeds`). */
#include <zlib.h>

#include "fuzz.h"

enum { FUZZ_ROWS = 8, FUZZ_MAX_PARAMS = 20000, FUZZ_MAX_INPUTS = 4096 };

/* FUZZ_ROWS rows of inputs and per-example regression targets for m. */
static clipnn_status fuzz_data(const clipnn_model *m, clipnn_dataset **out) {
    size_t dim = clipnn_model_n_inputs(m), k = clipnn_model_n_outputs(m);
    float *x = calloc(FUZZ_ROWS * dim + 1, sizeof *x), *y = calloc(FUZZ_ROWS * k + 1, sizeof *y);
    clipnn_status s = CLIPNN_ERR_NOMEM;
    if (x && y) {
        for (size_t i = 0; i < FUZZ_ROWS * dim; i++) x[i] = (float)((i * 7) % 5) - 2.0f;
        for (size_t i = 0; i < FUZZ_ROWS * k; i++) y[i] = (float)(i % 3) - 1.0f;
        s = clipnn_dataset_from_arrays(x, y, FUZZ_ROWS, dim, 0, k, out);
    }
    free(x);
    free(y);
    return s;
}

/* The tool's defaults with mse, batch 4, until `steps` (the whole run). */
static clipnn_train_options fuzz_options(clipnn_train_state *state, uint64_t steps) {
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.batch = 4;
    o.steps = steps;
    o.state = state;
    return o;
}

/* A few more steps of the run in st; its status (the seeds' must be OK). */
static clipnn_status resume(clipnn_model *m, clipnn_train_state *st) {
    if (clipnn_model_n_params(m) > FUZZ_MAX_PARAMS || clipnn_model_n_inputs(m) > FUZZ_MAX_INPUTS)
        return CLIPNN_ERR_UNSUPPORTED;
    clipnn_dataset *d = NULL;
    clipnn_status s = fuzz_data(m, &d);
    if (s) return s;
    uint64_t done = clipnn_train_state_steps(st);
    clipnn_train_options o = fuzz_options(st, done < UINT64_MAX - 3 ? done + 3 : UINT64_MAX);
    clipnn_train_result r;
    s = clipnn_train(m, d, NULL, &o, &r);
    clipnn_dataset_free(d);
    return s;
}

#ifndef FUZZ_MAKE_SEEDS
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_limits();
    return 0;
}

static void load(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(0, data, size, ".ckpt");
    clipnn_model *m = NULL;
    clipnn_train_state *st = NULL;
    if (clipnn_checkpoint_load(path, &m, &st) == CLIPNN_OK) (void)resume(m, st);
    clipnn_model_free(m);
    clipnn_train_state_free(st);
    m = NULL;
    if (clipnn_model_load(path, &m) == CLIPNN_OK) clipnn_model_free(m);
}

/* The input as it is (caught by the length and the CRC, mostly), then with
 * its length field and CRC made right, so that mutations reach the
 * sections behind the checksum. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size);
    enum { LENGTH_AT = 12, HEADER = 20, CRC = 4 };
    if (size < HEADER + CRC) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++) fixed[LENGTH_AT + i] = (uint8_t)((uint64_t)size >> (8 * i));
    uint32_t crc = (uint32_t)crc32(0L, fixed, (uInt)(size - CRC));
    for (int i = 0; i < 4; i++) fixed[size - CRC + i] = (uint8_t)(crc >> (8 * i));
    load(fixed, size);
    free(fixed);
    return 0;
}
#else
/* Seeds: checkpoints of small dense and recurrent models after a few
 * steps of the run resume() continues. */
static int seed(const char *path, const clipnn_seq_shape *seq, size_t n_layers, const clipnn_layer_spec *ls) {
    clipnn_model *m = NULL;
    clipnn_train_state *st = NULL;
    clipnn_dataset *d = NULL;
    clipnn_train_result r;
    clipnn_status s = clipnn_model_create_seq(&m, seq, n_layers, ls);
    if (!s) s = clipnn_model_init(m, CLIPNN_INIT_XAVIER, 1);
    if (!s) s = clipnn_train_state_create(&st);
    if (!s) s = fuzz_data(m, &d);
    clipnn_train_options o = fuzz_options(st, 5);
    if (!s) s = clipnn_train(m, d, NULL, &o, &r);
    if (!s) s = clipnn_checkpoint_save(path, m, st);
    clipnn_model *back = NULL;
    clipnn_train_state *back_st = NULL;
    if (!s) s = clipnn_checkpoint_load(path, &back, &back_st);
    if (!s) s = resume(back, back_st); /* the harness reaches the training loop from this seed */
    if (!s && clipnn_train_state_steps(back_st) != 8) s = CLIPNN_ERR_STATE;
    if (s) fprintf(stderr, "%s: %s\n", path, clipnn_last_error());
    clipnn_model_free(back);
    clipnn_train_state_free(back_st);
    clipnn_dataset_free(d);
    clipnn_train_state_free(st);
    clipnn_model_free(m);
    return s != CLIPNN_OK;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    char path[4096];
    clipnn_seq_shape flat = {1, 3, 0}, seq = {4, 2, 0};
    clipnn_layer_spec mlp[] = {{CLIPNN_LAYER_DENSE, 5, CLIPNN_ACT_TANH}, {CLIPNN_LAYER_DENSE, 2, CLIPNN_ACT_IDENTITY}};
    clipnn_layer_spec rnn[] = {{CLIPNN_LAYER_LSTM, 3, CLIPNN_ACT_TANH}, {CLIPNN_LAYER_DENSE, 1, CLIPNN_ACT_IDENTITY}};
    snprintf(path, sizeof path, "%s/mlp.ckpt", argv[1]);
    int bad = seed(path, &flat, 2, mlp);
    snprintf(path, sizeof path, "%s/lstm.ckpt", argv[1]);
    return bad | seed(path, &seq, 2, rnn);
}
#endif
