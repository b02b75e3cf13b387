"""The Python hot path, crew beside the process-pool peers in one run.

    .venv/bin/python bench/bench_hot.py [--reps N] [--n 20000] [--peers crew-processes,mp-pool,...]

Per peer (the adapters of crew/_cli/peers.py, as `python -m crew bench`
drives them), interleaved rounds (so that load from other programs hits all
alike): no-op round trip (submit one, wait for its result; us) and submit
throughput (submit N no-ops, then wait for all; tasks/s). Prints the medians
over the rounds and crew's ratios to the best peer. Every pool stays up for
the whole run. Ray is left out by default: its daemons would run through
every other peer's rounds, and at ~1 k tasks/s a round of 20,000 takes
~20 s; ask for it with --peers ...,ray-pool,ray-tasks --n 2000.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import crew  # noqa: E402
from crew._cli.peers import PEERS, shutdown_runtimes  # noqa: E402
from crew._cli.tasks import noop  # noqa: E402

DEFAULT = "crew-processes,mp-pool,ppe,loky,pebble,mpire"


def round_trip(p, submit, budget):
    n, t0 = 0, time.perf_counter()
    while True:
        submit(p, noop, 1).result()
        n += 1
        t = time.perf_counter() - t0
        if t > budget:
            return t / n * 1e6


def throughput(p, submit, ntp):
    t0 = time.perf_counter()
    fs = [submit(p, noop, i) for i in range(ntp)]
    for f in fs:
        f.result()
    return ntp / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--peers", "--only", default=DEFAULT,
                    help=f"comma-separated, from: {','.join(PEERS)} (default: {DEFAULT}; "
                         f"those not installed are left out)")
    ap.add_argument("--method", default="forkserver")
    a = ap.parse_args()
    ncpu = crew.cpu_count()
    names = [x for x in a.peers.split(",") if x]
    if set(names) - set(PEERS):
        ap.error(f"unknown peer {','.join(set(names) - set(PEERS))}")
    pools = {}
    try:
        for name in names:
            peer = PEERS[name]
            ok, why = peer.available()
            if not ok:
                print(f"  {name}: {why}", file=sys.stderr)
                continue
            try:
                pools[name] = peer.make(ncpu, a.method)
                for _ in range(200):
                    peer.submit(pools[name], noop, 1).result()
            except Exception as e:
                print(f"  {name}: failed: {type(e).__name__}: {e}", file=sys.stderr)
                pools.pop(name, None)
        rt = {k: [] for k in pools}
        tp = {k: [] for k in pools}
        for _ in range(a.reps):
            for name, p in pools.items():
                rt[name].append(round_trip(p, PEERS[name].submit, a.budget))
                tp[name].append(throughput(p, PEERS[name].submit, a.n))
    finally:
        for name, p in pools.items():
            PEERS[name].close(p)
        shutdown_runtimes()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{ncpu} CPUs, load {load}, {a.reps} rounds, medians (min-max)")
    w = max([len(k) for k in pools] + [4])
    for name in pools:
        print(f"  {name:{w}} round trip {statistics.median(rt[name]):7.1f} us "
              f"({min(rt[name]):.1f}-{max(rt[name]):.1f})   "
              f"throughput {statistics.median(tp[name]):9,.0f}/s "
              f"({min(tp[name]):,.0f}-{max(tp[name]):,.0f})")
    me = "crew-processes"
    peers = [k for k in pools if not k.startswith("crew") and PEERS[k].kind == "process"]
    if me in pools and peers:
        brt = min(statistics.median(rt[k]) for k in peers)
        btp = max(statistics.median(tp[k]) for k in peers)
        print(f"  crew vs best peer: round trip {brt / statistics.median(rt[me]):.1f}x, "
              f"throughput {statistics.median(tp[me]) / btp:.1f}x")


if __name__ == "__main__":
    main()
