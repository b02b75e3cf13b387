"""dask on crew on one machine: dask.compute(scheduler=crew.Executor) and crew.dask.get, real dask."""
import os

import numpy as np
import pytest

dask = pytest.importorskip("dask")
import dask.array as da  # noqa: E402
import dask.bag as db  # noqa: E402

import crew  # noqa: E402
import crew.dask  # noqa: E402
import integ_tasks as T  # noqa: E402


@pytest.fixture(scope="module")
def ex():
    with crew.Executor(2) as e:
        yield e


def test_array_bag_delayed_with_an_executor(ex):
    x = da.arange(40_000, chunks=5_000).reshape(200, 200).rechunk(50)
    (s,) = dask.compute((x * 2).sum(), scheduler=ex)
    assert s == 2 * sum(range(40_000))
    b = db.from_sequence(range(1000), npartitions=8).map(T.square).filter(lambda v: v % 2 == 0)
    (bs,) = dask.compute(b.sum(), scheduler=ex)
    assert bs == sum(i * i for i in range(1000) if i * i % 2 == 0)
    d = dask.delayed(T.square)(dask.delayed(T.square)(3))
    assert dask.compute(d, scheduler=ex) == (81,)
    pids = dask.compute(*[dask.delayed(T.pid_of)(i, dask_key_name=f"p{i}") for i in range(8)],
                        scheduler=ex)
    assert os.getpid() not in pids
    assert ex.stats()["done"] > 0


def test_crew_dask_get(ex):
    x = da.ones((400, 400), chunks=(100, 100))
    assert dask.compute((x + 1).sum(), scheduler=crew.dask.get) == (2 * 400 * 400,)
    with dask.config.set(scheduler=crew.dask.get):
        assert (x.T @ x).sum().compute() == 400 ** 3
    assert dask.compute((x + 1).sum(), scheduler=crew.dask.get, executor=ex) == (2 * 400 * 400,)


def test_numpy_chunks_cross_by_shared_memory(ex):
    a = np.arange(2_000_000, dtype=np.float64)           # 16 MB in 2 chunks of 8 MB
    x = da.from_array(a, chunks=1_000_000)
    infos = dask.compute(*[dask.delayed(T.array_info)(c) for c in x.to_delayed()],
                         scheduler=crew.dask.get, executor=ex)
    assert [s for s, _ in infos] == [float(a[:1_000_000].sum()), float(a[1_000_000:].sum())]
    assert not any(own for _, own in infos)   # views of the message: no pickled copy


def test_task_error_reaches_the_caller(ex):
    d = dask.delayed(T.fail_on)(3, 3)
    with pytest.raises(ValueError, match="item 3 is bad"):
        dask.compute(d, scheduler=crew.dask.get, executor=ex)
    assert dask.compute(dask.delayed(T.square)(4), scheduler=ex) == (16,)


def test_worker_crash_fails_the_compute_and_the_pool_serves_on(ex):
    with pytest.raises(crew.WorkerCrashedError):
        dask.compute(dask.delayed(T.kill_self_on)(1, 1), scheduler=crew.dask.get, executor=ex)
    assert dask.compute(dask.delayed(T.square)(5), scheduler=ex) == (25,)
