/* launch.c — the one seam through which a worker starts: a thread, or a process by fork or spawn. */

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

#include "forkserver.h"
#include "pool.h"
#include "sync.h"

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
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

void crew__warn_fork_with_threads(void)
{
    int others = thread_count() - 1 - atomic_load(&crew__internal_threads);
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
    crew_pool *p;
    int i;
} thread_arg;

static void *thread_main(void *arg)
{
    thread_arg ta = *(thread_arg *)arg;
    free(arg);
    atomic_fetch_add(&crew__internal_threads, 1);
    atomic_store(&ta.p->shm->slots[ta.i].pid, (int32_t)syscall(SYS_gettid));
    crew__worker_loop(ta.p->shm, (uint32_t)ta.i);
    atomic_fetch_sub(&crew__internal_threads, 1);
    crew__pool_unref(ta.p);
    return NULL;
}

static int launch_thread(crew_pool *p, int i)
{
    thread_arg *ta = malloc(sizeof *ta);
    if (!ta)
        return -ENOMEM;
    ta->p = p;
    ta->i = i;
    crew__pool_ref(p);
    int rc = pthread_create(&p->w[i].thread, NULL, thread_main, ta);
    if (rc) {
        free(ta);
        crew__pool_unref(p);
        return -rc;
    }
    p->w[i].has_thread = true;
    p->w[i].pid = 0;
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

/* Starts supervising pid as slot i's worker. */
static int watch_process(crew_pool *p, int i, pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int e = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0); /* our child: leave no zombie */
        return e;
    }
    p->w[i].pid = pid;
    p->w[i].pidfd = pidfd;
    atomic_store(&p->shm->slots[i].pid, pid);
    return 0;
}

static int launch_process(crew_pool *p, int i)
{
    if (p->opt.launch) {
        pid_t pid = p->opt.launch(p->shm_fd, i, p->opt.launch_udata);
        if (pid <= 0)
            return pid < 0 ? pid : -ECHILD;
        return watch_process(p, i, pid);
    }
    if (p->start == CREW_START_FORKSERVER) {
        int rc = crew__forkserver_start(); /* no-op when it runs already */
        pid_t pid = rc < 0 ? rc : crew__forkserver_fork(p->shm_fd, i);
        if (pid == -ENOTCONN || pid == -EPIPE) { /* it died: start another once */
            rc = crew__forkserver_start();
            pid = rc < 0 ? rc : crew__forkserver_fork(p->shm_fd, i);
        }
        return pid < 0 ? pid : watch_process(p, i, pid);
    }
    pid_t parent = getpid();
    char env[64];
    snprintf(env, sizeof env, WORKER_ENV "=%d:%d", p->shm_fd, i);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        child_setup(parent);
        if (p->start == CREW_START_SPAWN) {
            fcntl(p->shm_fd, F_SETFD, 0); /* the shared region crosses exec */
            putenv(env);
            if (p->opt.spawn_argv)
                execvp(p->opt.spawn_argv[0], p->opt.spawn_argv);
            else {
                char *argv[] = {(char *)"crew-worker", NULL};
                execv("/proc/self/exe", argv);
            }
            _exit(127);
        }
        crew__worker_loop(p->shm, (uint32_t)i);
        _exit(0);
    }
    return watch_process(p, i, pid);
}

int crew__launch(crew_pool *p, int i)
{
    crew__wslot *ws = &p->w[i];
    crew__slot *sl = &p->shm->slots[i];
    crew__ring *req = crew__slot_req(p->shm, sl), *resp = crew__slot_resp(p->shm, sl);
    /* the slot is nobody's now: start it afresh */
    crew__ring_init(req, CREW__RING_CAP);
    crew__ring_init(resp, CREW__RING_CAP);
    atomic_store(&sl->worker_sleeping, 0);
    atomic_store(&sl->quit, 0);
    atomic_store(&sl->cur_tag, 0);
    ws->given = 0;
    ws->ready = false;
    ws->retiring = ws->killing = ws->broke_protocol = false;
    ws->kill_reason = 0;
    ws->kill_tag = NULL;
    if (p->opt.initializer) {
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->init_req.flags = CREW__MSG_INIT;
        ws->init_req.fn_hash = crew__hash(p->opt.initializer);
        int rc = crew__msg_put(p->shm, &ws->init_req, p->opt.init_arg, p->opt.init_len);
        if (rc < 0)
            return rc;
        crew__ring_push(req, &ws->init_req);
    }
    int rc = p->kind == CREW_THREADS ? launch_thread(p, i) : launch_process(p, i);
    if (rc < 0) {
        if (p->opt.initializer)
            crew__msg_free(p->shm, &ws->init_req);
        memset(&ws->init_req, 0, sizeof ws->init_req);
        ws->state = CREW__SLOT_DEAD;
        return rc;
    }
    ws->state = CREW__SLOT_LIVE;
    return 0;
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

int crew_worker_run(int shm_fd, int slot)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    crew__shm *shm;
    int rc = crew__shm_map(shm_fd, &shm);
    if (rc < 0)
        return rc;
    if (slot < 0 || (uint32_t)slot >= shm->nslots) {
        crew__shm_unmap(shm);
        return -EINVAL;
    }
    close(shm_fd);
    atomic_store(&shm->slots[slot].pid, getpid());
    crew__worker_loop(shm, (uint32_t)slot);
    /* the mapping stays until the process exits: arguments a task kept
     * (crew_out_keep_arg) may still point into it */
    return 0;
}
