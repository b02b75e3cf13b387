"""Runs CPython's own concurrent.futures tests against crew.Executor.

    <venv python> tests/cpython/run_cf_tests.py [-v] [--methods fork,spawn,forkserver,auto]
                                                 [--serial] [--source PATH]

The Wait, AsCompleted, Executor (ExecutorTest and ProcessPoolExecutorTest) and
Initializer families of the running interpreter's test package (or the
nearest one on this machine: see cf_source.py) run on crew.Executor with the
fork, spawn and forkserver start methods, and on crew.Executor(kind="auto")
("auto": its process workers by forkserver), see cf_crew.py for how. Each
method runs in its own child processes, all at once (--serial: one after
the other); most of these tests sleep, so they overlap well.

Prints a summary per start method, then one last line
``N passed, N failed, N skipped``; exits 1 on any failure or error.
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class _Result(unittest.TextTestResult):
    """Keeps each test's outcome: passed, failed (a failure, an error, a
    failing subtest, an unexpected success) or skipped (with its reason)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcomes = {}   # test id -> ["passed"|"failed"|"skipped", detail]
        self.seconds = {}    # test id -> its time, setUp and tearDown included
        self._t0 = 0.0

    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()

    def stopTest(self, test):
        super().stopTest(test)
        self.seconds[test.id()] = time.monotonic() - self._t0

    def _set(self, test, what, detail=""):
        cur = self.outcomes.get(test.id())
        if cur is None or cur[0] != "failed":
            self.outcomes[test.id()] = [what, detail]

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "failed", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "failed", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.outcomes[test.id()] = ["failed", f"{subtest}: "
                                        + self._exc_info_to_string(err, test)]

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skipped", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "failed", "unexpected success")


def run_one(method, shard, spec, why, verbose):
    """In a child: runs one shard of the families for one start method, on
    the tests that the parent located (spec); returns a dict."""
    sys.path.insert(0, HERE)
    import cf_crew
    import cf_source
    src = cf_source.load(spec, why)
    from test import support
    support.verbose = 0   # CPython's tearDown prints each test's time when verbose
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    families = cf_crew.SHARDS[shard] if shard >= 0 else cf_crew.FAMILIES
    for name, cls in cf_crew.build(src, method, families).items():
        globals()[name] = cls
        suite.addTests(loader.loadTestsFromTestCase(cls))
    stream = sys.stderr if verbose else io.StringIO()
    runner = unittest.TextTestRunner(stream=stream, verbosity=2 if verbose else 0,
                                     resultclass=_Result)
    t0 = time.monotonic()
    result = runner.run(suite)
    return {"method": method, "seconds": time.monotonic() - t0, "outcomes": result.outcomes,
            "slow": sorted(((t, i) for i, t in result.seconds.items() if t >= 2.0),
                           reverse=True)}


def _counts(outcomes):
    c = {"passed": 0, "failed": 0, "skipped": 0}
    for what, _ in outcomes.values():
        c[what] += 1
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="fork,spawn,forkserver,auto",
                    help="start methods, and auto: kind=\"auto\" (its processes by forkserver)")
    ap.add_argument("--serial", action="store_true", help="one start method at a time")
    ap.add_argument("--source", help="a test_concurrent_futures package, module or test folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    # internal: METHOD SHARD RESULT-FILE SOURCE-SPEC WHY (SHARD -1: every family)
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        m, k, out, spec, why = args.child
        res = run_one(m, int(k), spec, why, args.verbose)
        with open(out, "w") as f:
            json.dump(res, f)
        return 0

    methods = [m for m in args.methods.split(",") if m]
    t0 = time.monotonic()
    print(f"crew: CPython's concurrent.futures tests on crew.Executor "
          f"(Python {sys.version.split()[0]}, {sys.executable})", flush=True)
    sys.path.insert(0, HERE)
    import cf_source
    from cf_crew import SHARDS
    src, notes = cf_source.locate(args.source)
    for n in notes:
        print(f"  source: {n}")
    if src is None:
        if args.source:
            print(f"error: --source {args.source}: not usable (see above)")
            return 2
        print("No CPython concurrent.futures tests were found on this machine (see above; on "
              "Debian: apt-get install libpython3.X-testsuite): nothing was run, so nothing "
              "was checked.")
        for m in methods:
            print(f"== {m}: skipped: no CPython concurrent.futures tests on this machine")
        print(f"0 passed, 0 failed, {len(methods)} skipped")
        return 0
    print(f"  source: {src.origin}\n          ({src.why})", flush=True)

    tmp = tempfile.mkdtemp(prefix="crew-cf-")
    shards = [-1] if args.serial else list(range(len(SHARDS)))

    def start(m, k):
        out = os.path.join(tmp, f"{m}.{k}")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", m, str(k), out,
               src.spec(), src.why]
        if args.verbose:
            cmd.append("-v")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=os.getcwd())

    def finish(m, k, p):
        text, _ = p.communicate()
        try:
            with open(os.path.join(tmp, f"{m}.{k}")) as f:
                res = json.load(f)
        except (OSError, ValueError):
            return {"method": m, "crashed": True, "output": text, "rc": p.returncode}
        res["output"] = text
        return res

    jobs = [(m, k) for m in methods for k in shards]
    if args.serial:
        done = {j: finish(*j, start(*j)) for j in jobs}
    else:
        procs = {j: start(*j) for j in jobs}
        done = {j: finish(*j, p) for j, p in procs.items()}
    shutil.rmtree(tmp, ignore_errors=True)
    results = []
    for m in methods:   # a start method's shards, merged
        parts = [done[(m, k)] for k in shards]
        bad = [r for r in parts if r.get("crashed")]
        if bad:
            results.append(bad[0])
            continue
        res = dict(parts[0])
        for r in parts[1:]:
            res["outcomes"] = {**res["outcomes"], **r["outcomes"]}
            res["slow"] = res.get("slow", []) + r.get("slow", [])
            res["output"] += r["output"]
        res["seconds"] = max(r["seconds"] for r in parts)
        res["slow"] = sorted(res.get("slow", []), reverse=True)
        results.append(res)

    total = {"passed": 0, "failed": 0, "skipped": 0}
    for res in results:
        m = res["method"]
        if res.get("crashed"):
            print(f"\n== {m}: the run died (exit status {res['rc']}):\n{res['output']}")
            total["failed"] += 1
            continue
        if (args.verbose or _counts(res["outcomes"])["failed"]) and res["output"].strip():
            print(res["output"].rstrip())
        c = _counts(res["outcomes"])
        for k in total:
            total[k] += c[k]
        print(f"== {m}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped "
              f"({res['seconds']:.1f} s)")
        for tid, (what, detail) in sorted(res["outcomes"].items()):
            short = tid.rsplit(".", 2)
            short = ".".join(short[-2:])
            if what == "skipped":
                print(f"   skipped {short}: {detail.splitlines()[0] if detail else ''}")
            elif what == "failed":
                print(f"   FAILED  {short}\n" + "\n".join("      " + ln for ln in
                                                         detail.rstrip().splitlines()))
        if args.verbose:
            for t, tid in res.get("slow", []):
                print(f"   slow    {tid.rsplit('.', 2)[-2]}.{tid.rsplit('.', 1)[-1]}: {t:.1f} s")
    print(f"({time.monotonic() - t0:.1f} s in all)")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
