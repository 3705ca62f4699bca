/* The all-reduce clipnn's MPI build uses (MPI_SUM of floats, in place) timed
 * for message sizes from 4 bytes to 16 MB: one line per size, "bytes
 * seconds_per_allreduce", from process 0. Run under mpirun. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static double time_allreduce(float *v, int n, int reps) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int r = 0; r < reps; r++) MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t = (MPI_Wtime() - t0) / reps, worst = 0;
    /* the slowest process's time: the step waits for it */
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int max_n = 4 << 20;
    float *v = calloc((size_t)max_n, sizeof *v);
    if (!v) MPI_Abort(MPI_COMM_WORLD, 5);
    if (rank == 0) printf("# %d processes\n# bytes seconds_per_allreduce\n", size);
    for (int n = 1; n <= max_n; n *= 4) {
        int reps = n <= 4096 ? 2000 : n <= 262144 ? 200 : 20;
        time_allreduce(v, n, reps / 10 + 1); /* warm-up */
        double t = time_allreduce(v, n, reps);
        if (rank == 0) printf("%d %.3e\n", n * 4, t);
    }
    free(v);
    MPI_Finalize();
    return 0;
}
