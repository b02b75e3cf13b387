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


def _state_symbols(path):
    """Names of the writable data (data, bss) a shared object defines."""
    import subprocess as sp
    out = sp.run(["nm", "--defined-only", str(path)], capture_output=True, text=True,
                 check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "bBdD":
            names.add(parts[2].split(".")[0])   # a function's static: name.N
    return names


def test_no_libcrew_state_lives_twice_in_one_process():
    """libcrew is compiled once and linked into both extension modules; the
    linker takes into each only the objects it uses, so no piece of
    libcrew's state (the fork server's socket, the task registry, the
    shared objects' fork generation...) exists in both."""
    import shutil
    import crew._core
    import crew._shared
    if not shutil.which("nm"):
        import pytest
        pytest.skip("nm (binutils) is not installed")
    core = _state_symbols(crew._core.__file__)
    shared = _state_symbols(crew._shared.__file__)
    own = {"module_methods", "module_slots", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_",
           "__dso_handle", "__TMC_END__", "completed", "__data_start", "data_start",
           "__bss_start", "_edata", "_end", "__FRAME_END__"}
    # known and harmless: PyArg keyword tables (one per function, constant)
    # and crew__spin_ns's cache of figures each copy works out the same
    # (from the CPU count: the spin time and how many workers may spin)
    own |= {"kwlist", "cached", "spinners_max"}
    # the codec (_codec.c, compiled into both) keeps no state: its one
    # writable symbol is the PyMethodDef of pickle's buffer_callback, never
    # written after compilation (PyCFunction_New takes it non-const)
    own |= {"buffer_cb_def"}
    both = sorted(n for n in core & shared if n not in own and not n.startswith("__"))
    assert both == [], both
