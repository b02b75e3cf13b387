"""crew beside Python's pools, in one run, printing one table.

    .venv/bin/python bench/bench_py.py [--quick] [--peers crew-processes,mp-pool,...]

One row per peer (the adapters of crew/_cli/peers.py, as `python -m crew
bench` drives them): pool start (ms: create, first result, shut down, after
one warm-up start), no-op round trip (us), submit throughput (tasks/s),
chunked map throughput (items/s), 8 MB numpy argument (ms per call),
CPU-bound speedup on all cores (x). A peer that is not installed or fails is
a row that says so. Ray, if installed, is started once (after the other peers
are measured) and its ray.init + ray.shutdown are added to its pool start.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import crew  # noqa: E402
from crew._cli.peers import PEERS, RAY, is_ray, shutdown_runtimes  # noqa: E402
from crew._cli.tasks import nbytes, noop, spin  # noqa: E402

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

COLS = ["pool start (ms)", "round trip (us)", "submit (tasks/s)", "map (items/s)",
        "8 MB numpy (ms)", "CPU speedup (x)"]
LOWER = {"pool start (ms)", "round trip (us)", "8 MB numpy (ms)"}


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


def measure(peer, n, method, quick, t1, work, arr):
    budget = 0.3 if quick else 1.0
    ntp = 2000 if quick else 10000
    nmap = 20000 if quick else 200000
    r = {"pool start (ms)": peer.start_samples(n, method, 1)[0]}
    p = peer.make(n, method)
    try:
        peer.submit(p, noop, 1).result()
        r["round trip (us)"] = timeit(lambda: peer.submit(p, noop, 1).result(), budget) * 1e6
        t0 = time.perf_counter()
        fs = [peer.submit(p, noop, i) for i in range(ntp)]
        for f in fs:
            f.result()
        r["submit (tasks/s)"] = ntp / (time.perf_counter() - t0)
        chunk = max(1, nmap // (n * 4))
        t0 = time.perf_counter()
        out = peer.map(p, noop, range(nmap), chunk)
        r["map (items/s)"] = nmap / (time.perf_counter() - t0)
        assert len(out) == nmap and out[-1] == nmap - 1
        if arr is not None:
            r["8 MB numpy (ms)"] = timeit(lambda: peer.submit(p, nbytes, arr).result(), budget) * 1e3
        k = 2 * n
        t0 = time.perf_counter()
        fs = [peer.submit(p, spin, work) for _ in range(k)]
        for f in fs:
            f.result()
        r["CPU speedup (x)"] = k * t1 / (time.perf_counter() - t0)
    finally:
        peer.close(p)
    return r


def run(quick=False, peers=None):
    n = crew.cpu_count()
    method = "forkserver"
    work = 500_000 if quick else 1_500_000
    t0 = time.perf_counter()
    spin(work)
    t1 = time.perf_counter() - t0               # serial time of one CPU task
    arr = np.ones(1 << 20) if np is not None else None   # 8 MB
    names = peers or list(PEERS)
    rows, why = {}, {}
    try:
        for name in sorted(names, key=is_ray):  # Ray last: its daemons load the machine
            ok, reason = PEERS[name].available()
            if not ok:
                why[name] = reason
                continue
            try:
                rows[name] = measure(PEERS[name], n, method, quick, t1, work, arr)
            except Exception as e:
                why[name] = f"failed: {type(e).__name__}: {e}"
            print(f"  done: {PEERS[name].name}", file=sys.stderr)
    finally:
        shutdown_runtimes()
    if RAY.once_ms() is not None:
        for name in rows:
            if is_ray(name):
                rows[name]["pool start (ms)"] += RAY.once_ms()

    print(f"crew Python benchmark: {n} CPUs, start method {method}, Python {sys.version.split()[0]}")
    w = max(len(PEERS[x].name) for x in names) + 2
    print(f"{'':{w}}" + "".join(f"{c:>18}" for c in COLS))
    for name in names:
        if name in rows:
            print(f"{PEERS[name].name:{w}}" + "".join(f"{_fmt(rows[name].get(c)):>18}" for c in COLS))
        else:
            print(f"{PEERS[name].name:{w}}  {why.get(name, '')}")
    if RAY.init_ms is not None:
        print(f"Ray: ray.init {RAY.init_ms / 1e3:.2f} s + ray.shutdown "
              f"{(RAY.shutdown_ms or 0) / 1e3:.2f} s, counted in its pool start")
    # targets, as ratios in this run
    me = "crew-processes"
    ref = [x for x in rows if PEERS[x].kind == "process" and not x.startswith("crew")]
    if me not in rows or not ref:
        return

    def best(col):
        vs = [rows[x][col] for x in ref if col in rows[x]]
        return (min(vs) if col in LOWER else max(vs)) if vs else None

    def ratio(col):
        b, v = best(col), rows[me].get(col)
        if b is None or v is None:
            return None
        return b / v if col in LOWER else v / b
    print("\ntargets (crew processes vs the best process-pool peer):")
    checks = [("round trip >= 10x", ratio("round trip (us)"), 10),
              ("submit throughput >= 10x", ratio("submit (tasks/s)"), 10),
              ("8 MB numpy arg >= 15x", ratio("8 MB numpy (ms)"), 15),
              ("CPU speedup >= 95% of cores", rows[me]["CPU speedup (x)"] / n, 0.95)]
    if "mp-pool" in rows:
        checks.append(("pool start <= multiprocessing.Pool",
                       rows["mp-pool"]["pool start (ms)"] / rows[me]["pool start (ms)"], 1.0))
    for name, r, target in checks:
        if r is not None:
            print(f"  {name:38} {r:8.2f}  {'ok' if r >= target else 'MISSED'}")


def _fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peers", default=None, help=f"comma-separated, from: {','.join(PEERS)}")
    a = ap.parse_args()
    sel = a.peers.split(",") if a.peers else None
    if sel and set(sel) - set(PEERS):
        ap.error(f"unknown peer {','.join(set(sel) - set(PEERS))}")
    run(a.quick, sel)
