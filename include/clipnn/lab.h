/* clipnn: The theory lab: experiments that measure the claims of the paper and the exercise. */
#ifndef CLIPNN_PUBLIC_LAB_H
#define CLIPNN_PUBLIC_LAB_H

#include "clipnn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ theory lab */

/* Experiments that test the claims of the clipping paper (A. Ramaswamy,
 * "Gradient Clipping in Deep Learning: A Dynamical Systems Perspective",
 * ICPRAM 2023), of an exercise on clipped GD and SGD, of a few papers
 * beside them and of Pascanu, Mikolov and Bengio (2013) on recurrent
 * networks: each prints a table and one verdict line per claim,
 *   CLAIM <id>: HOLDS|FAILS|HOLDS UNDER <condition> (<deciding numbers>),
 * through the caller's write callback (nothing is printed without one), and
 * writes a CSV of its traces and an SVG plot per figure into out_dir when it
 * is set. docs/lab.md explains every claim and the bounds used. */
typedef void (*clipnn_lab_write_fn)(const char *text, void *user);

typedef struct {
    uint64_t seed;          /* every experiment is reproducible from it (default 1) */
    int quick;              /* reduced sizes: every claim still gets a verdict (tests) */
    const char *out_dir;    /* CSV + SVG files go here (must exist); NULL: none */
    clipnn_lab_write_fn write; /* table and verdict text; NULL: silent */
    void *user;
    int full;   /* the source's own budgets where an experiment has them (long runs) */
    int in_all; /* run as part of all the experiments: the long ones take reduced budgets */
} clipnn_lab_options;
CLIPNN_API clipnn_lab_options clipnn_lab_options_default(void);

CLIPNN_API size_t clipnn_lab_count(void);
CLIPNN_API const char *clipnn_lab_name(size_t index);    /* NULL past the end */
CLIPNN_API const char *clipnn_lab_summary(size_t index); /* one line */

typedef enum { CLIPNN_CLAIM_HOLDS = 0, CLIPNN_CLAIM_FAILS, CLIPNN_CLAIM_HOLDS_UNDER } clipnn_claim_verdict;
CLIPNN_API const char *clipnn_claim_verdict_name(clipnn_claim_verdict v); /* "HOLDS", "FAILS", "HOLDS UNDER" */

#define CLIPNN_LAB_MAX_CLAIMS 12
typedef struct {
    char id[32];
    clipnn_claim_verdict verdict;
    char condition[160]; /* for HOLDS UNDER, else "" */
    char numbers[480];   /* the measurements that decide it */
} clipnn_lab_claim;

typedef struct {
    size_t n_claims;
    clipnn_lab_claim claims[CLIPNN_LAB_MAX_CLAIMS];
    char data[96];  /* real data set used (the built-in breast cancer set), "" when none */
    double seconds;
} clipnn_lab_result;

/* Runs experiment `name` (see clipnn_lab_name). result may be NULL. Fails
 * with INVALID_ARG for an unknown name, IO when out_dir cannot be written. */
CLIPNN_API clipnn_status clipnn_lab_run(const char *name, const clipnn_lab_options *opts,
                             clipnn_lab_result *result);

#ifdef __cplusplus
}
#endif
#endif /* CLIPNN_PUBLIC_LAB_H */
