/* bench_shared.c — C-side figures for shared state: queue messages/s (1->1, 2->2), pipe round trip, dict reads/writes/s. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crew.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_shared: %s: %s\n", what, crew_strerror(rc));
    exit(1);
}

#define MSG 64

/* Messages/s through one queue with np producer and nc consumer processes. */
static double queue_rate(int np, int nc, long total)
{
    crew_queue *q;
    int rc = crew_queue_create(&q, 0, 1 << 20);
    if (rc)
        die("queue", rc);
    pid_t pids[8];
    int n = 0;
    double t0 = now();
    for (int i = 0; i < np; i++)
        if ((pids[n++] = fork()) == 0) {
            char m[MSG] = {0};
            for (long k = 0; k < total / np; k++)
                if (crew_queue_put(q, m, MSG, -1))
                    _exit(1);
            _exit(0);
        }
    for (int i = 0; i < nc; i++)
        if ((pids[n++] = fork()) == 0) {
            char m[MSG];
            size_t len;
            for (long k = 0; k < total / nc; k++)
                if (crew_queue_get(q, m, MSG, &len, -1))
                    _exit(1);
            _exit(0);
        }
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            die("a queue child failed", -1);
    }
    double dt = now() - t0;
    crew_queue_free(q);
    return (double)total / dt;
}

/* Microseconds per send+recv round trip with a child echoing. */
static double pipe_rtt(long rounds)
{
    crew_pipe *a, *b;
    int rc = crew_pipe_create(&a, &b, 1 << 16);
    if (rc)
        die("pipe", rc);
    pid_t c = fork();
    if (c == 0) {
        char m[MSG];
        size_t len;
        while (crew_pipe_recv(b, m, sizeof m, &len, -1) == 0)
            if (crew_pipe_send(b, m, len, -1))
                break;
        _exit(0);
    }
    char m[MSG] = {0};
    size_t len;
    for (int i = 0; i < 1000; i++) /* warm up */
        crew_pipe_send(a, m, MSG, -1), crew_pipe_recv(a, m, MSG, &len, -1);
    double t0 = now();
    for (long i = 0; i < rounds; i++) {
        crew_pipe_send(a, m, MSG, -1);
        crew_pipe_recv(a, m, MSG, &len, -1);
    }
    double dt = now() - t0;
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    crew_pipe_free(a);
    crew_pipe_free(b);
    return dt / (double)rounds * 1e6;
}

static void dict_rates(long n, double *writes, double *reads)
{
    crew_dict *d;
    int rc = crew_dict_create(&d, 20000, 64 << 20);
    if (rc)
        die("dict", rc);
    char k[16], v[64] = {0};
    double t0 = now();
    for (long i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%ld", i % 10000);
        if ((rc = crew_dict_set(d, k, (size_t)kl, v, sizeof v)))
            die("dict_set", rc);
    }
    *writes = (double)n / (now() - t0);
    size_t vl;
    t0 = now();
    for (long i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key%ld", i % 10000);
        if ((rc = crew_dict_get(d, k, (size_t)kl, v, sizeof v, &vl)))
            die("dict_get", rc);
    }
    *reads = (double)n / (now() - t0);
    crew_dict_free(d);
}

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    printf("crew shared state, C side (64-byte payloads; %d CPUs)\n", crew_cpu_count());
    printf("  queue 1->1        %12.0f msgs/s\n", queue_rate(1, 1, 1000000 * scale));
    printf("  queue 2->2        %12.0f msgs/s\n", queue_rate(2, 2, 1000000 * scale));
    printf("  pipe round trip   %12.2f us\n", pipe_rtt(100000 * scale));
    double w, r;
    dict_rates(1000000 * scale, &w, &r);
    printf("  dict writes       %12.0f /s\n", w);
    printf("  dict reads        %12.0f /s\n", r);
    return 0;
}
