/* forkserver.h — the fork servers: the owner's calls, and the entry point of a process started as one. */
#ifndef CREW_FORKSERVER_H
#define CREW_FORKSERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "crew.h"

/* Starts the fork server of program argv (NULL: this program) and prelude
 * prelude_fd (-1: none) unless it runs. Returns 0 or a negative errno:
 * -ENOTCONN when it exited before it served (its error is on stderr),
 * -ETIMEDOUT when it did not serve within 60 s. Thread-safe. */
int crew__forkserver_start(char *const *argv, int prelude_fd);

/* Asks that fork server (started, or started again after it died, as
 * needed) for a worker on slot of the pool whose memfd is shm_fd; returns
 * the new worker's pid (a child of this process) or a negative errno:
 * -ETIMEDOUT when the server took the request but did not answer within
 * crew__forkserver_reply_ms (stopped, or hung in a fork handler of the
 * program it imported): it is killed, and the next request starts another.
 * Thread-safe. */
pid_t crew__forkserver_fork(char *const *argv, int prelude_fd, int shm_fd, int slot);

/* How long a running fork server may take to answer a fork request, in ms
 * (30 s; the tests shorten it). Every fork-server launch of the process
 * waits behind one that waits here. */
extern int crew__forkserver_reply_ms;

/* The pids of this process's running fork servers (at most max of them in
 * out); returns how many there are. */
int crew__forkserver_pids(pid_t *out, int max);

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

/* In a process started as a fork server ($CREW_FORKSERVER's value: its
 * socket): serves and never returns; returns when the value does not parse. */
void crew__forkserver_serve_env(const char *value);

#endif
