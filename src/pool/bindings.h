/* bindings.h — the little of crew's internals that language bindings (python/crew/_core.c) may use beyond crew.h. */
#ifndef CREW_BINDINGS_H
#define CREW_BINDINGS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "crew.h"

/* Whether the calling thread is one of pool p's own threads (its collector,
 * its supervisor or one of its thread workers): such a thread must not wait
 * for p to close. Takes p's lock: call it holding none of crew's locks. */
bool crew__pool_on_own_thread(crew_pool *p);

/* Whether the calling thread is one of pool p's thread workers, i.e. a
 * task of p runs on it. Takes p's lock, as above. */
bool crew__pool_on_worker_thread(crew_pool *p);

/* Threads crew runs itself in this process (collectors, supervisors, thread
 * workers, the fork server's keeper), to tell the program's own apart. */
extern _Atomic int crew__internal_threads;

/* Threads of this process besides the caller and crew's own: the one
 * counter behind both fork-with-threads warnings (launch/launch.c). */
int crew__other_threads(void);
/* Names the calling thread "crew:..." (see launch/launch.h). */
void crew__name_thread(const char *name);

/* fork() whose child is a sibling of the caller, reaped by the caller's
 * parent (launch/forkserver.h says how; fork servers only). */
pid_t crew__fork_parented(void);

#endif
