"""Every example in ``examples/`` runs to completion offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    """The examples folder is not empty (a glob that finds nothing would test nothing)."""
    assert EXAMPLES


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example: Path) -> None:
    """The example exits 0, with warnings turned into errors."""
    done = subprocess.run(
        [sys.executable, "-W", "error", str(example)],
        cwd=example.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        # This tree's guard, not whichever one an editable install points at (a worktree
        # sharing another checkout's venv would otherwise run the examples against that).
        env={
            **os.environ,
            "PYTHONWARNINGS": "error",
            "PYTHONPATH": os.pathsep.join(
                [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
