"""Sphinx configuration of the Flask-Download documentation."""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import tempfile
import typing as t
import zlib

if t.TYPE_CHECKING:
    from docutils.nodes import Element
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

project = "Flask-Download"
copyright = "The Flask-Download developers"
author = "The Flask-Download developers"
release = importlib.metadata.version("Flask-Download")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "pallets_sphinx_themes",
    "myst_parser",
]
# CHANGES.md and SECURITY.md are Markdown, included as they are.
source_suffix = {".rst": "restructuredtext"}
myst_heading_anchors = 3
exclude_patterns = ["_build"]
# SECURITY.md is included below the page title, so its headings start at H2.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

# Private type variables and aliases that show up in signatures: nothing to
# link them to (only reported by nitpicky builds, `sphinx-build -n`).
nitpick_ignore = [
    ("py:class", "flask_download.accel.F"),
    ("py:class", "flask_download.edge._required.F"),
    ("py:class", "flask_download.signing.F"),
    ("py:class", "_ranges.RangeDecision"),
    ("py:class", "RouteCallable"),  # flask.typing, not in Flask's docs
]


# Links to the documentation of Python and the libraries we build on.
#
# An inventory that cannot be fetched (CI reaches package registries only) is
# a warning, which `sphinx-build -W` turns into an error. So each mapping also
# names an empty local inventory: when the site is unreachable that one is
# used, Sphinx only logs that it fell back, and the references render as
# plain text. A build with network access links them.
def _empty_inventory() -> str:
    fd, path = tempfile.mkstemp(prefix="flask-download-", suffix=".inv")
    with os.fdopen(fd, "wb") as f:
        f.write(
            b"# Sphinx inventory version 2\n"
            b"# Project: none\n"
            b"# Version: \n"
            b"# The remainder of this file is compressed using zlib.\n"
            + zlib.compress(b"")
        )
    atexit.register(os.remove, path)
    return path


_OFFLINE = _empty_inventory()
intersphinx_mapping = {
    name: (url, (None, _OFFLINE))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "flask": "https://flask.palletsprojects.com/en/stable/",
        "werkzeug": "https://werkzeug.palletsprojects.com/en/stable/",
        "sqlalchemy": "https://docs.sqlalchemy.org/en/20/",
        "fsspec": "https://filesystem-spec.readthedocs.io/en/latest/",
    }.items()
}
# Do not let an unreachable host hold the build.
intersphinx_timeout = 10

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_context = {
    "project_links": [],
}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
singlehtml_sidebars = {"index": ["project.html", "localtoc.html"]}
html_title = f"Flask-Download Documentation ({version})"
html_show_sourcelink = False


# Our modules import `typing as t`, `collections.abc as cabc` and SQLAlchemy as
# `sa` / `orm`, and autodoc writes annotations as they are spelt. Look such a
# name up again in the inventories under its full name.
_ALIASES = {
    "t.": "typing.",
    "cabc.": "collections.abc.",
    "sa.": "sqlalchemy.",
    "orm.": "sqlalchemy.orm.",
}
# Names imported from the libraries, as they appear in annotations.
_NAMES = {
    "Flask": "flask.Flask",
    "Blueprint": "flask.Blueprint",
    "AbstractFileSystem": "fsspec.spec.AbstractFileSystem",
    "SansIOResponse": "werkzeug.sansio.response.Response",
    # `t.Literal[False]` is written with the alias, so Sphinx does not see a
    # Literal and makes its value a class reference: Python's constant.
    "False": "False",
    "True": "True",
}


def _resolve_alias(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element
) -> Element | None:
    from sphinx.ext import intersphinx

    target = node.get("reftarget", "")
    full = _NAMES.get(target)
    for alias, module in _ALIASES.items():
        if full is None and target.startswith(alias):
            full = module + target[len(alias) :]
    if full is None:
        return None
    reftype = node.get("reftype")
    node["reftarget"] = full
    try:
        found = intersphinx.missing_reference(app, env, node, contnode)
        if found is None and reftype == "class":
            # Annotations are class references, but Python documents
            # `typing.Any`, `typing.Literal`... as data.
            node["reftype"] = "obj"
            found = intersphinx.missing_reference(app, env, node, contnode)
        return found
    finally:
        node["reftarget"] = target
        node["reftype"] = reftype


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", _resolve_alias)
