"""Lesson 2: I/O-bound work. A thread waiting on the network or a file
releases the GIL, so threads overlap the waits; processes overlap them too,
but each costs a whole interpreter to start and to keep."""
import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time

import crew

from . import common as C
from .tasks import fetch_and_read

TITLE = "2. I/O-bound work: HTTP requests and file reads"
STEPS = 4
EXPLAIN = """\
A thread blocked in recv() or read() releases the GIL, so threads overlap the
waiting. Processes overlap it too, but each worker is a whole interpreter to
start and to keep in memory. Times include starting and stopping each pool."""


@contextlib.contextmanager
def latency_server(latency):
    p = subprocess.Popen([sys.executable, "-m", "crew._cli.latency_server", str(latency)],
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline())
        yield f"http://127.0.0.1:{port}/"
    finally:
        p.kill()
        p.wait()


def _children():
    try:
        import psutil
    except ImportError:
        return None
    return {c.pid: c for c in psutil.Process().children(recursive=True)}


def _worker_mb(before):
    """Private memory (USS, MB) of the processes that appeared since `before`."""
    now = _children()
    if now is None or before is None:
        return float("nan")
    total = 0
    for pid, c in now.items():
        if pid in before:
            continue
        try:
            total += c.memory_full_info().uss
        except Exception:
            pass
    return total / 2**20


def run(ctx):
    r = ctx.rep
    a = ctx.args
    conc = a.io_workers
    ntasks = a.io_tasks
    latency = a.latency_ms / 1000
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN)
    r.print(f"   batch: {ntasks} tasks, each an HTTP GET to a local server that waits "
            f"{a.latency_ms:g} ms, plus a 256 KB file read; {conc} workers per pool")
    rows = []
    with tempfile.TemporaryDirectory(prefix="crew-demo-") as d, latency_server(latency) as url:
        paths = []
        for i in range(ntasks):
            p = os.path.join(d, f"f{i}.bin")
            with open(p, "wb") as f:
                f.write(os.urandom(256 * 1024))
            paths.append(p)
        urls = [url] * ntasks
        fetch_and_read(url, paths[0])   # the server is up
        r.status("I/O: serial")
        t, expect = C.timed(lambda: [fetch_and_read(u, p) for u, p in zip(urls, paths)])
        rows.append(("serial", 1, t, 0.0))
        r.step("I/O: threads")

        def threads():
            with cf.ThreadPoolExecutor(conc) as ex:
                return list(ex.map(fetch_and_read, urls, paths))
        t, res = C.timed(threads)
        assert res == expect
        rows.append((f"threads (ThreadPoolExecutor)", conc, t, 0.0))
        r.step("I/O: processes")

        before = _children()
        mem = [float("nan")]

        def processes():
            with mp.Pool(conc) as pool:
                out = pool.starmap(fetch_and_read, zip(urls, paths), 1)
                mem[0] = _worker_mb(before)
                return out
        t, res = C.timed(processes)
        assert res == expect
        rows.append((f"processes (multiprocessing.Pool, {mp.get_start_method()})", conc, t, mem[0]))
        r.step("I/O: crew")

        def crew_threads():
            with crew.Executor(conc, kind="threads") as ex:
                return list(ex.map(fetch_and_read, urls, paths, chunksize=1))
        t, res = C.timed(crew_threads)
        assert res == expect
        rows.append(("crew thread workers (kind='threads')", conc, t, 0.0))

    t_serial = rows[0][2]
    r.print(C.table(["way", "workers", "time", "speedup", "worker memory"],
                    [(w, n, C.fmt_seconds(t), f"{t_serial / t:.1f}x",
                      "-" if m != m else ("0 (threads)" if m == 0 and n > 1 and "thread" in w
                                          else ("-" if n == 1 else f"{m:.0f} MB")))
                     for w, n, t, m in rows]))
    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.4))
    C.barh(ax, [w for w, *_ in rows], [t for _, _, t, _ in rows],
           [C.PEER, C.PEER, C.BAD, C.CREW], fmt=C.fmt_seconds,
           xlabel="time for the whole batch, pool start included (lower is better)",
           title=f"{ntasks} HTTP GETs ({a.latency_ms:g} ms latency) + file reads, {conc} workers")
    path = C.save(fig, os.path.join(ctx.out, "2_io.png"))
    r.print(f"   chart: {path}")
    r.step("I/O: done")
    ts = {k: rows[i][2] for i, k in enumerate(("serial", "threads", "processes", "crew"))}
    return {"lesson": "io", **{k + "_s": v for k, v in ts.items()}, "process_mb": rows[2][3],
            "chart": path,
            "summary": f"I/O: crew threads {C.fmt_seconds(ts['crew'])} vs ThreadPoolExecutor "
                       f"{C.fmt_seconds(ts['threads'])}, multiprocessing.Pool "
                       f"{C.fmt_seconds(ts['processes'])}, serial {C.fmt_seconds(ts['serial'])}"}
