"""Tasks that turn on crew's own machinery: a task that forks and lets its
child return, descriptors of other pools inside fork workers."""
import os
import time

import pytest

import crew


def _fds_like(*what):
    """How many of this process's descriptors link to each of `what`."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return [sum(w in link for link in links) for w in what]


def crew_fds():
    return _fds_like("memfd:crew-pool", "[pidfd]", "[eventfd]")


def fork_and_return(_):
    """Forks; parent and child both return (the child into crew's loop)."""
    return os.fork()


def _gone_or_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_a_fork_worker_holds_no_other_pools_descriptors():
    # before: a worker forked for the second pool held the first pool's
    # memfd, eventfd and its workers' pidfds (and its own pool's)
    with crew.Executor(2, start_method="fork") as other:
        assert other.submit(abs, -1).result(timeout=60) == 1
        with crew.Executor(2, start_method="fork") as ex:
            assert list(ex.map(abs, [-1, -2])) == [1, 2]
            memfds, pidfds, eventfds = ex.submit(crew_fds).result(timeout=60)
    assert (memfds, pidfds, eventfds) == (0, 0, 0)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_child_forked_by_a_task_leaves_instead_of_serving(method):
    # before: both copies went on reading the one request ring; the parent
    # met answers out of order and the copy lived on after the pool
    with crew.Executor(1, start_method=method) as ex:
        for _ in range(3):
            child = ex.submit(fork_and_return, 0).result(timeout=60)
            assert child > 0                      # the worker's answer, once
            deadline = time.monotonic() + 10
            while not _gone_or_zombie(child) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _gone_or_zombie(child)
            assert list(ex.map(abs, range(-20, 0))) == list(range(20, 0, -1))
        assert ex.stats()["crashed"] == 0
