"""test_startup_state.py — spawned and fork-server workers get the parent's start-up state through a memfd, never argv: long command lines work, ps shows no secret, one fork server serves a chdir and a log-level change."""
import os
import subprocess
import sys
import textwrap

import pytest

import crew
from crew import _core


def run_script(tmp_path, name, source, *args, timeout=120, **kw):
    """Writes source to tmp_path/name and runs it with this interpreter and
    args; returns the finished process (its output as text)."""
    script = tmp_path / name
    script.write_text(source)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


SCRIPT = textwrap.dedent("""
    import os, sys, crew
    def cmdline(_):
        return open(f"/proc/{os.getppid()}/cmdline", "rb").read(), \\
               open("/proc/self/cmdline", "rb").read(), os.getcwd()
    if __name__ == "__main__":
        with crew.Executor(1, start_method=sys.argv[1]) as ex:
            parent, me, cwd = ex.submit(cmdline, 0).result(timeout=120)
        assert b"--api-key=SECRET" not in me, me[:300]
        print("ok", len(me))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_64k_command_line_starts_workers_and_hides_the_arguments(tmp_path, method):
    # 1,400 paths of ~47 characters: ~66 KB of arguments, which in one argv
    # string (the old hex prelude held sys.argv twice over) passed exec's
    # 128 KiB per-string limit: E2BIG
    args = [f"/data/some/rather/long/directory/name/file{i:05d}.csv" for i in range(1400)]
    r = run_script(tmp_path, "many_args.py", SCRIPT, method, "--api-key=SECRET", *args,
                   timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok"), r.stdout
    # the worker's own command line is short: no start-up state in it
    assert int(r.stdout.split()[1]) < 2000


def _cwd(_):
    return os.getcwd()


def _level(_):
    import logging
    return logging.getLogger().getEffectiveLevel()


def test_one_fork_server_serves_a_chdir_and_a_log_level_change(tmp_path):
    import logging
    old_cwd, root = os.getcwd(), logging.getLogger()
    old_level = root.level
    try:
        with crew.Executor(1, start_method="forkserver") as ex:
            ex.submit(_cwd, 0).result(timeout=60)
        servers = _core.forkserver_pids()
        os.chdir(tmp_path)
        root.setLevel(logging.ERROR)
        with crew.Executor(1, start_method="forkserver") as ex:
            assert ex.submit(_cwd, 0).result(timeout=60) == str(tmp_path)
            assert ex.submit(_level, 0).result(timeout=60) == logging.ERROR
        assert _core.forkserver_pids() == servers   # the same server
    finally:
        os.chdir(old_cwd)
        root.setLevel(old_level)


GUARDED = textwrap.dedent("""
    import sys, crew
    if __name__ == "__main__":
        def double(x):                 # bound only when run as the main script
            return 2 * x
        class Box:
            pass
        def nested():
            def triple(x):
                return 3 * x
            return triple
        with crew.Executor(2, start_method=sys.argv[1]) as ex:
            print(ex.submit(double, 21).result(timeout=120),
                  list(ex.map(double, range(4), chunksize=2)),
                  ex.submit(nested(), 5).result(timeout=120))
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_a_function_defined_under_the_main_guard_crosses_by_value(tmp_path, method):
    # a worker imports the script under another name, so the guarded block
    # never binds `double` there: before, the task failed with a raw
    # "AttributeError: Can't get attribute 'double' on <module '__mp_main__'>"
    r = run_script(tmp_path, "guarded.py", GUARDED, method, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[0] == "42 [0, 2, 4, 6] 15", r.stdout


NO_PATH = textwrap.dedent("""
    import os, crew
    def f(x):
        return x + 1
    if __name__ == "__main__":
        with crew.Executor(2, start_method="forkserver") as ex:
            assert ex.submit(f, 1).result(timeout=60) == 2
            print(sorted(os.listdir(os.environ["TMPDIR"])))
""")


def test_the_fork_server_leaves_no_path_in_tmpdir(tmp_path):
    # its channel is a socketpair: nothing named, nothing to clean up
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = run_script(tmp_path, "no_path.py", NO_PATH, env={**os.environ, "TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout
    assert list(tmp.iterdir()) == []


UNGUARDED = textwrap.dedent("""
    import sys, crew
    def f(x):
        return x + 1
    with crew.Executor(1, start_method=sys.argv[1]) as ex:
        print(ex.submit(f, 1).result(timeout=60))
""")


def test_an_unguarded_fork_server_pool_names_the_main_guard(tmp_path):
    # the fork server imports the script: its pool would start a fork server
    # of its own, and so on; it fails instead, and the owner says why
    r = run_script(tmp_path, "unguarded.py", UNGUARDED, "forkserver")
    assert r.returncode != 0
    assert "the fork server exited before it served" in r.stderr, r.stderr[-3000:]
    assert 'if __name__ == "__main__": (the main guard)' in r.stderr
    # the server's own error (once: no chain of servers), then the owner's
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("RuntimeError: crew:")]
    assert len(errors) == 2, r.stderr[-3000:]
    assert "while a process worker imported the main script" in errors[0]


INHERITABLE = textwrap.dedent("""
    import os, select, sys, crew
    def f(x):
        return x + 1
    if __name__ == "__main__":
        r, w = os.pipe()
        os.set_inheritable(w, True)   # e.g. a pipe meant for a subprocess
        with crew.Executor(1, start_method=sys.argv[1]) as ex:
            assert ex.submit(f, 1).result(timeout=60) == 2
            os.close(w)
            ready, _, _ = select.select([r], [], [], 5)
            print("eof" if ready and os.read(r, 1) == b"" else "held")
""")


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_descriptor_left_inheritable_stays_out_of_servers_and_workers(tmp_path, method):
    # the fork server (or a spawned worker) held the pipe's write end for its
    # whole life: the reader never saw EOF (multiprocessing closes them)
    r = run_script(tmp_path, "inheritable.py", INHERITABLE, method)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "eof"
