"""crew.dask: dask on crew workers, crew on dask.distributed clusters, and crew inside dask workers.

Three ways in, one module:

- **dask on one machine.** ``dask.compute(x, scheduler=crew.dask.get)`` runs a
  graph (dask.array, dask.bag, dask.delayed, dask.dataframe) on a warm crew
  process pool; numpy chunks cross through crew's shared memory, not pickled
  copies. A crew.Executor also works as it is:
  ``dask.compute(x, scheduler=ex)``.
- **More than one machine.** ``crew.Executor(address="tcp://HOST:PORT")`` is
  the same Executor API (submit, map with chunking, as_completed, wait,
  options(timeout=...), map_async, await) on a running dask.distributed
  cluster (DistributedExecutor below).
- **crew inside each dask worker.** ``dask worker ADDRESS --preload crew.dask``
  (or ``distributed.Worker(..., preload=["crew.dask"])``,
  ``LocalCluster(preload=["crew.dask"])``) makes the worker run its tasks in
  crew's supervised process workers: a task that segfaults or is killed
  fails alone (crew.WorkerCrashedError) instead of taking the dask worker
  down, and numpy arguments cross by shared memory. A task that needs the
  dask worker itself (get_worker(), worker_client()) runs on the worker's
  threads with ``dask.annotate(executor="threads")``.
"""
import collections
import concurrent.futures as cf
import queue
import threading
import time
import weakref

from . import _runtime as rt
from ._executor import Executor, Future, cpu_count

__all__ = ["get", "DistributedExecutor", "CrewWorkerExecutor", "dask_setup", "dask_teardown",
           "install"]

# ------------------------------------------------------------ local get --

_default = None
_default_lock = threading.Lock()


def _default_executor(num_workers=None):
    global _default
    with _default_lock:
        n = num_workers or cpu_count()
        if _default is None or _default._shutdown or _default.max_workers != n:
            _default = Executor(n)
        return _default


def get(dsk, keys, executor=None, num_workers=None, **kwargs):
    """A dask scheduler on crew: ``dask.compute(x, scheduler=crew.dask.get)``
    or ``dask.config.set(scheduler=crew.dask.get)``.

    ``executor``: a crew.Executor to run on (default: one warm process pool
    of ``num_workers`` workers, default crew.cpu_count(), shared by every
    call). Tasks and their inputs cross by crew's pickling: numpy chunks
    travel through shared memory. Other keywords go to dask.local.get_async
    (``chunksize``: tasks per submission, ...)."""
    from dask.local import get_async
    ex = executor if executor is not None else _default_executor(num_workers)
    return get_async(ex.submit, ex.max_workers, dsk, keys, **kwargs)


# ------------------------------------------------- crew in dask workers --

class _Timed:
    """A task with a per-task timeout on a dask worker: run in crew's process
    workers under crew's timeout (the worker is killed at the deadline)."""

    def __init__(self, fn, timeout):
        self.fn, self.crew_timeout = fn, float(timeout)

    def __call__(self, *args, **kwargs):
        if rt.IN_WORKER:     # already in a crew worker (CrewWorkerExecutor applied the timeout)
            return self.fn(*args, **kwargs)
        return _local_executor().options(timeout=self.crew_timeout).submit(
            self.fn, *args, **kwargs).result()


_local = None


def _local_executor():
    """The crew pool of this dask worker process (made on first use)."""
    global _local
    with _default_lock:
        if _local is None or _local._shutdown:
            n = None
            try:
                from distributed import get_worker
                n = get_worker().state.nthreads
            except Exception:
                pass
            _local = Executor(n or cpu_count())
        return _local


class CrewWorkerExecutor(cf.Executor):
    """The executor a dask worker runs its tasks on after ``--preload
    crew.dask``: each task runs in one of crew's process workers (its timeout,
    if the client gave one, kills it). Not a ThreadPoolExecutor: distributed
    hands it whole tasks with their inputs (pickled by crew, numpy arrays by
    shared memory)."""

    def __init__(self, max_workers, **kwargs):
        self._max_workers = max_workers
        self.crew = Executor(max_workers, **kwargs)

    def submit(self, fn, /, *args, **kwargs):
        task = args[0] if args else None
        t = getattr(getattr(task, "func", None), "crew_timeout", None)
        if t:
            return self.crew.options(timeout=t).submit(fn, *args, **kwargs)
        return self.crew.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.crew.shutdown(wait=wait, cancel_futures=cancel_futures)


def install(worker, **executor_kwargs):
    """Makes a distributed.Worker run its tasks on crew process workers (what
    ``--preload crew.dask`` does); the worker's own threads stay available as
    ``executor="threads"``. executor_kwargs go to crew.Executor
    (start_method, max_tasks_per_child, initializer, ...)."""
    global _local
    old = worker.executors.get("default")
    n = worker.state.nthreads
    ex = CrewWorkerExecutor(n, **executor_kwargs)
    if old is not None:
        worker.executors["threads"] = old
    worker.executors["default"] = ex
    worker.executors["crew"] = ex
    with _default_lock:
        _local = ex.crew
    return ex


def dask_setup(worker):
    """The preload hook: ``dask worker ADDRESS --preload crew.dask``."""
    from distributed import Worker
    if isinstance(worker, Worker):
        install(worker)


def dask_teardown(worker):
    ex = getattr(worker, "executors", {}).get("crew")
    if isinstance(ex, CrewWorkerExecutor):
        ex.crew.terminate()


# ---------------------------------------------- crew on a dask cluster --

def _apply(fn, args, kwargs):
    return fn(*args, **kwargs)


def _dist_chunk(fn, items, star):
    """A map chunk on a dask worker: (values, errors) as crew's chunks give."""
    return rt._run_chunk(fn, items, star)[1]


class DistributedExecutor(Executor):
    """``crew.Executor(address="tcp://HOST:PORT")``: crew's Executor API on a
    running dask.distributed cluster. Futures are crew Futures (real
    concurrent.futures Futures: as_completed, wait, await all work);
    ``options(timeout=...)``/``task_timeout`` kill the task at its deadline
    (in crew process workers on the dask worker); map chunks items. A dask
    worker that dies mid-task has its tasks rerun by dask elsewhere (or
    failed with distributed's KilledWorker after its allowed failures).

    ``address`` may also be a distributed.Client (used, not closed).
    ``max_workers`` is read from the cluster (its total threads)."""

    _init_key = 0

    def __init__(self, max_workers=None, kind="processes", start_method=None, initializer=None,
                 initargs=(), max_tasks_per_child=None, task_timeout=None, *, arena_size=None,
                 address=None):
        try:
            from distributed import Client
        except ImportError as e:
            raise ImportError("crew.Executor(address=...) runs on dask.distributed: "
                              "pip install distributed") from e
        if address is None:
            raise ValueError('DistributedExecutor needs address="tcp://HOST:PORT"')
        if initializer is not None:
            raise ValueError("initializer: on a dask cluster, use a dask WorkerPlugin "
                             "(client.register_plugin) or the workers' --preload instead")
        self._kind = "distributed"
        self._shutdown = False
        self._broken = False
        self._task_timeout = task_timeout
        self._pending = {}
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._done_q = queue.SimpleQueue()
        self._collector = None
        if isinstance(address, Client):
            self._client, self._own_client = address, False
        else:
            self._client = Client(address, set_as_default=False)
            self._own_client = True
        self._address = self._client.scheduler.address
        self._max_workers = max_workers or max(1, sum(
            w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))
        self._ref = weakref.ref(self)

    def __repr__(self):
        return f"<crew.Executor address={self._address!r} max_workers={self._max_workers}>"

    @property
    def client(self):
        """The distributed.Client underneath."""
        return self._client

    @property
    def address(self):
        return self._address

    # ------------------------------------------------------------ submit --

    def _submit(self, fn, args, kwargs, timeout, flags=rt.F_CALL, kind=None, fut=None):
        if kind is not None or fut is not None:
            raise ValueError("options(kind=...) places calls in an Executor(kind=\"auto\"); on a "
                             "dask cluster the cluster's workers run every call")
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if timeout is None:
            timeout = self._task_timeout
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        if flags != rt.F_CALL:
            fn, args, kwargs = _dist_chunk, (fn, args, flags == rt.F_CHUNK), None
        elif kwargs:   # the task's keywords never meet Client.submit's own (key=, pure=, ...)
            fn, args, kwargs = _apply, (fn, args, kwargs), None
        if timeout:
            fn = _Timed(fn, timeout)
        fut = Future()
        dfut = self._client.submit(fn, *args, pure=False, **(kwargs or {}))
        fut._crew = _DaskHandle(dfut)
        key = id(fut)
        self._pending[key] = fut
        self._counts["submitted"] += 1
        if self._collector is None:
            self._start_collector()
        q = self._done_q
        dfut.add_done_callback(lambda d: q.put((d, fut, key)))
        return fut

    def _start_collector(self):
        with self._lock:
            if self._collector is None:
                self._collector = threading.Thread(
                    target=_collect, args=(self._done_q, self._client, weakref.ref(self)),
                    name="crew-dask-collector", daemon=True)
                self._collector.start()

    # ---------------------------------------------------------- shutdown --

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stops accepting work; ``cancel_futures`` cancels what has not
        finished; ``wait`` waits for the rest; then closes this executor's
        client (never the cluster)."""
        self._shutdown = True
        if cancel_futures:
            for f in list(self._pending.values()):
                f.cancel()
        if wait:
            self._close_when_done()
        else:
            threading.Thread(target=self._close_when_done, name="crew-dask-shutdown",
                             daemon=True).start()

    def _close_when_done(self):
        pending = list(self._pending.values())
        while pending:
            cf.wait(pending, timeout=0.5)
            pending = [f for f in pending if not f.done()]
        self._done_q.put(None)
        if self._own_client:
            self._client.close()

    def terminate(self):
        """Cancels every task of this executor on the cluster and closes the
        client (the cluster and its workers run on)."""
        self._shutdown = True
        for f in list(self._pending.values()):
            f.cancel()
        self._done_q.put(None)
        if self._own_client:
            self._client.close()
        for f in list(self._pending.values()):   # finished unseen: settled as cancelled
            f._crew_cancelled()
        self._pending.clear()

    def _stop_workers(self, sig, name):
        raise NotImplementedError(
            f"{name}() stops local worker processes; the workers of a dask cluster belong "
            f"to the cluster (client.retire_workers() or the cluster's own tools stop them)")

    def stats(self):
        """``kind`` "distributed", ``address``, ``workers`` (each: address,
        nthreads, tasks processing) and this executor's totals."""
        info = self._client.scheduler_info()
        workers = [{"address": a, "nthreads": w.get("nthreads"), "name": w.get("name"),
                    "memory_limit": w.get("memory_limit")}
                   for a, w in info["workers"].items()]
        d = {"kind": "distributed", "address": self._address, "start_method": None,
             "workers": workers}
        for k in ("submitted", "done", "failed", "cancelled"):
            d[k] = self._counts[k]
        return d

    def __del__(self):
        pass



def _collect(q, client, ref):
    """Settles crew Futures from their finished dask futures: what has
    finished meanwhile is gathered in one request (one round trip for a
    batch, not one per future)."""
    while True:
        item = q.get()
        if item is None:
            return
        batch = [item]
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                q.put(None)
                break
            batch.append(item)
        ok = [b for b in batch if b[0].status == "finished"]
        vals = None
        if ok:
            try:
                vals = client.gather([b[0] for b in ok])
            except BaseException:
                vals = None     # one of them went away meanwhile: one by one below
        for i, (d, fut, key) in enumerate(ok if vals is not None else ()):
            _settle_one(fut, d, vals[i], None, ref)
        for d, fut, key in batch if vals is None else [b for b in batch if b not in ok]:
            try:
                if d.cancelled():
                    _settle_one(fut, d, None, "cancelled", ref)
                    continue
                exc = d.exception()
                if exc is None:
                    _settle_one(fut, d, d.result(), None, ref)
                else:
                    _settle_one(fut, d, None, exc, ref)
            except BaseException as e:   # e.g. the client closed under it
                _settle_one(fut, d, None, e, ref)
        for _, fut, key in batch:
            ex = ref()
            if ex is not None:
                ex._pending.pop(key, None)
        del batch, ok, vals, item


def _settle_one(fut, d, value, exc, ref):
    ex = ref()
    try:
        if exc == "cancelled":
            fut._crew_cancelled()
            what = "cancelled"
        elif exc is None:
            fut.set_result(value)
            what = "done"
        else:
            fut.set_exception(exc)
            what = "failed"
        if ex is not None:
            ex._counts[what] += 1
    except cf.InvalidStateError:
        pass
    finally:
        fut._crew = None


class _DaskHandle:
    """What a crew Future holds of its dask future: cancel() as crew's C
    future answers it (0: cancelled); wait() hands waiting to the Future's
    own Condition at once."""
    __slots__ = ("d",)

    def __init__(self, d):
        self.d = d

    def cancel(self):
        d = self.d
        if d is None or d.done():
            return -1
        d.cancel()
        return 0

    def wait(self, timeout):
        return True
