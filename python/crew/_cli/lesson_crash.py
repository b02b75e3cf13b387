"""Lesson 5: a worker dies mid-batch (the OOM killer, a segfault in a C
extension). What happens to the batch, and to the pool?"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import time

import crew
from concurrent.futures.process import BrokenProcessPool

from . import common as C
from .tasks import crash_on, noop

TITLE = "5. Crashes: a worker killed mid-batch"
STEPS = 5
EXPLAIN = """\
One task of the batch SIGKILLs its own worker, as the OOM killer or a segfault
would. multiprocessing.Pool replaces the worker but loses its task, so map()
waits forever; ProcessPoolExecutor marks itself broken and fails everything
still pending; crew fails that one task and finishes the rest."""


def run(ctx):
    r = ctx.rep
    a = ctx.args
    n = ctx.workers
    T = a.crash_tasks
    bad = T // 3
    delay = a.crash_delay_ms / 1000
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN)
    r.print(f"   batch: {T} tasks of {a.crash_delay_ms:g} ms on {n} workers; task {bad} kills "
            f"its worker")
    rows = []   # peer, ok, failed, lost, time, outcome, usable after

    r.status("crash: multiprocessing.Pool")
    pool = mp.Pool(n)
    try:
        pool.apply(noop)
        t0 = time.perf_counter()
        res = pool.starmap_async(crash_on, [(i, bad, delay) for i in range(T)], 1)
        try:
            out = res.get(timeout=a.hang_timeout)
            outcome, ok, lost = "returned", len(out), 0
        except mp.TimeoutError:
            outcome, ok, lost = f"HUNG: still waiting after {a.hang_timeout:g} s (forever)", 0, T
        t = time.perf_counter() - t0
        try:
            usable = pool.apply_async(noop, (1,)).get(timeout=5) == 1
        except Exception:
            usable = False
    finally:
        pool.terminate()
        pool.join()
    rows.append(("multiprocessing.Pool.map", ok, 0, lost, t, outcome, usable))
    r.step("crash: ProcessPoolExecutor")

    def per_future(ex, crashed_types):
        t0 = time.perf_counter()
        futs = [ex.submit(crash_on, i, bad, delay) for i in range(T)]
        ok = failed = 0
        first = None
        for f in futs:
            try:
                f.result(timeout=60)
                ok += 1
            except crashed_types as e:
                failed += 1
                first = first or e
        return ok, failed, time.perf_counter() - t0, first

    ex = cf.ProcessPoolExecutor(n)
    try:
        ex.submit(noop).result()
        ok, failed, t, first = per_future(ex, (BrokenProcessPool,))
        try:
            usable = ex.submit(noop, 1).result(timeout=5) == 1
        except BrokenProcessPool:
            usable = False
    finally:
        ex.shutdown(wait=True)
    rows.append(("concurrent.futures.ProcessPoolExecutor", ok, failed, 0, t,
                 f"BROKEN: {failed} tasks failed with BrokenProcessPool", usable))
    r.step("crash: crew.Executor")

    with crew.Executor(n) as ex:
        ex.submit(noop).result()
        ok, failed, t, first = per_future(ex, (crew.WorkerCrashedError,))
        usable = ex.submit(noop, 1).result(timeout=5) == 1
    msg = str(first) if first else ""
    rows.append(("crew.Executor", ok, failed, 0, t,
                 f"{failed} task failed (WorkerCrashedError), the rest finished", usable))
    r.step("crash: crew.Pool")

    with crew.Pool(n) as pool:
        pool.apply(noop)
        before = pool.stats()
        t0 = time.perf_counter()
        try:
            pool.starmap(crash_on, [(i, bad, delay) for i in range(T)], 1)
            outcome = "returned"
        except crew.WorkerCrashedError:
            outcome = "map raised WorkerCrashedError once the batch was done (no hang)"
        t = time.perf_counter() - t0
        after = pool.stats()
        usable = pool.apply(noop, (1,)) == 1
    # map is all or nothing, as in multiprocessing: the tasks that finished
    # are counted from the pool's stats, their results are not returned
    ok = after["done"] - before["done"]
    failed = after["failed"] - before["failed"]
    rows.append(("crew.Pool.map (multiprocessing's API)", ok, failed, T - ok - failed, t,
                 outcome, usable))

    r.print(C.table(["peer", f"finished (of {T})", "failed", "lost", "time", "what happened",
                     "pool usable after"],
                    [(p, o, f, l, C.fmt_seconds(t), oc, "yes" if u else "NO")
                     for p, o, f, l, t, oc, u in rows]))
    r.print("   finished + failed + lost = the whole batch on every row; lost: never came back. "
            "crew.Pool.map, like multiprocessing's, returns all results or raises: its finished "
            "tasks ran, their results were dropped.")
    if msg:
        r.print(f"   crew's error for the failed task: WorkerCrashedError: {msg}")
    r.step("crash: chart")

    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    shown = rows
    peers = [p for p, *_ in shown]
    ys = list(range(len(peers)))[::-1]
    okv = [rw[1] for rw in shown]
    fv = [rw[2] for rw in shown]
    lv = [rw[3] for rw in shown]
    ax.barh(ys, okv, color=C.CREW, label="finished", height=0.6)
    ax.barh(ys, fv, left=okv, color=C.BAD, label="failed", height=0.6)
    ax.barh(ys, lv, left=[a_ + b for a_, b in zip(okv, fv)], color="#6c757d",
            label="never returned (hang)", height=0.6)
    for y, rw in zip(ys, shown):
        label = (rw[5].split(":")[0] if ":" in rw[5] else
                 f"{rw[2]} failed, the rest finished" + (" (map raised)" if "raised" in rw[5] else ""))
        ax.text(T * 1.02, y, label + f"\n{C.fmt_seconds(rw[4])}", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels(["multiprocessing.Pool.map", "ProcessPoolExecutor", "crew.Executor",
                        "crew.Pool.map"][:len(shown)])
    ax.set_xlim(0, T * 1.6)
    ax.set_xlabel(f"tasks of the batch ({T}; one kills its worker)")
    ax.set_title("A worker killed mid-batch: what comes back", fontsize=11)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    path = C.save(fig, os.path.join(ctx.out, "5_crash.png"))
    r.print(f"   chart: {path}")
    r.step("crash: done")
    cr = rows[2]
    return {"lesson": "crash", "rows": [dict(zip(("peer", "finished", "failed", "lost", "seconds",
                                                  "outcome", "usable_after"), rw)) for rw in rows],
            "chart": path,
            "summary": f"crash: crew finished {cr[1]}/{T} and failed 1 with WorkerCrashedError; "
                       f"multiprocessing.Pool.map hung, ProcessPoolExecutor failed "
                       f"{rows[1][2]} and stayed broken"}
