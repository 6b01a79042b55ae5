"""The project's own promises: install files in step, the two commands, the bundled data."""

from __future__ import annotations

import subprocess
import sys

import yaml
from PIL import Image

from tests.conftest import BUNDLED_DATA, ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    expected = set(project["dependencies"]) | set(extras["dev"]) | set(extras["hub"])
    listed = {line for line in pip_section if not line.startswith("-")}
    assert listed == expected
    assert "-c requirements.lock" in pip_section and "-e ." in pip_section
    assert "pip" in env["dependencies"] and any(str(d).startswith("python=") for d in env["dependencies"])


def _name(requirement: str) -> str:
    return requirement.split(">")[0].split("=")[0].split("<")[0].strip().lower()


def test_runtime_dependencies_are_what_the_package_imports() -> None:
    """IPython (record_results) is the notebooks extra, keras_hub (notebook 06) the hub extra. The tools that run
    and check the notebooks live in scripts/, not in the package: the runner's papermill and the doctor's packaging
    are dev requirements."""
    import ast
    import sys

    def third_party(modules: list) -> set[str]:
        imported = set()
        for module in modules:
            for node in ast.walk(ast.parse(module.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    imported.add(node.module.split(".")[0])
        distribution = {"PIL": "pillow", "sklearn": "scikit-learn", "IPython": "ipykernel", "keras_hub": "keras-hub"}
        return {distribution.get(m, m) for m in imported - set(sys.stdlib_module_names) - {"tlhelpers", "__future__"}}

    project = _pyproject()["project"]
    extras = {name: {_name(r) for r in requirements} for name, requirements in project["optional-dependencies"].items()}
    package = third_party(list((ROOT / "tlhelpers").glob("*.py")))
    assert {_name(r) for r in project["dependencies"]} == package - extras["notebooks"] - extras["hub"]
    assert {"papermill", "ipykernel"} <= extras["notebooks"] <= extras["dev"]
    tools = third_party([ROOT / "scripts" / "run_notebooks.py", ROOT / "scripts" / "doctor.py"]) - {"scripts"}
    assert tools - package - extras["hub"] <= extras["dev"], tools


def test_every_dependency_is_pinned_in_the_lock() -> None:
    project = _pyproject()["project"]
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "requirements.lock").read_text().split()
              if "==" in line}
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + extras["dev"] + extras["hub"]:
        name = _name(requirement)
        assert name in pinned, f"{name} is not pinned in requirements.lock (run `make lock`)"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run:", "test:", "lab:"):
        assert f"\n{target}" in makefile


def test_bundled_dataset_is_small_real_and_regenerable() -> None:
    classes = sorted(p for p in BUNDLED_DATA.iterdir() if p.is_dir())
    assert len(classes) >= 3
    total = 0
    for folder in classes:
        files = sorted(folder.glob("*.png"))
        assert len(files) >= 20, folder
        for path in files:
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) >= 64
            total += path.stat().st_size
    assert total < 3 * 2**20
    assert "licen" in (ROOT / "data" / "README.md").read_text().lower()
    check = subprocess.run([sys.executable, "scripts/make_tiny_dataset.py", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_package_tests_scripts_and_notebooks_pass_the_linter() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
