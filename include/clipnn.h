/*
 * clipnn: clipped stochastic gradient descent for multilayer perceptrons,
 * input optimization, and diagnosis of zero / vanishing / exploding gradients.
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
 * Conventions (PyTorch's unless a formula of the SPEC says otherwise):
 *   - a dense layer computes z = a W^T + b with W stored row-major as
 *     [out][in] (row i = the incoming weights of output unit i), like
 *     torch.nn.Linear;
 *   - all parameters live in one contiguous float block, all gradients in
 *     another of the same layout: for each layer, W then b;
 *   - losses are means over the batch (MSE: over all elements);
 *   - targets are floats: class indices for CLIPNN_LOSS_XENT and
 *     CLIPNN_LOSS_MARGIN ([batch]), values for MSE and BCE ([batch][n_out]).
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

#endif /* CLIPNN_H */
