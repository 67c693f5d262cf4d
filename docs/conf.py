"""Sphinx configuration of the tlsmpi documentation: the Markdown pages of docs/ (MyST),
an API reference (autodoc + numpydoc) and the tutorial, executed at every build
(_ext/tutorial.py).  Build: ``sphinx-build -W -b html docs docs/_build/html`` (the pip leg
of CI, ./dev.sh test-nompi, does so with warnings as errors)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))        # document this tree's tlsmpi
sys.path.insert(0, os.path.join(HERE, "_ext"))

from tlsmpi import __version__  # noqa: E402

project = "tlsmpi"
author = "the tlsmpi authors"
copyright = "2026, " + author
release = version = __version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc", "tutorial"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "_ext"]
default_role = "py:obj"
myst_heading_anchors = 3
numpydoc_show_class_members = False
autodoc_member_order = "bysource"
html_theme = "alabaster"
html_static_path = []
