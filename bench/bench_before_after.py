"""bench_before_after.py — `python -m crew bench` of two checkouts of crew, interleaved: each
row as crew's ratio to multiprocessing.Pool in the same run, then the paired new/old ratios.

    python bench/bench_before_after.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 5] [--repeats 5] [--out FILE]

Each checkout must have .venv-3.13 with crew installed (make python PY=3.13). Rounds
alternate which checkout runs first. A row's figure per round is crew's ratio to
multiprocessing.Pool measured in that same bench run (so machine load cancels); the
report gives, per row, the median over rounds of the new and the old ratio, their
quotient (new/old: above 1 means the new checkout is better), and min/max.
"""
import argparse
import json
import statistics
import subprocess
import sys

WORKLOADS = "roundtrip,submit,map,numpy8mb,cpu,start"
LOWER_IS_BETTER = {"roundtrip", "numpy8mb", "start"}


def run(checkout, peer, repeats):
    """One bench run of checkout: {workload: crew's ratio to multiprocessing.Pool}."""
    py = f"{checkout}/.venv-3.13/bin/python"
    out = subprocess.run([py, "-m", "crew", "bench", "--workloads", WORKLOADS, "--peers",
                          f"{peer},mp-pool", "--repeats", str(repeats), "--json", "--no-progress"],
                         capture_output=True, text=True, cwd=checkout, timeout=900)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    data = json.loads(out.stdout)
    med = {}
    for r in data["results"]:
        if r["status"] == "ok":
            med[(r["workload"], r["peer"])] = r["median"]
    ratios = {}
    for w in WORKLOADS.split(","):
        c, m = med.get((w, peer)), med.get((w, "mp-pool"))
        if c and m:
            ratios[w] = m / c if w in LOWER_IS_BETTER else c / m
    return ratios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--peers", default="crew-processes,crew-threads")
    ap.add_argument("--repeats", type=int, default=5, help="bench repeats per run")
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = {}
    for k in range(a.rounds):
        order = [("old", a.old), ("new", a.new)]
        if k % 2:
            order.reverse()
        for peer in a.peers.split(","):
            for tag, path in order:
                for w, r in run(path, peer, a.repeats).items():
                    rows.setdefault((peer, w), {"old": [], "new": []})[tag].append(r)
        print(f"round {k + 1}/{a.rounds} done", file=sys.stderr)
    report = []
    print(f"{'peer':16} {'workload':10} {'old vs mp':>10} {'new vs mp':>10} {'new/old':>8}  min..max")
    for (peer, w), v in rows.items():
        pairs = [n / o for n, o in zip(v["new"], v["old"])]
        row = {"peer": peer, "workload": w, "old": statistics.median(v["old"]),
               "new": statistics.median(v["new"]), "new_over_old": statistics.median(pairs),
               "min": min(pairs), "max": max(pairs), "rounds": len(pairs)}
        report.append(row)
        print(f"{peer:16} {w:10} {row['old']:10.2f} {row['new']:10.2f} {row['new_over_old']:8.2f}"
              f"  {row['min']:.2f}..{row['max']:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
