"""concurrent.futures behaviours that CPython's own tests check
(tests/cpython/run_cf_tests.py runs those), each pinned down here."""
import gc
import weakref

import pytest

import helpers as h


@pytest.mark.parametrize("chunksize", [1, 4, None])
def test_map_iterator_keeps_no_yielded_result(ex, chunksize):
    # CPython's test_free_reference (bpo-14406)
    for obj in ex.map(h.make_obj, range(10), chunksize=chunksize):
        wr = weakref.ref(obj)
        del obj
        gc.collect()
        assert wr() is None


@pytest.mark.parametrize("bad", [0, -1])
def test_map_chunksize_below_one_raises(ex, bad):
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(h.square, range(5), chunksize=bad)
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(h.add, range(5), range(5), chunksize=bad)


def test_map_timeout_cancels_the_chunk_it_gave_up_on(kind_method):
    import crew
    kind, m = kind_method
    with crew.Executor(1, kind=kind, start_method=m) as ex:
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
