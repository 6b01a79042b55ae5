"""The blocks marked <!-- runnable --> in README.md and docs/*.md run as written, from the repository root.

A ```bash block runs in bash, a ```python block in the tests' Python (the project's environment).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```(bash|python)\n(.*?)```", re.S)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# (document, language, block); a bash block's test id is its second word (tests/conftest.py marks `examples/...`
# slow), a python block's is its document and its place there
BLOCKS = [(path.relative_to(ROOT).as_posix(), language, block) for path in DOCUMENTS
          for language, block in RUNNABLE.findall(path.read_text())]
IDS = [block.split()[1] if language == "bash" else f"{where}-python-{i}"
       for i, (where, language, block) in enumerate(BLOCKS)]


def python_blocks(document: str) -> list[str]:
    """The runnable python blocks of ``document`` (a path relative to the repository), in order."""
    return [block for where, language, block in BLOCKS if where == document and language == "python"]


def test_readme_and_docs_mark_runnable_blocks() -> None:
    """The loader on the bundled data, an example script, the data's regeneration check: at least three."""
    assert len(BLOCKS) >= 3, BLOCKS
    commands = " ".join(block for _, _, block in BLOCKS)
    for command in ("load_image_folder", "examples/", "make_tiny_dataset.py --check"):
        assert command in commands, f"no runnable block runs {command}"


@pytest.mark.parametrize(("where", "language", "block"), BLOCKS, ids=IDS)
def test_runnable_block(where: str, language: str, block: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["bash", "-euo", "pipefail", "-c", block] if language == "bash" else [sys.executable, "-c", block]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{where}:\n{block}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
