"""progress=True draws a tqdm bar when a terminal is attached, and nothing otherwise."""
import fcntl
import os
import pty
import struct
import subprocess
import termios
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import crew

    def sq(x):
        return x * x

    if __name__ == "__main__":
        with crew.Executor(2) as ex:
            assert list(ex.map(sq, range(200), progress=True)) == [x * x for x in range(200)]
        with crew.Pool(2) as p:
            assert list(p.imap(sq, range(50), chunksize=5, progress=True)) == [x * x for x in range(50)]
        print("done")
""")


def _run(tmp_path, tty):
    script = tmp_path / "progress.py"
    script.write_text(SCRIPT)
    if not tty:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout, out.stderr
    master, slave = pty.openpty()
    # a real terminal has a size; a fresh pty's is 0x0, where tqdm (4.70) draws nothing
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                stderr=slave, text=True)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:      # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        return stdout, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)


def test_bar_on_a_terminal(tmp_path):
    stdout, term = _run(tmp_path, tty=True)
    assert stdout.strip() == "done"
    assert "200/200" in term and "100%" in term     # the Executor.map bar, finished
    assert "50/50" in term                           # the Pool.imap bar


def test_no_bar_without_a_terminal(tmp_path):
    stdout, stderr = _run(tmp_path, tty=False)
    assert stdout.strip() == "done"
    assert "%" not in stderr and "it/s" not in stderr
