"""The bootstrap of spawned process workers and of fork servers: this
interpreter, exec'd by libcrew's launchers (spawn, fork server) as
``python -c BOOT``.

A worker sees the parent's sys.path and can import the functions of the
parent's ``__main__`` script: the parent's preparation data (as
multiprocessing's spawn makes it) travels in a sealed memfd whose number is
in ``$CREW_PRELUDE`` (no start-up state in argv: a long command line cannot
overflow exec's limit, and ``ps`` shows none of the parent's arguments), and
is applied with ``multiprocessing.spawn.prepare``. Then libcrew takes over
(``_core.become``): the process serves as the fork server, or runs the
worker, as ``$CREW_FORKSERVER`` or ``$CREW_WORKER`` says.
"""
import fcntl
import os
import pickle
import sys

_CREW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = ("import sys; sys.path.insert(0, %r); from crew._worker import main; main()"
        % _CREW_DIR)


def boot_argv():
    """What libcrew execs for a spawned worker or a fork server."""
    return [sys.executable, "-c", BOOT]


def preparation():
    """The parent's preparation data (a dict), as multiprocessing's spawn
    makes it, less what a worker gets from its pool instead (the working
    directory, see Executor): pools that differ only there share a fork server."""
    from multiprocessing import spawn
    d = spawn.get_preparation_data("crew-worker")
    d.pop("authkey", None)
    d.pop("dir", None)
    main_path = d.get("init_main_from_path")
    if main_path is not None and not os.path.isfile(main_path):
        del d["init_main_from_path"]   # e.g. "<stdin>": functions go by value instead
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
    """Applies the parent's preparation data here. While it imports the
    parent's main script, no process pool may start (the main guard)."""
    from multiprocessing import spawn
    from . import _runtime
    _runtime.BOOTSTRAPPING = True
    try:
        spawn.prepare(dict(prep))
    finally:
        _runtime.BOOTSTRAPPING = False


def main():
    env = os.environ    # crew's variables leave it: no process of ours inherits them
    pfd, server, worker = (env.pop(k, None) for k in
                           ("CREW_PRELUDE", "CREW_FORKSERVER", "CREW_WORKER"))
    if server is None and worker is None:
        sys.exit("crew._worker: started by no crew launcher")
    if pfd is not None:
        apply_prelude(read_prelude(int(pfd)))
    from . import _core
    _core.become(server, worker)   # never returns
