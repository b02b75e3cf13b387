"""crew shared state: a queue, a dict, an array and a lock shared with pool tasks.

    .venv/bin/python examples/python/shared_state.py
"""
import os

import numpy as np

import crew


def work(i, q, d, a, lock):
    a[i] *= 2                       # the same memory as the parent's array
    with d.lock():                  # a compound dict update, atomic
        d["done"] = d.get("done", 0) + 1
    with lock:
        d[f"task{i}"] = os.getpid()
    q.put((i, float(a[i].sum())))   # any picklable object; bytes go as they are
    return i


if __name__ == "__main__":
    q, d, lock = crew.Queue(), crew.SharedDict(), crew.Lock()
    a = crew.SharedArray.from_array(np.ones((8, 1000)))    # 64 KB, handed over by reference
    with crew.Executor(4) as ex:
        list(ex.map(work, range(8), [q] * 8, [d] * 8, [a] * 8, [lock] * 8))
    print("sums:", sorted(q.get() for _ in range(8)))
    print("tasks done:", d["done"], "array total:", a.sum())
    print("worker pids:", sorted(set(v for k, v in d.items() if k.startswith("task"))))
