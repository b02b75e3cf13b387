"""crew's one codec (python/crew/_codec.h): task arguments and results, queue items and shared dict entries are the same frames, and a forged frame fails cleanly."""
import pickle
import random
import struct
import threading
import time

import numpy as np
import pytest

import crew
import crew._core as core
import crew._runtime as rt
import shared_tasks as T

MALFORMED = "crew: malformed shared message"


def _objects():
    return [0, -1, 2**63 - 1, -2**63, 2**70, 2.5, float("inf"), "", "héllo", b"", b"\0x",
            bytearray(b"ab"), None, True, (1, "a"), [1, [2, 3]], {"k": (1.5, b"v")},
            b"B" * (rt.OOB_MIN + 5), np.arange(7), np.arange(rt.OOB_MIN // 8 + 3, dtype="f8"),
            np.asfortranarray(np.ones((300, 40)))]


def _same(a, b):
    if isinstance(a, np.ndarray):
        return type(b) is np.ndarray and a.dtype == b.dtype and np.array_equal(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _frame(obj, oob=True):
    return b"".join(bytes(p) for p in core.encode(obj, 0, pickle.dumps, oob))


def test_task_and_shared_paths_decode_alike():
    """Each object, sent to a process task and returned, put in a Queue by
    that task, and stored in a SharedDict, comes back the same (same type)
    on every path."""
    objs = _objects()
    q = crew.Queue()
    d = crew.SharedDict()
    with crew.Executor(2, kind="processes") as ex:
        futs = [ex.submit(T.echo_via_queue, q, o) for o in objs]
        back = [f.result(timeout=60) for f in futs]
    queued = [q.get(timeout=10) for _ in objs]
    for i, o in enumerate(objs):
        d[i] = o
        assert _same(o, back[i]), (o, back[i])
        assert any(_same(o, x) for x in queued), o
        assert _same(o, d[i]), (o, d[i])
        assert _same(o, core.decode(_frame(o))[1])
        if type(o) not in (dict, list, bytearray, np.ndarray):   # hashable: a key too
            d[o] = i
            assert d[o] == i and o in d


def test_queue_sends_the_codec_frame():
    """A queue's message is the codec's frame itself (its length, which the
    too-big error reports, is the frame's)."""
    q = crew.Queue(maxbytes=4096)
    for obj in ("s" * 5000, np.arange(20000, dtype="f8"), 7.5 * np.ones(3000), (1, 2) * 2000):
        n = len(_frame(obj))
        with pytest.raises(ValueError, match=f"message of {n} bytes is too big"):
            q.put(obj)


def test_get_many_of_out_of_band_frames():
    """Frames with out-of-band buffers taken together (decoded from a copy)."""
    q = crew.Queue()
    arrs = [np.arange(10_000, dtype="f8") * k for k in range(3)]
    q.put_many(arrs)
    got = []
    while len(got) < 3:
        got += q.get_many(3, timeout=10)
    assert all(_same(a, b) for a, b in zip(arrs, got))


def test_frame_layout():
    """The format _codec.h documents: kinds, flags, the 'P' header and table,
    64-byte aligned buffers; the task path puts its flags in byte 1."""
    assert _frame(b"xy") == b"B\0xy"
    assert _frame(bytearray(b"xy")) == b"A\0xy"
    assert _frame("é") == b"S\0" + "é".encode()
    assert _frame(-2) == b"I\0" + struct.pack("<q", -2)
    assert _frame(0.5) == b"F\0" + struct.pack("<d", 0.5)
    assert _frame(memoryview(b"mv")) == b"B\0mv"
    f = _frame((1, 2))
    assert f[:2] == b"P\0" and struct.unpack_from("<xxxxIQ", f) == (0, len(f) - 16)
    assert pickle.loads(f[16:]) == (1, 2)
    a = np.arange(rt.OOB_MIN // 8, dtype="f8")
    parts = rt.encode((a, a + 1), rt.F_CHUNK)
    f = b"".join(bytes(p) for p in parts)
    kind, flags, nb, plen = struct.unpack_from("<cBxxIQ", f)
    assert (kind, flags, nb) == (b"P", rt.F_CHUNK, 2)
    for i in range(nb):
        off, ln = struct.unpack_from("<QQ", f, 16 + 16 * i)
        assert off % 64 == 0 and ln == a.nbytes and off >= 16 + 32 + plen
        assert np.array_equal(np.frombuffer(f[off:off + ln]), a + i)
    flags, obj = rt.decode(memoryview(f))
    assert flags == rt.F_CHUNK and _same(obj, (a, a + 1))
    # in band: under the threshold, past MAX_OOB, or with oob off
    small = np.arange(10)
    assert struct.unpack_from("<xxxxI", _frame(small))[0] == 0
    many = [np.arange(rt.OOB_MIN // 8, dtype="f8") + k for k in range(rt.MAX_OOB + 2)]
    f = _frame(many)
    assert struct.unpack_from("<xxxxI", f)[0] == rt.MAX_OOB
    assert _same(core.decode(f)[1], many)
    assert struct.unpack_from("<xxxxI", _frame(many, oob=False))[0] == 0


def test_out_of_band_buffers_are_views():
    """The task path reads out-of-band buffers in place (no copy)."""
    a = np.arange(rt.OOB_MIN, dtype="u1")
    buf = bytearray(b"".join(bytes(p) for p in rt.encode(a)))
    got = rt.decode(memoryview(buf))[1]
    buf[-1] ^= 0xFF
    assert got[-1] == a[-1] ^ 0xFF


def _hdr(nb, plen, kind=b"P", pad=b"\0\0"):
    return kind + b"\0" + pad + struct.pack("<IQ", nb, plen)


@pytest.mark.parametrize("frame", [
    b"P", b"Z\0", b"\0\0", b"I\0" + b"\0" * 7, b"I\0" + b"\0" * 9, b"F\0" + b"\0" * 4,
    b"P\0" + b"\0" * 13,                                   # shorter than the header
    _hdr(0, 1),                                            # pickle past the end
    _hdr(0, 2**64 - 1) + b".",                             # a length that wraps
    _hdr(1, 1) + b".",                                     # table past the end
    _hdr(rt.MAX_OOB + 1, 1) + b"\0" * 16 * 30 + b".",      # too many buffers
    _hdr(2**32 - 1, 0),                                    # a count that would wrap
    _hdr(1, 1) + struct.pack("<QQ", 40, 1) + b".",         # buffer past the end
    _hdr(1, 1) + struct.pack("<QQ", 2**64 - 1, 2) + b".",  # offset + length wraps
    _hdr(1, 1) + struct.pack("<QQ", 33, 2**64 - 1) + b".",
    _hdr(0, 1, pad=b"\0\1") + b".",                        # padding not zero
])
def test_forged_frames_raise_cleanly(frame):
    with pytest.raises(ValueError, match=MALFORMED):
        core.decode(frame)
    with pytest.raises(ValueError, match=MALFORMED):
        rt.decode(memoryview(bytearray(frame)))


def test_empty_frame():
    with pytest.raises(ValueError, match="crew: empty shared message"):
        core.decode(b"")


def test_mutated_frames_never_crash():
    """Seeded mutations of a real frame's header and table (its lengths,
    offsets and count) and truncations at every length: each decodes or
    raises an exception, none reads outside the frame."""
    a = np.arange(rt.OOB_MIN // 8 + 1, dtype="f8")
    good = _frame((a, a[:9000], "x"))
    nb = struct.unpack_from("<xxxxI", good)[0]
    assert nb == 2
    rng = random.Random(1234)
    head = 16 + 16 * nb
    for _ in range(3000):
        f = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(8, head)                 # pickle length and table
            f[at] = rng.randrange(256) if rng.random() < 0.7 else rng.choice((0, 0xFF))
        try:
            core.decode(bytes(f))
        except Exception:
            pass
    for n in range(0, len(good), 997):
        with pytest.raises(Exception):
            core.decode(good[:n])


def test_process_task_with_forged_result_frame_is_an_error_not_a_crash():
    """run() (the worker's runner) given a malformed payload answers with
    the error as the task's outcome."""
    ok, parts = rt.run(memoryview(bytearray(_hdr(0, 99) + b".")))
    flags, out = rt.decode(memoryview(b"".join(bytes(p) for p in parts)))
    assert ok and out[0] == 1 and isinstance(out[1], ValueError) and MALFORMED in str(out[1])


def test_released_memoryview_is_refused_not_read():
    """A released memoryview raises ValueError on every path (it was read
    after its memory was freed: garbage in the queue)."""
    m = memoryview(bytearray(b"xyz" * 100))
    m.release()
    q, d = crew.Queue(), crew.SharedDict()
    with pytest.raises(ValueError, match="released"):
        q.put(m)
    with pytest.raises(ValueError, match="released"):
        d["k"] = m
    with pytest.raises(ValueError, match="released"):
        core.encode(m, 0, pickle.dumps, True)
    assert q.empty() and "k" not in d


def test_a_bytearray_being_sent_cannot_be_resized():
    """While a bytearray's frame is written (a put may wait with the GIL
    released), the bytearray is exported: a resize from another thread
    fails instead of freeing the memory being copied."""
    q = crew.Queue(maxbytes=1 << 16)
    q.put(b"x" * 20000)
    q.put(b"x" * 20000)            # the queue is then too full for `big`
    big = bytearray(b"y" * 30000)
    errs, got = [], []

    def grow():
        time.sleep(0.2)
        try:
            big.extend(b"z" * 10**6)
        except BufferError as e:
            errs.append(e)
        got.append(q.get())        # room for the put
        got.append(q.get())
    t = threading.Thread(target=grow)
    t.start()
    q.put(big, timeout=10)
    t.join()
    assert got == [b"x" * 20000] * 2
    assert errs and q.get(timeout=5) == bytearray(b"y" * 30000)
