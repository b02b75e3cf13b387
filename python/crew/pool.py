"""crew.Pool: the multiprocessing.Pool API (and semantics) over crew.Executor."""
import builtins
import collections
import concurrent.futures as cf
import itertools
import multiprocessing
import threading

from . import _runtime as rt
from ._executor import Executor, _exception_of
from ._runtime import take_values


class TimeoutError(multiprocessing.TimeoutError, builtins.TimeoutError):
    """AsyncResult.get(timeout) found no result in time: catch it as
    multiprocessing.TimeoutError (code written for multiprocessing.Pool) or as
    the builtin TimeoutError."""


def _starcall(fn, args):
    return fn(*args)


class AsyncResult:
    """The result of apply_async/map_async, as in multiprocessing."""

    def __init__(self, futures, single, callback, error_callback):
        self._futs = futures
        self._single = single
        self._event = threading.Event()
        self._value = None
        self._exc = None
        self._left = len(futures)
        self._lock = threading.Lock()
        self._callback, self._error_callback = callback, error_callback
        if not futures:
            self._finish()
        for f in futures:
            f.add_done_callback(self._one_done)

    def _one_done(self, f):
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._finish()

    def _finish(self):
        if any(f.cancelled() for f in self._futs):
            # (terminate) made, not raised: no traceback kept per result, nor
            # the frames it would hold; a million queued results end so
            self._exc = cf.CancelledError()
        else:
            try:
                if self._single:
                    self._value = self._futs[0].result()
                else:
                    vals = []
                    for f in self._futs:
                        vals.extend(take_values(f.result()))
                    self._value = vals
            except BaseException as e:
                self._exc = e
        try:
            if self._exc is None and self._callback is not None:
                self._callback(self._value)
            elif self._exc is not None and self._error_callback is not None:
                self._error_callback(self._exc)
        finally:
            self._event.set()

    def ready(self):
        return self._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._exc is None

    def wait(self, timeout=None):
        self._event.wait(timeout)

    def get(self, timeout=None):
        """The result; raises the task's exception, or crew.pool.TimeoutError
        (a multiprocessing.TimeoutError and a builtin TimeoutError) when it is
        not ready within timeout seconds."""
        if not self._event.wait(timeout):
            raise TimeoutError(f"the result was not ready within {timeout} s")
        if self._exc is not None:
            raise self._exc
        return self._value


ApplyResult = MapResult = AsyncResult


class Pool:
    """Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None,
    *, kind="processes", start_method=None, task_timeout=None)

    multiprocessing.Pool's API: apply, apply_async, map, map_async, imap,
    imap_unordered, starmap, starmap_async, close, join, terminate; as a
    context manager it terminates on exit, like multiprocessing.Pool. A
    worker that dies fails its task with WorkerCrashedError instead of
    hanging the pool. A bound method of a module global (os.environ's,
    random.seed, mymod.LOCK.acquire) acts on the worker's own object of that
    name, as initializer or task (see crew.Executor)."""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 *, kind="processes", start_method=None, task_timeout=None):
        self._ex = Executor(processes, kind=kind, start_method=start_method,
                            initializer=initializer, initargs=initargs,
                            max_tasks_per_child=maxtasksperchild, task_timeout=task_timeout)
        self._ex._breaks = False   # a failed initializer fails tasks, not the pool
        self._state = "RUN"
        self._processes = self._ex.max_workers

    def _check(self):
        if self._state != "RUN":
            raise ValueError("Pool not running")

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check()
        f = self._ex._submit(func, tuple(args), dict(kwds), None)
        return AsyncResult([f], True, callback, error_callback)

    def _map_async(self, func, iterable, chunksize, callback, error_callback, star):
        self._check()
        items = [tuple(a) for a in iterable] if star else list(iterable)
        futs = self._ex._chunks(func, items, chunksize, None, star)
        return AsyncResult(futs, False, callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, chunksize, None, None, False).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, chunksize, callback, error_callback, False)

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, chunksize, None, None, True).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, chunksize, callback, error_callback, True)

    def imap(self, func, iterable, chunksize=1, progress=False):
        """Results in order, lazily: the input is read as results are taken
        (at most a few chunks per worker ahead), so an endless iterator works;
        an exception the input raises comes out where iteration reaches it,
        after the results of the items before it (as in multiprocessing)."""
        return self._lazy(func, iterable, chunksize, True, progress)

    def imap_unordered(self, func, iterable, chunksize=1, progress=False):
        """Results as they complete, with imap's lazy, bounded read-ahead."""
        return self._lazy(func, iterable, chunksize, False, progress)

    def _lazy(self, func, iterable, chunksize, ordered, progress):
        self._check()
        if chunksize is None:   # as multiprocessing.Pool: an int, not "automatic"
            raise TypeError("chunksize must be an integer >= 1, not None")
        chunksize = self._ex._chunksize(0, chunksize)
        from ._executor import _progress_bar
        ex, items = self._ex, iter(iterable)
        # enough chunks ahead to keep every worker busy, few enough that a
        # huge or endless input is read as results are taken
        window = max(8, 4 * self._processes)
        bar = _progress_bar(progress, len(iterable) if hasattr(iterable, "__len__") else None)

        def read_chunk():
            """The next chunk, and the input's exception if it raised (the
            items read before it still run)."""
            chunk = []
            try:
                for x in itertools.islice(items, chunksize):
                    chunk.append(x)
            except Exception as e:
                return chunk, e
            return chunk, None

        def gen():
            pending = collections.deque() if ordered else set()
            more, err = True, None
            try:
                yield None   # primed below: closed or dropped unread, this finally runs
                while True:
                    while more and len(pending) < window:
                        chunk, err = read_chunk()
                        more = err is None and len(chunk) == chunksize
                        if chunk:
                            f = ex._submit(func, chunk, None, None, rt.F_CHUNK1)
                            pending.append(f) if ordered else pending.add(f)
                    if not pending:
                        break
                    if ordered:
                        done = (pending.popleft(),)
                    else:
                        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for f in done:
                        res = f.result()
                        if bar is not None:
                            bar.update(len(res[0]))
                        # as multiprocessing's: a failed item raises where it
                        # stands, and the items after it still come
                        yield from rt.values_and_errors(res)
                        res = None
                    del done, f
                if err is not None:
                    try:
                        raise err
                    finally:
                        err = None
            finally:
                while pending:   # emptied as it goes (see Executor.map)
                    pending.pop().cancel()
                if bar is not None:
                    bar.close()
        return rt.flatten_primed(gen())

    def close(self):
        if self._state == "RUN":
            self._state = "CLOSE"
            self._ex._shutdown = True

    def join(self):
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        if self._state == "CLOSE":
            self._ex.shutdown(wait=True)
        self._ex._pool.close()

    def terminate(self):
        self._state = "TERMINATE"
        self._ex.terminate()

    def stats(self):
        return self._ex.stats()

    def __enter__(self):
        self._check()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")
