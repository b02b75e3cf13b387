"""crew.joblib: joblib's backend protocol on crew, with the real joblib and scikit-learn."""
import multiprocessing
import os
import time

import numpy as np
import pytest

joblib = pytest.importorskip("joblib")
from joblib import Parallel, delayed  # noqa: E402

import crew  # noqa: E402
import crew.joblib  # noqa: E402
import integ_tasks as T  # noqa: E402

crew.joblib.register()


@pytest.fixture
def crew2():
    with joblib.parallel_config(backend="crew", n_jobs=2):
        yield


def _pool_executors():
    return [e[0] for e in crew.joblib._pools.values()]


def test_results_and_workers(crew2):
    out = Parallel()(delayed(T.square)(i) for i in range(50))
    assert out == [i * i for i in range(50)]
    pids = set(Parallel(batch_size=1)(delayed(T.pid_of)(i) for i in range(20)))
    assert os.getpid() not in pids
    assert any(e.stats()["done"] > 0 for e in _pool_executors())


def test_effective_n_jobs():
    b = crew.joblib.CrewBackend()
    assert b.effective_n_jobs(-1) == crew.cpu_count()
    assert b.effective_n_jobs(3) == 3
    assert b.effective_n_jobs(None) == 1
    with pytest.raises(ValueError):
        b.effective_n_jobs(0)
    with joblib.parallel_config(backend="crew"):
        assert joblib.effective_n_jobs(-1) == crew.cpu_count()


def test_one_job_runs_here():
    with joblib.parallel_config(backend="crew", n_jobs=1):
        assert Parallel()(delayed(T.pid_of)(i) for i in range(3)) == [os.getpid()] * 3


def test_auto_batching(crew2):
    p = Parallel(batch_size="auto")
    out = p(delayed(T.square)(i) for i in range(3000))
    assert out == [i * i for i in range(3000)]
    # tiny tasks: joblib grew the batches (fewer batches than tasks)
    assert p.n_dispatched_batches < p.n_dispatched_tasks == 3000


def test_generator_ordered_and_unordered(crew2, tmp_path):
    gen = Parallel(return_as="generator")(delayed(T.square)(i) for i in range(30))
    assert not isinstance(gen, list)
    assert list(gen) == [i * i for i in range(30)]
    flag = tmp_path / "go"
    crew.joblib.shutdown()   # a fresh pool: no task queued behind another on one worker
    gen = Parallel(return_as="generator_unordered", batch_size=1)(
        delayed(T.wait_for_file)(str(flag), i) for i in range(10))
    first = next(gen)
    flag.touch()             # item 0 finishes only now, after another item came back
    out = [first] + list(gen)
    assert first != 0
    assert sorted(out) == list(range(10))


def test_error_aborts_the_call_and_pool_serves_on(crew2, tmp_path):
    with pytest.raises(ValueError, match="item 3 is bad"):
        Parallel(batch_size=1)(delayed(T.fail_on)(i, 3) for i in range(40))
    assert Parallel()(delayed(T.square)(i) for i in range(5)) == [0, 1, 4, 9, 16]


def test_abort_stops_running_batches(crew2, tmp_path):
    d = str(tmp_path)
    # a fresh pool sends a task to a worker only when it has none (the two
    # items then run at once, one per worker)
    crew.joblib.shutdown()

    with pytest.raises(ValueError, match="item 1 is bad"):
        # item 0 runs until killed; item 1 fails once item 0 runs
        Parallel(batch_size=1)([delayed(T.block_and_report)(d, 0),
                                delayed(T.fail_once_started)(d, 1)])
    pid = int(open(os.path.join(d, "0.pid")).read())
    end = time.monotonic() + 60
    while time.monotonic() < end and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the worker running an aborted batch was not stopped"
    assert Parallel()(delayed(T.square)(i) for i in range(3)) == [0, 1, 4]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_crash_fails_the_batch_only(crew2):
    with pytest.raises(crew.WorkerCrashedError):
        Parallel(batch_size=1)(delayed(T.kill_self_on)(i, 2) for i in range(6))
    assert Parallel()(delayed(T.square)(i) for i in range(10)) == [i * i for i in range(10)]


def test_timeout_stops_the_task(crew2, tmp_path):
    # crew's per-batch timeout (crew.TaskTimeoutError) or joblib's own
    # (multiprocessing.TimeoutError), whichever fires first: the task is stopped
    with pytest.raises((TimeoutError, multiprocessing.TimeoutError)):
        Parallel(timeout=1)([delayed(T.block_and_report)(str(tmp_path), 0)])
    f = tmp_path / "0.pid"
    if not f.exists() or not f.read_text():   # joblib's timeout came first: cancelled unstarted
        return
    pid = int(f.read_text())
    end = time.monotonic() + 60
    while time.monotonic() < end and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid), "the timed-out task's worker still runs"
    assert Parallel()(delayed(T.square)(i) for i in range(3)) == [0, 1, 4]


def test_numpy_arguments_cross_by_shared_memory(crew2):
    a = np.arange(1_000_000, dtype=np.float64)   # 8 MB
    out = Parallel()(delayed(T.array_info)(a) for _ in range(4))
    assert out == [(float(a.sum()), False)] * 4   # a view of the message, not a copy


def test_nested_calls_do_not_oversubscribe(crew2):
    (wpid, pids, named, inner), = Parallel()(delayed(T.nested_joblib)(0) for _ in range(1))
    cap = max(1, crew.cpu_count() // 2)
    assert wpid != os.getpid()
    assert pids == {wpid}                        # threads in the worker, never new processes
    assert named == {wpid}                       # backend="crew" inside a worker runs there
    assert inner <= cap


def test_blas_threads_limited_in_workers(crew2):
    (v,) = Parallel()(delayed(T.env_of)("OMP_NUM_THREADS") for _ in range(1))
    assert v == os.environ.get("OMP_NUM_THREADS", str(max(1, crew.cpu_count() // 2)))
    pytest.importorskip("threadpoolctl")
    (n,) = Parallel()(delayed(T.blas_threads)() for _ in range(1))
    assert n <= int(v)


def test_require_sharedmem_and_thread_kind():
    with joblib.parallel_config(backend="crew", n_jobs=2, kind="threads"):
        assert Parallel()(delayed(T.pid_of)(i) for i in range(4)) == [os.getpid()] * 4
    with joblib.parallel_config(backend="crew", n_jobs=2):
        # processes cannot share memory: joblib picks its threads for this call
        assert Parallel(require="sharedmem")(delayed(T.pid_of)(i) for i in range(2)) == [os.getpid()] * 2


def test_own_executor_is_used_and_kept():
    with crew.Executor(2) as ex:
        with joblib.parallel_config(backend="crew", executor=ex, n_jobs=-1):
            assert Parallel()(delayed(T.square)(i) for i in range(10)) == [i * i for i in range(10)]
        assert ex.stats()["done"] > 0
        assert ex.submit(T.square, 3).result() == 9


def test_sklearn_cross_val_score_and_grid_search():
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score
    X, y = datasets.load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500)
    want = cross_val_score(clf, X, y, cv=5, n_jobs=1)
    before = sum(e.stats()["done"] for e in _pool_executors())
    with joblib.parallel_config(backend="crew"):
        got = cross_val_score(clf, X, y, cv=5, n_jobs=2)
        grid = GridSearchCV(clf, {"C": [0.1, 1.0, 10.0]}, cv=3, n_jobs=2).fit(X, y)
    assert np.allclose(got, want)
    ref = GridSearchCV(clf, {"C": [0.1, 1.0, 10.0]}, cv=3, n_jobs=1).fit(X, y)
    assert grid.best_params_ == ref.best_params_
    assert np.isclose(grid.best_score_, ref.best_score_)
    assert sum(e.stats()["done"] for e in _pool_executors()) > before   # it ran on crew


def test_shutdown_closes_the_warm_pools(crew2):
    assert Parallel()(delayed(T.square)(i) for i in range(4)) == [0, 1, 4, 9]
    pools = _pool_executors()
    assert pools
    crew.joblib.shutdown()
    assert crew.joblib._pools == {} and all(e._shutdown for e in pools)
    assert Parallel()(delayed(T.square)(i) for i in range(4)) == [0, 1, 4, 9]   # made anew
