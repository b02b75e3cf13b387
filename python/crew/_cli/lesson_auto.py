"""Lesson 6: placement by measurement. One mixed batch on threads only, processes only and kind="auto", and the advisor on a classic mistake."""
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import crew

from . import common as C
from .tasks import crunch, spin, tiny, wait_io

TITLE = "6. Choose by bottleneck, measured: kind=\"auto\""
STEPS = 4
EXPLAIN = """\
The article's advice is "choose by bottleneck": CPU-bound pure Python on
processes, waiting on threads. One batch mixes pure Python, numpy (releases
the GIL), sleeps standing for I/O and tiny calls: every fixed choice is wrong
for part of it. crew.Executor(kind="auto") measures each function on its
first calls and puts it where it runs best; ex.placement() says why."""

MISTAKE = """\
import concurrent.futures as cf
def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x
if __name__ == "__main__":
    with cf.ThreadPoolExecutor(4) as ex:          # the classic mistake: CPU work on threads
        print(sum(ex.map(spin, [{n}] * 16)))
"""


def batch(loop, io_s, quick):
    k = 1 if quick else 2
    return ([(spin, (loop,))] * (8 * k) + [(crunch, (400_000,))] * (8 * k)
            + [(wait_io, (io_s,))] * (24 * k) + [(tiny, (i,)) for i in range(500 * k)])


def run_batch(ex, calls):
    fs = [ex.submit(fn, *a) for fn, a in calls]
    for f in fs:
        f.result()


def run(ctx):
    r = ctx.rep
    n = ctx.workers
    quick = ctx.args.quick
    from .lesson_gil import calibrate
    loop = calibrate(0.02)
    calls = batch(loop, 0.02, quick)
    threads = max(32, 4 * n)
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN)
    r.print(f"   batch: {sum(1 for c in calls if c[0] is spin)} x spin (~20 ms), "
            f"{sum(1 for c in calls if c[0] is crunch)} x numpy, "
            f"{sum(1 for c in calls if c[0] is wait_io)} x sleep(20 ms), "
            f"{sum(1 for c in calls if c[0] is tiny)} x tiny; {n} process workers, "
            f"{threads} threads")
    t0 = time.perf_counter()
    rounds = 1 if quick else 3
    best = {}
    table = None
    for rnd in range(rounds):
        for label, make in (("threads only", lambda: crew.Executor(threads, kind="threads")),
                            ("processes only", lambda: crew.Executor(n)),
                            ('kind="auto"', lambda: crew.Executor(n, kind="auto",
                                                                  max_threads=threads))):
            r.status(f"auto: {label} ({rnd + 1}/{rounds})")
            with make() as ex:     # a fresh pool: auto measures from scratch every round
                list(ex.map(abs, range(4 * threads)))
                t, _ = C.timed(run_batch, ex, calls)
                best[label] = min(t, best.get(label, t))
                if label.startswith("kind"):
                    table = str(crew.Placement(d for d in ex.placement()
                                               if d["function"] != "builtins.abs"))
        r.step(n=1)
    rows = list(best.items())
    fixed = min(best["threads only"], best["processes only"])
    r.print(C.table(["pool", "time", "vs the better fixed kind"],
                    [(w, C.fmt_seconds(t), f"{fixed / t:.2f}x") for w, t in rows]))
    r.print("   where kind=\"auto\" put each function (ex.placement()):")
    for line in table.splitlines():
        r.print("   " + line)
    r.step(n=1)

    r.status("auto: the advisor on a CPU loop in a ThreadPoolExecutor")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mistake.py")
        with open(path, "w") as f:
            f.write(MISTAKE.format(n=loop))
        p = subprocess.run([sys.executable, "-m", "crew", "advise", path], capture_output=True,
                           text=True, timeout=300, cwd=d)
    r.print("   python -m crew advise mistake.py   (a CPU-bound loop on a ThreadPoolExecutor):")
    for line in p.stderr.strip().splitlines():
        if line.strip() and not line.startswith("=="):
            r.print("   " + line)
    r.step(n=1)

    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    labels = [w for w, _ in rows]
    speed = [fixed / t for _, t in rows]
    C.barh(ax, labels, speed, [C.PEER, C.PEER, C.CREW], fmt=lambda v: f"{v:.2f}x",
           xlabel="speed vs the better fixed kind (higher is better)",
           title=f"a mixed batch in one pool ({os.uname().nodename})")
    path = C.save(fig, os.path.join(ctx.out, "6_auto.png"))
    r.print(f"   chart: {path}")
    r.step("auto: done")
    auto_t = best['kind="auto"']
    ratio = fixed / auto_t
    return {"lesson": "auto", "times": best, "auto_vs_best_fixed": ratio, "chart": path,
            "took": time.perf_counter() - t0,
            "summary": f"auto: the mixed batch {ratio:.2f}x the better fixed kind "
                       f"(threads {C.fmt_seconds(best['threads only'])}, processes "
                       f"{C.fmt_seconds(best['processes only'])}, auto "
                       f"{C.fmt_seconds(auto_t)})"}
