/* launch.h — the launcher seam: how the worker of one slot starts (a thread; a process by fork, spawn, the fork server or the embedder's own launcher). */
#ifndef CREW_LAUNCH_H
#define CREW_LAUNCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "crew.h"
#include "transport/shm.h"

/*
 * A launcher starts the worker of slot `slot` over a pool's region and says
 * how to watch it; it knows nothing of crew_pool. The pool (pool/start.c)
 * prepares the slot, calls crew__launch_worker and keeps what comes back.
 * Every start method is one case of the one function below, in this layer:
 *
 *   thread      a thread of this process runs crew__worker_loop (on_exit
 *               runs as it leaves: the pool drops the reference it took)
 *   fork        a child forked from the calling thread runs the loop
 *   spawn       a child execs spawn_argv (or this program) with CREW_WORKER
 *               naming the region's fd and the slot (CREW_PRELUDE the
 *               prelude's); crew_main() there runs the loop
 *   forkserver  a fork server (a clean exec of spawn_argv, or of this
 *               program, started once per program and prelude) forks the
 *               child; it is re-parented to us
 *   custom      the embedder's crew_launch_fn
 * An interpreter's bindings (Python's crew._core) configure these with the
 * process's crew_worker_hooks (their steps around a fork, a worker's life)
 * and the pool's spawn_argv and prelude_fd (their interpreter, bootstrap
 * and start-up state); they start no worker themselves.
 */
typedef struct crew__launch_req {
    crew__region reg;            /* the region, as mapped and laid out here */
    int shm_fd;                  /* its memfd (processes inherit or get it) */
    int slot;
    crew_kind kind;
    crew_start_method start;     /* processes: never CREW_START_DEFAULT   */
    char *const *spawn_argv;     /* spawn, forkserver: program + args;
                                    NULL: this one                       */
    int prelude_fd;              /* spawn, forkserver: crosses exec; -1   */
    crew_launch_fn launch;       /* processes: a custom launcher, or NULL */
    void *launch_udata;
    void (*on_exit)(void *arg);  /* threads: runs as the worker leaves    */
    void *on_exit_arg;
} crew__launch_req;

/* What a launcher started: a process (pid and a pidfd to watch it by, never
 * a recycled pid) or a thread (to join when it has left). */
typedef struct crew__launched {
    pid_t pid;                   /* processes; 0 for a thread             */
    int pidfd;                   /* processes; -1 for a thread            */
    pthread_t thread;
    bool has_thread;
} crew__launched;

/* Starts slot r->slot's worker. Returns 0 and fills *out, or a negative
 * errno: -EAGAIN/-ENOMEM (no thread, process or memory), -ECHILD (a custom
 * launcher returned no pid), -ENOTCONN (no fork server could be started),
 * or what exec-side setup reported. On failure nothing is left running and
 * on_exit is not called. */
int crew__launch_worker(const crew__launch_req *r, crew__launched *out);

/* Makes this process what crew's variables say: the fork server
 * (server_env: $CREW_FORKSERVER's value) or a spawned worker (worker_env:
 * $CREW_WORKER's). Never returns, unless neither parses: -EINVAL. crew_main()
 * calls it; so does a binding's bootstrap, once its prelude is applied. */
int crew__become(const char *server_env, const char *worker_env);

/* Whether crew_main() ran, so that exec'ing this program again is safe. */
bool crew__can_reexec(void);
/* Threads of this process besides the caller and crew's own: what a fork
 * would copy the locks of. crew's threads are told by their names ("crew:",
 * crew__name_thread), which stay while one exits; 0 when unknown. */
int crew__other_threads(void);
/* Names the calling thread (at most 15 characters), so that crew's own
 * threads are known as such in /proc and in a debugger. */
void crew__name_thread(const char *name);
/* The fork-with-threads warning, when threads other than crew's own run:
 * fills buf and returns their number, else returns 0. */
int crew__fork_warning(char *buf, size_t len);
/* Prints it (stderr) unless worker hooks are set: a binding that sets them
 * warns in its own language with crew__fork_warning's text. */
void crew__warn_fork_with_threads(void);
/* The process's worker hooks (crew_set_worker_hooks); all NULL when unset. */
const crew_worker_hooks *crew__worker_hooks(void);
/* Runs slot's worker in this new process (a forked or spawned worker) the
 * way the hooks say, else with crew_worker_run; returns the exit status. */
int crew__worker_main(int shm_fd, int slot);
/* Copies environ less crew's own variables, plus up to two "NAME=value"
 * strings (NULL: none): the environment of a program crew execs. The
 * array and its new strings are one allocation (free it); NULL: no memory. */
char **crew__exec_env(const char *add1, const char *add2);
/* In a freshly forked child: execs argv (NULL: this program again, named
 * name) with env, fd1 and fd2 (-1: none) crossing the exec; exits 127 when
 * the exec fails. Never returns; async-signal-safe. */
_Noreturn void crew__exec_program(char *const *argv, const char *name, char **env, int fd1,
                                  int fd2);
/* Threads crew runs itself (collectors, supervisors, thread workers). */
extern _Atomic int crew__internal_threads;

#endif
