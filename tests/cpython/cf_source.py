"""Finds and loads CPython's own concurrent.futures tests (never copied here).

Where they are looked for, in this order:

1. the running interpreter's ``test`` package (``test.test_concurrent_futures``:
   a package from 3.12 on, one module before);
2. ``/usr/lib/python3.X/test/`` for the running 3.X (Debian's
   ``libpython3.X-testsuite``), when the interpreter is not Debian's own;
3. the test package of the nearest other interpreter on this machine (pyenv's
   and the system's), loaded by file path while the running interpreter's own
   ``test.support`` stays in use. Equally near ones: the newer first; one
   that cannot be imported with this ``test.support`` is passed over.

A test module loaded by path is made importable under the name ``crew_cf_src``
(a symlink in a temporary folder put on ``sys.path``): process workers find
the test functions by module name, so they must be able to import it too.
"""
import atexit
import glob
import importlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile

NAME = "test_concurrent_futures"
ALIAS = "crew_cf_src"
# the submodules of the package layout (3.12+) that hold the families run here
SUBMODULES = ("util", "executor", "test_wait", "test_as_completed", "test_init",
              "test_process_pool")


class Source:
    """Where the tests come from: ``origin`` (a path), ``why`` (one line),
    ``layout`` ("package" or "module"), ``own`` (imported as
    test.test_concurrent_futures, else by path), and ``modules``: the loaded
    modules (one for the single-file layout)."""

    def __init__(self, origin, why, modules, layout, own=False):
        self.origin, self.why, self.modules, self.layout = origin, why, modules, layout
        self.own = own

    def find(self, name):
        """The object called name in the loaded test modules (None: absent)."""
        for m in self.modules:
            if name in vars(m):
                return vars(m)[name]
        return None

    def spec(self):
        """A string that load() turns back into this source (for a child)."""
        return "own" if self.own else f"{self.layout}:{self.origin}"


def load(spec, why=""):
    """The Source that spec() described, imported again (in another process)."""
    if spec == "own":
        origin, mods, layout = _import_own()
        return Source(origin, why, mods, layout, own=True)
    layout, path = spec.split(":", 1)
    return Source(path, why, _import_by_path(path, layout), layout)


def _at(test_dir):
    """The tests in a folder ``.../test``: (path, layout) or None."""
    pkg = os.path.join(test_dir, NAME)
    if os.path.isfile(os.path.join(pkg, "__init__.py")):
        return pkg, "package"
    mod = pkg + ".py"
    if os.path.isfile(mod):
        return mod, "module"
    return None


def _import_own():
    if importlib.util.find_spec("test") is None:
        return None
    spec = importlib.util.find_spec("test." + NAME)
    if spec is None:
        return None
    top = importlib.import_module("test." + NAME)
    if spec.submodule_search_locations:
        mods = [importlib.import_module(f"test.{NAME}.{s}") for s in SUBMODULES]
        return os.path.dirname(spec.origin), mods, "package"
    return spec.origin, [top], "module"


_alias_dir = None


def _import_by_path(path, layout):
    """Imports the tests at path as ALIAS (a symlink on sys.path)."""
    global _alias_dir
    if _alias_dir is None:
        _alias_dir = tempfile.mkdtemp(prefix="crew-cf-src-")
        atexit.register(shutil.rmtree, _alias_dir, True)
        sys.path.append(_alias_dir)
    link = os.path.join(_alias_dir, ALIAS if layout == "package" else ALIAS + ".py")
    for old in (os.path.join(_alias_dir, ALIAS), os.path.join(_alias_dir, ALIAS + ".py")):
        if os.path.lexists(old):
            os.unlink(old)
    os.symlink(path, link)
    for k in [k for k in sys.modules if k == ALIAS or k.startswith(ALIAS + ".")]:
        del sys.modules[k]
    importlib.invalidate_caches()
    top = importlib.import_module(ALIAS)
    if layout == "package":
        return [importlib.import_module(f"{ALIAS}.{s}") for s in SUBMODULES]
    return [top]


def _minor(path):
    m = re.search(r"python3\.(\d+)", path)
    return int(m.group(1)) if m else None


def candidates():
    """Other interpreters' test folders on this machine: [(minor, test dir)],
    nearest to the running interpreter first (ties: the newer first)."""
    roots = ["/usr/lib", "/usr/local/lib"]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    roots += sorted(glob.glob(os.path.join(pyenv, "versions", "*", "lib")))
    own = os.path.realpath(os.path.dirname(os.__file__))
    found, seen = [], set()
    for r in roots:
        for d in sorted(glob.glob(os.path.join(r, "python3.*", "test"))):
            real = os.path.realpath(d)
            if real in seen or os.path.dirname(real) == own:
                continue
            seen.add(real)
            minor = _minor(d)
            if minor is not None and _at(d):
                found.append((minor, d))
    me = sys.version_info.minor
    found.sort(key=lambda c: (abs(c[0] - me), -c[0]))
    return found


def locate(override=None):
    """Loads the tests; returns (Source or None, a list of lines saying what
    was tried and why)."""
    notes = []
    me = "%d.%d" % sys.version_info[:2]
    if override:
        path = os.path.abspath(override)
        hit = _at(path)   # a folder .../test
        if hit is None and os.path.isfile(os.path.join(path, "__init__.py")):
            hit = (path, "package")
        elif hit is None and os.path.isfile(path) and path.endswith(".py"):
            hit = (path, "module")
        if hit is None:
            notes.append(f"--source {override}: no {NAME} there")
            return None, notes
        try:
            mods = _import_by_path(*hit)
        except Exception as e:  # noqa: BLE001 - e.g. names this test.support lacks
            notes.append(f"{hit[0]} does not import with this Python's test.support: "
                         f"{type(e).__name__}: {e}")
            return None, notes
        return Source(hit[0], "given with --source", mods, hit[1]), notes
    try:
        own = _import_own()
    except Exception as e:  # noqa: BLE001 - say why, then look further
        own = None
        notes.append(f"this interpreter's test.{NAME} does not import: {type(e).__name__}: {e}")
    if own:
        return Source(own[0], f"the running Python {me}'s own test package", own[1], own[2],
                      own=True), notes
    notes.append(f"the running Python {me}'s test package has no {NAME}")
    deb = f"/usr/lib/python{me}/test"
    hit = _at(deb)
    if hit:
        try:
            mods = _import_by_path(*hit)
            return Source(hit[0], f"Debian's libpython{me}-testsuite (same version {me})",
                          mods, hit[1]), notes
        except Exception as e:  # noqa: BLE001
            notes.append(f"{hit[0]} does not import: {type(e).__name__}: {e}")
    else:
        hint = (f" (apt-get install libpython{me}-testsuite)"
                if os.path.isdir(f"/usr/lib/python{me}") else "")
        notes.append(f"{deb} has no {NAME}{hint}")
    for minor, d in candidates():
        path, layout = _at(d)
        try:
            mods = _import_by_path(path, layout)
        except Exception as e:  # noqa: BLE001 - e.g. names this test.support lacks
            notes.append(f"{path} (3.{minor}) does not import with this Python's "
                         f"test.support: {type(e).__name__}: {e}")
            continue
        why = (f"the nearest other interpreter's test package (3.{minor}; this is {me}), "
               f"loaded by path with this Python's own test.support")
        return Source(path, why, mods, layout), notes
    notes.append("no other interpreter on this machine has them either")
    return None, notes
