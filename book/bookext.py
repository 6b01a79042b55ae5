"""Small pieces of the book's Sphinx configuration that must be importable by name (Sphinx pickles its config)."""

from __future__ import annotations

import re


def github_slug(title: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces become ``-``.

    The book's headings get these anchors, so the guides' links (``setup.md#without-make-windows``) work
    unchanged; links into notebooks, written the way Jupyter names anchors, are translated by
    :func:`from_jupyter`.
    """
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def from_jupyter(fragment: str) -> str:
    """A Jupyter heading anchor (``Save,-reload-and-predict``: spaces as ``-``, case and punctuation kept) as the
    book's (``save-reload-and-predict``)."""
    return github_slug(fragment.replace("-", " "))
