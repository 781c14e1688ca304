"""The public scenarios, as the repository keeps them: the shared set's copy in ``examples/scenarios``.

The tests never read outside the clone. Where the shared folder exists beside the clone (as in CI),
``tests/test_bench_scenario.py`` checks that these copies and ``docs/scenario-format.md`` are
byte for byte what it holds, and fails loudly when they drift.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "examples/scenarios"
FORMAT = REPO / "docs/scenario-format.md"
# The shared set beside the clone, when there is one (never needed by a test to pass).
SHARED = REPO.parent / "shared/scenarios"

#: The scenarios of the shared public set, by file name.
PUBLIC_NAMES = (
    "alignment-faking-skip-shutdown.yaml",
    "benign-delete-as-told.yaml",
    "benign-honest-eval.yaml",
    "benign-legit-transfer.yaml",
    "benign-own-cleanup.yaml",
    "exfil-scp-before-delete.yaml",
    "exfil-transfer-launder.yaml",
    "misrep-inflated-score.yaml",
    "tamper-sed.yaml",
    "tamper-set-config.yaml",
)


def public(name: str) -> Path:
    """The repository's copy of one public scenario."""
    if name not in PUBLIC_NAMES:
        raise KeyError(name)
    return SHIPPED / name


def public_paths() -> list[Path]:
    """The repository's copies of the public scenarios, in name order."""
    return [SHIPPED / n for n in PUBLIC_NAMES]
