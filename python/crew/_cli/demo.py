"""python -m crew demo: the article's three lessons (GIL, IPC, start
methods) plus I/O, crashes and placement by measurement (kind="auto"),
measured live on this machine."""
import argparse
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


DESCRIPTION = """\
The article's three lessons of threads vs processes (the GIL, IPC, start
methods) plus I/O-bound work and a worker killed mid-batch, measured live on
this machine: each lesson prints a table (crew beside the usual tools) and
saves a PNG chart. The tables go to stdout; a progress bar goes to stderr,
and only when stderr is a terminal, so redirected output is the report alone.

lessons (--lesson NAME):
  gil     CPU-bound pure Python on threads, processes and crew
  io      HTTP requests and file reads: threads overlap the waits
  ipc     a large numpy array handed to a process worker: copy vs shared memory
  start   fork, spawn and forkserver: start-up cost and the fork trap
  crash   one task kills its worker: what each pool gives back"""

EPILOG = """\
examples:
  python -m crew demo
      every lesson (about 40 s), charts in out/demo/
  python -m crew demo --quick
      small sizes (about 20 s)
  python -m crew demo -l gil -l crash
      two lessons only
  python -m crew demo --html report.html
      also one self-contained page with the tables and charts
  python -m crew demo > demo.txt
      the report alone (no progress text in the file)
"""


def add_parser(sub):
    p = sub.add_parser("demo", help="threads vs processes, live: GIL, I/O, IPC, start methods, crashes",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lesson", "-l", action="append", choices=list(LESSONS), metavar="NAME",
                   help=f"run only this lesson (repeatable): {', '.join(LESSONS)}")
    p.add_argument("--quick", action="store_true", help="small sizes (a few seconds per lesson)")
    p.add_argument("--out", default=os.path.join("out", "demo"),
                   help="folder for the PNG charts and summary.json (default: out/demo)")
    p.add_argument("--workers", type=int, default=None,
                   help="process workers for CPU-bound lessons (default: crew.cpu_count())")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is drawn on stderr, and only when that is a terminal)")
    p.add_argument("--html", metavar="FILE", default=None,
                   help="also write one self-contained HTML page (tables and charts inside)")
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


def missing_modules(names=("matplotlib", "numpy")):
    """What the demo needs and this interpreter lacks (pip install 'crew[demo]')."""
    import importlib.util
    return [m for m in names if importlib.util.find_spec(m) is None]


def run(args):
    missing = missing_modules()
    if missing:
        # said before any lesson runs, not as a traceback at the first chart
        print(f"crew demo: needs {' and '.join(missing)} (its charts and the IPC lesson's "
              f"array), not installed here. Install them with: pip install 'crew[demo]' "
              f"(from a checkout: pip install '.[demo]')", file=sys.stderr)
        return 2
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
    if args.html:
        print(f"   report: {write_html(args.html, rep.lines, results, took)}")
    print(f"   demo took {took:.1f} s")
    return 0


def write_html(path, lines, results, took):
    """One self-contained page: each lesson's text and table as printed, its
    chart inline (a data: URI), so the file can be mailed or opened offline."""
    import base64
    import html
    charts = {os.path.abspath(res["chart"]): res for res in results}
    parts = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("chart: ") and os.path.abspath(stripped[7:]) in charts:
            with open(stripped[7:], "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            name = os.path.basename(stripped[7:])
            parts.append(f'</pre><figure><img src="data:image/png;base64,{data}" alt="chart {html.escape(name)}">'
                         f"<figcaption>{html.escape(name)}</figcaption></figure><pre>")
        elif line.startswith("== "):
            parts.append(f"</pre><h2>{html.escape(line[3:])}</h2><pre>")
        else:
            parts.append(html.escape(line) + "\n")
    summary = "".join(f"<li>{html.escape(res['summary'])}</li>" for res in results)
    body = ("<pre>" + "".join(parts) + "</pre>").replace("<pre></pre>", "").replace("<pre>\n</pre>", "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crew demo: threads vs processes on {html.escape(os.uname().nodename)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
pre {{ background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .85rem; line-height: 1.35; }}
h2 {{ border-bottom: 2px solid #2a9d8f; padding-bottom: .2rem; margin-top: 2.5rem; }}
figure {{ margin: 1rem 0; }} img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
figcaption {{ color: #666; font-size: .8rem; }}
</style></head>
<body>
<h1>crew demo: threads vs processes, measured on this machine</h1>
<p>Python {html.escape(sys.version.split()[0])}, {crew.cpu_count()} usable CPUs, the demo took {took:.1f} s.</p>
<h2>Summary</h2><ul id="summary">{summary}</ul>
{body}
</body></html>
"""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
