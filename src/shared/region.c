/* shared_region.c — memfd regions for shared objects: create, open from a ref (fork, pidfd, /proc), holders. */
#include "shared/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/memfd.h"

void (*crew__shared_hook)(const char *point);

/* ----------------------------------------------------------- fork tracking */

static _Atomic uint64_t fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

/* -------------------------------------------------------------- liveness */

/* Start time (clock ticks since boot) of pid and whether it is a zombie;
 * -1 when it is gone. */
static int64_t proc_start(pid_t pid, bool *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    *zombie = *p == 'Z' || *p == 'X' || *p == 'x';
    /* field 3 is the state; the start time is field 22 */
    for (int f = 3; f < 22 && p; f++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoll(p, NULL, 10) : -1;
}

static bool holder_alive(const crew__holder *e)
{
    bool z = false;
    int64_t st = proc_start(e->pid, &z);
    return st >= 0 && !z && (uint64_t)st == e->start;
}

static int hlock(crew__shhdr *hd)
{
    int rc = crew__rmutex_lock(&hd->hmu, UINT64_MAX);
    return rc == CREW_EOWNERDEAD ? 0 : rc; /* entries are written whole */
}

static int attach(crew__sh *h)
{
    crew__shhdr *hd = h->hdr;
    pid_t me = getpid();
    bool z;
    int64_t st = proc_start(me, &z);
    int rc = hlock(hd);
    if (rc)
        return rc;
    crew__holder *free_e = NULL;
    rc = -EMFILE;
    for (int pass = 0; pass < 2 && rc && !free_e; pass++) {
        for (int i = 0; i < CREW__SH_HOLDERS; i++) {
            crew__holder *e = &hd->holders[i];
            if (e->pid == me && e->tag == h->tag && e->start == (uint64_t)st) {
                e->count++;
                rc = 0;
                break;
            }
            /* the second pass reclaims entries of processes that are gone
             * (workers that exited holding it, a recycled pid's old entry) */
            if (pass == 1 && e->pid && !holder_alive(e))
                __atomic_store_n(&e->pid, 0, __ATOMIC_RELEASE);
            if (!e->pid && !free_e)
                free_e = e;
        }
    }
    if (rc && free_e) {
        free_e->tag = h->tag;
        free_e->start = (uint64_t)st;
        free_e->count = 1;
        __atomic_store_n(&free_e->pid, me, __ATOMIC_RELEASE);
        rc = 0;
    }
    if (rc == 0 && me != hd->creator)
        __atomic_store_n(&hd->peer_seen, 1, __ATOMIC_RELEASE);
    if (rc == 0)
        __atomic_add_fetch(&hd->opens, 1, __ATOMIC_RELEASE);
    crew__rmutex_unlock(&hd->hmu);
    h->gen = atomic_load(&fork_gen);
    return rc;
}

static void detach(crew__sh *h)
{
    crew__shhdr *hd = h->hdr;
    pid_t me = getpid();
    if (h->gen != atomic_load(&fork_gen))
        return; /* inherited, never attached here: the entry is another's */
    if (hlock(hd))
        return;
    for (int i = 0; i < CREW__SH_HOLDERS; i++) {
        crew__holder *e = &hd->holders[i];
        if (e->pid == me && e->tag == h->tag) {
            if (--e->count == 0)
                __atomic_store_n(&e->pid, 0, __ATOMIC_RELEASE);
            __atomic_add_fetch(&hd->closes, 1, __ATOMIC_RELEASE);
            break;
        }
    }
    crew__rmutex_unlock(&hd->hmu);
}

void crew__sh_check_fork(crew__sh *h)
{
    if (h->gen != atomic_load_explicit(&fork_gen, memory_order_relaxed))
        (void)attach(h);
}

int crew__sh_live_peers(crew__sh *h, int tag)
{
    crew__shhdr *hd = h->hdr;
    pid_t me = getpid();
    if (hlock(hd))
        return 1;
    int n = 0;
    for (int i = 0; i < CREW__SH_HOLDERS; i++) {
        crew__holder *e = &hd->holders[i];
        if (!e->pid)
            continue;
        if (e->pid != me && !holder_alive(e)) {
            __atomic_store_n(&e->pid, 0, __ATOMIC_RELEASE);
            continue;
        }
        if (tag < 0 ? e->pid != me : (int)e->tag == tag)
            n++;
    }
    crew__rmutex_unlock(&hd->hmu);
    return n;
}

/* ------------------------------------------------------------ the region */

static int map_fd(crew__sh *h, int fd, uint32_t kind)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((size_t)st.st_size < CREW__SH_BODY)
        return -EINVAL;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                   fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    crew__shhdr *hd = p;
    if (hd->magic != CREW__SH_MAGIC || hd->kind != kind || hd->size != (uint64_t)st.st_size ||
        hd->ino != (uint64_t)st.st_ino) {
        munmap(p, (size_t)st.st_size);
        return -EINVAL;
    }
    h->hdr = hd;
    h->fd = fd;
    h->kind = kind;
    h->size = (uint64_t)st.st_size;
    return 0;
}

int crew__sh_create(crew__sh *h, uint32_t kind, size_t body, uint32_t tag)
{
    pthread_once(&atfork_once, install_atfork);
    size_t size = ((size_t)CREW__SH_BODY + body + 4095) & ~(size_t)4095;
    int fd;
    void *p;
    int rc = crew__memfd_map("crew-shared", size, &fd, &p);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        munmap(p, size);
        close(fd);
        return rc;
    }
    crew__shhdr *hd = p;
    hd->kind = kind;
    hd->size = size;
    hd->ino = (uint64_t)st.st_ino;
    hd->dev = (uint64_t)st.st_dev;
    hd->creator = getpid();
    rc = crew__rmutex_init(&hd->hmu, false);
    if (rc) {
        munmap(p, size);
        close(fd);
        return rc;
    }
    hd->magic = CREW__SH_MAGIC;
    h->hdr = hd;
    h->fd = fd;
    h->kind = kind;
    h->tag = tag;
    h->size = size;
    rc = attach(h);
    if (rc) {
        munmap(p, size);
        close(fd);
    }
    return rc;
}

/* An fd of this process that is the region the ref names, or -1. */
static bool fd_is(int fd, const crew_shared_ref *ref)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ref->id &&
           (uint64_t)st.st_dev == ref->dev && (uint64_t)st.st_size == ref->size;
}

/* A new fd of this process on the region the ref names. */
static int fetch_fd(const crew_shared_ref *ref)
{
    if (fd_is(ref->fd, ref)) { /* ours, or inherited through fork */
        int fd = fcntl(ref->fd, F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? -errno : fd;
    }
    if (ref->owner_pid <= 0)
        return -EBADF;
    int err = -EBADF;
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)ref->owner_pid, 0);
    if (pidfd >= 0) {
        int fd = (int)syscall(SYS_pidfd_getfd, pidfd, ref->fd, 0);
        err = fd < 0 ? -errno : 0;
        close(pidfd);
        if (fd >= 0) {
            if (fd_is(fd, ref))
                return fd;
            close(fd);
            return -EBADF; /* the owner's fd number holds something else now */
        }
    } else {
        err = -errno;
        if (err == -ESRCH)
            return err;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)ref->owner_pid, (int)ref->fd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? (err == -EPERM ? -EPERM : -EBADF) : -errno;
    if (fd_is(fd, ref))
        return fd;
    close(fd);
    return -EBADF;
}

int crew__sh_open(crew__sh *h, const crew_shared_ref *ref, uint32_t kind)
{
    if (!ref || ref->kind != kind)
        return -EINVAL;
    pthread_once(&atfork_once, install_atfork);
    int fd = fetch_fd(ref);
    if (fd < 0)
        return fd;
    int rc = map_fd(h, fd, kind);
    if (rc) {
        close(fd);
        return rc;
    }
    h->tag = ref->sub;
    rc = attach(h);
    if (rc) {
        munmap(h->hdr, h->size);
        close(fd);
    }
    return rc;
}

int crew__sh_dup(crew__sh *h, const crew__sh *from, uint32_t tag)
{
    int fd = fcntl(from->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    int rc = map_fd(h, fd, from->kind);
    if (rc) {
        close(fd);
        return rc;
    }
    h->tag = tag;
    rc = attach(h);
    if (rc) {
        munmap(h->hdr, h->size);
        close(fd);
    }
    return rc;
}

void crew__sh_ref(const crew__sh *h, crew_shared_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->kind = h->kind;
    ref->sub = h->tag;
    ref->owner_pid = getpid();
    ref->fd = h->fd;
    ref->size = h->size;
    ref->id = h->hdr->ino;
    ref->dev = h->hdr->dev;
}

void crew__sh_close(crew__sh *h)
{
    if (!h->hdr)
        return;
    detach(h);
    munmap(h->hdr, h->size);
    close(h->fd);
    h->hdr = NULL;
    h->fd = -1;
}

uint64_t crew__sh_opens(const crew__sh *h)
{
    return __atomic_load_n(&h->hdr->opens, __ATOMIC_ACQUIRE);
}

uint64_t crew__sh_closes(const crew__sh *h)
{
    return __atomic_load_n(&h->hdr->closes, __ATOMIC_ACQUIRE);
}
