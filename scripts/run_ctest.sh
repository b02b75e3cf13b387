#!/usr/bin/env bash
# run_ctest.sh — runs one C test binary with a time limit; on a hang, prints every thread's stack (it and its children) and fails.
#
#   scripts/run_ctest.sh SECONDS BINARY [ARGS...]
#
# A test that hangs would otherwise hold `make test` (and CI) until its own
# limit; this names the test and shows where each thread waits (gdb, when
# installed), then kills the test and its workers. Exit status: the test's,
# or 124 after a hang.
set -u
limit=$1
shift
"$@" &
pid=$!
sleep "$limit" &
timer=$!
wait -n "$pid" "$timer"
if kill -0 "$pid" 2>/dev/null; then
    echo "run_ctest: $* still running after ${limit} s: a hang; its threads:" >&2
    procs="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
    for p in $procs; do
        echo "--- pid $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" >&2
        if command -v gdb > /dev/null; then
            gdb -batch -p "$p" -ex "thread apply all bt" 2>&1 | grep -E '^(Thread|#)' >&2
        else
            cat "/proc/$p/task/"*/wchan 2>/dev/null >&2
        fi
    done
    kill -9 $procs 2>/dev/null
    wait "$pid" 2>/dev/null
    exit 124
fi
kill "$timer" 2>/dev/null
wait "$pid"
