/* pool_tasks.h — the task functions and pool helpers that the pool test cases share. */
#ifndef CREW_TEST_POOL_TASKS_H
#define CREW_TEST_POOL_TASKS_H

#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crew.h"
#include "helpers.h"

#ifndef TEST_KIND
#error "define TEST_KIND (CREW_THREADS or CREW_PROCESSES) before including this header"
#endif
#ifndef TEST_START
#define TEST_START CREW_START_DEFAULT
#endif

static int arg_int(const void *arg, size_t len)
{
    int v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    return v;
}

static int t_echo(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_set(out, arg, len);
}

/* Like echo, but writes straight into a buffer from crew_out_alloc. */
static int t_echo_alloc(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    void *p = crew_out_alloc(out, len);
    if (!p && len)
        return crew_out_error(out, "no room for %zu bytes", len);
    if (len)
        memcpy(p, arg, len);
    return 0;
}

static int t_add1(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int v = arg_int(arg, len) + 1;
    return crew_out_set(out, &v, sizeof v);
}

static int t_fail(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_error(out, "bad input %d", arg_int(arg, len));
}

static int t_fail_eio(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)out, (void)ud;
    return -EIO;
}

/* Odd inputs fail with a message, even ones return input * 10. */
static int t_fail_odd(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int v = arg_int(arg, len);
    if (v % 2)
        return crew_out_error(out, "odd %d", v);
    v *= 10;
    return crew_out_set(out, &v, sizeof v);
}

/* Sleeps arg milliseconds, returns the argument. */
static int t_sleep_ms(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    test_sleep_us(arg_int(arg, len) * 1000L);
    return crew_out_set(out, arg, len);
}

/* Returns [input, the worker's tid] (the pid in a process worker). */
static int t_whoami(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    int r[2] = {arg_int(arg, len), (int)syscall(SYS_gettid)};
    return crew_out_set(out, r, sizeof r);
}

/* The initializer's state: a global (seen across a process worker) and a
 * per-thread run count (one per worker in either kind). */
static _Atomic int g_init_value;
static _Thread_local int tl_init_runs;
static _Atomic int g_init_calls;

static int t_init(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)out, (void)ud;
    g_init_value = arg_int(arg, len);
    tl_init_runs++;
    atomic_fetch_add(&g_init_calls, 1);
    return 0;
}

static int t_init_fail(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)ud;
    return crew_out_error(out, "init broke %d", arg_int(arg, len));
}

/* Returns [g_init_value, tl_init_runs] as this worker sees them. */
static int t_read_init(const void *arg, size_t len, crew_out *out, void *ud)
{
    (void)arg, (void)len, (void)ud;
    int r[2] = {g_init_value, tl_init_runs};
    return crew_out_set(out, r, sizeof r);
}

__attribute__((constructor)) static void register_test_tasks(void)
{
    (void)crew_register("echo", t_echo, NULL);
    (void)crew_register("echo_alloc", t_echo_alloc, NULL);
    (void)crew_register("add1", t_add1, NULL);
    (void)crew_register("fail", t_fail, NULL);
    (void)crew_register("fail_eio", t_fail_eio, NULL);
    (void)crew_register("fail_odd", t_fail_odd, NULL);
    (void)crew_register("sleep_ms", t_sleep_ms, NULL);
    (void)crew_register("whoami", t_whoami, NULL);
    (void)crew_register("init", t_init, NULL);
    (void)crew_register("init_fail", t_init_fail, NULL);
    (void)crew_register("read_init", t_read_init, NULL);
}

/* Options for a pool of the kind under test. */
static crew_options pool_opts(int workers)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = TEST_KIND;
    o.workers = workers;
    if (TEST_KIND == CREW_PROCESSES)
        o.start = TEST_START;
    return o;
}

static int submit_int(crew_pool *p, const char *name, int v, crew_future **f)
{
    return crew_submit(p, name, &v, sizeof v, f);
}

/* The int result of f (after waiting), or INT32_MIN on failure. */
static int result_int(crew_future *f)
{
    const void *d;
    size_t n;
    int v = INT32_MIN;
    if (crew_future_result(f, &d, &n) == 0 && n >= sizeof v)
        memcpy(&v, d, sizeof v);
    return v;
}

static double elapsed_s(uint64_t t0)
{
    return (double)(test_now_ns() - t0) / 1e9;
}

#endif
