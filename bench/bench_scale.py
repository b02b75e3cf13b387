"""How crew scales with workers beside multiprocessing.Pool, loky and mpire: CPU-bound speed-up, submit throughput and map throughput at 1, 2, 4, ... workers.

    .venv/bin/python bench/bench_scale.py [--workers 1,2,4,8,16] [--reps 3] [--out DIR]

Per worker count, every peer runs each workload in turn, repeated --reps times
interleaved (crew, peer, peer, crew, ...); figures are medians. The CPU-bound
speed-up is against the same task run serially just before (3 runs, median),
so a clock that changes speed over the run moves both sides. Writes
scale.json and scale.png (three panels) to --out. Peers that are not
installed are skipped with a note. Made for the 16-core machine
(docs/benchmarks.md, "Scale"); on 2 cores it shows the first two points.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from crew._cli import peers as P          # noqa: E402
from crew._cli.tasks import noop          # noqa: E402

CPU_LOOP = 1_500_000   # ~50-100 ms of pure Python per task


def spin(n):
    s = 0
    for i in range(n):
        s += i & 7
    return s


def cpu_once():
    t = time.perf_counter()
    spin(CPU_LOOP)
    return time.perf_counter() - t


PER_WORKER = 4        # CPU tasks per worker (--per-worker)


def cpu_workload(peer, p, w):
    """Wall time of PER_WORKER tasks per worker (the speed-up divides the
    same tasks run one after another by it)."""
    tasks = PER_WORKER * w
    t = time.perf_counter()
    fs = [peer.submit(p, spin, CPU_LOOP) for _ in range(tasks)]
    for f in fs:
        f.result()
    return time.perf_counter() - t


def submit_workload(peer, p, n):
    t = time.perf_counter()
    fs = [peer.submit(p, noop) for _ in range(n)]
    for f in fs:
        f.result()
    return n / (time.perf_counter() - t)


def map_workload(peer, p, n, w):
    items = range(n)
    chunk = max(1, n // (w * 16))
    t = time.perf_counter()
    out = peer.map(p, noop, items, chunk)
    assert len(out) == n
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4,8,16")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--submits", type=int, default=20000)
    ap.add_argument("--items", type=int, default=200000)
    ap.add_argument("--method", default="forkserver",
                    help="start method for every process pool (default forkserver)")
    ap.add_argument("--out", default="out/scale")
    ap.add_argument("--per-worker", type=int, default=4, help="CPU tasks per worker (default 4)")
    a = ap.parse_args()
    global PER_WORKER
    PER_WORKER = a.per_worker
    ws = [int(x) for x in a.workers.split(",")]
    cores = os.cpu_count()
    peers = [P.CrewProcesses(), P.MpPool(), P.Loky(), P.Mpire()]
    use, skipped = [], {}
    for pe in peers:
        ok, why = pe.available()
        (use.append(pe) if ok else skipped.__setitem__(pe.name, why))
    cpu_once()                                                    # warm
    serial = statistics.median(cpu_once() for _ in range(5))
    res = {"cores": cores, "python": sys.version.split()[0], "method": a.method,
           "serial_task_s": serial, "skipped": skipped, "rows": []}
    print(f"{cores} cores, Python {res['python']}, start method {a.method}; one CPU task "
          f"{serial * 1e3:.1f} ms serially; peers: {', '.join(p.name for p in use)}"
          + (f"; skipped: {skipped}" if skipped else ""), flush=True)
    for w in ws:
        pools = {}
        for pe in use:
            pools[pe.key] = pe.make(w, a.method)
            pe.submit(pools[pe.key], noop).result()                  # warm
            pe.map(pools[pe.key], noop, range(2000), 100)
        samples = {pe.key: {"cpu": [], "submit": [], "map": []} for pe in use}
        for r in range(a.reps):
            order = use if r % 2 == 0 else list(reversed(use))      # interleaved
            for pe in order:
                p = pools[pe.key]
                s = samples[pe.key]
                base = statistics.median(cpu_once() for _ in range(3))  # this moment's serial
                s["cpu"].append(base * PER_WORKER * w / cpu_workload(pe, p, w))
                s["submit"].append(submit_workload(pe, p, a.submits))
                s["map"].append(map_workload(pe, p, a.items, w))
        for pe in use:
            pe.close(pools[pe.key])
            s = samples[pe.key]
            row = {"workers": w, "peer": pe.name,
                   **{k: statistics.median(v) for k, v in s.items()},
                   **{k + "_min": min(v) for k, v in s.items()},
                   **{k + "_max": max(v) for k, v in s.items()}}
            res["rows"].append(row)
            print(f"{w:>3} workers  {pe.name:<22} CPU speed-up {row['cpu']:6.2f}x "
                  f"(min {row['cpu_min']:.2f})  submit {row['submit'] / 1e3:8.1f} k/s  "
                  f"map {row['map'] / 1e3:9.1f} k items/s", flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "scale.json"), "w") as f:
        json.dump(res, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart")
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [("cpu", "CPU-bound speed-up (x)", 1), ("submit", "submit + result (k tasks/s)", 1e3),
              ("map", "map of no-op items (k items/s)", 1e3)]
    for ax, (key, title, div) in zip(axes, panels):
        for pe in use:
            rows = [r for r in res["rows"] if r["peer"] == pe.name]
            ax.plot([r["workers"] for r in rows], [r[key] / div for r in rows], marker="o",
                    label=pe.name, linewidth=2.4 if pe.key == "crew-processes" else 1.4)
        if key == "cpu":
            ax.plot(ws, [min(w, cores) for w in ws], linestyle="--", color="grey",
                    label="ideal (min(workers, cores))")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ws)
        ax.set_xticklabels([str(w) for w in ws])
        ax.set_xlabel("workers")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Scaling on {cores} cores (Python {res['python']}, {a.method}; "
                 f"medians of {a.reps} interleaved runs)")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "scale.png"), dpi=110)
    print("wrote", os.path.join(a.out, "scale.json"), "and scale.png")


if __name__ == "__main__":
    main()
