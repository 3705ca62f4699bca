/* clipnn attack: several methods as one evaluation (an example counts as
 * robust only when no method broke it) and the sanity checks of --check. */
#ifndef CLIPNN_CLI_ATTACK_CHECKS_H
#define CLIPNN_CLI_ATTACK_CHECKS_H

#include "inputopt_common.h"
#include "report.h"

#define ATTACK_MAX_METHODS 8

/* The examples under attack, in the space the attack works in. */
typedef struct {
    clipnn_model *m;
    const clipnn_input_space *space;
    const float *x, *labels;
    size_t n, dim, batch;
} attack_set;

/* "M[,M...]" into methods[cap]; 0 or the exit code with the message printed. */
int attack_parse_methods(const char *cmd, const char *text, clipnn_attack_method *methods, size_t cap, size_t *n);

/* Every method at ao->eps: res[i] per method, the kept inputs of the first
 * in adv ([n][dim]), correct[n] = 1 where the model still classifies the
 * example right under every method; *robust_min their fraction. */
int attack_ensemble(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                    const clipnn_attack_method *methods, size_t n_methods, float *adv, clipnn_attack_result *res,
                    unsigned char *correct, double *robust_min);

/* The sanity checks (Carlini et al. 2019; AutoAttack): more iterations and
 * restarts change nothing, success reaches 100% as eps grows, random noise of
 * the same budget is weaker than the attack, zero gradients. */
typedef struct {
    char name[40];
    int pass;
    char numbers[320];
} attack_check;
#define ATTACK_N_CHECKS 4

/* At budget ao->eps (> 0), for the methods as one evaluation whose
 * per-example results there are correct[n]; zero_end: unbroken examples
 * whose input gradient ended exactly 0. checks: [ATTACK_N_CHECKS]. */
int attack_sanity_checks(const char *cmd, const attack_set *s, const clipnn_attack_options *ao,
                         const clipnn_attack_method *methods, size_t n_methods, const unsigned char *correct,
                         size_t zero_end, attack_check *checks);
void attack_print_checks(const attack_check *checks, double eps);
void attack_json_checks(cli_json *j, const attack_check *checks, double eps);

#endif
