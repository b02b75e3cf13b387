"""bench_thread_handover.py — what a thread pool costs per tiny call: crew.Executor(kind="threads") against ThreadPoolExecutor at several worker counts, interleaved, medians.

    .venv/bin/python bench/bench_thread_handover.py [--reps 5] [--calls 2000] [--workers 2,6,32]

Each repeat submits a batch of `calls` calls of x + 1 and waits for all of
them, on a warm pool of each kind in turn (the order alternates). The figure
is microseconds per call (lower is better); the ratio is ThreadPoolExecutor's
time over crew's (above 1.0, crew was faster). This is the hand-over of a call
to a thread and of its result back: kind="auto"'s tiny calls ride on it.
"""
import argparse
import concurrent.futures as cf
import statistics
import time

import crew


def tiny(x):
    return x + 1


def batch(ex, calls):
    t = time.perf_counter()
    for f in [ex.submit(tiny, i) for i in range(calls)]:
        f.result()
    return (time.perf_counter() - t) / calls * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--workers", default="2,6,32")
    a = ap.parse_args()
    print(f"{'workers':>7} {'crew threads':>13} {'ThreadPoolExecutor':>19} {'TPE/crew':>9}")
    for w in (int(x) for x in a.workers.split(",")):
        pools = {"crew": crew.Executor(w, kind="threads"), "tpe": cf.ThreadPoolExecutor(w)}
        try:
            for ex in pools.values():
                batch(ex, 500)
            got = {k: [] for k in pools}
            for r in range(a.reps):
                for k in (("crew", "tpe") if r % 2 == 0 else ("tpe", "crew")):
                    got[k].append(batch(pools[k], a.calls))
        finally:
            for ex in pools.values():
                ex.shutdown()
        c, t = statistics.median(got["crew"]), statistics.median(got["tpe"])
        print(f"{w:>7} {c:>10.1f} us {t:>16.1f} us {t / c:>8.2f}x")


if __name__ == "__main__":
    main()
