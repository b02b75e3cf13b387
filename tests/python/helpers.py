"""Top-level task functions for the tests (importable in every worker)."""
import dataclasses
import logging
import os
import signal
import time

STATE = {}


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def pid():
    return os.getpid()


def boom(msg):
    raise ValueError(msg)


def sleep(s):
    time.sleep(s)
    return s


def exit_with(code):
    os._exit(code)


def kill_self(sig):
    os.kill(os.getpid(), sig)
    time.sleep(10)


def init_state(value):
    STATE["value"] = value


def get_state():
    return STATE.get("value")


def log_something(msg):
    logging.getLogger("crew.test").warning("hello %s", msg)
    return os.getpid()


def print_something(msg):
    print(msg)
    return True


def _in_shared_memory(addr):
    with open("/proc/self/maps") as f:
        for line in f:
            if "crew-pool" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= addr < hi:
                    return True
    return False


def inspect_array(a):
    """Where the worker found its argument: (sum, owns its data, in crew's shared memory)."""
    return float(a.sum()), bool(a.flags.owndata), _in_shared_memory(a.ctypes.data)


def make_array(n):
    import numpy as np
    return np.arange(n, dtype=np.float64)


def in_shared_memory(addr):
    return _in_shared_memory(addr)


def fail_at_3(x):
    """x * 10, except for 3: a ValueError (a map item failing mid-chunk)."""
    if x == 3:
        raise ValueError(f"item {x} is bad")
    return x * 10


def stop_at_5(x):
    """x, except for 5: a StopIteration (which a map's own loop would take
    for its end)."""
    if x == 5:
        raise StopIteration("five")
    return x


def unpicklable_at_2(x):
    """A lock (cannot be pickled) for 2, else x."""
    import threading
    return threading.Lock() if x == 2 else x


KEPT = []


def keep_arg(a, keep):
    """Caches its argument (a numpy array in crew's shared memory) when keep,
    else forgets every cached one; returns what the cache holds now."""
    if keep:
        KEPT.append(a)
    else:
        KEPT.clear()
    return [float(k[0]) for k in KEPT]


class Obj:
    """A plain object whose lifetime a test can watch with a weakref."""


def make_obj(_):
    return Obj()


def init_fail_logged(q):
    """An initializer that sends the 'concurrent.futures' logger's records to
    q (a crew.Queue), then raises (as CPython's init_fail does)."""
    import logging.handlers
    logger = logging.getLogger("concurrent.futures")
    logger.addHandler(logging.handlers.QueueHandler(q))
    logger.propagate = False
    raise ValueError("error in initializer")


def set_event(ev):
    ev.set()
    return ev.is_set()


def ignore_sigterm_and_sleep(s):
    """Ignores SIGTERM, then sleeps s seconds (a worker terminate cannot stop)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(s)
    return s


def alive(pid):
    """Whether process pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def init_slow_once(path, seconds):
    """An initializer that sleeps in the first worker to run it (the one
    that creates path), and returns at once in the others."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    time.sleep(seconds)


def nap_pid(s):
    """Sleeps s seconds; returns the worker's pid."""
    time.sleep(s)
    return os.getpid()


def unpicklable_error_at_1(x):
    """Raises an exception that cannot be pickled (it holds a lock) for 1, else x."""
    import threading
    if x == 1:
        raise ValueError(threading.Lock())
    return x


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    """An exception that refuses attribute writes (its __cause__ too)."""
    code: int


def raise_frozen(code):
    raise FrozenError(code)
