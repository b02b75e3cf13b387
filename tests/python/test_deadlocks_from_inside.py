"""test_deadlocks_from_inside.py — waits that start inside crew (a task, a done-callback) finish or raise; none hangs the program."""
import subprocess
import sys
import textwrap
import threading

import pytest

import crew


def sq(x):
    return x * x


def test_a_thread_task_calling_shutdown_wait_true_raises_instead_of_hanging():
    ex = crew.Executor(2, kind="threads")
    f = ex.submit(lambda: ex.shutdown(wait=True))
    with pytest.raises(RuntimeError, match="wait for itself"):
        f.result(timeout=60)
    with pytest.raises(RuntimeError):
        ex.submit(sq, 2)          # it was shut down all the same
    ex.shutdown(wait=True)        # from outside: returns


def test_the_program_exits_after_a_task_called_shutdown():
    script = textwrap.dedent("""
        import crew
        ex = crew.Executor(2, kind="threads")
        f = ex.submit(lambda: ex.shutdown(wait=True))
        print(type(f.exception(timeout=60)).__name__)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)   # before: interpreter exit waited forever
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "RuntimeError"


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_done_callback_may_wait_for_another_task_of_the_same_executor(kind):
    with crew.Executor(2, kind=kind) as ex:
        got, done = [], threading.Event()

        def cb(_):
            got.append(ex.submit(sq, 4).result(timeout=60))
            done.set()

        ex.submit(sq, 2).add_done_callback(cb)
        assert done.wait(120)
        assert got == [16]


def test_shutdown_wait_true_in_a_done_callback_returns():
    ex = crew.Executor(2, kind="processes")
    res, done = [], threading.Event()

    def cb(_):
        ex.shutdown(wait=True)
        res.append("ok")
        done.set()

    ex.submit(sq, 5).add_done_callback(cb)
    assert done.wait(120)
    assert res == ["ok"]
