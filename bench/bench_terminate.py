"""bench_terminate.py — how long Pool.terminate() (and leaving a `with` block) takes with a long queue: crew.Pool beside multiprocessing.Pool.

    .venv/bin/python bench/bench_terminate.py [--items 100000,1000000] [--reps 3]

Each round: a pool of 2 workers, one task that sleeps, then `items` queued
apply_async calls of a no-op (none can start), then terminate(), timed
(lower is better). "settled" is how long after terminate() returned every
queued crew result was ready (cancelled): crew settles them on a background
thread; multiprocessing.Pool never settles them (waiting on one hangs).
Medians of the repeats, the two pools alternating.
"""
import argparse
import multiprocessing as mp
import statistics
import time

import crew


def noop(x):
    return x


def nap(s):
    time.sleep(s)


def one(make, n, settle):
    p = make()
    p.apply_async(nap, (30,))
    rs = [p.apply_async(noop, (i,)) for i in range(n)]
    t = time.perf_counter()
    p.terminate()
    dt = time.perf_counter() - t
    done = None
    if settle:
        for r in rs:
            r.wait(120)
        done = time.perf_counter() - t - dt
    p.join()
    return dt, done


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    pools = (("crew.Pool", lambda: crew.Pool(2), True),
             ("multiprocessing.Pool", lambda: mp.get_context("forkserver").Pool(2), False))
    print(f"{'queued':>9} {'pool':>22} {'terminate()':>12} {'settled after':>14}")
    for n in (int(x) for x in a.items.split(",")):
        got = {name: [] for name, _, _ in pools}
        for r in range(a.reps):
            for name, make, settle in (pools if r % 2 == 0 else pools[::-1]):
                got[name].append(one(make, n, settle))
        for name, _, settle in pools:
            t = statistics.median(x[0] for x in got[name])
            s = statistics.median(x[1] for x in got[name]) if settle else None
            print(f"{n:>9} {name:>22} {t * 1e3:>9.1f} ms "
                  + (f"{s * 1e3:>11.0f} ms" if s is not None else f"{'never':>14}"), flush=True)


if __name__ == "__main__":
    main()
