#!/usr/bin/env bash
# Idempotent set-up of the Debian packages crew needs to build, test and benchmark (Debian 12 or 13).
#
# System tools only: compilers, sanitizer runtimes, clang, a headless browser
# (chromium: the demo's --html report is opened by a test), and for each Python
# crew supports that Debian ships (3.11 on Debian 12, 3.13 on Debian 13) its
# headers, venv module and test suite (CPython's own concurrent.futures tests).
# Python packages come from PyPI into the per-interpreter venvs (Makefile).
set -euo pipefail

PKGS=(
  build-essential gcc clang make pkg-config util-linux gdb
  libasan8 libubsan1 libtsan2 liblsan0 libclang-rt-dev
  python3 python3-dev python3-venv python3-pip
  chromium fonts-dejavu-core
)
# Debian's own builds of the interpreters crew supports, where this release has them
for v in 3.11 3.12 3.13; do
  if apt-cache show "python$v-dev" >/dev/null 2>&1; then
    PKGS+=("python$v-dev" "python$v-venv" "libpython$v-testsuite")
  fi
done

# Fast path: ask dpkg which packages are fully installed; no apt involved.
declare -A ok=()
while read -r name want flag state; do
  if [ "$flag $state" = "ok installed" ]; then ok[$name]=1; fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null || true)
missing=()
for p in "${PKGS[@]}"; do
  [ -n "${ok[$p]:-}" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages already installed, nothing to do"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "setup: missing ${missing[*]} and not root (no sudo available)" >&2; exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: installed ${#missing[@]} package(s): ${missing[*]}"
