"""python -m crew advise: runs a script unchanged and recommends, per function, what was measured to be faster."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

CPU_ON_THREADS = """
import concurrent.futures as cf
def spin(n):
    x = 0
    for i in range(n):
        x += i
    return x
if __name__ == "__main__":
    with cf.ThreadPoolExecutor(4) as ex:
        print("total", sum(ex.map(spin, [300_000] * 16)))
"""

IO_ON_PROCESSES = """
import concurrent.futures as cf, time
def fetch(i):
    time.sleep(0.03)
    return i
if __name__ == "__main__":
    with cf.ProcessPoolExecutor(2) as ex:
        print("total", sum(ex.map(fetch, range(24))))
"""

FOLLOW_UPS = """
import crew, sys
def leaf(x):
    return x * 2
if __name__ == "__main__":
    with crew.Executor(2, kind="auto", max_threads=1) as ex:
        def parent(n):
            return sum(f.result() for f in [ex.submit(leaf, i) for i in range(n)])
        ex.pin(parent, "threads")
        print("total", ex.submit(parent, 20).result(timeout=60))
    with __import__("multiprocessing").Pool(2) as p:
        print("pool", sum(p.map(leaf, range(10))))
    sys.exit(3)
"""


def advise(tmp_path, name, src):
    path = tmp_path / name
    path.write_text(textwrap.dedent(src))
    out = tmp_path / (name + ".json")
    p = subprocess.run([sys.executable, "-m", "crew", "advise", "--json", str(out), str(path)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    return p, json.loads(out.read_text())


def row(data, suffix):
    rows = [d for d in data["functions"] if d["function"].endswith(suffix)]
    assert rows, data
    return rows[0]


def test_cpu_loop_on_threadpool_is_told_processes(tmp_path):
    p, data = advise(tmp_path, "cpu.py", CPU_ON_THREADS)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"total {16 * sum(range(300_000))}\n"   # the script's output, untouched
    d = row(data, ".spin")
    assert d["calls"] == 16 and d["ran_on"] == "threads"
    assert d["recommend"] in ("processes", "auto"), d
    assert d["speedup_processes"] and d["speedup_threads"]   # both measured (their ratio
    # depends on how busy the machine is: the recommendation rests on the GIL bound too)
    assert any("GIL" in b for b in d["bounds"])
    assert "spin" in p.stderr and "change:" in p.stderr


def test_io_loop_on_processpool_is_told_threads(tmp_path):
    p, data = advise(tmp_path, "io.py", IO_ON_PROCESSES)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"total {sum(range(24))}\n"
    d = row(data, ".fetch")
    assert d["calls"] == 24 and d["ran_on"] == "processes"
    assert d["recommend"] == "threads", d
    assert any("I/O" in b for b in d["bounds"])
    assert d["auto_placement"] == "threads"


def test_thread_task_submitting_follow_ups_and_exit_status(tmp_path):
    p, data = advise(tmp_path, "follow.py", FOLLOW_UPS)
    assert p.returncode == 3, p.stderr            # the script's own exit status
    assert p.stdout == "total 380\npool 90\n"
    assert data["exit_status"] == 3
    assert row(data, ".leaf")["calls"] == 30       # 20 follow-ups and 10 Pool.map items
    assert row(data, ".parent")["calls"] == 1


def test_missing_script(tmp_path):
    p = subprocess.run([sys.executable, "-m", "crew", "advise", str(tmp_path / "nope.py")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no such script" in p.stderr
