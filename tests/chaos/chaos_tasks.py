"""chaos_tasks.py — the tasks the chaos suite runs: each logs its start and end (task id, pid) so the suite can tell what ran where, and how often."""
import os
import time


def _log(path, what, i):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{what} {i} {os.getpid()}\n".encode())  # one small write: atomic
    finally:
        os.close(fd)


def task(log, i, kind, payload=b""):
    """kind: fast, slow (20-120 ms), large (payload round trip), raise, hang."""
    _log(log, "S", i)
    if kind == "slow":
        time.sleep(0.02 + (i % 6) * 0.02)
    elif kind == "raise":
        _log(log, "E", i)
        raise ValueError(f"task {i} raises")
    elif kind == "hang":
        time.sleep(0.6)
    _log(log, "E", i)
    return i, len(payload), payload[-8:]
