"""Sphinx configuration: the picows documentation site.

``tox -e docs`` builds it with warnings as errors and runs its doctests
against the installed package (autodoc imports the compiled module, so the
docstrings come from the extension itself).
"""
import os
import re

import picows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

project = "picows"
author = "picows contributors"
copyright = "picows contributors"
version = release = picows.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Markdown (MyST): internals.md and security.md are pages as they are.
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 4
# GitHub renders a heading level skipped (## then ####) as is; so do we.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}

# Offline by default (CI has no network): references to the standard
# library stay plain text (see _stdlib_as_text). PICOWS_DOCS_INTERSPHINX=1
# links them to docs.python.org.
intersphinx_mapping = {}
if os.environ.get("PICOWS_DOCS_INTERSPHINX"):
    intersphinx_mapping = {"python": ("https://docs.python.org/3", None)}

html_theme = "furo"
html_title = f"picows {release}"
html_static_path = []

# The doctests start servers on 127.0.0.1 port 0 and run them to the end.
doctest_global_setup = """
import asyncio
"""


# -- The Markdown files of the repository as pages --------------------------
# docs/*.md and the READMEs included by performance.md and conformance.md
# link to other files of the repository by relative path, which is right on
# GitHub. Here a link to a file that is a page of this site goes to the page;
# a link to any other file of the repository becomes plain text.
_PAGES = {
    "README.md": "index.md",
    "conformance/README.md": "conformance.md",
    "benchmarks/README.md": "performance.md",
    "docs/security.md": "security.md",
    "docs/internals.md": "internals.md",
}
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def _rewrite_links(text, source):
    """`source`: the path of the Markdown file, relative to the repository."""
    def fix(match):
        label, target = match.groups()
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        rel = os.path.normpath(os.path.join(os.path.dirname(source), path))
        page = _PAGES.get(rel)
        if page is None:
            return label
        return f"[{label}]({page}{'#' + anchor if anchor else ''})"
    return _LINK.sub(fix, text)


def _on_source_read(app, docname, content):
    if docname + ".md" in ("security.md", "internals.md"):
        content[0] = _rewrite_links(content[0], f"docs/{docname}.md")


def _on_include_read(app, relative_path, parent_docname, content):
    source = os.path.relpath(os.path.join(app.srcdir, str(relative_path)), REPO)
    if source.endswith(".md"):
        content[0] = _rewrite_links(content[0], source)


def _stdlib_as_text(app, env, node, contnode):
    """Offline, a reference into the standard library (``asyncio.Server``,
    ``asyncio.loop.create_server``) is shown as code, not as a warning."""
    target = node.get("reftarget", "")
    if target.split(".")[0] in ("asyncio", "ssl", "socket", "urllib", "functools", "zlib"):
        return contnode
    return None


def setup(app):
    app.connect("source-read", _on_source_read)
    app.connect("include-read", _on_include_read)
    app.connect("missing-reference", _stdlib_as_text)
