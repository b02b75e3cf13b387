"""The fork server started from a short-lived thread: its workers outlive that thread."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, threading, time, crew

    def pid(_=None):
        return os.getpid()

    if __name__ == "__main__":
        box = {}
        def workers(ex):
            return sorted(w["pid"] for w in ex.stats()["workers"])
        def make():
            box["ex"] = crew.Executor(2)   # the fork server starts from this thread
            ran = set(box["ex"].map(pid, range(8)))
            box["pids"] = workers(box["ex"])
            assert ran <= set(box["pids"]), (ran, box["pids"])
        t = threading.Thread(target=make)
        t.start()
        t.join()
        time.sleep(0.3)                    # that thread is gone now
        ex = box["ex"]
        ran = set(ex.map(pid, range(8)))
        after = workers(ex)
        assert ran <= set(after), (ran, after)
        st = ex.stats()
        print("same" if after == box["pids"] else f"changed {box['pids']} -> {after}",
              st["crashed"], sum(w["restarts"] for w in st["workers"]))
        ex.shutdown()
""")


def test_workers_outlive_the_thread_that_started_the_fork_server(tmp_path):
    script = tmp_path / "fs_thread.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["same", "0", "0"], out.stdout + out.stderr


DEAD_SERVER = textwrap.dedent("""
    import os, signal, crew, psutil
    from crew import _core

    def pid(_=None):
        return os.getpid()

    if __name__ == "__main__":
        ex = crew.Executor(1, max_tasks_per_child=1)     # every task needs a new worker
        ex.submit(pid).result(timeout=30)
        servers = _core.forkserver_pids()
        assert servers, "no fork server"
        for server in servers:
            os.kill(server, signal.SIGKILL)
            try:
                os.waitpid(server, 0)
            except ChildProcessError:   # crew reaped it first (a worker was starting)
                pass
        # the replacement worker may already be up (forked by the server before
        # it died; a child of ours): kill it too, so the next task needs a new one
        for child in psutil.Process().children():
            child.kill()
        try:
            ex.submit(pid).result(timeout=30)
            assert _core.forkserver_pids() and set(_core.forkserver_pids()).isdisjoint(servers)
            print("ran")
        except crew.WorkerCrashedError as e:
            print("failed:", e)
        ex.terminate()
""")


def test_a_dead_fork_server_is_replaced_when_a_worker_must_start(tmp_path):
    script = tmp_path / "dead_server.py"
    script.write_text(DEAD_SERVER)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ran", out.stdout
