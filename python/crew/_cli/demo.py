"""``python -m crew demo``: the article's three lessons (GIL, IPC, start
methods) plus I/O, crashes and placement by measurement (kind="auto"),
measured live on this machine."""
import json
import os
import sys
import time

import crew

from . import common as C
from . import lesson_auto, lesson_crash, lesson_gil, lesson_io, lesson_ipc, lesson_start

LESSONS = {"gil": lesson_gil, "io": lesson_io, "ipc": lesson_ipc, "start": lesson_start,
           "crash": lesson_crash, "auto": lesson_auto}

#            default  --quick
SIZES = {
    "cpu_seconds": (1.0, 0.4),     # serial time of the CPU-bound batch
    "io_tasks": (64, 16),
    "io_workers": (16, 8),
    "latency_ms": (50.0, 20.0),
    "array_mb": (64.0, 16.0),
    "ipc_repeats": (3, 2),
    "start_repeats": (3, 1),
    "crash_tasks": (24, 12),
    "crash_delay_ms": (40.0, 20.0),
    "hang_timeout": (3.0, 1.0),
}


def add_parser(sub):
    p = sub.add_parser("demo", help="threads vs processes, live: GIL, I/O, IPC, start methods, crashes",
                       description=__doc__)
    p.add_argument("--lesson", "-l", action="append", choices=list(LESSONS), metavar="NAME",
                   help=f"run only this lesson (repeatable): {', '.join(LESSONS)}")
    p.add_argument("--quick", action="store_true", help="small sizes (a few seconds per lesson)")
    p.add_argument("--out", default=os.path.join("out", "demo"),
                   help="folder for the PNG charts and summary.json (default: out/demo)")
    p.add_argument("--workers", type=int, default=None,
                   help="process workers for CPU-bound lessons (default: crew.cpu_count())")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    g = p.add_argument_group("sizes (defaults: normal / --quick)")
    g.add_argument("--cpu-seconds", type=float, help="serial time of the CPU-bound batch (1 / 0.4)")
    g.add_argument("--cpu-tasks", type=int, help="tasks in the CPU-bound batch (4 per worker)")
    g.add_argument("--cpu-n", type=int, help="loop size of one CPU task (default: calibrated)")
    g.add_argument("--io-tasks", type=int, help="HTTP requests + file reads (64 / 16)")
    g.add_argument("--io-workers", type=int, help="workers of each I/O pool (16 / 8)")
    g.add_argument("--latency-ms", type=float, help="server latency per request (50 / 20)")
    g.add_argument("--array-mb", type=float, help="size of the IPC array in MB (64 / 16)")
    g.add_argument("--ipc-repeats", type=int, help="timed hand-offs per way (3 / 2)")
    g.add_argument("--start-repeats", type=int, help="timed pool starts per method (3 / 1)")
    g.add_argument("--crash-tasks", type=int, help="tasks in the crash batch (24 / 12)")
    g.add_argument("--crash-delay-ms", type=float, help="duration of one crash-batch task (40 / 20)")
    g.add_argument("--hang-timeout", type=float,
                   help="how long to wait for multiprocessing's hung map (3 / 1 s)")
    p.set_defaults(run=run)
    return p


class Ctx:
    def __init__(self, args, rep):
        self.args, self.rep = args, rep
        self.workers = args.workers or crew.cpu_count()
        self.out = args.out


def run(args):
    for k, (normal, quick) in SIZES.items():
        if getattr(args, k, None) is None:
            setattr(args, k, quick if args.quick else normal)
    names = args.lesson or list(LESSONS)
    names = [n for n in LESSONS if n in names]
    os.makedirs(args.out, exist_ok=True)
    total = sum(LESSONS[n].STEPS for n in names)
    rep = C.Reporter(total, "crew demo", enabled=not args.no_progress)
    ctx = Ctx(args, rep)
    t0 = time.perf_counter()
    rep.print(f"crew demo: threads vs processes on this machine — {crew.cpu_count()} usable CPUs "
              f"({os.cpu_count()} on the host), Python {sys.version.split()[0]}, "
              f"{ctx.workers} workers{', quick sizes' if args.quick else ''}")
    results = []
    try:
        for n in names:
            results.append(LESSONS[n].run(ctx))
    finally:
        rep.close()
    took = time.perf_counter() - t0
    print("")
    print("== Summary: where crew stood against each peer")
    for res in results:
        print("   " + res["summary"])
    print(f"   charts: {', '.join(res['chart'] for res in results)}")
    summary = os.path.join(args.out, "summary.json")
    with open(summary, "w") as f:
        json.dump({"seconds": took, "workers": ctx.workers, "cpu_count": crew.cpu_count(),
                   "lessons": results}, f, indent=2, default=str)
    print(f"   numbers: {summary}")
    print(f"   demo took {took:.1f} s")
    return 0
