"""concurrent.futures behaviours that CPython's own tests check
(tests/cpython/run_cf_tests.py runs those), each pinned down here."""
import gc
import weakref

import pytest

import helpers as h
from crew import _runtime as rt


@pytest.mark.parametrize("chunksize", [1, 4, None])
def test_map_iterator_keeps_no_yielded_result(ex, chunksize):
    # CPython's test_free_reference (bpo-14406)
    for obj in ex.map(h.make_obj, range(10), chunksize=chunksize):
        wr = weakref.ref(obj)
        del obj
        gc.collect()
        assert wr() is None


def test_a_chunk_is_drained_value_by_value():
    """A map chunk's values are handed over at C speed (_core.drain): each
    slot is let go of as it is yielded, the list is empty at the end (a
    chunk's result is read once), and an item that failed still raises where
    it stands."""
    from crew import _core, _runtime as rt

    class Obj:
        pass
    vals = [Obj(), Obj(), Obj()]
    refs = [weakref.ref(v) for v in vals]
    it = rt.take_values((vals, None))
    first = next(it)
    assert first is refs[0]() and vals[0] is None and vals[1] is refs[1]()
    del first
    gc.collect()
    assert refs[0]() is None
    assert list(it) == [refs[1](), refs[2]()] and vals == [] and list(it) == []
    with pytest.raises(TypeError):
        _core.drain((1, 2))
    err = rt._error_outcome(ValueError("item 1"))
    it = rt.take_values(([10, None, 30], {1: err}))
    assert next(it) == 10
    with pytest.raises(ValueError, match="item 1"):
        next(it)


def test_flatten_hands_chunks_over_and_ends_as_a_generator():
    """_core.flatten: a map's values at C speed, with a generator's ending:
    values of each list in turn, each slot let go of as it goes; the error
    the chunks raise comes out where it stands and iteration ends there;
    close() stops mid-list and closes the chunks (their finally runs)."""
    from crew import _core

    class Obj:
        pass
    closed = []

    def chunks(lists, err=None):
        try:
            yield from lists
            if err is not None:
                raise err
        finally:
            closed.append(True)
    a, b = [Obj(), Obj()], [Obj()]
    ref, rest = weakref.ref(a[0]), [a[1], b[0]]
    it = _core.flatten(chunks([a, [], b], ValueError("item 4")))
    first = next(it)
    assert first is ref() and a[0] is None
    del first
    gc.collect()
    assert ref() is None
    assert [next(it), next(it)] == rest and a == []   # a list read is emptied
    with pytest.raises(ValueError, match="item 4"):
        next(it)
    assert closed == [True] and list(it) == []
    closed.clear()
    c = [1, 2, 3]
    it = _core.flatten(chunks([c, [4]]))
    assert next(it) == 1
    it.close()
    assert closed == [True] and c == [] and list(it) == [] and it.close() is None
    it = _core.flatten(iter([[1], (2, 3)]))
    assert next(it) == 1
    with pytest.raises(TypeError, match="lists"):
        next(it)
    assert list(it) == []


def test_flatten_refuses_a_second_thread_while_its_chunks_run():
    """Two threads on one map iterator: while one waits in the chunks'
    generator (which lets go of the GIL), the other's next() or close()
    fails as a running generator's does, instead of entering it twice."""
    import threading
    from crew import _core
    started, go, out = threading.Event(), threading.Event(), []

    def chunks():
        started.set()
        go.wait(30)
        yield [1]
    it = _core.flatten(chunks())
    t = threading.Thread(target=lambda: out.append(next(it)))
    t.start()
    assert started.wait(30)
    with pytest.raises(ValueError, match="already executing"):
        next(it)
    with pytest.raises(ValueError, match="already executing"):
        it.close()
    go.set()
    t.join(30)
    assert out == [1] and list(it) == []


def test_flatten_close_lets_go_before_finalizers_run():
    """close() lets go of the chunks and the list being read before it drops
    the unread values: a value's finalizer that calls next() finds the
    iterator ended, instead of resuming the map after its close."""
    import crew
    from crew import _core
    seen = []

    class V:
        def __init__(self, i):
            self.i = i

        def __del__(self):
            if self.i == 1 and it is not None:
                try:
                    seen.append(next(it))
                except StopIteration:
                    seen.append("stop")
    it = None
    it = _core.flatten(iter([[V(0), V(1), V(2)], [V(3)], [V(4)]]))
    first = next(it)
    assert first.i == 0
    it.close()
    assert seen == ["stop"] and list(it) == []
    it = None
    with crew.Executor(2, kind="threads") as ex:
        it = ex.map(V, range(8), chunksize=4)
        first = next(it)
        it.close()
        assert seen[-1] == "stop" and list(it) == []
        it = None


def test_map_closed_or_dropped_before_its_first_value_cancels_its_tasks():
    """Even a map iterator never read from cancels its queued tasks when it
    is closed or dropped (a generator not yet started has no finally to run:
    the generator is primed before it is handed over)."""
    import time
    import crew
    for how in ("close", "drop"):
        with crew.Executor(1, kind="threads") as ex:
            busy = ex.submit(h.sleep, 0.3)
            it = ex.map(h.square, range(50), chunksize=1)
            if how == "close":
                it.close()
            del it
            gc.collect()
            assert ex.stats()["cancelled"] == 50, how
            busy.result(timeout=60)
    with crew.Pool(1) as pool:   # imap reads its input lazily: nothing was sent
        it = pool.imap(h.square, range(50))
        del it
        gc.collect()
        assert pool._ex.stats()["submitted"] == 0


def test_a_caught_map_error_keeps_no_result_alive():
    """The exception a map raises keeps no finished result of its later
    chunks alive through its traceback (no cycle to wait for the collector)."""
    import time
    import crew

    class Big:
        pass
    live = weakref.WeakSet()

    def make(x):
        if x == 1:
            time.sleep(0.2)
            raise ValueError(x)
        b = Big()
        live.add(b)
        return b
    gc.collect()
    gc.disable()
    try:
        with crew.Executor(4, kind="threads") as ex:
            it = ex.map(make, range(8), chunksize=2)
            time.sleep(0.5)   # every chunk has finished
            with pytest.raises(ValueError) as info:
                list(it)
            del it, info
            assert len(live) == 0
    finally:
        gc.enable()


def test_map_iterator_is_weakly_referenceable_and_its_type_public(ex):
    from crew import _core
    it = ex.map(h.square, range(3))
    assert type(it) is _core.Flatten and weakref.ref(it)() is it
    assert list(it) == [0, 1, 4]


def test_a_task_raising_stopiteration_fails_its_item_not_the_rest_of_its_chunk(ex):
    """map() would take a StopIteration from the function for its own end and
    drop the chunk's later items without a word; the item fails instead."""
    it = ex.map(h.stop_at_5, range(10), chunksize=4)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="StopIteration"):
        next(it)
    assert list(it) == []
    out = rt._run_chunk(h.stop_at_5, range(4, 8), star=False)[1]
    assert out[0] == [4, None, 6, 7] and list(out[1]) == [1]


def test_map_error_ends_the_iterator_and_cancels_what_is_queued(ex):
    """As concurrent.futures' generator: after a failed item the iterator is
    done (and the chunks not yet taken are cancelled at once, not when the
    iterator is dropped); values before it in its chunk come first."""
    it = ex.map(h.fail_at_3, list(range(8)) * 50, chunksize=8)
    assert [next(it) for _ in range(3)] == [0, 10, 20]
    with pytest.raises(ValueError, match="item 3 is bad"):
        next(it)
    assert list(it) == []


def test_map_iterator_close_stops_at_once(ex):
    it = ex.map(h.square, range(100), chunksize=50)
    assert next(it) == 0
    it.close()
    assert list(it) == []


@pytest.mark.parametrize("bad", [0, -1])
def test_map_chunksize_below_one_raises(ex, bad):
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(h.square, range(5), chunksize=bad)
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(h.add, range(5), range(5), chunksize=bad)


def test_map_timeout_cancels_the_chunk_it_gave_up_on(kind_method):
    import crew
    kind, m = kind_method
    # every worker busy (kind="auto": its one thread worker too)
    more = {"max_threads": 1} if kind == "auto" else {}
    with crew.Executor(1, kind=kind, start_method=m, **more) as ex:
        busy = ex.submit(h.sleep, 0.5)
        it = ex.map(h.square, [3], timeout=0.05)
        with pytest.raises(TimeoutError):
            next(it)
        busy.result(timeout=60)
    assert ex.stats()["cancelled"] == 1   # the chunk never ran


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_max_workers_raises_and_leaves_nothing_for_del(bad):
    # CPython's test_max_workers_negative; __del__ of the half-made executor
    # used to fail ("Exception ignored in: Executor.__del__")
    import sys
    import crew
    seen = []
    old, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            crew.Executor(max_workers=bad)
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert seen == []


def _drain(q):
    import queue
    out = []
    try:
        while True:
            out.append(q.get_nowait().getMessage())
    except queue.Empty:
        return out


def test_failing_initializer_breaks_the_executor(kind_method):
    # CPython's FailingInitializerMixin: the future fails with a
    # BrokenExecutor, the executor reports _broken, and submit() raises
    import concurrent.futures as cf
    import crew
    kind, m = kind_method
    q = crew.Queue()
    with crew.Executor(2, kind=kind, start_method=m, initializer=h.init_fail_logged,
                       initargs=(q,)) as ex:
        futs = []
        for i in range(20):   # the executor may break while these go in
            try:
                futs.append(ex.submit(h.square, i))
            except cf.BrokenExecutor:
                break
        for f in futs:   # run on a failed worker, or taken off the queue
            with pytest.raises(crew.InitializerError) as info:
                f.result(timeout=60)
            assert isinstance(info.value, cf.BrokenExecutor)
        assert ex._broken and "error in initializer" in ex._broken
        with pytest.raises(cf.BrokenExecutor, match="error in initializer"):
            ex.submit(h.square, 1)
    if kind == "threads":
        import logging
        logging.getLogger("concurrent.futures").handlers.clear()
        logging.getLogger("concurrent.futures").propagate = True
    logged = _drain(q)
    assert any("Exception in initializer" in s and "ValueError: error in initializer" in s
               for s in logged), logged


def test_failing_initializer_leaves_pool_serving():
    # crew.Pool keeps multiprocessing.Pool's way: nothing is "broken"
    import crew
    with crew.Pool(1, initializer=h.boom, initargs=("init failed",)) as p:
        for _ in range(2):
            r = p.apply_async(h.square, (3,))
            with pytest.raises(crew.InitializerError, match="init failed"):
                r.get(timeout=60)


def test_task_reaches_a_manager_of_the_parent(method):
    # CPython's test_ressources_gced_in_workers: a spawned or fork-server
    # worker has the parent's multiprocessing authkey, as multiprocessing's
    # own children do
    import multiprocessing
    import crew
    with multiprocessing.Manager() as mgr:
        ev = mgr.Event()
        with crew.Executor(1, start_method=method) as ex:
            assert ex.submit(h.set_event, ev).result(timeout=60) is True
        assert ev.is_set()


def test_tasks_do_not_wait_for_a_worker_still_starting(method, tmp_path):
    # CPython's test_first_completed under load: a task went to a worker still
    # starting (here: one whose initializer takes 3 s) while another was idle
    import time
    import crew
    with crew.Executor(2, start_method=method, initializer=h.init_slow_once,
                       initargs=(str(tmp_path / "slow"), 3.0)) as ex:
        t0 = time.monotonic()
        futs = [ex.submit(h.square, i) for i in range(4)]
        assert [f.result(timeout=60) for f in futs] == [0, 1, 4, 9]
        assert time.monotonic() - t0 < 2.0
