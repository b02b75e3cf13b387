"""Every code example of the documentation site (docs/) and the README runs
here: Python blocks as scripts (their ```output block, if any, is the expected
stdout, with ... matching anything), C blocks compiled against include/crew.h
(linked and run where libcrew is built), and each python -m crew / make
command of the shell blocks checked against the real CLI and Makefile."""
import doctest
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)
    if "/_" not in os.path.relpath(p, os.path.join(REPO, "docs")))
FENCE = re.compile(r"^(`{3,})([\w+-]*)\s*$")


def blocks(page):
    """[(language, first line number, code)] of the page's fenced blocks."""
    out, lang, start, buf, fence = [], None, 0, [], None
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        for n, line in enumerate(f.read().splitlines(), 1):
            if fence is None:
                m = FENCE.match(line)
                if m:
                    fence, lang, start, buf = m.group(1), m.group(2), n + 1, []
            elif line.strip() == fence:
                out.append((lang, start, "\n".join(buf) + "\n"))
                fence = None
            else:
                buf.append(line)
    return out


def examples(kind):
    found = []
    for page in PAGES:
        bs = blocks(page)
        for i, (lang, line, code) in enumerate(bs):
            if lang == "python" and kind == "python":
                expect = bs[i + 1][2] if i + 1 < len(bs) and bs[i + 1][0] == "output" else None
                found.append(pytest.param(code, expect, id=f"{page}:{line}"))
            elif lang == "c" and kind == "c":
                found.append(pytest.param(code, id=f"{page}:{line}"))
            elif lang in ("sh", "console", "bash") and kind == "sh":
                for k, cmd in enumerate(code.splitlines()):
                    cmd = cmd.split("#")[0].strip()
                    if cmd:
                        found.append(pytest.param(cmd, id=f"{page}:{line + k}"))
    return found


def test_every_block_is_a_known_kind():
    """A block is a runnable example (python, c, sh) or shown text (output,
    text, plain); a typo in a fence's language would skip an example."""
    for page in PAGES:
        for lang, line, code in blocks(page):
            assert lang in ("python", "c", "sh", "console", "bash", "output", "text", "", "{toctree}",
                            "{eval-rst}", "{crew-c-header}", "{crew-cli-help}"), f"{page}:{line}: {lang}"
            if lang == "output":
                prev = [b for b in blocks(page) if b[1] < line][-1]
                assert prev[0] == "python", f"{page}:{line}: an output block follows no python block"


def test_the_site_has_examples():
    assert len(examples("python")) >= 30


CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("code,expect", examples("python"))
def test_python_example(code, expect, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="100")
    env.pop("PYTHONWARNINGS", None)
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, f"the example failed:\n{code}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert p.stderr == "", f"the example wrote to stderr:\n{p.stderr}"
    if expect is not None:
        assert CHECKER.check_output(expect, p.stdout, FLAGS), (
            f"the page says the example prints:\n{expect}\nit printed:\n{p.stdout}")


def _cc():
    return shutil.which("cc") or shutil.which("gcc")


@pytest.mark.parametrize("code", examples("c"))
def test_c_example(code, tmp_path):
    """Compiled with the project's warnings; linked and run where libcrew is built."""
    if _cc() is None:
        pytest.skip("no C compiler")
    src = tmp_path / "example.c"
    src.write_text(code)
    lib = os.path.join(REPO, "build", "plain", "libcrew.a")
    flags = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
             "-I", os.path.join(REPO, "include")]
    if "int main(" not in code:
        r = subprocess.run([_cc(), *flags, "-fsyntax-only", str(src)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return
    if not os.path.exists(lib):
        r = subprocess.run([_cc(), *flags, "-fsyntax-only", str(src)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        pytest.skip("compiled only: build/plain/libcrew.a is not built (make lib)")
    exe = tmp_path / "example"
    r = subprocess.run([_cc(), *flags, str(src), lib, "-o", str(exe), "-pthread"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "failed" not in run.stdout


MAKE_TARGETS = None


@pytest.mark.parametrize("cmd", examples("sh"))
def test_shell_command(cmd):
    """python -m crew ... takes its options (parsed, not run); make TARGET exists."""
    global MAKE_TARGETS
    words = cmd.split()
    if "-m" in words and words[words.index("-m") + 1:words.index("-m") + 2] == ["crew"]:
        argv = []
        for w in words[words.index("-m") + 2:]:
            if w in ("|", ">", "2>", "&&", ";"):
                break
            argv.append(w)
        from crew._cli import main
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err, \
                pytest.raises(SystemExit) as e:
            main([*argv, "--help"])
        assert e.value.code == 0, f"{cmd}: {err.getvalue()}"
    elif words[0] == "make":
        if MAKE_TARGETS is None:
            with open(os.path.join(REPO, "Makefile")) as f:
                MAKE_TARGETS = set(re.findall(r"^([\w.-]+):", f.read(), flags=re.M))
        for w in words[1:]:
            if "=" not in w and not w.startswith("-"):
                assert w in MAKE_TARGETS, f"{cmd}: no target {w} in the Makefile"


def test_api_reference_covers_the_package():
    import crew
    with open(os.path.join(REPO, "docs", "reference", "python.md")) as f:
        page = f.read()
    for name in crew.__all__:
        assert re.search(rf"\bcrew\.{name}\b", page), f"crew.{name} is not in the API reference"


def test_c_reference_covers_the_header():
    sys.path.insert(0, os.path.join(REPO, "docs", "_ext"))
    try:
        import crew_docs
    finally:
        sys.path.pop(0)
    shown = "\n".join("\n".join(code) for _, groups in crew_docs.parse_header() for _, code in groups)
    missing = [f for f in crew_docs.declared_functions() if not re.search(rf"\b{f}\s*\(", shown)]
    assert not missing and len(crew_docs.declared_functions()) > 50, missing


def test_optional_pages_join_the_toctree_when_written():
    """docs/placement.md and docs/integrations.md (other work) are listed
    where they exist, and nothing is listed (no warning) where they do not."""
    sys.path.insert(0, os.path.join(REPO, "docs", "_ext"))
    try:
        import crew_docs
    finally:
        sys.path.pop(0)
    src = ["```{toctree}\nCREW_OPTIONAL_PAGES\n```\n"]
    crew_docs.optional_toctree(None, "index", src)
    have = [p for p in crew_docs.OPTIONAL_PAGES if os.path.exists(os.path.join(REPO, "docs", p + ".md"))]
    assert src[0] == "```{toctree}\n" + "".join(p + "\n" for p in have) + "```\n"
    with open(os.path.join(REPO, "docs", "index.md")) as f:
        assert "CREW_OPTIONAL_PAGES\n" in f.read()
