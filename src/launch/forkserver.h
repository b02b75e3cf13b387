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

/*
 * fork() with CLONE_PARENT: the child is a sibling of the caller, a child of
 * the caller's parent (the pool owner, who can then reap it by pidfd). A raw
 * clone skips glibc's fork bookkeeping, so the child then repairs the two
 * pieces that matter to locks: its cached thread id (pthread mutexes record
 * owners by it) and its robust-futex list (how the kernel marks a dead
 * owner's robust mutexes EOWNERDEAD). Call it from a single-threaded process
 * (the fork servers are). Returns like fork().
 */
pid_t crew__fork_parented(void);

/* In a worker forked from the owner (its descriptors already closed, see
 * base/fdset.h): forgets the owner's fork server, so that a pool made in a
 * task starts a server of its own rather than write to a reused descriptor
 * number. Lock-free: the child of a threaded parent may find fs_mu held. */
void crew__forkserver_forget(void);

/* In a process started as the fork server: serves and never returns.
 * Elsewhere returns at once. */
void crew__forkserver_maybe_serve(void);

#endif
