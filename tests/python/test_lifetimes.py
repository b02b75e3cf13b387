"""Who keeps what alive: temporaries, timed-out thread tasks."""
import gc
import time

import pytest

import crew
from crew import _runtime as rt
import helpers as h


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_an_executor_nobody_holds_still_finishes_its_task(kind):
    # concurrent.futures allows this; the executor must not be collected mid-task
    assert crew.Executor(2, kind=kind).submit(h.square, 7).result(timeout=60) == 49
    f = crew.Executor(1, kind=kind).submit(h.sleep, 0.3)
    gc.collect()
    assert f.result(timeout=60) == 0.3


def test_timed_out_thread_tasks_leave_no_outcome_behind():
    before = len(rt._tokens)
    with crew.Executor(2, kind="threads") as ex:
        fs = [ex.options(timeout=0.05).submit(h.sleep, 0.3) for _ in range(4)]
        for f in fs:
            with pytest.raises(crew.TaskTimeoutError):
                f.result(timeout=30)
        time.sleep(0.5)   # the threads finish their sleeps after the timeouts
    assert len(rt._tokens) == before


def _thread_states():
    import ctypes
    api = ctypes.pythonapi
    api.PyInterpreterState_Head.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    n, t = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Head())
    while t:
        n, t = n + 1, api.PyThreadState_Next(t)
    return n


def test_crew_threads_leave_no_python_thread_state_behind():
    before = _thread_states()
    for _ in range(30):
        with crew.Executor(3, kind="threads", max_tasks_per_child=2) as ex:
            assert list(ex.map(h.square, range(12), chunksize=1)) == [x * x for x in range(12)]
    gc.collect()
    time.sleep(0.2)
    assert _thread_states() <= before + 2   # not one per thread that ever ran a task
