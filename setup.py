"""Builds the crew Python package: libcrew compiled once, linked into crew._core and crew._shared.

pyproject.toml holds the metadata; this file only says how the C parts are
compiled. Every C file gets the Makefile's flags (C11, -Wall -Wextra, and
-Werror when CREW_WERROR=1, as the Makefile and the tests set it), so a
warning fails the project's own builds as it fails `make`.
"""
import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # the source paths below are relative to this file

# -Werror where the project builds itself (the Makefile sets CREW_WERROR=1): a
# user's `pip install` from the sdist, with a newer compiler, should not fail
# on a warning that compiler added
CFLAGS = ["-std=c11", "-O2", "-pthread", "-Wall", "-Wextra"]
if os.environ.get("CREW_WERROR") == "1":
    CFLAGS.append("-Werror")
HEADERS = sorted(glob.glob("src/*/*.h")) + ["include/crew.h"]
MACROS = [("_GNU_SOURCE", "1")]
INCLUDES = ["include", "src"]

# libcrew as a static library (setuptools' build_clib), compiled once for both
# extensions; build_clib compiles with the interpreter's flags, -fPIC included.
libcrew = ("crew", {
    "sources": sorted(glob.glob("src/*/*.c")),
    "include_dirs": INCLUDES,
    "macros": MACROS,
    "cflags": CFLAGS,
    "obj_deps": {"": HEADERS},  # a header edit recompiles libcrew too
})


# build_ext relinks an extension only when a file it lists changed: libcrew's
# sources are listed, so an edit under src/ reaches an editable install too
LIBCREW_FILES = libcrew[1]["sources"] + HEADERS


def extension(name, source):
    # _codec.c: the one format of a Python object in shared memory, used by both
    return Extension(name, sources=[source, "python/crew/_codec.c"],
                     depends=LIBCREW_FILES + ["python/crew/_errors.h", "python/crew/_codec.h",
                                             "python/crew/_frame.h"],
                     include_dirs=INCLUDES,
                     define_macros=MACROS, extra_compile_args=CFLAGS,
                     extra_link_args=["-pthread"], libraries=["crew"])


setup(
    package_dir={"": "python"},
    packages=["crew", "crew._cli"],
    package_data={"crew": ["*.pyi", "py.typed"]},
    include_package_data=False,  # MANIFEST.in feeds the sdist; the wheel needs no C sources
    libraries=[libcrew],
    ext_modules=[extension("crew._core", "python/crew/_core.c"),
                 extension("crew._shared", "python/crew/_shared.c")],
)
