/* bench_core.c — libcrew benchmarks (round trip, throughput, 8 MB payload, start cost) beside raw IPC baselines. */
#include "raw.h"

#include <crew.h>

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ tasks -- */

/* Does nothing: the cost measured is crew's own. */
static int task_noop(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)arg, (void)len, (void)out, (void)udata;
    return 0;
}

/* Echoes its argument, written straight into shared memory (zero-copy out). */
static int task_echo(const void *arg, size_t len, crew_out *out, void *udata)
{
    (void)udata;
    void *dst = crew_out_alloc(out, len);
    if (!dst && len)
        return crew_out_error(out, "arena full (%zu bytes)", len);
    memcpy(dst, arg, len);
    return 0;
}

CREW_TASK("noop", task_noop)
CREW_TASK("echo", task_echo)

/* --------------------------------------------------------------- settings -- */

typedef struct settings {
    int workers;
    int quick;
    const char *csv;
    int rt_iters, rt_repeats;     /* (a) round trips per repeat, repeats      */
    int pipe_tasks, pipe_repeats; /* (b) futures per pipelined batch          */
    int map_items, map_repeats;   /* (b) items per crew_map                   */
    int big_repeats;              /* (c) 8 MB round trips                     */
    int start_repeats;            /* (d) pool starts per method               */
    int raw_iters, raw_repeats;   /* raw ping-pong baselines                  */
} settings;

#define BIG_BYTES (8u << 20)

/* ---------------------------------------------------------------- helpers -- */

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_core: %s: %s\n", what, crew_strerror(rc));
    exit(1);
}

/* One pool configuration under test. */
typedef struct config {
    const char *label;         /* "threads", "proc/fork", ...                */
    crew_kind kind;
    crew_start_method start;
} config;

static int make_pool(const config *c, int workers, crew_pool **out)
{
    crew_options o;
    crew_options_init(&o);
    o.kind = c->kind;
    o.workers = workers;
    o.start = c->kind == CREW_PROCESSES ? c->start : CREW_START_DEFAULT;
    return crew_pool_create(out, &o);
}

/* Submits one no-op and waits for it; returns its status. */
static int one_noop(crew_pool *p)
{
    crew_future *f;
    int rc = crew_submit(p, "noop", NULL, 0, &f);
    if (rc < 0)
        return rc;
    rc = crew_future_result(f, NULL, NULL);
    crew_future_release(f);
    return rc;
}

/* ------------------------------------------------------------- measures -- */

/* (a) Median µs of submit + wait + release of one no-op. */
static double bench_round_trip(crew_pool *p, const settings *s)
{
    double per[64];
    for (int i = 0; i < s->rt_iters / 10 + 1; i++) /* warm-up */
        one_noop(p);
    for (int r = 0; r < s->rt_repeats; r++) {
        double t0 = crew_bench_now_us();
        for (int i = 0; i < s->rt_iters; i++) {
            int rc = one_noop(p);
            if (rc != 0)
                die("no-op round trip", rc);
        }
        per[r] = (crew_bench_now_us() - t0) / s->rt_iters;
    }
    return crew_bench_median(per, s->rt_repeats);
}

/* (b) Median tasks/s of submitting n no-op futures, crew_wait_all, release. */
static double bench_pipelined(crew_pool *p, const settings *s)
{
    int n = s->pipe_tasks;
    crew_future **fs = malloc((size_t)n * sizeof *fs);
    if (!fs)
        die("pipelined", -ENOMEM);
    double rate[64];
    for (int r = 0; r < s->pipe_repeats; r++) {
        double t0 = crew_bench_now_us();
        for (int i = 0; i < n; i++) {
            int rc = crew_submit(p, "noop", NULL, 0, &fs[i]);
            if (rc < 0)
                die("pipelined submit", rc);
        }
        crew_wait_all(fs, (size_t)n, -1);
        for (int i = 0; i < n; i++) {
            if (crew_future_status(fs[i]) != 0)
                die("pipelined task", crew_future_status(fs[i]));
            crew_future_release(fs[i]);
        }
        rate[r] = n / ((crew_bench_now_us() - t0) / 1e6);
    }
    free(fs);
    return crew_bench_median(rate, s->pipe_repeats);
}

/* (b) Median items/s of crew_map of a no-op over n empty items, automatic chunks. */
static double bench_map(crew_pool *p, const settings *s)
{
    size_t n = (size_t)s->map_items;
    static const char empty = 0;
    const void **args = malloc(n * sizeof *args);
    size_t *lens = calloc(n, sizeof *lens);
    if (!args || !lens)
        die("map", -ENOMEM);
    for (size_t i = 0; i < n; i++)
        args[i] = &empty;
    double rate[64];
    for (int r = 0; r < s->map_repeats; r++) {
        double t0 = crew_bench_now_us();
        crew_batch *b;
        int rc = crew_map(p, "noop", n, args, lens, 0, &b);
        if (rc < 0)
            die("crew_map", rc);
        for (size_t i = 0; i < n; i++)
            if ((rc = crew_batch_get(b, i, NULL, NULL)) != 0)
                die("map item", rc);
        crew_batch_release(b);
        rate[r] = (double)n / ((crew_bench_now_us() - t0) / 1e6);
    }
    free(args);
    free(lens);
    return crew_bench_median(rate, s->map_repeats);
}

/* (c) Median µs of an 8 MB echo: submit (copy in), task writes via
 * crew_out_alloc + memcpy, read the result in place, release. */
static double bench_big(crew_pool *p, const settings *s)
{
    unsigned char *buf = malloc(BIG_BYTES);
    if (!buf)
        die("8 MB", -ENOMEM);
    for (size_t i = 0; i < BIG_BYTES; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    double t[64];
    for (int r = -1; r < s->big_repeats; r++) { /* r = -1: warm-up */
        double t0 = crew_bench_now_us();
        crew_future *f;
        int rc = crew_submit(p, "echo", buf, BIG_BYTES, &f);
        if (rc < 0)
            die("8 MB submit", rc);
        const unsigned char *res;
        size_t len;
        rc = crew_future_result(f, (const void **)&res, &len);
        if (rc != 0)
            die("8 MB echo", rc);
        if (len != BIG_BYTES || res[0] != buf[0] || res[len - 1] != buf[len - 1]) {
            fprintf(stderr, "bench_core: 8 MB echo came back wrong\n");
            exit(1);
        }
        crew_future_release(f);
        if (r >= 0)
            t[r] = crew_bench_now_us() - t0;
    }
    free(buf);
    return crew_bench_median(t, s->big_repeats);
}

/* (d) Median µs of create → first no-op result → free. */
static double bench_start(const config *c, const settings *s)
{
    double t[64];
    for (int r = 0; r < s->start_repeats; r++) {
        double t0 = crew_bench_now_us();
        crew_pool *p;
        int rc = make_pool(c, s->workers, &p);
        if (rc < 0)
            die("pool start", rc);
        if ((rc = one_noop(p)) != 0)
            die("first task", rc);
        crew_pool_free(p);
        t[r] = crew_bench_now_us() - t0;
    }
    return crew_bench_median(t, s->start_repeats);
}

/* Median µs of a bare fork() + _exit(0) + waitpid(). */
static double bench_bare_fork(int repeats)
{
    double t[64];
    for (int r = 0; r < repeats; r++) {
        double t0 = crew_bench_now_us();
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0)
            _exit(0);
        waitpid(pid, NULL, 0);
        t[r] = crew_bench_now_us() - t0;
    }
    return crew_bench_median(t, repeats);
}

/* Median µs of posix_spawn(argv) + waitpid(); -1 if it fails. */
static double bench_bare_spawn(char *const argv[], int repeats)
{
    double t[64];
    for (int r = 0; r < repeats; r++) {
        double t0 = crew_bench_now_us();
        pid_t pid;
        int status;
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
            return -1;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return -1;
        t[r] = crew_bench_now_us() - t0;
    }
    return crew_bench_median(t, repeats);
}

/* ----------------------------------------------------------------- report -- */

typedef struct row {
    char name[48], kind[16], unit[10], target[64];
    double value;              /* < 0: not measured                         */
} row;

static row rows[64];
static int nrows;

static row *add(const char *name, const char *kind, double value, const char *unit)
{
    row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->value = value;
    r->target[0] = 0;
    return r;
}

/* Fills r's vs-target column: ratio of its value to ref (lower is better). */
static void target_ratio(row *r, double ref, const char *what)
{
    if (r->value < 0 || ref <= 0)
        return;
    double x = r->value / ref;
    snprintf(r->target, sizeof r->target, "%.2fx %s (<= 1x) %s", x, what, x <= 1.0 ? "ok" : "MISS");
}

/* Appends to r's vs-target column its ratio to a second reference, ref. */
static void target_also(row *r, double ref, const char *what)
{
    if (r->value < 0 || ref <= 0 || !r->target[0])
        return;
    size_t n = strlen(r->target);
    snprintf(r->target + n, sizeof r->target - n, "; %.2fx %s", r->value / ref, what);
}

/* Fills r's vs-target column for a rate that must reach min. */
static void target_min_rate(row *r, double min)
{
    if (r->value < 0)
        return;
    snprintf(r->target, sizeof r->target, "%.2fx of %.1fM/s %s", r->value / min, min / 1e6,
             r->value >= min ? "ok" : "MISS");
}

static void print_table(const settings *s)
{
    printf("\n%-36s %-11s %14s %-8s %s\n", "benchmark", "kind", "value", "unit", "vs target");
    for (int i = 0; i < 96; i++)
        putchar('-');
    putchar('\n');
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        char v[32];
        if (r->value < 0)
            snprintf(v, sizeof v, "n/a");
        else if (r->value >= 1e5)
            snprintf(v, sizeof v, "%.0f", r->value);
        else
            snprintf(v, sizeof v, "%.2f", r->value);
        printf("%-36s %-11s %14s %-8s %s\n", r->name, r->kind, v, r->unit, r->target);
    }
    (void)s;
}

static void write_csv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_core: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(f, "benchmark,kind,value,unit,vs_target\n");
    for (int i = 0; i < nrows; i++)
        fprintf(f, "%s,%s,%.3f,%s,%s\n", rows[i].name, rows[i].kind, rows[i].value, rows[i].unit,
                rows[i].target);
    fclose(f);
}

/* ------------------------------------------------------------------- main -- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_core [--workers N] [--quick] [--csv FILE]\n");
    exit(2);
}

static settings parse_args(int argc, char **argv)
{
    settings s = {.workers = 2};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            s.quick = 1;
        else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            s.workers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc)
            s.csv = argv[++i];
        else
            usage();
    }
    if (s.workers < 1 || s.workers > 256)
        usage();
    if (s.quick) {
        s.rt_iters = 500, s.rt_repeats = 3;
        s.pipe_tasks = 20000, s.pipe_repeats = 3;
        s.map_items = 100000, s.map_repeats = 3;
        s.big_repeats = 3, s.start_repeats = 3;
        s.raw_iters = 2000, s.raw_repeats = 3;
    } else {
        s.rt_iters = 5000, s.rt_repeats = 7;
        s.pipe_tasks = 200000, s.pipe_repeats = 5;
        s.map_items = 1000000, s.map_repeats = 5;
        s.big_repeats = 15, s.start_repeats = 15;
        s.raw_iters = 20000, s.raw_repeats = 7;
    }
    return s;
}

int main(int argc, char **argv)
{
    crew_main(argc, argv); /* a spawned worker runs its loop here and never returns */
    if (argc == 2 && strcmp(argv[1], "--exit-at-once") == 0)
        return 0; /* the trivial mode that the bare posix_spawn baseline runs */
    settings s = parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("crew bench_core: %d workers, %d CPUs usable, %s; medians of repeats\n", s.workers,
           crew_cpu_count(), s.quick ? "quick counts" : "full counts");
    printf("(a) no-op round trip: %d x %d | (b) pipelined: %d x %d futures, map: %d x %d items\n",
           s.rt_repeats, s.rt_iters, s.pipe_repeats, s.pipe_tasks, s.map_repeats, s.map_items);
    printf("(c) 8 MB echo: %d | (d) start: %d | raw ping-pong: %d x %d\n", s.big_repeats,
           s.start_repeats, s.raw_repeats, s.raw_iters);

    /* raw baselines first, while this process has no pool and no threads */
    crew_bench_set_repeats(s.raw_repeats);
    double futex = crew_bench_futex_pingpong_us(s.raw_iters);
    double spin = crew_bench_spin_pingpong_us(s.raw_iters);
    double pipe = crew_bench_pipe_pingpong_us(s.raw_iters);
    double memcpy8 = crew_bench_memcpy_us(BIG_BYTES, s.quick ? 5 : 21);
    double copies24 = crew_bench_memcpy3_us(BIG_BYTES, s.quick ? 5 : 21);
    double bare_fork = bench_bare_fork(s.start_repeats);
    char *true_argv[] = {(char *)"/bin/true", NULL};
    char *self_argv[] = {(char *)"/proc/self/exe", (char *)"--exit-at-once", NULL};
    double spawn_true = bench_bare_spawn(true_argv, s.start_repeats);
    double spawn_self = bench_bare_spawn(self_argv, s.start_repeats);

    const config configs[] = {
        {"threads", CREW_THREADS, CREW_START_DEFAULT},
        {"proc/fork", CREW_PROCESSES, CREW_START_FORK},
        {"proc/spawn", CREW_PROCESSES, CREW_START_SPAWN},
        {"proc/fsrv", CREW_PROCESSES, CREW_START_FORKSERVER},
    };
    enum { NCONF = sizeof configs / sizeof configs[0] };
    double rt[NCONF], thr[NCONF], map[NCONF], big[NCONF], start[NCONF];
    for (int c = 0; c < NCONF; c++) {
        rt[c] = thr[c] = map[c] = big[c] = start[c] = -1;
        crew_pool *p;
        int rc = make_pool(&configs[c], s.workers, &p);
        if (rc < 0 || one_noop(p) != 0) {
            fprintf(stderr, "bench_core: %s pool does not work (%s): skipped\n", configs[c].label,
                    crew_strerror(rc));
            if (rc == 0)
                crew_pool_free(p);
            continue;
        }
        printf("measuring %s ...\n", configs[c].label);
        rt[c] = bench_round_trip(p, &s);
        thr[c] = bench_pipelined(p, &s);
        map[c] = bench_map(p, &s);
        big[c] = bench_big(p, &s);
        crew_pool_free(p);
        start[c] = bench_start(&configs[c], &s);
    }

    for (int c = 0; c < NCONF; c++) {
        row *r = add("(a) no-op round trip", configs[c].label, rt[c], "us");
        if (configs[c].kind == CREW_PROCESSES)
            target_ratio(r, futex, "futex");
    }
    for (int c = 0; c < NCONF; c++)
        target_min_rate(add("(b) pipelined no-op submit+wait_all", configs[c].label, thr[c],
                            "tasks/s"), 2e6);
    for (int c = 0; c < NCONF; c++)
        target_min_rate(add("(b) crew_map no-op (auto chunks)", configs[c].label, map[c],
                            "tasks/s"), 2e6);
    /* the second reference: the echo's two copies over the three 8 MB
     * buffers it touches (24 MB), where the first one copies between two
     * warm buffers (16 MB); the gap between them is the cache, not crew */
    for (int c = 0; c < NCONF; c++) {
        row *r = add("(c) 8 MB echo round trip", configs[c].label, big[c], "us");
        target_ratio(r, 2 * memcpy8, "2 x memcpy");
        target_also(r, copies24, "3-buf");
    }
    for (int c = 0; c < NCONF; c++)
        add("(d) create + first result + free", configs[c].label, start[c], "us");
    add("(d) bare fork + _exit + waitpid", "raw", bare_fork, "us");
    add("(d) bare posix_spawn /bin/true", "raw", spawn_true, "us");
    add("(d) bare posix_spawn self (exits)", "raw", spawn_self, "us");
    add("futex ping-pong round trip", "raw", futex, "us");
    add("spin ping-pong round trip", "raw", spin, "us");
    add("pipe ping-pong round trip", "raw", pipe, "us");
    add("memcpy 8 MB", "raw", memcpy8, "us");
    add("2 x memcpy 8 MB, 3 buffers", "raw", copies24, "us");

    print_table(&s);
    if (s.csv)
        write_csv(s.csv);
    return 0;
}
