#!/usr/bin/env python3
"""check_layers.py — fails on an upward edge between crew's layers (C includes under src/, Python imports under python/crew/).

C: each folder of src/ is a layer; a file may include headers of its own
layer and of the layers it stands on (LOWER below), plus the public
include/crew.h. Every internal include names its folder ("base/sync.h"), so
an edge is visible where it is written.

Python: the extension modules, the process-side runtime, the public API and
the tools (demo, bench, CLI) are layers in that order; a module may import
its own layer and those below. Modules not named here are public API.

Usage: scripts/check_layers.py [ROOT]; exit status 1 with one line per
upward edge, 0 when there is none.
"""
import ast
import pathlib
import re
import sys

# C: layer -> the layers it may include (besides itself)
C_LOWER = {
    "base": set(),                                   # futex, clock, memfd, cpus, errors
    "transport": {"base"},                           # rings, arena, a pool's region layout
    "shared": {"base"},                              # shared objects (queues, locks, dict)
    "worker": {"base", "transport"},                 # the worker loop, the task registry
    "launch": {"base", "transport", "worker"},       # the launcher seam and its launchers
    "pool": {"base", "transport", "worker", "launch"},  # submit, dispatch, futures, supervision
}

# Python: module -> layer rank (higher may import lower, never the reverse)
PY_RANKS = {"_core": 0, "_shared": 0,
            "_runtime": 1, "_worker": 1,
            "_cli": 3, "__main__": 3}
PY_PUBLIC = 2
PY_NAMES = {0: "extension", 1: "runtime", 2: "public API", 3: "tools"}


def c_edges(root):
    bad = []
    src = root / "src"
    for path in sorted(src.glob("*/*.[ch]")):
        layer = path.parent.name
        if layer not in C_LOWER:
            bad.append(f"{path.relative_to(root)}: folder {layer!r} is not a known layer "
                       f"(scripts/check_layers.py: C_LOWER)")
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            if inc == "crew.h":
                continue
            if "/" not in inc:
                bad.append(f"{path.relative_to(root)}:{n}: include \"{inc}\" without its layer's "
                           f"folder")
                continue
            to = inc.split("/", 1)[0]
            if to != layer and to not in C_LOWER[layer]:
                bad.append(f"{path.relative_to(root)}:{n}: {layer} includes {inc}: an edge "
                           f"{'upward' if to in C_LOWER else 'to an unknown layer'}")
    return bad


def py_module_rank(name):
    return PY_RANKS.get(name.split(".", 1)[0], PY_PUBLIC)


def py_edges(root):
    bad = []
    pkg = root / "python" / "crew"
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).with_suffix("")
        me = ".".join(rel.parts)
        if me.endswith("__init__"):
            me = me[: -len(".__init__")] if "." in me else "__init__"
        rank = 2 if me == "__init__" else py_module_rank(me)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
                    mod = ".".join(base + ([node.module] if node.module else []))
                    if node.module:
                        targets.append(mod)
                    else:
                        targets += [".".join(base + [a.name]) for a in node.names]
                elif node.module and (node.module == "crew" or node.module.startswith("crew.")):
                    mod = node.module[len("crew."):] if node.module != "crew" else ""
                    if mod:
                        targets.append(mod)
                    else:
                        targets += [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                targets += [a.name[len("crew."):] for a in node.names if a.name.startswith("crew.")]
            for t in targets:
                if not t:
                    continue
                r = py_module_rank(t)
                if r > rank:
                    bad.append(f"python/crew/{path.relative_to(pkg)}:{node.lineno}: {me} "
                               f"({PY_NAMES[rank]}) imports {t} ({PY_NAMES[r]}): an edge upward")
    return bad


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parent.parent)
    bad = c_edges(root) + py_edges(root)
    for b in bad:
        print(b)
    if bad:
        print(f"check_layers: {len(bad)} upward edge(s); the layers are drawn in "
              f"docs/architecture.md")
        return 1
    print("check_layers: no upward edge (C: src/*/, Python: python/crew/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
