/* bindings.h — the little of crew's internals that language bindings (python/crew/_core.c) may use beyond crew.h. */
#ifndef CREW_BINDINGS_H
#define CREW_BINDINGS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
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
 * counter behind the fork-with-threads warning (launch/launch.c). */
int crew__other_threads(void);
/* The fork-with-threads warning's text, when such threads run (returns
 * their number; 0: none, buf untouched). A binding with worker hooks says
 * it in its own language: libcrew then prints nothing. */
int crew__fork_warning(char *buf, size_t len);
/* Names the calling thread "crew:..." (see launch/launch.h). */
void crew__name_thread(const char *name);

/* A binding's bootstrap, once its prelude is applied: becomes the fork
 * server or the spawned worker that $CREW_FORKSERVER / $CREW_WORKER (the
 * values given) say; never returns, or -EINVAL (launch/launch.h). */
int crew__become(const char *server_env, const char *worker_env);
/* The pids of this process's running fork servers (launch/forkserver.h). */
int crew__forkserver_pids(pid_t *out, int max);

#endif
