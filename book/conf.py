"""Sphinx configuration of the book: the executed notebooks, docs/, the claims and the API, as static HTML.

``scripts/build_book.py`` copies this folder, the executed notebooks and ``docs/`` into ``build/book-src/`` and
runs Sphinx there with warnings as errors; nothing is executed again (``nb_execution_mode = "off"``). Every
page must open without loading anything from another host: no MathJax, fonts or images from the web.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # bookext
sys.path.insert(0, os.environ.get("TLHELPERS_ROOT", str(HERE.parents[1])))  # tlhelpers, for the API reference

PYPROJECT = Path(os.environ.get("TLHELPERS_ROOT", HERE.parents[1])) / "pyproject.toml"
REPOSITORY_URL = tomllib.loads(PYPROJECT.read_text())["project"]["urls"]["Repository"].rstrip("/")

project = "ResNet50 transfer learning"
author = "the tlhelpers authors"
copyright = "the tlhelpers authors, Apache-2.0"  # noqa: A001 (Sphinx's name)
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "conf.py", "bookext.py", "**/.ipynb_checkpoints"]

# The notebooks were executed by `make run`; the book only renders what they carry.
nb_execution_mode = "off"
nb_merge_streams = True
# Headings get the anchors GitHub gives them; scripts/build_book.py translates links into notebooks, written the
# way Jupyter names anchors (01_single_dense_head.ipynb#Load-the-data), to these.
myst_heading_anchors = 3
myst_heading_slug_func = "bookext.github_slug"
myst_enable_extensions = ["attrs_inline"]

# Google-style docstrings ("Args:", "Returns:"), members in source order, one entry per object.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields: autodoc documents the members themselves

html_theme = "sphinx_book_theme"
html_title = "ResNet50 transfer learning"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
# No MathJax from a CDN: the lessons carry no math, and a page must not reach another host when it opens.
mathjax_path = "about:blank"
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": "main",
    "path_to_docs": "",  # the staged tree mirrors the repository: notebooks/, docs/
    "use_repository_button": True,
    "use_source_button": True,
    "use_issues_button": False,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org",
                       "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
}
html_favicon = "_static/favicon.png"  # without one, Chromium asks the server for /favicon.ico (a 404)
# The theme's light/dark switch starts from this (an empty mode logs a console error on a reader's first page).
html_context = {"default_mode": "auto"}
