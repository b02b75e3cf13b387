"""crew: thread and process worker pools over libcrew.

    import crew

    with crew.Executor() as ex:                 # processes, forkserver, cpu_count() workers
        print(list(ex.map(pow, range(10), range(10))))

    with crew.Pool(4) as pool:                  # the multiprocessing.Pool API
        print(pool.map(abs, [-1, -2, 3]))

Tasks cross to process workers by pickle protocol 5 with large buffers
(numpy arrays, bytes) placed in shared memory; lambdas and closures cross
through cloudpickle; a bound method of a module global (os.environ.__setitem__,
random.seed, mymod.LOCK.acquire) crosses by reference and acts on the
worker's own object. A worker that dies fails only its own task
(WorkerCrashedError); a task past its timeout fails with TaskTimeoutError.
"""
from ._runtime import (CrewError, InitializerError, RemoteError, RemoteTraceback,
                       SerializationError, TaskTimeoutError, WorkerCrashedError)
from ._executor import Executor, Future, cpu_count, get_start_method, set_start_method
from .pool import AsyncResult, Pool
from ._auto import Placement, pin
from .shared import (Barrier, BoundedSemaphore, BrokenQueueError, Condition, Connection, Event,
                     Lock, LockOwnerDiedError, Pipe, Queue, RLock, Semaphore, SharedDict,
                     shared_array)

__all__ = [
    "Executor", "Pool", "AsyncResult", "Future", "cpu_count", "pin", "Placement", "set_start_method",
    "get_start_method", "CrewError", "WorkerCrashedError", "TaskTimeoutError",
    "InitializerError", "SerializationError", "RemoteError", "RemoteTraceback",
    # shared state (crew.shared)
    "Queue", "Pipe", "Connection", "SharedArray", "shared_array", "SharedDict", "Lock", "RLock",
    "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier", "LockOwnerDiedError",
    "BrokenQueueError",
    # asyncio (crew._aio); integrations: crew.joblib, crew.dask
    "as_completed_async",
]
__version__ = "0.1.0"


def __getattr__(name):
    # crew.SharedArray is made on first use: numpy is not imported with crew
    # (every process worker imports crew; numpy would be most of its time)
    if name == "SharedArray":
        from .shared import SharedArray
        return SharedArray
    if name == "as_completed_async":   # asyncio is not imported with crew either
        from ._aio import as_completed_async
        return as_completed_async
    raise AttributeError(f"module 'crew' has no attribute {name!r}")
