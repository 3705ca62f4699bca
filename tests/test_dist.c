/* The data-parallel API in a build without MPI: one process, nothing to
 * join or end, and a library with no MPI symbol in it. In the MPI build
 * (make MPI=1 test) the runner is a job of one process (singleton init). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

TEST(dist_without_mpi_is_one_process) {
    if (clipnn_dist_available()) return; /* dist_mpi_build_alone_is_a_job_of_one below */
    CHECK(clipnn_dist_rank() == 0 && clipnn_dist_size() == 1);
    int argc = 1;
    char arg0[] = "test", *args[] = {arg0, NULL}, **argv = args;
    CHECK(clipnn_dist_init(&argc, &argv) == CLIPNN_OK);
    CHECK(argc == 1 && argv == args);
    CHECK(clipnn_dist_rank() == 0 && clipnn_dist_size() == 1);
    clipnn_dist_abort(3, "no job: returns"); /* nothing to end */
    clipnn_dist_finalize();
    CHECK(clipnn_dist_size() == 1);
}

/* Started without a launcher, the MPI build joins a job of one process
 * (MPI's singleton init) and leaves it; clipnn_dist_abort is not called:
 * in a job it ends the process, the runner with it. */
TEST(dist_mpi_build_alone_is_a_job_of_one) {
    if (!clipnn_dist_available()) return;
    int argc = 1;
    char arg0[] = "test", *args[] = {arg0, NULL}, **argv = args;
    CHECK(clipnn_dist_init(&argc, &argv) == CLIPNN_OK);
    CHECK(clipnn_dist_rank() == 0 && clipnn_dist_size() == 1);
    clipnn_dist_finalize();
    CHECK(clipnn_dist_rank() == 0 && clipnn_dist_size() == 1);
}

/* The plain shared library refers to no MPI function (nm -D lists the
 * symbols it needs from other libraries); the MPI build's does. */
TEST(dist_plain_library_has_no_mpi_symbol) {
    const char *lib = getenv("CLIPNN_LIB");
    if (!lib) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "nm -D '%.4000s' 2>/dev/null", lib);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    char line[512];
    int lines = 0, mpi = 0;
    while (fgets(line, sizeof line, p)) lines++, mpi += strstr(line, " MPI_") != NULL || strstr(line, "ompi_") != NULL;
    pclose(p);
    CHECK_MSG(lines > 0, "nm -D %s printed nothing", lib);
    if (clipnn_dist_available()) CHECK_MSG(mpi > 0, "no MPI symbol in the MPI build's %s", lib);
    else CHECK_MSG(mpi == 0, "%d MPI symbols in %s", mpi, lib);
}
