"""The pool lock is never held while waiting for something that needs the GIL (src/pool.c's lock order)."""
import subprocess
import sys
import textwrap

RECYCLED_THREADS = textwrap.dedent("""
    import crew

    def ident(x):
        return x

    if __name__ == "__main__":
        for _ in range(15):
            # every task retires its thread worker; the main thread submits with
            # the GIL held while recycled threads leave and want the GIL back
            with crew.Executor(2, kind="threads", max_tasks_per_child=1) as ex:
                fs = [ex.submit(ident, i) for i in range(2000)]
                assert [f.result(timeout=60) for f in fs] == list(range(2000))
        print("ok")
""")


def test_recycled_thread_workers_do_not_deadlock_a_submitter_holding_the_gil(tmp_path):
    # Before the fix the collector joined a recycled thread under the pool lock
    # while that thread waited for the GIL the submitter held: a hang every run.
    script = tmp_path / "recycled.py"
    script.write_text(RECYCLED_THREADS)
    try:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("deadlock: 15 x 2,000 tasks on recycled thread workers hung") from None
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
