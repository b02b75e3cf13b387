/* Prints raw cross-process IPC and memcpy baselines (see raw.h); `--quick` for a short run. */
#include "raw.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int iters = quick ? 2000 : 20000;
    int repeats = quick ? 3 : 7;
    size_t mb8 = 8u << 20;

    crew_bench_set_repeats(repeats);
    printf("raw baselines (median of %d repeats x %d round trips)\n", repeats, iters);
    printf("%-28s %10s\n", "benchmark", "us");
    printf("%-28s %10.2f\n", "futex ping-pong round trip", crew_bench_futex_pingpong_us(iters));
    printf("%-28s %10.2f\n", "spin ping-pong round trip", crew_bench_spin_pingpong_us(iters));
    printf("%-28s %10.2f\n", "pipe ping-pong round trip", crew_bench_pipe_pingpong_us(iters));
    printf("%-28s %10.2f\n", "memcpy 8 MB", crew_bench_memcpy_us(mb8, quick ? 5 : 21));
    return 0;
}
