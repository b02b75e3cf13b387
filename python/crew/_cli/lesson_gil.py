"""Lesson 1: the GIL. Pure-Python CPU work on threads runs one thread at a
time; on processes it runs on every core."""
import concurrent.futures as cf
import multiprocessing as mp
import os
import time

import crew

from . import common as C
from .tasks import spin

TITLE = "1. The GIL: CPU-bound pure Python"
STEPS = 5
EXPLAIN = """\
CPython's GIL lets one thread run Python bytecode at a time: {n} threads doing
pure computation still use one core. Processes each have their own interpreter
and GIL, so they run on all {n} cores. (Pools are started and warmed first:
start costs are lesson 4.)"""


def calibrate(target_s):
    """Loop size so that one task takes about target_s seconds here."""
    n = 100_000
    t, _ = C.timed(spin, n)
    t2, _ = C.timed(spin, n)
    per = min(t, t2) / n
    return max(10_000, int(target_s / per))


def run(ctx):
    r = ctx.rep
    n = ctx.workers
    tasks = ctx.args.cpu_tasks or 4 * n
    loop = ctx.args.cpu_n or calibrate(ctx.args.cpu_seconds / tasks)
    items = [loop] * tasks
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN.format(n=n))
    r.print(f"   batch: {tasks} tasks of spin({loop:,}) (a pure-Python loop), {n} workers")
    busy = C.cpus_busy_elsewhere()
    if busy is not None and busy > 0.25:
        r.print(f"   note: other programs kept {busy:.1f} of {os.cpu_count()} CPUs busy just now: "
                f"processes may fall short of {n}x")
    rounds = 1 if ctx.args.quick else 3
    if rounds > 1:
        r.print(f"   each way runs {rounds} times, the best time counts (this machine may be busy)")
    best = {}

    def measure(i, label, fn):
        t, res = C.timed(fn)
        assert res == expect
        best[i] = (label, min(t, best.get(i, (None, t))[1]))

    with cf.ThreadPoolExecutor(n) as tpe, mp.Pool(n) as pool, crew.Executor(n) as cex:
        list(tpe.map(abs, range(n)))
        pool.map(abs, range(n))
        list(cex.map(abs, range(n)))
        expect = [spin(x) for x in items[:1]] * len(items)
        for rnd in range(rounds):
            r.status(f"GIL: serial ({rnd + 1}/{rounds})")
            measure(0, "serial (one thread)", lambda: [spin(x) for x in items])
            r.step(n=1 if rnd == rounds - 1 else 0)
            r.status(f"GIL: threads ({rnd + 1}/{rounds})")
            measure(1, f"{n} threads (ThreadPoolExecutor)", lambda: list(tpe.map(spin, items)))
            r.step(n=1 if rnd == rounds - 1 else 0)
            r.status(f"GIL: multiprocessing ({rnd + 1}/{rounds})")
            measure(2, f"{n} processes (multiprocessing.Pool, {mp.get_start_method()})",
                    lambda: pool.map(spin, items, 1))
            r.step(n=1 if rnd == rounds - 1 else 0)
            r.status(f"GIL: crew ({rnd + 1}/{rounds})")
            measure(3, f"{n} crew process workers ({cex.stats()['start_method']})",
                    lambda: list(cex.map(spin, items, chunksize=1)))
    rows = [best[i] for i in range(4)]
    t_serial = rows[0][1]

    table = C.table(["way", "time", "speedup vs serial"],
                    [(w, C.fmt_seconds(t), f"{t_serial / t:.2f}x") for w, t in rows])
    r.print(table)
    if t_serial / rows[1][1] > 1.15:
        r.print("   (threads cannot use a second core for this work: a ratio above 1 means other "
                "programs slowed the serial runs)")

    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [w for w, _ in rows]
    speed = [t_serial / t for _, t in rows]
    colors = [C.PEER, C.BAD, C.PEER, C.CREW]
    C.barh(ax, labels, speed, colors, fmt=lambda v: f"{v:.2f}x",
           xlabel="speedup vs serial (higher is better)",
           title=f"CPU-bound pure Python, {tasks} tasks on {n} cores ({os.uname().nodename})",
           inside=True)
    ax.set_xlim(0, max(n * 1.2, max(speed) * 1.3))
    ax.axvline(n, color="k", ls="--", lw=1, label=f"ideal: {n}x ({n} cores)")
    # the legend under the chart: inside, a long bar could run under it
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=8, frameon=False)
    path = C.save(fig, os.path.join(ctx.out, "1_gil.png"))
    r.print(f"   chart: {path}")
    r.step("GIL: done")
    thr, mpp, cr = (t_serial / t for _, t in rows[1:])
    return {"lesson": "gil", "threads_speedup": thr, "mp_speedup": mpp, "crew_speedup": cr,
            "serial_s": t_serial, "workers": n, "chart": path,
            "summary": f"GIL: crew processes {cr:.2f}x vs serial; threads {thr:.2f}x, "
                       f"multiprocessing {mpp:.2f}x (on {n} cores)"}
