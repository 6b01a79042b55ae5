"""The command blocks marked <!-- runnable --> in README.md and docs/*.md run as written, from the repository root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNNABLE = re.compile(r"<!-- runnable -->\s*\n```bash\n(.*?)```", re.S)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# (document, block); the test ids stay the blocks' second word (tests/conftest.py marks `examples/...` slow)
BLOCKS = [(path.relative_to(ROOT).as_posix(), block) for path in DOCUMENTS
          for block in RUNNABLE.findall(path.read_text())]


def test_readme_and_docs_mark_runnable_blocks() -> None:
    """The loader on the bundled data, an example script, the data's regeneration check: at least three."""
    assert len(BLOCKS) >= 3, BLOCKS
    commands = " ".join(block for _, block in BLOCKS)
    for command in ("load_image_folder", "examples/", "make_tiny_dataset.py --check"):
        assert command in commands, f"no runnable block runs {command}"


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[b.split()[1] for _, b in BLOCKS])
def test_runnable_block(where: str, block: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{where}:\n{block}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
