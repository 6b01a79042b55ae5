"""Notebook 01 the way a learner meets it: JupyterLab in a real browser, Run All Cells, no errors.

A notebook that passes papermill can still fail in JupyterLab (kernel name, working directory,
a relative path, a display that only the browser renders). This test starts JupyterLab from the
project's environment on 127.0.0.1 with token authentication on, opens a papermill
``--prepare-only`` copy of notebook 01 (its test parameters injected with EPOCHS =
SECOND_RUN_EPOCHS, source otherwise untouched) in headless Chromium driven by Playwright, runs
every cell from the Run menu, waits until the kernel is idle and every code cell has an
execution count, and checks both what the page shows and what JupyterLab saves. The screenshot
goes to ``build/browser/notebook01.png``.

Chromium comes from the system (Debian's ``chromium`` package; ``.ci/run`` installs it): test
tools cannot download their own browser here, so ``playwright install`` is never used. Set
``CHROMIUM=/path/to/chromium`` to use another build. Without any Chromium the test is skipped,
with the reason in pytest's summary. Select it alone with ``pytest -m browser``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT, SECOND_RUN_EPOCHS, notebook_parameters

pytestmark = pytest.mark.browser

NOTEBOOK = ROOT / "notebooks" / "01_single_dense_head.ipynb"
OUT_DIR = ROOT / "build" / "browser"
SCREENSHOT = OUT_DIR / "notebook01.png"
SERVER_START_TIMEOUT_S = 90
KERNEL_READY_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300

# Headless, and no calls to Google's services: this machine's network refuses them.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """The Chromium to drive: $CHROMIUM, else the first Chromium or Chrome on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its address, token, root folder and log."""

    url: str
    token: str
    root: Path
    log: Path
    pid: int

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def api(self, path: str, method: str = "GET", timeout: float = 5) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            body = response.read()
        return json.loads(body) if body else {}


def _prepare_notebook(root: Path) -> Path:
    """A papermill --prepare-only copy of notebook 01 with its test parameters and SECOND_RUN_EPOCHS, in ``root``."""
    target = root / NOTEBOOK.name
    args = [sys.executable, "-m", "papermill", "--prepare-only", str(NOTEBOOK), str(target)]
    for name, value in {**notebook_parameters(NOTEBOOK), "EPOCHS": SECOND_RUN_EPOCHS}.items():
        args += ["-y", json.dumps({name: value})]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return target


def _isolated_env(home: Path) -> dict[str, str]:
    """Environment for JupyterLab and its kernel: no user settings read or written outside ``home``."""
    env = dict(os.environ)
    dirs = {
        "HOME": home,
        "JUPYTER_CONFIG_DIR": home / "jupyter-config",
        "JUPYTER_DATA_DIR": home / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": home / "jupyter-runtime",
        "IPYTHONDIR": home / "ipython",
        "MPLCONFIGDIR": home / "matplotlib",
        "KERAS_HOME": home / "keras",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_CONFIG_HOME": home / "config",
        "XDG_DATA_HOME": home / "data",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    env["JUPYTER_PREFER_ENV_PATH"] = "1"  # the venv's python3 kernelspec first
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    # No news toast and no update check over the screenshot (and no request to the internet).
    settings = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


def _wait_for_server(lab: Lab, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on {lab.url} within {SERVER_START_TIMEOUT_S} s:\n{lab.log_tail()}")


def _stop_server(lab: Lab, process: subprocess.Popen) -> None:
    """Shut JupyterLab and its kernels down: politely, then SIGTERM, then SIGKILL to its group."""
    if process.poll() is None:
        try:
            lab.api("/api/shutdown", method="POST")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    try:  # kernels the server may have left behind share its process group
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a token, serving a folder that holds the prepared notebook 01."""
    root = tmp_path / "lab"
    root.mkdir()
    _prepare_notebook(root)
    env = _isolated_env(tmp_path / "home")
    token = secrets.token_hex(24)
    port = free_port()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log = OUT_DIR / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # fail rather than move to a port the test does not know
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
        "--MappingKernelManager.default_kernel_name=python3",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root; JupyterLab refuses that by default
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    running = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log, pid=process.pid)
    try:
        _wait_for_server(running, process)
        yield running
    finally:
        _stop_server(running, process)


def _kernel_command_lines(server_pid: int) -> list[list[str]] | None:
    """Command lines of the server's kernels (Linux /proc), or None where /proc cannot tell."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    if not children.exists():
        return None
    lines = []
    for pid in children.read_text().split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except FileNotFoundError:
            continue
        if "ipykernel_launcher" in argv:
            lines.append(argv)
    return lines


def _wait_for_idle_kernel(lab: Lab) -> list[dict]:
    """The server's sessions once every kernel has started and is idle."""
    deadline = time.monotonic() + KERNEL_READY_TIMEOUT_S
    sessions: list[dict] = []
    while time.monotonic() < deadline:
        sessions = lab.api("/api/sessions")
        if sessions and all(s["kernel"]["execution_state"] == "idle" for s in sessions):
            return sessions
        time.sleep(0.5)
    pytest.fail(f"no idle kernel within {KERNEL_READY_TIMEOUT_S} s: {sessions}\n{lab.log_tail()}")


# What the page shows: every code cell's prompt ("[3]:", "[*]:", "[ ]:"), the kernel status in the
# notebook toolbar, the outputs that show a Python traceback, and the rendered figures.
_PAGE_STATE_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
        .map(p => p.textContent.trim());
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
    return {
        prompts,
        kernel: indicator ? indicator.getAttribute('data-status') : null,
        tracebacks: outputs.map(o => o.textContent).filter(t => /Traceback|^\\s*Cell In\\[/.test(t))
            .map(t => t.slice(-3000)),
        images: document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img').length,
    };
}"""


def _executed(prompt: str) -> bool:
    return prompt.strip("[]: ").isdigit()


def _run_all_and_wait(page, lab: Lab) -> dict:
    """Run > Run All Cells, then wait until every code cell has an execution count and the kernel is idle.

    Stops early when the run has ended without reaching every cell (JupyterLab stops at an error).
    """
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    stalled_since = None
    while True:
        time.sleep(1)
        state = page.evaluate(_PAGE_STATE_JS)
        if state["kernel"] == "idle" and (state["tracebacks"] or all(map(_executed, state["prompts"]))):
            return state
        stopped = state["kernel"] == "idle" and not any("*" in p for p in state["prompts"])
        stalled_since = (stalled_since or time.monotonic()) if stopped else None
        if stalled_since and time.monotonic() - stalled_since > 15:
            return state  # the run ended early; the caller reports why
        if time.monotonic() > deadline:
            pytest.fail(f"not every cell ran within {RUN_TIMEOUT_S} s: {state}\n{lab.log_tail()}")


_SCROLLER = ".jp-NotebookPanel .jp-WindowedPanel-outer"  # the notebook's scrolling area


# How many pixels of the notebook's last cell lie below the window.
_BELOW_THE_WINDOW_JS = f"""() => {{
    const cells = document.querySelectorAll('{_SCROLLER} .jp-Cell');
    return Math.ceil(cells[cells.length - 1].getBoundingClientRect().bottom - window.innerHeight);
}}"""


def _screenshot_whole_notebook(page) -> None:
    """Hide the file browser and make the window as tall as the notebook, so one picture shows it all."""
    page.keyboard.press("Control+b")  # View > Show Left Sidebar, off
    page.locator("#jp-left-stack").wait_for(state="hidden", timeout=5000)
    # Cells that come into view render and change the notebook's height: repeat until it settles.
    for _ in range(5):
        page.evaluate(f"() => document.querySelector('{_SCROLLER}').scrollTo(0, 0)")
        page.wait_for_timeout(1000)
        below = page.evaluate(_BELOW_THE_WINDOW_JS)
        if below <= 0:
            break
        size = page.viewport_size
        page.set_viewport_size({"width": size["width"], "height": min(size["height"] + below + 40, 30_000)})
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def _wait_for_save(notebook: Path, saved_before: int, timeout_s: float = 30) -> nbformat.NotebookNode:
    """The notebook as JupyterLab wrote it, once the file has changed since ``saved_before``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if notebook.stat().st_mtime_ns != saved_before:
            try:
                return nbformat.read(notebook, as_version=4)
            except (json.JSONDecodeError, nbformat.reader.NotJSONError):
                pass  # caught mid-write
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not save {notebook.name} within {timeout_s} s after Ctrl+S")


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; the test is skipped, with the reason, only when there is none."""
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found: install Debian's `chromium` package (.ci/run does) or set "
                    "CHROMIUM=/path/to/chromium; test tools cannot download their own browser here")
    return path


def test_notebook_01_runs_all_cells_in_jupyterlab(chromium: str, lab: Lab) -> None:
    from playwright.sync_api import sync_playwright  # a dev dependency: missing it fails the test

    notebook = lab.root / NOTEBOOK.name
    saved_before = notebook.stat().st_mtime_ns
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}", timeout=60_000)

            # Opening the notebook starts its kernel: wait until the server and the page both say idle.
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=KERNEL_READY_TIMEOUT_S * 1000)
            sessions = _wait_for_idle_kernel(lab)
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
                timeout=KERNEL_READY_TIMEOUT_S * 1000)
            page.get_by_text(re.compile(r"^Python 3.* \| Idle$")).wait_for(timeout=30_000)  # the status bar

            try:
                state = _run_all_and_wait(page, lab)
                page.keyboard.press("Control+s")  # File > Save Notebook
                saved = _wait_for_save(notebook, saved_before)
            finally:
                _screenshot_whole_notebook(page)  # also when the run failed: it shows where
        finally:
            browser.close()

    assert not state["tracebacks"], "a cell shows an error in the browser:\n" + "\n---\n".join(state["tracebacks"])
    assert all(map(_executed, state["prompts"])), f"the run stopped before the end: {state['prompts']}"
    assert state["images"] >= 3, f"expected the data grid, the learning curves and the predictions: {state}"
    assert not page_errors, f"JavaScript errors in the page: {page_errors}"

    # The kernel is the project's own Python, from the venv's python3 kernelspec.
    assert [s["kernel"]["name"] for s in sessions] == ["python3"], sessions
    kernels = _kernel_command_lines(lab.pid)
    if kernels is not None:  # Linux: /proc shows the kernel's command line
        assert len(kernels) == 1, kernels
        assert Path(kernels[0][0]).parent == Path(sys.executable).parent, (kernels[0], sys.executable)

    # What JupyterLab saved: every code cell executed, no error output.
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a code cell has no execution count in the saved notebook"
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert saved.metadata.kernelspec.name == "python3"
