"""A real loopback dask.distributed cluster for the tests: `dask scheduler` and `dask worker` processes on 127.0.0.1."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

HOST = "127.0.0.1"
BIN = os.path.join(os.path.dirname(sys.executable), "dask")
START_TIMEOUT = 180   # a slow shared machine: imports alone can take many seconds


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and workers, each a process group of its own, marked with
    an environment variable that every descendant (crew's fork server and
    workers included) inherits, so that teardown can prove none is left."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.mark = f"crew-test-{uuid.uuid4().hex}"
        self.env = dict(os.environ, CREW_TEST_CLUSTER=self.mark,
                        DASK_DISTRIBUTED__WORKER__DAEMON="False",
                        DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED="False")
        # the workers import the tests' task module by name
        here = os.path.dirname(os.path.abspath(__file__))
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
        self.procs = []
        self.workers = []
        self.address = None

    def _spawn(self, args, name):
        log = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        p = subprocess.Popen([BIN] + args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=self.tmp)
        p.log_path = log.name
        log.close()
        self.procs.append(p)
        return p

    def start_scheduler(self):
        port = free_port()
        self.address = f"tcp://{HOST}:{port}"
        self._spawn(["scheduler", "--host", HOST, "--port", str(port), "--no-dashboard",
                     "--no-show"], "scheduler")

    def start_worker(self, name, preload=True, nthreads=1):
        args = ["worker", self.address, "--host", HOST, "--nthreads", str(nthreads),
                "--no-nanny", "--no-dashboard", "--name", name, "--memory-limit", "0",
                "--local-directory", os.path.join(self.tmp, name), "--death-timeout", "60"]
        if preload:
            args += ["--preload", "crew.dask"]
        p = self._spawn(args, name)
        self.workers.append(p)
        return p

    def wait_for_workers(self, client, n):
        client.wait_for_workers(n, timeout=START_TIMEOUT)

    def logs(self):
        out = []
        for p in self.procs:
            try:
                out.append(f"--- {p.log_path}\n" + open(p.log_path, errors="replace").read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def marked_pids(self):
        """Every live process (not a zombie) that carries this cluster's mark."""
        pids = []
        needle = f"CREW_TEST_CLUSTER={self.mark}".encode()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if needle not in f.read().split(b"\0"):
                        continue
                with open(f"/proc/{d}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            pids.append(int(d))
        return pids

    def stop(self, grace=30):
        """SIGTERM to each process group (workers first), SIGKILL what is left
        after grace seconds, then every marked process still alive."""
        for p in self.workers + [q for q in self.procs if q not in self.workers]:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(30)
        end = time.monotonic() + grace
        while self.marked_pids() and time.monotonic() < end:
            time.sleep(0.1)
        left = self.marked_pids()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left
