/* clipnn train --resume and the saved run's options: the options not given
 * are the saved run's, a given option that would change the trajectory is
 * refused naming it with both values (or, with --force, a warning), and
 * the options a user changes on resume (--epochs, --steps, logs,
 * --threads) are taken as given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "file_util.h"

/* A run whose every option differs from the tool's defaults where it
 * matters to the trajectory: a rule with a state of its own (ZClip's EMAs),
 * momentum, a schedule, another batch size and seed. */
static const char RUN[] = "--threads 1 --quiet --clip zscore --lambda 2 --z-warmup 10 --lr 0.1 --momentum 0.5 "
                          "--schedule rm:10,0.75 --batch 16 --seed 3";

/* The run stopped after 100 of its steps (an epoch is 90), saved in half. */
static const char *saved_half(void) {
    const char *half = check_tmp_path("ropt_half.ckpt");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train %s --steps 100 --save %s", RUN, half);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    return half;
}

/* `--resume FILE --epochs 3` alone continues with the saved rule, step
 * size, momentum, schedule, batch and seed: the checkpoint of the run
 * never interrupted, byte for byte. */
TEST(resume_opts_not_given_are_the_saved_runs) {
    const char *whole = check_tmp_path("ropt_whole.ckpt"), *resumed = check_tmp_path("ropt_resumed.ckpt");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train %s --epochs 3 --save %s", RUN, whole);
    CHECK(check_run_tool(args, &out) == 0);
    const char *half = saved_half();
    snprintf(args, sizeof args, "train --quiet --resume %s --epochs 3 --save %s", half, resumed);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_MSG(same_file(whole, resumed), "resumed without options: not the uninterrupted run's checkpoint");
    /* the same options given again, and the ones a resume may change */
    snprintf(args, sizeof args, "train %s --resume %s --epochs 3 --threads 1 --log-epochs %s --save %s", RUN, half,
             check_tmp_path("ropt_epochs.csv"), resumed);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_MSG(same_file(whole, resumed), "resumed with the same options: not the uninterrupted run's checkpoint");
}

/* A run resumed after its last step takes no step, and reports the saved
 * model's test accuracy: the figure `clipnn eval` gives for the checkpoint
 * (it used to print nan). */
TEST(resume_opts_a_finished_run_reports_its_model) {
    const char *half = saved_half();
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "eval --model %s --json", half);
    CHECK(check_run_tool(args, &out) == 0);
    const char *a = strstr(out, "\"accuracy\":");
    double eval_acc = a ? strtod(a + 11, NULL) : -1;
    snprintf(args, sizeof args, "train --quiet --resume %s --json", half);
    int rc = check_run_tool(args, &out);
    const char *t = strstr(out, "\"test_accuracy\":");
    double train_acc = t ? strtod(t + 16, NULL) : -2;
    CHECK_MSG(rc == 0 && eval_acc > 0.5 && train_acc == eval_acc, "exit %d, eval %.6f, resumed run %.6f: %s", rc,
              eval_acc, train_acc, out);
}

/* Without --epochs or --steps the resumed run keeps the saved plan: a run
 * stopped at step 100 of --steps 100 has nothing left to do. */
TEST(resume_opts_keep_the_saved_length) {
    const char *half = saved_half();
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --quiet --resume %s --json", half);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0 && strstr(out, "\"steps\":100,"), "exit %d: %s", rc, out);
}

/* Each given option that changes the trajectory: exit 2 before any
 * training, one line naming it with the saved and the given value. */
TEST(resume_opts_that_change_the_trajectory_are_refused) {
    const char *half = saved_half();
    static const struct {
        const char *given, *line;
    } cases[] = {
        {"--lr 0.2", "--lr 0.2: the run saved in %s was made with --lr 0.1;"},
        {"--clip norm", "--clip norm: the run saved in %s was made with --clip zscore;"},
        {"--lambda 3", "--lambda 3: the run saved in %s was made with --lambda 2;"},
        {"--batch 32", "--batch 32: the run saved in %s was made with --batch 16;"},
        {"--seed 1", "--seed 1: the run saved in %s was made with --seed 3;"},
        {"--opt adam", "--opt adam: the run saved in %s was made with --opt sgd;"},
        {"--momentum 0.9", "--momentum 0.9: the run saved in %s was made with --momentum 0.5;"},
        {"--schedule const", "--schedule const: the run saved in %s was made with --schedule rm:10,0.75;"},
        {"--z-warmup 25", "--z-warmup 25: the run saved in %s was made with --z-warmup 10;"},
        {"--nesterov", "--nesterov on: the run saved in %s was made with --nesterov off;"},
        {"--loss mse", "--loss mse: the run saved in %s was made with --loss xent;"},
        {"--data breast-cancer", "--data differs from the data %s was trained on"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1024], want[512];
        const char *out;
        snprintf(args, sizeof args, "train --quiet --resume %s --epochs 3 %s", half, cases[i].given);
        int rc = check_run_tool(args, &out);
        snprintf(want, sizeof want, cases[i].line, half);
        CHECK_MSG(rc == 2, "%s: exit %d: %s", cases[i].given, rc, out);
        CHECK_MSG(strstr(out, want) != NULL, "%s: no '%s' in: %s", cases[i].given, want, out);
        CHECK_MSG(strchr(out, '\n') == out + strlen(out) - 1, "%s: more than one line: %s", cases[i].given, out);
    }
}

/* --force: the given value, and a warning that names both. */
TEST(resume_opts_force_continues_with_a_warning) {
    const char *half = saved_half();
    char args[1024], want[512];
    const char *out;
    snprintf(args, sizeof args, "train --quiet --resume %s --epochs 3 --lr 0.2 --force --json", half);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(want, sizeof want, "clipnn train: warning: --lr 0.2: the run saved in %s was made with --lr 0.1; "
             "continuing with 0.2 (--force)", half);
    CHECK_MSG(strstr(out, want) != NULL, "no '%s' in: %s", want, out);
    CHECK_MSG(strstr(out, "\"lr\":0.2,") != NULL, "not run at lr 0.2: %s", out);
}

/* The checkpoints --save-every writes as the run goes carry its options
 * too: a run that diverges is not saved at its end, and its last periodic
 * checkpoint resumes at its own step size and rule. */
TEST(resume_opts_periodic_checkpoints_carry_the_options) {
    const char *path = check_tmp_path("ropt_every.ckpt");
    char args[1024];
    const char *out;
    remove(path);
    /* plain SGD at lr 4 without clipping overflows within 60 to 200 steps */
    snprintf(args, sizeof args, "train --quiet --threads 1 --act relu --momentum 0 --lr 4 --clip none --batch 16 "
             "--steps 1000 --save %s --save-every 10", path);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 1, "the run did not diverge: exit %d: %s", rc, out);
    snprintf(args, sizeof args, "train --quiet --threads 1 --resume %s --steps 1 --json", path);
    rc = check_run_tool(args, &out);
    /* --steps 1 is behind the checkpoint: nothing to train, the options reported */
    CHECK_MSG(rc == 0 && strstr(out, "\"lr\":4,") && strstr(out, "\"rule\":\"none\"") && strstr(out, "\"batch\":16,"),
              "exit %d: %s", rc, out);
}

/* Options that do nothing without their partner are refused, not ignored. */
TEST(resume_opts_force_without_resume_and_lab_quick_full_refused) {
    const char *out;
    int rc = check_run_tool("train --steps 2 --force", &out);
    CHECK_MSG(rc == 2 && strstr(out, "--force goes with --resume"), "exit %d: %s", rc, out);
    rc = check_run_tool("lab rnn-cliff --quick --full", &out);
    CHECK_MSG(rc == 2 && strstr(out, "--quick or --full"), "exit %d: %s", rc, out);
}
