"""Map chunks: each item's outcome stands where the item stood, whatever fails."""
import pytest

import crew
import helpers as h
from crew import _core, _runtime as rt


def test_failing_item_mid_chunk_raises_there(ex):
    it = ex.map(h.fail_at_3, range(8), chunksize=8)   # one chunk holds them all
    assert [next(it) for _ in range(3)] == [0, 10, 20]
    with pytest.raises(ValueError, match="item 3 is bad") as info:
        next(it)
    assert "fail_at_3" in str(info.value.__cause__)   # the worker's traceback


def test_star_map_over_several_iterables(ex):
    assert list(ex.map(h.add, range(6), range(6), chunksize=4)) == [0, 2, 4, 6, 8, 10]


def test_pool_map_error_and_values():
    with crew.Pool(2) as p:
        assert p.map(h.fail_at_3, [0, 1, 2], chunksize=2) == [0, 10, 20]
        with pytest.raises(ValueError, match="item 3 is bad"):
            p.map(h.fail_at_3, range(6), chunksize=3)
        assert sorted(p.imap_unordered(h.square, range(7), chunksize=3)) == [
            x * x for x in range(7)]
        assert p.starmap(h.add, [(1, 2), (3, 4)], chunksize=1) == [3, 7]


def test_unpicklable_item_result_fails_only_that_item():
    with crew.Executor(2) as ex:
        it = ex.map(h.unpicklable_at_2, range(5), chunksize=5)
        assert [next(it), next(it)] == [0, 1]
        with pytest.raises(crew.CrewError, match="unpicklable"):
            next(it)


# ------------------------------------------------ one chunk plan, C's --
# Every crew map, C's crew_map and each Python map alike, takes its items per
# chunk from one function: crew_map_chunksize in src/pool/map.c, reached from
# Python as _core.map_chunksize. The figures below are the ones
# tests/c/pool_cases.h (map_chunks_follow_the_one_plan) pins for crew_map.

def test_python_plans_chunks_with_crew_map_chunksize():
    assert _core.map_chunksize(1000, 2, None) == 125    # about 4 chunks per worker
    assert _core.map_chunksize(1001, 2, None) == 126    # rounded up
    assert _core.map_chunksize(5, 4, None) == 1         # never 0
    assert _core.map_chunksize(0, 4, None) == 1         # unknown length: 1
    assert _core.map_chunksize(10, 0, None) == 3        # no workers counts as 1
    assert _core.map_chunksize(1000, 2, 7) == 7         # an explicit size stands
    assert _core.map_chunksize(10, 2, 2 ** 80) == 2 ** 63 - 1   # clipped, not an error


def _recorded(ex):
    """Makes ex record the item lists its chunk tasks carry."""
    sent = []
    submit = ex._submit

    def spy(fn, args, kwargs, timeout, flags=rt.F_CALL, *rest, **kw):
        if flags in rt.CHUNKS:
            sent.append(list(args))
        return submit(fn, args, kwargs, timeout, flags, *rest, **kw)
    ex._submit = spy
    return sent


def _planned(items, size):
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_every_map_groups_items_as_the_plan_says(kind):
    items = list(range(37))
    with crew.Executor(3, kind=kind) as ex:
        auto = _core.map_chunksize(len(items), 3, None)
        assert auto == 4
        sent = _recorded(ex)
        assert list(ex.map(h.square, items)) == [x * x for x in items]
        assert sent == _planned(items, auto)
        sent.clear()
        assert list(ex.map(h.square, items, chunksize=5)) == [x * x for x in items]
        assert sent == _planned(items, 5)
        sent.clear()
        assert list(ex.map(h.square, items, buffersize=2)) == [x * x for x in items]
        assert sent == _planned(items, 1)       # unknown length: 1 per chunk
        sent.clear()
        assert list(ex.map(h.add, items, items)) == [2 * x for x in items]
        assert sent == _planned([(x, x) for x in items], auto)
    with crew.Pool(3, kind=kind) as p:
        sent = _recorded(p._ex)
        assert p.map(h.square, items) == [x * x for x in items]
        assert sent == _planned(items, auto)
        sent.clear()
        assert list(p.imap(h.square, iter(items), chunksize=6)) == [x * x for x in items]
        assert sent == _planned(items, 6)


def test_auto_plans_over_its_larger_side():
    with crew.Executor(2, kind="auto", max_threads=5) as ex:
        items = list(range(100))
        sent = _recorded(ex)
        assert list(ex.map(h.square, items)) == [x * x for x in items]
        assert sent == _planned(items, _core.map_chunksize(100, 5, None))


@pytest.mark.parametrize("bad", [0, -1, 0.5, -2 ** 80])
def test_chunksize_below_one_fails_in_every_map(bad):
    with crew.Executor(2, kind="threads") as ex, crew.Pool(2, kind="threads") as p:
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            ex.map(h.square, range(3), chunksize=bad)
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            ex.map(h.square, range(3), chunksize=bad, buffersize=2)
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            p.map(h.square, range(3), chunksize=bad)
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            p.imap_unordered(h.square, range(3), chunksize=bad)
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            ex.map_async(h.square, range(3), chunksize=bad).__anext__().send(None)


def test_imap_chunksize_none_is_a_type_error_as_in_multiprocessing():
    with crew.Pool(1, kind="threads") as p:
        with pytest.raises(TypeError):
            p.imap(h.square, range(3), chunksize=None)
