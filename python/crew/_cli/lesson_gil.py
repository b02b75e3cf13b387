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
    load = os.getloadavg()[0]
    if load > 0.5:
        r.print(f"   note: the load average is {load:.1f} on {os.cpu_count()} CPUs: other programs "
                f"compete for the cores, so processes may fall short of {n}x")
    rows = []

    r.status("GIL: serial")
    t_serial, expect = C.timed(lambda: [spin(x) for x in items])
    rows.append(("serial (one thread)", t_serial))
    r.step("GIL: threads")

    with cf.ThreadPoolExecutor(n) as ex:
        list(ex.map(abs, range(n)))
        t, res = C.timed(lambda: list(ex.map(spin, items)))
    assert res == expect
    rows.append((f"{n} threads (ThreadPoolExecutor)", t))
    r.step("GIL: multiprocessing")

    with mp.Pool(n) as pool:
        pool.map(abs, range(n))
        t, res = C.timed(pool.map, spin, items, 1)
    assert res == expect
    rows.append((f"{n} processes (multiprocessing.Pool, {mp.get_start_method()})", t))
    r.step("GIL: crew")

    with crew.Executor(n) as ex:
        list(ex.map(abs, range(n)))
        t, res = C.timed(lambda: list(ex.map(spin, items, chunksize=1)))
    assert res == expect
    rows.append((f"{n} crew process workers ({ex.stats()['start_method']})", t))

    table = C.table(["way", "time", "speedup vs serial"],
                    [(w, C.fmt_seconds(t), f"{t_serial / t:.2f}x") for w, t in rows])
    r.print(table)

    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    labels = [w for w, _ in rows]
    speed = [t_serial / t for _, t in rows]
    colors = [C.PEER, C.BAD, C.PEER, C.CREW]
    C.barh(ax, labels, speed, colors, fmt=lambda v: f"{v:.2f}x",
           xlabel="speedup vs serial (higher is better)",
           title=f"CPU-bound pure Python, {tasks} tasks on {n} cores ({os.uname().nodename})")
    ax.set_xlim(0, max(n * 1.2, max(speed) * 1.3))
    ax.axvline(n, color="k", ls="--", lw=1)
    ax.text(n, len(rows) - 0.55, f" ideal: {n}x ({n} cores)", fontsize=8)
    path = C.save(fig, os.path.join(ctx.out, "1_gil.png"))
    r.print(f"   chart: {path}")
    r.step("GIL: done")
    thr, mpp, cr = (t_serial / t for _, t in rows[1:])
    return {"lesson": "gil", "threads_speedup": thr, "mp_speedup": mpp, "crew_speedup": cr,
            "serial_s": t_serial, "workers": n, "chart": path,
            "summary": f"GIL: crew processes {cr:.2f}x vs serial; threads {thr:.2f}x, "
                       f"multiprocessing {mpp:.2f}x (on {n} cores)"}
