"""crew on a real loopback dask.distributed cluster: crew.Executor(address=...), --preload crew.dask, worker kills."""
import asyncio
import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from distributed.scheduler import KilledWorker  # noqa: E402

import crew  # noqa: E402
import integ_tasks as T  # noqa: E402
from dask_cluster import START_TIMEOUT, Cluster  # noqa: E402

WAIT = 180   # generous: a slow shared machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_scheduler()
        c.start_worker("w1")
        c.start_worker("w2")
        with distributed.Client(c.address, timeout=START_TIMEOUT, set_as_default=False) as cl:
            c.wait_for_workers(cl, 2)
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        left = c.stop()
        # distributed's future-callback thread would outlive the module and
        # make later fork-method tests fork beside it
        cb = getattr(distributed.client.Future, "_cb_executor", None)
        if cb is not None:
            cb.shutdown(wait=True)
            distributed.client.Future._cb_executor = None
        assert left == [], f"processes left behind after teardown: {left}"


@pytest.fixture(scope="module")
def ex(cluster):
    e = crew.Executor(address=cluster.address)
    yield e
    e.shutdown()


def test_executor_api(cluster, ex):
    assert isinstance(ex, crew.Executor) and ex.kind == "distributed"
    assert ex.max_workers == 2
    assert ex.submit(T.square, 7).result(WAIT) == 49
    assert list(ex.map(T.square, range(50), chunksize=7)) == [i * i for i in range(50)]
    assert list(ex.map(pow, [2, 3], [5, 2])) == [32, 9]
    assert ex.submit(dict, key=1, pure=2, workers=3).result(WAIT) == {"key": 1, "pure": 2, "workers": 3}
    futs = [ex.submit(T.square, i) for i in range(10)]
    assert sorted(f.result() for f in cf.as_completed(futs, timeout=WAIT)) == [i * i for i in range(10)]
    done, not_done = cf.wait(futs, timeout=WAIT)
    assert not not_done and all(isinstance(f, crew.Future) for f in futs)
    with pytest.raises(ValueError, match="item 2 is bad"):
        list(ex.map(T.fail_on, range(5), [2] * 5))
    s = ex.stats()
    assert s["kind"] == "distributed" and len(s["workers"]) == 2 and s["done"] > 0


def test_tasks_run_in_crew_workers_inside_dask_workers(cluster, ex):
    dask_pids = set(ex.client.run(os.getpid).values())
    pids = set(ex.map(T.pid_of, range(8), chunksize=1))
    assert pids and not pids & dask_pids and os.getpid() not in pids


def test_per_task_timeout_kills(cluster, ex):
    with pytest.raises(crew.TaskTimeoutError):
        ex.options(timeout=1).submit(time.sleep, 120).result(WAIT)
    assert ex.submit(T.square, 3).result(WAIT) == 9


def test_asyncio_on_the_cluster(cluster, ex):
    async def main():
        a = await ex.submit(T.square, 6)
        b = [r async for r in ex.map_async(T.square, range(10), ordered=False)]
        return a, sorted(b)
    assert asyncio.run(main()) == (36, [i * i for i in range(10)])


def test_crew_worker_killed_inside_a_dask_worker_fails_only_its_task(cluster, ex):
    futs = [ex.submit(T.kill_self_on, i, 4) for i in range(10)]
    cf.wait(futs, timeout=WAIT)
    errors = {i: f.exception() for i, f in enumerate(futs) if f.exception() is not None}
    assert list(errors) == [4] and isinstance(errors[4], crew.WorkerCrashedError)
    assert [f.result() for i, f in enumerate(futs) if i != 4] == [i for i in range(10) if i != 4]
    assert all(p.poll() is None for p in cluster.workers[:2])       # the dask workers live on
    assert len(ex.client.scheduler_info()["workers"]) == 2


def test_dask_worker_sigkilled_mid_batch(cluster):
    w3 = cluster.start_worker("w3", preload=False)
    with crew.Executor(address=cluster.address) as e:
        e.client.wait_for_workers(3, timeout=START_TIMEOUT)
        addr3 = next(a for a, w in e.client.scheduler_info()["workers"].items()
                     if w.get("name") == "w3")
        futs = [e.submit(T.sleep_then, 0.3, i) for i in range(30)]
        end = time.monotonic() + WAIT
        while not e.client.processing().get(addr3) and time.monotonic() < end:
            time.sleep(0.02)
        assert e.client.processing().get(addr3), "w3 got no task"
        os.killpg(w3.pid, signal.SIGKILL)
        done, not_done = cf.wait(futs, timeout=WAIT)
        assert not not_done, f"{len(not_done)} futures never resolved"
        for i, f in enumerate(futs):
            if f.exception() is None:     # rerun by dask elsewhere, or a clear error
                assert f.result() == i
            else:
                assert isinstance(f.exception(), KilledWorker), repr(f.exception())
        assert sum(f.exception() is None for f in futs) >= 1
        assert e.submit(T.square, 2).result(WAIT) == 4   # the cluster serves on
    w3.wait(WAIT)


def test_string_address_executor_closes_only_its_client(cluster):
    with crew.Executor(address=cluster.address) as e:
        assert e.submit(T.square, 11).result(WAIT) == 121
        client = e.client
    assert client.status in ("closed", "closing")
    with distributed.Client(cluster.address, timeout=START_TIMEOUT, set_as_default=False) as c2:
        assert len(c2.scheduler_info()["workers"]) >= 2


LOCAL_CLUSTER = r"""
import os, sys
import distributed, crew, crew.dask
import integ_tasks as T

if __name__ == "__main__":
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp://", host="127.0.0.1", dashboard_address=None,
                                  preload=["crew.dask"]) as lc:
        with crew.Executor(address=lc.scheduler_address) as ex:
            pids = set(ex.map(T.pid_of, range(6), chunksize=1))
            crashed = ex.submit(T.kill_self_on, 1, 1).exception(120)
            after = ex.submit(T.square, 5).result(120)
    assert os.getpid() not in pids, pids          # in crew workers, not the in-process worker
    assert isinstance(crashed, crew.WorkerCrashedError), repr(crashed)
    assert after == 25
    print("ok")
"""


def test_local_cluster_made_in_python_with_the_preload(tmp_path):
    # in a process of its own: an in-process LocalCluster leaves its threads behind
    script = tmp_path / "local_cluster.py"
    script.write_text(LOCAL_CLUSTER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=START_TIMEOUT + WAIT, env=env, cwd=str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr
