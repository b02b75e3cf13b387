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
_servers = {}        # owner side: server key -> (Popen, socket path, alive fd, dir)
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


def server_key(prep):
    """What makes two fork servers differ: the parent's preparation data less
    what each fork request carries itself (working directory, log level)."""
    import pickle
    return pickle.dumps({k: v for k, v in prep.items() if k not in ("dir", "crew_log_level")}, 4)


def request_extra(prep):
    """What each fork request carries after the slot: the worker's root log
    level (int32, -1: none) and its working directory."""
    level = prep.get("crew_log_level")
    return struct.pack("i", -1 if level is None else int(level)) + os.fsencode(prep.get("dir", ""))


def ensure_running(prep):
    """Owner side: the socket path of a running server for this preparation
    data (started lazily, reused by later pools)."""
    with _lock:
        return _on_long_lived_thread(lambda: _ensure_running_locked(prep))


def _ensure_running_locked(prep):
    """Starts (or finds) the server; _lock held, on a long-lived thread."""
    from ._worker import BOOT, prelude_fd
    key = server_key(prep)
    s = _servers.get(key)
    if s is not None and s[0].poll() is None:
        return s[1]
    if s is not None:  # it died (killed from outside): its directory goes with it
        _servers.pop(key)
        try:
            os.close(s[2])
        except OSError:
            pass
        shutil.rmtree(s[3], ignore_errors=True)
    d = tempfile.mkdtemp(prefix="crew-fs-")
    os.chmod(d, 0o700)
    path = os.path.join(d, "sock")
    r, w = os.pipe()
    pfd = -1
    try:
        pfd = prelude_fd(prep)
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "forkserver", path, str(r), str(pfd)],
            pass_fds=(r, pfd), close_fds=True)
    except BaseException:
        os.close(w)
        shutil.rmtree(d, ignore_errors=True)
        raise
    finally:
        os.close(r)
        if pfd >= 0:
            os.close(pfd)
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if proc.poll() is not None:
            os.close(w)
            shutil.rmtree(d, ignore_errors=True)
            main = getattr(sys.modules.get("__main__"), "__file__", None)
            hint = (f" while it imported the main script {main} (its traceback is above). A "
                    f"process worker imports the main script to find its functions: code that "
                    f"starts a pool at the script's top level must sit under "
                    f"if __name__ == \"__main__\": (the main guard)") if main else ""
            raise RuntimeError(f"crew: the fork server exited with status {proc.returncode}{hint}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            os.close(w)
            shutil.rmtree(d, ignore_errors=True)
            raise RuntimeError("crew: the fork server did not start")
        time.sleep(0.005)
    _servers[key] = (proc, path, w, d)
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


def serve(path, alive_fd, prelude_fd):
    """Server side: never returns."""
    from ._worker import apply_prelude, read_prelude
    apply_prelude(read_prelude(prelude_fd))
    from . import _core, _runtime
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
            # slot (int32), then request_extra(): log level (int32) and cwd
            msg, fds, _, _ = socket.recv_fds(conn, 8 + 4096, 1)
            if len(msg) < 8 or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                conn.sendall(struct.pack("i", -22))
                continue
            slot, level = struct.unpack("ii", msg[:8])
            _runtime.FORKSERVER_LOG_LEVEL = None if level < 0 else level
            cwd = os.fsdecode(msg[8:])
            _server_fds.append(conn.fileno())
            try:
                if cwd:
                    os.chdir(cwd)   # the worker starts where its pool's owner was
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
