"""The fork server: a single-threaded Python process started with spawn,
that preloads crew and the parent's main module, then forks workers on
request. Requests come on an owner-only Unix socket, the pool's memfd with
SCM_RIGHTS; workers are forked with CLONE_PARENT, so that they are children
of the pool owner, which supervises and reaps them with pidfds.
"""
import atexit
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

_server_fds = []     # in the server: fds its forked workers must close
_servers = {}        # owner side: prelude -> (Popen, socket path, alive fd, dir)
_lock = threading.Lock()


def close_server_fds():
    for fd in _server_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _server_fds.clear()


_keeper = None       # owner side: queue of the keeper thread, once started


def _on_long_lived_thread(fn):
    """Runs fn on a thread that lives as long as the program.

    The workers the server forks are children of the owner (CLONE_PARENT)
    whose parent thread is the one that started the server, and they die
    with that thread (PR_SET_PDEATHSIG). Started from a short-lived thread
    (a request handler, a worker of some other pool), the server would take
    every pool's workers down when that thread ends. So the main thread
    starts it itself; any other thread hands the start to a keeper thread
    that sleeps, blocked, for the rest of the program.
    """
    global _keeper
    if threading.current_thread() is threading.main_thread():
        return fn()
    if _keeper is None:
        import queue
        q = queue.SimpleQueue()

        def keep():
            while True:
                job, box, done = q.get()
                try:
                    box.append((True, job()))
                except BaseException as e:  # handed back to the caller
                    box.append((False, e))
                done.set()

        threading.Thread(target=keep, name="crew-forkserver-keeper", daemon=True).start()
        _keeper = q
    box, done = [], threading.Event()
    _keeper.put((fn, box, done))
    done.wait()
    ok, value = box[0]
    if ok:
        return value
    raise value


def ensure_running(prelude_hex):
    """Owner side: the socket path of a running server for this prelude
    (started lazily, reused by later pools)."""
    with _lock:
        return _on_long_lived_thread(lambda: _ensure_running_locked(prelude_hex))


def _ensure_running_locked(prelude_hex):
    """Starts (or finds) the server; _lock held, on a long-lived thread."""
    from ._worker import BOOT
    s = _servers.get(prelude_hex)
    if s is not None and s[0].poll() is None:
        return s[1]
    if s is not None:  # it died (killed from outside): its directory goes with it
        _servers.pop(prelude_hex)
        try:
            os.close(s[2])
        except OSError:
            pass
        shutil.rmtree(s[3], ignore_errors=True)
    d = tempfile.mkdtemp(prefix="crew-fs-")
    os.chmod(d, 0o700)
    path = os.path.join(d, "sock")
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "forkserver", path, str(r), prelude_hex],
            pass_fds=(r,), close_fds=True)
    finally:
        os.close(r)
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if proc.poll() is not None:
            os.close(w)
            raise RuntimeError(f"crew: the fork server exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            os.close(w)
            raise RuntimeError("crew: the fork server did not start")
        time.sleep(0.005)
    _servers[prelude_hex] = (proc, path, w, d)
    return path


@atexit.register
def _stop_all():
    with _lock:
        for proc, path, w, d in _servers.values():
            try:
                os.close(w)   # EOF: the server leaves
                proc.wait(timeout=2)
            except Exception:
                proc.kill()
            shutil.rmtree(d, ignore_errors=True)
        _servers.clear()


def serve(path, alive_fd, prelude_hex):
    """Server side: never returns."""
    from ._worker import apply_prelude
    level = apply_prelude(prelude_hex)
    from . import _core, _runtime
    _runtime.FORKSERVER_LOG_LEVEL = level
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    sock.bind(tmp)
    os.chmod(tmp, 0o600)
    sock.listen(128)
    os.rename(tmp, path)   # appears only once it listens
    _server_fds[:] = [sock.fileno(), alive_fd]
    while True:
        try:
            ready, _, _ = select.select([sock, alive_fd], [], [])
        except InterruptedError:
            continue
        if alive_fd in ready:
            os._exit(0)
        conn, _ = sock.accept()
        try:
            msg, fds, _, _ = socket.recv_fds(conn, 4, 1)
            if len(msg) != 4 or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                conn.sendall(struct.pack("i", -22))
                continue
            slot = struct.unpack("i", msg)[0]
            _server_fds.append(conn.fileno())
            try:
                pid = _core.fork_worker(fds[0], slot)
            except OSError as e:
                pid = -(e.errno or 1)
            finally:
                _server_fds.pop()
                os.close(fds[0])
            conn.sendall(struct.pack("i", pid))
        except OSError:
            pass
        finally:
            conn.close()
