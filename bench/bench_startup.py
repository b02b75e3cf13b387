"""bench_startup.py — pool start-up time per start method: a 2-worker Executor made and one result got, in a fresh program (cold: the fork server starts too) and again in the same program (warm), against a peer interpreter (another crew install) measured in the same run, interleaved; medians of repeats.

Usage: python bench/bench_startup.py [--peer PYTHON] [--rounds N] [--methods fork,spawn,forkserver]
"""
import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import crew

def one(x):
    return x + 1

if __name__ == "__main__":
    out = []
    for _ in range(2):                  # cold, then warm
        t = time.perf_counter()
        with crew.Executor(2, start_method=sys.argv[1]) as ex:
            ex.submit(one, 1).result(timeout=60)
            out.append(time.perf_counter() - t)
    print(json.dumps(out))
"""


def run(python, method):
    r = subprocess.run([python, "-c", CHILD, method], capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise SystemExit(f"{python} {method}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", help="another interpreter with crew installed (e.g. a baseline)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--methods", default="fork,spawn,forkserver")
    a = ap.parse_args()
    pythons = {"this": sys.executable}
    if a.peer:
        pythons["peer"] = a.peer
    methods = tuple(a.methods.split(","))
    times = {(p, m, k): [] for p in pythons for m in methods for k in (0, 1)}
    for _ in range(a.rounds):
        for m in methods:
            for p, exe in pythons.items():     # interleaved: the same load for both
                for k, v in enumerate(run(exe, m)):
                    times[(p, m, k)].append(v)
    print(f"median start-up (Executor(2) + one result), {a.rounds} rounds")
    for m in methods:
        for k, what in enumerate(("cold", "warm")):
            med = {p: statistics.median(times[(p, m, k)]) for p in pythons}
            line = f"  {m:10} {what}: this {med['this'] * 1e3:7.1f} ms"
            if "peer" in med:
                line += f"   peer {med['peer'] * 1e3:7.1f} ms   this/peer {med['this'] / med['peer']:.2f}"
            print(line)


if __name__ == "__main__":
    main()
