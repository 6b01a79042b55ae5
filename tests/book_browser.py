"""Open every page of a built book in headless Chromium, served from 127.0.0.1, and report what went wrong.

Used by ``tests/test_notebooks.py`` (the book of the notebooks the tests executed) and ``tests/test_book.py``.
A page of the book must open offline: every request goes to the local server, no console error, every ``<img>``
loads, and the search page finds a word. Chromium is the browser test's (``tests/test_browser.py``).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.test_browser import CHROMIUM_ARGS


@dataclass
class BookReport:
    """What Chromium saw: pages opened, requests to other hosts, console errors, images that did not load."""

    pages: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: int = 0
    search_hits: list[str] = field(default_factory=list)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 at a free port; yield its address."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_IMAGES_JS = """() => [...document.images].map(img => ({src: img.currentSrc || img.src,
                                                      ok: img.complete && img.naturalWidth > 0}))"""


def open_every_page(book: Path, chromium: str, search: str = "BatchNormalization") -> BookReport:
    """Open each ``*.html`` of ``book`` and the search page for ``search``; return what was seen."""
    from playwright.sync_api import sync_playwright

    report = BookReport()
    # Every page a reader can reach; _static/ holds the theme's templates, not pages.
    pages = sorted(p.relative_to(book).as_posix() for p in book.rglob("*.html") if "_static" not in p.parts)
    with serve(book) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context()
            page = context.new_page()
            current = {"url": ""}

            def on_request(request) -> None:
                if not request.url.startswith((base + "/", "data:", "blob:", "about:")):
                    report.foreign_requests.append(f"{current['url']} -> {request.url}")

            page.on("request", on_request)
            page.on("response", lambda r: r.status >= 400 and report.failed_requests.append(
                f"{current['url']} -> {r.url} ({r.status})"))
            page.on("console", lambda m: m.type == "error" and report.console_errors.append(
                f"{current['url']}: {m.text}"))
            page.on("pageerror", lambda e: report.console_errors.append(f"{current['url']}: {e}"))
            for name in pages:
                current["url"] = name
                page.goto(f"{base}/{name}", wait_until="load", timeout=60_000)
                page.wait_for_load_state("networkidle", timeout=30_000)
                images = page.evaluate(_IMAGES_JS)
                report.images += len(images)
                report.broken_images += [f"{name}: {img['src']}" for img in images if not img["ok"]]
                report.pages.append(name)
            current["url"] = f"search.html?q={search}"
            page.goto(f"{base}/search.html?q={search}", wait_until="load", timeout=60_000)
            results = page.locator("#search-results ul.search li")
            results.first.wait_for(timeout=30_000)
            report.search_hits = [text.strip()[:80] for text in results.all_inner_texts()]
        finally:
            browser.close()
    return report
