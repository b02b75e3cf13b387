"""Module-level process state and tasks for test_shared_process_state.py
(importable in every worker: each worker has its own copy of these globals)."""
import logging
import os
import random
import threading

LOCK = threading.Lock()
STATE = {}
LOGGER_NAME = "crew.test.state"
LOG = logging.getLogger(LOGGER_NAME)


class Counter:
    """A plain object: data, by value unless it is a module global."""

    def __init__(self):
        self.n = 0

    def bump(self, k=1):
        self.n += k
        return self.n


COUNTER = Counter()          # a module-level instance of a plain class
# RUNTIME_ONLY: bound by a test at run time, so absent from a worker's import


def env(name):
    return os.environ.get(name)


def lock_locked():
    return LOCK.locked()


def logger_level(name=LOGGER_NAME):
    return logging.getLogger(name).level


def state():
    return dict(STATE)


def counter():
    return COUNTER.n


def rand():
    return random.random()


def call(fn, *args):
    """Calls fn in the worker: fn crossed as an argument."""
    return fn(*args)


def pid():
    return os.getpid()


class LockHolder:
    """Holds a lock: it cannot be pickled, and an instance made in a test is
    no module global, so it can cross to a worker only by fork inheritance."""

    def __init__(self):
        self.lock = threading.Lock()

    def install(self, value):
        STATE["installed"] = (value, self.lock.acquire(blocking=False))
