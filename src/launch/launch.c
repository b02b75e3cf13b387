/* launch.c — the launcher seam's implementations: a worker starts as a thread, or as a process by fork, spawn, the fork server or a custom launcher. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fdset.h"
#include "base/lockorder.h"
#include "base/procfs.h"
#include "base/sync.h"
#include "launch/forkserver.h"
#include "launch/launch.h"
#include "worker/worker.h"

#define WORKER_ENV "CREW_WORKER"

extern char **environ;

#define PRELUDE_ENV "CREW_PRELUDE"

static _Atomic int default_start = CREW_START_FORKSERVER;
static crew_worker_hooks hooks;    /* crew_set_worker_hooks: set before any pool */
static bool hooks_set;
static _Atomic bool main_called;   /* crew_main() ran: re-executing us is safe */
_Atomic int crew__internal_threads; /* threads crew itself runs in this process */

int crew_set_start_method(crew_start_method m)
{
    if (m != CREW_START_FORK && m != CREW_START_SPAWN && m != CREW_START_FORKSERVER)
        return -EINVAL;
    atomic_store(&default_start, (int)m);
    return 0;
}

void crew_set_worker_hooks(const crew_worker_hooks *h)
{
    hooks = h ? *h : (crew_worker_hooks){0};
    hooks_set = h != NULL;
    crew__worker_set_idle(hooks.idle);
}

const crew_worker_hooks *crew__worker_hooks(void)
{
    return &hooks;
}

int crew__worker_main(int shm_fd, int slot)
{
    if (hooks.run)
        return hooks.run(shm_fd, slot);
    int rc = crew_worker_run(shm_fd, slot);
    if (rc < 0)
        fprintf(stderr, "crew: worker cannot map its pool: %s\n", crew_strerror(rc));
    return rc < 0 ? 2 : 0;
}

/* Closes descriptors lo..hi (hi: at most INT_MAX); async-signal-safe. */
static void close_span(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
#endif
    /* a kernel before 5.9: one by one, up to the descriptor limit (getrlimit,
     * a bare system call: sysconf is not async-signal-safe) */
    struct rlimit rl;
    unsigned max = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < max)
        max = (unsigned)rl.rlim_cur;
    for (unsigned fd = lo; fd <= hi && fd < max; fd++)
        close((int)fd);
}

void crew__exec_program(char *const *argv, const char *name, char **env, int fd1, int fd2)
{
    /* only stdio, fd1 and fd2 cross: a descriptor the program left
     * inheritable (a pipe end, a socket) would otherwise stay open in a
     * fork server or a worker for its whole life, and its reader would
     * never see EOF (multiprocessing's spawn and fork server close them too) */
    int keep[2] = {fd1 < fd2 ? fd1 : fd2, fd1 < fd2 ? fd2 : fd1};
    unsigned lo = 3;
    for (int k = 0; k < 2; k++)
        if (keep[k] >= (int)lo) {
            close_span(lo, (unsigned)keep[k] - 1);
            lo = (unsigned)keep[k] + 1;
        }
    close_span(lo, ~0U >> 1);
    if (fd1 >= 0)
        fcntl(fd1, F_SETFD, 0);
    if (fd2 >= 0)
        fcntl(fd2, F_SETFD, 0);
    if (argv)
        execvpe(argv[0], argv, env);
    else {
        char *self[] = {(char *)name, NULL};
        execve("/proc/self/exe", self, env);
    }
    _exit(127);
}

char **crew__exec_env(const char *add1, const char *add2)
{
    size_t n = 0, bytes = 0;
    for (char **e = environ; *e; e++)
        n++;
    const char *add[2] = {add1, add2};
    for (int k = 0; k < 2; k++)
        if (add[k])
            bytes += strlen(add[k]) + 1;
    char **env = malloc((n + 3) * sizeof *env + bytes);
    if (!env)
        return NULL;
    char *room = (char *)(env + n + 3);
    size_t m = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, WORKER_ENV "=", sizeof WORKER_ENV) != 0 &&
            strncmp(*e, PRELUDE_ENV "=", sizeof PRELUDE_ENV) != 0 &&
            strncmp(*e, "CREW_FORKSERVER=", 16) != 0)
            env[m++] = *e;
    for (int k = 0; k < 2; k++)
        if (add[k]) {
            strcpy(room, add[k]);
            env[m++] = room;
            room += strlen(add[k]) + 1;
        }
    env[m] = NULL;
    return env;
}

bool crew__can_reexec(void)
{
    return atomic_load(&main_called);
}

/* Threads of this process, from /proc/self/status; 0 when unknown. */
static int thread_count(void)
{
    char buf[2048];
    const char *t;
    int n = 0;
    if (crew__read_small("/proc/self/status", buf, sizeof buf) > 0 &&
        (t = strstr(buf, "\nThreads:")) != NULL)
        sscanf(t + 1, "Threads: %d", &n);
    return n;
}

void crew__name_thread(const char *name)
{
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

int crew__other_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) { /* no /proc/self/task: count them, less crew's own */
        int n = thread_count() - 1 - atomic_load(&crew__internal_threads);
        return n > 0 ? n : 0;
    }
    pid_t me = (pid_t)syscall(SYS_gettid);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == me)
            continue;
        char path[64], comm[32];
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", atoi(e->d_name));
        if (crew__read_small(path, comm, sizeof comm) > 0 && strncmp(comm, "crew:", 5) != 0)
            n++; /* (a thread gone meanwhile reads nothing) */
    }
    closedir(d);
    return n;
}

int crew__fork_warning(char *buf, size_t len)
{
    int others = crew__other_threads();
    if (others > 0)
        snprintf(buf, len,
                 "the fork start method is used while this process runs %d other "
                 "thread%s. A forked worker gets a copy of every lock those threads held at that "
                 "moment (malloc, stdio, your own) with no thread left to release it, and can "
                 "deadlock. Create the pool before starting threads, or use the forkserver or "
                 "spawn start method.", others, others == 1 ? "" : "s");
    return others > 0 ? others : 0;
}

void crew__warn_fork_with_threads(void)
{
    char msg[512];
    if (!hooks_set && crew__fork_warning(msg, sizeof msg))
        fprintf(stderr, "crew: warning: %s (CREW_START_FORKSERVER, CREW_START_SPAWN)\n", msg);
}

crew_start_method crew_get_start_method(void)
{
    return (crew_start_method)atomic_load(&default_start);
}

const char *crew_start_method_name(crew_start_method m)
{
    switch (m) {
    case CREW_START_FORK: return "fork";
    case CREW_START_SPAWN: return "spawn";
    case CREW_START_FORKSERVER: return "forkserver";
    default: return NULL;
    }
}

/* --------------------------------------------------------------- threads -- */

typedef struct thread_arg {
    crew__region reg;
    int slot;
    void (*on_exit)(void *);
    void *on_exit_arg;
} thread_arg;

static void *thread_main(void *arg)
{
    crew__name_thread("crew:worker");
    thread_arg ta = *(thread_arg *)arg;
    free(arg);
    atomic_fetch_add(&crew__internal_threads, 1);
    atomic_store(&ta.reg.shm->slots[ta.slot].pid, (int32_t)syscall(SYS_gettid));
    crew__worker_loop(&ta.reg, (uint32_t)ta.slot);
    atomic_fetch_sub(&crew__internal_threads, 1);
    if (ta.on_exit)
        ta.on_exit(ta.on_exit_arg);
    return NULL;
}

static int launch_thread(const crew__launch_req *r, crew__launched *out)
{
    thread_arg *ta = malloc(sizeof *ta);
    if (!ta)
        return -ENOMEM;
    *ta = (thread_arg){r->reg, r->slot, r->on_exit, r->on_exit_arg};
    int rc = pthread_create(&out->thread, NULL, thread_main, ta);
    if (rc) {
        free(ta);
        return -rc;
    }
    out->has_thread = true;
    return 0;
}

/* -------------------------------------------------------------- processes -- */

/* First steps of every worker process: die with the parent, default signals. */
static void child_setup(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl took effect */
        _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Opens a pidfd for pid, slot's new worker, and publishes its pid in the
 * slot; on failure kills and reaps it. */
static int watch_process(const crew__launch_req *r, pid_t pid, crew__launched *out)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int e = -errno;
        if (e != -ESRCH) { /* (ESRCH: gone and reaped already, by a SIGCHLD set
                            * to SIG_IGN or a waitpid(-1): its pid may be another's now) */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0); /* our child: leave no zombie */
        }
        return e;
    }
    crew__fd_own(pidfd);
    out->pid = pid;
    out->pidfd = pidfd;
    atomic_store(&r->reg.shm->slots[r->slot].pid, pid);
    return 0;
}

/* fork: the child runs the worker loop (or the hooks' run) in a copy of
 * this process; the hooks' fork steps (an interpreter's) go around it. */
static int launch_fork(const crew__launch_req *r, crew__launched *out)
{
    pid_t parent = getpid();
    crew__lock_none_held("a fork launch's hooks");
    int rc = hooks.before_fork ? hooks.before_fork() : 0;
    if (rc < 0)
        return rc;
    pid_t pid = fork();
    int e = errno;
    if (pid == 0) {
        child_setup(parent);
        if (hooks.after_fork_child)
            hooks.after_fork_child();
        char name[16];
        snprintf(name, sizeof name, "crew:worker%d", r->slot);
        crew__name_thread(name); /* what ps and top show (not its parent thread's name) */
        /* every pool's memfd, eventfd, pidfds, prelude and fork-server
         * sockets are this process's parent's, not the worker's; the run
         * hook maps the region from its fd (and closes it), the loop below
         * has the mapping already */
        crew__fd_close_others(hooks.run ? r->shm_fd : -1);
        if (hooks.run)
            _exit(hooks.run(r->shm_fd, r->slot));
        crew__worker_loop(&r->reg, (uint32_t)r->slot);
        _exit(0);
    }
    if (hooks.after_fork_parent)
        hooks.after_fork_parent();
    return pid < 0 ? -e : watch_process(r, pid, out);
}

/* spawn: the child execs spawn_argv (or this program) with the region's fd
 * and the prelude's crossing the exec, their numbers in the environment
 * (built here: nothing but async-signal-safe calls run in the child). */
static int launch_spawn(const crew__launch_req *r, crew__launched *out)
{
    char wenv[64], penv[48];
    snprintf(wenv, sizeof wenv, WORKER_ENV "=%d:%d", r->shm_fd, r->slot);
    snprintf(penv, sizeof penv, PRELUDE_ENV "=%d", r->prelude_fd);
    char **env = crew__exec_env(wenv, r->prelude_fd >= 0 ? penv : NULL);
    if (!env)
        return -ENOMEM;
    pid_t parent = getpid();
    pid_t pid = fork();
    int e = errno;
    if (pid == 0) {
        child_setup(parent);
        /* the shared region and the prelude cross the exec */
        crew__exec_program(r->spawn_argv, "crew-worker", env, r->shm_fd, r->prelude_fd);
    }
    free(env);
    return pid < 0 ? -e : watch_process(r, pid, out);
}

static int launch_process(const crew__launch_req *r, crew__launched *out)
{
    if (r->launch) {
        pid_t pid = r->launch(r->shm_fd, r->slot, r->launch_udata);
        if (pid <= 0)
            return pid < 0 ? pid : -ECHILD;
        return watch_process(r, pid, out);
    }
    if (r->start == CREW_START_FORKSERVER) {
        pid_t pid = crew__forkserver_fork(r->spawn_argv, r->prelude_fd, r->shm_fd, r->slot);
        return pid < 0 ? pid : watch_process(r, pid, out);
    }
    return r->start == CREW_START_SPAWN ? launch_spawn(r, out) : launch_fork(r, out);
}

int crew__launch_worker(const crew__launch_req *r, crew__launched *out)
{
    *out = (crew__launched){.pidfd = -1};
    return r->kind == CREW_THREADS ? launch_thread(r, out) : launch_process(r, out);
}

/* ---------------------------------------------------------------- spawn -- */

int crew__become(const char *server_env, const char *worker_env)
{
    if (server_env)
        crew__forkserver_serve_env(server_env); /* returns only when it does not parse */
    int fd = -1, slot = -1;
    if (!worker_env || sscanf(worker_env, "%d:%d", &fd, &slot) != 2 || fd < 0 || slot < 0) {
        fprintf(stderr, "crew: bad %s=%s\n", server_env ? "CREW_FORKSERVER" : WORKER_ENV,
                server_env ? server_env : worker_env ? worker_env : "");
        return -EINVAL;
    }
    _exit(crew__worker_main(fd, slot));
}

/* Takes variable name out of the environment: its value (malloc'd) or NULL. */
static char *take_env(const char *name)
{
    const char *v = getenv(name);
    char *copy = v ? strdup(v) : NULL;
    if (v)
        unsetenv(name);
    return copy;
}

int crew_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    atomic_store(&main_called, true);
    char *server = take_env("CREW_FORKSERVER"), *worker = take_env(WORKER_ENV);
    if (server || worker) /* a fork server or a spawned worker: never returns */
        _exit(crew__become(server, worker) < 0 ? 2 : 0);
    /* start the fork server now, while the program has one thread */
    if (crew_get_start_method() == CREW_START_FORKSERVER)
        return crew__forkserver_start(NULL, -1);
    return 0;
}
