"""python -m crew demo | bench | info, each in --quick mode: their tables,
charts and files are checked for content, not just existence."""
import csv
import json
import os
import re
import struct
import subprocess
import sys

import pytest

import crew
from crew._cli import bench as crew_bench

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_crew(*args, timeout=240):
    p = subprocess.run([sys.executable, "-m", "crew", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def png_size(path):
    """(width, height) of a real PNG file, or an assertion error."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    w, h = struct.unpack(">II", head[16:24])
    assert os.path.getsize(path) > 10_000, f"{path} is suspiciously small"
    return w, h


def table_row(text, label):
    """The cells (split on 2+ spaces) of the first table line starting with label."""
    for line in text.splitlines():
        if line.startswith(label):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row {label!r} in:\n{text}")


# ------------------------------------------------------------------ info --

def test_info_table_and_json():
    out = run_crew("info").stdout
    assert table_row(out, "usable CPUs (crew.cpu_count())")[1].split()[0] == str(crew.cpu_count())
    assert table_row(out, "crew default start method")[1] == crew.get_start_method()
    assert table_row(out, "Python")[1].startswith(sys.version.split()[0])
    for label in ("host CPUs", "CPU affinity", "cgroup CPU quota", "numpy", "/dev/shm size",
                  "kernel.shmmax", "memfd_create"):
        table_row(out, label)
    d = json.loads(run_crew("info", "--json").stdout)
    assert d["usable_cpus"] == crew.cpu_count()
    assert d["host_cpus"] == os.cpu_count()
    assert d["affinity_cpus"] == len(os.sched_getaffinity(0))
    assert d["usable_cpus"] <= d["affinity_cpus"]
    assert d["python"] == sys.version.split()[0]
    assert {"fork", "spawn", "forkserver"} <= set(d["start_methods_available"])
    assert d["dev_shm_size"] > 0


# ------------------------------------------------------------------ demo --

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    p = run_crew("demo", "--quick", "--out", str(out), "--html", str(out / "report.html"))
    with open(out / "summary.json") as f:
        summary = json.load(f)
    return p, out, summary


def test_demo_prints_every_lesson_and_a_summary(demo):
    p, out, summary = demo
    text = p.stdout
    for head in ("== 1. The GIL", "== 2. I/O-bound", "== 3. IPC", "== 4. Start methods",
                 "== 5. Crashes", "== 6. Choose by bottleneck", "== Summary"):
        assert head in text
    assert [x["lesson"] for x in summary["lessons"]] == ["gil", "io", "ipc", "start", "crash",
                                                         "auto"]
    # output to a pipe is the report alone: no progress text on either stream
    # (the bar is for a terminal: test_demo_progress_on_a_terminal)
    assert "%|" not in text and "%|" not in p.stderr and "\r" not in text + p.stderr
    assert p.stderr == ""


def test_demo_progress_on_a_terminal(tmp_path):
    """stderr a terminal, stdout a pipe: the bar is drawn on the terminal only."""
    import fcntl
    import pty
    import termios
    master, slave = pty.openpty()
    # a real terminal's size (a bare pty has 0 columns: tqdm draws nothing there)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        p = subprocess.Popen([sys.executable, "-m", "crew", "demo", "--quick", "--lesson", "ipc",
                              "--array-mb", "4", "--out", str(tmp_path)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out = p.stdout.read()
        assert p.wait(timeout=120) == 0
    finally:
        os.close(master)
    assert b"crew demo" in seen and b"%|" in seen
    assert "%|" not in out and "== 3. IPC" in out


def test_demo_html_report_renders_in_a_browser(demo, tmp_path):
    """The --html page opened by headless Chromium: it renders, its six
    charts load (inline images with real sizes), its tables are there."""
    import shutil
    p, out, summary = demo
    page = (out / "report.html").read_text()
    assert f"report: {out / 'report.html'}" in p.stdout
    assert 'src="data:image/png;base64,' in page and "src=\"out/" not in page
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless browser (scripts/setup.sh installs Debian's chromium)")
    probe = """<script>window.addEventListener("load", function () {
      document.body.setAttribute("data-check", JSON.stringify({
        images: Array.from(document.images).map(function (i) {
          return [i.complete, i.naturalWidth, i.naturalHeight]; }),
        h2: Array.from(document.querySelectorAll("h2")).map(function (h) { return h.textContent; }),
        text: document.body.innerText.length}));
    });</script>"""
    assert page.count("</body>") == 1
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", probe + "</body>"))
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
                        "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=90)
    m = re.search(r'data-check="([^"]*)"', r.stdout)
    assert m, f"the page did not load in {browser}:\n{r.stderr[-2000:]}"
    import html as html_mod
    check = json.loads(html_mod.unescape(m.group(1)))
    assert len(check["images"]) == 6
    for complete, w, h in check["images"]:
        assert complete and w >= 600 and h >= 250, check["images"]
    assert check["h2"][0] == "Summary"
    for head in ("1. The GIL", "3. IPC", "5. Crashes", "6. Choose by bottleneck"):
        assert any(h.startswith(head) for h in check["h2"]), check["h2"]
    assert check["text"] > 2000


def test_demo_charts_are_pictures(demo):
    p, out, summary = demo
    names = ["1_gil.png", "2_io.png", "3_ipc.png", "4_start_methods.png", "5_crash.png",
             "6_auto.png"]
    for name in names:
        path = out / name
        w, h = png_size(path)
        assert w >= 600 and h >= 250
        assert f"chart: {path}" in p.stdout


def test_demo_gil_lesson(demo):
    p, out, summary = demo
    gil = summary["lessons"][0]
    # what the figures are is the demo's to report (bench/ holds the timings):
    # under load the serial run swings as much as the threaded one, so no bound
    assert gil["threads_speedup"] > 0
    row = table_row(p.stdout, f"{gil['workers']} threads (ThreadPoolExecutor)")
    assert row[2] == f"{gil['threads_speedup']:.2f}x"
    assert gil["crew_speedup"] > 0 and gil["mp_speedup"] > 0
    table_row(p.stdout, f"{gil['workers']} crew process workers")


def test_demo_io_lesson(demo):
    p, out, summary = demo
    io = summary["lessons"][1]
    # 16 requests of 20 ms on 8 workers: overlapped waits beat serial by far
    assert io["threads_s"] < io["serial_s"] / 2
    assert io["crew_s"] < io["serial_s"] / 2
    assert table_row(p.stdout, "crew thread workers")[1] == "8"


def test_demo_ipc_lesson(demo):
    p, out, summary = demo
    ipc = summary["lessons"][2]
    # the speed-up itself is the benchmark's to report (hundreds of times on a quiet
    # machine); under load it swings too far for a timed assertion
    assert ipc["crew_s"] > 0 and ipc["mp_s"] > 0 and ipc["ratio"] == ipc["mp_s"] / ipc["crew_s"]
    row = table_row(p.stdout, "crew.Executor.submit")
    assert row[3] == "in crew's shared memory (no copy)"
    assert table_row(p.stdout, "multiprocessing.Pool.apply")[3] == "a private copy"


def test_demo_fork_trap_is_visible(demo):
    p, out, summary = demo
    st = summary["lessons"][3]
    for peer in ("multiprocessing", "crew"):
        fork = st["seen"][f"{peer}/fork"]
        assert fork["setting"] == "1 (parent's)"
        assert fork["lock"].startswith("HELD")
        for m in ("spawn", "forkserver"):
            assert st["seen"][f"{peer}/{m}"]["setting"] == "default"
            assert st["seen"][f"{peer}/{m}"]["lock"] == "free"
    assert st["trap"] == {"fork": True, "spawn": False, "forkserver": False}
    assert st["warned"] and "RuntimeWarning: crew: the fork start method" in p.stdout
    row = table_row(p.stdout, "lock held by a parent thread (crew)")
    assert row[1:] == ["HELD (acquire() would hang)", "free", "free"]
    for m in ("fork", "spawn", "forkserver"):
        assert st["cost_ms"][f"crew.Executor/{m}"] > 0


def test_demo_crash_lesson(demo):
    p, out, summary = demo
    rows = {r["peer"]: r for r in summary["lessons"][4]["rows"]}
    mp_, ppe, cr = (rows["multiprocessing.Pool.map"], rows["concurrent.futures.ProcessPoolExecutor"],
                    rows["crew.Executor"])
    assert mp_["outcome"].startswith("HUNG") and mp_["finished"] == 0
    assert ppe["failed"] >= 1 and not ppe["usable_after"]
    assert cr["failed"] == 1 and cr["finished"] == 11 and cr["usable_after"]
    pool = rows["crew.Pool.map (multiprocessing's API)"]
    assert pool["outcome"].startswith("map raised WorkerCrashedError")
    assert pool["failed"] == 1 and pool["finished"] == 11
    # every row accounts for every task of the batch
    for r in rows.values():
        assert r["finished"] + r["failed"] + r["lost"] == 12, r
    crash_text = p.stdout.split("== 5. Crashes")[1]
    for peer in rows:
        cells = table_row(crash_text, peer)
        assert int(cells[1]) + int(cells[2]) + int(cells[3]) == 12, cells
    assert "finished (of 12)" in p.stdout
    assert "WorkerCrashedError: worker" in p.stdout and "killed by signal 9" in p.stdout


def test_demo_one_lesson(tmp_path):
    p = run_crew("demo", "--quick", "--lesson", "ipc", "--array-mb", "4", "--no-progress",
                 "--out", str(tmp_path))
    assert "== 3. IPC" in p.stdout and "== 1. The GIL" not in p.stdout
    assert "4 MB float64 array" in p.stdout
    assert sorted(os.listdir(tmp_path)) == ["3_ipc.png", "summary.json"]
    assert p.stderr == ""


# ----------------------------------------------------------------- bench --

BENCH_EXTRA = "not installed (pip install 'crew[bench]')"
WORKLOADS = ["roundtrip", "submit", "map", "map1ms", "numpy8mb", "cpu", "cpubusy", "start"]
BENCH_LABELS = {w: label for w, (_, _, label) in crew_bench.WORKLOADS.items()}


def installed(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def bench_quick(tmp_path_factory):
    """One quick bench of crew, the stdlib pools and mpire (mpire may be
    missing: a missing peer is a row that says so). Not dask.distributed: now
    that the test extra installs it (crew.dask), its LocalCluster of worker
    processes alone took the quick bench past its 240 s on the shared 2-core VM."""
    out = tmp_path_factory.mktemp("bench")
    peers = "crew-processes,crew-threads,mp-pool,tpe,mpire"
    p = run_crew("bench", "--quick", "--peers", peers, "--out", str(out))
    with open(out / "bench.json") as f:
        d = json.load(f)
    return p.stdout, out, d


def test_bench_quick(bench_quick):
    text, tmp_path, d = bench_quick
    has = {"mpire": installed("mpire")}
    names = {"crew-processes", "crew-threads", "mp-pool", "tpe", "mpire"}
    got = {(r["workload"], r["peer"]) for r in d["results"]}
    assert got == {(w, n) for w in WORKLOADS for n in names}
    by = {(r["workload"], r["peer"]): r for r in d["results"]}
    for r in d["results"]:
        if r["peer"] in has and not has[r["peer"]]:
            assert r["status"] == "not installed" and r["error"].startswith("not installed (pip")
            assert r["median"] != r["median"] and r["values"] == []
            continue
        assert r["status"] == "ok" and not r["error"], r
        # five interleaved repeats even in --quick
        assert r["median"] > 0 and len(r["values"]) == d["repeats"] == 5
    if not has["mpire"]:
        assert table_row(text, "all workloads           mpire.WorkerPool")[-1] == BENCH_EXTRA
    # the best process peer that is not crew is the reference (1.0x) of each workload
    for w in WORKLOADS:
        ratios = [by[w, n]["vs_best_process_peer"] for n in ("mp-pool", "mpire")
                  if by[w, n]["status"] == "ok"]
        assert max(ratios) == pytest.approx(1.0) and min(ratios) <= 1.0 + 1e-9
        # each peer against the best of its own kind: crew threads against
        # ThreadPoolExecutor (the only thread pool here), processes against
        # the best process pool
        assert by[w, "tpe"]["vs_best_peer"] == pytest.approx(1.0)
        assert by[w, "tpe"]["best_peer"] == "ThreadPoolExecutor"
        ct, tpe = by[w, "crew-threads"], by[w, "tpe"]
        higher = w in ("submit", "map", "map1ms", "cpu", "cpubusy")
        want = ct["median"] / tpe["median"] if higher else tpe["median"] / ct["median"]
        assert ct["vs_best_peer"] == pytest.approx(want) and ct["best_peer"] == "ThreadPoolExecutor"
        cp = by[w, "crew-processes"]
        assert cp["vs_best_peer"] == pytest.approx(cp["vs_best_process_peer"])
        # a crew row behind the best of its kind is flagged, in the JSON and the table
        for name in ("crew-processes", "crew-threads"):
            r = by[w, name]
            assert r["behind"] == (r["vs_best_peer"] < 1.0)
            row = table_row(text, f"{BENCH_LABELS[w]:<22}  {r['peer_name']}")
            assert row[4].endswith(" BEHIND") == r["behind"], row
            lo, hi = min(r["values"]), max(r["values"])
            assert lo <= r["median"] <= hi and " - " in row[3]
    # crew moves the 8 MB array through shared memory: far faster than pickling
    assert by["numpy8mb", "crew-processes"]["vs_best_process_peer"] > 5
    # the table shows the medians and ratios of the JSON
    row = table_row(text, "8 MB numpy argument     crew processes")
    r = by["numpy8mb", "crew-processes"]
    assert row[4] == f"{r['vs_best_peer']:.2f}x {r['best_peer']}"
    assert {t["target"].split(" of ")[0].split(" on ")[0] for t in d["targets"]} >= {
        "no-op round trip", "submit throughput", "chunked map throughput", "8 MB numpy argument",
        "CPU-bound speedup"}
    assert any(t["target"].startswith("submit throughput of crew threads vs ThreadPoolExecutor")
               for t in d["targets"])
    assert "target " in text and "goal" in text
    with open(tmp_path / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(d["results"])
    assert {r["peer"] for r in rows} >= {"crew processes", "multiprocessing.Pool"}
    assert all(0 < float(r["min"]) <= float(r["median"]) <= float(r["max"])
               for r in rows if not r["error"])
    w, h = png_size(tmp_path / "bench.png")
    assert w >= 1000 and h >= 500


def test_bench_quick_has_mpire(bench_quick):
    if not installed("mpire"):
        pytest.skip("mpire is not installed (pip install 'crew[bench]')")
    text, tmp_path, d = bench_quick
    by = {(r["workload"], r["peer"]): r for r in d["results"]}
    for w in WORKLOADS:
        r = by[w, "mpire"]
        assert r["status"] == "ok" and r["median"] > 0 and len(r["values"]) == 5, r
        assert r["vs_best_process_peer"] > 0
    row = table_row(text, "no-op round trip        mpire.WorkerPool")
    assert row[2].endswith(" us") and float(row[2].split()[0]) > 0
    assert "mpire.WorkerPool: WorkerPool(keep_alive=True)" in text


# A bench whose ray cannot be imported and whose mpire cannot start workers:
# both are rows that say why, and the other peers are measured as usual.
_BROKEN_PEERS = """
import sys, types
sys.modules["ray"] = None
fake = types.ModuleType("mpire")
class WorkerPool:
    def __init__(self, *a, **k):
        raise OSError("no workers here")
fake.WorkerPool = WorkerPool
sys.modules["mpire"] = fake
from crew._cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_bench_missing_and_failing_peers(tmp_path):
    p = subprocess.run([sys.executable, "-c", _BROKEN_PEERS, "bench", "--quick", "--no-progress",
                        "--workloads", "roundtrip,start", "--peers", "mp-pool,mpire,ray-pool,ray-tasks",
                        "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    text = p.stdout
    with open(tmp_path / "bench.json") as f:
        d = json.load(f)
    by = {(r["workload"], r["peer"]): r for r in d["results"]}
    assert len(by) == 8
    for w in ("roundtrip", "start"):
        assert by[w, "mp-pool"]["status"] == "ok" and by[w, "mp-pool"]["median"] > 0
        assert by[w, "mpire"]["status"] == "failed"
        assert by[w, "mpire"]["error"] == "failed: OSError: no workers here"
        for ray in ("ray-pool", "ray-tasks"):
            assert by[w, ray]["status"] == "not installed" and by[w, ray]["error"] == BENCH_EXTRA
    assert table_row(text, "all workloads     mpire.WorkerPool")[-1] == "failed: OSError: no workers here"
    assert table_row(text, "all workloads     ray.util.multiprocessing.Pool")[-1] == BENCH_EXTRA
    assert table_row(text, "all workloads     ray.remote tasks")[-1] == BENCH_EXTRA
    assert "ray.init" not in p.stderr


@pytest.mark.skipif(not os.environ.get("CREW_TEST_RAY"),
                    reason="Ray's start and stop take 10-25 s: set CREW_TEST_RAY=1 to run")
def test_bench_ray(tmp_path):
    if not installed("ray"):
        pytest.skip("ray is not installed (pip install 'crew[bench]')")
    p = run_crew("bench", "--quick", "--repeats", "1", "--no-progress", "--workloads",
                 "roundtrip,map,start", "--peers", "mp-pool,ray-pool,ray-tasks", "--out", str(tmp_path))
    with open(tmp_path / "bench.json") as f:
        d = json.load(f)
    by = {(r["workload"], r["peer"]): r for r in d["results"]}
    for w in ("roundtrip", "map", "start"):
        for ray in ("ray-pool", "ray-tasks"):
            assert by[w, ray]["status"] == "ok" and by[w, ray]["median"] > 0, by[w, ray]
    # ray.init and ray.shutdown are counted once in each Ray row's pool start
    note = next(n for n in d["notes"] if n.startswith("Ray: ray.init took"))
    init_s = float(note.split("ray.init took ")[1].split(" s")[0])
    assert by["start", "ray-tasks"]["median"] > init_s * 1e3 * 0.99
    assert by["start", "ray-pool"]["median"] > init_s * 1e3 * 0.99
    assert table_row(p.stdout, "pool start              ray.remote tasks")[-1] == \
        "ray.init + first task + ray.shutdown, 1 sample"


def test_bench_rejects_unknown_names():
    p = subprocess.run([sys.executable, "-m", "crew", "bench", "--peers", "nope"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "unknown peer nope" in p.stderr


def test_demo_auto_lesson(demo):
    p, out, summary = demo
    auto = summary["lessons"][5]
    assert set(auto["times"]) == {"threads only", "processes only", 'kind="auto"'}
    assert auto["auto_vs_best_fixed"] > 0
    text = p.stdout
    assert "where kind=\"auto\" put each function" in text
    assert "crew._cli.tasks.wait_io" in text and "crew._cli.tasks.spin" in text
    assert "python -m crew advise mistake.py" in text and "change:" in text


# ------------------------------------------------------------------ help --

@pytest.mark.parametrize("cmd", [(), ("demo",), ("bench",), ("info",), ("advise",)])
def test_help_is_plain_text_with_examples(cmd):
    p = subprocess.run([sys.executable, "-m", "crew", *cmd, "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, COLUMNS="80"))
    out = p.stdout
    assert p.returncode == 0 and "``" not in out and "`" not in out
    long = [line for line in out.splitlines() if len(line) > 80]
    assert not long, f"lines wider than an 80-column terminal: {long}"
    assert "examples:" in out and "python -m crew " + " ".join(cmd) in out
    # every example line names a real command and options the parser takes
    for line in out.split("examples:")[1].splitlines():
        line = line.strip()
        if line.startswith("python -m crew ") and "|" not in line and ">" not in line:
            argv = line.split("  ")[0].split()[3:]
            from crew._cli import parser
            args = parser().parse_args(argv)  # the example's options parse; nothing runs
            assert args.command == argv[0], line


def test_bench_json(tmp_path):
    p = run_crew("bench", "--quick", "--repeats", "1", "--workloads", "roundtrip", "--peers",
                 "crew-processes,tpe", "--json", "--out", str(tmp_path))
    d = json.loads(p.stdout)                  # stdout is the JSON alone
    assert {(r["workload"], r["peer"]) for r in d["results"]} == {
        ("roundtrip", "crew-processes"), ("roundtrip", "tpe")}
    assert all(r["status"] == "ok" and r["median"] > 0 for r in d["results"])
    assert "crew bench:" in p.stderr          # the table went to stderr
    assert d == json.loads((tmp_path / "bench.json").read_text())


def test_demo_and_bench_say_what_to_install(tmp_path):
    """Without matplotlib (crew[full] has none), demo and bench say what to
    install before measuring anything, instead of a traceback at the first chart."""
    code = ("import importlib.util, sys\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n == 'matplotlib' else real(n, *a)\n"
            "from crew._cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    for cmd in (["demo", "--quick", "--out", str(tmp_path / "d")],
                ["bench", "--quick", "--out", str(tmp_path / "b")]):
        p = subprocess.run([sys.executable, "-c", code, *cmd], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "needs matplotlib" in p.stderr and f"pip install 'crew[{cmd[0]}]'" in p.stderr
        assert "Traceback" not in p.stderr and p.stdout == ""
