"""crew.Executor: a concurrent.futures.Executor over libcrew pools."""
import atexit
import collections
import concurrent.futures as cf
import errno
import itertools
import os
import signal
import sys
import threading
import time
import warnings
import weakref
from concurrent.futures._base import (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING,
                                      RUNNING)

from . import _core, _runtime as rt

_START_METHODS = ("forkserver", "spawn", "fork")
_MAIN_GUARD = ("{what} the main script {main} (its traceback is above). A process worker "
               "imports the main script to find its functions: code that starts a pool at the "
               "script's top level must sit under if __name__ == \"__main__\": (the main guard)")


def _main_path(name="__main__"):
    """The main script, when it is a file a worker imports (in a worker
    importing it: the module "__mp_main__")."""
    return getattr(sys.modules.get(name), "__file__", None)
_default_start = None
_live = weakref.WeakSet()


def cpu_count():
    """The CPUs this process may use: its affinity mask, limited by the cgroup
    CPU quota (at least 1). The default number of workers."""
    return _core.cpu_count()


def set_start_method(method, force=False):
    """Sets the default start method of process workers: "forkserver" (the
    default), "spawn" or "fork". Like multiprocessing, setting it twice needs
    ``force=True``."""
    global _default_start
    if method is not None and method not in _START_METHODS:
        raise ValueError(f"unknown start method {method!r}; use one of {_START_METHODS}")
    if _default_start is not None and not force and method != _default_start:
        raise RuntimeError("context has already been set")
    _default_start = method
    # one default for the process: libcrew keeps it (C pools in this process
    # see it too); None goes back to the default, forkserver
    _core.set_start_method(method or "forkserver")


def get_start_method(allow_none=False):
    """The default start method of process workers ("forkserver" unless set)."""
    if _default_start is None and allow_none:
        return None
    return _core.get_start_method()


class _LazyCondition:
    """A future's Condition, made on first use (a waiter, cf.wait, a done
    callback): most futures finish and are read without ever needing one.
    Not a data descriptor: once made, the instance's own attribute wins."""

    def __get__(self, fut, cls=None):
        if fut is None:
            return self
        return fut.__dict__.setdefault("_condition", threading.Condition())


_DONE_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class Future(cf.Future):
    """A concurrent.futures.Future whose cancel() also cancels the crew task
    (if it has not started). Its Condition is made lazily; a future that has
    none when it finishes is settled in one atomic step (_core.settle)."""

    _crew = None
    _crew_broken = None   # set when a failed initializer broke its executor
    _condition = _LazyCondition()

    def __init__(self):
        self._state = PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks = []

    def set_result(self, result):
        if _core.settle(self, result, None, PENDING, FINISHED):
            self._invoke_callbacks()
        else:
            super().set_result(result)

    def set_exception(self, exception):
        if _core.settle(self, None, exception, PENDING, FINISHED):
            self._invoke_callbacks()
        else:
            super().set_exception(exception)

    def done(self):
        return self._state in _DONE_STATES

    def cancelled(self):
        return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED)

    def running(self):
        return self._state == RUNNING

    def _crew_help(self, timeout):
        """Waits in C first: the waiting thread collects answers itself
        (no hop through crew's collector thread), in short slices so that
        Ctrl-C stays prompt. Returns the timeout left for the base class."""
        c = self._crew
        if c is None or self._state != PENDING:
            return timeout
        end = None if timeout is None else time.monotonic() + timeout
        while self._state == PENDING:
            left = 0.05 if end is None else min(0.05, end - time.monotonic())
            if left <= 0 or c.wait(left):
                break
        if self._state == PENDING:
            _catch_up(self, c)
        if end is None:
            return None
        return max(0.0, end - time.monotonic())

    def result(self, timeout=None):
        if self._state != FINISHED:
            left = self._crew_help(timeout)
            if self._state != FINISHED:  # cancelled, or still running at the timeout
                return super().result(left)
        # _result/_exception are set before _state: no Condition needed
        if self._exception is None:
            return self._result
        try:
            raise self._exception
        finally:
            self = None  # noqa: F841 - break the cycle, as the base class does

    def exception(self, timeout=None):
        if self._state != FINISHED:
            left = self._crew_help(timeout)
            if self._state != FINISHED:
                return super().exception(left)
        return self._exception

    def cancel(self):
        with self._condition:
            if self._state == FINISHED:
                return False
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
        c = self._crew
        if c is None:
            return False
        if c.cancel() != 0:
            return _catch_up(self, c) and self.cancelled()
        self._crew_cancelled()
        return True

    def __await__(self):
        """``await fut`` in a running event loop (asyncio.wrap_future);
        cancelling the awaiting coroutine cancels the task if it has not
        started."""
        from . import _aio
        return _aio.await_future(self)

    def _crew_cancelled(self):
        if _core.settle(self, None, None, PENDING, CANCELLED_AND_NOTIFIED):
            # no Condition yet, so no waiter: settled in one step (what a
            # terminate's cancelled queue mostly is)
            self._invoke_callbacks()
            return
        with self._condition:
            if self._state != PENDING:
                return
            self._state = CANCELLED_AND_NOTIFIED
            for w in self._waiters:
                w.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()


def _catch_up(fut, c):
    """Whether fut's C side c ended cancelled by a terminate, whose queue
    is settled in the background (_deliver_in_background); if so, settles
    that backlog up to fut here rather than wait for it. A dask handle has
    no C side."""
    status = getattr(c, "status", None)
    if status is None or status() != _core.ECANCELED:
        return False
    while fut._state == PENDING and _core.deliver(1000):
        pass
    return True


def _failure(status, cfut):
    msg = cfut.error()
    if status == _core.ETIMEDOUT:
        return rt.TaskTimeoutError(msg or "the task ran past its timeout")
    if status == _core.ECRASHED:
        return rt.WorkerCrashedError(msg or "the worker died while running the task")
    if status == _core.EINIT:
        return rt.InitializerError(msg)
    return rt.CrewError(f"{msg or _core.strerror(status)} (crew code {status})")


_exception_of = rt.exception_of


def _complete(cfut):
    """Runs once the task is done (GIL held), on whichever thread delivers
    it: a submit, a waiter, or crew's collector. cfut.ctx is the Future.

    A Ctrl-C can interrupt it anywhere; crew's C side then runs it again
    (and hands the Ctrl-C back to the program), so it only lets go of the
    future once the future is settled."""
    fut = cfut.ctx
    if fut is None:  # settled already: this is such a second run
        return
    key = fut._crew_key
    status = cfut.status()
    if status == _core.ECANCELED:
        if fut._crew_broken is None:
            fut._crew_cancelled()
        else:  # taken off the queue because the executor broke
            try:
                fut.set_exception(rt.InitializerError(fut._crew_broken))
            except cf.InvalidStateError:
                pass
    elif not fut.cancelled():
        _settle(fut, key, status, cfut)
    if key:
        rt.drop_token(key)
    ex = _let_go(fut, cfut)
    if ex is not None and status == _core.EINIT:
        ex._break(cfut.error())


def _let_go(fut, cfut):
    """Drops what a settled task's future held (fut._crew -> cfut -> fut,
    its executor, its place among the pending); returns the executor."""
    cfut.ctx = None
    fut._crew_owner = None
    ex = fut._crew_ex()
    if ex is not None:
        ex._pending.pop(id(fut), None)
    return ex


def _set_outcome(fut, out):
    """Settles fut with a task's outcome: its value, or its exception with
    the worker's traceback as __cause__."""
    if out[0] == 0:
        fut.set_result(out[1])
    else:
        fut.set_exception(_exception_of(out))


def _finish_here(fut, out):
    """Settles a thread task's future on the worker thread that ran it, in
    the GIL hold that ran it (crew's collector then never takes the GIL for
    it). False, leaving it to _complete, when its C future's completion has
    begun elsewhere (the task ran past its timeout) or the submit has not
    yet recorded it (a submit that waited for room without the GIL)."""
    cfut = fut._crew
    if cfut is None or not cfut.take_callback():
        return False
    # from here on nobody else will settle it: it ends, whatever is raised
    try:
        _set_outcome(fut, out)
    except cf.InvalidStateError:
        pass
    except BaseException as e:  # noqa: B902 - the outcome or a done callback raised
        if not fut.done():
            try:
                fut.set_exception(e)
            except cf.InvalidStateError:
                pass
    finally:
        _let_go(fut, cfut)
    return True


rt.finish_thread_task = _finish_here


def _settle(fut, key, status, cfut):
    try:
        if status != 0:
            fut.set_exception(_failure(status, cfut))
            return
        if key:
            out = rt.take_token(key)
        else:
            out = rt.decode(memoryview(cfut))[1]
            if out[-1]:
                rt.replay_logs(out[-1])
        _set_outcome(fut, out)
    except cf.InvalidStateError:
        pass
    except Exception as e:  # e.g. the result cannot be unpickled here
        try:
            fut.set_exception(e)
        except cf.InvalidStateError:
            pass


class _Options:
    """``executor.options(timeout=...)``: per-call settings that never collide
    with the task's own keyword arguments."""

    def __init__(self, ex, timeout, kind=None):
        self._ex, self._timeout, self._kind = ex, timeout, kind

    def submit(self, fn, /, *args, **kwargs):
        return self._ex._submit(fn, args, kwargs, self._timeout, kind=self._kind)

    def map(self, fn, *iterables, **kw):
        kw.setdefault("task_timeout", self._timeout)
        return self._ex.map(fn, *iterables, _place=self._kind, **kw)


def _timeout_arg(t):
    if t is None:
        return 0.0          # the executor's task_timeout
    if t <= 0:
        raise ValueError("timeout must be > 0 (or None)")
    return float(t)


class Executor(cf.Executor):
    """A pool of process or thread workers behind the concurrent.futures API.

    Executor(max_workers=None, kind="processes", start_method=None,
             initializer=None, initargs=(), max_tasks_per_child=None,
             task_timeout=None)

    - ``kind``: "processes" (each worker its own interpreter: CPU-bound work),
      "threads" (I/O-bound work; no pickling) or "auto" (both kinds of
      worker; each function runs where measurement says it runs best, and
      ``placement()`` says why: see :class:`crew._auto.AutoExecutor` and
      docs/placement.md).
    - ``max_workers``: None gives one process worker per usable CPU
      (:func:`crew.cpu_count`), or ``min(32, cpu_count() + 4)`` thread
      workers, as ThreadPoolExecutor does (threads mostly wait).
    - ``start_method``: "forkserver" (default), "spawn" or "fork"; None: the
      value of :func:`crew.set_start_method`.
    - ``initializer``: runs first in every worker. A bound method of a global
      of an importable module (``os.environ.__setitem__``, ``random.seed``,
      ``mymod.LOCK.acquire``), as initializer or task, acts on the worker's
      own object of that name; other objects cross by value; under fork the
      initializer is inherited, not pickled (docs/python.md, "What crosses").
    - ``task_timeout``: seconds a task may run; past it the task fails with
      :class:`crew.TaskTimeoutError` and its process worker is replaced.
      Per call: ``executor.options(timeout=2).submit(fn, ...)``.
    - A worker that dies fails only its own task with
      :class:`crew.WorkerCrashedError`; the executor keeps serving.
    - Leaving a ``with`` block on an exception cancels pending work and stops
      running tasks (process workers are killed).
    - Python 3.14's additions work on every Python: ``map(...,
      buffersize=)``, ``terminate_workers()`` and ``kill_workers()``.
    - A worker initializer that raises breaks the executor, as in
      concurrent.futures: ``submit()`` raises :class:`crew.InitializerError`
      (a ``BrokenExecutor``).
    """

    _init_key = 0   # read by __del__, which runs even when __init__ raised
    # like ProcessPoolExecutor's: a message once a worker initializer failed
    _broken = False
    _breaks = True  # crew.Pool's executor keeps serving (tasks fail one by one)
    _stopping = False  # terminate_workers() or kill_workers() was called

    def __new__(cls, max_workers=None, kind="processes", *args, address=None, **kwargs):
        # crew.Executor(address="tcp://HOST:PORT"): the same API on a running
        # dask.distributed cluster (crew.dask.DistributedExecutor)
        if address is not None and cls is Executor:
            from .dask import DistributedExecutor
            return super().__new__(DistributedExecutor)
        if kind == "auto" and cls is Executor:
            from ._auto import AutoExecutor
            cls = AutoExecutor
        return super().__new__(cls)

    def __init__(self, max_workers=None, kind="processes", start_method=None,
                 initializer=None, initargs=(), max_tasks_per_child=None,
                 task_timeout=None, *, arena_size=None, max_threads=None, address=None):
        if address is not None:
            raise TypeError("address= makes a crew.Executor on a dask cluster: call "
                            "crew.Executor(address=...) itself, not a subclass")
        if kind not in ("processes", "threads"):
            raise ValueError('kind must be "processes", "threads" or "auto"')
        if max_threads is not None:
            raise ValueError('max_threads is for kind="auto" (use max_workers)')
        if max_workers is None:  # as ProcessPoolExecutor and ThreadPoolExecutor choose
            max_workers = cpu_count() if kind == "processes" else min(32, cpu_count() + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if max_workers > 256:
            raise ValueError("max_workers must be at most 256")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None and max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")
        self._kind = kind
        self._max_workers = max_workers
        self._shutdown = False
        self._pending = {}
        self._lock = threading.Lock()
        self._init_key = 0
        start = 0
        spawn_argv = None
        prep = None           # spawn, forkserver: the parent's preparation data (a memfd)
        self._start_method = None
        if kind == "processes":
            method = start_method or get_start_method()
            if method not in _START_METHODS:
                raise ValueError(f"unknown start method {method!r}; use one of {_START_METHODS}")
            if rt.BOOTSTRAPPING:
                raise RuntimeError("crew: a process pool was started " + _MAIN_GUARD.format(
                    what="while a process worker imported", main=_main_path("__mp_main__")))
            self._start_method = method
            if method == "fork":
                msg = _core.fork_warning()   # libcrew's one warning; crew's threads excluded
                if msg:
                    names = [t.name for t in threading.enumerate()
                             if t is not threading.current_thread()
                             and not isinstance(t, threading._DummyThread)]
                    warnings.warn(f"crew: {msg} (threads: {', '.join(names[:5]) or 'not Python'})",
                                  RuntimeWarning, stacklevel=2)
                start = _core.START_FORK
            else:
                # libcrew's spawn and fork server exec this interpreter running
                # crew's bootstrap (_worker), which applies the prelude; a fork
                # server serves every pool with the same prelude, and one
                # killed from outside is started again when a worker needs it
                from . import _worker
                prep = _worker.preparation()
                start = _core.START_SPAWN if method == "spawn" else _core.START_FORKSERVER
                spawn_argv = _worker.boot_argv()
        init = None
        if initializer is not None:
            # a thread pool shares the initializer; a fork pool's workers inherit
            # it (as multiprocessing's fork does): no pickling. Else it is pickled
            # (a bound method of a module global by reference, see _runtime).
            if kind == "threads" or self._start_method == "fork":
                self._init_key = next(rt._counter)
                rt._tokens[self._init_key] = (initializer, tuple(initargs))
                init = rt.token(self._init_key, b"K")
        if kind == "processes" and self._start_method != "fork":
            # spawned and fork-server workers get the initializer pickled, and
            # with it multiprocessing's authkey (so that a task can use the
            # parent's Manager proxies and listeners), the working directory
            # and the root log level (a forked one inherits all of them); it
            # travels through the pool's shared memory, never argv
            import multiprocessing
            setup = {"authkey": bytes(multiprocessing.current_process().authkey),
                     "log_level": rt.logging.getLogger().getEffectiveLevel()}
            try:
                setup["cwd"] = os.getcwd()
            except OSError:
                pass    # the directory was removed: the worker stays where it starts
            init = b"".join(bytes(p) for p in rt.encode_call(initializer, tuple(initargs), setup,
                                                            rt.F_INIT))
        prelude = -1
        if prep is not None:
            from . import _worker
            prelude = _worker.prelude_fd(prep)
        try:
            self._pool = _core.Pool(1 if kind == "threads" else 2, max_workers, start,
                                    float(task_timeout or 0), int(max_tasks_per_child or 0),
                                    init, spawn_argv, int(arena_size or 0), prelude)
        except OSError as e:
            if start == _core.START_FORKSERVER and e.errno == errno.ENOTCONN:
                main = _main_path()
                raise RuntimeError("crew: the fork server exited before it served" + (
                    " " + _MAIN_GUARD.format(what="while it imported", main=main)
                    if main else " (its error is above)")) from e
            raise
        finally:
            if prelude >= 0:
                os.close(prelude)   # the pool holds its own copy
        self._ref = weakref.ref(self)
        _live.add(self)

    # ------------------------------------------------------------ submit --

    def _submit(self, fn, args, kwargs, timeout, flags=rt.F_CALL, kind=None, fut=None):
        if kind is not None and kind != self._kind:
            raise ValueError(f'this executor has only {self._kind} workers: options(kind={kind!r}) '
                             f'places calls in an Executor(kind="auto")')
        if self._broken:
            raise rt.InitializerError(self._broken)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        t = _timeout_arg(timeout)
        if fut is None:   # (kind="auto" passes its own: see _auto._Inner)
            fut = Future()
        fut._crew_ex = self._ref
        fut._crew_owner = self  # a pending task keeps its executor alive
        key = fut._crew_key = 0
        if self._kind == "threads":
            key = next(rt._counter)
            fut._crew_key = key
            rt._tokens[key] = (flags, fn, args, kwargs, fut)
            parts = (rt.token(key),)
        else:
            parts = rt.encode_call(fn, args, kwargs, flags)
        self._pending[id(fut)] = fut
        try:
            fut._crew = self._pool.submit(parts, t, _complete, fut)
        except BaseException:
            self._pending.pop(id(fut), None)
            fut._crew_owner = None
            rt.drop_token(key)
            raise
        return fut

    def _break(self, msg):
        """A worker initializer failed: as with concurrent.futures' pools, the
        executor is broken. submit() raises InitializerError (a
        BrokenExecutor) from now on, and queued tasks fail with it; running
        tasks finish."""
        if not self._breaks or self._broken:
            return
        self._broken = msg or "a worker initializer failed"
        for f in list(self._pending.values()):
            c = f._crew
            if c is not None and not f.done():
                f._crew_broken = self._broken
                if c.cancel() != 0:       # running: it finishes as it may
                    f._crew_broken = None

    def submit(self, fn, /, *args, **kwargs):
        """Schedules fn(*args, **kwargs); returns a concurrent.futures.Future."""
        return self._submit(fn, args, kwargs, None)

    def options(self, *, timeout=None, kind=None):
        """Per-call options: ``ex.options(timeout=5).submit(fn, *args, **kwargs)``;
        ``kind="threads"`` or ``"processes"`` pins these calls of an
        ``Executor(kind="auto")`` (on a fixed kind it must name that kind)."""
        if kind is not None and kind not in ("threads", "processes"):
            raise ValueError(f'kind must be "threads", "processes" or None, not {kind!r}')
        return _Options(self, timeout, kind)

    def _chunk_workers(self):
        """The workers a map's chunks are planned over."""
        return self._max_workers

    def _chunksize(self, n, chunksize):
        """Items per chunk for n items (0: an input of unknown length), by
        the one chunk plan of every crew map, C's crew_map included
        (crew_map_chunksize): chunksize itself, or None for about 4 chunks
        per worker (1 for an unknown length). ValueError below 1."""
        return _core.map_chunksize(n, self._chunk_workers(), chunksize)

    def _chunks(self, fn, items, chunksize, task_timeout, star=True, kind=None):
        """Submits items in chunks as _chunksize plans them: each item a
        tuple of arguments (star), or the one argument. One task per chunk;
        its outcome is split back per item by _runtime.take_values."""
        n = len(items)
        size = self._chunksize(n, chunksize)
        flags = rt.F_CHUNK if star else rt.F_CHUNK1
        return [self._submit(fn, items[i:i + size], None, task_timeout, flags, kind)
                for i in range(0, n, size)]

    def map(self, fn, *iterables, timeout=None, chunksize=None, buffersize=None,
            progress=False, task_timeout=None, _place=None):
        """Like concurrent.futures' map: results in order, an iterator.

        - ``chunksize``: items per task; None: automatic (about 4 chunks per
          worker; 1 with ``buffersize``, the length being unknown then).
        - ``buffersize`` (Python 3.14's): at most that many tasks (chunks)
          are submitted ahead of the consumer, and the input is read lazily,
          as results are taken (an endless iterator is fine). None: every
          task is submitted at once.
        - ``timeout``: seconds from this call for the whole iteration.
        - ``progress=True``: a tqdm bar when a terminal is attached;
          ``task_timeout`` limits each chunk.

        The iterator holds no result it has already yielded; closing it (or
        a timeout, or an error) cancels the tasks that have not started."""
        lazy_size = self._chunksize(0, chunksize)   # checks chunksize first, as before
        if buffersize is not None:
            if not isinstance(buffersize, int):
                raise TypeError("buffersize must be an integer or None")
            if buffersize < 1:
                raise ValueError("buffersize must be None or > 0")
        star = len(iterables) != 1
        flags = rt.F_CHUNK if star else rt.F_CHUNK1
        end = None if timeout is None else time.monotonic() + timeout
        if buffersize is None:
            # a range is cut into ranges (a chunk then pickles in a few
            # bytes, not as a list of its numbers); a list or tuple is sliced
            # as it is; anything else is read into a list first
            one = None if star else iterables[0]
            items = (one if type(one) in (range, list, tuple) else
                     list(zip(*iterables)) if star else list(one))
            futs = collections.deque(self._chunks(fn, items, chunksize, task_timeout, star,
                                                  _place))
            bar = _progress_bar(progress, len(items))
            del items
            more = None
        else:
            args = zip(*iterables) if star else iter(iterables[0])
            more = iter(lambda: list(itertools.islice(args, lazy_size)), [])
            futs = collections.deque(self._submit(fn, chunk, None, task_timeout, flags, _place)
                                     for chunk in itertools.islice(more, buffersize))
            bar = _progress_bar(progress, None)
        # the iterator does not keep the executor alive (its pending tasks do)
        ref = weakref.ref(self)

        def chunks():
            """Each chunk's list of values in turn (the values up to a failed
            item, then its exception); _core.flatten hands the values over."""
            try:
                yield None   # primed below: closed or dropped unread, this finally runs
                while futs:
                    if more is not None:   # one task out, one in
                        ex = ref()
                        chunk = next(more, None) if ex is not None else None
                        if chunk is not None:
                            futs.append(ex._submit(fn, chunk, None, task_timeout, flags,
                                                   _place))
                        ex = chunk = None
                    # neither the future nor its chunk stays referenced here
                    res = _result_or_cancel(futs.popleft(), end)
                    if bar is not None:
                        bar.update(len(res[0]))
                    vals, err = rt.values_upto_error(res)
                    res = None
                    yield vals
                    if err is not None:
                        try:
                            raise err
                        finally:   # no cycle through this frame: what the
                            err = None   # traceback keeps goes with it
                    vals = None
            finally:
                # emptied as it goes: a traceback that keeps this frame keeps
                # none of the results
                while futs:
                    futs.popleft().cancel()
                if bar is not None:
                    bar.close()
        return rt.flatten_primed(chunks())

    def map_async(self, fn, *iterables, chunksize=None, ordered=True, task_timeout=None):
        """An async iterator over fn's results, for ``async for`` in a running
        event loop: in input order, or as they complete with
        ``ordered=False``. Items are chunked as map() does; leaving the loop
        early (break, an error, cancelling the coroutine) cancels the tasks
        that have not started. See crew.as_completed_async for futures."""
        from . import _aio
        return _aio.map_async(self, fn, iterables, chunksize, ordered, task_timeout)

    # ---------------------------------------------------------- shutdown --

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stops accepting work; ``cancel_futures`` cancels what has not
        started; ``wait`` waits for the rest (interruptible with Ctrl-C)."""
        self._shutdown = True
        if cancel_futures:
            for f in list(self._pending.values()):
                f.cancel()
        if wait and self._kind == "threads" and self._pool.on_worker_thread():
            # a task of this executor waiting for every task would wait for
            # itself, forever (and so would interpreter exit): shut down
            # without waiting and say so, as ThreadPoolExecutor raises
            threading.Thread(target=self._pool.close, daemon=True).start()
            raise RuntimeError(
                "shutdown(wait=True) was called by a task running on this executor's own "
                "thread worker: it would wait for itself forever. The executor is shut down "
                "without waiting; call shutdown(wait=False) from a task, or shutdown(wait=True) "
                "from outside the executor")
        if wait:
            pending = list(self._pending.values())
            while pending:       # interruptible, unlike a wait inside C
                cf.wait(pending, timeout=0.5)
                pending = [f for f in pending if not f.done()]
            self._pool.close()
        else:
            threading.Thread(target=self._pool.close, daemon=True).start()

    def terminate(self):
        """Stops now: pending tasks are cancelled, running process tasks are
        killed with their workers (SIGKILL); returns once they are gone. The
        cancelled futures are settled on a background thread (a million of
        them take seconds): done() turns True shortly after, and result()
        or cancel() on one settles it at once."""
        self._shutdown = True
        _terminate_pool(self._pool)

    def terminate_workers(self):
        """Python 3.14's ProcessPoolExecutor.terminate_workers(), on every
        Python: stops accepting work, cancels the tasks not started, and
        sends SIGTERM to each live worker process; a running task fails with
        WorkerCrashedError naming the signal. Returns at once (the workers
        are reaped in the background; ``shutdown()`` waits for that). A
        worker that ignores SIGTERM runs on until ``kill_workers()``.
        Process workers only: NotImplementedError for kind="threads" (a
        thread cannot be stopped; see ``terminate()``)."""
        self._stop_workers(signal.SIGTERM, "terminate_workers")

    def kill_workers(self):
        """Python 3.14's ProcessPoolExecutor.kill_workers(): as
        ``terminate_workers()``, with SIGKILL."""
        self._stop_workers(signal.SIGKILL, "kill_workers")

    def _stop_workers(self, sig, name):
        if self._kind == "threads":
            raise NotImplementedError(
                f"{name}() stops worker processes; a thread pool's threads cannot be stopped "
                f"(shutdown(cancel_futures=True) cancels what has not started, terminate() "
                f"also fails the running tasks' futures)")
        self._shutdown = self._stopping = True
        # the C call returns once the workers are gone: a worker that ignores
        # SIGTERM would hold the caller, so it runs on a thread of its own
        threading.Thread(target=self._pool.terminate_signal, args=(int(sig),),
                         name=f"crew-{name}", daemon=True).start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.terminate()
        else:
            self.shutdown(wait=True)
        return False

    # ------------------------------------------------------------- stats --

    def stats(self):
        """A dict: ``kind``, ``start_method``, ``workers`` (each: pid, kind,
        tasks, busy_seconds, restarts) and totals ``submitted``, ``done``,
        ``failed``, ``crashed``, ``timed_out``, ``cancelled``. A thread
        task's future is settled by the worker thread that ran it, a moment
        before the pool's collector counts its answer: right after a result
        the totals can be one behind, for an instant."""
        d = self._pool.stats()
        for w in d["workers"]:
            w["kind"] = "thread" if self._kind == "threads" else "process"
        d["start_method"] = self._start_method
        return d

    def placement(self):
        """kind="auto" only: where each function runs and why (see
        docs/placement.md). A fixed-kind executor places nothing."""
        raise ValueError(f'this executor runs every call on {self._kind}: placement() is for '
                         f'crew.Executor(kind="auto")')

    def pin(self, fn, kind):
        """kind="auto" only: fixes where fn runs (see AutoExecutor.pin)."""
        raise ValueError(f'this executor runs every call on {self._kind}: pin() is for '
                         f'crew.Executor(kind="auto")')

    @property
    def max_workers(self):
        return self._max_workers

    @property
    def kind(self):
        return self._kind

    def __del__(self):
        if self._init_key:
            rt._tokens.pop(self._init_key, None)


def _terminate_pool(pool):
    """Terminates a _core.Pool; what it cancelled is settled in the background."""
    if pool.terminate():
        _deliver_in_background()


_delivering = threading.Lock()


def _new_delivering_lock():
    # a fork while crew-deliver ran: the child has no such thread to release it
    global _delivering
    _delivering = threading.Lock()


os.register_at_fork(after_in_child=_new_delivering_lock)


def _deliver_in_background():
    """Settles what a terminate cancelled, on a thread of its own, a
    thousand futures per GIL hold: terminate() then returns at once, however
    long the queue was (a million queued tasks took seconds to settle one
    by one). A thread that waits for one of them settles them itself up to
    its own (Future._crew_help), so that no waiter depends on this thread."""
    def run():
        while True:
            try:
                while _core.deliver(1000):
                    pass
            finally:
                _delivering.release()
            # a terminate that came as this thread finished found it running
            if not _core.deliver(0) or not _delivering.acquire(blocking=False):
                return
    if _delivering.acquire(blocking=False):
        try:
            threading.Thread(target=run, name="crew-deliver", daemon=True).start()
        except BaseException:
            _delivering.release()
            raise


def _result_or_cancel(fut, end):
    """fut's result by the deadline end (None: no deadline); a future that
    fails to give it in time is cancelled (else, once popped from map's
    list, nothing would cancel it)."""
    try:
        return fut.result(None if end is None else end - time.monotonic())
    except BaseException:
        fut.cancel()
        del fut  # the traceback's frame would keep it
        raise


def _progress_bar(progress, total):
    if not progress:
        return None
    try:
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm
    except Exception:
        return None
    return tqdm(total=total)


@atexit.register
def _close_all():
    for ex in list(_live):
        try:
            ex._shutdown = True
            if ex._stopping:   # after terminate_workers(): no waiting on a worker
                # that ignores SIGTERM (SIGKILL for those left); at exit
                # nobody waits for what it cancels: it is not settled
                ex._pool.terminate()
            else:
                ex._pool.close()
        except Exception:
            pass
