/* One convention for --json: every command prints exactly one JSON
 * document on stdout, on success and on failure (then {"error", "exit"}
 * with the process's exit code), checked with a strict parser; unknown
 * options, commands and values get "did you mean". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "clipnn.h"
#include "io/json.h"

/* The tool's stdout alone (stderr discarded) and its exit code. */
static int run_stdout(const char *args, char *out, size_t cap) {
    const char *bin = getenv("CLIPNN_BIN");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", bin ? bin : "build/clipnn", args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* stdout is exactly one JSON object; an error object carries the exit code
 * (want_error 1), a result none (want_error 0: and exit 0; -1: any exit,
 * for a run whose result decides it). */
static void check_one_document(const char *args, int want_error) {
    static char out[1 << 20];
    int rc = run_stdout(args, out, sizeof out);
    clipnn_json *doc = NULL;
    clipnn_status s = clipnn_json_parse(args, out, strlen(out), &doc);
    CHECK_MSG(s == CLIPNN_OK && doc->type == JSON_OBJECT, "%s: exit %d, not one JSON object (%s): %.300s", args, rc,
              clipnn_last_error(), out);
    if (s == CLIPNN_OK) {
        const clipnn_json *err = clipnn_json_get(doc, "error"), *code = clipnn_json_get(doc, "exit");
        uint64_t exit_code = 0;
        if (want_error > 0)
            CHECK_MSG(rc != 0 && err && err->type == JSON_STRING && !clipnn_json_u64(code, &exit_code) &&
                          exit_code == (uint64_t)rc,
                      "%s: exit %d with %.300s", args, rc, out);
        else
            CHECK_MSG((rc == 0 || want_error < 0) && !err, "%s: exit %d with %.300s", args, rc, out);
    }
    clipnn_json_free(doc);
}

TEST(json_every_command_prints_one_document) {
    const char *model = check_tmp_path("json.ckpt"), *st = check_tmp_path("json.safetensors"),
               *back = check_tmp_path("json_back.ckpt");
    char a[4096];
    snprintf(a, sizeof a, "train --steps 40 --quiet --save %s --json", model);
    check_one_document(a, 0);
    const char *ok[] = {"eval --model %s --json", "eval --model %s --split train --json",
                        "attack --model %s --method fgsm --eps 0.1 --n 20 --json",
                        "optimize-input --model %s --start data:0 --target-class 3 --steps 20 --json",
                        "diagnose --model %s --input data:3 --target-class 3 --json", "info %s --json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(a, sizeof a, ok[i], model);
        check_one_document(a, 0);
    }
    /* several runs, some of which may miss their target (exit 1): one document */
    snprintf(a, sizeof a, "optimize-input --model %s --start data:0 --target-class all --steps 10 --json", model);
    check_one_document(a, -1);
    snprintf(a, sizeof a, "export --model %s %s --json", model, st);
    check_one_document(a, 0);
    snprintf(a, sizeof a, "import %s %s --json", st, back);
    check_one_document(a, 0);
    check_one_document("compare --steps 5 --seeds 1 --json", 0);
    check_one_document("lab list --json", 0);
    check_one_document("lab gd-clip --quick --json", 0);
    check_one_document("diagnose --demo list --json", 0);
    check_one_document("diagnose --demo saddle --json", 0);
    check_one_document("diagnose --demo all --json", 0);
    check_one_document("--version --json", 0);
}

TEST(json_errors_are_one_object_with_the_exit_code) {
    const char *bad[] = {"train --lr nope --json", "train --data csv:/nonexistent.csv --json",
                         "eval --model /nonexistent.ckpt --json", "compare --clip nrom --json", "lab nothing --json",
                         "attack --model /nonexistent.ckpt --json", "optimize-input --json",
                         "diagnose --model /nonexistent.ckpt --input data:0 --json", "info --json",
                         "info /nonexistent.ckpt --json", "export --model /nonexistent.ckpt x.npz --json",
                         "import /nonexistent.npz y.ckpt --json", "evla --json", "train --bogus --json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) check_one_document(bad[i], 1);
}

TEST(did_you_mean) {
    const char *out;
    CHECK(check_run_tool("evla", &out) == 2 && strstr(out, "did you mean 'eval'"));
    CHECK(check_run_tool("train --lrr 3", &out) == 2 && strstr(out, "did you mean '--lr'"));
    CHECK(check_run_tool("train --clip nrom", &out) == 2 && strstr(out, "did you mean 'norm'"));
    CHECK(check_run_tool("lab gd-clp", &out) == 2 && strstr(out, "did you mean 'gd-clip'"));
    /* nothing close: no guess */
    CHECK(check_run_tool("train --zzzzzz 3", &out) == 2 && !strstr(out, "did you mean"));
    static const char *const names[] = {"norm", "value", "adaptive"};
    CHECK(clipnn_closest_name("vlaue", names, 3) == names[1]); /* a swap of neighbours is one edit */
    CHECK(clipnn_closest_name("NORM", names, 3) == names[0]);
    CHECK(clipnn_closest_name("xyz", names, 3) == NULL);
    CHECK(clipnn_closest_name("adap", names, 3) == names[2]); /* a beginning */
}

/* The strict parser the test relies on refuses what is not one JSON value. */
TEST(json_parser_is_strict) {
    const char *bad[] = {"", "{} {}", "{\"a\":1,}", "[1,]", "{\"a\":1,\"a\":2}", "{'a':1}", "NaN", "01", "1.",
                         "\"\\x\"", "\"a\tb\"", "[", "{\"a\"}", "\"\\ud800\"", "tru", "-", "1e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clipnn_json *v = NULL;
        CHECK_MSG(clipnn_json_parse("t", bad[i], strlen(bad[i]), &v) == CLIPNN_ERR_FORMAT && !v, "accepted '%s'",
                  bad[i]);
    }
    const char *good = " {\"a\":[1,-2.5e3,true,false,null],\"b\":{\"c\":\"\\u00e9\\ud83d\\ude00\\n\"}} ";
    clipnn_json *v = NULL;
    CHECK_OK(clipnn_json_parse("t", good, strlen(good), &v));
    const clipnn_json *c = clipnn_json_get(clipnn_json_get(v, "b"), "c");
    CHECK(c && !strcmp(c->text, "\xc3\xa9\xf0\x9f\x98\x80\n"));
    clipnn_json_free(v);
    /* nesting beyond the limit is refused, not a stack overflow */
    char deep[200];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(clipnn_json_parse("t", deep, strlen(deep), &v) == CLIPNN_ERR_FORMAT);
}
