"""crew shared state in Python: every kind across crew process workers, all start methods."""
import gc
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time

import numpy as np
import pytest

import crew
import crew.shared
import shared_tasks as T


def _crew_shm():
    """crew's entries in /dev/shm (it makes none: memfds); other libraries'
    (joblib's memmapping folders, multiprocessing's semaphores), made by
    other tests or other programs meanwhile, are not this test's business."""
    return sorted(n for n in os.listdir("/dev/shm") if "crew" in n)


def test_in_process_basics():
    q = crew.Queue()
    items = [b"x" * 64, {"a": 1}, np.arange(5), "s", 3, 2.5, bytearray(b"ab"), 2**70, None]
    for it in items:
        q.put(it)
    out = [q.get() for _ in items]
    assert out[0] == items[0] and out[1] == items[1] and (out[2] == items[2]).all()
    assert out[3:] == items[3:] and type(out[6]) is bytearray
    q.put_many(list(range(300)))
    got = []
    while len(got) < 300:
        got += q.get_many(128)
    assert got == list(range(300))
    with pytest.raises(queue.Empty):
        q.get(timeout=0.05)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    assert q.empty() and q.qsize() == 0 and not q.full()
    big = np.random.rand(200_000)  # 1.6 MB: one message, read back in place
    q.put(big)
    assert (q.get() == big).all()
    q.shutdown()
    with pytest.raises(crew.BrokenQueueError):
        q.get()
    with pytest.raises(ValueError):
        q.put(1)
    bq = crew.Queue(2)
    bq.put(1), bq.put(2)
    assert bq.full()
    with pytest.raises(queue.Full):
        bq.put(3, timeout=0.05)


def test_queue_put_and_get_take_every_argument_form():
    """put(obj) and get() skip the argument parser; every other form of
    the call still goes through it, with its errors."""
    q = crew.Queue(2)
    q.put(1)
    q.put(2, False)
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    with pytest.raises(queue.Full):
        q.put(3, True, 0.01)
    with pytest.raises(queue.Full):
        q.put(obj=3, timeout=0.01)
    assert q.get() == 1 and q.get(False) == 2
    q.put_nowait(4)
    q.put_many([5])
    assert q.get(block=True, timeout=1) == 4 and q.get(True, None) == 5
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(TypeError):
        q.put()
    with pytest.raises(TypeError):
        q.put(1, True, 1.0, "extra")
    with pytest.raises(TypeError):
        q.put(1, nope=1)
    with pytest.raises(TypeError):
        q.get(timeout="soon")
    with pytest.raises(TypeError):
        q.get(1, 2, 3)
    assert q.empty()


def test_dict_api():
    d = crew.SharedDict({"a": 1})
    d[1] = b"x"
    d[(1, 2)] = [1, 2]
    d[2.5] = "float key"
    assert d["a"] == 1 and d[1] == b"x" and d[(1, 2)] == [1, 2] and d[2.5] == "float key"
    assert len(d) == 4 and "a" in d and "zz" not in d and d.get("zz", 5) == 5
    del d["a"]
    with pytest.raises(KeyError):
        del d["a"]
    with pytest.raises(KeyError):
        d["a"]
    assert d.pop(1) == b"x" and d.pop(1, None) is None
    assert d.setdefault("q", 7) == 7 and d.setdefault("q", 8) == 7
    d.update({"u": 1}, v=2)
    assert sorted(map(str, d.keys())) == sorted(map(str, [(1, 2), 2.5, "q", "u", "v"]))
    assert dict(d.items()) == d.copy() and d == d.copy()
    with d.lock():
        d["n"] = d.get("n", 0) + 1
    big = b"z" * 100_000
    d["big"] = big
    assert d["big"] == big
    d.clear()
    assert len(d) == 0 and list(d) == []


def test_sync_in_process():
    lk = crew.Lock()
    assert lk.acquire() and not lk.acquire(False)
    lk.release()
    with pytest.raises(RuntimeError):
        lk.release()
    r = crew.RLock()
    with r:
        with r:
            pass
    s = crew.BoundedSemaphore(2)
    s.acquire()
    s.release()
    with pytest.raises(ValueError):
        s.release()
    assert crew.Semaphore(3).get_value() == 3
    e = crew.Event()
    assert not e.is_set() and not e.wait(0.01)
    e.set()
    assert e.wait() and e.is_set()
    c = crew.Condition()
    with c:
        assert not c.wait(0.01)
    assert crew.Barrier(1).wait() == 0
    b = crew.Barrier(2, timeout=0.05)
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    b.reset()
    assert b.parties == 2


def test_array_by_reference():
    a = crew.SharedArray((1000, 1000), "f8")
    a[:] = 1
    data = pickle.dumps(a, 5)
    assert len(data) < 400  # the reference, not 8 MB
    b = pickle.loads(data)
    assert b.ctypes.data == a.ctypes.data and isinstance(b, crew.SharedArray)
    v = pickle.loads(pickle.dumps(a[10:20, 3]))
    v[:] = 5
    assert (a[10:20, 3] == 5).all()
    assert type(a + 1) is np.ndarray  # arithmetic makes ordinary arrays
    dt = np.dtype([("f%d" % i, "f8") for i in range(40)])  # description > 255 bytes
    s = crew.SharedArray(3, dt)
    s["f3"] = 7
    t = pickle.loads(pickle.dumps(s))
    assert t.dtype == dt and (t["f3"] == 7).all()
    c = crew.SharedArray.from_array(np.arange(6, dtype="u2").reshape(2, 3))
    assert c.dtype == np.uint16 and c.shape == (2, 3) and c[1, 2] == 5
    assert crew.shared_array([1, 2, 3]).sum() == 6
    with pytest.raises(TypeError):
        crew.SharedArray(3, object)


def test_primitives_across_workers(method):
    q, d, a = crew.Queue(), crew.SharedDict(), crew.SharedArray(10, "i8")
    ev, sem, lock, rl = crew.Event(), crew.Semaphore(2), crew.Lock(), crew.RLock()
    with crew.Executor(2, start_method=method) as ex:
        fs = [ex.submit(T.use_all, q, d, a, ev, sem, lock, rl) for _ in range(2)]
        [f.result(timeout=30) for f in fs]
        assert (a == 2).all() and ev.is_set() and sem.get_value() == 0 and d["rlock"]
        pids = {q.get(timeout=5)[1] for _ in range(2)}
        assert all(d[f"w{p}"] == p for p in pids)
        # objects made in a worker, returned by reference
        d2, a2, q2 = ex.submit(T.make_objects, 100).result(timeout=30)
        assert d2["made_by"] != os.getpid() and (a2 == 7).all() and q2.get(timeout=5) == "from worker"
        a2[:] = 1  # still shared with the worker's array: plain memory here
        # event, barrier, condition, pipe
        ev2 = crew.Event()
        f = ex.submit(T.wait_event_then, ev2, d)
        time.sleep(0.05)
        ev2.set()
        assert f.result(timeout=30) and d["seen"]
        b = crew.Barrier(3)
        fs = [ex.submit(T.barrier_party, b) for _ in range(2)]
        idx = {b.wait(10)} | {f.result(timeout=30) for f in fs}
        assert idx == {0, 1, 2}
        c = crew.Condition()
        f = ex.submit(T.condition_waiter, c, d)
        time.sleep(0.1)
        with c:
            d["go"] = True
            c.notify_all()
        assert f.result(timeout=30)
        x, y = crew.Pipe()
        f = ex.submit(T.echo_pipe, y, 3)
        for m in ({"a": 1}, b"raw", np.arange(3)):
            x.send(m)
            r = x.recv()
            assert (r == m).all() if isinstance(m, np.ndarray) else r == m
        assert x.recv_bytes() == b"done" and f.result(timeout=30)
        info = ex.submit(T.array_info, a).result(timeout=30)
        assert info == (18.0, (10,), "<i8", "SharedArray") and a[0] == -1


def test_lock_owner_died(method):
    lock = crew.Lock()
    with crew.Executor(1, start_method=method) as ex:
        with pytest.raises(crew.WorkerCrashedError):
            ex.submit(T.die_holding, lock).result(timeout=30)
    with pytest.raises(crew.LockOwnerDiedError):
        lock.acquire(timeout=5)
    lock.release()  # the caller held it
    assert lock.acquire(timeout=1)
    lock.release()


def test_dict_writer_killed_mid_write():
    d = crew.SharedDict()
    with crew.Executor(1, start_method="fork") as ex:
        f = ex.submit(T.dict_writer, d, 0)
        t0 = time.monotonic()
        while d.get("count", 0) < 2000 and time.monotonic() - t0 < 20:
            time.sleep(0.01)
        pid = d["pid"]
        assert pid in [w["pid"] for w in ex.stats()["workers"]]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(crew.WorkerCrashedError):
            f.result(timeout=30)
    for k, v in d.items():
        if k.startswith("k"):
            assert len(set(v)) == 1 and 64 <= len(v) < 2064  # whole values only
    d["after"] = 1  # writers are not blocked by the dead one
    with d.lock(timeout=5):
        d["after"] += 1
    assert d["after"] == 2


def test_many_producers_consumers():
    q = crew.Queue(maxsize=64)
    n, P, C = 2000, 3, 2
    with crew.Executor(P + C) as ex:
        cons = [ex.submit(T.consumer, q) for _ in range(C)]
        prods = [ex.submit(T.producer, q, p, n) for p in range(P)]
        assert sum(f.result(timeout=60) for f in prods) == P * n
        for _ in range(C):
            q.put(None)
        got = [x for f in cons for x in f.result(timeout=60)]
    assert sorted(got) == sorted((p, i) for p in range(P) for i in range(n))
    for p in range(P):  # each producer's items come out in order
        mine = [i for (pp, i) in got if pp == p]
        assert len(mine) == n


def test_queue_peer_gone_is_an_error():
    q = crew.Queue()
    with crew.Executor(1, start_method="fork") as ex:
        with pytest.raises(crew.WorkerCrashedError):
            ex.submit(T.put_and_die, q, 3).result(timeout=30)
        assert [q.get(timeout=5) for _ in range(3)] == [0, 1, 2]
        t0 = time.monotonic()
        with pytest.raises(crew.BrokenQueueError):
            q.get(timeout=10)
        assert time.monotonic() - t0 < 2


def test_pipe_eof_when_peer_closes():
    x, y = crew.Pipe()
    y.close()
    with pytest.raises(EOFError):
        x.recv()
    assert x.poll(0.5)


def _fds():
    return len(os.listdir("/proc/self/fd"))


def test_create_free_cycles_leave_nothing():
    crew.shared.flush_sent()
    gc.collect()
    shm0, fds0 = _crew_shm(), _fds()
    for i in range(1000):
        objs = [crew.Queue(), crew.SharedDict(), crew.SharedArray(100, "f4"), crew.Lock(),
                crew.RLock(), crew.Semaphore(), crew.Event(), crew.Condition(), crew.Barrier(2),
                *crew.Pipe()]
        objs[0].put(b"x")
        objs[1]["k"] = i
        if i % 2:
            for o in objs:
                if hasattr(o, "close"):
                    o.close()
        del objs
    gc.collect()
    assert _crew_shm() == shm0
    assert _fds() <= fds0 + 2


def test_multiprocessing_spawn_workers():
    q, d = crew.Queue(), crew.SharedDict()
    a = crew.SharedArray(4, "i8")
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply(T.use_all, (q, d, a, crew.Event(), crew.Semaphore(1), crew.Lock(),
                                      crew.RLock())) == 4
    assert q.get(timeout=5)[0] == "pid" and (a == 1).all()


def test_lock_mutual_exclusion(method):
    lock, d = crew.Lock(), crew.SharedDict()
    with crew.Executor(2, start_method=method) as ex:
        fs = [ex.submit(T.locked_increment, lock, d, 300) for _ in range(4)]
        assert sum(f.result(timeout=60) for f in fs) == 1200
    assert d["c"] == 1200


def test_import_crew_leaves_numpy_for_shared_array():
    # every process worker imports crew: numpy was most of that time
    import subprocess
    import sys
    code = ("import sys, pickle, crew\n"
            "assert 'numpy' not in sys.modules\n"
            "a = crew.SharedArray(2, 'i8')\n"
            "assert 'numpy' in sys.modules and type(a) is crew.SharedArray\n"
            "assert crew.shared.SharedArray is crew.SharedArray\n"
            "assert pickle.loads(pickle.dumps(crew.SharedArray)) is crew.SharedArray\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
