/* A relay along the processes in rank order: process r waits for process
 * r - 1's bytes and passes its own to r + 1, so that a computation that
 * must see the rows in order (a clipper with a history over every row)
 * runs over the parts one after the other, each on its own rows. The MPI
 * calls only with CLIPNN_MPI. */
#include "dist/dist.h"

#ifdef CLIPNN_MPI
#include <mpi.h>
#endif

#define RELAY_TAG 17

/* A flag (1: the sender or a process before it failed), then the bytes
 * (sent whatever the flag, so that the messages always match). */
int clipnn_dist_relay_receive(void *buf, size_t len) {
    int failed = -1;
#ifdef CLIPNN_MPI
    if (!clipnn_dist_active() || clipnn_dist_rank() == 0) return -1;
    MPI_Recv(&failed, 1, MPI_INT, clipnn_dist_rank() - 1, RELAY_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (len) MPI_Recv(buf, (int)len, MPI_BYTE, clipnn_dist_rank() - 1, RELAY_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
#else
    (void)buf, (void)len;
#endif
    return failed;
}

void clipnn_dist_relay_send(const void *buf, size_t len, int failed) {
#ifdef CLIPNN_MPI
    if (!clipnn_dist_active() || clipnn_dist_rank() == clipnn_dist_size() - 1) return;
    MPI_Send(&failed, 1, MPI_INT, clipnn_dist_rank() + 1, RELAY_TAG, MPI_COMM_WORLD);
    if (len) MPI_Send(buf, (int)len, MPI_BYTE, clipnn_dist_rank() + 1, RELAY_TAG, MPI_COMM_WORLD);
#else
    (void)buf, (void)len, (void)failed;
#endif
}
