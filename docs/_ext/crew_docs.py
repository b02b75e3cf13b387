"""Sphinx extension for crew's site: the C API page rendered from include/crew.h's
comments, the CLI's --help as literal blocks, the Python signatures taken from
the .pyi stubs, and toctree entries for pages other helpers may not have written yet."""
import ast
import contextlib
import io
import os
import re

try:
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives
except ImportError:       # the header parser alone, for the tests of every venv
    nodes = directives = None
    Directive = object

DOCS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(DOCS)
HEADER = os.path.join(REPO, "include", "crew.h")
STUBS = [("crew", os.path.join(REPO, "python", "crew", "__init__.pyi")),
         ("crew", os.path.join(REPO, "python", "crew", "shared.pyi"))]
# pages written by other work; listed in the toctree only where they exist
OPTIONAL_PAGES = ["placement", "integrations"]

# ------------------------------------------------------------ C header --

_SECTION = re.compile(r"^/\* -+ ([\w ()/,.-]+?) -+ \*/$")
_BANNER = re.compile(r"^ \* (.+)$")


def _comment_text(lines):
    """The prose of a /* ... */ block, without its frame."""
    out = []
    for line in lines:
        s = line.strip()
        s = re.sub(r"^/\*+", "", s)
        s = re.sub(r"\*+/$", "", s)
        s = re.sub(r"^\* ?", "", s)
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse_header(path=HEADER):
    """[(section title, [(comment lines, code lines)])] for include/crew.h.
    A group is the comments and declarations between two blank lines; a
    comment that follows a declaration on its own line belongs to it."""
    with open(path) as f:
        lines = f.read().splitlines()
    sections = [("Conventions and errors", [])]
    group = []
    in_banner = False

    def flush():
        if not group:
            return
        comment, code, in_comment = [], [], False
        for ln in group:
            st = ln.strip()
            if in_comment or st.startswith("*") or (st.startswith("/*") and not code_line_has_code(st)):
                comment.append(ln)
                in_comment = not st.endswith("*/") if (in_comment or st.startswith("/*")) else False
                if st.startswith("/*") and st.endswith("*/"):
                    in_comment = False
            else:
                code.append(ln)
        text = _comment_text(comment)
        if code or text:
            sections[-1][1].append((text, code))
        group.clear()

    i = 0
    while i < len(lines):
        ln = lines[i]
        st = ln.strip()
        i += 1
        if i == 1 or st.startswith(("#ifndef CREW_H", "#define CREW_H", "#include", "#ifdef __cplusplus",
                                    "extern \"C\"", "#endif", "}")) and not group:
            continue
        m = _SECTION.match(st)
        if m:
            flush()
            sections.append((re.sub(r" \(.*\)$", "", m.group(1).strip()).capitalize(), []))
            continue
        if st.startswith("/* ====="):          # a banner: its title is the next line
            flush()
            title = lines[i].strip(" *") if i < len(lines) else "More"
            sections.append((re.sub(r" \(.*\)$", "", title).rstrip("."), []))
            while i < len(lines) and not lines[i].strip().startswith(" * =====") \
                    and not lines[i].strip().startswith("* ====="):
                i += 1
            i += 1
            continue
        if not st:
            flush()
            continue
        group.append(ln)
    flush()
    return [(t, g) for t, g in sections if g]


def code_line_has_code(st):
    """A line that opens a comment but holds code after it (never in crew.h)."""
    return False


def declared_functions(path=HEADER):
    """Every function name crew.h declares."""
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return sorted(set(re.findall(r"^[\w\s\*]*?\b(crew_\w+)\s*\(", text, flags=re.M)))


def render_comment(text):
    """A header comment's prose as nodes: "Title" over a line of dashes is a
    heading, "- " lines are bullet items, the rest paragraphs."""
    out, para, bullets = [], [], None

    def end_para():
        nonlocal para
        if para:
            p = nodes.paragraph(text=" ".join(para))
            if bullets is not None and bullets.children:
                bullets.children[-1] += p
            else:
                out.append(p)
        para = []

    for i, line in enumerate(text):
        st = line.strip()
        nxt = text[i + 1].strip() if i + 1 < len(text) else ""
        if set(st) <= {"-"} and st:
            continue                                   # a heading's underline
        if nxt and set(nxt) <= {"-"} and len(nxt) >= 3:
            end_para()
            bullets = None
            out.append(nodes.rubric(text=st))
        elif not st:
            end_para()
            bullets = None
        elif st.startswith("- "):
            end_para()
            if bullets is None:
                bullets = nodes.bullet_list()
                out.append(bullets)
            bullets += nodes.list_item()
            para = [st[2:]]
        else:
            para.append(st)
    end_para()
    return out


class CHeader(Directive):
    """.. crew-c-header:: renders include/crew.h, section by section."""
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        env.note_dependency(HEADER)
        out = []
        for title, groups in parse_header():
            sec = nodes.section(ids=[nodes.make_id("c-" + title)], names=[nodes.fully_normalize_name("c " + title)])
            sec += nodes.title(text=title)
            for text, code in groups:
                if code:
                    src = "\n".join(code)
                    block = nodes.literal_block(src, src, language="c")
                    names = re.findall(r"\b(crew_\w+)\s*\(", src)
                    if names:
                        block["ids"] = [nodes.make_id(n) for n in dict.fromkeys(names)]
                    sec += block
                if text:
                    sec += render_comment(text)
            out.append(sec)
        return out

# ----------------------------------------------------------------- CLI --


def cli_help(argv):
    """What python -m crew ARGV --help prints in an 80-column terminal."""
    from crew._cli import main
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            try:
                main([*argv, "--help"])
            except SystemExit:
                pass
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return buf.getvalue()


class CliHelp(Directive):
    """.. crew-cli-help:: [COMMAND] : the help text, as the terminal shows it."""
    optional_arguments = 1
    has_content = False

    def run(self):
        argv = self.arguments[0].split() if self.arguments else []
        text = cli_help(argv).rstrip()
        block = nodes.literal_block(text, text, language="text")
        return [block]

# ----------------------------------------------------------- .pyi stubs --


class _Text:
    """An annotation shown as the stub spells it."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def stub_functions():
    """{"crew.Executor.submit": ast.FunctionDef, ...} from the .pyi stubs."""
    found = {}
    for mod, path in STUBS:
        with open(path) as f:
            tree = ast.parse(f.read())

        def visit(body, prefix):
            for node in body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{prefix}.{node.name}"] = node
                elif isinstance(node, ast.ClassDef):
                    visit(node.body, f"{prefix}.{node.name}")
        visit(tree.body, mod)
    return found


def stub_signature(node, runtime):
    """The runtime signature (its real defaults) with the stub's annotations;
    the stub's own where there is no runtime one (C functions)."""
    import inspect
    a = node.args
    every = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]
    notes = {x.arg: _Text(ast.unparse(x.annotation)) for x in every if x.annotation is not None}
    ret = _Text(ast.unparse(node.returns)) if node.returns is not None else inspect.Signature.empty
    if runtime is None:
        text = ast.unparse(a)
        text = re.sub(r"^(self|cls)(, )?", "", text)
        return "(" + text + ")", (None if node.returns is None else ast.unparse(node.returns))
    params = [p.replace(annotation=notes.get(p.name, p.annotation)) for p in runtime.parameters.values()
              if p.name not in ("self", "cls")]
    sig = runtime.replace(parameters=params, return_annotation=ret)
    text = str(sig)
    if " -> " in text:
        text, r = text.rsplit(" -> ", 1)
        return text, r
    return text, None


_STUBS = None


def use_stub_signature(app, what, name, obj, options, signature, return_annotation):
    import inspect
    global _STUBS
    if _STUBS is None:
        _STUBS = stub_functions()
    if what not in ("class", "exception", "function", "method"):
        return None
    key = name + ".__init__" if what in ("class", "exception") else name
    node = _STUBS.get(key)
    if node is None:
        return None
    if signature is None:
        # no runtime signature (a C method): Sphinx 9 cannot take one from this
        # event then; plain_docstring writes the stub's signature in the text
        return None
    target = obj.__init__ if what in ("class", "exception") else obj
    try:
        runtime = inspect.signature(target)
    except (TypeError, ValueError):
        runtime = None
    sig, ret = stub_signature(node, runtime)
    return sig, (None if what in ("class", "exception") else ret)

# ------------------------------------------------------ optional pages --


def optional_toctree(app, docname, source):
    if "CREW_OPTIONAL_PAGES" in source[0]:
        have = [p for p in OPTIONAL_PAGES if os.path.exists(os.path.join(DOCS, p + ".md"))]
        source[0] = source[0].replace("CREW_OPTIONAL_PAGES\n", "".join(p + "\n" for p in have))


_LITERAL = re.compile(r"(``.+?``)")


def plain_docstring(app, what, name, obj, options, lines):
    """crew's docstrings are reST with a few plain-text habits: a lone *
    (fn(*args), the * of a signature) is no emphasis here, and a paragraph
    that repeats the signature shown above it is dropped."""
    global _STUBS
    short = name.rsplit(".", 1)[-1]
    if what in ("function", "method"):
        import inspect
        if _STUBS is None:
            _STUBS = stub_functions()
        node = _STUBS.get(name)
        try:
            inspect.signature(obj)
        except (TypeError, ValueError):
            if node is not None:       # a C method: its signature, as the stub has it
                sig, ret = stub_signature(node, None)
                lines[:0] = [f"``{short}{sig}{' -> ' + ret if ret else ''}``", ""]
                return
    if lines and lines[0].startswith(short + "("):       # Pool(processes=None, ...
        while lines and lines[0].strip():
            lines.pop(0)
        while lines and not lines[0].strip():
            lines.pop(0)
    i = 0
    while i < len(lines):
        # a paragraph that is only the signature again (Executor(max_workers=None, ...))
        if lines[i].strip().startswith(short + "(") and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            if lines[j - 1].rstrip().endswith(")"):
                del lines[i:j + 1]
                continue
        parts = _LITERAL.split(lines[i])
        lines[i] = "".join(p if p.startswith("``") else re.sub(r"(?<!\\)\*", r"\\*", p)
                           for p in parts)
        i += 1


def setup(app):
    app.connect("autodoc-process-docstring", plain_docstring)
    directives.register_directive("crew-c-header", CHeader)
    directives.register_directive("crew-cli-help", CliHelp)
    app.connect("autodoc-process-signature", use_stub_signature)
    app.connect("source-read", optional_toctree)
    return {"version": "1", "parallel_read_safe": True}
