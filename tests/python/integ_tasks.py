"""Top-level task functions for the joblib, dask and asyncio integration tests."""
import os
import signal
import time


def square(x):
    return x * x


def pid_of(_=None):
    return os.getpid()


def fail_on(x, bad):
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x


def kill_self_on(x, bad):
    if x == bad:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def array_info(a):
    """What a worker sees of a numpy argument: its sum, and whether it owns its
    memory (False: a view of the buffer it came in, crew's shared memory)."""
    return float(a.sum()), bool(a.flags.owndata)


def block_and_report(path, x):
    """Writes this worker's pid to path/x, then waits (until killed)."""
    with open(os.path.join(path, f"{x}.pid"), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
    return x


def wait_for_file(path, x):
    """Item 0 waits (up to 120 s) until path exists; the others return at once."""
    if x == 0:
        end = time.monotonic() + 120
        while not os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.01)
    return x


def nested_joblib(_):
    """A joblib call made inside a crew task: what it runs on."""
    import joblib
    pids = joblib.Parallel(n_jobs=-1)(joblib.delayed(os.getpid)() for _ in range(4))
    named = joblib.Parallel(backend="crew", n_jobs=2)(joblib.delayed(os.getpid)() for _ in range(2))
    return os.getpid(), set(pids), set(named), joblib.effective_n_jobs(-1)


def env_of(name):
    return os.environ.get(name)


def fail_once_started(path, x):
    """Raises once another task has written its pid file into path."""
    while not os.path.exists(os.path.join(path, "0.pid")):
        time.sleep(0.01)
    raise ValueError(f"item {x} is bad")


def sleep_then(s, x):
    time.sleep(s)
    return x


def blas_threads(_=None):
    """The largest thread count of the BLAS/OpenMP pools this worker has loaded."""
    import numpy  # noqa: F401 - loads the BLAS
    import threadpoolctl
    return max([i["num_threads"] for i in threadpoolctl.threadpool_info()] or [1])
