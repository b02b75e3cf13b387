# Sphinx configuration of crew's documentation site (make docs -> build/docs/html).
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))

project = "crew"
author = "crew's authors"
copyright = "crew's authors"
release = version = "0.1.0"

extensions = [
    "myst_parser",            # the pages are Markdown
    "sphinx.ext.autodoc",     # the Python API from the docstrings ...
    "crew_docs",              # ... with the .pyi stubs' signatures; the C API from
                              # include/crew.h; the CLI's --help; optional pages
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "_static", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# ```output blocks hold what an example prints (checked by tests/python/test_docs_examples.py)
highlight_language = "none"     # a plain ``` block is text
pygments_style = "friendly"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True}
autodoc_typehints = "signature"

html_theme = "alabaster"
html_title = "crew documentation"
html_static_path = ["_static"]
html_css_files = ["crew.css"]
html_theme_options = {
    "description": "Thread and process pools for Python and C, behind one API",
    "fixed_sidebar": True,
    "page_width": "1280px",
    "sidebar_width": "230px",
    "extra_nav_links": {"Troubleshooting": "troubleshooting.html", "Python API": "reference/python.html"},
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
