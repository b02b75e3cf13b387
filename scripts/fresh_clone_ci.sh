#!/usr/bin/env bash
# Run CI on a fresh clone of HEAD (with ../shared linked beside it) to catch untracked-file mistakes.
set -euo pipefail
top=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
d=$(mktemp -d) && git clone -q "$top" "$d/p" && ln -s "$top/../shared" "$d/shared" \
  && (cd "$d/p" && CI=true bash .ci/run)
echo "fresh-clone CI passed in $d"
