"""Task functions for test_shared.py (importable in every worker)."""
import os
import signal
import time

import crew


def use_all(q, d, a, ev, sem, lock, rl):
    q.put(("pid", os.getpid()))
    d[f"w{os.getpid()}"] = os.getpid()
    with lock:
        a[:] += 1
    with rl:
        with rl:
            d["rlock"] = True
    sem.acquire()
    ev.set()
    return a.sum()


def make_objects(n):
    d = crew.SharedDict()
    d["made_by"] = os.getpid()
    a = crew.SharedArray((n,), "i8")
    a[:] = 7
    q = crew.Queue()
    q.put("from worker")
    return d, a, q


def echo_pipe(conn, n):
    for _ in range(n):
        conn.send(conn.recv())
    conn.send_bytes(b"done")
    return True


def wait_event_then(ev, d):
    ok = ev.wait(10)
    d["seen"] = ok
    return ok


def barrier_party(b):
    return b.wait(10)


def condition_waiter(c, d):
    with c:
        ok = c.wait_for(lambda: d.get("go", False), timeout=10)
    return ok


def die_holding(lock):
    lock.acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def dict_writer(d, n):
    d["pid"] = os.getpid()
    i = 0
    while True:
        b = bytes([i % 251]) * (64 + i % 2000)
        d[f"k{i % 50}"] = b
        d["count"] = i
        i += 1


def producer(q, base, n):
    for i in range(n):
        q.put((base, i))
    return n


def consumer(q):
    got = []
    while True:
        x = q.get(timeout=30)
        if x is None:
            return got
        got.append(x)


def put_and_die(q, n):
    for i in range(n):
        q.put(i)
    os.kill(os.getpid(), signal.SIGKILL)


def array_info(a):
    a[0] = -1
    return float(a[1:].sum()), a.shape, a.dtype.str, type(a).__name__


def sem_hold(sem, d, key):
    with sem:
        d[key] = d.get(key, 0) + 1
        time.sleep(0.05)
    return True


def locked_increment(lock, d, n):
    for _ in range(n):
        with lock:
            d["c"] = d.get("c", 0) + 1
    return n


def echo_via_queue(q, obj):
    """Puts obj in q and returns it: the one object crosses both ways a
    Python object travels in crew shared memory (test_codec.py)."""
    q.put(obj)
    return obj
