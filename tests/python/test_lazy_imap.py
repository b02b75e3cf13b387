"""crew.Pool.imap/imap_unordered read their input lazily (bounded read-ahead), as a drop-in must."""
import itertools

import pytest

import crew
from helpers import square
import helpers as h


class Counting:
    """An input as good as endless (10**6 items: reading it all at the call is
    the bug) that counts what was taken from it, and stops the test rather
    than the machine if read too far."""

    def __init__(self):
        self.taken = 0

    def __iter__(self):
        for i in itertools.count():
            if i == 10**6:
                raise RuntimeError("the whole input was read")
            self.taken += 1
            yield i


def _failing_input(n):
    yield from range(n)
    raise KeyError("input ran dry")


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_a_huge_input_starts_at_once_and_is_read_ahead_only_a_little(method):
    src = Counting()
    with crew.Pool(2) as pool:
        it = getattr(pool, method)(square, src, chunksize=3)
        got = list(itertools.islice(it, 50))
        read_ahead = src.taken - 50
        it.close()
    if method == "imap":
        assert got == [x * x for x in range(50)]
    else:  # any 50 distinct results of what was read
        assert len(set(got)) == 50 and set(got) <= {x * x for x in range(src.taken)}
    # at most max(8, 4 * workers) chunks of 3 beyond what was consumed (and one being read)
    assert 0 <= read_ahead <= 3 * 8 + 3, read_ahead


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_the_inputs_exception_comes_out_where_iteration_reaches_it(method):
    with crew.Pool(2) as pool:
        it = getattr(pool, method)(square, _failing_input(20), chunksize=2)  # no raise here
        got = []
        with pytest.raises(KeyError, match="input ran dry"):
            for v in it:
                got.append(v)
    assert sorted(got) == [x * x for x in range(20)]


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_chunksize_below_one_is_refused(method):
    with crew.Pool(1) as pool:
        with pytest.raises(ValueError, match="chunksize"):
            getattr(pool, method)(square, range(3), chunksize=0)


def test_thread_pools_default_to_thread_pool_executor_worker_count():
    with crew.Executor(kind="threads") as ex:
        assert ex.max_workers == min(32, crew.cpu_count() + 4)
    with crew.Executor() as ex:
        assert ex.max_workers == crew.cpu_count()


@pytest.mark.parametrize("chunksize", [1, 3])
def test_imap_goes_on_after_a_failed_item_as_multiprocessing(chunksize):
    """multiprocessing's imap raises a failed item's exception where the item
    stands and then goes on with the items after it; so does crew's (item by
    item, a chunk's other items included)."""
    with crew.Pool(2) as pool:
        it = pool.imap(h.fail_at_3, range(7), chunksize=chunksize)
        assert [next(it) for _ in range(3)] == [0, 10, 20]
        with pytest.raises(ValueError, match="item 3 is bad"):
            next(it)
        assert list(it) == [40, 50, 60]
        it = pool.imap_unordered(h.stop_at_5, range(8), chunksize=chunksize)
        got, errors = [], []
        while True:
            try:
                got.append(next(it))
            except StopIteration:
                break
            except RuntimeError as e:   # not a StopIteration, which would end the loop
                errors.append(e)
        assert sorted(got) == [0, 1, 2, 3, 4, 6, 7] and len(errors) == 1
        assert "StopIteration" in str(errors[0])
