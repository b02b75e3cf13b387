/* helpers.h — small shared helpers for the C tests: sanitizer detection, sleeps, /proc readers. */
#ifndef CREW_TEST_HELPERS_H
#define CREW_TEST_HELPERS_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crew.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

/* True under a sanitizer or with CREW_TEST_QUICK set: loops should shrink. */
/* Options for a pool of `workers` process workers started by fork: what
 * tests that reach into their workers (signals, shared pages) use. */
static inline crew_options test_fork_options(int workers)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = CREW_PROCESSES;
    o.start = CREW_START_FORK;
    o.workers = workers;
    return o;
}

static inline bool test_quick(void)
{
    return TEST_SANITIZED || getenv("CREW_TEST_QUICK") != NULL;
}

/* n normally, q when test_quick(). */
static inline long test_scale(long n, long q)
{
    return test_quick() ? q : n;
}

static inline void test_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Number of open fds of this process (entries of /proc/self/fd, less the dir's own). */
static inline int test_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* VmRSS of this process in KiB, or -1. */
static inline long test_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* The state letter of /proc/<pid>/stat ('R', 'S', 'Z', ...), or 0 when gone. */
static inline char test_proc_state(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* comm may hold spaces and parens */
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

/* The parent pid field of /proc/<pid>/stat, or -1. */
static inline int test_proc_ppid(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    int ppid = -1;
    char st;
    if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
        return -1;
    return ppid;
}

/* Zombie children of pid `parent` listed in /proc. */
static inline int test_zombie_children(int parent)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid > 0 && test_proc_ppid(pid) == parent && test_proc_state(pid) == 'Z')
            n++;
    }
    closedir(d);
    return n;
}

#endif
