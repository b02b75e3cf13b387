"""kind="auto": each workload is placed where it runs best, says why, moves when it changes, can be pinned."""
import concurrent.futures as cf
import os
import re
import threading
import time

import pytest

import auto_tasks as t
import crew
import helpers as h
from crew import _auto

N = t.calibrate(0.02)    # a spin() of about 20 ms on this machine


def place(ex, fn):
    """The placement row of fn."""
    name = _auto.function_key(fn)[1]
    rows = [d for d in ex.placement() if d["function"] == name]
    assert rows, ex.placement()
    return rows[0]


def run_all(ex, fn, argsets):
    fs = [ex.submit(fn, *a) for a in argsets]
    return [f.result(timeout=120) for f in fs]


@pytest.fixture
def aex():
    with crew.Executor(2, kind="auto") as e:
        yield e


def test_auto_is_an_executor(aex):
    assert isinstance(aex, crew.Executor) and isinstance(aex, cf.Executor)
    assert aex.kind == "auto" and aex.max_workers == 2 and aex.max_threads >= 32
    with pytest.raises(ValueError, match="auto"):
        crew.Executor(1, kind="bogus")


def test_cpu_bound_pure_python_goes_to_processes(aex):
    pids = run_all(aex, t.spin_pid, [(N,)] * 24)
    d = place(aex, t.spin_pid)
    assert d["kind"] == "processes", d
    assert "GIL" in d["reason"] and "faster on processes" in d["reason"]
    assert d["runs"] == 24 and d["runs_processes"] >= 10
    assert set(pids) - {os.getpid()}          # later calls ran in worker processes
    assert d["process_parallelism"] is not None and d["round_trip_ms"] > 0


def test_gil_releasing_work_stays_on_threads(aex):
    data = b"x" * (4 << 20)
    out = run_all(aex, t.digest, [(data, 3)] * 16)
    assert len(set(out)) == 1
    d = place(aex, t.digest)
    assert d["kind"] == "threads", d
    assert d["runs_threads"] >= 12    # processes ran only the second trial phase's calls


def test_waiting_work_stays_on_threads(aex):
    pids = run_all(aex, t.nap, [(0.02,)] * 24)
    d = place(aex, t.nap)
    assert d["kind"] == "threads" and d["reason"].startswith("waits"), d
    assert set(pids) == {os.getpid()} and d["runs_processes"] == 0


def test_tiny_tasks_stay_on_threads(aex):
    assert run_all(aex, t.tiny, [(i,) for i in range(200)]) == list(range(1, 201))
    d = place(aex, t.tiny)
    assert d["kind"] == "threads" and "too small" in d["reason"], d
    assert list(aex.map(t.tiny, range(5000))) == list(range(1, 5001))


def test_unpicklable_argument_keeps_it_on_threads(aex):
    lock = threading.Lock()
    run_all(aex, t.with_lock, [(lock, N)] * 12)
    d = place(aex, t.with_lock)
    assert d["kind"] == "threads" and "cannot be pickled" in d["reason"], d
    assert "lock" in d["reason"]


def test_unpicklable_result_keeps_it_on_threads(aex):
    locks = run_all(aex, t.make_lock, [(N,)] * 12)
    assert all(hasattr(x, "acquire") for x in locks)   # every caller got its lock
    d = place(aex, t.make_lock)
    assert d["kind"] == "threads" and "cannot be pickled" in d["reason"], d


def test_a_function_that_changes_behaviour_moves(aex):
    run_all(aex, t.shape, [("cpu", N)] * 24)
    assert place(aex, t.shape)["kind"] == "processes"
    run_all(aex, t.shape, [("io", 0.005)] * 80)        # now it waits: back to threads
    d = place(aex, t.shape)
    assert d["kind"] == "threads" and "now waits" in d["reason"], d
    run_all(aex, t.shape, [("cpu", N)] * 100)          # CPU-bound again: measured again ...
    run_all(aex, t.shape, [("cpu", N)] * 24)           # ... and on processes
    d = place(aex, t.shape)
    assert d["kind"] == "processes" and d["moves"] >= 2, d


def test_pinning(aex):
    assert aex.options(kind="processes").submit(h.pid).result(timeout=60) != os.getpid()
    assert aex.options(kind="threads").submit(os.getpid).result(timeout=60) == os.getpid()
    d = place(aex, h.pid)
    assert d["kind"] == "processes" and d["runs"] == 1

    @crew.pin("threads")
    def pinned(n):
        t.spin(n)
        return os.getpid()
    assert set(run_all(aex, pinned, [(N,)] * 8)) == {os.getpid()}
    d = place(aex, pinned)
    assert d["kind"] == "threads" and d["pinned"] and "pinned" in d["reason"]
    aex.pin(t.nap, "processes")
    assert set(run_all(aex, t.nap, [(0.001,)] * 4)) - {os.getpid()}
    assert place(aex, t.nap)["kind"] == "processes"
    assert list(aex.options(kind="processes").map(h.square, range(6))) == [0, 1, 4, 9, 16, 25]
    with pytest.raises(ValueError, match="threads"):
        crew.pin("gpu")
    with pytest.raises(ValueError, match="kind"):
        aex.options(kind="gpu")
    with crew.Executor(1, kind="threads") as fixed:
        with pytest.raises(ValueError, match="auto"):
            fixed.options(kind="processes").submit(h.square, 2)
        assert fixed.options(kind="threads").submit(h.square, 2).result() == 4


def test_gil_detection_follows_sys_is_gil_enabled(monkeypatch):
    # no free-threaded interpreter here: the detection is checked against
    # what sys._is_gil_enabled() says (absent before 3.13: a GIL)
    import sys
    monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)
    assert _auto.gil_enabled() is True
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert _auto.gil_enabled() is True
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert _auto.gil_enabled() is False


def test_gil_disabled_after_the_pool_started_is_seen(monkeypatch):
    # asked when a function is first placed, not once at construction
    import sys
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    with crew.Executor(2, kind="auto") as ex:
        monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
        assert set(run_all(ex, t.spin_pid, [(N // 4,)] * 12)) == {os.getpid()}
        d = place(ex, t.spin_pid)
        assert d["kind"] == "threads" and "sys._is_gil_enabled() is False" in d["reason"]


def test_no_gil_interpreter_keeps_everything_on_threads(monkeypatch):
    import sys
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    with crew.Executor(2, kind="auto") as ex:
        assert ex._procs is None           # no process pool is even started
        assert set(run_all(ex, t.spin_pid, [(N // 4,)] * 12)) == {os.getpid()}
        d = place(ex, t.spin_pid)
        assert d["kind"] == "threads" and "sys._is_gil_enabled()" in d["reason"]
        assert ex.options(kind="processes").submit(h.pid).result(timeout=60) != os.getpid()


def test_placement_table_and_stats(aex):
    run_all(aex, t.nap, [(0.001,)] * 10)
    p = aex.placement()
    assert isinstance(p, list) and isinstance(p, crew.Placement)
    text = str(p)
    assert text.splitlines()[0].split()[:3] == ["function", "runs", "kind"]
    assert "auto_tasks.nap" in text
    for k in ("function", "runs", "kind", "reason", "mean_ms", "cpu_per_wall",
              "thread_parallelism", "bytes_per_call", "round_trip_ms"):
        assert k in p[0]
    st = aex.stats()
    assert st["kind"] == "auto" and st["placement"][0]["function"].endswith("nap")
    kinds = {w["kind"] for w in st["workers"]}
    assert kinds == {"thread", "process"}
    # a thread task's result reaches its caller a moment before the pool's
    # collector counts its answer (stats' docstring): the count catches up
    deadline = time.monotonic() + 10
    while st["done"] < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
        st = aex.stats()
    assert st["done"] >= 10


def test_callbacks_run_in_the_parent(aex):
    seen = []
    done = threading.Event()

    def cb(f):
        seen.append((os.getpid(), threading.current_thread().name, f.result() != os.getpid()))
        if len(seen) == 12:
            done.set()
    for _ in range(12):
        aex.submit(t.spin_pid, N).add_done_callback(cb)
    assert done.wait(120)
    assert all(pid == os.getpid() for pid, _, _ in seen)
    assert any(remote for _, _, remote in seen)       # some ran on process workers


def test_thread_task_submits_follow_up_work_without_deadlock():
    # one thread worker: the follow-ups would queue behind the task waiting for them
    with crew.Executor(1, kind="auto", max_threads=1) as ex:
        def fan_out(n):
            return sum(f.result(timeout=60) for f in [ex.submit(h.square, i) for i in range(n)])
        ex.pin(fan_out, "threads")
        ex.pin(h.square, "threads")
        assert ex.submit(fan_out, 10).result(timeout=60) == sum(i * i for i in range(10))
        ex.pin(h.square, None)       # unpinned: on trial, from a thread task
        assert ex.submit(fan_out, 30).result(timeout=60) == sum(i * i for i in range(30))


def test_mixed_batch_in_one_pool(aex):
    data = b"y" * (1 << 20)
    fs = {"cpu": [aex.submit(t.spin_pid, N) for _ in range(16)],
          "io": [aex.submit(t.nap, 0.01) for _ in range(32)],
          "hash": [aex.submit(t.digest, data, 2) for _ in range(8)],
          "tiny": [aex.submit(t.tiny, i) for i in range(100)]}
    assert [f.result(timeout=120) for f in fs["tiny"]] == list(range(1, 101))
    for f in fs["cpu"] + fs["io"] + fs["hash"]:
        f.result(timeout=120)
    kinds = {d["function"].split(".")[-1]: d["kind"] for d in aex.placement()}
    assert kinds["nap"] == "threads" and kinds["tiny"] == "threads"
    assert kinds["spin_pid"] in ("processes", "threads")


# ---------------------------------------- the executor's behaviours, under auto --

def test_submit_map_and_order_across_kinds(aex):
    assert aex.submit(h.square, 7).result(timeout=60) == 49
    assert list(aex.map(h.square, range(100))) == [x * x for x in range(100)]
    assert list(aex.map(h.add, range(5), range(5), chunksize=2)) == [0, 2, 4, 6, 8]
    assert aex.submit(h.add, 1, b=2).result() == 3
    got = list(aex.map(t.spin, [N // 10] * 12, buffersize=3))
    assert got == [t.spin(N // 10)] * 12


def test_exceptions_carry_the_worker_traceback_on_both_kinds(aex):
    for kind in ("threads", "processes"):
        with pytest.raises(ValueError, match="bad thing") as ei:
            aex.options(kind=kind).submit(h.boom, "bad thing").result(timeout=60)
        assert isinstance(ei.value.__cause__, crew.RemoteTraceback)
        assert "boom" in str(ei.value.__cause__)
    with pytest.raises(ValueError):
        list(aex.map(h.boom, ["x"]))
    it = aex.map(h.fail_at_3, range(8), chunksize=8)
    assert [next(it) for _ in range(3)] == [0, 10, 20]
    with pytest.raises(ValueError, match="item 3 is bad"):
        next(it)


def test_lambdas_closures_and_unpicklable_pinned_call(aex):
    k = 10
    assert aex.submit(lambda x: x + k, 5).result(timeout=60) == 15
    assert aex.options(kind="processes").submit(lambda x: x * k, 5).result(timeout=60) == 50
    with pytest.raises(crew.SerializationError) as ei:
        aex.options(kind="processes").submit(h.square, threading.Lock())
    assert "argument 0" in str(ei.value) and "Fix" in str(ei.value)


def test_crash_and_timeout_on_processes(aex):
    with pytest.raises(crew.WorkerCrashedError, match="status 3"):
        aex.options(kind="processes").submit(h.exit_with, 3).result(timeout=60)
    with pytest.raises(crew.TaskTimeoutError):
        aex.options(timeout=0.3, kind="processes").submit(h.sleep, 30).result(timeout=60)
    with pytest.raises(crew.TaskTimeoutError):
        aex.options(timeout=0.2).submit(h.sleep, 1).result(timeout=60)
    assert aex.submit(h.square, 5).result(timeout=60) == 25
    st = aex.stats()
    assert st["crashed"] >= 1 and st["timed_out"] >= 2


def test_as_completed_wait_asyncio(aex):
    import asyncio
    fs = [aex.submit(h.square, i) for i in range(20)]
    assert sorted(f.result() for f in cf.as_completed(fs, timeout=60)) == [i * i for i in range(20)]
    done, not_done = cf.wait(fs, timeout=60)
    assert len(done) == 20 and not not_done

    async def main():
        loop = asyncio.get_running_loop()
        return (await asyncio.wrap_future(aex.submit(h.square, 3)),
                await loop.run_in_executor(aex, h.square, 4))
    assert asyncio.run(main()) == (9, 16)


def test_cancel_waiting_calls(aex):
    ev = threading.Event()
    first = [aex.submit(ev.wait, 30) for _ in range(2)]   # the trial's two slots
    later = [aex.submit(ev.wait, 30) for _ in range(3)]   # these wait in the backlog
    assert later[-1].cancel() and later[-1].cancelled()
    ev.set()
    assert all(f.result(timeout=60) for f in first + later[:-1])


def test_initializer_runs_in_both_kinds_of_worker():
    with crew.Executor(2, kind="auto", initializer=h.init_state, initargs=(42,)) as e:
        assert e.options(kind="threads").submit(h.get_state).result(timeout=60) == 42
        assert e.options(kind="processes").submit(h.get_state).result(timeout=60) == 42


def test_failing_initializer_breaks_it():
    with crew.Executor(1, kind="auto", initializer=h.boom, initargs=("init failed",)) as e:
        with pytest.raises(crew.InitializerError, match="init failed"):
            e.submit(h.square, 2).result(timeout=60)
        with pytest.raises(crew.InitializerError):
            for _ in range(50):
                e.submit(h.square, 2)
                time.sleep(0.01)


def test_shutdown_cancel_futures_and_terminate():
    ex = crew.Executor(1, kind="auto")
    ev = threading.Event()
    fs = [ex.submit(ev.wait, 30) for _ in range(5)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert any(f.cancelled() for f in fs)
    ev.set()
    with pytest.raises(RuntimeError, match="shutdown"):
        ex.submit(h.square, 1)
    ex2 = crew.Executor(1, kind="auto")
    f = ex2.options(kind="processes").submit(h.sleep, 30)
    time.sleep(0.3)
    ex2.terminate()
    with pytest.raises((crew.WorkerCrashedError, cf.CancelledError)):
        f.result(timeout=60)


def test_pool_kind_auto():
    with crew.Pool(2, kind="auto") as p:
        assert p.map(h.square, range(10)) == [x * x for x in range(10)]
        assert p.apply(h.add, (1, 2)) == 3
        got = []
        r = p.apply_async(h.square, (6,), callback=got.append)
        assert r.get(timeout=60) == 36 and got == [36]
        assert list(p.imap(h.square, range(7), chunksize=2)) == [x * x for x in range(7)]
        assert sorted(p.imap_unordered(h.square, range(7))) == [x * x for x in range(7)]
        assert p.starmap(h.add, [(1, 2), (3, 4)]) == [3, 7]
        assert "placement" in p.stats()


def _outcomes(ex, fn, items, chunksize):
    """What map yields, item by item, until it raises: (values, (type, message) or None)."""
    got, it = [], ex.map(fn, items, chunksize=chunksize)
    try:
        for v in it:
            got.append(v)
    except Exception as e:
        return got, (type(e), re.sub(r" at 0x[0-9a-f]+", "", str(e)))
    return got, None


@pytest.mark.parametrize("fn", [h.unpicklable_at_2, h.unpicklable_error_at_1])
@pytest.mark.parametrize("chunksize", [1, 5])
def test_map_on_processes_fails_only_the_unpicklable_item(fn, chunksize):
    # a chunk whose one result (or exception) cannot be pickled fails that
    # item only, exactly as kind="processes" does (it failed the whole chunk)
    with crew.Executor(2) as fixed, crew.Executor(2, kind="auto") as auto:
        want = _outcomes(fixed, fn, range(5), chunksize)
        assert want[0] and want[1] is not None
        assert _outcomes(auto.options(kind="processes"), fn, range(5), chunksize) == want
        auto.pin(fn, "processes")
        assert _outcomes(auto, fn, range(5), chunksize) == want
        f = auto.submit(fn, 2 if fn is h.unpicklable_at_2 else 1)
        g = fixed.submit(fn, 2 if fn is h.unpicklable_at_2 else 1)
        assert type(f.exception(60)) is type(g.exception(60))


@pytest.mark.parametrize("how", ["wait", "as_completed", "first_completed", "result"])
def test_thread_tasks_wait_for_follow_up_work_with_concurrent_futures(how):
    # every thread worker taken by tasks that wait for their follow-ups with
    # cf.wait / as_completed (which cannot run them in the waiting thread as
    # result() does); more tasks queued behind them. It deadlocked: the
    # follow-ups were held, or queued behind the waiting tasks
    seen = []
    with crew.Executor(2, kind="auto", max_threads=2) as ex:
        def fan(n, fn, arg):
            fs = [ex.submit(fn, arg) for _ in range(n)]
            for f in fs:
                f.add_done_callback(lambda f: seen.append(os.getpid()))
            if how == "wait":
                assert not cf.wait(fs, timeout=60)[1]
            elif how == "as_completed":
                assert len(list(cf.as_completed(fs, timeout=60))) == n
            elif how == "first_completed":
                cf.wait(fs, timeout=60, return_when=cf.FIRST_COMPLETED)
                assert not cf.wait(fs, timeout=60)[1]
            return [f.result(timeout=60) for f in fs]
        ex.pin(fan, "threads")
        outer = ([ex.submit(fan, 10, t.spin_pid, N // 20) for _ in range(3)] +
                 [ex.submit(fan, 10, t.nap, 0.005) for _ in range(3)])
        assert all(len(f.result(timeout=120)) == 10 for f in outer)
    assert len(seen) == 60 and set(seen) == {os.getpid()}   # callbacks ran in the parent


class _Callable:
    def __call__(self, x):
        return x + 1


@pytest.mark.parametrize("make", [lambda o: o, lambda o: o.__call__], ids=["instance", "method"])
def test_a_finished_call_keeps_nothing_of_it(aex, make):
    # neither the future (its inner future kept the call) nor the placement
    # table (it was keyed by a callable instance) may keep the callable alive
    import gc
    import weakref
    obj = _Callable()
    ref = weakref.ref(obj)
    f = aex.submit(make(obj), 1)
    assert f.result(timeout=60) == 2
    del obj
    gc.collect()
    assert ref() is None
    assert any(d["function"].endswith("_Callable") or d["function"].endswith("__call__")
               for d in aex.placement())


@pytest.mark.parametrize("chunked", [False, True], ids=["submit", "map"])
def test_a_result_that_cannot_cross_back_moves_the_function_to_threads(aex, chunked):
    # placed on processes (as measurement would, from picklable results),
    # then a result that cannot be pickled: that call (item) fails, and the
    # calls after it run on threads, where nothing is pickled
    rec = aex._rec(h.unpicklable_at_2)
    with aex._lock:
        aex._decide(rec, "processes", "placed by the test", [])
    if chunked:
        with pytest.raises(crew.CrewError, match="unpicklable"):
            list(aex.map(h.unpicklable_at_2, range(4), chunksize=4))
    else:
        with pytest.raises(crew.SerializationError, match="cannot send the task's result"):
            aex.submit(h.unpicklable_at_2, 2).result(timeout=60)
    d = place(aex, h.unpicklable_at_2)
    assert d["kind"] == "threads" and "cannot be pickled" in d["reason"], d
    assert aex.submit(h.unpicklable_at_2, 2).result(timeout=60) is not None   # a lock, on a thread


def test_pickling_cost_is_not_charged_with_waits_for_the_gil():
    # the pickle check of a trial runs on a thread worker while other trial
    # calls hold the GIL: timed on the wall clock, a GIL switch in the middle
    # read as 5 ms of pickling, and a 20 ms pure-Python call stayed on threads
    # as "too small for a process hop" (seen in CI)
    from crew import _runtime as rt
    stop = threading.Event()

    def hog():
        while not stop.is_set():
            sum(range(1000))

    th = threading.Thread(target=hog)
    th.start()
    try:
        worst, end = 0.0, time.perf_counter() + 0.5
        while time.perf_counter() < end:
            err, nbytes, cost = _auto._pickle_check(t.spin_pid, (10,), {}, rt.F_CALL, (0, 1))
            assert err is None and nbytes > 0
            worst = max(worst, cost)
    finally:
        stop.set()
        th.join()
    assert worst < 2e-3, f"{worst * 1e3:.2f} ms to pickle a {nbytes}-byte call"
