/* The history row of an epoch that a resume splits: the checkpoint carries
 * the epoch's running sums, so the resumed run's --log-epochs rows are the
 * uninterrupted run's, byte for byte but for the wall-clock seconds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "check.h"
#include "file_util.h"

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The CSV at path without its seconds column (the 7th) and without the
 * rows of epochs before first (the header kept), into buf. */
static void rows_from(const char *path, unsigned long first, char *buf, size_t cap) {
    char *text = slurp_file(path, NULL);
    size_t len = 0;
    buf[0] = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] >= '0' && line[0] <= '9' && strtoul(line, NULL, 10) < first) continue;
        int field = 1;
        for (const char *c = line; *c && len + 2 < cap; c++) {
            if (*c == ',' && ++field == 8) continue; /* the comma after the seconds */
            if (field != 7 || *c == ',') buf[len++] = *c;
        }
        buf[len++] = '\n';
        buf[len] = 0;
    }
    free(text);
}

/* --epochs 3 whole, and stopped at step 60 (in the second epoch of 45
 * steps) then resumed: the rows of epochs 2 and 3 agree. */
static void check_split_epoch(const char *run) {
    const char *whole = check_tmp_path("er_whole.csv"), *resumed = check_tmp_path("er_resumed.csv");
    const char *half = check_tmp_path("er_half.ckpt");
    char args[2048];
    const char *out;
    snprintf(args, sizeof args, "train --quiet --threads 1 %s --epochs 3 --log-epochs %s", run, whole);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s: %s", run, out);
    snprintf(args, sizeof args, "train --quiet --threads 1 %s --steps 60 --save %s", run, half);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s: %s", run, out);
    snprintf(args, sizeof args, "train --quiet --threads 1 --resume %s --epochs 3 --log-epochs %s", half, resumed);
    CHECK_MSG(check_run_tool(args, &out) == 0, "%s: %s", run, out);
    static char a[8192], b[8192];
    rows_from(whole, 2, a, sizeof a);
    rows_from(resumed, 2, b, sizeof b);
    CHECK_MSG(strchr(a, '\n') && strstr(a, "\n2,") && strstr(a, "\n3,"), "%s: rows missing: %s", run, a);
    CHECK_MSG(!strcmp(a, b), "%s: uninterrupted\n%s resumed\n%s", run, a, b);
}

TEST(epoch_resume_split_epoch_row_is_the_uninterrupted_one) {
    check_split_epoch("--clip zscore --momentum 0.5");
}

/* Steps skipped under --nonfinite skip (no loss to count) on both sides of
 * the split. */
TEST(epoch_resume_split_epoch_row_with_skipped_steps) {
    check_split_epoch("--clip none --nonfinite skip --act relu --lr 40");
}

/* A forged EPCH section (more rows right than read, more skipped steps than
 * taken), length and CRC made right: refused as a bad file, naming it. */
TEST(epoch_resume_forged_epoch_section_is_refused) {
    const char *path = check_tmp_path("er_forged.ckpt");
    char args[1024];
    const char *out;
    snprintf(args, sizeof args, "train --quiet --threads 1 --steps 60 --save %s", path);
    CHECK(check_run_tool(args, &out) == 0);
    size_t len = 0;
    unsigned char *b = slurp_file(path, &len);
    unsigned char *tag = NULL;
    for (size_t i = 20; b && i + 12 + 24 <= len; i++)
        if (!memcmp(b + i, "EPCH", 4)) tag = b + i;
    CHECK_MSG(tag != NULL && le64(tag + 4) == 24, "no 24-byte EPCH section in %s", path);
    if (!tag) {
        free(b);
        return;
    }
    for (int field = 0; field < 2; field++) {
        unsigned char *p = tag + 12, keep[24];
        memcpy(keep, p, 24);
        if (field == 0) put_le64(p + 8, le64(p + 16) + 1); /* correct > rows */
        else put_le64(p, 61);                              /* skipped > the epoch's steps */
        put_le32(b + len - 4, (uint32_t)crc32(0L, b, (uInt)(len - 4)));
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(b, 1, len, f) == len);
        if (f) fclose(f);
        snprintf(args, sizeof args, "train --quiet --resume %s --epochs 3", path);
        int rc = check_run_tool(args, &out);
        CHECK_MSG(rc == 3 && strstr(out, "epoch section") && strstr(out, path), "field %d: exit %d: %s", field, rc,
                  out);
        memcpy(p, keep, 24);
    }
    free(b);
}
