/* demo.c — the C demo of crew: CPU- and I/O-bound batches run serially, on threads and on processes, and a worker crash. */
#include <crew.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    CPU_TASKS = 8,    /* CPU batch: tasks of about CPU_MS each */
    CPU_MS = 150,
    IO_TASKS = 16,    /* I/O batch: tasks each waiting IO_MS (a network call, say) */
    IO_MS = 100,
};

/* ------------------------------------------------------------- the work -- */

/* Pure CPU work: a xorshift generator folded into a checksum. */
static uint64_t cpu_work(uint64_t iters, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull | 1, acc = 0; /* distinct odd start per seed */
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += x % 1000003;
    }
    return acc;
}

/* Waits like a blocking network call would. */
static void io_work(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

typedef struct cpu_arg {
    uint64_t iters, seed;
} cpu_arg;

/* Task "cpu": arg is a cpu_arg, result the 8-byte checksum. */
static int task_cpu(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)udata;
    if (len != sizeof(cpu_arg))
        return crew_out_error(out, "cpu: expected %zu bytes, got %zu", sizeof(cpu_arg), len);
    cpu_arg a;
    memcpy(&a, arg, sizeof a);
    uint64_t sum = cpu_work(a.iters, a.seed);
    return crew_out_set(out, &sum, sizeof sum);
}

/* Task "io": sleeps IO_MS, no result. */
static int task_io(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)arg, (void)len, (void)out, (void)udata;
    io_work(IO_MS);
    return 0;
}

/* Task "crash": the worker dies of SIGSEGV, as a task with a wild pointer would. */
static int task_crash(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)arg, (void)len, (void)out, (void)udata;
    raise(SIGSEGV);
    return 0;
}

CREW_TASK("cpu", task_cpu)
CREW_TASK("io", task_io)
CREW_TASK("crash", task_crash)

/* --------------------------------------------------------------- helpers -- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "demo: %s: %s\n", what, crew_strerror(rc));
        exit(1);
    }
}

/* Iterations of cpu_work that take about CPU_MS here (best of 3 probes). */
static uint64_t calibrate(void)
{
    const uint64_t probe = 2000000;
    double best = 1e9;
    volatile uint64_t sink = 0;
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        sink += cpu_work(probe, (uint64_t)i + 1);
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    (void)sink;
    return (uint64_t)((double)probe * (CPU_MS / 1000.0) / best);
}

static crew_pool *new_pool(crew_kind kind, int workers)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = kind;
    o.workers = workers;
    crew_pool *p;
    check(crew_pool_create(&p, &o), "crew_pool_create");
    return p;
}

/* Runs the CPU batch on pool p (NULL: serially in this thread); returns
 * seconds and the sum of the checksums in *total. */
static double run_cpu_batch(crew_pool *p, uint64_t iters, uint64_t *total)
{
    crew_future *fs[CPU_TASKS];
    double t0 = now_s();
    *total = 0;
    for (int i = 0; i < CPU_TASKS; i++) {
        cpu_arg a = {iters, (uint64_t)i + 1};
        if (p)
            check(crew_submit(p, "cpu", &a, sizeof a, &fs[i]), "submit cpu");
        else
            *total += cpu_work(a.iters, a.seed);
    }
    for (int i = 0; p && i < CPU_TASKS; i++) {
        const void *data;
        size_t len;
        check(crew_future_result(fs[i], &data, &len), "cpu task");
        uint64_t sum;
        memcpy(&sum, data, sizeof sum);
        *total += sum;
        crew_future_release(fs[i]);
    }
    return now_s() - t0;
}

/* Runs the I/O batch on pool p (NULL: serially); returns seconds. */
static double run_io_batch(crew_pool *p)
{
    crew_future *fs[IO_TASKS];
    double t0 = now_s();
    for (int i = 0; i < IO_TASKS; i++) {
        if (p)
            check(crew_submit(p, "io", NULL, 0, &fs[i]), "submit io");
        else
            io_work(IO_MS);
    }
    if (p) {
        check(crew_wait_all(fs, IO_TASKS, -1), "wait io");
        for (int i = 0; i < IO_TASKS; i++) {
            check(crew_future_status(fs[i]), "io task");
            crew_future_release(fs[i]);
        }
    }
    return now_s() - t0;
}

/* --------------------------------------------------------------- the demo -- */

static void batches(void)
{
    int ncpu = crew_cpu_count();
    uint64_t iters = calibrate();
    printf("crew C demo: %d CPUs usable; process start method: %s\n\n", ncpu,
           crew_start_method_name(crew_get_start_method()));

    /* one pool per kind and batch, started before the clock runs */
    crew_pool *cpu_threads = new_pool(CREW_THREADS, ncpu);
    crew_pool *cpu_procs = new_pool(CREW_PROCESSES, ncpu);
    crew_pool *io_threads = new_pool(CREW_THREADS, IO_TASKS);
    crew_pool *io_procs = new_pool(CREW_PROCESSES, IO_TASKS);

    uint64_t sum_serial, sum_threads, sum_procs;
    double cpu_s = run_cpu_batch(NULL, iters, &sum_serial);
    double cpu_t = run_cpu_batch(cpu_threads, iters, &sum_threads);
    double cpu_p = run_cpu_batch(cpu_procs, iters, &sum_procs);
    double io_s = run_io_batch(NULL);
    double io_t = run_io_batch(io_threads);
    double io_p = run_io_batch(io_procs);
    if (sum_threads != sum_serial || sum_procs != sum_serial) {
        fprintf(stderr, "demo: checksums differ between modes\n");
        exit(1);
    }

    char cpu_label[48], io_label[48];
    snprintf(cpu_label, sizeof cpu_label, "CPU: %d x ~%d ms compute", CPU_TASKS, CPU_MS);
    snprintf(io_label, sizeof io_label, "I/O: %d x %d ms wait", IO_TASKS, IO_MS);
    printf("%-26s %9s %21s %21s\n", "batch (wall time)", "serial", "threads", "processes");
    printf("%-26s %8.2fs %8.2fs %4.1fx (%2dw) %8.2fs %4.1fx (%2dw)\n", cpu_label, cpu_s, cpu_t,
           cpu_s / cpu_t, ncpu, cpu_p, cpu_s / cpu_p, ncpu);
    printf("%-26s %8.2fs %8.2fs %4.1fx (%2dw) %8.2fs %4.1fx (%2dw)\n", io_label, io_s, io_t,
           io_s / io_t, IO_TASKS, io_p, io_s / io_p, IO_TASKS);
    printf("(speedup vs serial; w = workers; checksum %016llx in every mode)\n\n",
           (unsigned long long)sum_serial);
    printf("In C, thread workers run CPU work in parallel: both kinds approach the CPU count.\n"
           "(CPython threads cannot: the GIL runs one at a time; the Python demo shows it.)\n"
           "Waits overlap on either kind. Processes add isolation: a crash fails one task.\n\n");

    crew_pool_free(cpu_threads);
    crew_pool_free(cpu_procs);
    crew_pool_free(io_threads);
    crew_pool_free(io_procs);
}

static void crash(void)
{
    printf("A worker crash, in a process pool of 2:\n");
    crew_pool *p = new_pool(CREW_PROCESSES, 2);
    const char *names[] = {"cpu", "cpu", "crash", "cpu", "cpu"};
    enum { N = sizeof names / sizeof names[0] };
    crew_future *fs[N];
    for (int i = 0; i < N; i++) {
        cpu_arg a = {100000, (uint64_t)i + 1};
        check(crew_submit(p, names[i], &a, sizeof a, &fs[i]), "submit");
    }
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        int rc = crew_future_result(fs[i], &data, &len);
        if (rc == 0) {
            uint64_t sum;
            memcpy(&sum, data, sizeof sum);
            printf("  task %d %-5s ok     checksum %016llx\n", i, names[i], (unsigned long long)sum);
        } else {
            printf("  task %d %-5s failed %s (%d): %s\n", i, names[i],
                   rc == CREW_ECRASHED ? "CREW_ECRASHED" : crew_strerror(rc), rc,
                   crew_future_error(fs[i]));
        }
        crew_future_release(fs[i]);
    }
    crew_stats st;
    crew_pool_stats(p, &st);
    printf("  pool: %llu done, %llu crashed; the dead worker was replaced (%u restart%s)\n",
           (unsigned long long)st.done, (unsigned long long)st.crashed,
           st.worker[0].restarts + st.worker[1].restarts,
           st.worker[0].restarts + st.worker[1].restarts == 1 ? "" : "s");
    crew_pool_free(p);
}

int main(int argc, char **argv)
{
    crew_main(argc, argv); /* a spawned worker runs here and never returns */
    setvbuf(stdout, NULL, _IOLBF, 0);
    batches();
    crash();
    return 0;
}
