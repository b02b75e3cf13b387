/* launch.c — the launcher seam's implementations: a worker starts as a thread, or as a process by fork, spawn, the fork server or a custom launcher. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fdset.h"
#include "base/procfs.h"
#include "base/sync.h"
#include "launch/forkserver.h"
#include "launch/launch.h"
#include "worker/worker.h"

#define WORKER_ENV "CREW_WORKER"

static _Atomic int default_start = CREW_START_FORKSERVER;
static _Atomic bool main_called;   /* crew_main() ran: re-executing us is safe */
_Atomic int crew__internal_threads; /* threads crew itself runs in this process */

int crew_set_start_method(crew_start_method m)
{
    if (m != CREW_START_FORK && m != CREW_START_SPAWN && m != CREW_START_FORKSERVER)
        return -EINVAL;
    atomic_store(&default_start, (int)m);
    return 0;
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

void crew__warn_fork_with_threads(void)
{
    int others = crew__other_threads();
    if (others > 0)
        fprintf(stderr,
                "crew: warning: the fork start method is used while this process runs %d other "
                "thread%s. A forked worker gets a copy of every lock those threads held at that "
                "moment (malloc, stdio, your own) with no thread left to release it, and can "
                "deadlock. Create the pool before starting threads, or use CREW_START_FORKSERVER "
                "or CREW_START_SPAWN.\n", others, others == 1 ? "" : "s");
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
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0); /* our child: leave no zombie */
        return e;
    }
    crew__fd_own(pidfd);
    out->pid = pid;
    out->pidfd = pidfd;
    atomic_store(&r->reg.shm->slots[r->slot].pid, pid);
    return 0;
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
        int rc = crew__forkserver_start(); /* no-op when it runs already */
        pid_t pid = rc < 0 ? rc : crew__forkserver_fork(r->shm_fd, r->slot);
        if (pid == -ENOTCONN || pid == -EPIPE) { /* it died: start another once */
            rc = crew__forkserver_start();
            pid = rc < 0 ? rc : crew__forkserver_fork(r->shm_fd, r->slot);
        }
        return pid < 0 ? pid : watch_process(r, pid, out);
    }
    pid_t parent = getpid();
    char env[64];
    snprintf(env, sizeof env, WORKER_ENV "=%d:%d", r->shm_fd, r->slot);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        child_setup(parent);
        char name[16];
        snprintf(name, sizeof name, "crew:worker%d", r->slot);
        crew__name_thread(name); /* what ps and top show (not its parent thread's name) */
        if (r->start == CREW_START_SPAWN) {
            fcntl(r->shm_fd, F_SETFD, 0); /* the shared region crosses exec */
            putenv(env);
            if (r->spawn_argv)
                execvp(r->spawn_argv[0], r->spawn_argv);
            else {
                char *argv[] = {(char *)"crew-worker", NULL};
                execv("/proc/self/exe", argv);
            }
            _exit(127);
        }
        crew__fd_close_others(-1); /* every pool's memfd, eventfd, pidfds, ...: it has its mapping */
        crew__forkserver_forget(); /* the owner's fork server is not its own */
        crew__worker_loop(&r->reg, (uint32_t)r->slot);
        _exit(0);
    }
    return watch_process(r, pid, out);
}

int crew__launch_worker(const crew__launch_req *r, crew__launched *out)
{
    *out = (crew__launched){.pidfd = -1};
    return r->kind == CREW_THREADS ? launch_thread(r, out) : launch_process(r, out);
}

/* ---------------------------------------------------------------- spawn -- */

int crew_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    atomic_store(&main_called, true);
    crew__forkserver_maybe_serve(); /* never returns in the fork server */
    const char *env = getenv(WORKER_ENV);
    if (!env) {
        /* start the fork server now, while the program has one thread */
        if (crew_get_start_method() == CREW_START_FORKSERVER)
            return crew__forkserver_start();
        return 0;
    }
    int fd = -1, slot = -1;
    if (sscanf(env, "%d:%d", &fd, &slot) != 2 || fd < 0 || slot < 0) {
        fprintf(stderr, "crew: bad %s=%s\n", WORKER_ENV, env);
        _exit(2);
    }
    unsetenv(WORKER_ENV);
    int rc = crew_worker_run(fd, slot);
    if (rc < 0)
        fprintf(stderr, "crew: spawned worker cannot map its pool: %s\n", crew_strerror(rc));
    _exit(rc < 0 ? 2 : 0);
}
