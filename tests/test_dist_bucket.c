/* The bucket size of the data-parallel all-reduce (CLIPNN_ALLREDUCE_BUCKET_MB)
 * as the library reads it, and the plain build's answer: no buckets. The
 * buckets themselves run in the MPI tests (tests/mpi/buckets.sh). */
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "dist/dist.h"

TEST(dist_bucket_size_parsed_or_refused) {
    double mb = -1;
    CHECK_OK(clipnn_dist_bucket_parse("0", &mb));
    CHECK(mb == 0);
    CHECK_OK(clipnn_dist_bucket_parse("2.5", &mb));
    CHECK(mb == 2.5);
    const char *bad[] = {"", "abc", "-1", "1MB", "nan", "inf", "2e6"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mb = 7;
        CHECK_MSG(clipnn_dist_bucket_parse(bad[i], &mb) == CLIPNN_ERR_INVALID_ARG, "'%s' accepted", bad[i]);
        CHECK_MSG(mb == 7, "'%s' changed the size", bad[i]);
        CHECK(strstr(clipnn_last_error(), "CLIPNN_ALLREDUCE_BUCKET_MB") != NULL);
    }
    CHECK(clipnn_dist_bucket_parse(NULL, &mb) == CLIPNN_ERR_INVALID_ARG);
}

TEST(dist_bucket_none_outside_a_job) {
    /* No job in the plain build: the buckets never start, whatever the size. */
    CHECK(clipnn_dist_last_buckets() == 0);
    clipnn_model *m = NULL;
    size_t widths[] = {4, 2};
    clipnn_act acts[] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    CHECK_OK(clipnn_model_create(&m, 3, 2, widths, acts));
    if (m) CHECK(clipnn_dist_buckets_begin(m) == 0);
    CHECK(clipnn_dist_last_buckets() == 0);
    clipnn_model_free(m);
}
