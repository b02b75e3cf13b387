"""The pools crew is measured against, behind one small adapter each.

Used by ``python -m crew bench`` and by the scripts in bench/ (bench_py.py,
bench_hot.py), so that every benchmark drives a peer the same way:

    peer.available()                -> (True, "") or (False, why)
    p = peer.make(n, start_method)  -> a started pool of n workers
    peer.submit(p, fn, *args)       -> an object with .result()
    peer.map(p, fn, items, chunk)   -> list of fn(item), with the peer's own chunking
    peer.close(p)                   -> shut the pool down, waiting for its workers

Peers that are not installed say so (``available()``) instead of raising;
Ray's runtime is started at most once per process (``RAY.start``) and shut
down by ``shutdown_runtimes()``.
"""
import concurrent.futures as cf
import functools
import logging
import multiprocessing as mp
import os
import time

import crew

from .tasks import map_chunk, noop

BENCH_EXTRA = "pip install 'crew[bench]'"


class _AR:
    """multiprocessing-style AsyncResult (``.get()``) seen as a future (``.result()``)."""
    __slots__ = ("r",)

    def __init__(self, r):
        self.r = r

    def result(self):
        return self.r.get()


def _missing(module, hint=BENCH_EXTRA):
    """(True, "") when `module` imports, else (False, "not installed (<hint>)")."""
    try:
        __import__(module)
        return True, ""
    except ImportError:
        return False, f"not installed ({hint})"


class Peer:
    key = ""
    name = ""
    kind = "process"     # or "thread"
    note = ""            # how it is driven, for the bench's notes
    start_note = ""      # what its pool-start figure includes beyond the others'

    def available(self):
        return True, ""

    def make(self, n, method):
        raise NotImplementedError

    def close(self, p):
        p.shutdown()

    def submit(self, p, fn, *a):
        return p.submit(fn, *a)

    def map(self, p, fn, items, chunksize):
        return list(p.map(fn, items, chunksize=chunksize))

    def start_samples(self, n, method, repeats, warm=True):
        """Milliseconds to create a pool, get a first result and shut it down,
        `repeats` times, after one warm-up start (a fork server, imports)
        unless `warm` is false."""
        if warm:
            one_start(self, n, method)
        return [one_start(self, n, method) for _ in range(repeats)]


def one_start(peer, n, method):
    t = time.perf_counter()
    p = peer.make(n, method)
    try:
        peer.submit(p, noop).result()
    finally:
        peer.close(p)
    return (time.perf_counter() - t) * 1e3


# ----------------------------------------------------- crew and the stdlib --

class CrewProcesses(Peer):
    key, name = "crew-processes", "crew processes"

    def make(self, n, method):
        return crew.Executor(n, start_method=method)


class CrewThreads(Peer):
    key, name, kind = "crew-threads", "crew threads", "thread"

    def make(self, n, method):
        return crew.Executor(n, kind="threads")


class _PoolApi(Peer):
    """A peer with multiprocessing.Pool's API (apply_async, map, close+join)."""

    def submit(self, p, fn, *a):
        return _AR(p.apply_async(fn, a))

    def map(self, p, fn, items, chunksize):
        return p.map(fn, items, chunksize)

    def close(self, p):
        p.close()
        p.join()


class MpPool(_PoolApi):
    key, name = "mp-pool", "multiprocessing.Pool"

    def make(self, n, method):
        return mp.get_context(method).Pool(n)


class PPE(Peer):
    key, name = "ppe", "ProcessPoolExecutor"

    def make(self, n, method):
        return cf.ProcessPoolExecutor(n, mp_context=mp.get_context(method))


class TPE(Peer):
    key, name, kind = "tpe", "ThreadPoolExecutor", "thread"

    def make(self, n, method):
        return cf.ThreadPoolExecutor(n)

    def map(self, p, fn, items, chunksize):
        return list(p.map(fn, items))


# ------------------------------------------------------------ PyPI peers --

class Loky(Peer):
    key, name = "loky", "joblib/loky"
    note = "loky's own start method (fork + exec)"

    def available(self):
        return _missing("joblib.externals.loky")

    def make(self, n, method):
        from joblib.externals import loky
        return loky.ProcessPoolExecutor(n)


class Pebble(Peer):
    key, name = "pebble", "pebble.ProcessPool"

    def available(self):
        return _missing("pebble")

    def make(self, n, method):
        import pebble
        return pebble.ProcessPool(max_workers=n, context=mp.get_context(method))

    def submit(self, p, fn, *a):
        return p.schedule(fn, args=a)

    def map(self, p, fn, items, chunksize):
        return list(p.map(fn, items, chunksize=chunksize).result())

    def close(self, p):
        p.close()
        p.join()


class Mpire(Peer):
    """mpire.WorkerPool: apply_async for single tasks, map (its own chunking,
    given the same chunk size as the others) for batches. keep_alive=True so
    that one pool serves every call, as the other peers' pools do."""
    key, name = "mpire", "mpire.WorkerPool"
    note = "WorkerPool(keep_alive=True); apply_async per task, map(chunk_size=...) per batch"

    def available(self):
        return _missing("mpire")

    def make(self, n, method):
        from mpire import WorkerPool
        return WorkerPool(n_jobs=n, start_method=method, keep_alive=True)

    def submit(self, p, fn, *a):
        return _AR(p.apply_async(fn, a))

    def map(self, p, fn, items, chunksize):
        # A fresh partial each call: mpire's workers pick how to call a map's
        # function (with the item's index, to keep order) when its map
        # parameters change; workers that apply_async started keep the plain
        # way and a map with the same function would then get (index, item)
        # pairs (mpire issue #74, "Allow mixing map calls"). A new function
        # object makes map send its parameters again, as any new map does.
        return p.map(functools.partial(fn), items, iterable_len=len(items), chunk_size=chunksize)

    def close(self, p):
        try:
            p.stop_and_join()
        finally:
            p.terminate()


class Dask(Peer):
    key, name = "dask", "dask.distributed"
    note = "a local cluster of worker processes"

    def available(self):
        return _missing("dask.distributed", "pip install 'dask[distributed]'")

    def make(self, n, method):
        from dask.distributed import Client, LocalCluster
        return Client(LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None))

    def submit(self, p, fn, *a):
        return p.submit(fn, *a, pure=False)

    def map(self, p, fn, items, chunksize):
        return p.gather(p.map(fn, items, pure=False))

    def close(self, p):
        cl = p.cluster
        p.close()
        cl.close()


# ------------------------------------------------------------------- Ray --

class RayRuntime:
    """One local Ray instance for the whole process: ray.init on first use
    (num_cpus = workers, no dashboard, quiet logs, loopback only, no usage
    stats), ray.shutdown at the end. Its start and stop times are kept so that
    the Ray rows' pool start can include them."""

    def __init__(self):
        self.started = False
        self.failed = None          # why ray.init failed, once it has
        self.n = None
        self.init_ms = None         # ray.init
        self.first_ms = None        # first task's result right after ray.init
        self.shutdown_ms = None     # ray.shutdown

    def start(self, n):
        if self.failed:
            raise RuntimeError(self.failed)
        if self.started:
            if n != self.n:
                raise RuntimeError(f"Ray was started with num_cpus={self.n}, not {n}")
            return
        # no usage statistics sent anywhere; workers find crew where this process does
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        here = os.path.dirname(os.path.dirname(os.path.abspath(crew.__file__)))
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if here not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([here] + paths)
        try:
            import ray
            if ray.is_initialized():
                raise RuntimeError("Ray is already initialized in this process")
            t = time.perf_counter()
            ray.init(num_cpus=n, include_dashboard=False, logging_level=logging.ERROR,
                     log_to_driver=False, _node_ip_address="127.0.0.1",
                     object_store_memory=512 * 2**20)
            self.init_ms = (time.perf_counter() - t) * 1e3
            self.started, self.n = True, n
            t = time.perf_counter()
            ray.get(ray.remote(noop).remote(0))
            self.first_ms = (time.perf_counter() - t) * 1e3
        except Exception as e:
            self.failed = f"ray.init: {type(e).__name__}: {e}"
            try:                      # whatever part of Ray did start
                import ray
                ray.shutdown()
            except Exception:
                pass
            self.started = False
            raise RuntimeError(self.failed) from e

    def stop(self):
        if not self.started:
            return
        import ray
        t = time.perf_counter()
        try:
            ray.shutdown()
        finally:
            self.shutdown_ms = (time.perf_counter() - t) * 1e3
            self.started = False

    def once_ms(self):
        """ray.init + ray.shutdown, in ms (None until both were measured)."""
        if self.init_ms is None or self.shutdown_ms is None:
            return None
        return self.init_ms + self.shutdown_ms


RAY = RayRuntime()


def shutdown_runtimes():
    """Stops what the peers started once per process (Ray)."""
    RAY.stop()


class _RayPeer(Peer):
    runtime = RAY

    def available(self):
        ok, why = _missing("ray")
        if ok and self.runtime.failed:
            return False, self.runtime.failed
        return ok, why


class RayPool(_RayPeer, _PoolApi):
    """ray.util.multiprocessing.Pool on the bench's Ray instance: n actors."""
    key, name = "ray-pool", "ray.util.multiprocessing.Pool"
    note = "n actors on one local Ray instance (ray.init once per run)"
    start_note = "+ ray.init and ray.shutdown, once per run"

    def make(self, n, method):
        self.runtime.start(n)
        from ray.util.multiprocessing import Pool
        return Pool(processes=n)


class _RayTasks:
    """What RayTasks.make returns: the remote version of each function used."""

    def __init__(self):
        self.remote = {}

    def of(self, fn):
        r = self.remote.get(fn)
        if r is None:
            import ray
            r = self.remote[fn] = ray.remote(fn)
        return r


class _Ref:
    __slots__ = ("ref",)

    def __init__(self, ref):
        self.ref = ref

    def result(self):
        import ray
        return ray.get(self.ref)


class RayTasks(_RayPeer):
    """Plain Ray tasks: ray.remote(fn).remote(*args), ray.get; a map is one
    task per chunk. There is no pool to create: its start is the runtime's."""
    key, name = "ray-tasks", "ray.remote tasks"
    note = "ray.remote(fn).remote(...) + ray.get; a map is one task per chunk"
    start_note = "ray.init + first task + ray.shutdown, 1 sample"

    def make(self, n, method):
        self.runtime.start(n)
        return _RayTasks()

    def close(self, p):
        p.remote.clear()

    def submit(self, p, fn, *a):
        return _Ref(p.of(fn).remote(*a))

    def map(self, p, fn, items, chunksize):
        import ray
        run = p.of(map_chunk)
        parts = ray.get([run.remote(fn, items[i:i + chunksize])
                         for i in range(0, len(items), chunksize)])
        return [x for part in parts for x in part]

    def start_samples(self, n, method, repeats, warm=True):
        # ray.init and the first task are measured when the runtime starts
        # (once per run: one sample, from the first round); ray.shutdown is
        # added by once_ms() when the bench ends
        if not warm:
            return []
        self.runtime.start(n)
        return [self.runtime.first_ms]


PEERS = {p.key: p for p in (CrewProcesses(), CrewThreads(), MpPool(), PPE(), TPE(), Loky(),
                            Pebble(), Mpire(), Dask(), RayPool(), RayTasks())}


def is_ray(key):
    return isinstance(PEERS[key], _RayPeer)
