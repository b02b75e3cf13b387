import pytest

import crew
import helpers as h


@pytest.fixture(params=["processes", "threads"])
def pool(request):
    with crew.Pool(2, kind=request.param) as p:
        yield p


def test_apply(pool):
    assert pool.apply(h.add, (1, 2)) == 3
    assert pool.apply(h.add, (1,), {"b": 5}) == 6


def test_apply_async_callbacks(pool):
    got, errs = [], []
    r = pool.apply_async(h.square, (4,), callback=got.append)
    assert r.get(timeout=60) == 16 and r.ready() and r.successful()
    e = pool.apply_async(h.boom, ("x",), error_callback=errs.append)
    e.wait(60)
    with pytest.raises(ValueError):
        e.get()
    assert not e.successful()
    assert got == [16] and isinstance(errs[0], ValueError)


def test_maps(pool):
    assert pool.map(h.square, range(50)) == [x * x for x in range(50)]
    assert pool.map(h.square, range(50), chunksize=7) == [x * x for x in range(50)]
    assert pool.starmap(h.add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.map_async(h.square, [1, 2]).get(60) == [1, 4]
    assert pool.starmap_async(h.add, [(1, 1)]).get(60) == [2]
    assert list(pool.imap(h.square, range(10))) == [x * x for x in range(10)]
    assert sorted(pool.imap_unordered(h.square, range(10), chunksize=3)) == sorted(
        x * x for x in range(10))
    assert pool.map(h.square, []) == []


def test_map_error(pool):
    with pytest.raises(ValueError):
        pool.map(h.boom, ["a", "b"])


def test_close_join_terminate():
    p = crew.Pool(2, initializer=h.init_state, initargs=(7,), maxtasksperchild=3)
    assert [p.apply(h.get_state) for _ in range(4)] == [7] * 4
    r = p.apply_async(h.square, (3,))
    p.close()
    with pytest.raises(ValueError):
        p.apply(h.square, (1,))
    p.join()
    assert r.get(1) == 9
    q = crew.Pool(1)
    q.apply_async(h.sleep, (30,))
    q.terminate()
    q.join()


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_terminate_with_a_long_queue_settles_every_queued_result(kind):
    """terminate() leaves the cancelled queue's results to a background
    thread (a million queued items took seconds to settle one by one before
    it could return): every one of them still ends, cancelled, and a waiter
    on one is not left hanging."""
    import concurrent.futures as cf
    import threading
    p = crew.Pool(1, kind=kind)
    gate = threading.Event() if kind == "threads" else None
    busy = p.apply_async(gate.wait if gate else h.sleep, (30,))
    queued = [p.apply_async(h.square, (i,)) for i in range(20000)]
    mapped = p.map_async(h.square, range(5000), chunksize=1)
    futs = [p._ex.submit(h.square, i) for i in range(3000)]
    p.terminate()
    if gate:
        gate.set()
    assert futs[100].cancel() and futs[100].cancelled()   # cancelled: True at once
    with pytest.raises(cf.CancelledError):
        futs[-1].result(timeout=60)     # a waiter settles what is left itself
    for r in queued + [mapped]:
        r.wait(60)
        assert r.ready() and not r.successful()
        with pytest.raises(cf.CancelledError):
            r.get(0)
    assert all(f.cancelled() for f in futs)
    busy.wait(60)
    assert busy.ready()
    p.join()


def test_crash_does_not_hang_pool():
    with crew.Pool(2) as p:
        with pytest.raises(crew.WorkerCrashedError):
            p.apply(h.exit_with, (1,))
        assert p.map(h.square, range(5)) == [0, 1, 4, 9, 16]


def test_drop_in_exceptions_of_multiprocessing_pool():
    """Code written for multiprocessing.Pool catches what it always caught: a
    get(timeout) that runs out raises multiprocessing.TimeoutError, and a
    task's exception has a multiprocessing.pool.RemoteTraceback as its cause."""
    import multiprocessing
    import multiprocessing.pool
    import pickle
    from helpers import boom, sleep
    with crew.Pool(1) as pool:
        slow = pool.apply_async(sleep, (0.5,))
        with pytest.raises(multiprocessing.TimeoutError):
            slow.get(timeout=0.01)
        with pytest.raises(TimeoutError):          # and still the builtin one
            slow.get(timeout=0.01)
        with pytest.raises(ValueError) as ei:
            pool.apply(boom, ("bad",))
    cause = ei.value.__cause__
    assert isinstance(cause, multiprocessing.pool.RemoteTraceback)
    assert isinstance(cause, crew.RemoteTraceback)
    assert "boom" in str(cause)                    # the worker's traceback
    assert str(pickle.loads(pickle.dumps(cause))) == str(cause)
