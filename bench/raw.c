/* Raw IPC/memory baselines: cross-process futex, spin and pipe ping-pong, and memcpy. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "raw.h"

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPEATS 64

static int g_repeats = 7;

void crew_bench_set_repeats(int repeats)
{
    g_repeats = repeats < 1 ? 1 : repeats > MAX_REPEATS ? MAX_REPEATS : repeats;
}

double crew_bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double crew_bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One ping-pong transport: ping() sends and waits for the reply (parent), pong() serves one (child). */
struct pingpong {
    void (*ping)(void *ctx);
    void (*pong)(void *ctx);
    void *ctx;
};

/* Fork a child that serves every round trip; return the median per-round-trip µs. */
static double run_pingpong(const struct pingpong *pp, int iters)
{
    if (iters < 1)
        return -1;
    int warmup = iters / 10 + 1;
    long total = warmup + (long)g_repeats * iters;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        for (long i = 0; i < total; i++)
            pp->pong(pp->ctx);
        _exit(0);
    }
    for (int i = 0; i < warmup; i++)
        pp->ping(pp->ctx);
    double per_rt[MAX_REPEATS];
    for (int r = 0; r < g_repeats; r++) {
        double t0 = crew_bench_now_us();
        for (int i = 0; i < iters; i++)
            pp->ping(pp->ctx);
        per_rt[r] = (crew_bench_now_us() - t0) / iters;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return crew_bench_median(per_rt, g_repeats);
}

/* Shared word: 1 = child's turn, 0 = parent's turn. */
static void *map_shared_page(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void futex_ping(void *ctx)
{
    _Atomic uint32_t *w = ctx;
    atomic_store_explicit(w, 1, memory_order_release);
    futex_wake(w);
    while (atomic_load_explicit(w, memory_order_acquire) == 1)
        futex_wait(w, 1);
}

static void futex_pong(void *ctx)
{
    _Atomic uint32_t *w = ctx;
    while (atomic_load_explicit(w, memory_order_acquire) == 0)
        futex_wait(w, 0);
    atomic_store_explicit(w, 0, memory_order_release);
    futex_wake(w);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void spin_ping(void *ctx)
{
    _Atomic uint32_t *w = ctx;
    atomic_store_explicit(w, 1, memory_order_release);
    while (atomic_load_explicit(w, memory_order_acquire) == 1)
        cpu_relax();
}

static void spin_pong(void *ctx)
{
    _Atomic uint32_t *w = ctx;
    while (atomic_load_explicit(w, memory_order_acquire) == 0)
        cpu_relax();
    atomic_store_explicit(w, 0, memory_order_release);
}

static double shared_word_pingpong(void (*ping)(void *), void (*pong)(void *), int iters)
{
    _Atomic uint32_t *w = map_shared_page();
    if (!w)
        return -1;
    atomic_init(w, 0);
    struct pingpong pp = { ping, pong, w };
    double us = run_pingpong(&pp, iters);
    munmap(w, 4096);
    return us;
}

double crew_bench_futex_pingpong_us(int iters)
{
    return shared_word_pingpong(futex_ping, futex_pong, iters);
}

double crew_bench_spin_pingpong_us(int iters)
{
    return shared_word_pingpong(spin_ping, spin_pong, iters);
}

/* Pipe transport: to_child[1] -> child, to_parent[1] -> parent, one byte each way. */
struct pipes {
    int to_child[2];
    int to_parent[2];
};

static void xfer(int wfd, int rfd)
{
    char c = 'x';
    if (wfd >= 0 && write(wfd, &c, 1) != 1)
        _exit(2);
    if (rfd >= 0 && read(rfd, &c, 1) != 1)
        _exit(2);
}

static void pipe_ping(void *ctx)
{
    struct pipes *p = ctx;
    xfer(p->to_child[1], p->to_parent[0]);
}

static void pipe_pong(void *ctx)
{
    struct pipes *p = ctx;
    xfer(-1, p->to_child[0]);
    xfer(p->to_parent[1], -1);
}

double crew_bench_pipe_pingpong_us(int iters)
{
    struct pipes p;
    if (pipe(p.to_child) < 0)
        return -1;
    if (pipe(p.to_parent) < 0) {
        close(p.to_child[0]);
        close(p.to_child[1]);
        return -1;
    }
    struct pingpong pp = { pipe_ping, pipe_pong, &p };
    double us = run_pingpong(&pp, iters);
    close(p.to_child[0]);
    close(p.to_child[1]);
    close(p.to_parent[0]);
    close(p.to_parent[1]);
    return us;
}

/* Median µs, over `iters` rounds, of copying `bytes` along nbuf (2 or 3)
 * warm buffers: buf[0] -> buf[1], then buf[1] -> buf[2] when there are
 * three. -1 when out of memory. */
static double chain_copy_us(size_t bytes, int iters, int nbuf)
{
    if (iters < 1 || bytes == 0)
        return -1;
    char *buf[3] = {NULL, NULL, NULL};
    double *t = malloc((size_t)iters * sizeof *t);
    double us = -1;
    int ok = t != NULL;
    for (int k = 0; k < nbuf; k++) {
        buf[k] = malloc(bytes);
        if (buf[k])
            memset(buf[k], k + 1, bytes);
        ok = ok && buf[k];
    }
    if (ok) {
        for (int r = -1; r < iters; r++) { /* r = -1: warm-up */
            double t0 = crew_bench_now_us();
            for (int k = 0; k + 1 < nbuf; k++) {
                memcpy(buf[k + 1], buf[k], bytes);
                __asm__ __volatile__("" : : "r"(buf[k + 1]) : "memory");
            }
            if (r >= 0)
                t[r] = crew_bench_now_us() - t0;
        }
        us = crew_bench_median(t, iters);
    }
    for (int k = 0; k < nbuf; k++)
        free(buf[k]);
    free(t);
    return us;
}

double crew_bench_memcpy3_us(size_t bytes, int iters)
{
    return chain_copy_us(bytes, iters, 3);
}

double crew_bench_memcpy_us(size_t bytes, int iters)
{
    return chain_copy_us(bytes, iters, 2);
}
