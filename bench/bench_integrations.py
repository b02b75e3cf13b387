"""crew where users already are: joblib backends, dask schedulers, and crew.Executor(address=...) vs plain dask.distributed.

    .venv/bin/python bench/bench_integrations.py [--reps 5] [--quick] [--only joblib,dask,distributed]

One run, interleaved repeats (each peer in turn, every repeat), medians, and
every ratio against a peer of the same run. 2 workers everywhere. Pools are
warmed before timing (joblib's loky and crew reuse theirs across calls; the
multiprocessing backend and dask's "processes" scheduler make a pool per call:
that is what their users get).

joblib:  (a) many small tasks  (b) tasks with 8 MB numpy arguments
         (c) scikit-learn cross_val_score
dask:    a chunked numpy reduction, a pure-Python bag map
cluster: per-task cost of crew.Executor(address=...) vs plain Client.submit,
         on a loopback cluster (dask scheduler + 2 dask workers) it starts
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))


def square(x):
    return x * x


def total(a):
    return float(a.sum())


def py_work(x):
    s = 0
    for i in range(300):
        s += i * x
    return s


def noop(x):
    return x


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def race(rows, section, workload, peers, reps, warm=1):
    """peers: [(name, fn)], timed in turn `reps` times after `warm` untimed runs."""
    for _ in range(warm):
        for _, fn in peers:
            fn()
    for _ in range(reps):
        for name, fn in peers:
            rows.setdefault((section, workload, name), []).append(timed(fn))


def bench_joblib(rows, reps, quick):
    import joblib
    import numpy as np
    from joblib import Parallel, delayed

    import crew.joblib
    crew.joblib.register()
    backends = ["crew", "loky", "multiprocessing", "threading"]
    n_small = 5_000 if quick else 20_000
    arrays = [np.random.default_rng(i).random(1_000_000) for i in range(8)]   # 8 x 8 MB

    def small(b):
        return lambda: Parallel(n_jobs=2, backend=b)(delayed(square)(i) for i in range(n_small))

    def big(b):
        return lambda: Parallel(n_jobs=2, backend=b)(delayed(total)(a) for a in arrays)
    # joblib's own cost per task (delayed(), batching, callbacks: in the parent,
    # whatever the backend) is the floor: n_jobs=1 runs the same calls in-process
    race(rows, "joblib", f"(a) {n_small:,} small tasks",
         [(b, small(b)) for b in backends] + [
             ("sequential (n_jobs=1): joblib's floor",
              lambda: Parallel(n_jobs=1)(delayed(square)(i) for i in range(n_small)))], reps)
    import crew
    shared = [crew.shared_array(a) for a in arrays]   # data that lives in crew's shared memory

    def big_shared():
        return Parallel(n_jobs=2, backend="crew")(delayed(total)(a) for a in shared)
    race(rows, "joblib", "(b) 8 tasks, 8 MB numpy argument each",
         [(b, big(b)) for b in backends] + [("crew, arrays in crew.SharedArray", big_shared)], reps)

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    X, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=200 if quick else 400)

    def cv(b):
        def run():
            with joblib.parallel_config(backend=b):
                cross_val_score(clf, X, y, cv=4, n_jobs=2)
        return run
    race(rows, "joblib", "(c) cross_val_score (digits, cv=4)", [(b, cv(b)) for b in backends],
         max(3, reps // 2 + 1))


def bench_dask(rows, reps, quick):
    import dask
    import dask.array as da
    import dask.bag as db

    import crew
    import crew.dask
    ex = crew.Executor(2)
    size = 2000 if quick else 4000
    x = da.random.random((size, size), chunks=(size // 4, size // 4))
    red = (x + x.T).mean(axis=0).sum()
    bag = db.from_sequence(range(20_000 if quick else 100_000), npartitions=8).map(py_work).sum()

    def run(graph, sched):
        if sched == "crew":
            return lambda: dask.compute(graph, scheduler=crew.dask.get, executor=ex)
        return lambda: dask.compute(graph, scheduler=sched, num_workers=2)
    scheds = ["crew", "threads", "processes"]
    race(rows, "dask", f"chunked numpy reduction ({size}x{size}, 16 chunks)",
         [(s, run(red, s)) for s in scheds], reps)
    race(rows, "dask", "pure-Python bag map (8 partitions)", [(s, run(bag, s)) for s in scheds], reps)
    ex.shutdown()


def bench_cluster(rows, reps, quick):
    import tempfile

    import distributed

    import crew
    from dask_cluster import START_TIMEOUT, Cluster
    c = Cluster(tempfile.mkdtemp(prefix="crew-bench-"))
    n = 300 if quick else 1000
    try:
        c.start_scheduler()
        c.start_worker("w1", preload=False)
        c.start_worker("w2", preload=False)
        client = distributed.Client(c.address, timeout=START_TIMEOUT, set_as_default=False)
        c.wait_for_workers(client, 2)
        ex = crew.Executor(address=client)

        def plain():
            futs = [client.submit(noop, i, pure=False) for i in range(n)]
            assert client.gather(futs) == list(range(n))

        def crew_submit():
            futs = [ex.submit(noop, i) for i in range(n)]
            assert [f.result() for f in futs] == list(range(n))

        def crew_map():
            assert list(ex.map(noop, range(n), chunksize=1)) == list(range(n))
        race(rows, "cluster", f"{n} no-op tasks (per-task cost)",
             [("distributed.Client.submit + gather", plain),
              ("crew.Executor(address=...).submit", crew_submit),
              ("crew.Executor(address=...).map, chunksize=1", crew_map)], reps)
        ex.shutdown()
        client.close()
    finally:
        left = c.stop()
        if left:
            print(f"warning: processes left: {left}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--only", default="joblib,dask,cluster")
    ap.add_argument("--json", default="out/bench_integrations.json")
    a = ap.parse_args()
    rows = {}
    for part in a.only.split(","):
        {"joblib": bench_joblib, "dask": bench_dask, "cluster": bench_cluster}[part](
            rows, a.reps, a.quick)
    # table: each workload's rows, crew first, the ratio = peer's median / crew's
    out = []
    by_work = {}
    for (sec, work, name), ts in rows.items():
        by_work.setdefault((sec, work), []).append((name, statistics.median(ts), ts))
    print(f"{'section':8} {'workload':42} {'peer':44} {'median':>10} {'vs crew':>9}")
    for (sec, work), peers in by_work.items():
        base = next((m for name, m, _ in peers if name.startswith("crew")), None)
        ref = peers[0][1] if sec == "cluster" else base
        for name, m, ts in peers:
            ratio = (m / ref) if sec == "cluster" else (m / base if base else float("nan"))
            label = "x plain" if sec == "cluster" else "x"
            print(f"{sec:8} {work:42} {name:44} {m * 1e3:8.1f}ms {ratio:7.2f}{label}")
            out.append({"section": sec, "workload": work, "peer": name, "median_s": m,
                        "runs_s": ts})
    print("(joblib/dask: 'vs crew' = the peer's median / crew's: >1 means crew is faster;"
          " cluster: each median / plain Client.submit's: 1.10 = 10% overhead)")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                   "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True).stdout.strip(),
                   "rows": out}, f, indent=1)


if __name__ == "__main__":
    main()
