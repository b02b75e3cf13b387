"""kind="auto": one executor with thread and process workers that places each function by measurement.

How it measures and decides is in docs/placement.md; in short:

- every function (keyed by its code object, so a lambda or closure made
  again and again is one function) starts on threads, with at most
  ``TRIAL_WIDTH`` of its calls in flight (the rest wait in the parent) so
  that its first runs are measured cleanly: wall time, the thread's CPU time
  and, on Linux, the time the thread waited for a core (``schedstat``), so
  that a busy machine is not mistaken for the GIL;
- ``efficiency`` = CPU / (wall - waiting for a core): a thread that waits on
  I/O is near 0, pure Python sharing the GIL with another near 1/2, work
  that releases the GIL (numpy, hashlib, zlib) near 1;
- CPU-bound work that does not run in parallel on threads goes to process
  workers; work that waits, scales on threads, or is too small for a process
  hop stays on threads; a function whose call or result cannot be pickled
  stays on threads; so does everything on an interpreter without a GIL;
- decisions are revisited (the CPU a call takes changing 4x, a function on
  processes that now waits) with hysteresis: a move needs a full new window
  of runs, and each move of a function doubles that window.
"""
import collections
import concurrent.futures as cf
import functools
import os
import sys
import threading
import time
import types
import weakref
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING

from . import _runtime as rt

GIL_HELD = 2.5e-3      # ... this long: something held it all along (it waits a 5 ms switch interval)
GIL_BUSY = 1e-3       # the probe waited this long for the GIL on average: others hold it
MAX_DEFERS = 4         # trial windows a function may restart because the GIL was busy
TRIAL_WIDTH = 2        # a function's calls on trial in flight at once (2: enough to see the GIL)
TRIAL_MIN_RUNS = 8     # runs before a decision on short tasks ...
TRIAL_MIN_BUSY = 0.03  # ... or this many seconds of them running
GAIN_WITH_PROBE = 1.1  # ... or this much when the GIL probe saw the GIL busy meanwhile
GAIN = 1.25            # processes must run calls this much faster than threads to win
WAITS_EFF = 0.2        # efficiency below this: the thread mostly waits (I/O)
SCALES_EFF = 0.75      # efficiency from this, two at once: it runs in parallel on threads
SMALL_HOPS = 4         # CPU per run below this many process round trips: too small to move
REVISIT_RUNS = 32      # runs per revisit window (doubles with each move of a function)
CPU_CHANGE = 4.0       # CPU per run changed by this factor: measure again
DEFAULT_HOP = 150e-6   # round trip assumed until the process pool measured its own
KINDS = ("threads", "processes")

_local = threading.local()   # .auto: the AutoExecutor whose thread task runs on this thread


def gil_enabled():
    """False on a free-threaded interpreter running without the GIL
    (``sys._is_gil_enabled()``, Python 3.13+); True everywhere else.

    Asked at run time, not from the build (``Py_GIL_DISABLED``): a
    free-threaded build runs with the GIL when ``PYTHON_GIL=1`` or
    ``-X gil=1`` asks for it, or once it imports an extension module that
    does not declare free-threading support (the GIL is enabled then)."""
    f = getattr(sys, "_is_gil_enabled", None)
    return True if f is None else bool(f())


# ------------------------------------------------------------ clocks --

def _schedstat_fd():
    try:
        return os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return -1


def _queued():
    """Seconds this thread has waited for a core (Linux schedstat), or 0.0."""
    fd = getattr(_local, "fd", None)
    if fd is None:
        fd = _local.fd = _schedstat_fd()   # one per thread: thread-self is resolved at open
    if fd < 0:
        return 0.0
    try:
        return int(os.pread(fd, 64, 0).split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return 0.0


def _task_schedstat(tid):
    """(cpu, queued) seconds of a thread of this process, by native id."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
            a = f.read().split()
        return int(a[0]) * 1e-9, int(a[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return None


def measured(flags, fn, args, kwargs, deep=True):
    """Runs a call or a chunk (the worker side of kind="auto", threads and
    processes alike) and returns (outcome, cpu, wall, queued, start, end,
    queued before start):
    the outcome as crew's runner makes it, and what the run cost."""
    # waits for a core since this thread's last call ended: mostly the wake-up
    # for this call, which a trial counted from dispatch must not blame on the GIL.
    # Read for trial runs only (deep): two preads per call are not free
    # Known when this thread's previous call was read too, or it had none (its
    # waits so far were all before calls); after unread calls, taken as 0
    q0 = _queued() if deep else 0.0
    last = getattr(_local, "q_end", 0.0)
    pre = q0 - last if deep and last is not None else 0.0
    c0 = time.thread_time()
    t0 = time.perf_counter()
    out = rt._run_call(flags, fn, args, kwargs)
    t1 = time.perf_counter()
    c1 = time.thread_time()
    q1 = _queued() if deep else 0.0
    _local.q_end = q1 if deep else None
    r = (out, c1 - c0, t1 - t0, q1 - q0, t0, t1, pre)
    if rt.IN_WORKER:   # an outcome that cannot cross is fixed as a fixed kind's would be
        return rt.Carrier(r, flags in rt.CHUNKS)
    return r


def _noop():
    return None


COPY_RATE = 4e9   # bytes/s assumed for the copy into shared memory (memcpy-class)


def _pickle_check(fn, args, kwargs, flags, out):
    """(error or None, bytes, seconds): whether a call and its result could
    cross to a process worker, and what that costs (pickling, plus the copy
    of out-of-band buffers into shared memory). Run once per trial.
    Timed on this thread's CPU clock: on the wall clock, a switch of the
    GIL to another trial call in the middle (5 ms) read as 5 ms of
    pickling, and a 20 ms call was kept on threads as too small."""
    try:
        t0 = time.thread_time()
        parts = list(rt.encode_call(fn, args, kwargs, flags))
        if out[0] == 0 and type(out[1]) not in rt._PLAIN:
            parts += rt.encode(out[1])
        cost = time.thread_time() - t0
    except Exception as e:
        return str(e).split(". Fix")[0], 0, 0.0
    nbytes = sum(memoryview(p).nbytes for p in parts)
    return None, nbytes, cost + nbytes / COPY_RATE


# ------------------------------------------------------------ figures --

class _Window:
    """What a function's runs on one kind cost since the window began."""
    __slots__ = ("n", "cpu", "wall", "queued", "iv", "t0", "lat", "preq", "folded")

    def __init__(self):
        self.n, self.cpu, self.wall, self.queued, self.iv = 0, 0.0, 0.0, 0.0, []
        self.folded = 0.0   # busy time of the spans folded away
        self.lat = 0.0    # trial runs: summed time from dispatch to end ...
        self.preq = 0.0   # ... and their waits for a core before they started
        self.t0 = time.perf_counter()

    def add(self, cpu, wall, queued, t0, t1):
        self.n += 1
        self.cpu += cpu
        self.wall += wall
        self.queued += queued
        iv = self.iv
        iv.append((t0, t1))
        if len(iv) > 256:   # fold the older spans into their union's length
            iv.sort()
            old, self.iv = iv[:-32], iv[-32:]
            self.folded += sum(b - a for a, b in _merge(old))

    def figures(self, live=()):
        """n, cpu, wall, queued, busy (union of the runs' spans), counting
        live runs (start, cpu, queued) up to now."""
        cpu, wall, queued, iv = self.cpu, self.wall, self.queued, list(self.iv)
        now = time.perf_counter()
        for t0, c, q in live:
            cpu += c
            queued += q
            wall += now - t0
            iv.append((t0, now))
        busy = self.folded + sum(b - a for a, b in _merge(iv))
        return self.n, cpu, wall, queued, busy


def _merge(iv):
    out = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _ms(s):
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s:.2f} s"


class _Rec:
    """One function's placement: where it runs, why, and the figures."""

    def __init__(self, name):
        self.name = name
        self.kind = "trial"            # "trial", "threads" or "processes"
        self.reason = "measuring on threads"
        self.pinned = None
        self.runs = {"threads": 0, "processes": 0}
        self.win = _Window()           # the current window (trial or revisit)
        self.trial_in = 0              # trial runs in flight on threads
        self.ptrial_in = 0             # ... and on processes (second phase, "trial-p")
        self.speed_t = None            # efficiency of its calls on threads (first phase)
        self.gil_t = None              # the GIL probe's mean wait during the first phase
        self.backlog = []              # calls waiting for the trial's decision
        self.live = {}                 # token -> (start, native tid, cpu0, queued0)
        self.moves = 0
        self.last_kind = None          # where the last decision put it
        self.explicit = None           # kind of the last call placed by options(kind=...)
        self.unpicklable = None
        self.check = None              # (error or None, bytes, seconds) of pickling a trial call
        self.defers = 0                # trial windows restarted: the GIL was busy with others
        self.alone = False
        self.cpu_at_decision = None
        self.f = {}                    # figures shown by placement()
        self.threads_fig = None        # last figures on threads (for the reason text)
        self.bytes_sent = 0
        self.sends = 0

    def window_runs(self):
        return REVISIT_RUNS << min(self.moves, 5)


class Placement(list):
    """``AutoExecutor.placement()``: a list with one dict per function; str()
    (and print) shows it as a table."""

    COLS = (("function", "function", "{}"), ("runs", "runs", "{}"), ("kind", "kind", "{}"),
            ("mean_ms", "mean", "{:.2f} ms"), ("cpu_per_wall", "cpu/wall", "{:.2f}"),
            ("thread_parallelism", "par.threads", "{:.2f}x"),
            ("process_parallelism", "par.procs", "{:.2f}x"),
            ("bytes_per_call", "bytes/call", "{:.0f}"), ("round_trip_ms", "hop", "{:.3f} ms"),
            ("reason", "reason", "{}"))

    def __str__(self):
        if not self:
            return "(no function has run yet)"
        rows = [[h for _, h, _ in self.COLS]]
        for d in self:
            row = []
            for k, _, fmt in self.COLS:
                v = d.get(k)
                row.append("-" if v is None else fmt.format(v))
            rows.append(row)
        w = [max(len(r[i]) for r in rows) for i in range(len(self.COLS) - 1)]
        lines = []
        for r in rows:
            lines.append("  ".join(c.ljust(w[i]) if i < len(w) else c for i, c in enumerate(r)))
        return "\n".join(lines)


def function_key(fn):
    """(key, name) of a callable for placement: the code object of a Python
    function (a lambda or closure made anew on each call is still one
    function), the function under a partial or bound method, the __call__
    of a Python class's instance, else the callable itself or its type.
    No key holds an instance alive."""
    if isinstance(fn, functools.partial):
        k, n = function_key(fn.func)
        return ("partial", k), f"partial({n})"
    f = getattr(fn, "__func__", fn)
    code = getattr(f, "__code__", None)
    if isinstance(code, types.CodeType):
        return code, f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', code.co_name)}"
    call = getattr(type(fn), "__call__", None)
    if not isinstance(fn, type) and isinstance(getattr(call, "__code__", None), types.CodeType):
        # an instance of a Python class with __call__: its code (the instance
        # itself would be kept alive by the table)
        return call.__code__, f"{type(fn).__module__}.{type(fn).__qualname__}"
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    try:
        hash(fn)
        return fn, f"{mod}.{name}"
    except TypeError:
        return type(fn), f"{mod}.{name}"


def pin(kind):
    """Decorator: ``@crew.pin("threads")`` or ``@crew.pin("processes")`` fixes
    where kind="auto" executors run the function (no measuring). Returns the
    function itself (an attribute is set on it); pickling is unchanged."""
    if kind not in KINDS:
        raise ValueError(f'pin() takes "threads" or "processes", not {kind!r}')

    def deco(fn):
        try:
            fn.__crew_kind__ = kind
        except (AttributeError, TypeError):
            raise TypeError(f"cannot pin {fn!r}: it takes no attributes; use "
                            f"executor.pin(fn, {kind!r}) instead") from None
        return fn
    return deco


# ------------------------------------------------------------- futures --

from ._executor import Executor, Future, _terminate_pool, _timeout_arg, cpu_count  # noqa: E402


class AutoFuture(Future):
    """A kind="auto" future: settled from the future of the thread or process
    task that runs the call. Waiting on it from a thread task of the same
    executor runs the call right there if it has not started (so a task that
    submits follow-up work and waits for it cannot deadlock the pool)."""

    _inner = None      # the inner executor's future, once dispatched
    _item = None       # the call, while it waits in a backlog or is held
    _held = False      # held (all thread workers taken): its trial mark, if any
    _stolen = False    # taken back from the thread queue to run in a waiting task
    _auto_ex = None    # weakref to the AutoExecutor

    def _crew_help(self, timeout):
        ex = self._auto_ex()
        if ex is not None and self._state == PENDING and getattr(_local, "auto", None) is ex:
            ex._steal(self)
        inner = self._inner
        if inner is not None and self._state == PENDING:
            return inner._crew_help(timeout)
        return timeout

    def cancel(self):
        with self._condition:
            if self._state == FINISHED:
                return False
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
        ex = self._auto_ex()
        if self._inner is None and ex is not None and ex._unqueue(self):
            ex._own["cancelled"] += 1
            self._crew_cancelled()
            ex._pending.pop(id(self), None)
            return True
        inner = self._inner
        if inner is None or not inner.cancel():
            return False
        return self.cancelled()


class _Inner(Future):
    """The inner pool's future of an auto call: settling it settles the
    outer future at once (no done-callback list, no Condition made)."""

    def _invoke_callbacks(self):
        _on_done(self)
        if self._done_callbacks:
            super()._invoke_callbacks()


def _on_done(inner):
    """Done callback of an inner future (runs in the parent, on the thread
    that settled it): records what the run cost, then settles the outer."""
    outer, rec, kind, trial = inner._auto
    inner._crew_args = None   # the call is not kept past its run (its arguments may be big)
    ex = outer._auto_ex()
    if ex is not None and kind == "threads":
        ex._thread_done()
    if inner.cancelled():
        if outer._stolen:
            return
        if ex is not None:
            ex._ended(rec, kind, trial, None)
            ex._pending.pop(id(outer), None)
        outer._crew_cancelled()
        return
    exc = inner.exception()
    try:
        if exc is not None:
            if ex is not None:
                ex._ended(rec, kind, trial, None)
                if kind == "processes" and isinstance(exc, rt.SerializationError):
                    ex._unpicklable(rec, str(exc).split(":")[0])
            outer.set_exception(exc)
        else:
            out, cpu, wall, q, t0, t1, pre = inner.result()
            if ex is not None:
                ex._ended(rec, kind, trial, (cpu, wall, q, t0, t1), inner._t_disp, pre)
                if kind == "processes":
                    lost = _lost_crossing(out, inner._flags)
                    if lost:
                        ex._unpicklable(rec, lost)
            if out[0] == 0:
                outer.set_result(out[1])
            else:
                outer.set_exception(rt.exception_of(out))
    except cf.InvalidStateError:
        pass
    finally:
        if ex is not None:
            ex._pending.pop(id(outer), None)


def _lost_crossing(out, flags):
    """Why a result of a process run could not be pickled back (the worker
    made its outcome, or a chunk item's, an error that says so), or None."""
    if out[0] == 1:
        e = out[1]
        if type(e) is rt.SerializationError and str(e).startswith("crew cannot send"):
            return str(e).split(". Fix")[0]
        return None
    if flags in rt.CHUNKS and out[1][1]:
        for o in out[1][1].values():
            if type(o[1]) is rt.RemoteError and str(o[1]).startswith("unpicklable outcome"):
                return str(o[1])
    return None


class _Both:
    """The two inner pools as one, where crew.Pool reaches for ``_pool``."""

    def __init__(self, ex):
        self._ex = weakref.ref(ex)

    def close(self):
        ex = self._ex()
        if ex is not None:
            for e in ex._inner():
                e._pool.close()

    def terminate(self):
        ex = self._ex()
        if ex is not None:
            for e in ex._inner():
                _terminate_pool(e._pool)


_COUNTERS = ("submitted", "done", "failed", "crashed", "timed_out", "cancelled")


class AutoExecutor(Executor):
    """``crew.Executor(kind="auto")``: thread workers and process workers in
    one executor; each function runs where measurement says it runs best.

    - ``max_workers``: process workers (default :func:`crew.cpu_count`);
      ``max_threads``: thread workers (default ``max(32, 4 * cpu_count())``:
      threads that wait on I/O cost little).
    - ``placement()`` says where each function runs and why; ``stats()``
      includes it.
    - Pinning: ``ex.options(kind="threads").submit(...)`` for one call,
      ``ex.pin(fn, "processes")`` or ``@crew.pin("processes")`` for a function.
    - A function placed on processes runs in another interpreter: it does
      not see the parent's later changes to globals (pin it to threads if
      it must). A function that may kill its worker (``os._exit``, a
      crashing extension) should be pinned to processes: on a thread it
      would take the parent with it.
    - Results, exceptions, timeouts, callbacks and ``map`` order are those of
      a fixed kind; completion callbacks run on a thread of the parent.
    """

    def __init__(self, max_workers=None, kind="auto", start_method=None, initializer=None,
                 initargs=(), max_tasks_per_child=None, task_timeout=None, *,
                 arena_size=None, max_threads=None):
        if kind != "auto":
            raise ValueError('AutoExecutor is kind="auto"')
        n = cpu_count()
        if max_workers is None:
            max_workers = n
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_threads is None:
            max_threads = min(256, max(32, 4 * n, max_workers))
        if max_threads <= 0:
            raise ValueError("max_threads must be greater than 0")
        self._kind = "auto"
        self._max_workers = max_workers
        self._max_threads = max_threads
        # calls of a function on trial on processes at once: every worker (a
        # worker's run does not slow another's, as threads under the GIL do)
        self._pwidth = max(TRIAL_WIDTH, max_workers)
        self._shutdown = False
        self._pending = {}
        self._lock = threading.RLock()
        self._recs = {}
        self._pins = {}
        self._hop = DEFAULT_HOP
        self._hop_measured = False
        self._hop_seen = float("inf")
        self._placer = None
        self._held = collections.deque()   # thread calls that tasks submitted while all were taken
        self._tin = 0                      # calls given to the thread pool, not yet done
        self._tdone = 0                    # thread calls ended (the spare maker's sign of progress)
        # stats: calls submitted here; runs, cancels and hop probes that the
        # inner pools count otherwise or not at all
        self._own = collections.Counter()
        self._spares = None                # the thread that starts spare threads, while one runs
        self._gil = collections.deque(maxlen=400)   # (time, seconds the probe waited for the GIL)
        self._ref = weakref.ref(self)
        self._conf = dict(start_method=start_method, initializer=initializer,
                          initargs=initargs, max_tasks_per_child=max_tasks_per_child,
                          task_timeout=task_timeout, arena_size=arena_size)
        self._threads = Executor(max_threads, kind="threads", initializer=initializer,
                                 initargs=initargs, task_timeout=task_timeout)
        self._procs = None
        self._plock = threading.Lock()
        self._start_method = None
        if not self._no_gil:       # warm now: a process hop must not wait for a start
            self._procs_ex()
        self._pool = _Both(self)

    @property
    def _no_gil(self):
        """No GIL now: asked when a function is first placed and before each
        move to processes (an import may enable the GIL at any time)."""
        return not gil_enabled()

    # ---------------------------------------------------------- pools --

    def _procs_ex(self):
        """The process executor, made on first need."""
        p = self._procs
        if p is not None:
            return p
        with self._plock:
            if self._procs is None:
                c = self._conf
                p = Executor(self._max_workers, kind="processes", start_method=c["start_method"],
                             initializer=c["initializer"], initargs=c["initargs"],
                             max_tasks_per_child=c["max_tasks_per_child"],
                             task_timeout=c["task_timeout"], arena_size=c["arena_size"])
                p._breaks = self._threads._breaks
                self._start_method = p._start_method
                self._procs = p
                threading.Thread(target=_measure_hop, args=(self._ref,), daemon=True,
                                 name="crew-auto-hop").start()
            return self._procs

    def _inner(self):
        return [e for e in (self._threads, self._procs) if e is not None]

    @property
    def _breaks(self):
        return self._threads._breaks

    @_breaks.setter
    def _breaks(self, v):
        for e in self._inner():
            e._breaks = v

    @property
    def _broken(self):
        for e in self._inner():
            if e._broken:
                return e._broken
        return False

    # ---------------------------------------------------------- submit --

    def _rec(self, fn):
        key, name = function_key(fn)
        rec = self._recs.get(key)
        if rec is None:
            with self._lock:
                rec = self._recs.get(key)
                if rec is None:
                    rec = self._recs[key] = _Rec(name)
                    pinned = self._pins.get(key) or getattr(fn, "__crew_kind__", None)
                    if pinned in KINDS:
                        self._set_pin(rec, pinned, "pinned (ex.pin or @crew.pin)")
                    elif self._no_gil:
                        rec.kind = "threads"
                        rec.reason = ("no GIL on this interpreter (sys._is_gil_enabled() is "
                                      "False): threads run Python in parallel")
        return rec

    @staticmethod
    def _set_pin(rec, kind, how):
        rec.pinned = rec.kind = kind
        rec.reason = f"pinned to {kind}: {how}"

    def pin(self, fn, kind):
        """Fixes where this executor runs fn: "threads" or "processes";
        None lets measurement place it again."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f'kind must be "threads", "processes" or None, not {kind!r}')
        key, _ = function_key(fn)
        rec = self._rec(fn)
        with self._lock:
            if kind is None:
                self._pins.pop(key, None)
                rec.pinned = None
                rec.kind, rec.reason, rec.win = "trial", "measuring on threads", _Window()
            else:
                self._pins[key] = kind
                self._set_pin(rec, kind, "ex.pin()")
        return fn

    def _submit(self, fn, args, kwargs, timeout, flags=rt.F_CALL, kind=None):
        if kind is not None and kind not in KINDS:
            raise ValueError(f'kind must be "threads" or "processes", not {kind!r}')
        broken = self._broken
        if broken:
            raise rt.InitializerError(broken)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        _timeout_arg(timeout)
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        rec = self._rec(fn)
        fut = AutoFuture()
        fut._auto_ex = self._ref
        fut._crew_owner = self
        item = (fut, rec, fn, args, kwargs, timeout, flags)
        trial = False
        with self._lock:
            self._own["submitted"] += 1
            if kind is not None:
                rec.explicit = kind
            target = kind or rec.pinned
            if target is None:
                if rec.kind == "trial":
                    self._wake_placer()
                    if rec.trial_in < TRIAL_WIDTH or getattr(_local, "auto", None) is self:
                        rec.trial_in += 1
                        target, trial = "threads", "t"
                    else:
                        self._pending[id(fut)] = fut
                        fut._item = item
                        rec.backlog.append(item)
                        return fut
                elif rec.kind == "trial-p":
                    if rec.ptrial_in < self._pwidth:
                        rec.ptrial_in += 1
                        target, trial = "processes", "p"
                    else:
                        self._pending[id(fut)] = fut
                        fut._item = item
                        rec.backlog.append(item)
                        return fut
                else:
                    target = rec.kind
            self._pending[id(fut)] = fut
        try:
            self._dispatch(item, target, trial, explicit=kind is not None or rec.pinned is not None)
        except BaseException:
            self._pending.pop(id(fut), None)
            with self._lock:
                self._own["submitted"] -= 1
                if trial:
                    self._untrial(rec, trial)
            raise
        return fut

    @staticmethod
    def _untrial(rec, trial):
        if trial == "t":
            rec.trial_in -= 1
        elif trial == "p":
            rec.ptrial_in -= 1

    def _dispatch(self, item, kind, trial, explicit=False):
        fut, rec, fn, args, kwargs, timeout, flags = item
        fut._item = None
        if kind == "processes":
            try:
                a = rt._wrap_big(args) if flags == rt.F_CALL else args
                inner = _Inner()
                inner._auto = (fut, rec, kind, trial)
                inner._flags = flags
                inner._t_disp = time.perf_counter()
                fut._inner = inner
                self._procs_ex()._submit(measured, (flags, fn, a, kwargs, bool(trial)), None,
                                         timeout, fut=inner)
            except rt.SerializationError as e:
                fut._inner = None
                try:   # say it about the user's own call, not crew's wrapper
                    rt.encode_call(fn, args, kwargs, flags)
                except rt.SerializationError as e2:
                    e = e2
                if explicit:
                    raise e from None
                self._unpicklable(rec, str(e).split(". Fix")[0])
                kind = "threads"
                if trial == "p":
                    with self._lock:
                        rec.ptrial_in -= 1
                    trial = False
            except BaseException:
                fut._inner = None
                raise
            else:
                rec.sends += 1
                return
        with self._lock:
            if getattr(_local, "auto", None) is self and self._tin >= self._max_threads:
                # every thread worker is taken and a task of ours submits: held
                # here, where a task that waits for it runs it itself (_steal)
                fut._item = item
                fut._held = trial
                self._held.append(item)
                if self._spares is None:
                    self._spares = threading.Thread(target=_spare_loop, args=(self._ref,),
                                                    daemon=True, name="crew-auto-spares")
                    self._spares.start()
                return
            self._tin += 1
        inner = _Inner()
        inner._auto = (fut, rec, "threads", trial)
        inner._crew_args = (fn, args, kwargs, timeout, flags)
        inner._t_disp = disp = time.perf_counter()
        fut._inner = inner
        try:
            self._threads._submit(self._run_thread, (rec, trial, disp, flags, fn, args, kwargs),
                                  None, timeout, fut=inner)
        except BaseException:
            fut._inner = None
            with self._lock:
                self._tin -= 1
            raise

    def _run_thread(self, rec, trial, disp, flags, fn, args, kwargs):
        """A call on a thread worker, measured; a trial run is watched live."""
        prev = getattr(_local, "auto", None)
        _local.auto = self
        token = None
        try:
            if trial:
                token = object()
                tid = threading.get_native_id()
                s = _task_schedstat(tid) or (time.thread_time(), 0.0)
                rec.live[token] = (disp, tid, s[0], s[1])
            r = measured(flags, fn, args, kwargs, bool(trial))
            if trial and rec.check is None:
                rec.check = _pickle_check(fn, args, kwargs, flags, r[0])
            return r
        finally:
            if token is not None:
                rec.live.pop(token, None)
            _local.auto = prev

    def _unqueue(self, fut):
        """Takes a call off its function's backlog or the held calls (cancel
        or steal); True if it was there. Lock held by the caller or not."""
        with self._lock:
            item = fut._item
            if item is None:
                return False
            for q in (item[1].backlog, self._held):
                try:
                    q.remove(item)
                except ValueError:
                    continue
                fut._item = None
                if fut._held:
                    self._untrial(item[1], fut._held)
                    fut._held = False
                return True
            return False

    def _thread_done(self):
        """A thread task ended: a held call, if any, takes its place if that
        leaves no call queued in the thread pool."""
        with self._lock:
            self._tin -= 1
            self._tdone += 1
            # only into a free worker: in the pool's queue it could wait behind
            # tasks that wait for it (the queue's calls are not held: no spare runs them)
            if not self._held or self._tin >= self._max_threads:
                return
            item = self._held.popleft()
            trial, item[0]._held = item[0]._held, False
        self._send([(item, "threads", trial)])

    def _steal(self, fut):
        """Runs fut's call in this thread (a thread task of this executor
        waits for it) if it has not started: from the backlog, or taken back
        from the thread pool's queue."""
        run = None
        item = fut._item
        if item is not None and self._unqueue(fut):
            run = item
        if run is None:
            inner = fut._inner
            if inner is None or inner._auto[2] != "threads":
                return
            call = inner._crew_args   # (cancel() drops it)
            if call is None:
                return
            fut._stolen = True
            if not inner.cancel():
                fut._stolen = False
                return
            trial = inner._auto[3]
            run = (fut, inner._auto[1]) + call
            self._own["stolen"] += 1   # (counted cancelled by the thread pool)
            if trial:
                with self._lock:
                    self._untrial(inner._auto[1], trial)
        self._run_here(run)

    def _run_here(self, item):
        """Runs a call that no worker has taken in this thread, and settles
        its future."""
        fut, rec, fn, args, kwargs, timeout, flags = item
        r = measured(flags, fn, args, kwargs)
        self._own["ran"] += 1
        out = r[0]
        self._ended(rec, "threads", False, r[1:6])
        try:
            if out[0] == 0:
                fut.set_result(out[1])
            else:
                fut.set_exception(rt.exception_of(out))
        except cf.InvalidStateError:
            pass
        self._pending.pop(id(fut), None)

    def _take_held(self):
        """The oldest held call, taken off the queue (None: there is none).
        Lock held by the caller."""
        if not self._held:
            return None
        item = self._held.popleft()
        fut = item[0]
        fut._item = None
        if fut._held:
            self._untrial(item[1], fut._held)
            fut._held = False
        return item

    def _run_spare(self, item):
        """A spare thread: runs held calls (the first given) until none is
        left, as a thread task of this executor (its own follow-ups may be
        held in turn)."""
        prev = getattr(_local, "auto", None)
        _local.auto = self
        try:
            while item is not None:
                if not item[0].done():
                    self._run_here(item)
                with self._lock:
                    self._tdone += 1
                    item = self._take_held()
        finally:
            _local.auto = prev

    # --------------------------------------------------------- deciding --

    def _ended(self, rec, kind, trial, fig, disp=None, pre=0.0):
        """A run of rec's function on kind ended (fig: cpu, wall, queued,
        start, end; None when it failed in crew's hands or was cancelled).
        A trial run counts from its dispatch (disp), not its start: a call
        that waits for the GIL before it can even start has waited too."""
        go = []
        with self._lock:
            self._untrial(rec, trial)
            if fig is not None and kind == "processes" and disp is not None:
                # the hop as calls see it: dispatch to answer, less the call itself
                # (the least seen: the others also waited in the pool's queue)
                over = time.perf_counter() - disp - fig[1]
                if 0 < over < self._hop_seen:
                    self._hop_seen = over
                    self._hop = min(self._hop, over)
            if fig is not None:
                rec.runs[kind] += 1
                tot = rec.f.setdefault(kind, _Window())
                tot.add(*fig)
                # a trial's window holds its trial runs only: calls sent
                # before it, at another width or kind, would blur it
                if rec.kind == kind and not trial:
                    rec.win.add(*fig)
                elif (rec.kind == "trial" and trial == "t") or (rec.kind == "trial-p" and
                                                                trial == "p"):
                    rec.win.add(*fig)
                    t0, t1 = fig[3], fig[4]
                    if disp is not None and disp < t0:
                        rec.win.lat += t1 - disp
                        rec.win.preq += max(0.0, min(pre, t0 - disp))
                    else:
                        rec.win.lat += fig[1]
            if rec.pinned is None:
                if rec.kind in ("trial", "trial-p"):
                    if not self._judge_trial(rec, go) and rec.backlog:
                        self._feed_trial(rec, go)
                elif fig is not None:
                    self._revisit(rec, kind)
        self._send(go)

    def _feed_trial(self, rec, go):
        if rec.kind == "trial-p":
            while rec.backlog and rec.ptrial_in < self._pwidth:
                rec.ptrial_in += 1
                go.append((rec.backlog.pop(0), "processes", "p"))
            return
        while rec.backlog and rec.trial_in < TRIAL_WIDTH:
            rec.trial_in += 1
            go.append((rec.backlog.pop(0), "threads", "t"))

    def _send(self, go):
        for item, kind, trial in go:
            fut = item[0]
            if fut.done():
                continue
            try:
                self._dispatch(item, kind, trial)
            except BaseException as e:   # e.g. the executor broke meanwhile
                if trial:
                    with self._lock:
                        self._untrial(item[1], trial)
                self._pending.pop(id(fut), None)
                try:
                    fut.set_exception(e)
                except cf.InvalidStateError:
                    pass

    def _judge_trial(self, rec, go, live=False):
        """Decides a function on trial if its runs so far say enough; moves its
        backlog to the chosen kind (appended to go). Lock held.

        First phase, on threads: a call that waits, is too small, cannot be
        pickled or never overlaps another stays on threads; else the second
        phase runs a few calls on processes, and the kind whose calls made
        more progress per second (CPU/wall) wins, by a margin."""
        if rec.kind == "trial-p":
            return self._judge_processes(rec, go)
        lv = []
        if live:
            for t0, tid, c0, q0 in list(rec.live.values()):
                s = _task_schedstat(tid)
                if s is not None:
                    lv.append((t0, max(0.0, s[0] - c0), max(0.0, s[1] - q0)))
        n, cpu, wall, q, busy = rec.win.figures(lv)
        if busy <= 0:
            return False
        eff = cpu / max(wall - q, 1e-9)
        clear_wait = eff < WAITS_EFF / 4 and busy >= TRIAL_MIN_BUSY / 3 and wall >= 2 * TRIAL_MIN_BUSY / 3
        if not clear_wait:   # (a call that plainly waits is told at once)
            if n < TRIAL_MIN_RUNS and busy < TRIAL_MIN_BUSY:
                return False
            if live and (rec.check is None or (n == 0 and busy < 2 * TRIAL_MIN_BUSY)):
                return False   # (rec.check: the first run has not ended: pickling untested)
        # calls in flight at once: GIL-bound calls barely overlap in their runs
        # (each waits for the GIL to start), yet both were given to threads
        conc = max(wall, rec.win.lat + sum(time.perf_counter() - t0 for t0, _, _ in lv)) / busy
        par = cpu / busy
        per = cpu / n if n else None
        rec.threads_fig = dict(eff=eff, conc=conc, par=par, per=per, speed=cpu / wall)
        hop = self._hop
        if rec.check is not None and rec.check[0]:
            kind, why = "threads", f"cannot be pickled, so it stays on threads ({rec.check[0]})"
            rec.unpicklable = why
        elif eff < WAITS_EFF:
            # starved, not waiting? Its threads may have waited for a GIL that
            # other functions' threads held: measure again once that settles
            lat = self._gil_latency(rec.win.t0)
            if (lat is not None and lat >= GIL_BUSY and rec.defers < MAX_DEFERS
                    and eff >= WAITS_EFF / 4):
                rec.defers += 1
                rec.win = _Window()
                rec.reason = (f"measuring again: the GIL was busy with other work "
                              f"({_ms(lat)} to get it)")
                return False
            kind, why = "threads", (f"waits (I/O or a lock): on a CPU {eff:.0%} of its time; "
                                    f"threads cost nothing to hand work to")
        elif per is not None and n >= 2 and per < SMALL_HOPS * hop:
            kind, why = "threads", (f"too small for a process hop: {_ms(per)} of CPU per call "
                                    f"vs a {_ms(hop)} round trip")
        elif conc >= 1.5:
            if rec.check is None:   # the first run has not said if it can be pickled
                return False
            kind, why = "processes", None
        elif n >= 16 and not rec.backlog:
            kind, why = "threads", ("ran one call at a time: nothing to gain from processes "
                                    "(measured again once calls overlap)")
            rec.alone = True
        elif n >= 64:
            kind, why = "threads", ("its calls never overlapped on threads although more "
                                    "waited: left on threads")
        else:
            return False
        if kind == "processes":
            kind, why = self._check_hop(rec, kind, why, per)
        if kind == "processes":   # second phase: try it on processes
            # counted from dispatch: a call that waits for the GIL to start has waited too
            # (less the waits for a core before they started: the rest is GIL wait)
            lat = rec.win.lat + sum(now_ - t0 for t0, c, q_ in lv for now_ in (time.perf_counter(),))
            rec.gil_t = self._gil_latency(rec.win.t0)
            if lat > 0:
                eff = min(eff, cpu / max(lat - q - rec.win.preq, 1e-9))
            rec.speed_t = eff
            rec.kind = "trial-p"
            rec.reason = (f"measuring on processes (on {conc:.1f} threads at once each was on "
                          f"a CPU {eff:.0%} of its time)")
            rec.win = _Window()
            self._feed_trial(rec, go)
            return False
        self._decide(rec, kind, why, go)
        return True

    def _judge_processes(self, rec, go):
        """Second phase: processes against threads. Each side's figure is the
        share of a call's time on a CPU, not counting time spent waiting for a
        core (so a machine that gets busier between the phases does not
        decide), the process hop and copy added to the process side."""
        n, cpu, wall, q, busy = rec.win.figures()
        if n < TRIAL_WIDTH + 1:
            return False
        over = self._hop + (rec.check[2] if rec.check else 0.0)
        # each at most 1 (a core's worth): the clocks' rounding can pass it
        speed_p = min(1.0, cpu / max(wall - q + n * over, 1e-9))
        speed_t = min(1.0, rec.speed_t or 1e-9)
        gain = speed_p / max(speed_t, 1e-9)
        tf = rec.threads_fig or {}
        conc = tf.get("conc", 0.0)
        lat = rec.gil_t
        if gain >= GAIN:
            why = (f"holds the GIL: calls ran {gain:.2f}x faster on processes (on {conc:.1f} "
                   f"threads at once each was on a CPU {speed_t:.0%} of its time, on processes "
                   f"{min(speed_p, 1):.0%})")
            self._decide(rec, "processes", why, go)
        elif lat is not None and (lat >= GIL_HELD and speed_p >= 0.7 or
                                  lat >= GIL_BUSY and gain >= GAIN_WITH_PROBE):
            # on a busy machine the clocks blur the threads' figure; the GIL
            # probe does not: it waited for the GIL while the calls ran
            why = (f"holds the GIL: calls ran {gain:.2f}x faster on processes, and while "
                   f"{conc:.1f} ran on threads another thread waited {_ms(lat)} for the GIL "
                   f"each time")
            self._decide(rec, "processes", why, go)
        else:
            why = (f"runs as fast on threads (releases the GIL): processes ran its calls only "
                   f"{gain:.2f}x as fast (on a CPU {min(speed_t, 1):.0%} of the time on threads, "
                   f"{min(speed_p, 1):.0%} on processes, hop included)")
            self._decide(rec, "threads", why, go)
        return True

    def _check_hop(self, rec, kind, why, per):
        """Before a move to processes: can the call and its result be
        pickled, and does the copy leave the move worth it?"""
        if self._no_gil:
            return "threads", "no GIL on this interpreter: threads run Python in parallel"
        if rec.unpicklable:
            return "threads", rec.unpicklable
        if rec.check is None:
            return kind, why
        err, nbytes, cost = rec.check
        if err:
            rec.unpicklable = f"cannot be pickled, so it stays on threads ({err})"
            return "threads", rec.unpicklable
        rec.f["bytes"] = nbytes
        if per is not None and per < SMALL_HOPS * (self._hop + cost):
            return "threads", (f"too small for a process hop: {_ms(per)} of CPU per call vs "
                               f"{_ms(self._hop)} round trip + {_ms(cost)} to pickle {nbytes} bytes")
        return kind, why

    def _decide(self, rec, kind, why, go, per=None):
        if rec.last_kind is not None and rec.last_kind != kind:
            rec.moves += 1
        rec.last_kind = kind
        rec.kind, rec.reason = kind, why
        if per is None:
            n, cpu, wall, q, busy = rec.win.figures()
            per = cpu / n if n else None
        rec.cpu_at_decision = per
        rec.win = _Window()
        for item in rec.backlog:
            go.append((item, kind, False))
        rec.backlog = []

    def _retrial(self, rec, why):
        rec.kind, rec.reason = "trial", why
        rec.win = _Window()
        rec.alone = False

    def _revisit(self, rec, kind):
        """A decided function: its current window full, is the decision still right?"""
        w = rec.win
        need = rec.window_runs() if rec.moves or rec.kind == "threads" else 16
        if rec.kind != kind or w.n < need:
            return
        n, cpu, wall, q, busy = w.figures()
        per = cpu / n
        eff = cpu / max(wall - q, 1e-9)
        before = rec.cpu_at_decision
        rec.win = _Window()
        if rec.kind == "processes":
            if eff < WAITS_EFF:
                self._decide(rec, "threads", f"moved back: now waits (on a CPU {eff:.0%} of its "
                                             f"time on processes)", [], per)
            elif per < SMALL_HOPS * self._hop / 2:
                self._decide(rec, "threads", f"moved back: now too small for a process hop "
                                             f"({_ms(per)} of CPU per call vs a {_ms(self._hop)} "
                                             f"round trip)", [], per)
            return
        # on threads: the CPU a call takes changed a lot, or calls now overlap
        if before is not None and per >= SMALL_HOPS * self._hop and (
                per > CPU_CHANGE * max(before, 1e-6) or per < before / CPU_CHANGE):
            self._retrial(rec, f"measuring again: CPU per call went from {_ms(before)} to "
                               f"{_ms(per)}")
        elif getattr(rec, "alone", False) and busy > 0 and wall / busy >= 1.5:
            self._retrial(rec, "measuring again: calls now overlap")

    def _unpicklable(self, rec, msg):
        go = []
        with self._lock:
            rec.unpicklable = f"cannot be pickled, so it stays on threads ({msg})"
            if rec.pinned is None:
                self._decide(rec, "threads", rec.unpicklable, go)
        self._send(go)

    # ------------------------------------------------ live trial decisions --

    def _wake_placer(self):
        """Starts the thread that decides long trials from live figures (a
        trial's first runs may take seconds; its backlog should not wait)."""
        if self._placer is None or not self._placer.is_alive():
            self._placer = threading.Thread(target=_placer_loop, args=(self._ref,), daemon=True,
                                            name="crew-auto-placer")
            self._placer.start()

    def _placer_step(self, lat):
        go = []
        busy = False
        with self._lock:
            self._gil.append((time.perf_counter(), lat))
            for rec in list(self._recs.values()):
                if rec.kind.startswith("trial"):
                    busy = True
                    if rec.kind == "trial" and rec.live and rec.backlog:
                        self._judge_trial(rec, go, live=True)
                    if rec.backlog and rec.kind.startswith("trial"):
                        self._feed_trial(rec, go)   # no-op unless a slot is free
                elif rec.backlog:   # cannot happen; were it to, nothing may wait forever
                    go += [(item, rec.kind, False) for item in rec.backlog]
                    rec.backlog = []
        self._send(go)
        return busy

    def _gil_latency(self, since):
        """Mean time the placer thread waited for the GIL since then (None:
        too few samples): high while other threads hold it."""
        v = [lat for t, lat in self._gil if t >= since]
        return sum(v) / len(v) if len(v) >= 3 else None

    # ------------------------------------------------------------- map --

    def _chunk_workers(self):
        """Chunks are planned over the larger side: enough of them for the
        thread side, where waiting work goes."""
        return max(self._max_threads, self._max_workers)

    # ------------------------------------------------------- explaining --

    def placement(self):
        """Where each function runs now and why: a :class:`Placement` (a list
        of dicts; print() shows a table). Keys: function, runs, kind
        ("threads", "processes"; "measuring" while on trial), reason,
        runs_threads, runs_processes, mean_ms, cpu_ms, cpu_per_wall,
        thread_parallelism, thread_concurrency, process_parallelism,
        bytes_per_call, round_trip_ms, moves, pinned."""
        out = Placement()
        with self._lock:
            recs = list(self._recs.values())
            for rec in recs:
                kind, reason = rec.kind, rec.reason
                if (kind.startswith("trial") and rec.explicit and not rec.win.n
                        and not rec.trial_in and not rec.ptrial_in and not rec.backlog):
                    kind, reason = rec.explicit, f"placed per call: options(kind={rec.explicit!r})"
                d = {"function": rec.name, "runs": rec.runs["threads"] + rec.runs["processes"],
                     "kind": "measuring" if kind.startswith("trial") else kind,
                     "reason": reason, "runs_threads": rec.runs["threads"],
                     "runs_processes": rec.runs["processes"]}
                n = cpu = wall = q = 0.0
                for k in KINDS:
                    w = rec.f.get(k)
                    if w is not None and w.n:
                        wn, wc, ww, wq, wb = w.figures()
                        n, cpu, wall, q = n + wn, cpu + wc, wall + ww, q + wq
                        if k == "processes":
                            d["process_parallelism"] = wc / wb if wb > 0 else None
                tf = rec.threads_fig or {}
                d["mean_ms"] = wall / n * 1e3 if n else None
                d["cpu_ms"] = cpu / n * 1e3 if n else None
                d["cpu_per_wall"] = cpu / max(wall - q, 1e-9) if n else None
                d["thread_parallelism"] = tf.get("par")
                d["thread_concurrency"] = tf.get("conc")
                d.setdefault("process_parallelism", None)
                d["bytes_per_call"] = rec.f.get("bytes")
                d["round_trip_ms"] = self._hop * 1e3
                d["moves"] = rec.moves
                d["pinned"] = rec.pinned is not None
                out.append(d)
        return out

    def stats(self):
        """The counters of both inner pools summed, their workers (each with
        its ``kind``: "thread" or "process") and ``placement`` (see
        :meth:`placement`)."""
        parts = [e.stats() for e in self._inner()]
        d = {"kind": "auto", "start_method": self._start_method,
             "workers": [w for p in parts for w in p["workers"]]}
        for k in _COUNTERS:
            d[k] = sum(p.get(k, 0) for p in parts)
        own = self._own
        # what the user submitted, not what reached the inner pools (a call
        # may wait in a trial's backlog; crew's own hop probes are no calls)
        d["submitted"] = own["submitted"]
        d["done"] += own["ran"] - own["probes"]
        d["cancelled"] += own["cancelled"] - own["stolen"]
        d["placement"] = self.placement()
        return d

    # --------------------------------------------------------- shutdown --

    def _drain_backlog(self):
        with self._lock:
            items = [it for rec in self._recs.values() for it in rec.backlog]
            for rec in self._recs.values():
                rec.backlog = []
            items += self._held
            self._held.clear()
        return items

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stops accepting work; ``cancel_futures`` cancels what has not
        started; ``wait`` waits for the rest, then closes both pools."""
        self._shutdown = True
        if cancel_futures:
            for item in self._drain_backlog():
                item[0]._item = None
                item[0]._crew_cancelled()
                self._own["cancelled"] += 1
                self._pending.pop(id(item[0]), None)
            for f in list(self._pending.values()):
                f.cancel()
        if wait:
            pending = list(self._pending.values())
            while pending:
                cf.wait(pending, timeout=0.5)
                pending = [f for f in pending if not f.done()]
        for e in self._inner():
            e.shutdown(wait=wait)

    def terminate(self):
        """Stops now: pending calls are cancelled, running process tasks are
        killed with their workers; running thread tasks' futures fail."""
        self._shutdown = True
        for item in self._drain_backlog():
            item[0]._item = None
            item[0]._crew_cancelled()
            self._own["cancelled"] += 1
            self._pending.pop(id(item[0]), None)
        for e in self._inner():
            e.terminate()

    def _stop_workers(self, sig, name):
        self._shutdown = self._stopping = True
        for item in self._drain_backlog():
            item[0]._item = None
            item[0]._crew_cancelled()
            self._own["cancelled"] += 1
            self._pending.pop(id(item[0]), None)
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._procs is not None:
            self._procs._stop_workers(sig, name)

    @property
    def max_threads(self):
        return self._max_threads


PROBE = 0.005   # the placer's nap: how late it wakes (less its wait for a core) is GIL wait


def _placer_loop(ref):
    """While functions are on trial: probes the GIL (how long a thread waits
    to run Python again after a short sleep) and decides long trials from
    the live figures of their running calls."""
    idle = 0
    while idle < 50:
        q0 = _queued()
        t0 = time.perf_counter()
        time.sleep(PROBE)
        lat = max(0.0, time.perf_counter() - t0 - PROBE - (_queued() - q0))
        ex = ref()
        if ex is None or ex._shutdown:
            return
        idle = 0 if ex._placer_step(lat) else idle + 1
        ex = None


UNSTICK = 0.02   # held calls and no thread call ended for this long: a spare thread runs one


def _spare_loop(ref):
    """While thread calls are held (every thread worker is taken by tasks of
    this executor, which submitted them): when no thread call has ended for
    UNSTICK seconds, starts a spare thread for the oldest held call. The
    tasks may all wait for their follow-ups with concurrent.futures.wait or
    as_completed, which cannot run them in the waiting thread as result()
    does (_steal); a spare thread per stalled interval breaks that deadlock
    and adds nothing while calls end."""
    last = None
    while True:
        time.sleep(UNSTICK)
        ex = ref()
        if ex is None:
            return
        with ex._lock:
            if not ex._held:
                ex._spares = None
                return
            if ex._tdone != last:
                last = ex._tdone
                continue
            item = ex._take_held()
        threading.Thread(target=ex._run_spare, args=(item,), daemon=True,
                         name="crew-auto-spare").start()
        ex = item = None


def _measure_hop(ref):
    """Measures the process round trip: no-op calls, one at a time (the
    first ones wait for the workers to start; the least of the rest counts)."""
    times = []
    for i in range(8):
        ex = ref()
        if ex is None or ex._shutdown or ex._procs is None:
            return
        p = ex._procs
        ex = None
        t0 = time.perf_counter()
        try:
            p.submit(_noop).result(timeout=60)
        except Exception:
            return
        ex = ref()
        if ex is not None:
            ex._own["probes"] += 1   # a done no-op of crew's own: no call of the user's
        ex = None
        if i >= 3:
            times.append(time.perf_counter() - t0)
    ex = ref()
    if ex is not None and times:
        # the least of them: the others waited behind real work (and calls
        # lower it further as they see it, see _ended)
        ex._hop = min(min(times), ex._hop_seen)
        ex._hop_measured = True
