"""asyncio on crew: await a Future, run_in_executor, wrap_future, async iteration, cancellation."""
import asyncio
import threading

import pytest

import crew
import integ_tasks as T


@pytest.fixture(params=["processes", "threads"])
def ex(request):
    with crew.Executor(2, kind=request.param) as e:
        yield e


def test_await_submit_run_in_executor_wrap_future(ex):
    async def main():
        a = await ex.submit(T.square, 7)
        b = await asyncio.get_running_loop().run_in_executor(ex, T.square, 8)
        c = await asyncio.wrap_future(ex.submit(T.square, 9))
        d = await asyncio.gather(*(ex.submit(T.square, i) for i in range(5)))
        return a, b, c, d
    assert asyncio.run(main()) == (49, 64, 81, [0, 1, 4, 9, 16])


def test_await_raises_the_task_error(ex):
    async def main():
        await ex.submit(T.fail_on, 1, 1)
    with pytest.raises(ValueError, match="item 1 is bad"):
        asyncio.run(main())


def test_map_async_ordered_and_unordered(ex):
    async def main():
        ordered = [r async for r in ex.map_async(T.square, range(100))]
        unordered = [r async for r in ex.map_async(T.square, range(100), ordered=False,
                                                   chunksize=7)]
        star = [r async for r in ex.map_async(pow, [2, 3], [5, 2])]
        return ordered, unordered, star
    ordered, unordered, star = asyncio.run(main())
    assert ordered == [i * i for i in range(100)]
    assert sorted(unordered) == ordered
    assert star == [32, 9]


def test_map_async_error_surfaces_at_its_item(ex):
    async def main():
        got = []
        with pytest.raises(ValueError):
            async for r in ex.map_async(T.fail_on, range(10), [5] * 10, chunksize=1):
                got.append(r)
        return got
    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_as_completed_async(ex):
    async def main():
        futs = [ex.submit(T.square, i) for i in range(10)]
        seen = [f async for f in crew.as_completed_async(futs)]
        return futs, seen
    futs, seen = asyncio.run(main())
    assert set(seen) == set(futs) and all(f.done() for f in seen)


def test_cancelling_the_awaiting_coroutine_cancels_a_queued_task():
    gate = threading.Event()
    with crew.Executor(1, kind="threads") as ex:
        blocker = ex.submit(gate.wait, 60)

        async def main():
            queued = ex.submit(T.square, 3)
            waiter = asyncio.ensure_future(_await(queued))
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            return queued
        queued = asyncio.run(main())
        assert queued.cancelled()
        gate.set()
        assert blocker.result(timeout=60) is True


def test_cancelling_a_process_task_not_started():
    gate = crew.Event()
    with crew.Executor(1) as ex:
        blocker = ex.submit(gate.wait, 60)

        async def main():
            queued = ex.submit(T.square, 3)
            waiter = asyncio.ensure_future(_await(queued))
            await asyncio.sleep(0)
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            return queued
        queued = asyncio.run(main())
        assert queued.cancelled()
        gate.set()
        assert blocker.result(timeout=60) is True


async def _await(fut):
    return await fut
