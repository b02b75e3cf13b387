/* forkserver.c — the fork servers: clean copies of the program (or of an interpreter running its bootstrap), started once, that fork workers on request.
 *
 * A fork server is a fresh exec (so it holds none of the owner's later
 * state: threads, locks, environment changes) of this program, or of
 * spawn_argv with its prelude (an interpreter, its bootstrap and its
 * start-up state: what Python's crew package gives), holding one end of a
 * socketpair. Nobody else can reach that socket: it has no name. Pools with
 * the same program and prelude bytes share one server. It says it is ready
 * once it serves (an interpreter's server first imports what its workers
 * need). For each worker the owner sends the slot number and the pool's
 * memfd (SCM_RIGHTS); the server forks the worker with CLONE_PARENT, so the
 * worker is the owner's child (the owner reaps it and learns its exit status
 * through its pidfd), and answers with the pid. A server that died is
 * started again when a worker next needs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "launch/forkserver.h"
#include "launch/launch.h"
#include "base/fdset.h"
#include "base/lockorder.h"

#define SERVER_ENV "CREW_FORKSERVER"
#define READY_MS 60000 /* how long a server may take to serve */

int crew__forkserver_reply_ms = 30000;

typedef struct server {
    struct server *next;
    char **argv;   /* our copy; NULL: this program          */
    int prelude;   /* our copy (close-on-exec), or -1        */
    int sock;      /* our end of the socketpair; -1: not up  */
    pid_t pid;
} server;

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static server *servers; /* fs_mu */
static pid_t fs_owner;  /* the process they belong to (fs_mu) */
static pthread_once_t fs_atfork_once = PTHREAD_ONCE_INIT;

/* Sends one int and optionally one fd. */
static int send_msg(int sock, int value, int fd)
{
    struct iovec iov = {.iov_base = &value, .iov_len = sizeof value};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof value ? 0 : n < 0 ? -errno : -EPROTO;
}

/* Receives one int and optionally one fd (*fd = -1 when none came). */
static int recv_msg(int sock, int *value, int *fd)
{
    struct iovec iov = {.iov_base = value, .iov_len = sizeof *value};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    /* a descriptor that came is closed here unless it is handed back, and
     * only a whole message is one (tests/fuzz/fuzz_forkserver.c) */
    int got = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t k = 0; CMSG_LEN((k + 1) * sizeof(int)) <= c->cmsg_len; k++) {
            int one;
            memcpy(&one, CMSG_DATA(c) + k * sizeof(int), sizeof one);
            if (got < 0)
                got = one;
            else
                close(one); /* one descriptor per message: the rest are not ours */
        }
    }
    if (n != (ssize_t)sizeof *value || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        (got >= 0 && !fd)) {
        if (got >= 0)
            close(got);
        return n == 0 ? -EPIPE : -EPROTO;
    }
    if (fd)
        *fd = got;
    return 0;
}

/*
 * A server dies with the thread that forked it (PR_SET_PDEATHSIG), and so
 * do the workers it forks (CLONE_PARENT makes that same thread their parent).
 * From the main thread that is the program's life. From any other thread
 * (a pool's supervisor, which ends with its pool) crew forks it from a
 * keeper thread that lives, asleep, as long as the program.
 */
static pthread_mutex_t keeper_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keeper_cv = PTHREAD_COND_INITIALIZER;
static bool keeper_up;      /* keeper_mu, as the rest */
static server *keeper_job;
static bool keeper_done;
static int keeper_rc;

static int spawn_server(server *s);

static void *keeper_main(void *arg)
{
    (void)arg;
    crew__name_thread("crew:keeper");
    atomic_fetch_add(&crew__internal_threads, 1);
    crew__lock(&keeper_mu, CREW__LOCK_KEEPER);
    for (;;) { /* every signal is blocked here: sleeps for good between jobs */
        while (!keeper_job)
            pthread_cond_wait(&keeper_cv, &keeper_mu);
        keeper_rc = spawn_server(keeper_job);
        keeper_job = NULL;
        keeper_done = true;
        pthread_cond_broadcast(&keeper_cv);
    }
    return NULL;
}

/* recv_msg of a message without a descriptor, waiting at most ms for it:
 * 0, -ETIMEDOUT, or poll's or recv_msg's error. */
static int recv_within(int sock, int ms, int *value)
{
    struct pollfd pf = {sock, POLLIN, 0};
    int n;
    do
        n = poll(&pf, 1, ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? -ETIMEDOUT : recv_msg(sock, value, NULL);
}

/* Forks s's server from the keeper thread (started the first time). fs_mu held. */
static int spawn_on_keeper(server *s)
{
    int rc = 0;
    crew__lock(&keeper_mu, CREW__LOCK_KEEPER);
    if (!keeper_up) {
        pthread_t t;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = -pthread_create(&t, NULL, keeper_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            pthread_detach(t);
            keeper_up = true;
        }
    }
    if (rc == 0) {
        keeper_job = s;
        keeper_done = false;
        pthread_cond_broadcast(&keeper_cv);
        while (!keeper_done)
            pthread_cond_wait(&keeper_cv, &keeper_mu);
        rc = keeper_rc;
    }
    crew__unlock(&keeper_mu, CREW__LOCK_KEEPER);
    return rc;
}

/* Forks and execs s's server; fs_mu held, on a thread that lives as long as
 * the program. The child runs only async-signal-safe calls before its exec. */
static int spawn_server(server *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* both ends at once: a fork worker of another pool started meanwhile
     * must not keep the server's end (its kill would then never be seen) */
    crew__fd_own(sv[0]);
    crew__fd_own(sv[1]);
    char senv[48], penv[48];
    snprintf(senv, sizeof senv, SERVER_ENV "=%d", sv[1]);
    snprintf(penv, sizeof penv, "CREW_PRELUDE=%d", s->prelude);
    char **env = crew__exec_env(senv, s->prelude >= 0 ? penv : NULL);
    if (!env) {
        crew__fd_close(sv[0]);
        crew__fd_close(sv[1]);
        return -ENOMEM;
    }
    pid_t owner = getpid();
    pid_t pid = fork();
    int e = errno;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != owner)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* its end of the socket and the prelude cross the exec */
        crew__exec_program(s->argv, "crew-forkserver", env, sv[1], s->prelude);
    }
    free(env);
    crew__fd_close(sv[1]);
    if (pid < 0) {
        crew__fd_close(sv[0]);
        return -e;
    }
    s->sock = sv[0]; /* owned: a fork worker closes it (base/fdset.h) */
    s->pid = pid;
    return 0;
}

/* Forgets s's server, which died or must: reaps it. fs_mu held. */
static void forget(server *s)
{
    if (s->sock >= 0)
        crew__fd_close(s->sock);
    s->sock = -1;
    if (s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0) { /* dying: finish it */
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = -1;
}

/* Starts s's server unless it runs, and waits until it serves. fs_mu held. */
static int start_locked(server *s)
{
    if (s->sock >= 0)
        return 0;
    int rc = getpid() == (pid_t)syscall(SYS_gettid) ? spawn_server(s) : spawn_on_keeper(s);
    if (rc < 0)
        return rc;
    int ready = -1;
    rc = recv_within(s->sock, READY_MS, &ready);
    if (rc == 0 && ready != 0)
        rc = -EPROTO;
    if (rc < 0) {
        forget(s);
        return rc == -ETIMEDOUT ? rc : -ENOTCONN;
    }
    return 0;
}

/* Whether a and b name the same program (NULL: this one). */
static bool same_argv(char *const *a, char *const *b)
{
    if (!a || !b)
        return a == b;
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !*a && !*b;
}

/* Whether descriptors a and b (-1: none) hold the same bytes. */
static bool same_prelude(int a, int b)
{
    if (a < 0 || b < 0)
        return a < 0 && b < 0;
    struct stat sa, sb;
    if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0 || sa.st_size != sb.st_size)
        return false;
    char ba[4096], bb[4096];
    for (off_t off = 0; off < sa.st_size;) {
        ssize_t na = pread(a, ba, sizeof ba, off), nb = pread(b, bb, sizeof bb, off);
        if (na <= 0 || na != nb || memcmp(ba, bb, (size_t)na) != 0)
            return false;
        off += na;
    }
    return true;
}

/* In a child forked from this process the locks are fresh: another thread
 * may have held them at the fork. (The entries stay until the child next
 * uses them: the child of a spawn or a server start still reads its entry.) */
static void after_fork_child(void)
{
    pthread_mutex_init(&fs_mu, NULL);
    pthread_mutex_init(&keeper_mu, NULL);
    pthread_cond_init(&keeper_cv, NULL);
    keeper_up = false;
    keeper_job = NULL;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* Drops the entries a forked child inherited: the servers are its
 * parent's (reaps nothing). Their descriptors are not closed here: a crew
 * fork worker closed them already (base/fdset.h), and their numbers may
 * since have been reused; in any other child they stay open, as every
 * descriptor a fork copies does. fs_mu held. */
static void drop_inherited(void)
{
    pid_t me = getpid();
    if (fs_owner == me)
        return;
    while (servers) {
        server *s = servers;
        servers = s->next;
        for (size_t k = 0; s->argv && s->argv[k]; k++)
            free(s->argv[k]);
        free(s->argv);
        free(s);
    }
    fs_owner = me;
}

/* The entry for program argv and prelude, made (not started) when new.
 * NULL: no memory. fs_mu held. */
static server *find_server(char *const *argv, int prelude)
{
    drop_inherited();
    for (server *s = servers; s; s = s->next)
        if (same_argv(s->argv, argv) && same_prelude(s->prelude, prelude))
            return s;
    server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sock = s->prelude = -1;
    s->pid = -1;
    if (prelude >= 0 && (s->prelude = fcntl(prelude, F_DUPFD_CLOEXEC, 3)) < 0)
        goto fail;
    crew__fd_own(s->prelude);
    if (argv) {
        size_t n = 0;
        while (argv[n])
            n++;
        if (!(s->argv = calloc(n + 1, sizeof *s->argv)))
            goto fail;
        for (size_t k = 0; k < n; k++)
            if (!(s->argv[k] = strdup(argv[k])))
                goto fail;
    }
    s->next = servers;
    servers = s;
    return s;
fail:
    for (size_t k = 0; s->argv && s->argv[k]; k++)
        free(s->argv[k]);
    free(s->argv);
    if (s->prelude >= 0)
        crew__fd_close(s->prelude);
    free(s);
    return NULL;
}

int crew__forkserver_start(char *const *argv, int prelude_fd)
{
    pthread_once(&fs_atfork_once, register_atfork);
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    server *s = find_server(argv, prelude_fd);
    int rc = s ? start_locked(s) : -ENOMEM;
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    return rc;
}

pid_t crew__forkserver_fork(char *const *argv, int prelude_fd, int shm_fd, int slot)
{
    pthread_once(&fs_atfork_once, register_atfork);
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    server *s = find_server(argv, prelude_fd);
    int rc = s ? 0 : -ENOMEM;
    int pid = 0;
    for (int attempt = 0; s && attempt < 2; attempt++) {
        if ((rc = start_locked(s)) < 0)
            break;
        rc = send_msg(s->sock, slot, shm_fd);
        if (rc == 0)
            rc = recv_within(s->sock, crew__forkserver_reply_ms, &pid);
        if (rc == -ETIMEDOUT) {
            forget(s); /* stopped or hung: the next request starts another */
            break;
        }
        if (rc != -EPIPE && rc != -ECONNRESET)
            break;
        forget(s); /* it died (killed from outside): start another, once */
        rc = -ENOTCONN;
    }
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    if (rc < 0)
        return rc;
    return pid > 0 ? (pid_t)pid : (pid_t)(pid < 0 ? pid : -ECHILD);
}

int crew__forkserver_pids(pid_t *out, int max)
{
    int n = 0;
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    drop_inherited();
    for (server *s = servers; s; s = s->next)
        if (s->sock >= 0 && s->pid > 0) {
            if (n < max)
                out[n] = s->pid;
            n++;
        }
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    return n;
}

pid_t crew__fork_parented(void)
{
    /* where glibc keeps this thread's id and robust list (same addresses in
     * the child: its memory is a copy) */
    pid_t *tid_addr = NULL;
    if (prctl(PR_GET_TID_ADDRESS, &tid_addr) < 0)
        tid_addr = NULL;
    void *robust_head = NULL;
    size_t robust_len = 0;
    if (syscall(SYS_get_robust_list, 0, &robust_head, &robust_len) < 0)
        robust_head = NULL;
    long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid == 0) {
        pid_t tid = (pid_t)syscall(SYS_gettid);
        if (tid_addr) {
            *tid_addr = tid;
            syscall(SYS_set_tid_address, tid_addr);
        }
        if (robust_head)
            syscall(SYS_set_robust_list, robust_head, robust_len);
    }
    return (pid_t)pid;
}

/* The server's loop; never returns. The worker hooks (an interpreter's)
 * go around each fork; each child runs crew__worker_main. */
static void serve(int sock)
{
    pid_t owner = getppid();
    const crew_worker_hooks *h = crew__worker_hooks();
    signal(SIGCHLD, SIG_DFL);
    if (send_msg(sock, 0, -1) < 0) /* ready */
        _exit(0);
    for (;;) {
        int slot, fd;
        if (recv_msg(sock, &slot, &fd) < 0)
            _exit(0); /* the owner closed its end or died */
        long pid = -EBADF;
        if (fd >= 0) {
            int rc = h->before_fork ? h->before_fork() : 0;
            pid = rc < 0 ? rc : crew__fork_parented();
            if (pid == 0) {
                close(sock);
                /* the owner is our parent now: die with it */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != owner)
                    _exit(1);
                if (h->after_fork_child)
                    h->after_fork_child();
                char name[16];
                snprintf(name, sizeof name, "crew:worker%d", slot);
                crew__name_thread(name);
                _exit(crew__worker_main(fd, slot));
            }
            if (pid < 0 && rc == 0)
                pid = -errno;
            if (rc == 0 && h->after_fork_parent)
                h->after_fork_parent();
            close(fd);
        }
        if (send_msg(sock, (int)pid, -1) < 0)
            _exit(0);
    }
}

void crew__forkserver_serve_env(const char *value)
{
    char *end;
    long sock = strtol(value, &end, 10);
    if (end == value || *end || sock < 0 || fcntl((int)sock, F_GETFD) < 0)
        return;
    fcntl((int)sock, F_SETFD, FD_CLOEXEC); /* none of it in the workers' execs */
    serve((int)sock);
}
