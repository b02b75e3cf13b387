"""test_chaos.py — seeded chaos against live pools: workers (and the fork server) SIGKILLed, stopped and continued during mixed batches; thread pools fed tasks that raise and hang past their timeouts. Invariants are checked after every run.

Every run draws from one seed, printed with any failure; replay it with
CREW_CHAOS_SEED=<seed> (CREW_CHAOS_SECONDS sets how long the chaos lasts
per run, 6 s by default; CREW_CHAOS_ROUNDS repeats every run, each with the
next seed). What must hold after each run:

* every future is resolved (within a bound: nothing hangs);
* failures are crashes only, at most one per SIGKILL a worker received
  (a worker runs one task at a time), and each failed task either never
  logged its start or started in a worker that was killed;
* no task ran twice unless every run but its last was in a worker that was
  killed while running it;
* the results that came back are the tasks' own (large arguments too);
* the pool serves afterwards; once it is shut down, this process has no
  more descriptors, threads or crew entries in $TMPDIR than before.
"""
import concurrent.futures as cf
import os
import random
import signal
import sys
import threading
import time
import zlib

import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# a $TMPDIR of this run's own (other test runs share /tmp), set before crew
# makes anything there
_TMP = tempfile.mkdtemp(prefix="chaos-tmp-")
os.environ["TMPDIR"] = _TMP
tempfile.tempdir = _TMP

import crew  # noqa: E402
import chaos_tasks  # noqa: E402

SEED = int(os.environ.get("CREW_CHAOS_SEED") or random.SystemRandom().randrange(2**31))
SECONDS = float(os.environ.get("CREW_CHAOS_SECONDS", "6"))
ROUNDS = int(os.environ.get("CREW_CHAOS_ROUNDS", "1"))
FIGURES = []  # one line per run, printed at the end (make test-chaos runs with -s)

CONFIGS = [("processes", "fork"), ("processes", "spawn"), ("processes", "forkserver"),
           ("threads", None)]


def _seed_for(name, rnd):
    return (SEED + rnd + zlib.crc32(name.encode())) % 2**31


def _fds():
    return len(os.listdir("/proc/self/fd"))


def _threads():
    return len(os.listdir("/proc/self/task"))


def _tmp_crew():
    return sorted(os.listdir(_TMP))


def _forkserver_pids():
    from crew import _core
    return _core.forkserver_pids()


def _mixed_batch(rng, ex, log, first, n, kind):
    """n tasks from id first: fast, slow and large-argument ones (processes),
    plus ones that raise and hang past a timeout (threads)."""
    futs = {}
    for i in range(first, first + n):
        r = rng.random()
        if kind == "threads" and r < 0.04:
            futs[i] = ("hang", ex.options(timeout=0.2).submit(chaos_tasks.task, log, i, "hang"))
            continue
        if r < 0.15:
            k, payload = "raise", b""
        elif r < 0.35:
            k, payload = "slow", b""
        elif r < 0.5:
            k, payload = "large", rng.randbytes(rng.choice([100, 5000, 300_000]))
        else:
            k, payload = "fast", b""
        futs[i] = (k, payload, ex.submit(chaos_tasks.task, log, i, k, payload))
    return futs


class Chaos(threading.Thread):
    """Signals workers (and the fork server) at random moments until stopped."""

    def __init__(self, rng, ex, method, log):
        super().__init__(daemon=True)
        self.rng, self.ex, self.method, self.log = rng, ex, method, log
        self.up, self.log_at = set(), 0  # pids that ran a task: up, by crew's word
        self.stop = threading.Event()
        self.killed = set()        # worker pids SIGKILLed
        self.kills = self.stops = self.server_hits = 0
        self.stopped = set()       # pids SIGSTOPped and not yet continued

    def run(self):
        while not self.stop.wait(self.rng.uniform(0.03, 0.25)):
            pids = [w["pid"] for w in self.ex.stats()["workers"] if w["pid"] > 0]
            if self.method == "forkserver" and self.rng.random() < 0.1:
                servers = _forkserver_pids()
                if servers:  # stopped and continued only: see test_forkserver_killed
                    self._hit(servers[0], server=True, stop_only=True)
                    continue
            if pids:
                pid = self.rng.choice(pids)
                # a worker still starting is only stopped: killing it before it
                # is up counts as a start failure (test_kills_before_hello)
                self._hit(pid, stop_only=pid not in self._up())
        for pid in list(self.stopped):
            self._cont(pid)

    def _hit(self, pid, server=False, stop_only=False):
        try:
            if self.rng.random() < 0.65 and not stop_only:
                if not server:
                    self.killed.add(pid)  # before the signal: a death is seen at once
                os.kill(pid, signal.SIGKILL)
                self.kills += not server
            else:
                os.kill(pid, signal.SIGSTOP)
                self.stopped.add(pid)
                self.stops += 1
                time.sleep(self.rng.uniform(0.01, 0.3))
                self._cont(pid)
            self.server_hits += server
        except ProcessLookupError:
            self.killed.discard(pid)

    def _up(self):
        try:
            with open(self.log) as f:
                f.seek(self.log_at)
                for line in f:
                    if line.endswith("\n"):
                        self.up.add(int(line.split()[2]))
                        self.log_at += len(line)
                    else:
                        break
        except FileNotFoundError:
            pass
        return self.up

    def _cont(self, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.stopped.discard(pid)


def _read_log(log):
    starts, ends = {}, {}
    try:
        with open(log) as f:
            for line in f:
                what, i, pid = line.split()
                (starts if what == "S" else ends).setdefault(int(i), []).append(int(pid))
    except FileNotFoundError:
        pass
    return starts, ends


def _one_run(kind, method, rnd, tmp_path):
    name = f"{kind}/{method or 'threads'}"
    seed = _seed_for(name, rnd)
    rng = random.Random(seed)
    say = f"chaos run {name}, seed {seed} (replay: CREW_CHAOS_SEED={SEED} -> this run's seed " \
          f"is derived from it; CREW_CHAOS_SEED={SEED} make test-chaos)"
    log = str(tmp_path / f"log-{rnd}")
    # a warm-up pool first: what lives as long as the program (a fork server,
    # its directory, crew's keeper thread) exists before the baseline
    with crew.Executor(2, kind=kind, start_method=method) as ex:
        ex.submit(chaos_tasks.task, log + "-warm", 0, "fast").result(timeout=120)
    fds0, threads0, tmp0 = _fds(), _threads(), _tmp_crew()

    ex = crew.Executor(2, kind=kind, start_method=method)
    chaos = Chaos(rng, ex, method, log) if kind == "processes" else None
    futs = {}
    t0 = time.monotonic()
    try:
        if chaos:
            chaos.start()
        first = 0
        while time.monotonic() - t0 < SECONDS:   # batches while the chaos goes on
            n = rng.randint(20, 80)
            futs.update(_mixed_batch(rng, ex, log, first, n, kind))
            first += n
            time.sleep(rng.uniform(0.05, 0.5))
        if chaos:
            chaos.stop.set()
            chaos.join()
        done, not_done = cf.wait([v[-1] for v in futs.values()], timeout=120)
        assert not not_done, f"{say}: {len(not_done)} of {len(futs)} futures never resolved"

        starts, ends = _read_log(log)
        killed = chaos.killed if chaos else set()
        crashed, raised, hung = [], 0, 0
        for i, v in futs.items():
            k, f = v[0], v[-1]
            exc = f.exception()
            if k == "hang":
                assert isinstance(exc, crew.TaskTimeoutError), f"{say}: hang task {i}: {exc!r}"
                hung += 1
                continue
            if k == "raise" and isinstance(exc, ValueError):
                raised += 1
                continue
            if exc is not None:
                assert isinstance(exc, crew.WorkerCrashedError), \
                    f"{say}: task {i} ({k}) failed with {exc!r}"
                crashed.append(i)
                # (its end logged or not: a worker killed after the task
                # returned, before its answer was in the ring, fails it too)
                dead_runs = [p for p in starts.get(i, []) if p in killed]
                assert starts.get(i) is None or dead_runs, \
                    f"{say}: task {i} failed as crashed but ran only in live workers " \
                    f"(starts {starts.get(i)}, ends {ends.get(i)}, killed {sorted(killed)})"
                continue
            assert k != "raise", f"{say}: task {i} should have raised"
            got = f.result()
            payload = v[1]
            assert got == (i, len(payload), payload[-8:]), f"{say}: task {i} gave {got!r}"
            if kind == "processes":
                s = starts.get(i, [])
                assert s, f"{say}: task {i} has a result but never ran"
                for p in s[:-1]:   # every earlier run: in a worker killed running it
                    assert p in killed, \
                        f"{say}: task {i} ran twice (pids {s}, ended in {ends.get(i)}, " \
                        f"killed {sorted(killed)})"
        kills = chaos.kills if chaos else 0
        assert len(crashed) <= kills, f"{say}: {len(crashed)} crashed tasks for {kills} kills"

        # it serves afterwards
        after = [ex.submit(chaos_tasks.task, log + "-after", 10**6 + j, "fast") for j in range(20)]
        assert [f.result(timeout=60)[0] for f in after] == [10**6 + j for j in range(20)], say
    finally:
        if chaos and chaos.is_alive():
            chaos.stop.set()
            chaos.join()
        ex.shutdown(wait=True, cancel_futures=True)
    # nothing left behind (threads of hung tasks finish their 0.6 s first)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_fds() > fds0 or _threads() > threads0):
        time.sleep(0.05)
    assert _fds() <= fds0, f"{say}: {_fds() - fds0} more descriptors than before"
    assert _threads() <= threads0, f"{say}: {_threads() - threads0} more threads than before"
    assert set(_tmp_crew()) <= set(tmp0), \
        f"{say}: left in $TMPDIR: {sorted(set(_tmp_crew()) - set(tmp0))}"
    FIGURES.append(f"{name:22} seed {seed:>10}: {len(futs):4} tasks, "
                   f"{chaos.kills if chaos else 0:3} kills, {chaos.stops if chaos else 0:3} stops, "
                   f"{chaos.server_hits if chaos else 0} fork-server hits, {raised} raised, "
                   f"{hung} timed out, {len(crashed):3} crashed "
                   f"({(len(crashed) / chaos.kills) if chaos and chaos.kills else 0:.2f} per kill)")


@pytest.mark.parametrize("kind,method", CONFIGS, ids=[m or k for k, m in CONFIGS])
def test_chaos(kind, method, tmp_path):
    for rnd in range(ROUNDS):
        _one_run(kind, method, rnd, tmp_path)


def teardown_module(module):
    import shutil
    shutil.rmtree(_TMP, ignore_errors=True)
    print(f"\nchaos figures (seed {SEED}; CREW_CHAOS_SEED={SEED} replays):")
    for line in FIGURES:
        print("  " + line)


def _pool_serves_after_forkserver_killed():
    """The fork server SIGKILLed, then both workers: do tasks still run?"""
    log = os.path.join(_TMP, "fs-killed")
    with crew.Executor(2, start_method="forkserver") as ex:
        ex.submit(chaos_tasks.task, log, 0, "fast").result(timeout=120)
        for pid in _forkserver_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        for w in ex.stats()["workers"]:
            os.kill(w["pid"], signal.SIGKILL)
        futs = [ex.submit(chaos_tasks.task, log, i, "fast") for i in range(1, 11)]
        return [f.exception(timeout=120) for f in futs]


def test_forkserver_killed():
    """A SIGKILLed fork server is replaced when a worker next has to start
    (before, every task then failed 'could not be started (Transport
    endpoint is not connected)')."""
    errs = _pool_serves_after_forkserver_killed()
    assert errs == [None] * 10, f"{sum(e is not None for e in errs)} of 10 failed: " \
        f"{next(e for e in errs if e)!r}"


def _kills_before_hello(n_kills):
    """Each new worker of a spawn pool SIGKILLed as soon as it appears
    (before it can say hello), n_kills times per slot, with tasks queued;
    then the kills stop. How many of the tasks fail?"""
    log = os.path.join(_TMP, "early")
    with crew.Executor(2, start_method="spawn") as ex:
        futs = [ex.submit(chaos_tasks.task, log, i, "fast") for i in range(40)]
        seen, end = set(), time.monotonic() + 30
        while len(seen) < 2 * n_kills and time.monotonic() < end:
            for w in ex.stats()["workers"]:
                if w["pid"] > 0 and w["pid"] not in seen and not os.path.exists(log):
                    seen.add(w["pid"])
                    try:
                        os.kill(w["pid"], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.002)
        return [f.exception(timeout=120) for f in futs]


def test_kills_before_hello():
    """Workers SIGKILLed before their HELLO, three per slot, with tasks
    queued: the kills slow restarts down but fail no task (before, three per
    slot failed every queued task as 'the pool's workers die as they
    start'). A start loop (exits, crashes) still fails the queue: tests/c
    test_lifecycle's workers_that_die_as_they_start..."""
    errs = _kills_before_hello(3)
    assert errs == [None] * 40, f"{sum(e is not None for e in errs)} of 40 failed: " \
        f"{next(e for e in errs if e)!r}"


def test_new_pool_after_forkserver_killed_gets_a_new_one():
    """A fork server SIGKILLed from outside: the next pool starts a new one
    (its channel is a socketpair: nothing of it is left in $TMPDIR)."""
    log = os.path.join(_TMP, "fs-new")
    with crew.Executor(2, start_method="forkserver") as ex:
        ex.submit(chaos_tasks.task, log, 0, "fast").result(timeout=120)
    old = set(_forkserver_pids())
    assert old
    for pid in old:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with crew.Executor(2, start_method="forkserver") as ex:
        assert ex.submit(chaos_tasks.task, log, 1, "fast").result(timeout=120)[0] == 1
    assert _forkserver_pids() and not old & set(_forkserver_pids())
