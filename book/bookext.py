"""Small pieces of the book's Sphinx configuration that must be importable by name (Sphinx pickles its config)."""

from __future__ import annotations

import re


def jupyter_slug(title: str) -> str:
    """The anchor Jupyter gives a heading: spaces become ``-``, everything else stays.

    The notebooks link to headings the way JupyterLab and GitHub's notebook viewer resolve them
    (``01_single_dense_head.ipynb#Save,-reload-and-predict``); the book gives its headings the same anchors
    so those links work unchanged.
    """
    return re.sub(r"\s+", "-", title.strip())
