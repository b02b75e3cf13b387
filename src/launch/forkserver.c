/* forkserver.c — the fork server: a clean copy of the program, started early, that forks workers on request.
 *
 * crew_main() starts it while the program still has one thread: a fresh exec
 * of the program (so it holds none of the parent's later state: threads,
 * locks, environment changes) with one end of a socketpair. Nobody else can
 * reach that socket: it has no name. For each worker the owner sends the
 * slot number and the pool's memfd (SCM_RIGHTS); the server forks the worker
 * with CLONE_PARENT, so the worker is the owner's child (the owner reaps it
 * and learns its exit status through its pidfd), and answers with the pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "launch/forkserver.h"
#include "launch/launch.h"
#include "base/fdset.h"
#include "base/lockorder.h"

#define SERVER_ENV "CREW_FORKSERVER"

static pthread_mutex_t fs_mu = PTHREAD_MUTEX_INITIALIZER;
static int fs_sock = -1;      /* owner's end of the socketpair        */
static pid_t fs_pid = -1;

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
 * The server dies with the thread that forked it (PR_SET_PDEATHSIG), and so
 * do the workers it forks (CLONE_PARENT makes that same thread their parent).
 * From the main thread that is the program's life. From any other thread
 * (a pool's supervisor, which ends with its pool) crew forks it from a
 * keeper thread that lives, asleep, as long as the program.
 */
static int spawn_server(void);

typedef struct keeper_req {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
} keeper_req;

extern _Atomic int crew__internal_threads;

static void *keeper_main(void *arg)
{
    crew__name_thread("crew:keeper");
    keeper_req *kr = arg;
    atomic_fetch_add(&crew__internal_threads, 1);
    int rc = spawn_server();
    crew__lock(&kr->mu, CREW__LOCK_KEEPER);
    kr->rc = rc;
    kr->done = true;
    pthread_cond_signal(&kr->cv);
    crew__unlock(&kr->mu, CREW__LOCK_KEEPER);
    for (;;)
        pause(); /* every signal is blocked here: sleeps for good */
    return NULL;
}

int crew__forkserver_start(void)
{
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    int rc = 0;
    if (fs_sock < 0) {
        if (getpid() == (pid_t)syscall(SYS_gettid)) {
            rc = spawn_server();
        } else {
            keeper_req kr = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
            pthread_t t;
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            rc = -pthread_create(&t, NULL, keeper_main, &kr);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (rc == 0) {
                pthread_detach(t);
                crew__lock(&kr.mu, CREW__LOCK_KEEPER);
                while (!kr.done)
                    pthread_cond_wait(&kr.cv, &kr.mu);
                rc = kr.rc;
                crew__unlock(&kr.mu, CREW__LOCK_KEEPER);
            }
        }
    }
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    return rc;
}

/* Forks and execs the server; fs_mu held. */
static int spawn_server(void)
{
    int rc = 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        goto out;
    }
    pid_t owner = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(sv[0]);
        close(sv[1]);
        goto out;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != owner)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(sv[0]);
        fcntl(sv[1], F_SETFD, 0);
        char env[32];
        snprintf(env, sizeof env, "%d", sv[1]);
        setenv(SERVER_ENV, env, 1);
        char *argv[] = {(char *)"crew-forkserver", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(sv[1]);
    fs_sock = sv[0];
    crew__fd_own(fs_sock);
    fs_pid = pid;
out:
    return rc;
}

void crew__forkserver_forget(void)
{
    fs_sock = -1;
    fs_pid = -1;
}

bool crew__forkserver_running(void)
{
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    bool r = fs_sock >= 0;
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    return r;
}

pid_t crew__forkserver_fork(int shm_fd, int slot)
{
    crew__lock(&fs_mu, CREW__LOCK_FORKSERVER);
    int rc = fs_sock < 0 ? -ENOTCONN : send_msg(fs_sock, slot, shm_fd);
    int pid = 0;
    if (rc == 0)
        rc = recv_msg(fs_sock, &pid, NULL);
    if (rc == -EPIPE || rc == -ECONNRESET) { /* the server died: forget it */
        crew__fd_close(fs_sock);
        fs_sock = -1;
        if (fs_pid > 0 && waitpid(fs_pid, NULL, WNOHANG) == 0) { /* dying: finish it */
            kill(fs_pid, SIGKILL);
            waitpid(fs_pid, NULL, 0);
        }
        fs_pid = -1;
    }
    crew__unlock(&fs_mu, CREW__LOCK_FORKSERVER);
    if (rc < 0)
        return rc;
    return pid > 0 ? (pid_t)pid : (pid_t)(pid < 0 ? pid : -ECHILD);
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

/* The server's loop; never returns. */
static void serve(int sock)
{
    pid_t owner = getppid();
    signal(SIGCHLD, SIG_DFL);
    for (;;) {
        int slot, fd;
        if (recv_msg(sock, &slot, &fd) < 0)
            _exit(0); /* the owner closed its end or died */
        long pid = fd < 0 ? -EBADF : crew__fork_parented();
        if (pid == 0) {
            close(sock);
            /* the owner is our parent now: die with it */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != owner)
                _exit(1);
            _exit(crew_worker_run(fd, slot) < 0 ? 2 : 0);
        }
        if (pid < 0 && fd >= 0)
            pid = -errno;
        if (fd >= 0)
            close(fd);
        if (send_msg(sock, (int)pid, -1) < 0)
            _exit(0);
    }
}

void crew__forkserver_maybe_serve(void)
{
    const char *env = getenv(SERVER_ENV);
    if (!env)
        return;
    int sock = atoi(env);
    unsetenv(SERVER_ENV);
    serve(sock);
}
