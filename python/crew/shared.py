"""Shared state across processes: queues, pipes, arrays, a dict and locks.

Every object lives in its own crew memfd region (never a name in /dev/shm)
and is used at memory speed by every process that holds it. Give one to a
crew task (or a multiprocessing worker) as an argument, or return one from a
task: pickling sends only its 40-byte reference and the receiving process
opens the same object, whatever the start method (fork, spawn, forkserver).

    q = crew.Queue()
    d = crew.SharedDict()
    a = crew.SharedArray((1000, 1000), "f8")
    with crew.Executor() as ex:
        ex.submit(work, q, d, a)          # by reference, no copy

Lifetime. A process frees its handle when the object is garbage collected
(or on close()); the memory goes when the last process lets go or dies. A
process that pickles an object keeps it alive a little while (until another
process holds it, or KEEPALIVE seconds) so that a task argument dropped by the
caller right after submit can still be opened by the worker.
"""
import ast
import collections.abc
import os
import queue as _queue
import struct
import threading
import time
import weakref

from . import _shared
from ._runtime import CrewError
from ._shared import Handle

__all__ = [
    "Queue", "Pipe", "Connection", "SharedArray", "shared_array", "SharedDict", "Lock",
    "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier",
    "LockOwnerDiedError", "BrokenQueueError",
]

KEEPALIVE = 30.0  # seconds a pickled object stays held by the process that pickled it


class LockOwnerDiedError(CrewError):
    """The lock's previous holder died holding it. The caller holds the lock
    now (release it when done) and it works again; what it guarded may be
    half-written."""

    def __init__(self, msg, lock=None):
        super().__init__(msg)
        self.lock = lock


class BrokenQueueError(_queue.Empty, BrokenPipeError):
    """get() on an empty queue that can receive nothing more: it was shut
    down, or every other process that held it is gone (noticed within about
    100 ms). A queue.Empty and a BrokenPipeError: either except clause catches it."""


_shared.set_errors(_queue.Full, _queue.Empty, BrokenQueueError, LockOwnerDiedError)

# ------------------------------------------------------------ refs and cache

_REF = struct.Struct("<IIiiQQQ")  # kind, sub, owner_pid, fd, size, id(inode), dev
_cache = weakref.WeakValueDictionary()  # (kind, sub, dev, ino) -> this process's object
_strong = collections.OrderedDict()  # queues opened from a ref, most recent last (see below)
STRONG_QUEUES = 64   # a worker keeps at most this many queues it was given
_keep = {}     # id(handle) -> [handle, time last pickled, its opens count at the first, sends]
_keep_lock = threading.Lock()
_last_prune = [0.0]


def _ref_key(ref):
    kind, sub, _pid, _fd, _size, ino, dev = _REF.unpack(ref)
    return (kind, sub, dev, ino)


def _register(obj):
    _cache[obj._key()] = obj


def _prune(now, force=False):
    if not _keep or (not force and now - _last_prune[0] < 0.5 and len(_keep) < 64):
        return
    _last_prune[0] = now
    drop = []
    with _keep_lock:
        for k, e in list(_keep.items()):
            h, t, opens, sends = e
            # kept until as many receivers have opened it as it was sent to
            # (or KEEPALIVE): even ones that have let go again since, which the
            # holders table alone misses
            if h._closed or now - t > KEEPALIVE or h._opens() >= opens + sends:
                drop.append(_keep.pop(k))
    for h, _t, _o, _s in drop:
        if h.__dict__.get("_close_pending"):
            h._free()


def _sent(h):
    """Called when h is pickled: keep this process's handle a while."""
    now = time.monotonic()
    with _keep_lock:
        e = _keep.get(id(h))
        if e is None:
            _keep[id(h)] = [h, now, h._opens(), 1]
        else:                # sent again: one more receiver to wait for
            e[1] = now
            e[3] += 1
    _prune(now)


def _close(h):
    with _keep_lock:
        pending = id(h) in _keep
    if pending:
        h._close_pending = True  # freed once the receiver has it (or KEEPALIVE)
    else:
        h._free()


def flush_sent():
    """Drops every handle kept only because it was pickled (tests, shutdown)."""
    with _keep_lock:
        items = list(_keep.values())
        _keep.clear()
    for h, _t, _o, _s in items:
        if h.__dict__.get("_close_pending"):
            h._free()


def _rebuild(cls, ref, state):
    key = _ref_key(ref)
    obj = _cache.get(key)
    if obj is not None and not obj._closed and not obj.__dict__.get("_close_pending"):
        if key in _strong:
            _strong.move_to_end(key)
        return obj
    obj = cls.__new__(cls)
    obj._open(ref)
    obj._setstate(state)
    _cache[key] = obj
    if obj._kind == _shared.QUEUE:
        # a queue's peers are its holders: a worker keeps the queues it was
        # given, so that a consumer does not see "nobody left" between tasks;
        # the most recent STRONG_QUEUES of them, so that a long-lived worker
        # given thousands does not run out of descriptors
        _strong[key] = obj
        while len(_strong) > STRONG_QUEUES:
            _strong.popitem(last=False)
    _prune(time.monotonic())
    return obj


class _Shared(Handle):
    """Common part: pickling by reference, close, context."""

    def _state(self):
        return ()

    def _setstate(self, state):
        pass

    def __reduce__(self):
        ref = self._ref()
        _sent(self)
        return (_rebuild, (type(self), ref, self._state()))

    def close(self):
        """Releases this process's handle (other processes keep theirs)."""
        _strong.pop(None if self._closed else self._key(), None)
        _close(self)

    @property
    def closed(self):
        return self._closed or bool(self.__dict__.get("_close_pending"))

    def __repr__(self):
        state = "closed" if self._closed else f"kind={self._kind}"
        return f"<crew.{type(self).__name__} {state}>"


def _timeout(block, timeout):
    """threading/multiprocessing arguments -> seconds (< 0 forever)."""
    if not block:
        return 0.0
    if timeout is None or timeout < 0:
        return -1.0
    return float(timeout)


# --------------------------------------------------------------------- queue

class Queue(_Shared):
    """multiprocessing.Queue over a crew shared ring.

    Queue(maxsize=0, *, maxbytes=4 MiB): maxsize bounds the item count (0: no
    bound); maxbytes is the ring's size (a message may be up to half of it).
    bytes and bytearray items cross as they are; str, int and float by a
    short encoding; anything else pickled (protocol 5, numpy arrays' data out
    of band). put() copies the item into shared memory before it returns (no
    feeder thread).

    Errors: queue.Full / queue.Empty on timeout; get() raises
    BrokenQueueError (a queue.Empty and a BrokenPipeError) when the queue is
    empty and nothing more can come (shutdown(), or every other holder gone),
    instead of hanging.
    """

    def __init__(self, maxsize=0, *, maxbytes=4 << 20):
        self._create(_shared.QUEUE, max(0, int(maxsize)), int(maxbytes))
        self._maxsize = max(0, int(maxsize))
        _register(self)

    def _state(self):
        return (self._maxsize,)

    def _setstate(self, state):
        self._maxsize = state[0]

    put = Handle._q_put
    get = Handle._q_get
    put_nowait = Handle._q_put_nowait
    get_nowait = Handle._q_get_nowait
    put_many = Handle._q_put_many
    get_many = Handle._q_get_many

    def qsize(self):
        return self._q_qsize()

    def empty(self):
        return self._q_qsize() == 0

    def full(self):
        return self._maxsize > 0 and self._q_qsize() >= self._maxsize

    def shutdown(self):
        """Closes the queue for every holder: puts fail, gets drain what is
        left and then raise BrokenQueueError."""
        self._q_shutdown()

    def join_thread(self):
        """No-op (no feeder thread: put() has already written the item)."""

    def cancel_join_thread(self):
        """No-op (no feeder thread)."""


# ---------------------------------------------------------------------- pipe

class Connection(_Shared):
    """One end of crew.Pipe(): multiprocessing.connection.Connection's API.

    recv() raises EOFError once the other end has no holder left (closed, or
    its processes exited or died; noticed within about 100 ms).
    """

    readable = True
    writable = True

    def _state(self):
        return (self.readable, self.writable)

    def _setstate(self, state):
        self.readable, self.writable = state

    send = Handle._p_send
    recv = Handle._p_recv

    def send_bytes(self, buf, offset=0, size=None):
        if offset or size is not None:
            m = memoryview(buf).cast("B")
            end = len(m) if size is None else offset + size
            if offset < 0 or end > len(m) or end < offset:
                raise ValueError("offset/size out of range")
            buf = m[offset:end]
        self._p_send_bytes(buf)

    def recv_bytes(self, maxlength=None):
        b = self._p_recv_bytes()
        if maxlength is not None and len(b) > maxlength:
            raise OSError("bad message length")
        return b

    def recv_bytes_into(self, buf, offset=0):
        b = self._p_recv_bytes()
        m = memoryview(buf).cast("B")
        if offset + len(b) > len(m):
            raise ValueError("buffer too small")
        m[offset:offset + len(b)] = b
        return len(b)

    def poll(self, timeout=0.0):
        """True when a message (or EOF) is ready within timeout (None: wait)."""
        return self._p_poll(-1.0 if timeout is None else float(timeout))

    def fileno(self):
        raise OSError("a crew Connection has no file descriptor")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def Pipe(duplex=True, *, maxbytes=4 << 20):
    """Returns (conn1, conn2), like multiprocessing.Pipe(); with
    duplex=False conn1 only receives and conn2 only sends."""
    a = Connection.__new__(Connection)
    b = Connection.__new__(Connection)
    a._create_pipe(b, int(maxbytes))
    if not duplex:
        a.writable = False
        b.readable = False
    _register(a)
    _register(b)
    return a, b


# --------------------------------------------------------------------- array

# numpy is imported on first use of a SharedArray, not with crew: every
# process worker imports crew, and numpy would be most of that import's time
_np = None


def _numpy():
    global _np
    if _np is None:
        import numpy
        _np = numpy
    return _np


class _ArrayHandle(_Shared):
    """The region behind a SharedArray (its numpy base)."""


def _array_meta(dt, shape):
    from numpy.lib import format as _fmt
    return repr((_fmt.dtype_to_descr(dt), tuple(int(s) for s in shape)))


def _parse_meta(meta):
    from numpy.lib import format as _fmt
    descr, shape = ast.literal_eval(meta)
    return _fmt.descr_to_dtype(descr), tuple(shape)


_HDR_ALIGN = 64


def _new_handle(dt, shape):
    n = 1
    for s in shape:
        n *= int(s)
    nbytes = n * dt.itemsize
    meta = _array_meta(dt, shape)
    h = _ArrayHandle()
    if len(meta.encode()) <= 255:
        h._create(_shared.ARRAY, max(nbytes, 1), 0, meta)
    else:  # long structured dtypes: the description goes at the start of the data
        raw = meta.encode()
        off = (8 + len(raw) + _HDR_ALIGN - 1) // _HDR_ALIGN * _HDR_ALIGN
        h._create(_shared.ARRAY, off + max(nbytes, 1), 0, f"@{off}")
        m = memoryview(h)
        m[:8] = len(raw).to_bytes(8, "little")
        m[8:8 + len(raw)] = raw
        m.release()
    _register(h)
    return h


def _handle_layout(h):
    meta = h._a_meta()
    off = 0
    if meta.startswith("@"):
        off = int(meta[1:])
        m = memoryview(h)
        n = int.from_bytes(m[:8], "little")
        meta = bytes(m[8:8 + n]).decode()
        m.release()
    dt, shape = _parse_meta(meta)
    return dt, shape, off


def _array_from_handle(h, cls):
    dt, shape, off = _handle_layout(h)
    a = _numpy().ndarray(shape, dtype=dt, buffer=h, offset=off)
    return a.view(cls)


def _find_handle(a):
    b = a
    while b is not None:
        if isinstance(b, _ArrayHandle):
            return b
        if isinstance(b, memoryview):
            b = b.obj
        else:
            b = getattr(b, "base", None)
    return None


def _rebuild_array(ref, view):
    key = _ref_key(ref)
    h = _cache.get(key)
    if h is None or h._closed:
        h = _ArrayHandle.__new__(_ArrayHandle)
        h._open(ref)
        _cache[key] = h
        _prune(time.monotonic())
    cls = _shared_array_class()
    if view is None:
        return _array_from_handle(h, cls)
    dtype, shape, strides, offset = view
    return _numpy().ndarray(shape, dtype=dtype, buffer=h, offset=offset,
                            strides=strides).view(cls)


def _make_shared_array_class():
    try:
        _numpy()
    except ImportError:  # pragma: no cover - numpy comes from apt
        class SharedArray:
            def __new__(cls, *a, **k):
                raise ImportError("crew.SharedArray needs numpy")
        return SharedArray

    class SharedArray(_np.ndarray):
        """A numpy ndarray in crew shared memory.

        SharedArray(shape, dtype=float) makes a zeroed one;
        SharedArray.from_array(a) a copy of a. Any dtype without Python
        objects (structured ones too); C order. Pickling it (a task argument
        or result, a queue item) sends only its reference: the receiver sees
        the same memory. Views (slices) of it pickle by reference too;
        results of arithmetic on it are ordinary arrays. The memory goes when
        the last array on it, in every process, is gone.
        """

        def __new__(cls, shape, dtype=float):
            dt = _np.dtype(dtype)
            if dt.hasobject:
                raise TypeError("a SharedArray cannot hold Python objects (dtype=object)")
            if isinstance(shape, int):
                shape = (shape,)
            return _array_from_handle(_new_handle(dt, tuple(shape)), cls)

        @classmethod
        def from_array(cls, a):
            a = _np.asarray(a)
            out = cls(a.shape, a.dtype)
            out[...] = a
            return out

        def __array_wrap__(self, obj, context=None, *args):
            # ufunc results are new memory: plain arrays
            if _find_handle(obj) is None:
                return obj.view(_np.ndarray) if isinstance(obj, _np.ndarray) else obj
            return obj

        def __reduce_ex__(self, protocol):
            h = _find_handle(self)
            if h is None or h._closed:
                return self.view(_np.ndarray).__reduce_ex__(protocol)
            ref = h._ref()
            _sent(h)
            dt, shape, off = _handle_layout(h)
            addr, _size = h._a_addr()
            here = self.__array_interface__["data"][0] - addr
            if (here == off and self.dtype == dt and self.shape == shape
                    and self.flags.c_contiguous):
                return (_rebuild_array, (ref, None))
            return (_rebuild_array, (ref, (self.dtype, self.shape, self.strides, here)))

        def __reduce__(self):
            return self.__reduce_ex__(2)

        @property
        def shared_handle(self):
            return _find_handle(self)

    return SharedArray


_class_lock = threading.Lock()


def _shared_array_class():
    cls = globals().get("SharedArray")
    if cls is None:
        with _class_lock:     # one class, whichever thread comes first
            cls = globals().get("SharedArray")
            if cls is None:
                cls = _make_shared_array_class()
                cls.__module__, cls.__qualname__ = __name__, "SharedArray"  # pickled by name
                globals()["SharedArray"] = cls
    return cls


def __getattr__(name):   # crew.shared.SharedArray: made (numpy imported) on first use
    if name == "SharedArray":
        return _shared_array_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def shared_array(shape_or_array, dtype=None):
    """SharedArray(shape, dtype) or, given an array, SharedArray.from_array(it)."""
    cls = _shared_array_class()
    if isinstance(shape_or_array, (int, tuple, list)) and not (
            isinstance(shape_or_array, list) and dtype is None):
        return cls(shape_or_array, float if dtype is None else dtype)
    a = _numpy().asarray(shape_or_array, dtype=dtype)
    return cls.from_array(a)


# ---------------------------------------------------------------------- dict

class _DictLock:
    __slots__ = ("d", "timeout")

    def __init__(self, d, timeout):
        self.d, self.timeout = d, timeout

    def __enter__(self):
        rc = self.d._d_lock(-1.0 if self.timeout is None else float(self.timeout))
        if rc == _shared.EAGAIN:
            raise TimeoutError("SharedDict lock not taken within the timeout")
        if rc not in (0, _shared.EOWNERDEAD):  # a dead writer: the dict was repaired
            raise OSError(f"SharedDict lock: {_shared.strerror(rc)}")
        return self.d

    def __exit__(self, *exc):
        self.d._d_unlock()


class SharedDict(_Shared, collections.abc.MutableMapping):
    """A dict in shared memory, for picklable keys and values.

    SharedDict(data=None, *, max_items=65536, max_bytes=64 MiB) (capacity is
    fixed; memory is only used as written). Every single operation is atomic
    and readers take no lock; `with d.lock(): ...` makes a compound one
    (setdefault and pop use it). A writer killed at any point leaves either
    the old value or the new one.

    Keys are compared by their encoded bytes: bytes, str and int (64-bit) by
    value, anything else by its pickle. So use simple key types: 1 and 1.0
    and True are three different keys, and two equal tuples are the same key
    only when they pickle the same (they do for tuples of simple types).
    keys(), values() and items() return lists (snapshots).
    """

    def __init__(self, data=None, *, max_items=0, max_bytes=0):
        self._create(_shared.DICT, int(max_items), int(max_bytes))
        _register(self)
        if data is not None:
            self.update(data)

    __getitem__ = Handle._d_getitem
    __setitem__ = Handle._d_setitem
    __contains__ = Handle._d_contains
    get = Handle._d_get

    def __delitem__(self, key):
        if not self._d_delete(key):
            raise KeyError(key)

    def __len__(self):
        return self._d_len()

    def __iter__(self):
        return iter(self._d_items(0))

    def keys(self):
        return self._d_items(0)

    def values(self):
        return self._d_items(1)

    def items(self):
        return self._d_items(2)

    def clear(self):
        self._d_clear()

    def lock(self, timeout=None):
        """The dict's writer lock, for compound operations: `with d.lock():`.
        Readers never wait for it."""
        return _DictLock(self, timeout)

    _MISSING = object()

    def setdefault(self, key, default=None):
        with self.lock():
            v = self.get(key, self._MISSING)
            if v is self._MISSING:
                self[key] = v = default
            return v

    def pop(self, key, default=_MISSING):
        with self.lock():
            v = self.get(key, self._MISSING)
            if v is self._MISSING:
                if default is self._MISSING:
                    raise KeyError(key)
                return default
            self._d_delete(key)
            return v

    def popitem(self):
        with self.lock():
            for k in self._d_items(0):
                v = self.get(k, self._MISSING)
                if v is not self._MISSING:
                    self._d_delete(k)
                    return k, v
        raise KeyError("popitem(): dictionary is empty")

    def update(self, other=(), **kw):
        with self.lock():
            if hasattr(other, "keys"):
                for k in other.keys():
                    self[k] = other[k]
            else:
                for k, v in other:
                    self[k] = v
            for k, v in kw.items():
                self[k] = v

    def copy(self):
        return dict(self._d_items(2))

    def __eq__(self, other):
        if isinstance(other, collections.abc.Mapping):
            return dict(self._d_items(2)) == dict(other.items())
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        if self._closed:
            return "<crew.SharedDict closed>"
        return f"crew.SharedDict({dict(self._d_items(2))!r})"


# --------------------------------------------------------------------- locks

class Lock(_Shared):
    """multiprocessing.Lock across processes (a robust process-shared mutex).

    If its holder dies holding it, the next acquire() raises
    LockOwnerDiedError: that caller holds the lock then and must release it.
    Only the holder may release it (RuntimeError otherwise).
    """

    _recursive = 0

    def __init__(self):
        self._create(_shared.LOCK, self._recursive)
        _register(self)

    def acquire(self, block=True, timeout=None):
        t = _timeout(block, timeout)
        rc = self._lock_acquire(t)
        if rc == 0:
            return True
        if rc == _shared.EAGAIN:
            return False
        if rc == _shared.EOWNERDEAD:
            raise LockOwnerDiedError(
                f"the previous holder of this {type(self).__name__} died holding it; you hold "
                "it now (release it when done): what it guarded may be half-written", self)
        if rc == _shared.EDEADLK:
            if t >= 0:
                if t > 0:
                    time.sleep(t)
                return False
            raise RuntimeError("deadlock: this thread already holds this Lock")
        raise OSError(f"lock acquire: {_shared.strerror(rc)}")

    def release(self):
        rc = self._lock_release()
        if rc:
            raise RuntimeError("release of a lock this thread does not hold")

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class RLock(Lock):
    """multiprocessing.RLock: its holder may acquire it again (and releases as often)."""

    _recursive = 1


class Semaphore(_Shared):
    """multiprocessing.Semaphore across processes."""

    _bounded = False

    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._create(_shared.SEMAPHORE, int(value), int(value) if self._bounded else 0)
        _register(self)

    def acquire(self, block=True, timeout=None):
        rc = self._sem_acquire(_timeout(block, timeout))
        if rc == 0:
            return True
        if rc == _shared.EAGAIN:
            return False
        raise OSError(f"semaphore acquire: {_shared.strerror(rc)}")

    def release(self, n=1):
        rc = self._sem_release(int(n))
        if rc == _shared.EOVERFLOW:
            raise ValueError("Semaphore released too many times")
        if rc:
            raise OSError(f"semaphore release: {_shared.strerror(rc)}")

    def get_value(self):
        return self._sem_value()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class BoundedSemaphore(Semaphore):
    """A Semaphore that cannot be released past its initial value (ValueError)."""

    _bounded = True


class Event(_Shared):
    """multiprocessing.Event across processes."""

    def __init__(self):
        self._create(_shared.EVENT)
        _register(self)

    def is_set(self):
        return bool(self._event_op(0))

    def set(self):
        self._event_op(1)

    def clear(self):
        self._event_op(2)

    def wait(self, timeout=None):
        return self._event_wait(-1.0 if timeout is None else max(0.0, float(timeout))) == 0


class Condition(_Shared):
    """multiprocessing.Condition across processes, over a crew Lock or RLock
    (default: a new RLock; wait() releases an RLock once, so hold it once)."""

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        if not isinstance(lock, Lock):
            raise TypeError("crew.Condition needs a crew.Lock or crew.RLock")
        self._create(_shared.CONDITION)
        self._lock = lock
        _register(self)

    def _state(self):
        return (self._lock,)

    def _setstate(self, state):
        self._lock = state[0]

    def acquire(self, block=True, timeout=None):
        return self._lock.acquire(block, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        self._lock.release()

    def wait(self, timeout=None):
        rc = self._cond_wait(self._lock, -1.0 if timeout is None else max(0.0, float(timeout)))
        if rc == 0:
            return True
        if rc == _shared.EAGAIN:
            return False
        if rc == _shared.EOWNERDEAD:
            raise LockOwnerDiedError("the lock's previous holder died holding it; you hold it now",
                                     self._lock)
        if rc == _shared.EPERM:
            raise RuntimeError("cannot wait on un-acquired lock")
        raise OSError(f"condition wait: {_shared.strerror(rc)}")

    def wait_for(self, predicate, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.wait(left)
            else:
                self.wait()
            result = predicate()
        return result

    def notify(self, n=1):
        self._cond_notify(int(n))

    def notify_all(self):
        self._cond_notify(-1)


class Barrier(_Shared):
    """multiprocessing.Barrier across processes. wait() returns the arrival
    index (0 .. parties-1); a timeout or abort() breaks it
    (threading.BrokenBarrierError) until reset(). action, if given, is called
    by the caller that gets index 0, after the others are released. A party
    that dies never arrives: give the others a timeout."""

    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._create(_shared.BARRIER, int(parties))
        self._action, self._timeout_default = action, timeout
        _register(self)

    def _state(self):
        return (self._action, self._timeout_default)

    def _setstate(self, state):
        self._action, self._timeout_default = state

    def wait(self, timeout=None):
        if timeout is None:
            timeout = self._timeout_default
        rc = self._barrier_wait(-1.0 if timeout is None else max(0.0, float(timeout)))
        if rc >= 0:
            if rc == 0 and self._action is not None:
                self._action()
            return rc
        raise threading.BrokenBarrierError

    def abort(self):
        self._barrier_op(1)

    def reset(self):
        self._barrier_op(2)

    @property
    def parties(self):
        return self._barrier_op(0)
