/* forkserver.h — the fork server's owner-side calls and its entry point. */
#ifndef CREW_FORKSERVER_H
#define CREW_FORKSERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "crew.h"

/* Starts the fork server (a fresh exec of this program) unless it runs.
 * Returns 0 or a negative errno. Thread-safe. */
int crew__forkserver_start(void);

/* Whether a fork server is up (as far as the owner knows). */
bool crew__forkserver_running(void);

/* Asks the server for a worker on slot of the pool whose memfd is shm_fd;
 * returns the new worker's pid (a child of this process) or a negative
 * errno (-ENOTCONN when no server runs). Thread-safe. */
pid_t crew__forkserver_fork(int shm_fd, int slot);

/* In a process started as the fork server: serves and never returns.
 * Elsewhere returns at once. */
void crew__forkserver_maybe_serve(void);

#endif
