"""crew beside Python's pools, in one run, printing one table.

    .venv/bin/python bench/bench_py.py [--quick]

Rows: no-op round trip (us), submit throughput (tasks/s), chunked map
throughput (items/s), 8 MB numpy argument (ms per call), CPU-bound speedup
on all cores (x), pool start (ms: create, first result, shut down).
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import crew  # noqa: E402

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def noop(x=None):
    return x


def nbytes(a):
    return a.nbytes


def spin(n):
    s = 0
    for i in range(n):
        s += i
    return s


class Impl:
    def __init__(self, name, make, submit, map_, close, proc=True):
        self.name, self.make, self.submit, self.map, self.close, self.proc = (
            name, make, submit, map_, close, proc)


def impls(n, method):
    out = [
        Impl("crew processes", lambda: crew.Executor(n, start_method=method),
             lambda p, f, *a: p.submit(f, *a), lambda p, f, it, c: list(p.map(f, it, chunksize=c)),
             lambda p: p.shutdown()),
        Impl("crew threads", lambda: crew.Executor(n, kind="threads"),
             lambda p, f, *a: p.submit(f, *a), lambda p, f, it, c: list(p.map(f, it, chunksize=c)),
             lambda p: p.shutdown(), proc=False),
        Impl("multiprocessing.Pool", lambda: mp.get_context(method).Pool(n),
             lambda p, f, *a: _AR(p.apply_async(f, a)), lambda p, f, it, c: p.map(f, it, c),
             lambda p: (p.close(), p.join())),
        Impl("ProcessPoolExecutor",
             lambda: cf.ProcessPoolExecutor(n, mp_context=mp.get_context(method)),
             lambda p, f, *a: p.submit(f, *a), lambda p, f, it, c: list(p.map(f, it, chunksize=c)),
             lambda p: p.shutdown()),
        Impl("ThreadPoolExecutor", lambda: cf.ThreadPoolExecutor(n),
             lambda p, f, *a: p.submit(f, *a), lambda p, f, it, c: list(p.map(f, it)),
             lambda p: p.shutdown(), proc=False),
    ]
    try:
        from joblib.externals.loky import get_reusable_executor
        out.append(Impl("joblib/loky", lambda: get_reusable_executor(n, reuse=False),
                        lambda p, f, *a: p.submit(f, *a),
                        lambda p, f, it, c: list(p.map(f, it, chunksize=c)),
                        lambda p: p.shutdown()))
    except ImportError:
        pass
    try:
        import pebble
        out.append(Impl("pebble", lambda: pebble.ProcessPool(n, context=mp.get_context(method)),
                        lambda p, f, *a: p.schedule(f, a),
                        lambda p, f, it, c: list(p.map(f, it, chunksize=c).result()),
                        lambda p: (p.close(), p.join())))
    except ImportError:
        pass
    return out


class _AR:
    def __init__(self, r):
        self.r = r

    def result(self):
        return self.r.get()


def timeit(fn, budget):
    """Runs fn repeatedly for about `budget` seconds; returns seconds per call (best of 3 runs)."""
    fn()
    best = None
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t > budget / 3:
                break
        best = t / n if best is None else min(best, t / n)
    return best


def run(quick=False):
    n = crew.cpu_count()
    method = "forkserver"
    budget = 0.3 if quick else 1.0
    ntp = 2000 if quick else 10000
    nmap = 20000 if quick else 200000
    work = 2_000_000 if quick else 5_000_000
    rows = {}
    cols = []
    t1 = timeit(lambda: spin(work), budget)     # serial time of one CPU task
    arr = np.ones(1 << 20) if np is not None else None   # 8 MB
    for im in impls(n, method):
        cols.append(im.name)
        r = {}
        t0 = time.perf_counter()
        p = im.make()
        im.submit(p, noop, 1).result()
        im.close(p)
        r["pool start (ms)"] = (time.perf_counter() - t0) * 1e3
        p = im.make()
        try:
            im.submit(p, noop, 1).result()
            r["no-op round trip (us)"] = timeit(lambda: im.submit(p, noop, 1).result(), budget) * 1e6
            t0 = time.perf_counter()
            fs = [im.submit(p, noop, i) for i in range(ntp)]
            for f in fs:
                f.result()
            r["submit throughput (tasks/s)"] = ntp / (time.perf_counter() - t0)
            chunk = max(1, nmap // (n * 4))
            t0 = time.perf_counter()
            im.map(p, noop, range(nmap), chunk)
            r["chunked map (items/s)"] = nmap / (time.perf_counter() - t0)
            if arr is not None:
                r["8 MB numpy arg (ms)"] = timeit(lambda: im.submit(p, nbytes, arr).result(),
                                                  budget) * 1e3
            k = 2 * n
            t0 = time.perf_counter()
            fs = [im.submit(p, spin, work) for _ in range(k)]
            for f in fs:
                f.result()
            r["CPU-bound speedup (x)"] = k * t1 / (time.perf_counter() - t0)
        finally:
            im.close(p)
        for key, v in r.items():
            rows.setdefault(key, {})[im.name] = v
        print(f"  done: {im.name}", file=sys.stderr)

    w = max(len(c) for c in cols) + 2
    head = f"{'':30}" + "".join(f"{c:>{w}}" for c in cols)
    print(f"crew Python benchmark: {n} CPUs, start method {method}, Python {sys.version.split()[0]}")
    print(head)
    for key, vals in rows.items():
        print(f"{key:30}" + "".join(f"{_fmt(vals.get(c)):>{w}}" for c in cols))
    # targets, as ratios in this run
    peers = [im for im in impls(n, method) if im.proc and not im.name.startswith("crew")]
    pn = [im.name for im in peers]

    def best(key, low):
        vs = [rows[key][c] for c in pn if c in rows.get(key, {})]
        return (min(vs) if low else max(vs)) if vs else None
    me = "crew processes"
    print("\ntargets (crew processes vs the best process-pool peer):")
    checks = [
        ("round trip >= 10x", best("no-op round trip (us)", True) / rows["no-op round trip (us)"][me], 10),
        ("submit throughput >= 10x", rows["submit throughput (tasks/s)"][me] / best("submit throughput (tasks/s)", False), 10),
    ]
    if arr is not None:
        checks.append(("8 MB numpy arg >= 15x", best("8 MB numpy arg (ms)", True) / rows["8 MB numpy arg (ms)"][me], 15))
    checks.append(("CPU speedup >= 95% of cores", rows["CPU-bound speedup (x)"][me] / n, 0.95))
    checks.append(("pool start <= multiprocessing.Pool", rows["pool start (ms)"]["multiprocessing.Pool"] / rows["pool start (ms)"][me], 1.0))
    for name, ratio, target in checks:
        print(f"  {name:38} {ratio:8.2f}  {'ok' if ratio >= target else 'MISSED'}")


def _fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


if __name__ == "__main__":
    run("--quick" in sys.argv)
