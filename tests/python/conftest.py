import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import crew  # noqa: E402

METHODS = ["forkserver", "spawn", "fork"]
# "auto": kind="auto" (thread and process workers, each function placed by
# measurement): every executor behaviour of the suite holds there too
KINDS = [("threads", None)] + [("processes", m) for m in METHODS] + [("auto", None)]


def _id(p):
    return p[0] if p[1] is None else p[1]


@pytest.fixture(params=KINDS, ids=_id)
def kind_method(request):
    return request.param


@pytest.fixture(params=METHODS)
def method(request):
    return request.param


@pytest.fixture
def ex(kind_method):
    kind, m = kind_method
    with crew.Executor(2, kind=kind, start_method=m) as e:
        yield e


@pytest.fixture
def pex(method):
    with crew.Executor(2, start_method=method) as e:
        yield e
