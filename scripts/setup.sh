#!/usr/bin/env bash
# Idempotent Debian 12 set-up of every package crew needs to build, test and benchmark.
set -euo pipefail

PKGS=(
  build-essential gcc clang make pkg-config
  libasan8 libubsan1 libtsan2 liblsan0 libclang-rt-14-dev
  python3 python3-dev python3-venv python3-pip python3-pytest python3-numpy
  python3-cloudpickle python3-tqdm python3-psutil python3-joblib python3-pebble
  python3-matplotlib python3-setuptools python3-wheel
)

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
