"""Builds the crew Python package: crew._core compiled together with libcrew's sources."""
import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # the source paths below are relative to this file

core = Extension(
    "crew._core",
    sources=["python/crew/_core.c"] + sorted(glob.glob("src/*.c")),
    include_dirs=["include", "src"],
    define_macros=[("_GNU_SOURCE", "1")],
    extra_compile_args=["-std=gnu11", "-O2", "-pthread", "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
)

shared = Extension(  # crew._shared: shared state (locks, queue, pipe, array, dict)
    "crew._shared",
    sources=["python/crew/_shared.c", "src/sync.c", "src/cpu.c", "src/errors.c", "src/memfd.c"]
    + sorted(glob.glob("src/shared_*.c")),
    include_dirs=["include", "src"],
    define_macros=[("_GNU_SOURCE", "1")],
    extra_compile_args=["-std=gnu11", "-O2", "-pthread", "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
)

setup(
    package_dir={"": "python"},
    packages=["crew", "crew._cli"],
    package_data={"crew": ["*.pyi", "py.typed"]},
    ext_modules=[core, shared],
)
