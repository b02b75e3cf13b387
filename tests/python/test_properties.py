"""test_properties.py — property tests (hypothesis): argument and result shapes round-trip through process and thread pools; interleavings of submit, cancel, callbacks and shutdown never hang.

Example counts stay modest (make test runs this on every interpreter);
CREW_HYPOTHESIS_EXAMPLES raises them for a longer search.
"""
import concurrent.futures as cf
import os
import threading
import time

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import crew  # noqa: E402

EXAMPLES = int(os.environ.get("CREW_HYPOTHESIS_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


def echo(*args, **kwargs):
    return args, kwargs


def slow(x):
    time.sleep(0.02)
    return x


def boom(x):
    raise KeyError(x)


# --------------------------------------------------------- round trips --

_leaves = (st.none() | st.booleans() | st.integers() | st.integers(-2**200, 2**200)
           | st.floats(allow_nan=False) | st.text(max_size=30) | st.binary(max_size=40)
           | st.complex_numbers(allow_nan=False))
# payloads from tiny to several arena chunks (the 88-byte inline limit, 4 KiB chunks)
_big = st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 40_000)).map(
    lambda t: t[0] * t[1])
_hashable = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.binary(max_size=10)
values = st.recursive(
    _leaves | _big,
    lambda kids: (st.lists(kids, max_size=6) | st.tuples(kids, kids)
                  | st.dictionaries(st.text(max_size=8), kids, max_size=5)
                  | st.dictionaries(_hashable, kids, max_size=3)
                  | st.frozensets(_hashable, max_size=4) | st.sets(_hashable, max_size=4)),
    max_leaves=25)
kwnames = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@pytest.fixture(scope="module", params=["threads", "processes"])
def pool(request):
    with crew.Executor(2, kind=request.param) as ex:
        yield ex


@SETTINGS
@given(args=st.lists(values, max_size=4), kwargs=st.dictionaries(kwnames, values, max_size=3))
def test_shapes_round_trip(pool, args, kwargs):
    got = pool.submit(echo, *args, **kwargs).result(timeout=60)
    assert got == (tuple(args), kwargs)
    assert type(got[0]) is tuple


@SETTINGS
@given(items=st.lists(values, max_size=20), chunksize=st.integers(1, 7))
def test_map_round_trips_in_order(pool, items, chunksize):
    assert list(pool.map(slow if len(items) < 4 else echo, items, chunksize=chunksize,
                         timeout=60)) == \
        (items if len(items) < 4 else [((x,), {}) for x in items])


# -------------------------------------------------------- interleavings --

OPS = st.lists(st.sampled_from([
    "submit", "submit", "submit_slow", "submit_raise", "cancel", "cancel_all",
    "callback", "callback_submit", "callback_shutdown", "callback_wait", "result",
    "shutdown_nowait", "shutdown_cancel", "map",
]), min_size=1, max_size=25)


def _run_ops(kind, method, ops):
    """Plays ops against a fresh executor; returns what the checks need."""
    ex = crew.Executor(2, kind=kind, start_method=method)
    futs, calls, lock = [], {}, threading.Lock()

    def note(f):
        with lock:
            calls[id(f)] = calls.get(id(f), 0) + 1

    def cb_submit(f):
        note(f)
        try:
            ex.submit(slow, 1)
        except RuntimeError:
            pass  # after shutdown: the documented refusal

    def cb_shutdown(f):
        note(f)
        ex.shutdown(wait=False)

    def cb_wait(f):
        note(f)
        if futs:
            cf.wait([futs[0]], timeout=0.2)

    callbacks = {"callback": note, "callback_submit": cb_submit,
                 "callback_shutdown": cb_shutdown, "callback_wait": cb_wait}
    with_cb = set()
    for op in ops:
        try:
            if op.startswith("submit"):
                fn = {"submit": echo, "submit_slow": slow, "submit_raise": boom}[op]
                futs.append(ex.submit(fn, len(futs)))
            elif op == "map":
                list(ex.map(echo, range(5), timeout=30))
            elif op == "cancel" and futs:
                f = futs[len(futs) // 2]
                if f.cancel():
                    assert f.cancelled()
            elif op == "cancel_all":
                for f in futs:
                    f.cancel()
            elif op in callbacks and futs:
                f = futs[-1]
                if id(f) not in with_cb:
                    with_cb.add(id(f))
                    f.add_done_callback(callbacks[op])
            elif op == "result" and futs:
                try:
                    futs[0].result(timeout=30)
                except (KeyError, cf.CancelledError):
                    pass
            elif op == "shutdown_nowait":
                ex.shutdown(wait=False)
            elif op == "shutdown_cancel":
                ex.shutdown(wait=False, cancel_futures=True)
        except RuntimeError as e:  # submit or map after shutdown
            assert "shutdown" in str(e)
    ex.shutdown(wait=True)
    return futs, calls, with_cb


@pytest.mark.filterwarnings("ignore:crew. the fork start method:RuntimeWarning")
@pytest.mark.parametrize("kind,method", [("threads", None), ("processes", "fork"),
                                         ("processes", "forkserver")])
def test_interleavings_never_hang(kind, method):
    @settings(max_examples=max(EXAMPLES // 2, 5), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(ops=OPS)
    def check(ops):
        box = {}

        def play():
            try:
                box["out"] = _run_ops(kind, method, ops)
            except BaseException as e:  # reported below, on the test's thread
                box["err"] = e

        t = threading.Thread(target=play, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), f"hung: {ops}"
        if "err" in box:
            raise box["err"]
        futs, calls, with_cb = box["out"]
        assert all(f.done() for f in futs), f"undone futures after shutdown(wait=True): {ops}"
        deadline = time.monotonic() + 10  # a callback may still be on its way
        while time.monotonic() < deadline and any(calls.get(i) != 1 for i in with_cb):
            time.sleep(0.01)
        assert all(calls.get(i) == 1 for i in with_cb), f"a callback not run once: {ops}"

    check()
