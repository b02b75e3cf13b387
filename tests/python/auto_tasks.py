"""Workloads for the kind="auto" placement tests (top level: importable in every worker)."""
import hashlib
import os
import threading
import time


def spin(n):
    """Pure Python: holds the GIL the whole time."""
    x = 0
    for i in range(n):
        x += i
    return x


def spin_pid(n):
    spin(n)
    return os.getpid()


def nap(s):
    """Stands for I/O: releases the GIL and waits."""
    time.sleep(s)
    return os.getpid()


def digest(data, rounds):
    """hashlib on a large buffer: releases the GIL while it hashes."""
    h = None
    for _ in range(rounds):
        h = hashlib.sha256(data).digest()
    return h


def tiny(x):
    return x + 1


def with_lock(lock, n):
    """CPU-bound, but its argument cannot be pickled."""
    with lock:
        pass
    return spin(n)


def make_lock(n):
    """CPU-bound, but its result cannot be pickled."""
    spin(n)
    return threading.Lock()


def shape(mode, amount):
    """CPU-bound or waiting, as told: a function that changes behaviour."""
    if mode == "cpu":
        spin(amount)
    else:
        time.sleep(amount)
    return os.getpid()


def calibrate(seconds):
    """The spin() size that takes about that long here (best of three)."""
    n = 200_000
    best = min(_timed(spin, n) for _ in range(3))
    return max(20_000, int(n * seconds / best))


def _timed(fn, *a):
    t = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t
