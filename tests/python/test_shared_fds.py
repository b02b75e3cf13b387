"""test_shared_fds.py — shared objects passed to tasks one after another do not pile up descriptors (issue 11 item 6): 1,100 under a 1,024-descriptor limit."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, resource, sys
    import crew

    def use_queue(q):
        q.put(1)
        return len(os.listdir("/proc/self/fd"))

    def use_dict(d):
        return len(os.listdir("/proc/self/fd"))

    if __name__ == "__main__":
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        kind = sys.argv[1]
        with crew.Executor(1) as ex:
            for i in range(1100):
                if kind == "queue":
                    o = crew.Queue()
                    worker_fds = ex.submit(use_queue, o).result(timeout=60)
                    o.get(timeout=10)
                else:
                    o = crew.SharedDict()
                    o["k"] = i
                    worker_fds = ex.submit(use_dict, o).result(timeout=60)
                o.close()
            print(worker_fds, len(os.listdir("/proc/self/fd")))
""")


@pytest.mark.parametrize("kind", ["queue", "dict"])
def test_a_thousand_shared_objects_passed_to_tasks_fit_in_1024_descriptors(tmp_path, kind):
    # before: EMFILE at about the 1,015th (a dict's fd kept 30 s after close()
    # by its sender; every queue kept by the worker for its whole life)
    script = tmp_path / "many_objects.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), kind], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    worker_fds, parent_fds = map(int, r.stdout.split())
    assert worker_fds < 200 and parent_fds < 200, r.stdout


def _slow_len(d):
    import time
    time.sleep(0.3)
    return len(d)


def test_an_object_sent_to_two_tasks_then_closed_reaches_both():
    """The sender keeps its handle until as many receivers have opened it as
    it was sent to: closed right after two sends, the second task (queued
    behind the first) still opens it."""
    import crew
    with crew.Executor(1) as ex:
        d = crew.SharedDict()
        d["k"] = 1
        f1 = ex.submit(_slow_len, d)
        f2 = ex.submit(len, d)
        d.close()
        import time
        time.sleep(0.15)                 # task 1 has opened it; task 2 waits behind it
        crew.shared._prune(time.monotonic(), force=True)   # what a later send would run
        assert f1.result(timeout=60) == 1
        assert f2.result(timeout=60) == 1
