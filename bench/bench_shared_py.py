"""crew shared state (Python) beside multiprocessing, in one run.

    .venv/bin/python bench/bench_shared_py.py [--quick]

Rows: queue messages/s (64-byte bytes, producer and consumer in separate
processes, 1 -> 1 and 2 -> 2; and a small tuple, which is pickled), pipe
round trip (send_bytes/recv_bytes), SharedDict reads/s and writes/s (bytes
values; tuple keys and values, pickled) against
multiprocessing.Manager().dict(), and
a 100 MB numpy array handed to a task (crew SharedArray through
crew.Executor vs the array itself through multiprocessing.Pool).
"""
import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np

import crew

PAYLOAD = b"x" * 64
TUPLE = (1, "x" * 20, 2.5)  # pickled on every path
FORK = mp.get_context("fork")


# ---------------------------------------------------------------- workers

def _producer(q, n, go, batch, item=PAYLOAD):
    go.wait()
    if batch:
        for i in range(0, n, 256):
            q.put_many([item] * min(256, n - i))
    else:
        for _ in range(n):
            q.put(item)


def _consumer(q, n, go, batch, out):
    go.wait()
    got = 0
    if batch:
        while got < n:
            got += len(q.get_many(min(1024, n - got)))
    else:
        for _ in range(n):
            q.get()
    out.put(time.monotonic())


def queue_rate(make_queue, n, pairs, batch=False, item=PAYLOAD):
    q = make_queue()
    go, out = FORK.Event(), FORK.Queue()
    per = n // pairs
    ps = [FORK.Process(target=_producer, args=(q, per, go, batch, item)) for _ in range(pairs)]
    cs = [FORK.Process(target=_consumer, args=(q, per, go, batch, out)) for _ in range(pairs)]
    for p in ps + cs:
        p.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    go.set()
    end = max(out.get() for _ in cs)
    for p in ps + cs:
        p.join()
    return per * pairs / (end - t0)


def _echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def pipe_rtt(make_pipe, n):
    a, b = make_pipe()
    p = FORK.Process(target=_echo, args=(b, n + 100))
    p.start()
    for _ in range(100):  # warm up
        a.send_bytes(PAYLOAD)
        a.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(n):
        a.send_bytes(PAYLOAD)
        a.recv_bytes()
    dt = time.perf_counter() - t0
    p.join()
    return dt / n * 1e6


def dict_rates(d, n, tuples=False):
    keys = [(i, "k") if tuples else f"k{i}" for i in range(100)]
    value = TUPLE if tuples else PAYLOAD
    t0 = time.perf_counter()
    for i in range(n):
        d[keys[i % 100]] = value
    w = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(n):
        d[keys[i % 100]]
    r = n / (time.perf_counter() - t0)
    return r, w


def first_item(a):
    return float(a.flat[0])


def hand_over(submit, a, reps):
    submit(a)  # warm: worker started, objects opened
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        submit(a)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    nq = 50_000 if args.quick else 400_000
    nmq = 20_000 if args.quick else 100_000
    npipe = 2_000 if args.quick else 20_000
    nd = 50_000 if args.quick else 500_000
    nmd = 2_000 if args.quick else 10_000
    rows = []

    def row(what, c, m, unit, higher=True):
        ratio = (c / m if higher else m / c) if m else float("nan")
        rows.append((what, c, m, unit, ratio))
        print(f"  {what}: crew {c:,.1f}  mp {m:,.1f} {unit}", file=sys.stderr)

    for pairs in (1, 2):
        m = queue_rate(FORK.Queue, nmq, pairs)
        c = queue_rate(crew.Queue, nq, pairs)
        row(f"queue {pairs} -> {pairs}, msgs/s", c, m, "msgs/s")
        cb = queue_rate(crew.Queue, nq * 4, pairs, batch=True)
        row(f"queue {pairs} -> {pairs}, put_many/get_many, msgs/s", cb, m, "msgs/s")
    m = queue_rate(FORK.Queue, nmq, 1, item=TUPLE)
    c = queue_rate(crew.Queue, nq, 1, item=TUPLE)
    row("queue 1 -> 1, a small tuple, msgs/s", c, m, "msgs/s")
    row("pipe round trip, us", pipe_rtt(crew.Pipe, npipe), pipe_rtt(FORK.Pipe, npipe), "us",
        higher=False)
    cr, cw = dict_rates(crew.SharedDict(), nd)
    tr, tw = dict_rates(crew.SharedDict(), nd, tuples=True)
    with FORK.Manager() as man:
        mr, mw = dict_rates(man.dict(), nmd)
        mtr, mtw = dict_rates(man.dict(), nmd, tuples=True)
    row("dict reads/s", cr, mr, "ops/s")
    row("dict writes/s", cw, mw, "ops/s")
    row("dict reads/s, tuple keys and values", tr, mtr, "ops/s")
    row("dict writes/s, tuple keys and values", tw, mtw, "ops/s")
    big = np.random.rand(100 * 1024 * 1024 // 8)
    shared = crew.SharedArray.from_array(big)
    with crew.Executor(1, start_method="forkserver") as ex:
        c = hand_over(lambda a: ex.submit(first_item, a).result(), shared, 5)
    with FORK.Pool(1) as pool:
        m = hand_over(lambda a: pool.apply(first_item, (a,)), big, 3)
    row("100 MB array to a task, ms", c, m, "ms", higher=False)

    print(f"\n{os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"{'--quick' if args.quick else 'full'} run\n")
    print("| what | crew | multiprocessing | crew advantage |")
    print("|---|---:|---:|---:|")
    for what, c, m, unit, ratio in rows:
        fmt = (lambda v: f"{v:,.0f}") if unit.endswith("/s") else (lambda v: f"{v:,.3g}")
        print(f"| {what} | {fmt(c)} | {fmt(m)} | {ratio:,.1f}x |")


if __name__ == "__main__":
    main()
