"""kind="auto" against threads only and processes only: each workload alone, then a mixed batch; same run, interleaved, medians.

    .venv/bin/python bench/bench_auto.py [--reps 5] [--cpu-ms 20] [--json FILE]

Every repeat makes fresh executors of the three kinds (pools started and
warmed before the clock starts), then times each workload on each, in a
rotating order. A fresh kind="auto" executor has measured nothing yet, so
its time includes the measuring (its trial runs). Workloads:

    cpu    pure-Python loop (holds the GIL), 8 calls per worker
    hash   hashlib.sha256 over 2 MB, three times (releases the GIL)
    io     time.sleep(20 ms), standing for a request (waits)
    tiny   x + 1 (far below a process round trip), 2000 calls
    mixed  all four at once, in one pool

Thread pools have max(32, 4 x CPUs) workers (as kind="auto" does); process
pools one per usable CPU. Ratios are auto's time against the better fixed
kind's: above 1.0, auto was faster.
"""
import argparse
import hashlib
import json
import os
import statistics
import sys
import time

import crew


def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x


def digest(data):
    h = None
    for _ in range(3):
        h = hashlib.sha256(data).digest()
    return h


def nap(s):
    time.sleep(s)
    return s


def tiny(x):
    return x + 1


def calibrate(seconds):
    n = 200_000
    best = min(_timed(lambda: spin(n)) for _ in range(3))
    return max(20_000, int(n * seconds / best))


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def workloads(cpu_n, workers):
    data = b"z" * (2 << 20)
    w = {
        "cpu": [(spin, (cpu_n,))] * (8 * workers),
        "hash": [(digest, (data,))] * (8 * workers),
        "io": [(nap, (0.02,))] * 48,
        "tiny": [(tiny, (i,)) for i in range(2000)],
    }
    w["mixed"] = [c for k in ("cpu", "io", "hash", "tiny") for c in w[k]]
    return w


def run_batch(ex, calls):
    fs = [ex.submit(fn, *a) for fn, a in calls]
    for f in fs:
        f.result()


KINDS = ("threads", "processes", "auto")


def make(kind, workers, threads):
    if kind == "threads":
        return crew.Executor(threads, kind="threads")
    if kind == "processes":
        return crew.Executor(workers)
    return crew.Executor(workers, kind="auto", max_threads=threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cpu-ms", type=float, default=20.0, help="one cpu call, in ms")
    ap.add_argument("--only", action="append", help="only this workload (repeatable)")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    workers = crew.cpu_count()
    threads = min(256, max(32, 4 * workers))
    cpu_n = calibrate(a.cpu_ms / 1e3)
    loads = workloads(cpu_n, workers)
    names = [n for n in loads if not a.only or n in a.only]
    times = {(n, k): [] for n in names for k in KINDS}
    tables = []
    print(f"bench_auto: {workers} usable CPUs, Python {sys.version.split()[0]}, {a.reps} repeats, "
          f"cpu call spin({cpu_n:,}) ~{a.cpu_ms:.0f} ms", flush=True)
    for rep in range(a.reps):
        order = KINDS[rep % 3:] + KINDS[:rep % 3]
        for kind in order:
            for n in names:
                with make(kind, workers, threads) as ex:   # fresh: auto measures anew
                    list(ex.map(abs, range(4 * threads)))   # workers up before the clock
                    if kind != "threads":
                        ex.options(kind="processes").submit(abs, 1).result() \
                            if kind == "auto" else ex.submit(abs, 1).result()
                    t = _timed(lambda: run_batch(ex, loads[n]))
                    times[(n, kind)].append(t)
                    if kind == "auto" and rep == a.reps - 1 and n == "mixed":
                        tables.append(str(ex.placement()))
        print(f"  repeat {rep + 1}/{a.reps} done", flush=True)
    rows = []
    print()
    print(f"{'workload':8} {'threads':>10} {'processes':>10} {'auto':>10} {'best fixed':>11} "
          f"{'auto vs best':>13}")
    for n in names:
        med = {k: statistics.median(times[(n, k)]) for k in KINDS}
        best = min(("threads", "processes"), key=lambda k: med[k])
        ratio = med[best] / med["auto"]
        rows.append({"workload": n, **{k + "_s": med[k] for k in KINDS}, "best_fixed": best,
                     "auto_vs_best": ratio, "all": {k: times[(n, k)] for k in KINDS}})
        print(f"{n:8} {med['threads'] * 1e3:8.1f}ms {med['processes'] * 1e3:8.1f}ms "
              f"{med['auto'] * 1e3:8.1f}ms {best:>11} {ratio:12.2f}x")
    if tables:
        print("\nplacement after the last mixed batch (kind='auto'):")
        print(tables[-1])
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu_count": workers, "python": sys.version, "reps": a.reps,
                       "cpu_n": cpu_n, "rows": rows, "load": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
