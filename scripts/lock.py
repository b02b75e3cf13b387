#!/usr/bin/env python3
"""Writes constraints.txt: the versions `make test` installs, pinned for each interpreter.

Run by hand (`make lock`) when a dependency in pyproject.toml changes: for each
interpreter it installs crew with every extra into a scratch venv from PyPI,
reads `pip freeze`, and writes one pin per package; a package whose version
differs between interpreters gets one line per interpreter with a
python_version marker.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = "test,demo,bench"


def freeze(python):
    with tempfile.TemporaryDirectory() as d:
        venv = Path(d) / "v"
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
        subprocess.run(pip + ["install", "-q", f"{ROOT}[{EXTRAS}]"], check=True)
        out = subprocess.run(pip + ["freeze", "--all", "--exclude", "crew", "--exclude", "pip"], check=True,
                             capture_output=True, text=True).stdout
        ver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    pins = {}
    for line in out.splitlines():
        if "==" in line:
            name, v = line.split("==", 1)
            pins[name.lower()] = v
    return ver, pins


def main(argv):
    if not argv:
        sys.exit("usage: lock.py PYTHON [PYTHON ...]  (interpreters to lock for)")
    missing = [p[len("MISSING-"):] for p in argv if p.startswith("MISSING-")]
    if missing:
        sys.exit(f"lock.py: no Python {', '.join(missing)} here: constraints.txt must pin every "
                 f"interpreter (scripts/find_python.sh {missing[0]} says how to get it)")
    frozen = dict(freeze(p) for p in argv)
    names = sorted({n for pins in frozen.values() for n in pins})
    lines = ["# Versions the tests ran against, per interpreter; written by scripts/lock.py",
             "# (make lock). Used as pip's constraints by the Makefile's venvs."]
    for n in names:
        vers = {py: pins.get(n) for py, pins in frozen.items()}
        if len(set(vers.values())) == 1:
            lines.append(f"{n}=={next(iter(vers.values()))}")
        else:
            for py, v in sorted(vers.items()):
                if v:
                    lines.append(f'{n}=={v}; python_version == "{py}"')
    (ROOT / "constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"constraints.txt: {len(names)} packages for {', '.join(sorted(frozen))}")


if __name__ == "__main__":
    main(sys.argv[1:])
