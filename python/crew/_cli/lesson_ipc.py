"""Lesson 3: IPC. Whatever a process worker gets must cross from the parent:
multiprocessing pickles it through a pipe; crew puts large buffers in shared
memory and the worker reads them in place."""
import multiprocessing as mp
import os

import crew

from . import common as C
from .tasks import array_home, array_summary

TITLE = "3. IPC: a large numpy array handed to a process worker"
STEPS = 3
EXPLAIN = """\
Processes share no memory, so every argument crosses: multiprocessing pickles
the array and pushes the bytes through a pipe, and the worker unpickles a copy.
crew copies the buffer once into shared memory; the worker reads it in place."""


def run(ctx):
    import numpy as np
    r = ctx.rep
    a = ctx.args
    n = ctx.workers
    mb = a.array_mb
    reps = a.ipc_repeats
    arr = np.arange(int(mb * 2**20) // 8, dtype=np.float64)
    expect = (float(arr[0]) + float(arr[-1]), arr.nbytes)
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN)
    r.print(f"   one task gets a {arr.nbytes / 2**20:.0f} MB float64 array and reads it; "
            f"median of {reps} once each pool is warm")
    rows = []
    r.status("IPC: multiprocessing")
    with mp.Pool(n) as pool:
        pool.apply(array_summary, (arr[:1024],))
        home = pool.apply(array_home, (arr,))
        ts = []
        for _ in range(reps):
            t, res = C.timed(pool.apply, array_summary, (arr,))
            assert res == expect
            ts.append(t)
        rows.append((f"multiprocessing.Pool.apply ({mp.get_start_method()}; pickle + pipe)",
                     C.median(ts), home))
    r.step("IPC: crew")
    with crew.Executor(n) as ex:
        first, res = C.timed(lambda: ex.submit(array_summary, arr).result())
        assert res == expect
        home = ex.submit(array_home, arr).result()
        ts = []
        for _ in range(reps):
            t, res = C.timed(lambda: ex.submit(array_summary, arr).result())
            assert res == expect
            ts.append(t)
        rows.append((f"crew.Executor.submit ({ex.stats()['start_method']}; shared memory)",
                     C.median(ts), home))
    rows.append(("crew, first hand-off (shared memory still to map)", first, home))
    r.step("IPC: chart")
    t_mp, t_crew = rows[0][1], rows[1][1]
    gbs = lambda t: arr.nbytes / t / 2**30  # noqa: E731
    r.print(C.table(["way", "time per hand-off", "throughput", "the worker's array", "vs multiprocessing"],
                    [(w, C.fmt_seconds(t), f"{gbs(t):.2f} GB/s",
                      own, f"{t_mp / t:.1f}x")
                     for w, t, own in rows]))
    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    C.barh(ax, ["multiprocessing.Pool\n(pickle through a pipe)", "crew.Executor\n(shared memory)",
                "crew, first hand-off\n(fresh shared memory)"],
           [t_mp * 1e3, t_crew * 1e3, rows[2][1] * 1e3], [C.BAD, C.CREW, "#8ecae6"], fmt=lambda v: C.fmt_seconds(v / 1e3),
           xlabel="milliseconds per hand-off (log scale, lower is better)", log=True,
           title=f"Handing a {arr.nbytes / 2**20:.0f} MB numpy array to a worker: "
                 f"crew {t_mp / t_crew:.0f}x faster")
    path = C.save(fig, os.path.join(ctx.out, "3_ipc.png"))
    r.print(f"   chart: {path}")
    r.step("IPC: done")
    return {"lesson": "ipc", "mp_s": t_mp, "crew_s": t_crew, "ratio": t_mp / t_crew,
            "mb": arr.nbytes / 2**20, "chart": path,
            "summary": f"IPC: crew hands a {arr.nbytes / 2**20:.0f} MB array over in "
                       f"{C.fmt_seconds(t_crew)}, multiprocessing in {C.fmt_seconds(t_mp)} "
                       f"({t_mp / t_crew:.0f}x)"}
