"""``python -m crew advise script.py [args]``: runs a script unchanged, records what it sends to pools, and says why each function is not faster.

The script runs as ``__main__`` with its own argv; concurrent.futures'
ThreadPoolExecutor and ProcessPoolExecutor, multiprocessing.Pool and crew's
pools are watched (the functions they get, a few of their real arguments,
when calls were handed over and when they finished). The script's output is
left alone: the report goes to stderr (and ``--json FILE`` as data). After
the script ends, each function's sampled calls are run again: one after
another, on crew threads, on crew processes and under kind="auto", so that
every speedup in the report was measured, not guessed. (A function with side
effects has them again for those calls: ``--no-replay`` skips that part.)
"""
import concurrent.futures as cf
import concurrent.futures.process as cfp
import functools
import json
import multiprocessing.pool as mpp
import os
import sys
import threading
import time
import types

import crew
from crew import _auto, _executor, _runtime as rt

SAMPLE = 8          # calls kept per function
REPLAY_BUDGET = 1.0  # seconds of serial time the replay of one function may take


DESCRIPTION = """\
Runs a script unchanged and says why each function it sends to a pool is not
faster. The script runs as __main__ with its own arguments; ThreadPoolExecutor,
ProcessPoolExecutor, multiprocessing.Pool and crew's pools are watched. Its
output is left alone: the report goes to stderr. After the script ends, a
sample of each function's real calls runs again one after another, on crew
threads, on crew processes and under kind="auto", so every speed-up in the
report is measured, not guessed."""

EPILOG = """\
examples:
  python -m crew advise my_script.py
      run my_script.py, then the report on stderr
  python -m crew advise --json report.json my_script.py --size 100
      the same report as JSON too; my_script.py gets --size 100
  python -m crew advise --no-replay my_script.py
      no calls run again (for functions whose side effects must not repeat);
      bounds are then read from the script's own run"""


def add_parser(sub):
    import argparse
    p = sub.add_parser("advise", help="run a script and say why its pool is not faster",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-': stdout, "
                   "after the script's own output)")
    p.add_argument("--no-replay", action="store_true",
                   help="do not run sampled calls again (no speedups measured, bounds guessed "
                   "from the script's own run)")
    p.add_argument("script", help="the Python script to run")
    p.add_argument("args", nargs=argparse_remainder(), help="its arguments")
    p.set_defaults(run=run)
    return p


def argparse_remainder():
    import argparse
    return argparse.REMAINDER


# ------------------------------------------------------------ recording --

class _Fn:
    """What the script sent to pools for one function."""

    def __init__(self, fn, name):
        self.fn, self.name = fn, name
        self.calls = 0
        self.samples = []
        self.pools = {}            # "ThreadPoolExecutor(4)" -> calls
        self.kind = None           # "threads" or "processes": where the script ran it
        self.workers = 1
        self.first = None
        self.last = None
        self.lock = threading.Lock()

    def sent(self, pool, kind, workers, argsets):
        now = time.perf_counter()
        with self.lock:
            self.calls += len(argsets)
            self.pools[pool] = self.pools.get(pool, 0) + len(argsets)
            self.kind, self.workers = kind, max(self.workers, workers)
            if self.first is None:
                self.first = now
            for a in argsets:
                if len(self.samples) < SAMPLE:
                    self.samples.append(a)

    def done(self, *_):
        self.last = time.perf_counter()


class Recorder:
    def __init__(self):
        self.fns = {}
        self.saved = []

    def fn(self, fn):
        key, name = _auto.function_key(fn)
        r = self.fns.get(key)
        if r is None:
            r = self.fns[key] = _Fn(fn, name)
        return r

    def patch(self, owner, name, wrapper):
        orig = getattr(owner, name)
        self.saved.append((owner, name, orig))
        setattr(owner, name, wrapper(orig))

    def restore(self):
        for owner, name, orig in reversed(self.saved):
            setattr(owner, name, orig)
        self.saved = []

    def install(self):
        rec = self

        def cf_submit(kind):
            def wrap(orig):
                @functools.wraps(orig)
                def submit(self, fn, /, *args, **kwargs):
                    f = orig(self, fn, *args, **kwargs)
                    try:
                        if (isinstance(fn, functools.partial)
                                and fn.func is cfp._process_chunk):   # ProcessPoolExecutor.map
                            r, items = rec.fn(fn.args[0]), [(a, {}) for a in args[0]]
                        else:
                            r, items = rec.fn(fn), [(args, kwargs)]
                        r.sent(f"{type(self).__name__}({self._max_workers})", kind,
                               self._max_workers, items)
                        f.add_done_callback(r.done)
                    except Exception:
                        pass
                    return f
                return submit
            return wrap
        self.patch(cf.ThreadPoolExecutor, "submit", cf_submit("threads"))
        self.patch(cf.ProcessPoolExecutor, "submit", cf_submit("processes"))

        def mp_result(orig):
            @functools.wraps(orig)
            def _set(self, *a, **k):
                out = orig(self, *a, **k)
                r = getattr(self, "_crew_advise", None)
                if r is not None:
                    r.done()
                return out
            return _set
        for cls in (mpp.ApplyResult, mpp.MapResult, mpp.IMapIterator):
            self.patch(cls, "_set", mp_result)

        def pool_label(pool):
            kind = "threads" if isinstance(pool, mpp.ThreadPool) else "processes"
            return f"{type(pool).__name__}({pool._processes})", kind, pool._processes

        def apply_async(orig):
            @functools.wraps(orig)
            def wrapper(self, func, args=(), kwds={}, *a, **k):
                res = orig(self, func, args, kwds, *a, **k)
                r = rec.fn(func)
                r.sent(*pool_label(self), [(tuple(args), dict(kwds))])
                res._crew_advise = r
                return res
            return wrapper
        self.patch(mpp.Pool, "apply_async", apply_async)

        def map_async(orig):
            @functools.wraps(orig)
            def wrapper(self, func, iterable, mapper, *a, **k):
                if not hasattr(iterable, "__len__"):
                    iterable = list(iterable)
                res = orig(self, func, iterable, mapper, *a, **k)
                r = rec.fn(func)
                star = mapper is mpp.starmapstar
                r.sent(*pool_label(self), [((tuple(x) if star else (x,)), {})
                                           for x in iterable])
                res._crew_advise = r
                return res
            return wrapper
        self.patch(mpp.Pool, "_map_async", map_async)

        def imap(orig):
            @functools.wraps(orig)
            def wrapper(self, func, iterable, chunksize=1):
                r = rec.fn(func)
                label = pool_label(self)

                def watched():
                    for x in iterable:
                        r.sent(*label, [((x,), {})])
                        yield x
                res = orig(self, func, watched(), chunksize)
                res._crew_advise = r
                return res
            return wrapper
        self.patch(mpp.Pool, "imap", imap)
        self.patch(mpp.Pool, "imap_unordered", imap)

        def crew_submit(orig):
            @functools.wraps(orig)
            def wrapper(self, fn, args, kwargs, timeout, flags=rt.F_CALL, *a, **k):
                f = orig(self, fn, args, kwargs, timeout, flags, *a, **k)
                try:
                    r = rec.fn(fn)
                    if flags == rt.F_CHUNK:
                        items = [(tuple(x), {}) for x in args]
                    elif flags == rt.F_CHUNK1:
                        items = [((x,), {}) for x in args]
                    else:
                        items = [(args, kwargs or {})]
                    kind = self._kind if self._kind != "auto" else "auto"
                    r.sent(f"crew.Executor(kind={self._kind!r}, {self._max_workers})", kind,
                           self._max_workers, items)
                    f.add_done_callback(r.done)
                except Exception:
                    pass
                return f
            return wrapper
        self.patch(_executor.Executor, "_submit", crew_submit)
        from crew import _auto as A
        self.patch(A.AutoExecutor, "_submit", crew_submit)


# ---------------------------------------------------------------- replay --

def _timed_serial(fn, samples):
    """Each call's time, less its waits for a core (Linux schedstat): the
    baseline is one call after another on a core of its own, however busy
    the machine is; and its CPU time."""
    walls, cpus = [], []
    for a, k in samples:
        q, c, t = _auto._queued(), time.thread_time(), time.perf_counter()
        fn(*a, **k)
        w = time.perf_counter() - t
        walls.append(max(w - (_auto._queued() - q), 1e-9))
        cpus.append(time.thread_time() - c)
    return walls, cpus


def _timed_pool(ex, fn, samples):
    t = time.perf_counter()
    fs = [ex.submit(fn, *a, **k) for a, k in samples]
    for f in fs:
        f.result()
    return time.perf_counter() - t


def replay(r):
    """Runs r's sampled calls serially, on threads, on processes and auto."""
    fn, samples = r.fn, list(r.samples)
    walls, cpus = _timed_serial(fn, samples[:1])
    per = max(walls[0], 1e-6)
    n = crew.cpu_count()
    want = max(16, 8 * n, 2 * r.workers)
    if per < 1e-3:    # tiny calls: enough of them that the hand-over shows
        want = 2000
    k = max(2, min(want, int(REPLAY_BUDGET / per)))
    while len(samples) < k:
        samples += samples[:k - len(samples)]
    samples = samples[:k]
    walls, cpus = _timed_serial(fn, samples)
    serial = sum(walls)
    out = {"sample_calls": k, "serial_s": serial, "mean_ms": serial / k * 1e3,
           "cpu_per_wall": min(1.0, sum(cpus) / max(serial, 1e-9)),
           "imbalance": max(walls) / max(sorted(walls)[len(walls) // 2], 1e-9)}
    try:
        out["pickled_bytes"] = sum(memoryview(p).nbytes for p in
                                   rt.encode_call(fn, samples[0][0], samples[0][1], rt.F_CALL))
    except Exception as e:
        out["pickled_bytes"] = None
        out["unpicklable"] = str(e).split(". Fix")[0]
    # as many threads on the threads side as kind="auto" has: the same pool of threads
    nthreads = max(r.workers if r.kind == "threads" else 0, 32, 4 * n)
    for kind, make in (("threads", lambda: crew.Executor(nthreads, kind="threads")),
                       ("processes", lambda: crew.Executor(n)),
                       ("auto", lambda: crew.Executor(n, kind="auto", max_threads=nthreads))):
        if kind == "processes" and out["pickled_bytes"] is None:
            out[kind] = None
            continue
        try:
            with make() as ex:
                list(ex.map(abs, range(4 * n)))     # workers up before the clock starts
                took = _timed_pool(ex, fn, samples)
                out[kind] = serial / took
                if kind == "auto":
                    rows = [d for d in ex.placement() if d["function"] == r.name]
                    out["auto_placement"] = rows[0]["kind"] if rows else None
                    out["auto_reason"] = rows[0]["reason"] if rows else None
        except Exception as e:
            out[kind] = None
            out[kind + "_error"] = f"{type(e).__name__}: {e}"
    return out


# ---------------------------------------------------------------- advice --

def judge(r, m):
    """The bounds, the best kind and the one change, from the figures."""
    bounds = []
    got = None
    if m and r.first is not None and r.last is not None and r.last > r.first:
        got = r.calls * m["mean_ms"] / 1e3 / (r.last - r.first)
    if r.calls < r.workers:
        bounds.append(f"too few tasks ({r.calls} for {r.workers} workers)")
    if not m:
        return {"got": got, "bounds": bounds or ["unknown (not replayed)"], "best": None,
                "change": "run without --no-replay to measure"}
    speeds = {k: m.get(k) for k in ("threads", "processes", "auto") if m.get(k)}
    fixed = {k: v for k, v in speeds.items() if k != "auto"}
    best = max(fixed, key=fixed.get) if fixed else "threads"
    if speeds.get("auto") and speeds["auto"] > 1.25 * fixed.get(best, 0):
        best = "auto"     # only when it beats both fixed kinds clearly
    cpw = m["cpu_per_wall"]
    if cpw < 0.3:
        bounds.append(f"I/O wait (on a CPU {cpw:.0%} of its time)")
    elif (m.get("threads") or 0) < 1.5 and m["mean_ms"] >= 0.2:
        bounds.append(f"the GIL (pure Python on a CPU {cpw:.0%} of its time; threads "
                      f"{m.get('threads') or 0:.2f}x)")
    if m["mean_ms"] < 0.2:
        bounds.append(f"too-small tasks ({m['mean_ms']:.3f} ms each)")
    if m.get("pickled_bytes") and m.get("processes") and m["processes"] < 1 and \
            m["pickled_bytes"] > 1 << 20:
        bounds.append(f"IPC/pickling ({m['pickled_bytes'] / 1e6:.1f} MB per call)")
    if m["imbalance"] > 3:
        bounds.append(f"imbalance (the slowest call {m['imbalance']:.1f}x the median)")
    if m.get("unpicklable"):
        bounds.append(f"cannot cross to a process ({m['unpicklable']})")
    # GIL-bound on a machine too busy for processes to show their gain: the
    # bound stands (threads cannot run it in parallel anywhere); processes
    # are named unless they measured clearly slower
    if (cpw >= 0.7 and m["mean_ms"] >= 0.2 and (m.get("threads") or 0) < 1.5
            and best == "threads" and (m.get("processes") or 0) >= 0.75 * m["threads"]):
        best = "processes"
    # one change: the fastest kind, unless the pool in use is within 10% of it
    used = r.kind if r.kind in speeds else None
    if m["mean_ms"] < 0.2:
        best = "threads" if (speeds.get("threads") or 0) >= (speeds.get("processes") or 0) \
            else best
        change = (f"batch the calls: each takes {m['mean_ms'] * 1e3:.1f} us, less than handing "
                  f"it to a worker costs; map(fn, items, chunksize=1000) or a loop inside "
                  f"one task")
    elif used and used == best:
        change = f"none needed: {used} measured best"
    elif used and speeds[used] >= 0.9 * speeds[best] and best != "processes":
        change = f"none needed: {used} are within 10% of the best ({best})"
    elif best == "processes":
        change = ("run it on processes: ProcessPoolExecutor / multiprocessing.Pool / "
                  "crew.Executor() (or crew.Executor(kind='auto'))")
    elif best == "threads":
        change = ("run it on threads: ThreadPoolExecutor / crew.Executor(kind='threads') "
                  "(or kind='auto')")
    else:
        change = "use crew.Executor(kind='auto'): it places this function by measurement"
    if r.calls < r.workers and best != "threads":
        change += f"; and give it more tasks than workers ({r.calls} < {r.workers})"
    return {"got": got, "bounds": bounds or ["nothing obvious: it scales"], "best": best,
            "change": change}


def report(fns, replayed, out):
    rows = []
    for r in fns:
        m = replayed.get(r.name)
        j = judge(r, m)
        rows.append({"function": r.name, "calls": r.calls, "pools": r.pools, "ran_on": r.kind,
                     "speedup_got": j["got"],
                     "speedup_threads": m and m.get("threads"),
                     "speedup_processes": m and m.get("processes"),
                     "speedup_auto": m and m.get("auto"),
                     "auto_placement": m and m.get("auto_placement"),
                     "auto_reason": m and m.get("auto_reason"),
                     "bounds": j["bounds"], "recommend": j["best"], "change": j["change"],
                     "measured": m})
    w = out.write
    w("\n== crew advise: why the pools are not faster\n")
    if not rows:
        w("   no function was sent to a pool (concurrent.futures, multiprocessing.Pool, crew)\n")

    def x(v):
        return "-" if v is None else f"{v:.2f}x"
    for d in rows:
        w(f"\n{d['function']}: {d['calls']} calls on {', '.join(d['pools'])}\n")
        w(f"   speedup got {x(d['speedup_got'])}   on threads {x(d['speedup_threads'])}   "
          f"on processes {x(d['speedup_processes'])}   kind='auto' {x(d['speedup_auto'])}"
          f"   (vs one call after another, measured on {d['measured']['sample_calls'] if d['measured'] else 0} of its calls)\n")
        w(f"   bound by: {'; '.join(d['bounds'])}\n")
        if d["auto_reason"]:
            where = ("was still measuring it" if d["auto_placement"] == "measuring"
                     else f"put it on {d['auto_placement']}")
            w(f"   kind='auto' {where}: {d['auto_reason']}\n")
        w(f"   change: {d['change']}\n")
    return rows


# ------------------------------------------------------------------ run --

def run_script(path, argv):
    """Runs path as __main__ with argv; returns its exit status."""
    path = os.path.abspath(path)
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    old_main, old_argv, old_path0 = sys.modules["__main__"], sys.argv, sys.path[0]
    sys.modules["__main__"] = main
    sys.argv = [path] + list(argv)
    sys.path[0] = os.path.dirname(path)
    status = 0
    try:
        exec(code, main.__dict__)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        sys.stdout.flush()
    return status, main, old_main, old_path0


def run(args):
    if not os.path.isfile(args.script):
        print(f"crew advise: no such script: {args.script}", file=sys.stderr)
        return 2
    rec = Recorder()
    rec.install()
    try:
        status, main, old_main, old_path0 = run_script(args.script, args.args)
    finally:
        rec.restore()
    fns = sorted(rec.fns.values(), key=lambda r: -r.calls)
    replayed = {}
    try:   # replay with the script's __main__ still in place: its functions cross by name
        if not args.no_replay:
            for r in fns:
                if r.samples:
                    try:
                        replayed[r.name] = replay(r)
                    except Exception as e:
                        print(f"crew advise: could not replay {r.name}: {e}", file=sys.stderr)
    finally:
        sys.modules["__main__"] = old_main
        sys.path[0] = old_path0
    rows = report(fns, replayed, sys.stderr)
    if args.json:
        data = json.dumps({"script": args.script, "args": args.args, "exit_status": status,
                           "cpu_count": crew.cpu_count(), "functions": rows}, indent=2,
                          default=str)
        if args.json == "-":
            sys.stdout.write(data + "\n")
        else:
            with open(args.json, "w") as f:
                f.write(data + "\n")
    return status
