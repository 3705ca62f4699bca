#include "lab_internal.h"
clipnn_status lab_sgd_bias(lab_ctx *L) { (void)L; return CLIPNN_OK; }
clipnn_status lab_sgd_condition(lab_ctx *L) { (void)L; return CLIPNN_OK; }
clipnn_status lab_stability(lab_ctx *L) { (void)L; return CLIPNN_OK; }
clipnn_status lab_fixed_point(lab_ctx *L) { (void)L; return CLIPNN_OK; }
clipnn_status lab_l0l1(lab_ctx *L) { (void)L; return CLIPNN_OK; }
