#!/usr/bin/env bash
# Makes .venv-X.Y (if missing or built from another interpreter) and installs crew's dependencies from PyPI into it.
#
#   scripts/venv.sh X.Y EXTRAS     e.g. scripts/venv.sh 3.13 test,demo,bench
#
# The packages are the runtime dependencies and the named extras of
# pyproject.toml, at the versions pinned in constraints.txt. crew itself is
# installed by the Makefile (editable), since it is rebuilt far more often.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
v=${1:?usage: venv.sh X.Y EXTRAS}
extras=${2:-test}
venv=.venv-$v
py=$(scripts/find_python.sh "$v")

if [ -x "$venv/bin/python" ] && [ "$(readlink -f "$venv/.base")" != "$(readlink -f "$py")" ]; then
  rm -rf "$venv"  # made from another interpreter of the same version
fi
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
  ln -sfn "$py" "$venv/.base"
  echo "venv: $venv from $py"
fi

# the requirement strings, read from pyproject.toml (tomllib: 3.11+)
mapfile -t reqs < <("$venv/bin/python" - "$extras" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[1].split(",")):
    reqs += project["optional-dependencies"][extra]
print("\n".join(dict.fromkeys(reqs)))
PY
)
# (pip's noise about this machine's unused local indexes is filtered out)
log=$venv/pip-deps.log
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
     "${reqs[@]}" > "$log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$log" >&2
  echo "venv.sh: pip could not install crew's dependencies into $venv" >&2
  exit 1
fi
grep -v "is ignored: it is neither a file nor a directory" "$log" || true
"$venv/bin/python" - "${reqs[@]}" <<'PY'
# pip's output is filtered above: check that every requirement really is there
import sys
from importlib.metadata import PackageNotFoundError, version
import re
missing = []
for req in sys.argv[1:]:
    name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
    try:
        version(name)
    except PackageNotFoundError:
        missing.append(name)
if missing:
    sys.exit("venv.sh: not installed: " + ", ".join(missing))
PY
