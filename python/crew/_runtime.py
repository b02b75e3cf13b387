"""Both sides of a task's journey: framing, (cloud)pickling with out-of-band
buffers, and the runner that crew's one C task ("crew.py") calls in a worker.

A process payload (and its result) is one frame of crew's codec, the
format every Python object in crew shared memory has (queue items and
shared dict entries too): defined once, in C, in _codec.h, and reached here
through _core.encode/_core.decode. A 'P' frame is a 16-byte header (kind,
flags, the number of out-of-band buffers, the pickle's length), a table of
(offset, length), the pickle (protocol 5), and the out-of-band buffers,
64-byte aligned. The payload lives in the pool's shared arena; the worker
unpickles with memoryviews of it as the out-of-band buffers, so a large
numpy array or bytes-like object is copied once (into shared memory) and
read in place. Thread pools skip pickling: the payload is a token b"T" +
key into a dict.

What crosses by value and what by reference: a bound method whose object is
a global of an importable module (``os.environ.__setitem__``, ``random.seed``,
``mymodule.LOCK.acquire``) crosses by reference, as module, name and method,
so that the worker calls it on its own object of that name, as it would a
module-level function; every other object crosses by value (see
_method_ref). Under fork, the initializer is inherited and not pickled at all.
"""
import collections
import copyreg
import importlib
import io
import itertools
import logging
import operator
import os
import pickle
import reprlib
import signal
import sys
import threading
import traceback
import types
from concurrent.futures import BrokenExecutor

from . import _core

OOB_MIN = _core.OOB_MIN   # buffers from this size go out-of-band (_codec.h)
MAX_OOB = _core.MAX_OOB   # at most this many out-of-band buffers per frame
_encode = _core.encode    # (obj, flags, dumps, oob) -> parts of one frame

# F_CHUNK: a chunk of map items, each a tuple of arguments; F_CHUNK1: each
# item is the one argument (map over one iterable: no tuple per item)
F_CALL, F_CHUNK, F_INIT, F_CHUNK1 = 0, 1, 2, 3
CHUNKS = (F_CHUNK, F_CHUNK1)

IN_WORKER = False     # true in a process worker
BOOTSTRAPPING = False  # a spawned worker or fork server imports the parent's main script

try:
    import cloudpickle
except ImportError:  # pragma: no cover - Debian ships python3-cloudpickle
    cloudpickle = None

# ------------------------------------------------------------ errors --


class CrewError(Exception):
    """Base class of crew's own errors."""


class WorkerCrashedError(CrewError):
    """The worker running the task died (signal or exit status in the message).
    Only that worker's task fails; the executor replaces the worker."""


class TaskTimeoutError(CrewError, TimeoutError):
    """The task ran past its timeout; its process worker was killed and replaced."""


class InitializerError(CrewError, BrokenExecutor):
    """A worker initializer raised. As with concurrent.futures' pools, the
    executor is then broken (a ``concurrent.futures.BrokenExecutor``):
    submit() raises this, and queued tasks fail with it. (crew.Pool keeps
    serving: each task given to such a worker fails with it.)"""


class SerializationError(CrewError, pickle.PicklingError):
    """An object cannot be sent to a process worker (raised at submit)."""


class RemoteTraceback(Exception):
    """Carries the worker's formatted traceback as the ``__cause__`` of a task's exception."""

    def __init__(self, tb):
        self.tb = tb

    def __str__(self):
        return self.tb


class RemoteError(CrewError):
    """A task raised an exception that could not be pickled back; its repr is kept."""


# ---------------------------------------------------------- big bytes --


def _rebuild_bytes(buf, kind):
    return bytes(buf) if kind == 0 else bytearray(buf)


class _Big:
    """Sends a large bytes/bytearray out-of-band (rebuilt with one copy)."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __reduce_ex__(self, protocol):
        return _rebuild_bytes, (pickle.PickleBuffer(self.obj),
                                0 if isinstance(self.obj, bytes) else 1)


def _wrap_big(seq):
    if not any(type(a) in (bytes, bytearray) and len(a) >= OOB_MIN for a in seq):
        return seq
    return tuple(_Big(a) if type(a) in (bytes, bytearray) and len(a) >= OOB_MIN else a
                 for a in seq)


# ------------------------------------------------ by value, by reference --

# The object of a bound method decides how the method crosses. A global of an
# importable module (its process state: os.environ, random's generator, a
# module's lock, cache or registry) crosses by reference: the worker calls the
# method on its own object of that name, exactly as a module-level function
# sent by name works on the worker's own globals. Sent by value, the method
# would act on a copy the parent never sees (or, for a lock, not cross at
# all). Any other object is data and crosses by value, as pickle sends it.
#
# "A global of an importable module": found by identity in the globals of a
# module of sys.modules (an index built when the set of modules changes, the
# object's own type's module looked at every time), or in the parent's
# __main__ script under a name its top-level code binds when the worker
# imports it (a name bound under `if __name__ == "__main__":` does not exist
# in a spawn or forkserver worker: such an object crosses by value). Loggers
# already cross by name (logging.getLogger). Immutable objects, classes and
# modules are left to pickle.

_METHOD_TYPES = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)
# objects that are never looked up: immutable (a copy is the same thing), or
# already pickled by reference
_NOT_LOOKED_UP = frozenset((
    str, bytes, int, float, complex, bool, type(None), tuple, frozenset, range, slice,
    types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.MethodWrapperType, types.CodeType, types.WrapperDescriptorType,
    types.MethodDescriptorType, types.ClassMethodDescriptorType, types.GetSetDescriptorType,
    types.MemberDescriptorType, staticmethod, classmethod, property))

_index = {}              # id(object) -> (module name, global name)
_index_modules = -1      # len(sys.modules) when _index was built
_found = {}              # id(object) -> (module name, global name): recent answers


def _global_of(where):
    mod = sys.modules.get(where[0])
    return None if mod is None else getattr(mod, "__dict__", {}).get(where[1])


def _build_index():
    """Maps every module global (not immutable, not a class or function) to
    its module and name; an object held by several modules keeps the last
    one imported (usually the one that made it)."""
    global _index, _index_modules
    n = len(sys.modules)
    main = sys.modules.get("__main__")
    idx = {}
    for name, mod in list(sys.modules.items()):
        if mod is None or mod is main or name in ("__main__", "__mp_main__"):
            continue
        d = getattr(mod, "__dict__", None)
        if type(d) is not dict:
            continue
        for k, v in list(d.items()):
            if (type(v) in _NOT_LOOKED_UP or isinstance(v, type) or type(k) is not str
                    or k[:2] == "__" == k[-2:]):
                continue
            idx[id(v)] = (name, k)
    _index, _index_modules = idx, n


def _find_in(name, obj, names=None):
    """The global name of obj in module `name` (one of `names` if given), or
    None. The scans run at C speed: nothing is looked up one by one unless
    obj is there."""
    d = getattr(sys.modules.get(name), "__dict__", None)
    if type(d) is not dict or not any(map(operator.is_, d.values(), itertools.repeat(obj))):
        return None
    if names is not None:
        if not any(map(operator.is_, map(d.get, names), itertools.repeat(obj))):
            return None
        return next(k for k in names if d.get(k) is obj)
    return next((k for k, v in list(d.items())
                 if v is obj and type(k) is str and k[:2] != "__"), None)


_main_names_cache = (None, None, frozenset())   # (main module, its file, names)


def _main_names():
    """The global names that the parent's __main__ script binds when a
    worker imports it (as multiprocessing's spawn does: under a name other
    than "__main__", so its `if __name__ == "__main__":` block does not
    run); empty for a __main__ that no worker can import."""
    global _main_names_cache
    m = sys.modules.get("__main__")
    f = getattr(m, "__file__", None)
    mod, file, names = _main_names_cache
    if mod is m and file == f:
        return names
    names = frozenset()
    if m is not None and not _main_is_interactive() and f:
        try:
            import ast
            with open(f, "rb") as fh:
                tree = ast.parse(fh.read(), f)
            out = set()
            _bound_names(tree.body, out)
            names = frozenset(out)
        except Exception:  # not Python source (a zip app, a .pyc): nothing by name
            pass
    _main_names_cache = (m, f, names)
    return names


def _is_main_guard(test):
    import ast
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


def _bound_names(stmts, out):
    """Adds to out the names that module-level statements bind, outside
    `if __name__ == "__main__":` blocks and function or class bodies."""
    import ast
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
              ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    for st in stmts:
        if isinstance(st, ast.If) and _is_main_guard(st.test):
            _bound_names(st.orelse, out)
            continue
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(st.name)
            continue
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            out.update(a.asname or a.name.split(".")[0] for a in st.names if a.name != "*")
            continue
        for field, value in ast.iter_fields(st):
            items = value if isinstance(value, list) else [value]
            if items and all(isinstance(x, ast.stmt) for x in items):
                _bound_names(items, out)      # a body: may hold a guard of its own
                continue
            for x in items:
                if isinstance(x, (ast.ExceptHandler, ast.match_case)):
                    if getattr(x, "name", None):
                        out.add(x.name)
                    if isinstance(x, ast.match_case):
                        for n in ast.walk(x.pattern):
                            for a in ("name", "rest"):
                                if isinstance(getattr(n, a, None), str):
                                    out.add(getattr(n, a))
                    _bound_names(x.body, out)
                elif isinstance(x, ast.AST):
                    todo = [x]
                    while todo:
                        n = todo.pop()
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                            out.add(n.id)
                        if not isinstance(n, scopes):
                            todo.extend(ast.iter_child_nodes(n))


def _module_global(obj):
    """(module name, global name) of an object that is a global of an
    importable module (or of the parent's __main__ script, under a name its
    top-level code binds), else None. Cheap when it is not: a look in the
    object's type's module, in an index and in __main__."""
    i = id(obj)
    where = _found.get(i)
    if where is not None and _global_of(where) is obj:
        return where
    where = None
    # the object's own type's module first: its home (os.environ in os, not in
    # a module that imported it), and a singleton bound there after import
    tm = getattr(type(obj), "__module__", None)
    if type(tm) is str and tm != "__main__":
        k = _find_in(tm, obj)
        if k is not None:
            where = (tm, k)
    if where is None:
        if len(sys.modules) != _index_modules:
            _build_index()
        where = _index.get(i)
        if where is not None and _global_of(where) is not obj:
            where = None
    if where is None:
        k = _find_in("__main__", obj, _main_names())
        if k is not None:
            where = ("__main__", k)
    if where is not None:
        if len(_found) > 4096:
            _found.clear()
        _found[i] = where
    return where


def _method_by_ref(module, name, method):
    """Worker side of a method sent by reference: the worker's own object."""
    mod = sys.modules.get(module)
    if mod is None:
        mod = importlib.import_module(module)
    try:
        obj = getattr(mod, name)
    except AttributeError:
        raise AttributeError(
            f"crew sent the method {module}.{name}.{method} by reference (the object is a "
            f"global of module {module!r} in the parent) but in worker {os.getpid()} that "
            f"module has no global {name!r}: bind it when the module is imported, or create it "
            f"in the executor's initializer") from None
    return getattr(obj, method)


def _method_ref(m):
    """The by-reference reduction of a bound method, or None (by value)."""
    obj = m.__self__
    if type(obj) in _NOT_LOOKED_UP or isinstance(obj, (type, logging.Logger)):
        return None     # immutable, a module's function, a class's method; a logger goes by name
    where = _module_global(obj)
    if where is None:
        return None
    return (_method_by_ref, (where[0], where[1], m.__name__))


def _reduce_method(m):
    r = _method_ref(m)
    return r if r is not None else m.__reduce_ex__(5)


_BY_REF = {t: _reduce_method for t in _METHOD_TYPES}


class _PlainPickler(pickle.Pickler):
    """pickle, bound methods of module globals by reference. The table is made
    once: a view over copyreg's, whose later registrations still apply."""
    dispatch_table = collections.ChainMap(_BY_REF, copyreg.dispatch_table)


def _plain_dumps(obj, protocol, buffer_callback=None):
    """pickle.dumps(obj, protocol), bound methods of module globals by reference."""
    f = io.BytesIO()
    _PlainPickler(f, protocol, buffer_callback=buffer_callback).dump(obj)
    return f.getvalue()


if cloudpickle is not None:
    _cloud_table = cloudpickle.Pickler.dispatch_table

    def _reduce_method_cloud(m):
        r = _method_ref(m)
        if r is not None:
            return r
        f = _cloud_table.get(type(m))
        return f(m) if f is not None else m.__reduce_ex__(5)

    class _CloudPickler(cloudpickle.Pickler):
        """cloudpickle, bound methods of module globals by reference."""
        dispatch_table = collections.ChainMap({t: _reduce_method_cloud for t in _METHOD_TYPES},
                                              _cloud_table)

    def _cloud_dumps(obj, protocol, buffer_callback=None):
        f = io.BytesIO()
        _CloudPickler(f, protocol, buffer_callback=buffer_callback).dump(obj)
        return f.getvalue()


# ------------------------------------------------------------ framing --


_interactive_cache = (None, None, False)  # (main module, its __file__, answer)


def _main_is_interactive():
    """Whether __main__ cannot be imported by a worker (a REPL, stdin, -c).
    Asked on every submit: the file check is cached per (module, file)."""
    global _interactive_cache
    m = sys.modules.get("__main__")
    if m is None or getattr(m, "__spec__", None) is not None:
        return m is None
    f = getattr(m, "__file__", None)
    mod, file, answer = _interactive_cache
    if mod is m and file == f:
        return answer
    answer = f is None or not os.path.isfile(f)
    _interactive_cache = (m, f, answer)
    return answer


def _by_value_needed(fn):
    """Whether fn must cross by value (as lambdas do): a function of the
    parent's __main__ that a worker cannot find by name there, because the
    main module is interactive (a REPL, stdin, -c) or because its script
    binds no such name when a worker imports it (defined inside
    `if __name__ == "__main__":`, or in a function): a worker imports the
    script under another name, so that block never runs there."""
    if getattr(fn, "__module__", None) != "__main__":
        return False
    if _main_is_interactive():
        return True
    name = getattr(fn, "__qualname__", None)
    return type(name) is str and "." not in name and name not in _main_names()


def encode(obj, flags=0, prefer_cloud=False):
    """Pickles obj into one frame of crew's codec (flags in its header);
    returns the list of its parts (header first). Buffers from OOB_MIN bytes
    go out of band; what plain pickle cannot send, cloudpickle tries."""
    if not prefer_cloud:
        try:
            return _encode(obj, flags, _plain_dumps, True)
        except Exception:
            if cloudpickle is None:
                raise
    return _encode(obj, flags, _cloud_dumps, True)


def decode(mv):
    """(flags, object) of one frame; out-of-band buffers are views of mv (no
    copy). ValueError when the frame breaks the format."""
    return _core.decode(mv)


_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 3, 60, 60


def _describe(obj):
    """A short repr for an error message: bounded in depth and length, and
    never an error itself (a list nested 100,000 deep, a __repr__ that
    raises)."""
    try:
        r = _short.repr(obj)
    except Exception:
        r = f"<{type(obj).__qualname__} object>"
    return r if len(r) <= 80 else r[:77] + "..."


_both_types = {}


def _serialization_error(msg, cause):
    """A SerializationError that is also an instance of the type of `cause`
    (the error pickling raised), so that code catching that type (a
    RuntimeError from a __reduce__, say) still catches it, as it would from
    multiprocessing; a plain SerializationError where the two cannot be
    combined (incompatible layouts)."""
    t = type(cause)
    if issubclass(SerializationError, t) or not issubclass(t, Exception):
        return SerializationError(msg)
    cls = _both_types.get(t)
    if cls is None:
        try:
            cls = type("SerializationError", (SerializationError, t),
                       {"__module__": SerializationError.__module__,
                        "__doc__": SerializationError.__doc__,
                        "__init__": Exception.__init__, "__str__": Exception.__str__})
            cls(msg)   # constructible with one message, as raised below
        except TypeError:
            cls = SerializationError
        _both_types[t] = cls
    return cls(msg)


# a file object pickles by crew's cloudpickle path as a copy of its contents
# (cloudpickle reads a text file into a StringIO): refused instead, as
# multiprocessing refuses it
_FILE_TYPES = (io.IOBase,)


def _is_open_file(a):
    """An open file (in-memory BytesIO/StringIO excepted, which pickle as
    data), or tempfile's wrapper around one."""
    if isinstance(a, (io.BytesIO, io.StringIO)):
        return False
    if isinstance(a, _FILE_TYPES):
        return True
    return type(a).__module__ == "tempfile" and isinstance(getattr(a, "file", None), _FILE_TYPES)


def _refuse_files(args, kwargs):
    for i, a in enumerate(args):
        if _is_open_file(a):
            return f"argument {i}", a
    for k, v in (kwargs or {}).items():
        if _is_open_file(v):
            return f"keyword argument {k!r}", v
    return None


# arguments that never carry an out-of-band buffer: no buffer callback needed
_PLAIN = frozenset((int, float, str, bool, type(None), complex))
_dumps = pickle.dumps


def _by_name(fn, _f=types.FunctionType, _b=types.BuiltinFunctionType, _m=types.ModuleType):
    """Whether plain pickle sends fn by name and nothing else: a function, or
    a builtin of a module (a builtin method, e.g. LOCK.acquire, is not)."""
    t = type(fn)
    return t is _f or (t is _b and type(fn.__self__) is _m)


def encode_call(fn, args, kwargs, flags):
    """Encodes a call for a process worker; raises SerializationError naming
    the object that cannot cross, the reason and the fix."""
    if not kwargs and flags == F_CALL and _by_name(fn):
        # the common case: plain arguments, a function found by name
        for a in args:
            if type(a) not in _PLAIN:
                break
        else:
            if not _by_value_needed(fn):
                try:
                    return _encode((fn, args, kwargs), flags, _dumps, False)
                except Exception:
                    pass
    if flags in (F_CALL, F_INIT):
        f = _refuse_files(args, kwargs)
        if f is not None:
            name = getattr(f[1], "name", None)
            raise _serialization_error(
                f"crew cannot send {f[0]} ({_describe(f[1])}) to a process worker: an open "
                f"file does not cross to another process (a copy of its contents would, "
                f"silently). Fix: pass its path"
                + (f" ({name!r})" if isinstance(name, str) else "")
                + " and open it in the task, or use kind='threads'.",
                TypeError(f"cannot pickle {type(f[1]).__name__!r} object"))
    if flags == F_CALL:  # a chunk's items are wrapped by no one: sent in band
        args = _wrap_big(args)
    try:
        return encode((fn, args, kwargs), flags, prefer_cloud=_by_value_needed(fn))
    except Exception as e:
        # a global bound since the index was built (not in its type's module)
        # may be what could not cross by value: look again, once
        _build_index()
        try:
            return encode((fn, args, kwargs), flags, prefer_cloud=_by_value_needed(fn))
        except Exception as e2:
            e = e2
        # find the culprit for the message
        label = "the initializer" if flags == F_INIT else "the function"
        culprit, where = (fn, label), None
        items = [(label, fn)]
        if flags in CHUNKS:
            items += [(f"item {i}", a) for i, a in enumerate(args)]
        else:
            argument = "initializer argument" if flags == F_INIT else "argument"
            items += [(f"{argument} {i}", a) for i, a in enumerate(args)]
            items += [(f"keyword argument {k!r}", v) for k, v in (kwargs or {}).items()]
        for label, obj in items:
            try:
                encode(obj, prefer_cloud=obj is fn and _by_value_needed(fn))
            except Exception as e2:
                culprit, where, e = (obj, label), label, e2
                break
        obj, method = culprit[0], ""
        if type(obj) in _METHOD_TYPES and _method_ref(obj) is None:
            # a method whose object is no module global: that object would cross by value
            method = (f" (a method of {_describe(obj.__self__)}, which is not a global of an "
                      f"importable module, so it would have to cross by value)")
        init = (", or use start_method='fork' (its workers inherit the initializer)"
                if flags == F_INIT else "")
        raise _serialization_error(
            f"crew cannot send {where or 'the call'} ({_describe(obj)}) to a process "
            f"worker{method}: {type(e).__name__}: {str(e).rstrip('.')}. Fix: pass only "
            f"picklable objects "
            f"(module-level functions and classes, plain data; lambdas and closures work "
            f"through cloudpickle; a method of a global of an importable module crosses by "
            f"reference, each worker calling it on its own object of that name), create the "
            f"resource (lock, file, connection, generator) inside the task or in the "
            f"executor's initializer{init}, or use kind='threads'.", e) from e


# -------------------------------------------------------- thread tokens --

_tokens = {}            # key -> (flags, fn, args, kwargs, future), then outcome (thread pools)
# finish_thread_task(future, outcome) -> bool: settles a thread task's future
# on its worker (set by _executor, the layer above: _executor._finish_here)
finish_thread_task = None
_counter = itertools.count(1)


def token(key, kind=b"T"):
    return kind + key.to_bytes(8, "little")


# ------------------------------------------------------------- logging --


class _Collector(logging.Handler):
    """Root handler of a process worker: keeps records to ship with the result."""

    def __init__(self):
        super().__init__(logging.NOTSET)
        self.records = []

    def emit(self, record):
        try:
            d = {}
            for k, v in record.__dict__.items():
                d[k] = v if v is None or isinstance(v, (str, int, float, bool)) else repr(v)
            d["msg"] = record.getMessage()
            d["args"] = None
            if record.exc_info:
                d["exc_text"] = logging.Formatter().formatException(record.exc_info)
            d["exc_info"] = None
            d["worker_pid"] = os.getpid()
            self.records.append(d)
        except Exception:  # pragma: no cover
            self.handleError(record)

    def take(self):
        r, self.records = self.records, []
        return r


_collector = _Collector()


def replay_logs(records):
    """Parent side: hands worker records to the parent's handlers."""
    for d in records:
        rec = logging.makeLogRecord(d)
        logging.getLogger(rec.name).handle(rec)


def _log_init_failure():
    """What concurrent.futures' workers log when the initializer raises
    (called in the except block: the traceback goes with the record)."""
    try:
        logging.getLogger("concurrent.futures").critical("Exception in initializer:",
                                                         exc_info=True)
    except Exception:  # pragma: no cover - a broken handler must not hide the failure
        pass


def _run_initializer(fn, args, setup=None):
    """Runs a worker's initializer (fn may be None) after applying crew's
    settings for the worker: (True, ()), or (False, its traceback), which
    fails the worker's tasks. Thread pools run it in the parent process."""
    try:
        if setup:
            _setup_worker(**setup)
        if fn is not None:
            fn(*args)
    except BaseException as e:
        _log_init_failure()
        if IN_WORKER:
            _collector.take()   # no task result will carry them
            _flush_std()
        return (False, "".join(traceback.format_exception(type(e), e, e.__traceback__)))
    if IN_WORKER:
        _flush_std()
    return (True, ())


def _setup_worker(authkey=None, cwd=None, log_level=None):
    """Applies the settings an init message carries (see Executor): the
    parent's multiprocessing authkey, working directory and root log level."""
    if authkey is not None:
        import multiprocessing
        multiprocessing.current_process().authkey = authkey
    if cwd is not None:
        os.chdir(cwd)
    if log_level is not None:
        logging.getLogger().setLevel(log_level)


def _flush_std():
    for s in (sys.stdout, sys.stderr):
        try:
            if s is not None:
                s.flush()
        except Exception:
            pass


def process_worker_init():
    """First Python steps of every process worker (whatever the start method;
    the root log level comes with the init message, or by fork)."""
    global IN_WORKER
    IN_WORKER = True
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    except (ValueError, OSError):
        pass
    logging.getLogger().handlers[:] = [_collector]
    _collector.records = []


def process_worker_exit():
    _flush_std()


# -------------------------------------------------------------- running --


def _error_outcome(e):
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return (1, e, tb)


def _call(fn, args, kwargs):
    try:
        return (0, fn(*args, **(kwargs or {})))
    except BaseException as e:  # noqa: B902 - crossing back to the caller
        return _error_outcome(e)


def _run_chunk(fn, args, star=True):
    """Runs a chunk of map items. The outcome's value is (values, errors):
    errors is None when every item succeeded (no tuple per item to build,
    pickle and unpickle), else a dict from an item's index to its
    (1, exception, traceback) outcome (its value is None)."""
    vals = []
    errs = None
    if not hasattr(args, "__len__"):
        args = list(args)
    n = len(args)
    it = iter(args)
    while True:
        try:
            # map/starmap run the calls at C speed; list.extend keeps what
            # they produced before an item raised, and `it` is past that item
            vals.extend(itertools.starmap(fn, it) if star else map(fn, it))
            if len(vals) == n:
                return (0, (vals, errs))
            # short: the next item raised StopIteration, which map() took
            # for its own end (and swallowed); that item fails, the rest run
            e = RuntimeError("the function raised StopIteration for this item: a "
                             "StopIteration cannot leave a map's call (it would end the "
                             "map); raise another exception")
        except BaseException as exc:  # noqa: B902 - crossing back to the caller
            e = exc
        if errs is None:
            errs = {}
        errs[len(vals)] = _error_outcome(e)
        e = None
        vals.append(None)


def take_values(res):
    """An iterator over a chunk's values in order; it raises the first failed
    item's exception (with the worker's traceback) where that item stands.
    It hands each value over as it goes: the chunk's list (emptied: read a
    chunk's result once) lets go of a value once it is yielded, so an
    iterator over a map keeps no result it has already given. The values
    come out at C speed (_core.drain, _core.flatten)."""
    vals, err = values_upto_error(res)
    if err is None:
        return _core.drain(vals)
    return _core.flatten(_then_raise(vals, err))


def flatten_primed(gen):
    """_core.flatten over gen, a generator of value lists whose first yield
    is None: gen runs up to it now, so that an iterator closed or dropped
    unread still runs gen's finally (which cancels the map's tasks)."""
    next(gen)
    return _core.flatten(gen)


def _then_raise(vals, err):
    yield vals
    raise err


def values_upto_error(res):
    """A chunk's values up to its first failed item, and that item's
    exception (with the worker's traceback), or None when none failed: what
    a map that stops at the first error yields from the chunk, then raises.
    For _core.flatten, which hands the values over at C speed."""
    vals, errs = res
    if errs is None:
        return vals, None
    i = min(errs)
    del vals[i:]
    return vals, exception_of(errs[i])


def values_and_errors(res):
    """For _core.flatten, a chunk in pieces: its values between failed items
    (lists) and each failed item's exception as (exception,), which flatten
    raises where it stands before going on (multiprocessing's imap)."""
    vals, errs = res
    if errs is None:
        yield vals
        return
    start = 0
    for i in sorted(errs):
        yield vals[start:i]
        yield (exception_of(errs.pop(i)),)   # (never a StopIteration: _run_chunk)
        start = i + 1
    yield vals[start:]
    vals.clear()


_MpRemoteTraceback = None


def _remote_traceback(text):
    """A crew.RemoteTraceback that is also a multiprocessing.pool.RemoteTraceback,
    so code written for multiprocessing.Pool finds the cause it looks for.
    multiprocessing.pool (35 ms of imports) is loaded on the first failed task
    only, to keep it out of every worker's start-up."""
    global _MpRemoteTraceback
    if _MpRemoteTraceback is None:
        import multiprocessing.pool

        class _MpRemoteTraceback(RemoteTraceback, multiprocessing.pool.RemoteTraceback):
            """crew.RemoteTraceback and multiprocessing.pool.RemoteTraceback at once."""
        _MpRemoteTraceback.__module__ = __name__   # pickled by name, as a module global
        globals()["_MpRemoteTraceback"] = _MpRemoteTraceback
    return _MpRemoteTraceback(text)


def exception_of(out):
    """The exception of a failed outcome, the worker's traceback attached."""
    exc, tb = out[1], out[2]
    if tb:
        try:
            exc.__cause__ = _remote_traceback('\n"""\n' + tb + '"""')
        except Exception:  # noqa: BLE001 - e.g. a frozen dataclass exception:
            pass           # it is raised without the worker's traceback
    return exc


def _run_call(flags, fn, args, kwargs):
    """Runs one call or a chunk; returns the outcome."""
    if flags in CHUNKS:
        return _run_chunk(fn, args, flags == F_CHUNK)
    return _call(fn, args, kwargs)


class Carrier(tuple):
    """A task's result that carries another call's outcome first, plain
    figures after it (kind="auto"'s measured runs): if it cannot be pickled,
    that outcome is fixed as the call's own would be (an unpicklable value
    fails that call, or that item of a chunk), not the whole result.
    ``chunk``: whether the carried outcome is a chunk's."""

    def __new__(cls, items, chunk=False):
        self = super().__new__(cls, items)
        self.chunk = chunk
        return self

    def __reduce__(self):
        return (tuple, (tuple(self),))   # crosses as a plain tuple


def _picklable_outcome(out, logs, chunk=False):
    """The outcome with logs, made safe to pickle (an unpicklable value or
    exception becomes an error that says so)."""
    msg = out + (logs,)
    if not logs and out[0] == 0 and type(out[1]) in _PLAIN:
        # the common case: no buffers to place, nothing to fix
        return _encode(msg, 0, _dumps, False)
    try:
        return encode(msg)
    except Exception as e:
        if out[0] == 0 and type(out[1]) is Carrier:
            inner = out[1]
            fixed = _fixed_outcome(inner[0], inner.chunk, e)
            return encode((0, (fixed,) + tuple(inner[1:]), logs))
        return encode(_fixed_outcome(out, chunk, e) + (logs,))


def _fixed_outcome(out, chunk, e):
    """An outcome that encode() failed on (e), made safe to pickle: a value
    becomes a SerializationError that says so, an exception a RemoteError
    with its repr, and a chunk's items are fixed one by one."""
    if out[0] == 0 and not chunk:
        err = SerializationError(
            f"crew cannot send the task's result ({_describe(out[1])}) back: "
            f"{type(e).__name__}: {str(e).rstrip('.')}. Fix: return only picklable values (plain data, "
            f"module-level classes; numpy arrays cross by shared memory); turn an open "
            f"resource (file, socket, lock, generator) into data before returning it, or "
            f"use kind='threads'.")
        return (1, err, "")
    if out[0] == 1:
        return (1, RemoteError(repr(out[1])), out[2])
    # a chunk: fix item by item
    vals, errs = out[1]
    vals, errs = list(vals), dict(errs or {})
    for i, v in enumerate(vals):
        o = errs.get(i)
        try:
            pickle.dumps(v if o is None else o, 5)
        except Exception as e2:
            what = _describe(v if o is None else o[1])
            vals[i] = None
            errs[i] = (1, RemoteError(f"unpicklable outcome {what}: {e2}"), "")
    return (0, (vals, errs or None))


_tokens_lock = threading.Lock()
_RUNNING = object()  # a thread task's token while it runs


def take_token(key):
    """The outcome a thread task left under key (removed)."""
    with _tokens_lock:
        return _tokens.pop(key)


def drop_token(key):
    """Forgets key: its call, its outcome, or that it runs (a thread task
    that finishes after its future was settled then keeps nothing)."""
    if key:
        with _tokens_lock:
            _tokens.pop(key, None)


def run(mv):
    """The runner of the C task: returns (ok, parts) for the result."""
    kind = mv[0]
    # b"T" thread call; b"K" initializer of a thread pool, or of a fork pool
    # (whose workers inherit _tokens: it crosses as fork inherits it, unpickled)
    if kind == 0x54 or kind == 0x4B:
        key = int.from_bytes(mv[1:9], "little")
        if kind == 0x4B:
            fn, args = _tokens[key]
            return _run_initializer(fn, args)
        with _tokens_lock:
            flags, fn, args, kwargs, fut = _tokens[key]
            _tokens[key] = _RUNNING
        out = _run_call(flags, fn, args, kwargs)
        del fn, args, kwargs
        # the future is settled here, in this GIL hold, as ThreadPoolExecutor
        # does; unless its completion has begun elsewhere (a timeout), which
        # then settles it, reading the outcome left under key
        done = False
        try:
            done = finish_thread_task(fut, out)
        finally:
            with _tokens_lock:
                if key in _tokens:  # else its future was settled without it (timeout)
                    if done:
                        del _tokens[key]
                    else:
                        _tokens[key] = out
        return (True, (bytes(mv[:9]),))
    fn = args = kwargs = None
    try:
        flags, (fn, args, kwargs) = decode(mv)
    except BaseException as e:
        out = _error_outcome(e)
        flags = None
        if mv[1] == F_INIT:  # an initializer the worker cannot unpickle has failed
            return (False, out[2])
    if flags == F_INIT:  # kwargs: crew's settings for the worker; fn: the initializer or None
        return _run_initializer(fn, args, kwargs or {})
    if flags is not None:
        out = _run_call(flags, fn, args, kwargs)
    del fn, args, kwargs
    parts = _picklable_outcome(out, _collector.take() if IN_WORKER else [], flags in CHUNKS)
    _flush_std()
    return (True, parts)


_core.set_runner(run)
