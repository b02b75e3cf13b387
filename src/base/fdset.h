/* fdset.h — the descriptors crew's pools hold in this process, so that a worker forked from it can close the ones that are not its own. */
#ifndef CREW_FDSET_H
#define CREW_FDSET_H

/*
 * A forked worker inherits every descriptor of its parent. Those of other
 * pools (their memfds, eventfds, the pidfds of their workers, fork-server
 * sockets) keep those pools' memory and workers reachable from a process
 * that has no business with them, and hold them open past the pools' own
 * close. Each is recorded here while it is open; a fresh fork worker closes
 * them all but its own. The record is a bitmap of atomics: it can be read
 * in a child forked from a threaded parent (no lock, no allocation).
 * Descriptors at or above CREW__FDSET_MAX are not recorded (and so stay
 * open in forked workers).
 */
#define CREW__FDSET_MAX 65536

/* Records fd as crew's (a no-op for fd < 0 or past the bitmap). */
void crew__fd_own(int fd);

/* Forgets fd: call it before closing fd, so no fork in between closes a
 * descriptor that a later open reused. */
void crew__fd_disown(int fd);

/* Forgets fd, then closes it. */
void crew__fd_close(int fd);

/* In a freshly forked worker: closes every recorded descriptor but keep
 * (-1: none), and forgets them. Async-signal-safe. */
void crew__fd_close_others(int keep);

#endif
