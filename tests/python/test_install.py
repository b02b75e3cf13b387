"""`pip install .` works offline (no PyPI here) and the installed copy runs on its own."""
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
