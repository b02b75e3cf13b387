"""test_startup_state.py — spawned and fork-server workers get the parent's start-up state through a memfd, never argv: long command lines work, ps shows no secret, one fork server serves a chdir and a log-level change."""
import os
import subprocess
import sys
import textwrap

import pytest

import crew
from crew import _forkserver

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
    script = tmp_path / "many_args.py"
    script.write_text(SCRIPT)
    args = [f"/data/some/rather/long/directory/name/file{i:05d}.csv" for i in range(1400)]
    r = subprocess.run([sys.executable, str(script), method, "--api-key=SECRET"] + args,
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
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
        servers = len(_forkserver._servers)
        os.chdir(tmp_path)
        root.setLevel(logging.ERROR)
        with crew.Executor(1, start_method="forkserver") as ex:
            assert ex.submit(_cwd, 0).result(timeout=60) == str(tmp_path)
            assert ex.submit(_level, 0).result(timeout=60) == logging.ERROR
        assert len(_forkserver._servers) == servers   # the same server
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
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED)
    r = subprocess.run([sys.executable, str(script), method], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[0] == "42 [0, 2, 4, 6] 15", r.stdout
