"""Entry point of spawned process workers and of the fork server.

A worker sees the parent's sys.path and can import the functions of the
parent's ``__main__`` script: the parent's preparation data (as
multiprocessing's spawn makes it) travels in a sealed memfd whose number is
the only start-up state in argv (so a long command line cannot overflow
exec's limit, and ``ps`` shows none of the parent's arguments), and is
applied with ``multiprocessing.spawn.prepare``.
"""
import fcntl
import logging
import os
import pickle
import sys

_CREW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = ("import sys; sys.path.insert(0, %r); from crew._worker import main; main()"
        % _CREW_DIR)


def preparation():
    """The parent's preparation data (a dict), as multiprocessing's spawn makes it."""
    from multiprocessing import spawn
    d = spawn.get_preparation_data("crew-worker")
    d.pop("authkey", None)
    main_path = d.get("init_main_from_path")
    if main_path is not None and not os.path.isfile(main_path):
        del d["init_main_from_path"]   # e.g. "<stdin>": functions go by value instead
    d["crew_log_level"] = logging.getLogger().getEffectiveLevel()
    return d


def prelude_fd(prep):
    """A sealed, close-on-exec memfd holding prep pickled (the caller closes it)."""
    data = pickle.dumps(prep, 4)
    flags = os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0)
    fd = os.memfd_create("crew-prelude", flags)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        seals = sum(getattr(fcntl, n, 0) for n in
                    ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE"))
        if seals and hasattr(fcntl, "F_ADD_SEALS"):
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)   # what a worker reads cannot change
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_prelude(fd):
    """Reads and closes the prelude memfd fd: the preparation data."""
    try:
        size = os.fstat(fd).st_size
        chunks, off = [], 0
        while off < size:
            b = os.pread(fd, size - off, off)
            if not b:
                break
            chunks.append(b)
            off += len(b)
    finally:
        os.close(fd)
    return pickle.loads(b"".join(chunks))


def apply_prelude(prep):
    """Applies the parent's preparation data here; returns its root log level."""
    prep = dict(prep)
    level = prep.pop("crew_log_level", None)
    from multiprocessing import spawn
    spawn.prepare(prep)
    return level


def spawn_argv():
    """A spawned worker's command line; the launcher appends the prelude's fd,
    the pool's region fd and the slot."""
    return [sys.executable, "-c", BOOT, "spawn"]


def main():
    argv = sys.argv[:]   # prepare() replaces sys.argv with the parent's
    mode = argv[1]
    if mode == "spawn":
        pfd, fd, slot = int(argv[2]), int(argv[3]), int(argv[4])
        level = apply_prelude(read_prelude(pfd))
        from . import _runtime, _core
        _runtime.process_worker_init(level)
        try:
            _core.worker_run(fd, slot)
        finally:
            _runtime.process_worker_exit()
        os._exit(0)
    elif mode == "forkserver":
        from . import _forkserver
        _forkserver.serve(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit(f"crew._worker: unknown mode {mode!r}")
