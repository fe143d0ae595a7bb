#ifndef TC_MPI_H
#define TC_MPI_H

#include <stddef.h>

/// Open MPI, loaded with dlopen only when a launcher started the process, so the `tessera` binary runs (and
/// links) without it. The predefined handles are Open MPI's exported objects (MPI_COMM_WORLD is
/// `&ompi_mpi_comm_world`, MPI_FLOAT `&ompi_mpi_float`, ...), fetched with dlsym; no mpi.h is needed to build.
/// Every call returns 0 on success, else fills `err` and returns -1. Calls come from one thread at a time
/// (MPI_THREAD_SERIALIZED).

/// Loads `library` (e.g. "libmpi.so.40") and initialises MPI; rank and size out.
int tc_mpi_start(const char *library, int *rank, int *size, char *err, size_t err_size);
/// Sums `count` floats (or doubles) over the ranks, in place.
int tc_mpi_sum_floats(float *data, size_t count, char *err, size_t err_size);
int tc_mpi_sum_doubles(double *data, size_t count, char *err, size_t err_size);
/// Starts an in-place float sum and returns its request (at most 2^31 - 1 values); tc_mpi_wait completes it.
int tc_mpi_start_sum_floats(float *data, size_t count, void **request, char *err, size_t err_size);
int tc_mpi_wait(void **request, char *err, size_t err_size);
/// Lets a started operation progress (Open MPI moves non-blocking collectives on only inside MPI calls); `done`
/// tells whether it completed (the request is then freed).
int tc_mpi_test(void **request, int *done, char *err, size_t err_size);
/// Rank `root`'s floats to every rank.
int tc_mpi_broadcast_floats(float *data, size_t count, int root, char *err, size_t err_size);
int tc_mpi_barrier(char *err, size_t err_size);
/// Ends every rank of the job with `code` (after a fault).
void tc_mpi_abort(int code);
int tc_mpi_finish(char *err, size_t err_size);
/// Bounds every blocking call: a watchdog thread writes `message` (and the seconds) to standard error and exits
/// the process with 124 when one has waited `seconds` (a rank that died or hangs, under a launcher that does
/// not end the job itself); the launcher then ends the others.
int tc_mpi_watch(double seconds, const char *message, char *err, size_t err_size);
/// On SIGTERM (a launcher ending the job after another rank failed), writes `message` and a newline to standard
/// error and exits with 143 (128 + SIGTERM).
void tc_mpi_on_termination(const char *message);

#endif
