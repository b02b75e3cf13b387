"""The Python hot path, crew beside the process-pool peers in one run.

    .venv/bin/python bench/bench_hot.py [--reps N] [--n 20000] [--only crew]

Per implementation, interleaved rounds (so that load from other programs
hits all alike): no-op round trip (submit one, wait for its result; us) and
submit throughput (submit N no-ops, then wait for all; tasks/s). Prints the
medians over the rounds and crew's ratios to the best peer.
"""
import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import crew  # noqa: E402
from crew._cli.bench import _AR  # noqa: E402  (AsyncResult with .result())


def noop(x=None):
    return x


def makers(n, method):
    return {
        "crew": (lambda: crew.Executor(n, start_method=method),
                 lambda p, *a: p.submit(noop, *a), lambda p: p.shutdown()),
        "mp.Pool": (lambda: mp.get_context(method).Pool(n),
                    lambda p, *a: _AR(p.apply_async(noop, a)), lambda p: (p.close(), p.join())),
        "PPE": (lambda: cf.ProcessPoolExecutor(n, mp_context=mp.get_context(method)),
                lambda p, *a: p.submit(noop, *a), lambda p: p.shutdown()),
    }


def round_trip(p, submit, budget):
    n, t0 = 0, time.perf_counter()
    while True:
        submit(p, 1).result()
        n += 1
        t = time.perf_counter() - t0
        if t > budget:
            return t / n * 1e6


def throughput(p, submit, ntp):
    t0 = time.perf_counter()
    fs = [submit(p, i) for i in range(ntp)]
    for f in fs:
        f.result()
    return ntp / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--only", default=None, help="comma-separated names")
    ap.add_argument("--method", default="forkserver")
    a = ap.parse_args()
    ncpu = crew.cpu_count()
    ms = makers(ncpu, a.method)
    if a.only:
        ms = {k: v for k, v in ms.items() if k in a.only.split(",")}
    pools = {}
    for name, (make, submit, _) in ms.items():
        pools[name] = make()
        for _ in range(200):
            submit(pools[name], 1).result()
    rt = {k: [] for k in ms}
    tp = {k: [] for k in ms}
    try:
        for _ in range(a.reps):
            for name, (_, submit, _) in ms.items():
                rt[name].append(round_trip(pools[name], submit, a.budget))
                tp[name].append(throughput(pools[name], submit, a.n))
    finally:
        for name, (_, _, close) in ms.items():
            close(pools[name])
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{ncpu} CPUs, load {load}, {a.reps} rounds, medians (min-max)")
    for name in ms:
        print(f"  {name:8} round trip {statistics.median(rt[name]):7.1f} us "
              f"({min(rt[name]):.1f}-{max(rt[name]):.1f})   "
              f"throughput {statistics.median(tp[name]):9,.0f}/s "
              f"({min(tp[name]):,.0f}-{max(tp[name]):,.0f})")
    peers = [k for k in ms if k != "crew"]
    if "crew" in ms and peers:
        brt = min(statistics.median(rt[k]) for k in peers)
        btp = max(statistics.median(tp[k]) for k in peers)
        print(f"  crew vs best peer: round trip {brt / statistics.median(rt['crew']):.1f}x, "
              f"throughput {statistics.median(tp['crew']) / btp:.1f}x")


if __name__ == "__main__":
    main()
