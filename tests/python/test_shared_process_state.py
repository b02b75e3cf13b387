"""What crosses by value and what by reference (docs/python.md).

A bound method whose object is a global of an importable module (os.environ,
a module's logger, lock, dict or instance, random's generator) acts on the
worker's own object of that name, under every start method, for an
initializer, a task or a callable inside the arguments: it never acts on a
pickled copy. Under fork the initializer is inherited, not pickled. Any other
object crosses by value: a method of a local object acts on the worker's
copy; one that cannot be pickled fails at submit (or at the constructor)
with crew.SerializationError, unless fork inherits it.
"""
import functools
import logging
import os
import random
import subprocess
import sys
import textwrap
import threading

import pytest

import crew
import state_tasks as st

pytestmark = pytest.mark.filterwarnings("ignore:crew. the fork start method:RuntimeWarning")

METHODS = ["fork", "spawn", "forkserver"]
K = "CREW_TEST_SHARED_STATE"
SEEDED = random.Random(1234).random()

# name -> (initializer, initargs, probe task, its args, what the probe sees)
CASES = {
    "environ": (os.environ.__setitem__, (K, "v"), st.env, (K,), "v"),
    "logger": (logging.getLogger(st.LOGGER_NAME).setLevel, (17,), st.logger_level, (), 17),
    "module_logger": (st.LOG.setLevel, (18,), st.logger_level, (), 18),
    "module_lock": (st.LOCK.acquire, (), st.lock_locked, (), True),
    "module_dict": (st.STATE.update, ({"a": 1},), st.state, (), {"a": 1}),
    "module_instance": (st.COUNTER.bump, (5,), st.counter, (), 5),
    "random_seed": (random.seed, (1234,), st.rand, (), SEEDED),
    "partial_of_method": (functools.partial(os.environ.__setitem__, K), ("p",), st.env, (K,), "p"),
}


def _parent_state():
    return (os.environ.get(K), logging.getLogger(st.LOGGER_NAME).level, st.LOCK.locked(),
            dict(st.STATE), st.COUNTER.n)


CLEAN = (None, logging.NOTSET, False, {}, 0)


def _reset_parent(rs):
    """Puts the parent's module state back as it was (random's state: rs)."""
    os.environ.pop(K, None)
    logging.getLogger(st.LOGGER_NAME).setLevel(logging.NOTSET)
    if st.LOCK.locked():
        st.LOCK.release()
    st.STATE.clear()
    st.COUNTER.n = 0
    random.setstate(rs)


@pytest.fixture
def clean_parent():
    """Asserts the parent's module state is as it was (process workers never
    touch it); restores it whatever happened."""
    assert _parent_state() == CLEAN
    rs = random.getstate()
    yield
    try:
        assert _parent_state() == CLEAN
        assert random.getstate() == rs
    finally:
        _reset_parent(rs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(CASES))
def test_executor_initializer_acts_on_the_workers_own_object(case, method, clean_parent):
    init, initargs, probe, args, want = CASES[case]
    with crew.Executor(1, start_method=method, initializer=init, initargs=initargs) as ex:
        assert ex.submit(probe, *args).result(timeout=60) == want


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["environ", "logger", "module_lock", "module_dict"])
def test_pool_initializer_acts_on_the_workers_own_object(case, method, clean_parent):
    init, initargs, probe, args, want = CASES[case]
    with crew.Pool(1, initializer=init, initargs=initargs, start_method=method) as p:
        assert p.apply(probe, args) == want


@pytest.mark.parametrize("case", list(CASES))
def test_thread_initializer_acts_on_the_one_process(case):
    init, initargs, probe, args, want = CASES[case]
    rs = random.getstate()
    try:
        with crew.Executor(1, kind="threads", initializer=init, initargs=initargs) as ex:
            assert ex.submit(probe, *args).result(timeout=60) == want
        if case != "random_seed":   # the thread drew from the generator since
            assert probe(*args) == want       # threads share the process: the parent sees it
    finally:
        _reset_parent(rs)


@pytest.mark.parametrize("method", METHODS)
def test_tasks_and_arguments_act_on_the_workers_own_objects(method, clean_parent):
    setter = st.STATE.__setitem__
    with crew.Executor(1, start_method=method) as ex:
        # the task itself
        assert ex.submit(st.LOCK.acquire).result(timeout=60) is True
        assert ex.submit(st.lock_locked).result(timeout=60) is True
        ex.submit(os.environ.__setitem__, K, "w").result(timeout=60)
        assert ex.submit(st.env, K).result(timeout=60) == "w"
        # a method inside the arguments, and in a closure (cloudpickle)
        ex.submit(st.call, st.STATE.update, {"b": 2}).result(timeout=60)
        ex.submit(lambda: setter("c", 3)).result(timeout=60)
        assert ex.submit(st.state).result(timeout=60) == {"b": 2, "c": 3}
        # map: every chunk bumps the one worker's own COUNTER
        assert list(ex.map(st.COUNTER.bump, [1, 1, 1], chunksize=1)) == [1, 2, 3]


@pytest.mark.parametrize("method", METHODS)
def test_pool_tasks_act_on_the_workers_own_objects(method, clean_parent):
    with crew.Pool(1, start_method=method) as p:
        assert p.map(st.COUNTER.bump, [1, 1, 1], chunksize=1) == [1, 2, 3]
        assert p.apply(st.LOCK.acquire) is True
        assert p.apply(st.lock_locked) is True


@pytest.mark.parametrize("method", METHODS)
def test_local_object_crosses_by_value(method, clean_parent):
    """The choice for an object that is no module global: it is data, and its
    method acts on the worker's copy (as multiprocessing sends it)."""
    c = st.Counter()
    c.n = 10
    with crew.Executor(1, start_method=method) as ex:
        assert [ex.submit(c.bump).result(timeout=60) for _ in range(2)] == [11, 11]
    with crew.Pool(1, start_method=method) as p:
        assert p.map(c.bump, [1, 1], chunksize=1) == [11, 11]
    assert c.n == 10


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_unpicklable_local_object_fails_clearly(method, clean_parent):
    """Neither a module global nor picklable: no worker can have it, so the
    constructor (initializer) or submit (task) fails, naming it and the fix."""
    h = st.LockHolder()
    with pytest.raises(crew.SerializationError) as ei:
        crew.Executor(1, start_method=method, initializer=h.install, initargs=(1,))
    msg = str(ei.value)
    assert "the initializer" in msg and "LockHolder" in msg and "lock" in msg
    assert "not a global of an importable module" in msg and "Fix" in msg
    assert "start_method='fork'" in msg
    with pytest.raises(crew.SerializationError, match="initializer"):
        crew.Pool(1, initializer=h.install, initargs=(1,), start_method=method)
    with crew.Executor(1, start_method=method) as ex:
        with pytest.raises(crew.SerializationError, match="the function .*LockHolder.*Fix"):
            ex.submit(h.install, 2)


def test_unpicklable_initializer_is_inherited_under_fork(clean_parent):
    """Under fork the initializer is not pickled: the worker runs it on what
    it inherited, as multiprocessing's fork does."""
    h = st.LockHolder()
    with crew.Executor(1, start_method="fork", initializer=h.install, initargs=(1,)) as ex:
        assert ex.submit(st.state).result(timeout=60) == {"installed": (1, True)}
    with crew.Pool(1, initializer=h.install, initargs=(2,), start_method="fork") as p:
        assert p.apply(st.state) == {"installed": (2, True)}
    assert not h.lock.locked()


@pytest.mark.parametrize("method", METHODS)
def test_global_bound_at_run_time(method, clean_parent):
    """A global the parent binds at run time is sent by name too: a fork
    worker inherits it; a spawn or forkserver worker's import has no such
    global, and the task (or the initializer) fails saying so, instead of
    acting on a copy."""
    st.RUNTIME_ONLY = obj = st.Counter()
    try:
        with crew.Executor(1, start_method=method) as ex:
            f = ex.submit(obj.bump)
            if method == "fork":
                assert f.result(timeout=60) == 1
            else:
                with pytest.raises(AttributeError, match="by reference.*no global 'RUNTIME_ONLY'"):
                    f.result(timeout=60)
        with crew.Executor(1, start_method=method, initializer=obj.bump) as ex:
            f = ex.submit(st.pid)
            if method == "fork":
                f.result(timeout=60)          # inherited: it ran on the worker's copy
            else:
                with pytest.raises(crew.InitializerError, match="no global 'RUNTIME_ONLY'"):
                    f.result(timeout=60)
        assert obj.n == 0
    finally:
        del st.RUNTIME_ONLY


MAIN_SCRIPT = """
import os, sys, warnings
sys.path.insert(0, {tests!r})
import crew

STATE = {{}}                       # bound by the script's top level: the worker's import binds it


class Box:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n += 1
        return self.n


def state():
    return dict(STATE)


def main():
    warnings.simplefilter("ignore", RuntimeWarning)
    for m in ("fork", "spawn", "forkserver"):
        with crew.Executor(1, start_method=m, initializer=STATE.update,
                           initargs=({{"k": m}},)) as ex:
            assert ex.submit(state).result(timeout=60) == {{"k": m}}, m
            ex.submit(STATE.__setitem__, "t", 1).result(timeout=60)
            assert ex.submit(state).result(timeout=60) == {{"k": m, "t": 1}}, m
            # bound under the main guard: no worker's import binds it, by value
            got = [ex.submit(GUARDED.bump).result(timeout=60) for _ in range(2)]
            assert got == [11, 11], (m, got)
    assert STATE == {{}} and GUARDED.n == 10
    print("ok")


if __name__ == "__main__":
    GUARDED = Box()
    GUARDED.n = 10
    main()
"""


def test_main_script_globals(tmp_path):
    """In the parent's __main__ script, a global its top level binds crosses
    by reference (a spawn or forkserver worker imports the script, binding it
    too); one bound under `if __name__ == "__main__":` crosses by value."""
    script = tmp_path / "main_state.py"
    script.write_text(MAIN_SCRIPT.format(tests=os.path.dirname(__file__)))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("ok")


def test_main_guard_names():
    """The names a worker's import of the main script binds."""
    import ast
    from crew import _runtime as rt
    src = textwrap.dedent("""
        import os, a.b as c
        from x import y, z as w
        A = B = 1
        C: int = 2
        (D, [E, *F]) = 3, [4, 5]
        def f(): global G; G = 1
        class H: I = 1
        for J in (): pass
        with open("f") as K: pass
        try:
            L = 1
        except Exception as M:
            N = 1
        if os:
            O = 1
        else:
            P = 1
        if __name__ == "__main__":
            Q = 1
            if True:
                R = 1
        else:
            S = 1
        if "__main__" == __name__:
            T = 1
        U = [V for V in ()]
        if (W2 := 1):
            pass
    """)
    out = set()
    rt._bound_names(ast.parse(src).body, out)
    assert out == {"os", "c", "y", "w", "A", "B", "C", "D", "E", "F", "f", "H", "J", "K",
                   "L", "M", "N", "O", "P", "S", "U", "W2"}
