"""Lesson 4: start methods. fork copies the parent, spawn and forkserver
start clean; what each costs, and the fork trap made visible."""
import multiprocessing as mp
import os
import threading
import warnings

import crew

from . import common as C
from . import tasks
from .tasks import noop, what_child_sees

TITLE = "4. Start methods: fork, spawn, forkserver"
METHODS = ("fork", "spawn", "forkserver")
STEPS = 2 * len(METHODS) + 2 * len(METHODS) + 1
EXPLAIN = """\
fork copies the parent's whole memory, so a worker starts fast but inherits
whatever the parent changed (settings, held locks); spawn starts a fresh
interpreter (clean, slower); forkserver forks from a clean server started once."""


def _mp_start(method, n):
    with mp.get_context(method).Pool(n) as p:
        p.apply(noop)


def _crew_start(method, n):
    with crew.Executor(n, start_method=method) as ex:
        ex.submit(noop).result()


def _mp_sees(method):
    with mp.get_context(method).Pool(1) as p:
        return p.apply(what_child_sees), None


def _crew_sees(method):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with crew.Executor(1, start_method=method) as ex:
            seen = ex.submit(what_child_sees).result()
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
    return seen, (msgs[0] if msgs else None)


def run(ctx):
    r = ctx.rep
    n = ctx.workers
    reps = ctx.args.start_repeats
    r.print("")
    r.print(f"== {TITLE}")
    r.print(EXPLAIN)
    r.print(f"   start cost: create a {n}-worker pool, get one no-op result, shut it down; "
            f"median of {reps} after a warm-up")
    cost = {}
    for peer, fn in (("multiprocessing.Pool", _mp_start), ("crew.Executor", _crew_start)):
        for m in METHODS:
            r.status(f"start: {peer} {m}")
            fn(m, n)
            cost[peer, m] = C.median([C.timed(fn, m, n)[0] for _ in range(reps)])
            r.step()
    r.print(C.table(["start method", "multiprocessing.Pool", "crew.Executor", "crew vs mp"],
                    [(m, C.fmt_seconds(cost["multiprocessing.Pool", m]),
                      C.fmt_seconds(cost["crew.Executor", m]),
                      f"{cost['multiprocessing.Pool', m] / cost['crew.Executor', m]:.2f}x")
                     for m in METHODS]))

    # ---- the fork trap: change the parent, then start workers
    r.print("")
    r.print("   The fork trap: before starting workers the parent sets an environment variable,")
    r.print("   changes a module-level setting (like torch.set_num_threads(1)) and starts a thread")
    r.print("   that holds a lock. What does a worker see?")
    old_env = os.environ.get(tasks.ENV_NAME)
    old_setting = tasks.SETTINGS["num_threads"]
    os.environ[tasks.ENV_NAME] = "set in parent"
    tasks.SETTINGS["num_threads"] = "1 (parent's)"
    release = threading.Event()
    held = threading.Event()

    def holder():
        with tasks.LOCK:
            held.set()
            release.wait()
    th = threading.Thread(target=holder, name="lock-holder", daemon=True)
    th.start()
    held.wait()
    seen = {}
    warning = None
    try:
        for peer, fn in (("multiprocessing", _mp_sees), ("crew", _crew_sees)):
            for m in METHODS:
                r.status(f"fork trap: {peer} {m}")
                seen[peer, m], w = fn(m)
                if w and warning is None:
                    warning = w
                r.step()
    finally:
        release.set()
        th.join()
        tasks.SETTINGS["num_threads"] = old_setting
        if old_env is None:
            os.environ.pop(tasks.ENV_NAME, None)
        else:
            os.environ[tasks.ENV_NAME] = old_env
    items = [("env var " + tasks.ENV_NAME, "env", "set in parent"),
             ("module setting num_threads", "setting", "1 (parent's)"),
             ("lock held by a parent thread", "lock", None)]
    rows = []
    for label, key, _ in items:
        for peer in ("multiprocessing", "crew"):
            rows.append([f"{label} ({peer})"] + [seen[peer, m][key] for m in METHODS])
    r.print(C.table(["what the worker sees"] + list(METHODS), rows))
    r.print("   fork children inherit the parent's setting and a lock no thread of theirs will")
    r.print("   ever release. spawn runs a new interpreter: modules start clean, but exec passes")
    r.print("   the parent's environment on. A fork server forks from the state it had when it")
    r.print("   started (here: before the variable was set).")
    if warning:
        r.print(f"   crew warned when fork met the running thread:\n     RuntimeWarning: {warning}")
    r.step("start: chart")

    plt = C.pyplot()
    import numpy as np
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1.3]})
    x = np.arange(len(METHODS))
    mpv = [cost["multiprocessing.Pool", m] * 1e3 for m in METHODS]
    crv = [cost["crew.Executor", m] * 1e3 for m in METHODS]
    ax1.bar(x - 0.2, mpv, 0.4, label="multiprocessing.Pool", color=C.PEER)
    ax1.bar(x + 0.2, crv, 0.4, label="crew.Executor", color=C.CREW)
    for xs, vs in ((x - 0.2, mpv), (x + 0.2, crv)):
        for xi, v in zip(xs, vs):
            ax1.text(xi, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(x)
    ax1.set_xticklabels(METHODS)
    ax1.set_ylabel("ms: create + first result + shut down")
    ax1.set_title(f"Start cost of a {n}-worker pool", fontsize=11)
    ax1.set_ylim(0, max(mpv + crv) * 1.35)
    ax1.legend(fontsize=8, loc="upper left")
    ax1.grid(axis="y", alpha=0.3)
    inherited = np.array([[0 if (items[i // 2][1] == "lock" and row[j + 1] == "free") or
                           (items[i // 2][1] != "lock" and row[j + 1] in ("(unset)", "default"))
                           else 1 for j in range(len(METHODS))] for i, row in enumerate(rows)])
    ax2.imshow(inherited, cmap="RdYlGn_r", vmin=-0.3, vmax=1.3, aspect="auto")
    for i, row in enumerate(rows):
        for j in range(len(METHODS)):
            ax2.text(j, i, row[j + 1].replace(" (acquire() would hang)", ""), ha="center",
                     va="center", fontsize=8)
    ax2.set_xticks(range(len(METHODS)))
    ax2.set_xticklabels(METHODS)
    ax2.set_yticks(range(len(rows)))
    ax2.set_yticklabels([rw[0].replace("module setting", "setting").replace(
        "lock held by a parent thread", "held lock").replace("env var " + tasks.ENV_NAME, "env var")
        for rw in rows], fontsize=8)
    ax2.set_title("The fork trap: parent state seen by workers (red = inherited)", fontsize=11)
    path = C.save(fig, os.path.join(ctx.out, "4_start_methods.png"))
    r.print(f"   chart: {path}")
    trap = {m: seen["crew", m]["setting"] != "default" or not seen["crew", m]["lock"] == "free"
            for m in METHODS}
    best = min(METHODS, key=lambda m: cost["crew.Executor", m])
    return {"lesson": "start", "cost_ms": {f"{p}/{m}": v * 1e3 for (p, m), v in cost.items()},
            "seen": {f"{p}/{m}": v for (p, m), v in seen.items()}, "trap": trap,
            "warned": bool(warning), "chart": path,
            "summary": "start: crew " + ", ".join(
                f"{m} {C.fmt_seconds(cost['crew.Executor', m])} (mp "
                f"{C.fmt_seconds(cost['multiprocessing.Pool', m])})" for m in METHODS)
            + f"; fork trap seen in fork children only: "
              f"{trap['fork'] and not trap['spawn'] and not trap['forkserver']}"
              f"{'; crew warned about fork with threads' if warning else ''}"
              f" (fastest crew start: {best})"}
