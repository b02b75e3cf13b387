"""bench_cpu_split.py — where a CPU-bound batch's speed-up goes: the pool's own cost against how fast its workers run the same code as the parent, crew beside multiprocessing.Pool and ProcessPoolExecutor, interleaved, medians.

    .venv/bin/python bench/bench_cpu_split.py [--rounds 10] [--workers 2] [--task-ms 30]
                                              [--tasks-per-worker 4] [--json out.json]

Each round runs the batch (tasks-per-worker x workers calls of a pure-Python
loop of about --task-ms) serially in the parent, then on each pool in turn
(the order alternates), as `python -m crew bench`'s cpu workload does. Every
task times itself where it runs. Per pool, the medians over the rounds of:

  speed-up     serial time / pool time (the bench's figure)
  worker/serial  the CPU seconds the workers spent in the tasks / the
               parent's CPU seconds for the same tasks run serially: how
               fast this pool's worker processes run the code (1.00: as
               fast as the parent; 1.05: 5% slower)
  ideal        workers / (worker/serial): the speed-up a pool with no cost
               of its own would reach with these workers
  pool cost    pool time - (busiest worker's task time): what dispatch,
               results and wake-ups added to the batch, in ms
  tail         time from the last task's end to the parent holding every
               result, in ms

The speed-up falls short of `workers` by the pool's cost and by its workers
running slower than the parent; on a shared VM the second varies from
process to process (a few per cent, either way) and dominates.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from crew._cli.lesson_gil import calibrate  # noqa: E402
from crew._cli.peers import PEERS  # noqa: E402
from crew._cli.tasks import spin  # noqa: E402


def timed_spin(n):
    """spin(n), timed where it runs: (wall s, CPU s, end on the monotonic
    clock, pid)."""
    t = time.perf_counter()
    c = time.thread_time()
    spin(n)
    return time.perf_counter() - t, time.thread_time() - c, time.perf_counter(), os.getpid()


# the pools, as `python -m crew bench` makes and drives them (crew._cli.peers)
POOLS = ("crew-processes", "mp-pool", "ppe")


def run_batch(peer, p, items):
    """Every item's timed_spin on pool p, submitted one by one, then waited for."""
    return [f.result() for f in [peer.submit(p, timed_spin, x) for x in items]]


def one_round(peer, p, items, serial_cpu, serial_wall, n):
    t = time.perf_counter()
    outs = run_batch(peer, p, items)
    dt = time.perf_counter() - t
    cpu = sum(o[1] for o in outs)
    per_worker = {}
    for o in outs:
        per_worker[o[3]] = per_worker.get(o[3], 0.0) + o[0]
    busiest = max(per_worker.values())
    return {"speedup": serial_wall / dt, "worker_vs_serial": cpu / serial_cpu,
            "ideal": n / (cpu / serial_cpu),
            "pool_cost_ms": (dt - busiest) * 1e3,
            "tail_ms": (t + dt - max(o[2] for o in outs)) * 1e3,
            "split": sorted(sum(1 for o in outs if o[3] == pid) for pid in per_worker)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--task-ms", type=float, default=30.0)
    ap.add_argument("--tasks-per-worker", type=int, default=4)
    ap.add_argument("--json", help="write the per-round figures here")
    a = ap.parse_args()
    n = a.workers
    loop = calibrate(a.task_ms / 1e3)
    items = [loop] * (a.tasks_per_worker * n)
    peers = [PEERS[k] for k in POOLS]
    pools = [peer.make(n, "forkserver") for peer in peers]
    for peer, p in zip(peers, pools):   # workers up, the task's code loaded
        run_batch(peer, p, [loop // 10] * (2 * n))
    rows = {peer.name: [] for peer in peers}
    for r in range(a.rounds):
        c0, t0 = time.thread_time(), time.perf_counter()
        for x in items:
            spin(x)
        serial_wall, serial_cpu = time.perf_counter() - t0, time.thread_time() - c0
        both = list(zip(peers, pools))
        for peer, p in (both if r % 2 == 0 else both[::-1]):
            rows[peer.name].append(one_round(peer, p, items, serial_cpu, serial_wall, n))
    for peer, p in zip(peers, pools):
        peer.close(p)
    print(f"{len(items)} tasks of spin({loop:,}) (~{a.task_ms:g} ms) on {n} workers, "
          f"{a.rounds} interleaved rounds, medians (min - max)")
    print(f"{'pool':<22} {'speed-up':>18} {'worker/serial':>20} {'ideal':>7} "
          f"{'pool cost ms':>13} {'tail ms':>8}")

    def cell(v, key, fmt):
        xs = [x[key] for x in v]
        return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"
    for name, v in rows.items():
        print(f"{name:<22} {cell(v, 'speedup', '{:.2f}'):>18} "
              f"{cell(v, 'worker_vs_serial', '{:.3f}'):>20} "
              f"{statistics.median(x['ideal'] for x in v):>7.2f} "
              f"{statistics.median(x['pool_cost_ms'] for x in v):>13.2f} "
              f"{statistics.median(x['tail_ms'] for x in v):>8.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"workers": n, "loop": loop, "tasks": len(items), "rounds": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
