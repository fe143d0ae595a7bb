#include "tc_mpi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

// Open MPI's ABI: handles are pointers, MPI_IN_PLACE is (void *)1, MPI_THREAD_SERIALIZED is 2.
typedef void *tc_handle;
#define TC_IN_PLACE ((void *)1)
#define TC_THREAD_SERIALIZED 2
#define TC_STATUS_IGNORE ((void *)0)

static struct {
    void *library;
    tc_handle world, type_float, type_double, op_sum;
    int (*init_thread)(int *, char ***, int, int *);
    int (*comm_rank)(tc_handle, int *);
    int (*comm_size)(tc_handle, int *);
    int (*allreduce)(const void *, void *, int, tc_handle, tc_handle, tc_handle);
    int (*iallreduce)(const void *, void *, int, tc_handle, tc_handle, tc_handle, void **);
    int (*wait)(void **, void *);
    int (*test)(void **, int *, void *);
    int (*bcast)(void *, int, tc_handle, int, tc_handle);
    int (*barrier)(tc_handle);
    int (*abort)(tc_handle, int);
    int (*finalize)(void);
    int (*error_string)(int, char *, int *);
} mpi;

// When the current blocking call began (monotonic nanoseconds; 0: none running), for the watchdog.
static _Atomic long long busy_since;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

#define BLOCKING_BEGIN atomic_store(&busy_since, now_ns())
#define BLOCKING_END atomic_store(&busy_since, 0)

static int fail(char *err, size_t size, const char *what, int code) {
    char text[512] = "";
    int length = 0;
    if (code != 0 && mpi.error_string && mpi.error_string(code, text, &length) != 0) text[0] = 0;
    snprintf(err, size, "%s%s%s", what, text[0] ? ": " : "", text);
    return -1;
}

int tc_mpi_start(const char *library, int *rank, int *size, char *err, size_t err_size) {
    if (mpi.library) return fail(err, err_size, "MPI is already started", 0);
    void *h = dlopen(library, RTLD_NOW | RTLD_GLOBAL);  // global: Open MPI's components dlopen back into it
    if (!h) {
        snprintf(err, err_size, "cannot load %s: %s", library, dlerror());
        return -1;
    }
#define LOOKUP(field, name)                                                                                      \
    do {                                                                                                         \
        *(void **)&mpi.field = dlsym(h, name);                                                                   \
        if (!mpi.field) {                                                                                        \
            snprintf(err, err_size, "%s has no %s (not Open MPI?)", library, name);                              \
            dlclose(h);                                                                                          \
            memset(&mpi, 0, sizeof mpi);                                                                         \
            return -1;                                                                                           \
        }                                                                                                        \
    } while (0)
    LOOKUP(world, "ompi_mpi_comm_world");
    LOOKUP(type_float, "ompi_mpi_float");
    LOOKUP(type_double, "ompi_mpi_double");
    LOOKUP(op_sum, "ompi_mpi_op_sum");
    LOOKUP(init_thread, "MPI_Init_thread");
    LOOKUP(comm_rank, "MPI_Comm_rank");
    LOOKUP(comm_size, "MPI_Comm_size");
    LOOKUP(allreduce, "MPI_Allreduce");
    LOOKUP(iallreduce, "MPI_Iallreduce");
    LOOKUP(wait, "MPI_Wait");
    LOOKUP(test, "MPI_Test");
    LOOKUP(bcast, "MPI_Bcast");
    LOOKUP(barrier, "MPI_Barrier");
    LOOKUP(abort, "MPI_Abort");
    LOOKUP(finalize, "MPI_Finalize");
    LOOKUP(error_string, "MPI_Error_string");
#undef LOOKUP
    mpi.library = h;
    int provided = 0, rc = mpi.init_thread(NULL, NULL, TC_THREAD_SERIALIZED, &provided);
    if (rc != 0) return fail(err, err_size, "MPI_Init_thread failed", rc);
    if ((rc = mpi.comm_rank(mpi.world, rank)) != 0 || (rc = mpi.comm_size(mpi.world, size)) != 0)
        return fail(err, err_size, "cannot read the rank and size", rc);
    return 0;
}

static int ready(char *err, size_t err_size) {
    if (mpi.library) return 0;
    snprintf(err, err_size, "MPI is not started");
    return -1;
}

// MPI counts are ints: larger buffers go in pieces of 2^30 values.
#define PIECE ((size_t)1 << 30)

// An in-place sum of `count` values of `size` bytes, in pieces.
static int sum_pieces(char *data, size_t count, size_t size, tc_handle type, char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    for (size_t done = 0; done < count; done += PIECE) {
        size_t n = count - done < PIECE ? count - done : PIECE;
        BLOCKING_BEGIN;
        int rc = mpi.allreduce(TC_IN_PLACE, data + done * size, (int)n, type, mpi.op_sum, mpi.world);
        BLOCKING_END;
        if (rc != 0) return fail(err, err_size, "MPI_Allreduce failed", rc);
    }
    return 0;
}

int tc_mpi_sum_floats(float *data, size_t count, char *err, size_t err_size) {
    return sum_pieces((char *)data, count, sizeof *data, mpi.type_float, err, err_size);
}

int tc_mpi_sum_doubles(double *data, size_t count, char *err, size_t err_size) {
    return sum_pieces((char *)data, count, sizeof *data, mpi.type_double, err, err_size);
}

int tc_mpi_start_sum_floats(float *data, size_t count, void **request, char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    if (count > INT_MAX) {
        snprintf(err, err_size, "a bucket of %zu values is over MPI's int count", count);
        return -1;
    }
    int rc = mpi.iallreduce(TC_IN_PLACE, data, (int)count, mpi.type_float, mpi.op_sum, mpi.world, request);
    return rc != 0 ? fail(err, err_size, "MPI_Iallreduce failed", rc) : 0;
}

int tc_mpi_wait(void **request, char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    BLOCKING_BEGIN;
    int rc = mpi.wait(request, TC_STATUS_IGNORE);
    BLOCKING_END;
    return rc != 0 ? fail(err, err_size, "MPI_Wait failed", rc) : 0;
}

int tc_mpi_test(void **request, int *done, char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    int rc = mpi.test(request, done, TC_STATUS_IGNORE);
    return rc != 0 ? fail(err, err_size, "MPI_Test failed", rc) : 0;
}

int tc_mpi_broadcast_floats(float *data, size_t count, int root, char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    for (size_t done = 0; done < count; done += PIECE) {
        size_t n = count - done < PIECE ? count - done : PIECE;
        BLOCKING_BEGIN;
        int rc = mpi.bcast(data + done, (int)n, mpi.type_float, root, mpi.world);
        BLOCKING_END;
        if (rc != 0) return fail(err, err_size, "MPI_Bcast failed", rc);
    }
    return 0;
}

int tc_mpi_barrier(char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    BLOCKING_BEGIN;
    int rc = mpi.barrier(mpi.world);
    BLOCKING_END;
    return rc != 0 ? fail(err, err_size, "MPI_Barrier failed", rc) : 0;
}

void tc_mpi_abort(int code) {
    if (mpi.library) mpi.abort(mpi.world, code);
}

int tc_mpi_finish(char *err, size_t err_size) {
    if (ready(err, err_size)) return -1;
    int rc = mpi.finalize();
    return rc != 0 ? fail(err, err_size, "MPI_Finalize failed", rc) : 0;
}

static char termination_message[1024];

static void tc_mpi_terminated(int sig) {
    (void)sig;
    size_t n = strlen(termination_message);
    if (write(2, termination_message, n) < 0 || write(2, "\n", 1) < 0) {
    }
    _exit(143);
}

void tc_mpi_on_termination(const char *message) {
    snprintf(termination_message, sizeof termination_message, "%s", message);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = tc_mpi_terminated;
    sigaction(SIGTERM, &action, NULL);
}

static char watch_message[1024];
static long long watch_limit_ns;

static void *tc_mpi_watchdog(void *unused) {
    (void)unused;
    for (;;) {
        struct timespec pause = {0, 200000000};
        nanosleep(&pause, NULL);
        long long since = atomic_load(&busy_since);
        if (since != 0 && now_ns() - since > watch_limit_ns) {
            char line[1200];
            int n = snprintf(line, sizeof line, "%s (no answer for %.0f s)\n", watch_message,
                             (double)watch_limit_ns / 1e9);
            if (n > 0 && write(2, line, (size_t)n) < 0) {
            }
            _exit(124);
        }
    }
    return NULL;
}

int tc_mpi_watch(double seconds, const char *message, char *err, size_t err_size) {
    if (!(seconds > 0)) {
        snprintf(err, err_size, "the wait bound must be positive");
        return -1;
    }
    snprintf(watch_message, sizeof watch_message, "%s", message);
    watch_limit_ns = (long long)(seconds * 1e9);
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attributes, tc_mpi_watchdog, NULL);
    pthread_attr_destroy(&attributes);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the watchdog thread");
        return -1;
    }
    return 0;
}
