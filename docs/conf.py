"""Sphinx configuration of the Flask-Download documentation."""

from __future__ import annotations

import importlib.metadata

project = "Flask-Download"
copyright = "The Flask-Download developers"
author = "The Flask-Download developers"
release = importlib.metadata.version("Flask-Download")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
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
