"""A task that keeps its array argument keeps valid memory: crew does not
reuse the shared bytes under it, and frees them once the task lets go."""
import numpy as np

import crew
import helpers as h


def test_a_kept_argument_is_not_reused_under_the_task(method):
    with crew.Executor(1, start_method=method) as ex:
        assert ex.submit(h.keep_arg, np.full(100_000, 1.0), True).result() == [1.0]
        # later payloads must land elsewhere: the cached array still reads 1.0
        assert ex.submit(h.keep_arg, np.full(100_000, 7.0), True).result() == [1.0, 7.0]


def test_kept_arguments_are_freed_once_dropped():
    # 24 x 100 MB through a 1 GiB arena: only possible if what a task let go
    # of is freed (and what it keeps stays valid meanwhile)
    with crew.Executor(1) as ex:
        a = np.zeros(100 * 2**20 // 8)
        for i in range(24):
            a[0] = i
            got = ex.submit(h.keep_arg, a, i % 2 == 0).result(timeout=60)
            assert got == ([float(i)] if i % 2 == 0 else [])
