#!/usr/bin/env bash
# Prints the path of a Python X.Y interpreter that can build crew (headers, venv), or says how to get one.
#
# Looks at Debian's own build first (/usr/bin/pythonX.Y: its test suite comes
# from apt), then /usr/local, then pyenv's builds (newest patch release first).
set -euo pipefail
v=${1:?usage: find_python.sh X.Y}
root=${PYENV_ROOT:-$HOME/.pyenv}
candidates=("/usr/bin/python$v" "/usr/local/bin/python$v")
if [ -d "$root/versions" ]; then
  while read -r d; do candidates+=("$d/bin/python$v"); done \
    < <(ls -d "$root/versions/$v".* 2>/dev/null | sort -V -r)
fi
for py in "${candidates[@]}"; do
  [ -x "$py" ] || continue
  if "$py" - <<'PY' 2>/dev/null; then echo "$py"; exit 0; fi
import ensurepip, os, sys, sysconfig, venv
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
done
echo "find_python.sh: no Python $v with its headers and venv module here (looked at: ${candidates[*]})." >&2
echo "  On Debian: apt-get install python$v-dev python$v-venv (Debian 13 ships 3.13, Debian 12 ships 3.11);" >&2
echo "  otherwise: pyenv install $v.  To test fewer interpreters: make test PY='3.11 3.13'." >&2
exit 1
