"""python -m crew bench: crew beside Python's pools, in one run.

Workloads (each on a fresh, warmed pool; median of the repeats, which are
interleaved: each round measures every peer once, in an order that reverses
from round to round):
  roundtrip  submit one no-op, wait for its result    us per call, lower better
  submit     submit many no-ops, wait for them all    tasks/s, higher better
  map        a chunked map of a no-op (4 chunks       items/s, higher better
             per worker)
  map1ms     the same map of ~1 ms pure-Python        items/s, higher better
             items (50 per worker; --quick 25)
  numpy8mb   one call with an 8 MB numpy argument     ms per call, lower better
  cpu        pure-Python CPU batch: serial time       speedup x, higher better
             divided by pool time
  cpubusy    the same batch: the CPU seconds its      cores x, higher better
             tasks took in the workers divided by
             pool time (how busy the pool kept its
             workers, whatever their speed)
  start      create a pool, first result, shut down   ms, lower better

Ratios compare each peer with the best peer of its kind (crew excluded) of
the same run: process pools with the best process pool, thread pools with
the best thread pool; above 1 is better than it. A crew row below 1.0 is
flagged BEHIND (in red on a terminal). The targets table checks crew's goals.

Peers: crew (processes, threads), multiprocessing.Pool, ProcessPoolExecutor,
ThreadPoolExecutor and, from PyPI (pip install 'crew[bench]'), joblib/loky,
pebble, mpire and Ray (ray.util.multiprocessing.Pool and plain ray.remote
tasks); dask.distributed if installed. A peer that is not installed, or fails,
is a row that says so. Ray is started once per run (ray.init, num_cpus =
workers, no dashboard, loopback only), after every other peer is measured, and
shut down at the end; its ray.init and ray.shutdown are counted in the Ray
rows' pool start.
"""
import csv
import json
import math
import os
import sys
import time
import traceback

import crew

from . import common as C
from .peers import PEERS, RAY, is_ray, shutdown_runtimes
from .tasks import nbytes, noop, spin, timed_spin

WORKLOADS = {
    # name: (unit, higher is better, label)
    "roundtrip": ("us", False, "no-op round trip"),
    "submit": ("tasks/s", True, "submit throughput"),
    "map": ("items/s", True, "chunked map throughput"),
    "map1ms": ("items/s", True, "map of 1 ms items"),
    "numpy8mb": ("ms", False, "8 MB numpy argument"),
    "cpu": ("x", True, "CPU-bound speedup"),
    "cpubusy": ("x", True, "CPU-bound cores busy"),
    "start": ("ms", False, "pool start"),
}

CPU_ROWS = ("cpu", "cpubusy")   # x of the cores: plotted on a linear axis, ideal = workers

#           default  --quick
SIZES = {"repeats": (5, 5), "roundtrip_n": (2000, 200), "submit_n": (10000, 1500),
         "map_n": (200000, 20000), "numpy_n": (5, 2), "cpu_seconds": (1.0, 0.25),
         "map1ms_per_worker": (50, 25)}


# -------------------------------------------------------------- workloads --

def _warm(peer, p, n):
    for f in [peer.submit(p, noop, i) for i in range(2 * n)]:
        f.result()


def w_roundtrip(peer, p, s, n):
    k = s["roundtrip_n"]
    t = time.perf_counter()
    for _ in range(k):
        peer.submit(p, noop).result()
    return (time.perf_counter() - t) / k * 1e6


def w_submit(peer, p, s, n):
    k = s["submit_n"]
    t = time.perf_counter()
    fs = [peer.submit(p, noop, i) for i in range(k)]
    for f in fs:
        f.result()
    return k / (time.perf_counter() - t)


def _timed_map(peer, p, fn, items, n, last):
    """Items per second of one map of fn over items (4 chunks per worker);
    its last value must be `last`."""
    k = len(items)
    t = time.perf_counter()
    out = peer.map(p, fn, items, max(1, math.ceil(k / (4 * n))))
    dt = time.perf_counter() - t
    assert len(out) == k and out[-1] == last
    return k / dt


def w_map(peer, p, s, n):
    return _timed_map(peer, p, noop, range(s["map_n"]), n, s["map_n"] - 1)


def w_map1ms(peer, p, s, n):
    return _timed_map(peer, p, spin, s["map1ms_items"], n, s["map1ms_value"])


def w_numpy(peer, p, s, n):
    a = s["array"]
    k = s["numpy_n"]
    t = time.perf_counter()
    for _ in range(k):
        assert peer.submit(p, nbytes, a).result() == a.nbytes
    return (time.perf_counter() - t) / k * 1e3


def w_cpu(peer, p, s, n):
    """Serial run and pool run back to back; their ratio (so that a machine
    that gets busier or quieter during the bench skews both alike)."""
    items = s["cpu_items"]
    t = time.perf_counter()
    expect = [spin(x) for x in items]
    serial = time.perf_counter() - t
    t = time.perf_counter()
    out = [f.result() for f in [peer.submit(p, spin, x) for x in items]]
    dt = time.perf_counter() - t
    assert out == expect
    return serial / dt


def w_cpubusy(peer, p, s, n):
    """The cpu batch again, each task timing its own CPU where it ran: the
    tasks' CPU seconds over the pool's time. It leaves out how fast a pool's
    worker processes run the code (which differs from one fork server or
    process to another by up to ~15% on a VM: see bench/bench_cpu_split.py)
    and keeps what the pool itself adds: dispatch gaps, the tail, CPU taken
    from the workers."""
    items = s["cpu_items"]
    t = time.perf_counter()
    out = [f.result() for f in [peer.submit(p, timed_spin, x) for x in items]]
    dt = time.perf_counter() - t
    assert [v for v, _ in out] == [s["cpu_value"]] * len(items)
    return sum(c for _, c in out) / dt


RUNNERS = {"roundtrip": w_roundtrip, "submit": w_submit, "map": w_map, "map1ms": w_map1ms,
           "numpy8mb": w_numpy, "cpubusy": w_cpubusy,
           "cpu": w_cpu}


def _why(e):
    return f"{type(e).__name__}: {e}".strip().splitlines()[0] if str(e) else type(e).__name__


def measure_round(peer, workloads, s, n, method, step, first):
    """{workload: value or the error string} for one round of one peer: one
    fresh, warmed pool serves every workload but "start", which makes its own
    pool (after one warm-up start in the first round: a fork server,
    imports). A workload that fails is an error for that workload; a pool
    that cannot be made, for all of them."""
    out = {}
    pooled = [w for w in workloads if w != "start"]
    if pooled:
        p = None
        try:
            p = peer.make(n, method)
            _warm(peer, p, n)
        except Exception as e:
            for w in pooled:
                step(w)
                out[w] = _why(e)
            _debug()
        else:
            try:
                for w in pooled:
                    step(w)
                    try:
                        if w == "numpy8mb":
                            peer.submit(p, nbytes, s["array"]).result()
                        out[w] = RUNNERS[w](peer, p, s, n)
                    except Exception as e:
                        out[w] = _why(e)
                        _debug()
            finally:
                try:
                    peer.close(p)
                except Exception:
                    _debug()
    if "start" in workloads:
        step("start")
        try:
            got = peer.start_samples(n, method, 1, warm=first)
            if got:
                out["start"] = got[0]
        except Exception as e:
            out["start"] = _why(e)
            _debug()
    return out


def measure_interleaved(names, workloads, s, n, method, repeats, step, took):
    """{peer: {workload: values or the error string}}: `repeats` rounds, each
    measuring every peer once, in an order that reverses from round to round
    (a machine that gets busier or quieter during the run then weighs on
    every peer alike). A peer whose workload failed once is not measured at
    it again."""
    measured = {x: {} for x in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            peer = PEERS[name]
            t = time.perf_counter()
            todo = [w for w in workloads if not isinstance(measured[name].get(w), str)]
            if todo:
                try:
                    got = measure_round(peer, todo, s, n, method, lambda w, p=peer: step(p, w), r == 0)
                except Exception as e:  # a peer's failure is a row, not a crash
                    got = {w: _why(e) for w in todo}
                    _debug()
                for w, v in got.items():
                    if isinstance(v, str):
                        measured[name][w] = v
                    else:
                        measured[name].setdefault(w, []).append(v)
            took[name] = took.get(name, 0.0) + time.perf_counter() - t
    return measured


def _debug():
    if os.environ.get("CREW_BENCH_DEBUG"):
        traceback.print_exc()


# ------------------------------------------------------------------ command --

EPILOG = """\
examples:
  python -m crew bench --quick
      every workload and installed peer (about a minute)
  python -m crew bench -w roundtrip,numpy8mb -p crew-processes,mp-pool
      two workloads, two peers
  python -m crew bench --quick --json > bench.json
      results as JSON on stdout (the table goes to stderr)

Files: out/bench/bench.csv, bench.json and bench.png (--out: another folder)."""

def add_parser(sub):
    p = sub.add_parser("bench", help="crew against multiprocessing, concurrent.futures, loky, pebble, "
                                     "mpire, Ray",
                       description=__doc__, epilog=EPILOG,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--workloads", "-w", default=",".join(WORKLOADS),
                   help=f"comma-separated, from: {','.join(WORKLOADS)} (default: all)")
    p.add_argument("--peers", "-p", default=",".join(PEERS),
                   help=f"comma-separated, from: {','.join(PEERS)} (default: all installed)")
    p.add_argument("--workers", type=int, default=None, help="workers per pool (default: crew.cpu_count())")
    p.add_argument("--start-method", default="forkserver", choices=("fork", "spawn", "forkserver"),
                   help="start method of every process pool that has one (default: forkserver)")
    p.add_argument("--repeats", type=int, help="interleaved repeats per measure; the median is "
                                                "reported, with min and max (5)")
    p.add_argument("--quick", action="store_true", help="small counts (a few minutes with every peer)")
    p.add_argument("--out", default=os.path.join("out", "bench"),
                   help="folder for bench.csv, bench.json and bench.png (default: out/bench)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is drawn on stderr, and only when that is a terminal)")
    p.add_argument("--json", action="store_true",
                   help="print bench.json's content on stdout (the table and notes go to stderr)")
    p.set_defaults(run=run)
    return p


def _pick(text, known, what):
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in known]
    if bad:
        raise SystemExit(f"crew bench: unknown {what} {', '.join(bad)}; choose from {', '.join(known)}")
    return names


def _ratio(workload, value, best):
    if best is None or value is None or value != value or best != best or value <= 0:
        return None
    return value / best if WORKLOADS[workload][1] else best / value


NOT_RUN = "not installed"


def run(args):
    if not getattr(args, "json", False):
        return _run(args)
    import contextlib
    # --json: stdout carries the JSON alone; what a person reads goes to stderr
    with contextlib.redirect_stdout(sys.stderr):
        rc = _run(args)
    with open(os.path.join(args.out, "bench.json")) as f:
        sys.stdout.write(f.read() + "\n")
    return rc


def _run(args):
    from .demo import missing_modules
    missing = missing_modules(("numpy", "matplotlib"))
    if missing:
        print(f"crew bench: needs {' and '.join(missing)} (the 8 MB workload, the chart), not "
              f"installed here. Install them, and the peers to race, with: pip install "
              f"'crew[bench]' (from a checkout: pip install '.[bench]')", file=sys.stderr)
        return 2
    import numpy as np
    workloads = _pick(args.workloads, WORKLOADS, "workload")
    peer_names = _pick(args.peers, PEERS, "peer")
    n = args.workers or crew.cpu_count()
    method = args.start_method
    s = {k: (q if args.quick else d) for k, (d, q) in SIZES.items()}
    repeats = args.repeats or s["repeats"]
    notes = []
    missing = {}        # peer -> why it is not measured ("not installed (...)")
    for name in peer_names:
        ok, why = PEERS[name].available()
        if not ok:
            missing[name] = why
    # Ray last: its daemons then run while no other peer is measured
    order = sorted((x for x in peer_names if x not in missing), key=is_ray)
    busy = C.cpus_busy_elsewhere()
    if busy is not None and busy > 0.25:
        notes.append(f"other programs kept {busy:.1f} of {os.cpu_count()} CPUs busy as the bench "
                     f"started: figures may be noisy")
    s["array"] = np.ones(8 * 2**20 // 8)
    if "cpu" in workloads or "cpubusy" in workloads:
        from .lesson_gil import calibrate
        tasks = 4 * n
        loop = calibrate(s["cpu_seconds"] / tasks)
        s["cpu_items"] = [loop] * tasks
        s["cpu_value"] = spin(loop)
        notes.append(f"cpu: {tasks} tasks of spin({loop:,}), about {s['cpu_seconds']:g} s serially; "
                     f"each repeat runs them serially, then on the pool")
    if "map1ms" in workloads:
        from .lesson_gil import calibrate
        loop = calibrate(0.001)
        s["map1ms_items"] = [loop] * (s["map1ms_per_worker"] * n)
        s["map1ms_value"] = spin(loop)
        notes.append(f"map1ms: {len(s['map1ms_items'])} items of spin({loop:,}), about 1 ms each")
    for name in order:
        if PEERS[name].note:
            notes.append(f"{PEERS[name].name}: {PEERS[name].note}")
    print(f"crew bench: {n} workers, start method {method} (where a pool has one), "
          f"median of {repeats} interleaved repeats; {crew.cpu_count()} usable CPUs, "
          f"Python {sys.version.split()[0]}")
    for note in notes:
        print("   note: " + note)
    rep = C.Reporter(len(workloads) * len(order) * repeats, "crew bench",
                     enabled=not args.no_progress)
    measured = {}
    took = {}                     # peer -> seconds its measures took
    t_run = time.perf_counter()

    def step(peer, w):
        rep.status(f"{peer.name}: {w}")
        rep.step()
    try:
        # the Ray peers are interleaved among themselves, after the others
        for group in ([x for x in order if not is_ray(x)], [x for x in order if is_ray(x)]):
            if group:
                measured.update(measure_interleaved(group, workloads, s, n, method, repeats, step,
                                                    took))
    finally:
        rep.close()
        try:
            shutdown_runtimes()
        except Exception as e:
            notes.append(f"ray.shutdown failed: {_why(e)}")
    if RAY.shutdown_ms is not None:   # the last Ray peer waited for it
        last = [x for x in order if is_ray(x) and x in took]
        if last:
            took[last[-1]] += RAY.shutdown_ms / 1e3
    seconds = time.perf_counter() - t_run
    late = []                     # notes known only now
    once = RAY.once_ms()
    if RAY.init_ms is not None:
        late.append(f"Ray: ray.init took {RAY.init_ms / 1e3:.2f} s, its first task "
                    f"{RAY.first_ms:.0f} ms, ray.shutdown "
                    + (f"{RAY.shutdown_ms / 1e3:.2f} s" if RAY.shutdown_ms is not None else "?")
                    + "; the Ray rows' pool start includes ray.init and ray.shutdown (once per run)")
    results = []
    for w in workloads:
        for name in peer_names:
            peer = PEERS[name]
            got = measured.get(name, {}).get(w)
            if name in missing:
                status, vals, err = NOT_RUN, [], missing[name]
            elif isinstance(got, str) or got is None:
                status, vals, err = "failed", [], f"failed: {got or 'not measured'}"
            else:
                status, vals, err = "ok", list(got), ""
            note = ""
            if status == "ok" and w == "start" and is_ray(name):
                if once is None:
                    status, vals, err = "failed", [], "failed: ray.init/ray.shutdown not timed"
                else:
                    vals = [v + once for v in vals]
                    note = peer.start_note
            results.append({"workload": w, "peer": name, "peer_name": peer.name,
                            "peer_kind": peer.kind, "unit": WORKLOADS[w][0],
                            "median": C.median(vals), "values": vals, "status": status,
                            "error": err, "note": note})
    add_ratios(results, workloads)
    text = C.table(["workload", "peer", "median", "min - max", "vs best peer of its kind", ""],
                   table_rows(results), ["l", "l", "r", "r", "r", "l"])
    if sys.stdout.isatty():   # a loss in red
        text = "\n".join(f"{RED}{ln}{RESET}" if ln.rstrip().endswith(" BEHIND") or " BEHIND  " in ln
                         else ln for ln in text.splitlines())
    print(text)
    behind = [r for r in results if r["behind"]]
    if behind:
        print("   BEHIND: crew is slower than the best peer of its kind at "
              + "; ".join(f"{WORKLOADS[r['workload']][2]} ({r['peer_name']} "
                          f"{r['vs_best_peer']:.3f}x {r['best_peer']})" for r in behind))
    ray_s = sum(v for k, v in took.items() if is_ray(k))
    late.append(f"measured in {seconds:.0f} s" + (f", the Ray peers {ray_s:.0f} s of it (ray.init and "
                                                  f"ray.shutdown included)" if ray_s else ""))
    for note in late:
        print("   note: " + note)
    notes += late
    targets = check_targets(results, n, method)
    if targets:
        print("")
        print(C.table(["target", "measured", "goal", ""],
                      [(t["target"], t["measured"], t["goal"], "met" if t["met"] else "MISSED")
                       for t in targets], ["l", "r", "r", "l"]))
    os.makedirs(args.out, exist_ok=True)
    paths = write_outputs(args.out, results, targets, n, method, repeats, notes, workloads,
                          seconds, took)
    for p in paths:
        print(f"   wrote {p}")
    return 0


def add_ratios(results, workloads):
    """Each row's ratio to the best peer that is not crew: of its own kind
    (vs_best_peer, best_peer: process pools for processes, thread pools for
    threads) and of the process pools (vs_best_process_peer,
    best_process_peer); above 1 is better than it. A crew row below 1.0
    against its own kind is `behind`."""
    for w in workloads:
        rows = [r for r in results if r["workload"] == w]
        best = {}
        for kind in ("process", "thread"):
            cands = [r for r in rows if r["peer_kind"] == kind and not r["peer"].startswith("crew")
                     and r["median"] == r["median"]]
            if cands:
                pick = (max if WORKLOADS[w][1] else min)(cands, key=lambda r: r["median"])
                best[kind] = (pick["median"], pick["peer_name"])
        for r in rows:
            m, name = best.get(r["peer_kind"], (None, None))
            r["vs_best_peer"], r["best_peer"] = _ratio(w, r["median"], m), name
            m, name = best.get("process", (None, None))
            r["vs_best_process_peer"], r["best_process_peer"] = _ratio(w, r["median"], m), name
            r["behind"] = (r["peer"].startswith("crew") and r["vs_best_peer"] is not None
                           and r["vs_best_peer"] < 1.0)


RED, RESET = "\033[31m", "\033[0m"


def table_rows(results):
    """The printed table: one row per workload and measured peer; a peer that
    is not installed, or failed at every workload for one reason, gets a
    single row at the end."""
    rows, tail = [], []
    peers = list(dict.fromkeys(r["peer"] for r in results))
    whole = {}
    for name in peers:
        rs = [r for r in results if r["peer"] == name]
        if all(r["status"] != "ok" for r in rs) and len({r["error"] for r in rs}) == 1:
            whole[name] = rs[0]
            tail.append(("all workloads", rs[0]["peer_name"], "-", "-", "-", rs[0]["error"][:90]))
    for r in results:
        if r["peer"] in whole:
            continue
        unit, v = r["unit"], r["median"]
        if r["status"] == "ok":
            val = (f"{v:.2f} x" if unit == "x" else f"{v / 1e3:.2f} s" if unit == "ms" and v >= 1e4
                   else C.fmt_num(v, unit))
        else:
            val = "-"
        span = "-"
        if r["status"] == "ok" and len(r["values"]) > 1:
            lo, hi = min(r["values"]), max(r["values"])
            f = (lambda v: f"{v:.2f}") if unit == "x" else (lambda v: C.fmt_num(v))
            span = f"{f(lo)} - {f(hi)}"
        ratio = r["vs_best_peer"]
        digits = 3 if r["behind"] and f"{ratio:.2f}" == "1.00" else 2  # 0.998x, not 1.00x
        cell = "-" if ratio is None else f"{ratio:.{digits}f}x {r['best_peer']}"
        if r["behind"]:
            cell += " BEHIND"
        rows.append((WORKLOADS[r["workload"]][2], r["peer_name"], val, span, cell,
                     (r["error"] or r["note"])[:90]))
    return rows + tail


# issue 15's goals: (workload, crew peer, goal ratio to the best peer of its kind)
RATIO_TARGETS = (("roundtrip", "crew-processes", 15), ("submit", "crew-processes", 20),
                 ("submit", "crew-threads", 1), ("map", "crew-processes", 2),
                 ("map1ms", "crew-processes", 2),
                 ("numpy8mb", "crew-processes", 15))


def check_targets(results, n, method):
    def get(w, peer):
        return next((r for r in results if r["workload"] == w and r["peer"] == peer), None)
    out = []
    for w, peer, goal in RATIO_TARGETS:
        r = get(w, peer)
        if r and r["vs_best_peer"] is not None:
            out.append({"target": f"{WORKLOADS[w][2]} of {r['peer_name']} vs {r['best_peer']}",
                        "measured": f"{r['vs_best_peer']:.1f}x", "goal": f">= {goal}x",
                        "met": r["vs_best_peer"] >= goal})
    r = get("cpu", "crew-processes")
    if r and r["median"] == r["median"]:
        out.append({"target": f"CPU-bound speedup on {n} cores (median)",
                    "measured": f"{r['median']:.2f}x", "goal": f">= {0.97 * n:.2f}x",
                    "met": r["median"] >= 0.97 * n})
        out.append({"target": f"CPU-bound speedup on {n} cores (slowest repeat)",
                    "measured": f"{min(r['values']):.2f}x", "goal": f">= {0.95 * n:.2f}x",
                    "met": min(r["values"]) >= 0.95 * n})
    r = get("cpubusy", "crew-processes")
    if r and r["median"] == r["median"]:
        out.append({"target": f"CPU-bound cores busy on {n} cores (median)",
                    "measured": f"{r['median']:.2f}x", "goal": f">= {0.97 * n:.2f}x",
                    "met": r["median"] >= 0.97 * n})
    r, m = get("start", "crew-processes"), get("start", "mp-pool")
    if r and m and r["median"] == r["median"] and m["median"] == m["median"]:
        out.append({"target": f"pool start vs multiprocessing.Pool ({method})",
                    "measured": f"{r['median']:.0f} ms", "goal": f"<= {m['median']:.0f} ms",
                    "met": r["median"] <= m["median"]})
    return out


def write_outputs(out, results, targets, n, method, repeats, notes, workloads, seconds=None,
                  took=None):
    csv_path = os.path.join(out, "bench.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "peer", "unit", "median", "min", "max", "vs_best_peer", "best_peer",
                    "vs_best_process_peer", "values", "error", "note"])
        for r in results:
            w.writerow([r["workload"], r["peer_name"], r["unit"], f"{r['median']:.6g}",
                        f"{min(r['values']):.6g}" if r["values"] else "",
                        f"{max(r['values']):.6g}" if r["values"] else "",
                        "" if r["vs_best_peer"] is None else f"{r['vs_best_peer']:.4g}",
                        r["best_peer"] or "",
                        "" if r["vs_best_process_peer"] is None else f"{r['vs_best_process_peer']:.4g}",
                        " ".join(f"{v:.6g}" for v in r["values"]), r["error"], r["note"]])
    json_path = os.path.join(out, "bench.json")
    with open(json_path, "w") as f:
        json.dump({"workers": n, "start_method": method, "repeats": repeats,
                   "cpu_count": crew.cpu_count(), "python": sys.version.split()[0],
                   "notes": notes, "seconds": seconds,
                   "peers": {r["peer"]: {"name": PEERS[r["peer"]].name, "kind": PEERS[r["peer"]].kind,
                                         "note": PEERS[r["peer"]].note,
                                         "seconds": (took or {}).get(r["peer"])} for r in results},
                   "results": results, "targets": targets}, f, indent=2)
    plt = C.pyplot()
    cols = min(3, len(workloads))
    rws = math.ceil(len(workloads) / cols)
    npeers = len({r["peer"] for r in results if r["median"] == r["median"]})
    fig, axes = plt.subplots(rws, cols, figsize=(5.6 * cols, 0.5 + max(2.9, 0.9 + 0.24 * npeers) * rws),
                             squeeze=False)
    for ax, w in zip(axes.flat, workloads):
        rs = [r for r in results if r["workload"] == w and r["median"] == r["median"]]
        unit, higher, label = WORKLOADS[w]
        C.barh(ax, [r["peer_name"] for r in rs], [r["median"] for r in rs],
               [C.CREW if r["peer"].startswith("crew") else C.PEER for r in rs],
               fmt=(lambda v, u=unit: f"{v:.2f}x" if u == "x" else C.fmt_num(v)),
               xlabel=f"{unit} ({'higher' if higher else 'lower'} is better"
                      f"{', log scale' if w not in CPU_ROWS else ''})",
               title=label + (" (Ray: + ray.init, ray.shutdown)" if w == "start" and any(
                   is_ray(r["peer"]) for r in rs) else ""), log=w not in CPU_ROWS,
               inside=w in CPU_ROWS)     # values inside the bars: the ideal line never crosses one
        ax.tick_params(axis="y", labelsize=8)
        if w in CPU_ROWS:
            ax.set_xlim(0, max(ax.get_xlim()[1], n * 1.25))
            ax.axvline(n, color="k", ls="--", lw=1)
            ax.set_title(f"{label} (dashed line: ideal, {n}x)", fontsize=11)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    fig.suptitle(f"crew vs Python's pools: {n} workers, {method} start, median of {repeats}",
                 fontsize=12)
    png = C.save(fig, os.path.join(out, "bench.png"))
    return [csv_path, json_path, png]
