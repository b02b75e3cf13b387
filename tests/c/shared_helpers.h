/* shared_helpers.h — helpers for the shared-state tests: forked children, their exit checks, a kill-at-hook switch. */
#ifndef CREW_TEST_SHARED_HELPERS_H
#define CREW_TEST_SHARED_HELPERS_H

#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crew.h"
#include "shared/region.h"

/* Forks a child that runs fn(arg) and exits with its return value (0: ok). */
static inline pid_t sh_fork(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg) & 0xff);
    return pid;
}

/* Waits for pid: its exit code, 128 + signal when killed, -1 on error. */
static inline int sh_join(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* In a child: die by SIGKILL the n-th time the write path reaches `point`. */
static const char *sh_kill_point;
static int sh_kill_after;
static void sh_kill_hook(const char *point)
{
    if (!strcmp(point, sh_kill_point) && --sh_kill_after <= 0)
        raise(SIGKILL);
}
static inline void sh_kill_at(const char *point, int nth)
{
    sh_kill_point = point;
    sh_kill_after = nth;
    crew__shared_hook = sh_kill_hook;
}

/* A self-checking payload: byte i of message (id) is (id * 31 + i) & 0xff. */
static inline void sh_fill(unsigned char *p, size_t len, uint32_t id)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(id * 31u + i);
}
static inline bool sh_check(const unsigned char *p, size_t len, uint32_t id)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(id * 31u + i))
            return false;
    return true;
}

#endif
