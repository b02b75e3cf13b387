"""crew.Pool beside multiprocessing.Pool where a drop-in is judged: imap, imap_unordered, leaving `with` with work pending.

    .venv/bin/python bench/bench_pool_dropin.py [--items N] [--reps R]

Interleaved repeats (crew, multiprocessing, crew, ...), medians; 2 workers each.
"""
import argparse
import multiprocessing as mp
import statistics
import time

import crew


def ident(x):
    return x


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    n = a.items
    rows = {}
    with crew.Pool(2) as cp, mp.Pool(2) as mpp:
        for pool in (cp, mpp):  # warm
            list(pool.imap(ident, range(1000), chunksize=100))
        for _ in range(a.reps):
            for name, pool in (("crew.Pool", cp), ("multiprocessing.Pool", mpp)):
                rows.setdefault(("imap, chunksize 500", name), []).append(
                    timed(lambda: list(pool.imap(ident, range(n), chunksize=500))))
                rows.setdefault(("imap_unordered, chunksize 500", name), []).append(
                    timed(lambda: list(pool.imap_unordered(ident, range(n), chunksize=500))))
    for _ in range(a.reps):
        for name, make in (("crew.Pool", lambda: crew.Pool(2)), ("multiprocessing.Pool", lambda: mp.Pool(2))):
            pool = make()
            pool.map_async(ident, range(n // 2), chunksize=1)
            rows.setdefault((f"terminate() with {n // 2:,} items pending", name), []).append(
                timed(pool.terminate))
    print(f"{'workload':40} {'pool':22} {'median':>10} {'min':>10} {'max':>10}")
    for (work, name), ts in sorted(rows.items(), key=lambda kv: kv[0][0]):
        print(f"{work:40} {name:22} {statistics.median(ts):9.3f}s {min(ts):9.3f}s {max(ts):9.3f}s")


if __name__ == "__main__":
    main()
