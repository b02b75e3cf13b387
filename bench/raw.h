/* Raw IPC/memory baselines (futex, spin, pipe ping-pong; memcpy) with no libcrew dependency. */
#ifndef CREW_BENCH_RAW_H
#define CREW_BENCH_RAW_H

#include <stddef.h>

/* Microseconds on CLOCK_MONOTONIC. */
double crew_bench_now_us(void);

/* Median of v[0..n) (sorts v in place). */
double crew_bench_median(double *v, int n);

/* Number of timed repeats each function takes the median over (default 7). */
void crew_bench_set_repeats(int repeats);

/* Median round trip in µs between two forked processes; -1 on error. */
double crew_bench_futex_pingpong_us(int iters);
double crew_bench_spin_pingpong_us(int iters);
double crew_bench_pipe_pingpong_us(int iters);

/* Median time in µs of one memcpy of `bytes` between warm buffers, over `iters` copies. */
double crew_bench_memcpy_us(size_t bytes, int iters);

/* Median time in µs of the two copies an echo of `bytes` makes, over the
 * three buffers it touches: a -> b, then b -> c, on this CPU, over `iters`
 * rounds (the same buffers each round, as an echo reuses its arena runs).
 * -1 when out of memory. */
double crew_bench_memcpy3_us(size_t bytes, int iters);

#endif /* CREW_BENCH_RAW_H */
