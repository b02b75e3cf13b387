"""asyncio for crew: awaiting a crew Future, async iteration over map results and futures.

    async def main():
        with crew.Executor() as ex:
            print(await ex.submit(work, 7))                    # await a crew Future
            print(await asyncio.get_running_loop().run_in_executor(ex, work, 3))
            async for r in ex.map_async(work, range(100), ordered=False):
                ...                                            # as they complete
            async for f in crew.as_completed_async(futs):      # futures as they finish
                ...

Cancelling the coroutine that awaits a crew Future cancels its task when it
has not started (a running task runs on; a cancelled await does not wait for
it). Leaving an ``async for`` early cancels the tasks not started.
"""
import asyncio

from . import _runtime as rt


def await_future(fut):
    """The generator behind ``await fut``: asyncio.wrap_future chains the
    cancellation of the awaiting task to fut.cancel()."""
    return asyncio.wrap_future(fut).__await__()


async def map_async(ex, fn, iterables, chunksize, ordered, task_timeout):
    """Executor.map_async's body (an async generator)."""
    if not iterables:
        raise TypeError("map_async() needs at least one iterable")
    ex._chunksize(0, chunksize)   # a bad chunksize fails before the input is read
    star = len(iterables) != 1
    items = list(zip(*iterables)) if star else list(iterables[0])
    futs = ex._chunks(fn, items, chunksize, task_timeout, star)
    del items
    try:
        if ordered:
            for f in futs:
                res = await asyncio.wrap_future(f)
                for v in rt.take_values(res):
                    yield v
        else:
            pending = {asyncio.wrap_future(f) for f in futs}
            while pending:
                done, pending = await asyncio.wait(pending,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for d in done:
                    for v in rt.take_values(d.result()):
                        yield v
    finally:
        for f in futs:
            f.cancel()


async def as_completed_async(futures, timeout=None):
    """An async iterator yielding the given concurrent.futures Futures (crew's
    or any executor's) as they finish, each already done (read it with
    ``f.result()``). ``timeout``: seconds for the whole iteration, then
    TimeoutError (builtin); the futures left are not cancelled."""
    futures = list(dict.fromkeys(futures))
    wrapped = {asyncio.wrap_future(f): f for f in futures}
    pending = set(wrapped)
    loop = asyncio.get_running_loop()
    end = None if timeout is None else loop.time() + timeout
    try:
        while pending:
            left = None if end is None else end - loop.time()
            if left is not None and left <= 0:
                raise TimeoutError(f"{len(pending)} (of {len(futures)}) futures unfinished")
            done, pending = await asyncio.wait(pending, timeout=left,
                                               return_when=asyncio.FIRST_COMPLETED)
            for d in done:
                yield wrapped[d]
    finally:
        # the wrappers are asyncio futures: mark them read, so that a failed
        # one left behind logs no "exception was never retrieved"
        for w in wrapped:
            if w.done() and not w.cancelled():
                w.exception()
