"""terminate_workers() and kill_workers(): Python 3.14's ProcessPoolExecutor
methods, on every interpreter."""
import concurrent.futures as cf
import signal
import time

import pytest

import crew
import helpers as h


def _wait_gone(pids, within=10.0):
    end = time.monotonic() + within
    while any(h.alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.02)
    return [p for p in pids if h.alive(p)]


@pytest.mark.parametrize("how,sig", [("terminate_workers", signal.SIGTERM),
                                     ("kill_workers", signal.SIGKILL)])
def test_stop_workers(method, how, sig):
    ex = crew.Executor(2, start_method=method)
    pids = set()
    while len(pids) < 2:     # both workers up (tasks go to workers already up)
        pids |= {f.result(timeout=60) for f in [ex.submit(h.nap_pid, 0.2) for _ in range(2)]}
    running = [ex.submit(h.sleep, 30) for _ in range(2)]
    queued = [ex.submit(h.sleep, 30) for _ in range(3)]
    time.sleep(0.5)          # both sleeps under way
    t0 = time.monotonic()
    getattr(ex, how)()
    assert time.monotonic() - t0 < 1.0               # it does not wait
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(h.square, 2)
    for f in running:
        with pytest.raises(crew.WorkerCrashedError, match=f"signal {int(sig)}"):
            f.result(timeout=20)
    for f in queued:
        with pytest.raises(cf.CancelledError):
            f.result(timeout=20)
    ex.shutdown(wait=True)
    assert _wait_gone(pids | {w["pid"] for w in ex.stats()["workers"] if w["pid"]}) == []
    assert time.monotonic() - t0 < 10


def test_kill_after_terminate_stops_a_worker_that_ignores_sigterm():
    ex = crew.Executor(1, start_method="forkserver")
    f = ex.submit(h.ignore_sigterm_and_sleep, 30)
    time.sleep(1.0)          # the task runs, SIGTERM ignored
    ex.terminate_workers()
    time.sleep(0.5)
    assert not f.done()      # SIGTERM did nothing
    ex.kill_workers()
    with pytest.raises(crew.WorkerCrashedError, match="signal 9"):
        f.result(timeout=20)
    ex.shutdown(wait=True)


def test_idle_and_repeated_calls(method):
    ex = crew.Executor(2, start_method=method)
    assert ex.submit(h.square, 3).result(timeout=60) == 9
    ex.kill_workers()
    ex.kill_workers()          # again: nothing more to do
    ex.terminate_workers()
    ex.shutdown(wait=True)
    ex.terminate_workers()     # after shutdown too


@pytest.mark.parametrize("how", ["terminate_workers", "kill_workers"])
def test_thread_pools_raise(how):
    with crew.Executor(2, kind="threads") as ex:
        with pytest.raises(NotImplementedError, match="thread"):
            getattr(ex, how)()
        assert ex.submit(h.square, 4).result(timeout=60) == 16   # still serving
