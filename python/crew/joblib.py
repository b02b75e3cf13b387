"""crew.joblib: a joblib parallel backend named "crew" (scikit-learn's n_jobs on crew workers).

    import joblib, crew.joblib
    crew.joblib.register()
    with joblib.parallel_config(backend="crew", n_jobs=4):
        out = joblib.Parallel()(joblib.delayed(f)(x) for x in xs)
        # and every scikit-learn estimator's n_jobs

The backend follows joblib's protocol: effective_n_jobs, auto-batching,
return_as="generator"/"generator_unordered", retrieval callbacks, Parallel's
timeout (a batch past it is killed with its worker, crew.TaskTimeoutError),
abort on error (batches not started are cancelled, running ones stopped),
and nesting without oversubscription (a Parallel call inside a crew task gets
at most cpu_count() // n_jobs threads; BLAS/OpenMP pools in the workers are
limited the same way). Large numpy arguments cross through crew's shared
memory, not pickled copies. A worker that dies fails only its batch, with
crew.WorkerCrashedError, and the pool serves the next call.
"""
import os
import sys
import threading
import weakref

try:
    import joblib as _joblib
    from joblib._parallel_backends import (AutoBatchingMixin, FallbackToBackend,
                                           ParallelBackendBase, SequentialBackend,
                                           ThreadingBackend)
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(f"crew.joblib needs joblib: pip install joblib ({_e})") from _e

from . import _runtime as rt
from ._executor import Executor, cpu_count

__all__ = ["register", "shutdown", "CrewBackend"]

# executors shared by the backends of successive Parallel calls (a pool is
# warm for the next call, as loky's is): key -> [executor, users]
_pools = {}
_pools_lock = threading.Lock()


def register(name="crew", make_default=False):
    """Registers the joblib backend ``name`` (default "crew"), as
    ``ray.util.joblib.register_ray()`` does; ``make_default=True`` makes it
    joblib's default backend.

    Options go to ``joblib.parallel_config(backend="crew", ...)``:
    ``kind`` ("processes", the default, or "threads"), ``start_method``,
    ``max_tasks_per_child``, ``task_timeout`` (seconds per batch; Parallel's
    own ``timeout`` is used when not given), ``inner_max_num_threads``
    (BLAS/OpenMP threads per worker), or ``executor`` (a crew.Executor of
    your own, used as it is and never shut down by joblib)."""
    _joblib.register_parallel_backend(name, CrewBackend, make_default=make_default)


_limits = None   # in a worker: threadpoolctl's limits, kept for the worker's life


def shutdown(wait=True):
    """Closes the pools the backend keeps warm between Parallel calls (they
    are otherwise closed at exit); the next call makes new ones. An
    ``executor=`` of your own is never closed here."""
    with _pools_lock:
        entries = list(_pools.values())
        _pools.clear()
    for ex, _users in entries:
        ex.shutdown(wait=wait)


def _limit_threads(env):
    """A worker's initializer: caps BLAS/OpenMP thread pools at
    cpu_count() // n_jobs, as loky does: by environment for libraries loaded
    later, by threadpoolctl for those the worker already has (a fork-server
    worker inherits numpy when the main module imports it)."""
    global _limits
    os.environ.update(env)
    os.environ["CREW_JOBLIB_WORKER"] = "1"
    # backend="crew" named in a task resolves in the worker too (and runs
    # there, sequentially: effective_n_jobs is 1 inside a worker)
    if "crew" not in _joblib.parallel.BACKENDS:
        register()
    try:
        n = int(env.get("OMP_NUM_THREADS", "0"))
        if n > 0 and any(m in sys.modules for m in ("numpy", "scipy", "threadpoolctl")):
            from threadpoolctl import threadpool_limits
            _limits = threadpool_limits(n)
    except Exception:   # threadpoolctl missing: the environment still applies
        pass


class CrewNestedBackend(ThreadingBackend):
    """What a Parallel call inside a crew task runs on: threads, at most
    ``cap`` of them (cpu_count() // the outer n_jobs), so that nested calls
    never oversubscribe the machine; sequential at the next level down."""

    def __init__(self, nesting_level=None, cap=1, **kw):
        super().__init__(nesting_level=nesting_level, **kw)
        self.cap = max(1, int(cap))

    def effective_n_jobs(self, n_jobs):
        return min(super().effective_n_jobs(n_jobs), self.cap)

    def get_nested_backend(self):
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None


class CrewBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's backend protocol on a crew.Executor (see the module doc)."""

    supports_retrieve_callback = True
    supports_inner_max_num_threads = True
    supports_return_generator = True
    supports_timeout = True
    default_n_jobs = 1

    def __init__(self, nesting_level=None, inner_max_num_threads=None, *, kind="processes",
                 start_method=None, max_tasks_per_child=None, task_timeout=None,
                 executor=None, **backend_kwargs):
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **backend_kwargs)
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"executor must be a crew.Executor, not {type(executor).__name__}")
        if kind not in ("processes", "threads"):
            raise ValueError('crew joblib backend: kind must be "processes" or "threads"')
        self.kind = executor.kind if executor is not None else kind
        self.start_method = start_method
        self.max_tasks_per_child = max_tasks_per_child
        self.task_timeout = task_timeout
        self._own_ex = executor
        # joblib reads these on the instance to honour require="sharedmem"
        # and prefer="threads"/"processes"
        self.uses_threads = self.supports_sharedmem = self.kind == "threads"
        self._ex = None
        self._key = None
        self._futures = weakref.WeakSet()
        self._n_jobs = 1
        self.parallel = None

    def __reduce__(self):
        # a BatchedCalls carries its nested backend, never this one; but if a
        # user pickles it, no executor travels
        return (CrewBackend, (self.nesting_level, self.inner_max_num_threads),
                {"kind": self.kind, "start_method": self.start_method,
                 "max_tasks_per_child": self.max_tasks_per_child,
                 "task_timeout": self.task_timeout, "_ex": None, "_own_ex": None,
                 "_key": None, "uses_threads": self.uses_threads,
                 "supports_sharedmem": self.supports_sharedmem})

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._futures = weakref.WeakSet()
        self._n_jobs = 1
        self.parallel = None

    # ----------------------------------------------------------- sizing --

    def effective_n_jobs(self, n_jobs):
        """The number of workers a Parallel call gets: n_jobs, with -1 meaning
        every usable CPU (crew.cpu_count(): affinity and cgroup quota), -2
        all but one, ...; 1 inside a crew process worker (a nested call runs
        in the worker itself rather than start a pool of its own)."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if rt.IN_WORKER or os.environ.get("CREW_JOBLIB_WORKER") == "1":
            return 1
        total = self._own_ex.max_workers if self._own_ex is not None else cpu_count()
        if n_jobs < 0:
            n_jobs = max(total + 1 + n_jobs, 1)
        if self._own_ex is not None:
            n_jobs = min(n_jobs, self._own_ex.max_workers)
        return n_jobs

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **kw):
        """Picks (or makes) the crew executor of this call; returns n_jobs."""
        self.parallel = parallel
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            # as joblib's own process backends do: one job runs here, sequentially
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self._n_jobs = n_jobs
        if self._ex is None:
            self._acquire(n_jobs)
        return n_jobs

    def _acquire(self, n_jobs):
        if self._own_ex is not None:
            self._ex = self._own_ex
            return
        env = self._prepare_worker_env(n_jobs) if self.kind == "processes" else {}
        key = (n_jobs, self.kind, self.start_method, self.max_tasks_per_child,
               tuple(sorted(env.items())))
        with _pools_lock:
            entry = _pools.get(key)
            if entry is None or entry[0]._shutdown:
                ex = Executor(n_jobs, kind=self.kind, start_method=self.start_method,
                              initializer=_limit_threads if env else None,
                              initargs=(env,) if env else (),
                              max_tasks_per_child=self.max_tasks_per_child)
                entry = _pools[key] = [ex, 0]
            entry[1] += 1
        self._ex, self._key = entry[0], key

    def _release(self):
        key, self._key = self._key, None
        self._ex = None
        if key is None:
            return
        with _pools_lock:
            entry = _pools.get(key)
            if entry is not None:
                entry[1] = max(0, entry[1] - 1)

    # ------------------------------------------------------------- tasks --

    def submit(self, func, callback=None):
        """Runs one batch (a joblib BatchedCalls) on a crew worker."""
        ex = self._ex
        if ex is None:
            raise RuntimeError("the crew joblib backend is not configured: use it through "
                               "joblib.Parallel or joblib.parallel_config(backend='crew')")
        timeout = self.task_timeout
        if timeout is None and self.parallel is not None:
            timeout = getattr(self.parallel, "timeout", None)
        fut = ex.options(timeout=timeout).submit(func) if timeout else ex.submit(func)
        self._futures.add(fut)
        if callback is not None:
            fut.add_done_callback(callback)
        return fut

    def retrieve_result_callback(self, future):
        """The batch's list of results, or its exception (the task's own, or
        crew.WorkerCrashedError / crew.TaskTimeoutError)."""
        return future.result()

    def get_nested_backend(self):
        """Threads, at most cpu_count() // n_jobs of them, for a Parallel call
        made inside a batch: the workers together never oversubscribe."""
        level = (self.nesting_level or 0) + 1
        cap = max(1, cpu_count() // max(1, self._n_jobs))
        if self.inner_max_num_threads is not None:
            cap = max(1, int(self.inner_max_num_threads))
        if level > 1 or cap == 1:
            return SequentialBackend(nesting_level=level), None
        return CrewNestedBackend(nesting_level=level, cap=cap), None

    def terminate(self):
        """End of a Parallel call: the pool stays warm for the next one."""
        self._futures = weakref.WeakSet()
        self._release()
        self.reset_batch_stats()

    def abort_everything(self, ensure_ready=True):
        """A batch failed: cancel what has not started; stop what runs (its
        workers are killed when no other Parallel call shares the pool; the
        pool is then made anew on the next call)."""
        futs = [f for f in list(self._futures) if not f.done()]
        self._futures = weakref.WeakSet()
        running = [f for f in futs if not f.cancel()]
        ex, key = self._ex, self._key
        if running and ex is not None and key is not None and self.kind == "processes":
            with _pools_lock:
                entry = _pools.get(key)
                alone = entry is not None and entry[0] is ex and entry[1] <= 1
                if alone:
                    del _pools[key]
            if alone:
                ex.terminate()
                self._key = None
                self._ex = None
                if ensure_ready and self.parallel is not None:
                    self._acquire(self._n_jobs)
