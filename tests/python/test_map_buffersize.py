"""Executor.map(..., buffersize=): Python 3.14's bounded, lazy map, on every
interpreter (the cases of CPython 3.14's test_map_buffersize_* among them)."""
import itertools

import pytest

import crew
import helpers as h


class Counted:
    """An iterator over range(n) (None: endless) that counts what was taken."""

    def __init__(self, n=None):
        self.it = itertools.count() if n is None else iter(range(n))
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self):
        v = next(self.it)
        self.taken += 1
        return v


@pytest.mark.parametrize("buffersize,chunksize", [(1, None), (2, 3), (5, 1)])
def test_results_in_order(ex, buffersize, chunksize):
    got = list(ex.map(h.square, range(11), buffersize=buffersize, chunksize=chunksize))
    assert got == [x * x for x in range(11)]
    got = list(ex.map(h.add, range(7), range(100, 107), buffersize=buffersize,
                      chunksize=chunksize))
    assert got == [a + b for a, b in zip(range(7), range(100, 107))]


def test_endless_input(ex):
    it = ex.map(h.square, itertools.count(), buffersize=2)
    assert list(itertools.islice(it, 5)) == [0, 1, 4, 9, 16]
    it.close()


def test_input_read_lazily_and_tasks_bounded(ex):
    src = Counted()
    it = ex.map(h.square, src, buffersize=3)
    assert src.taken == 3                    # the buffer, no more
    assert ex.stats()["submitted"] == 3
    assert next(it) == 0
    assert src.taken == 4                    # one out, one in
    assert next(it) == 1
    assert src.taken == 5
    it.close()


def test_chunks_count_as_tasks(ex):
    src = Counted()
    it = ex.map(h.square, src, buffersize=2, chunksize=4)
    assert src.taken == 8 and ex.stats()["submitted"] == 2
    assert [next(it) for _ in range(4)] == [0, 1, 4, 9]
    assert src.taken == 12 and ex.stats()["submitted"] == 3
    it.close()


def test_when_the_buffer_is_never_full(ex):
    assert list(ex.map(h.square, Counted(2), buffersize=5)) == [0, 1]
    assert list(ex.map(str, buffersize=2)) == []       # no iterable at all


def test_multiple_iterables_stop_at_the_shortest(ex):
    got = list(ex.map(h.add, itertools.count(), range(4), buffersize=2))
    assert got == [0, 2, 4, 6]


@pytest.mark.parametrize("bad", [0, -1])
def test_buffersize_below_one(ex, bad):
    with pytest.raises(ValueError, match="buffersize must be None or > 0"):
        ex.map(h.square, range(3), buffersize=bad)


@pytest.mark.parametrize("bad", [2.0, "2"])
def test_buffersize_not_an_int(ex, bad):
    with pytest.raises(TypeError, match="buffersize must be an integer or None"):
        ex.map(h.square, range(3), buffersize=bad)


def test_error_and_close_cancel_the_buffered_rest():
    with crew.Executor(1) as ex:
        src = Counted()
        it = ex.map(h.fail_at_3, src, buffersize=4)
        assert [next(it) for _ in range(3)] == [0, 10, 20]
        with pytest.raises(ValueError, match="item 3 is bad"):
            next(it)
        taken = src.taken
        with pytest.raises(StopIteration):
            next(it)
        assert src.taken == taken                 # nothing read after the error


def test_iterator_does_not_keep_the_executor():
    import gc
    import weakref
    ex = crew.Executor(1, kind="threads")
    it = ex.map(h.square, range(4), buffersize=2)
    assert list(it) == [0, 1, 4, 9]
    ex.shutdown()
    wr = weakref.ref(ex)
    del ex
    gc.collect()
    assert wr() is None
    assert list(it) == []


def test_pool_imap_unaffected():
    with crew.Pool(2) as p:
        assert list(p.imap(h.square, range(6))) == [0, 1, 4, 9, 16, 25]
