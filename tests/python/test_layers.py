"""test_layers.py — scripts/check_layers.py passes on the tree and catches an upward edge in C and in Python."""
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_layers.py"


def run(root):
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True)


def copy_tree(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src")
    shutil.copytree(ROOT / "python" / "crew", tmp_path / "python" / "crew",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return tmp_path


def test_the_tree_has_no_upward_edge():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_c_include_upward_is_caught(tmp_path):
    root = copy_tree(tmp_path)
    with open(root / "src" / "transport" / "ring.c", "a") as f:
        f.write('#include "pool/pool.h"\n')
    r = run(root)
    assert r.returncode == 1
    assert "src/transport/ring.c" in r.stdout and "pool/pool.h: an edge upward" in r.stdout


def test_a_python_import_upward_is_caught(tmp_path):
    root = copy_tree(tmp_path)
    with open(root / "python" / "crew" / "_runtime.py", "a") as f:
        f.write("\ndef _late():\n    from . import _executor\n")
    r = run(root)
    assert r.returncode == 1
    assert "_runtime (runtime) imports _executor (public API)" in r.stdout
