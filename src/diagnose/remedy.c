/* Remedies that fit the network and the task: which activation flattened
 * the signal, whether the objective is a classification (only then is the
 * CW margin loss a remedy), and what float32 lost when its gradient is 0
 * while the double one is not. */
#include <float.h>
#include <stdio.h>

#include "diagnose/diagnose.h"

int clipnn_diag_flat_tail(clipnn_act act) { return act == CLIPNN_ACT_GELU || act == CLIPNN_ACT_SOFTPLUS; }

const char *clipnn_diag_saturation_remedy(clipnn_act act, int output_sigmoid) {
    if (output_sigmoid)
        return "the model outputs probabilities through a sigmoid, and a loss on probabilities (MSE) saturates when "
               "the output is confidently wrong: use the logits with sigmoid cross-entropy (BCE on logits, gradient "
               "sigmoid(z) - y), or start elsewhere";
    if (clipnn_diag_flat_tail(act))
        return "units in the flat negative tail of their activation (GELU and softplus have derivatives that fall "
               "like exp(-z^2/2) and exp(z) below 0): start from another point, or rescale or shift the input so "
               "that the pre-activations come back above about -3; in the model, an activation that keeps a slope "
               "for negative inputs (leaky ReLU, ELU) would not flatten";
    return "saturated hidden units: start from another point, rescale the input, or use an activation that does "
           "not saturate for large inputs (ReLU, GELU) in the model";
}

const char *clipnn_diag_dead_relu_remedy(void) {
    return "no small change of the input reaches an active unit: start from another point (random start), or use "
           "an activation that keeps a slope for negative inputs (leaky ReLU, ELU); GELU and softplus do not help, "
           "their negative tails flatten too (derivatives below 1e-20 past z = -10 and z = -46)";
}

void clipnn_diag_float_zero_remedy(const target_state *ts, double max_component, char *buf, size_t cap) {
    const char *margin = ts->classify ? "use a loss whose gradient does not vanish (the CW margin), or " : "";
    if (max_component < FLT_TRUE_MIN)
        snprintf(buf, cap,
                 "the true gradient (largest component %.3g) is below float32's smallest number (%.2g): %sevaluate "
                 "the loss and its gradient in double",
                 max_component, (double)FLT_TRUE_MIN, margin);
    else
        snprintf(buf, cap,
                 "the true gradient (largest component %.3g in double) is within float32's range (smallest number "
                 "%.2g), but float32 lost it on the way, a factor rounded to 0 (a saturated derivative, a "
                 "probability): %sevaluate the loss and its gradient in double",
                 max_component, (double)FLT_TRUE_MIN, margin);
}

const char *clipnn_diag_minimum_remedy(const target_state *ts, int reached) {
    if (reached) return "converged: a minimum where the objective has reached its target; nothing to fix";
    return ts->classify ? "a local minimum: restart from other points (random restarts), change the starting point "
                          "or the objective (e.g. the margin loss)"
                        : "a local minimum: restart from other points (random restarts) or change the starting point";
}
