"""Entry point of spawned process workers and of the fork server.

A worker sees the parent's sys.path and can import the functions of the
parent's ``__main__`` script: the parent's preparation data (as
multiprocessing's spawn makes it) travels in argv and is applied with
``multiprocessing.spawn.prepare``.
"""
import logging
import os
import pickle
import sys

_CREW_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = ("import sys; sys.path.insert(0, %r); from crew._worker import main; main()"
        % _CREW_DIR)


def prelude():
    """The parent's preparation data, pickled and hex-encoded."""
    from multiprocessing import spawn
    d = spawn.get_preparation_data("crew-worker")
    d.pop("authkey", None)
    main_path = d.get("init_main_from_path")
    if main_path is not None and not os.path.isfile(main_path):
        del d["init_main_from_path"]   # e.g. "<stdin>": functions go by value instead
    d["crew_log_level"] = logging.getLogger().getEffectiveLevel()
    return pickle.dumps(d, 4).hex()


def apply_prelude(hexdata):
    d = pickle.loads(bytes.fromhex(hexdata))
    level = d.pop("crew_log_level", None)
    from multiprocessing import spawn
    spawn.prepare(d)
    return level


def spawn_argv(prelude_hex):
    return [sys.executable, "-c", BOOT, "spawn", prelude_hex]


def main():
    argv = sys.argv[:]   # prepare() replaces sys.argv with the parent's
    mode = argv[1]
    if mode == "spawn":
        fd, slot = int(argv[3]), int(argv[4])
        level = apply_prelude(argv[2])
        from . import _runtime, _core
        _runtime.process_worker_init(level)
        try:
            _core.worker_run(fd, slot)
        finally:
            _runtime.process_worker_exit()
        os._exit(0)
    elif mode == "forkserver":
        from . import _forkserver
        _forkserver.serve(argv[2], int(argv[3]), argv[4])
    else:
        sys.exit(f"crew._worker: unknown mode {mode!r}")
