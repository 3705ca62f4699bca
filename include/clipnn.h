/*
 * clipnn: clipped stochastic gradient descent for multilayer perceptrons and
 * recurrent networks, input optimization, and diagnosis of zero / vanishing /
 * exploding gradients.
 *
 * This header includes the whole public API, one header per subsystem
 * (include/clipnn/NAME.h: a user of the core needs only base, model, clip,
 * data and train). Handles are opaque; option structs are filled by their
 * *_default() constructor and then edited field by field. Every fallible
 * function returns a clipnn_status; clipnn_last_error() gives a one-line
 * explanation (naming the file and the problem where there is one) for the
 * last failure on the calling thread. The library never exits and never
 * prints unless a log callback is installed.
 *
 * Conventions (PyTorch's unless a formula below says otherwise):
 *   - a dense layer computes z = a W^T + b with W stored row-major as
 *     [out][in] (row i = the incoming weights of output unit i), like
 *     torch.nn.Linear;
 *   - all parameters live in one contiguous float block, all gradients in
 *     another of the same layout: W_ih, W_hh, b_ih, b_hh of each recurrent
 *     layer, then W and b of each dense layer (clipnn_group);
 *   - losses are means over the output rows, one row per example (one per
 *     example and step for a model that gives an output at every step):
 *     cross-entropy and margin over the rows, MSE and BCE over all their
 *     elements (rows x outputs);
 *   - targets are floats, one row per output row: class indices for
 *     CLIPNN_LOSS_XENT and CLIPNN_LOSS_MARGIN ([batch], or [batch][steps]),
 *     values for MSE and BCE ([batch][n_out], or [batch][steps][n_out]);
 *   - "eq. N", "Lemma N" and "Theorem N" refer to A. Ramaswamy, "Gradient
 *     Clipping in Deep Learning: A Dynamical Systems Perspective", ICPRAM
 *     2023.
 *
 * Pointers the library returns:
 *   - names (clipnn_strerror, clipnn_*_name, clipnn_lab_summary,
 *     clipnn_blas_name, clipnn_version) are static strings, valid for the
 *     life of the program;
 *   - clipnn_last_error's text is the calling thread's own and stays until
 *     that thread's next call into the library, which may overwrite it; a
 *     successful call does not clear it, so it means something only right
 *     after a failure;
 *   - a pointer into an object (clipnn_model_params, clipnn_model_grads,
 *     clipnn_dataset_x, clipnn_dataset_y, clipnn_dataset_name,
 *     clipnn_clipper_options) keeps its address until that object is freed;
 *     what it points to changes when the library writes it;
 *   - a pointer into a model's workspace (clipnn_forward's outputs,
 *     clipnn_model_last_losses) is valid until the next call that runs that
 *     model (clipnn_forward, clipnn_loss_grad, clipnn_evaluate, clipnn_train,
 *     clipnn_objective_grad, clipnn_optimize_input, clipnn_attack,
 *     clipnn_diagnose_model), a clipnn_model_reserve, or its free: they
 *     overwrite the workspace, and a batch larger than reserved reallocates
 *     it;
 *   - a pointer in a record given to a callback (group_norms,
 *     group_post_norms, group_factors, the per-example arrays of an attack
 *     step) is valid during that callback only.
 */
#ifndef CLIPNN_H
#define CLIPNN_H

#include "clipnn/base.h"
#include "clipnn/model.h"
#include "clipnn/clip.h"
#include "clipnn/data.h"
#include "clipnn/train.h"
#include "clipnn/io.h"
#include "clipnn/inputopt.h"
#include "clipnn/diagnose.h"
#include "clipnn/lab.h"
#include "clipnn/privacy.h"
#include "clipnn/export.h"
#include "clipnn/dist.h"

#endif /* CLIPNN_H */
