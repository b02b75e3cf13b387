"""Map chunks: each item's outcome stands where the item stood, whatever fails."""
import pytest

import crew
import helpers as h


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
