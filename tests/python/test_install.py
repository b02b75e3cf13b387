"""crew installs like any Python package: offline into a folder, and as an sdist and a wheel into a fresh venv."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_offline_pip_install_into_a_folder(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
         "--no-index", "--target", str(target), ROOT],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run(
        [sys.executable, "-c",
         "import crew, json, os; "
         "assert crew.__file__.startswith(os.environ['PYTHONPATH']), crew.__file__; "
         "ex = crew.Executor(1); print(json.dumps(ex.submit(pow, 2, 10).result())); ex.shutdown()"],
        capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == 1024
    info = subprocess.run([sys.executable, "-m", "crew", "info", "--json"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "usable" in info.stdout.lower() or "cpu" in info.stdout.lower()


SMOKE = """
import json, subprocess, sys
import crew

def square(x):
    return x * x

if __name__ == "__main__":
    assert crew.__file__.startswith(sys.prefix), crew.__file__     # the venv's copy, not the tree's
    with crew.Executor(2) as ex:                                    # process workers (forkserver)
        procs = ex.submit(square, 7).result(timeout=60)
    with crew.Executor(2, kind="threads") as ex:
        threads = ex.submit(square, 8).result(timeout=60)
    info = json.loads(subprocess.run([sys.executable, "-m", "crew", "info", "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    print(json.dumps({"procs": procs, "threads": threads, "info": bool(info)}))
"""


def test_sdist_and_wheel_build_isolated_and_run_in_a_fresh_venv(tmp_path):
    """The standard PEP 517 path: an sdist, a wheel built from it by `pip wheel` in an
    isolated build (setuptools from PyPI), installed alone into a new venv (its one
    dependency from PyPI), runs `python -m crew info`, a process task and a thread task."""
    dist = tmp_path / "dist"
    env = dict(os.environ, PIP_CONSTRAINT=os.path.join(ROOT, "constraints.txt"))
    sdist = subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), ROOT],
                           capture_output=True, text=True, timeout=600, env=env)
    assert sdist.returncode == 0, sdist.stdout + sdist.stderr
    (tarball,) = dist.glob("crew-*.tar.gz")
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--wheel-dir", str(dist), str(tarball)],
                           capture_output=True, text=True, timeout=600, env=env)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    (whl,) = dist.glob("crew-*.whl")
    tag = "cp%d%d" % sys.version_info[:2]
    assert f"-{tag}-{tag}-" in whl.name, whl.name

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    inst = subprocess.run([py, "-m", "pip", "install", "-q", str(whl)], capture_output=True,
                          text=True, timeout=600, env=env)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE)
    run = subprocess.run([py, str(script)], capture_output=True, text=True, timeout=300,
                         cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=""))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) == {"procs": 49, "threads": 64, "info": True}
