/* clipnn: Carrying a model elsewhere: PyTorch-named tensors in safetensors and npz files, with the model's
 * layout and data record as metadata, and back. */
#ifndef CLIPNN_PUBLIC_EXPORT_H
#define CLIPNN_PUBLIC_EXPORT_H

#include "clipnn/base.h"
#include "clipnn/data.h"
#include "clipnn/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* safetensors: an 8-byte header length, a JSON header (each tensor's dtype
 * F32, shape and byte offsets, and "__metadata__": strings), the tensor
 * bytes. npz: numpy.savez's zip of .npy arrays (stored, not compressed),
 * the metadata as a JSON object of strings in the member
 * "__metadata__.json". */
typedef enum { CLIPNN_EXPORT_SAFETENSORS = 0, CLIPNN_EXPORT_NPZ, CLIPNN_EXPORT_COUNT } clipnn_export_format;

/* "safetensors", "npz". */
CLIPNN_API const char *clipnn_export_format_name(clipnn_export_format f);
CLIPNN_API clipnn_status clipnn_export_format_parse(const char *name, clipnn_export_format *out);

/* Writes the model's tensors under the names of the PyTorch modules that
 * compute the same function, loadable with load_state_dict:
 *   without recurrent layers, torch.nn.Sequential(Linear, activation,
 *     Linear, ...): "0.weight" [out][in], "0.bias", "2.weight", ... (dense
 *     layer l at index 2l, its activation module at 2l + 1; clipnn's
 *     [out][in] layout is PyTorch's);
 *   with recurrent layers, a module "rnn" (torch.nn.RNN, LSTM or GRU,
 *     batch_first, num_layers the count: "rnn.weight_ih_l0", "rnn.weight_hh_l0",
 *     "rnn.bias_ih_l0", "rnn.bias_hh_l0", ..._l1 ...; gates in PyTorch's order)
 *     when all recurrent layers are of one kind and width, else one module
 *     per layer ("rnn.0.weight_ih_l0", "rnn.1.weight_ih_l0", ...), then the
 *     dense layers as a Sequential "head" ("head.0.weight", ...), applied to
 *     the last step's output (or every step's, for every_step models).
 * The metadata: clipnn.layers (each layer as KIND:WIDTH:ACT, comma
 * separated), clipnn.inputs, and for recurrent models clipnn.steps,
 * clipnn.step_dim, clipnn.every_step; then every entry of info (may be
 * NULL). Written atomically like checkpoints. */
CLIPNN_API clipnn_status clipnn_model_export(const char *path, clipnn_export_format format, const clipnn_model *m,
                                             const clipnn_data_info *info);

/* What an imported file may not say (a file written by clipnn says it all). */
typedef struct {
    clipnn_act act;   /* hidden dense layers' activation; CLIPNN_ACT_COUNT: not given */
    size_t steps;     /* time steps per input row of a recurrent model; 0: not given */
    int every_step;   /* the head reads every step (many-to-many) */
    int rnn_relu;     /* Elman layers (one gate) use relu (torch.nn.RNN(nonlinearity='relu')) */
} clipnn_import_options;
CLIPNN_API clipnn_import_options clipnn_import_options_default(void);

/* Reads a file of that format: the model from the clipnn.* metadata when
 * present, else from the tensor names and shapes (the names above, any
 * common prefix before the Sequential indices, such as "net.0.weight";
 * float32 or float64 tensors), with o (may be NULL) for the activation and
 * the steps. *info receives the other metadata entries (a data record),
 * NULL when there are none. A malformed, truncated or inconsistent file is
 * refused (FORMAT, TRUNCATED, SHAPE, UNSUPPORTED) with one message naming it;
 * a file that leaves something undetermined, with INVALID_ARG saying what
 * to give. */
CLIPNN_API clipnn_status clipnn_model_import(const char *path, clipnn_export_format format,
                                             const clipnn_import_options *o, clipnn_model **m,
                                             clipnn_data_info **info);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_EXPORT_H */
