"""python -m crew info: what this machine gives crew's workers."""
import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys

import crew

from . import common as C


DESCRIPTION = """\
What this machine gives crew's workers: the CPUs this process may really use
(affinity and cgroup quota: the default worker count), the start methods and
crew's default, Python and library versions, and the shared-memory limits
(/dev/shm, memfd) that large arguments and shared state live in."""

EPILOG = """\
examples:
  python -m crew info
      a table
  python -m crew info --json
      the same as one JSON object (usable_cpus, host_cpus, ...)
"""


def add_parser(sub):
    p = sub.add_parser("info", help="usable CPUs, start methods, versions, shared-memory limits",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(run=run)
    return p


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _cgroup_quota():
    """(text, cpus or None): the cgroup v2 (or v1) CPU quota of this process."""
    rel = None
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0":
            rel = parts[2]
    dirs = []
    if rel is not None:
        d = "/sys/fs/cgroup" + rel
        while True:
            dirs.append(d)
            if d in ("/sys/fs/cgroup", "/sys/fs/cgroup/", "/"):
                break
            d = os.path.dirname(d)
    best = None
    for d in dirs:
        v = _read(os.path.join(d, "cpu.max"))
        if v:
            q, per = (v.split() + ["100000"])[:2]
            if q != "max":
                cpus = int(q) / int(per)
                if best is None or cpus < best[1]:
                    best = (f"{q}/{per} ({cpus:g} CPUs) in {d}", cpus)
    if best:
        return best
    q, per = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if q and per and int(q) > 0:
        return f"{q}/{per} ({int(q) / int(per):g} CPUs, cgroup v1)", int(q) / int(per)
    return "none (max)", None


def _bytes(n):
    if n is None:
        return "-"
    if n >= 2**60:
        return "unlimited"
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def collect():
    d = {}
    d["crew_version"] = crew.__version__
    d["host_cpus"] = os.cpu_count()
    try:
        aff = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        aff = list(range(os.cpu_count() or 1))
    d["affinity_cpus"] = len(aff)
    d["affinity"] = aff
    quota_text, quota = _cgroup_quota()
    d["cgroup_cpu_quota"] = quota_text
    d["cgroup_cpus"] = quota
    d["usable_cpus"] = crew.cpu_count()
    d["crew_default_workers"] = crew.cpu_count()
    d["crew_start_method"] = crew.get_start_method()
    d["multiprocessing_start_method"] = mp.get_start_method(allow_none=True) or \
        mp.get_context().get_start_method()
    d["start_methods_available"] = mp.get_all_start_methods()
    d["python"] = sys.version.split()[0]
    d["python_implementation"] = platform.python_implementation()
    d["executable"] = sys.executable
    try:
        import numpy
        d["numpy"] = numpy.__version__
    except ImportError:
        d["numpy"] = None
    try:
        import cloudpickle
        d["cloudpickle"] = cloudpickle.__version__
    except ImportError:
        d["cloudpickle"] = None
    d["platform"] = platform.platform()
    try:
        st = os.statvfs("/dev/shm")
        d["dev_shm_size"] = st.f_blocks * st.f_frsize
        d["dev_shm_free"] = st.f_bavail * st.f_frsize
    except OSError:
        d["dev_shm_size"] = d["dev_shm_free"] = None
    for k in ("shmmax", "shmall", "shmmni"):
        v = _read(f"/proc/sys/kernel/{k}")
        d[k] = int(v) if v and v.isdigit() else v
    v = _read("/proc/sys/vm/max_map_count")
    d["max_map_count"] = int(v) if v else None
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    d["rlimit_memlock"] = soft
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    d["rlimit_nofile"] = soft
    mem = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            mem = int(line.split()[1]) * 1024
    d["mem_available"] = mem
    d["memfd_create"] = hasattr(os, "memfd_create")
    return d


def run(args):
    d = collect()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    why = []
    if d["affinity_cpus"] < (d["host_cpus"] or 0):
        why.append(f"affinity allows {d['affinity_cpus']}")
    if d["cgroup_cpus"] is not None:
        why.append(f"cgroup quota {d['cgroup_cpus']:g}")
    shm_page = 4096
    rows = [
        ("usable CPUs (crew.cpu_count())", f"{d['usable_cpus']}" + (f"  ({', '.join(why)})" if why else "")),
        ("host CPUs (os.cpu_count())", d["host_cpus"]),
        ("CPU affinity", f"{d['affinity_cpus']} CPUs: {_ranges(d['affinity'])}"),
        ("cgroup CPU quota", d["cgroup_cpu_quota"]),
        ("crew default workers", d["crew_default_workers"]),
        ("crew default start method", d["crew_start_method"]),
        ("multiprocessing default start method", d["multiprocessing_start_method"]),
        ("start methods available", ", ".join(d["start_methods_available"])),
        ("Python", f"{d['python']} ({d['python_implementation']}, {d['executable']})"),
        ("numpy", d["numpy"] or "not installed"),
        ("cloudpickle", d["cloudpickle"] or "not installed (lambdas cannot cross)"),
        ("crew", d["crew_version"]),
        ("platform", d["platform"]),
        ("/dev/shm size (free)", f"{_bytes(d['dev_shm_size'])} ({_bytes(d['dev_shm_free'])} free)"),
        ("kernel.shmmax", _bytes(d["shmmax"]) if isinstance(d["shmmax"], int) else d["shmmax"]),
        ("kernel.shmall", _bytes(d["shmall"] * shm_page) if isinstance(d["shmall"], int) else d["shmall"]),
        ("memfd_create (crew's shared memory)", "yes" if d["memfd_create"] else "no"),
        ("vm.max_map_count", d["max_map_count"]),
        ("RLIMIT_MEMLOCK", _bytes(d["rlimit_memlock"]) if d["rlimit_memlock"] >= 0 else "unlimited"),
        ("RLIMIT_NOFILE", d["rlimit_nofile"]),
        ("memory available", _bytes(d["mem_available"])),
    ]
    print(C.table(["crew info", ""], rows, ["l", "l"]))
    return 0


def _ranges(cpus):
    out = []
    for c in cpus:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)
