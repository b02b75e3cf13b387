"""CPython's concurrent.futures test families, rebuilt to run on crew.Executor.

CPython makes each test class from a family (WaitTests, ExecutorTest, ...),
a mixin that picks the executor (ProcessPoolForkMixin, ...) and BaseTestCase.
Here the mixin is CPython's own, with two things swapped:

- ``executor_type``: :class:`CrewProcessPool`, crew.Executor behind
  ProcessPoolExecutor's constructor (``mp_context=`` gives the start method),
  or for the method "auto" :class:`CrewAutoPool`, crew.Executor(kind="auto")
  behind it (with forkserver's mixin);
- ``get_context()``: the multiprocessing context of that start method, except
  that ``Queue()`` makes a ``crew.Queue``. multiprocessing lets its own queues
  reach only processes that it starts itself ("through inheritance"); crew's
  workers receive them pickled, as they would any other argument.

Tests that read ProcessPoolExecutor's private internals are skipped, each
with its one-line reason (SKIPS; one test, for fork only, because it expects
a refusal that crew does not make; one, for auto only, because it watches
a copy of an argument that a thread worker does not make).
"""
import unittest

import crew

START_METHODS = ("fork", "spawn", "forkserver")
# "auto": the same families on crew.Executor(kind="auto") (thread and process
# workers in one pool, each function placed by measurement), its process
# workers started as forkserver's
AUTO = "auto"

# family name -> the names of its test classes' mixins, per start method
MIXINS = {"fork": "ProcessPoolForkMixin", "spawn": "ProcessPoolSpawnMixin",
          "forkserver": "ProcessPoolForkserverMixin"}

# the families run here, as CPython's tests name them
FAMILIES = ("WaitTests", "AsCompletedTests", "ProcessPoolExecutorTest", "InitializerMixin",
            "FailingInitializerMixin")
# the runner's shards of a start method, run side by side (mostly sleeps:
# the Wait family alone sleeps about 17 s)
SHARDS = (("WaitTests",),
          ("AsCompletedTests", "ProcessPoolExecutorTest", "InitializerMixin",
           "FailingInitializerMixin"))

_PROCESSES = "reads ProcessPoolExecutor._processes (its worker table)"
SKIPS = {
    "test_killed_child": _PROCESSES,
    "test_saturation": _PROCESSES,
    "test_idle_process_reuse_one": _PROCESSES,
    "test_idle_process_reuse_multiple": _PROCESSES,
    "test_max_tasks_per_child": {
        "fork": "expects ValueError for max_tasks_per_child with fork; crew allows it "
                "(a replacement worker is forked from the parent)",
        None: _PROCESSES},
    "test_max_tasks_per_child_defaults_to_spawn_context":
        "reads ProcessPoolExecutor._mp_context",
    "test_traceback": "asserts the cause is exactly concurrent.futures.process._RemoteTraceback "
                      "(crew attaches crew.RemoteTraceback, with the same .tb)",
    "test_ressources_gced_in_workers": {
        "auto": "with kind=\"auto\" id() runs on a thread worker, which gets the caller's "
                "object itself, not a copy whose deletion in a worker the test watches",
        None: None},
    "test_python_finalization_error":
        "patches threading._start_joinable_thread for ProcessPoolExecutor's manager thread",
}


class CrewProcessPool(crew.Executor):
    """crew.Executor with ProcessPoolExecutor's constructor."""

    crew_kind = "processes"

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None):
        method = None if mp_context is None else mp_context.get_start_method()
        super().__init__(max_workers, kind=self.crew_kind, start_method=method,
                         initializer=initializer, initargs=initargs,
                         max_tasks_per_child=max_tasks_per_child)


class CrewContext:
    """A multiprocessing context whose Queue() is a crew.Queue."""

    def __init__(self, ctx):
        self._ctx = ctx

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def Queue(self, maxsize=0):  # noqa: N802 - multiprocessing's name
        return crew.Queue(maxsize)


class CrewAutoPool(crew._auto.AutoExecutor):
    """crew.Executor(kind="auto") with ProcessPoolExecutor's constructor."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None, initargs=(), *,
                 max_tasks_per_child=None):
        method = None if mp_context is None else mp_context.get_start_method()
        super().__init__(max_workers, kind="auto", start_method=method,
                         initializer=initializer, initargs=initargs,
                         max_tasks_per_child=max_tasks_per_child)


def _strip(name):
    for end in ("Mixin", "Tests", "Test"):
        if name.endswith(end):
            return name[:-len(end)]
    return name


def build(source, method, families=FAMILIES):
    """The test classes of the families for one start method: {name: class}."""
    base = source.find("BaseTestCase")
    pool = CrewAutoPool if method == AUTO else CrewProcessPool
    mixin_name = MIXINS["forkserver" if method == AUTO else method]
    cpython_mixin = source.find(mixin_name)
    if base is None or cpython_mixin is None:
        raise RuntimeError(f"{source.origin} lacks BaseTestCase or {mixin_name}")

    def get_context(self):
        return CrewContext(cpython_mixin.get_context(self))

    mixin = type(f"Crew{method.capitalize()}Mixin", (cpython_mixin,),
                 {"executor_type": pool, "get_context": get_context,
                  "__module__": __name__})
    classes = {}
    for fam in families:
        family = source.find(fam)
        if family is None:
            continue
        name = f"Crew{method.capitalize()}{_strip(fam)}Test"
        body = {"__module__": __name__, "start_method": method}
        for attr in dir(family):
            if attr in SKIPS and attr.startswith("test_"):
                why = SKIPS[attr]
                if isinstance(why, dict):
                    why = why.get(method, why[None])
                if why is None:
                    continue
                body[attr] = unittest.skip(why)(getattr(family, attr))
        classes[name] = type(name, (family, mixin, base), body)
    return classes
