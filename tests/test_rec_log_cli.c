/* clipnn train's recurrent side files: FILE.radius.csv and FILE.time.csv
 * hold what the options ask (headers, one row per gate block or per step t,
 * only at the steps asked), and the options are refused without --log or
 * without recurrent layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Rows of a CSV after its header whose first field is `step` (-1: every
 * row); the header into header[cap]. */
static int count_rows(const char *path, long step, char *header, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int n = 0;
    if (!fgets(header, (int)cap, f)) header[0] = 0;
    while (fgets(line, sizeof line, f)) n += step < 0 || strtol(line, NULL, 10) == step;
    fclose(f);
    return n;
}

TEST(rec_log_cli_side_files) {
    char args[512], header[128];
    const char *log = check_tmp_path("rec_log.csv"), *out;
    /* an LSTM over the digits' 8 rows: 4 gate blocks, 8 steps; 86 steps:
     * radius at 0, 40, 80; d/dh_t at 5, 7 and 80 */
    snprintf(args, sizeof args, "train --quiet --arch lstm:8-10 --steps 86 --log %s "
             "--log-radius-every 40 --log-time-grad 5,7,80", log);
    int rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK(count_rows(check_tmp_path("rec_log.radius.csv"), -1, header, sizeof header) == 3 * 4);
    CHECK(!strcmp(header, "step,layer,gate,radius\n"));
    CHECK(count_rows(check_tmp_path("rec_log.radius.csv"), 40, header, sizeof header) == 4);
    CHECK(count_rows(check_tmp_path("rec_log.time.csv"), -1, header, sizeof header) == 3 * 8);
    CHECK(!strcmp(header, "step,layer,t,norm\n"));
    CHECK(count_rows(check_tmp_path("rec_log.time.csv"), 7, header, sizeof header) == 8);
    snprintf(args, sizeof args, "train --quiet --arch rnn:8-rnn:6-10 --steps 9 --log %s --log-time-grad every:4",
             log);
    rc = check_run_tool(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    /* steps 0, 4, 8; two layers of 8 steps each */
    CHECK(count_rows(check_tmp_path("rec_log.time.csv"), -1, header, sizeof header) == 3 * 2 * 8);
}

TEST(rec_log_cli_refusals) {
    const char *out;
    CHECK(check_run_tool("train --quiet --arch rnn:8-10 --steps 2 --log-radius-every 1", &out) == 2);
    CHECK(strstr(out, "--log-radius-every needs --log") != NULL);
    char args[256];
    snprintf(args, sizeof args, "train --quiet --arch 16-10 --steps 2 --log %s --log-time-grad 1",
             check_tmp_path("rec_log_mlp.csv"));
    CHECK(check_run_tool(args, &out) == 2);
    CHECK(strstr(out, "no recurrent layers") != NULL);
    snprintf(args, sizeof args, "train --quiet --arch rnn:8-10 --steps 2 --log %s --log-time-grad every:0",
             check_tmp_path("rec_log_bad.csv"));
    CHECK(check_run_tool(args, &out) == 2);
    snprintf(args, sizeof args, "train --quiet --arch rnn:8-10 --steps 2 --log %s --log-time-grad 3,x",
             check_tmp_path("rec_log_bad.csv"));
    CHECK(check_run_tool(args, &out) == 2);
}
