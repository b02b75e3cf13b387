"""Task functions of the demo and the benchmark: top-level in an importable
module, so that every pool (threads, fork, spawn, forkserver) can run them."""
import os
import signal
import threading
import time
import urllib.request

# --- the fork trap: state the demo changes in the parent before workers start
SETTINGS = {"num_threads": "default"}     # a module-level setting
LOCK = threading.Lock()                   # held by a parent thread in the demo
ENV_NAME = "CREW_DEMO_SETTING"


def noop(x=None):
    return x


def map_chunk(fn, items):
    """fn over a chunk of items, in one task (a map on a pool that has no chunking)."""
    return [fn(x) for x in items]


def spin(n):
    """Pure-Python CPU work: holds the GIL the whole time."""
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


def timed_spin(n):
    """spin(n) and the CPU seconds it took where it ran (this thread's)."""
    c = time.thread_time()
    v = spin(n)
    return v, time.thread_time() - c


def fetch_and_read(url, path):
    """Real I/O: one HTTP GET and one file read; both release the GIL while waiting."""
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    with open(path, "rb") as f:
        data = f.read()
    return len(body) + len(data)


def array_summary(a):
    """What a worker does with a large array: reads its ends."""
    return float(a[0]) + float(a[-1]), a.nbytes


def array_home(a):
    """Where the worker found the array's data: in a shared mapping of crew's
    pool, or in its own private memory (a copy)."""
    addr = a.ctypes.data
    with open("/proc/self/maps") as f:
        for line in f:
            if "crew-pool" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= addr < hi:
                    return "in crew's shared memory (no copy)"
    return "a private copy"


def nbytes(a):
    return a.nbytes


def what_child_sees():
    """The parent's state as this worker sees it (the fork trap)."""
    got = LOCK.acquire(timeout=0.3)
    if got:
        LOCK.release()
    return {
        "env": os.environ.get(ENV_NAME, "(unset)"),
        "setting": SETTINGS["num_threads"],
        "lock": "free" if got else "HELD (acquire() would hang)",
        "pid": os.getpid(),
    }


def crash_on(i, bad, delay=0.02):
    """Sleeps a little; item `bad` kills its own worker (SIGKILL, as the OOM killer would)."""
    time.sleep(delay)
    if i == bad:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    return i


def crunch(n):
    """Work that releases the GIL: numpy over a large array when numpy is
    installed, else hashlib over a large buffer."""
    try:
        import numpy as np
    except ImportError:
        import hashlib
        return hashlib.sha256(b"c" * n * 8).hexdigest()[:8]
    a = np.arange(n, dtype=np.float64)
    return float(np.sqrt(a * a + 1.0).sum())


def wait_io(s):
    """Stands for I/O (a request, a query): sleeps, releasing the GIL."""
    time.sleep(s)
    return s


def tiny(x):
    return x + 1
