"""bench_oversub.py — more workers than cores, two pools at once, and what idle workers cost: crew beside multiprocessing.Pool, interleaved, medians.

    .venv/bin/python bench/bench_oversub.py [--reps 5] [--workers 2,4,8,32] [--idle 10]

Throughput (tasks per second, higher is better) of a batch of no-op calls and
of a batch of 1 ms CPU calls (each submitted one by one, then all waited
for), on process pools of each size, crew and multiprocessing.Pool in turn
(the order alternates). "two pools" runs the same batches on two pools of
cpu_count() workers at once, from two threads, and reports their summed
throughput. "idle" is the CPU time (parent and workers, user + system) a
warm pool of the largest size burns while nothing is submitted, over
--idle seconds: a pool whose workers spin would show it here.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import threading
import time

import crew


def noop(x):
    return x


def burn(x):
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return x


class Crew:
    name = "crew"

    def __init__(self, n):
        self.p = crew.Executor(n)

    def batch(self, fn, k):
        for f in [self.p.submit(fn, i) for i in range(k)]:
            f.result()

    def pids(self):
        return [w["pid"] for w in self.p.stats()["workers"]]

    def close(self):
        self.p.shutdown()


class MpPool:
    name = "multiprocessing.Pool"

    def __init__(self, n):
        self.p = mp.get_context("forkserver").Pool(n)

    def batch(self, fn, k):
        for r in [self.p.apply_async(fn, (i,)) for i in range(k)]:
            r.get()

    def pids(self):
        return [w.pid for w in self.p._pool]

    def close(self):
        self.p.terminate()
        self.p.join()


def rate(pool, fn, k):
    t = time.perf_counter()
    pool.batch(fn, k)
    return k / (time.perf_counter() - t)


def cpu_seconds(pids):
    """User + system CPU seconds of these processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def two_at_once(cls, n, fn, k):
    pools = [cls(n), cls(n)]
    try:
        for p in pools:
            p.batch(noop, 200)
        out = [0.0, 0.0]

        def go(i):
            out[i] = rate(pools[i], fn, k)
        ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(out)
    finally:
        for p in pools:
            p.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workers", default="2,4,8,32")
    ap.add_argument("--noops", type=int, default=3000)
    ap.add_argument("--cpu-calls", type=int, default=300)
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args()
    kinds = (Crew, MpPool)
    print(f"{os.cpu_count()} CPUs ({crew.cpu_count()} usable); medians of {a.reps}, interleaved")
    print(f"{'workers':>9} {'workload':>10} {'crew':>12} {'mp.Pool':>12} {'crew/mp':>8}")
    sizes = [int(x) for x in a.workers.split(",")]
    for n in sizes:
        pools = {c.name: c(n) for c in kinds}
        try:
            for p in pools.values():
                p.batch(noop, 500)
            for fn, k, label in ((noop, a.noops, "no-op"), (burn, a.cpu_calls, "1 ms CPU")):
                got = {c.name: [] for c in kinds}
                for r in range(a.reps):
                    for c in (kinds if r % 2 == 0 else kinds[::-1]):
                        got[c.name].append(rate(pools[c.name], fn, k))
                c_, m_ = (statistics.median(got[c.name]) for c in kinds)
                print(f"{n:>9} {label:>10} {c_:>10.0f}/s {m_:>10.0f}/s {c_ / m_:>7.2f}x", flush=True)
        finally:
            for p in pools.values():
                p.close()
    n = crew.cpu_count()
    for fn, k, label in ((noop, a.noops, "no-op"), (burn, a.cpu_calls, "1 ms CPU")):
        got = {c.name: [] for c in kinds}
        for r in range(max(1, a.reps // 2)):
            for c in (kinds if r % 2 == 0 else kinds[::-1]):
                got[c.name].append(two_at_once(c, n, fn, k))
        c_, m_ = (statistics.median(got[c.name]) for c in kinds)
        print(f"{'2 pools':>9} {label:>10} {c_:>10.0f}/s {m_:>10.0f}/s {c_ / m_:>7.2f}x  "
              f"(two pools of {n} at once, summed)", flush=True)
    if a.idle > 0:
        n = max(sizes)
        pools = {c.name: c(n) for c in kinds}
        try:
            for p in pools.values():
                p.batch(noop, 2000)
            time.sleep(0.2)
            me = [os.getpid()]
            before = {k: cpu_seconds(p.pids()) for k, p in pools.items()}
            parent = cpu_seconds(me)
            t = time.perf_counter()
            time.sleep(a.idle)
            dt = time.perf_counter() - t
            for k, p in pools.items():
                print(f"idle, {n} workers of {k}: {cpu_seconds(p.pids()) - before[k]:.2f} CPU s "
                      f"over {dt:.1f} s")
            print(f"idle, this process (both pools' threads): {cpu_seconds(me) - parent:.2f} CPU s "
                  f"over {dt:.1f} s")
        finally:
            for p in pools.values():
                p.close()


if __name__ == "__main__":
    main()
