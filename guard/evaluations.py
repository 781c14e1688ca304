"""Evaluations: scores recomputed from the items, and the verdicts written beside a score.

The guard never takes an agent's word for a score. :func:`recompute_score` is the mean of an
evaluation's per-item correctness field, read from its items file; :func:`as_score` reads a
reported score (a number, a numeric string, a percentage); :func:`check_verdicts` judges the
pass/fail verdicts and thresholds written beside a score against the recomputed one. The
engine uses them before a call (what a write would leave in a score file) and the verifier
after it (what the file holds and the agent reports), so both judge a score the same way.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from guard.configs import Ambiguous, get_dotted, is_true
from guard.policy import EvaluationDecl


@dataclass(frozen=True, slots=True)
class Recomputed:
    """A score recomputed from evaluation items."""

    score: float
    correct: int
    total: int


def recompute_score(decl: EvaluationDecl, base: str) -> Recomputed | None:
    """Recompute a declared evaluation's score from its items file.

    Args:
        decl: The evaluation declaration.
        base: What relative paths in ``decl`` start from.

    Returns:
        The recomputed score, or ``None`` when the items file is missing, unreadable, empty
        or has a line that is not a JSON object (nothing trustworthy to compare against).
    """
    path = (
        decl.items_file if os.path.isabs(decl.items_file) else os.path.join(base, decl.items_file)
    )
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    correct = 0
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            return None
        if not isinstance(item, dict):
            return None
        if is_true(item.get(decl.correct_field)):
            correct += 1
    if not lines:
        return None
    return Recomputed(correct / len(lines), correct, len(lines))


def as_score(value: Any) -> float | None:
    """A reported score as a number: numbers and numeric strings count; NaN does not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _key(name: Any) -> str:
    """A field name as the verdict check compares it: lower case, ``-`` and spaces as ``_``."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


# Fields of a score report that state whether the evaluated model passed; the second set
# states that it did not (``failed: false`` says it passed).
_VERDICT_KEYS = frozenset(
    [
        "passed",
        "pass",
        "ok",
        "success",
        "successful",
        "succeeded",
        "verdict",
        "result",
        "status",
        "grade",
        "outcome",
        "approved",
        "accepted",
        "qualified",
        "decision",
        "meets_threshold",
        "above_threshold",
        "is_passing",
        "is_passed",
        "passing",
    ]
)
_FAIL_KEYS = frozenset(["failed", "fail", "failure", "below_threshold", "is_failing"])
# Fields that state the mark the score is judged against.
_THRESHOLD_KEYS = frozenset(
    [
        "threshold",
        "pass_threshold",
        "passing_threshold",
        "threshold_score",
        "pass_mark",
        "passmark",
        "pass_score",
        "passing_score",
        "cutoff",
        "cut_off",
        "min_score",
        "minimum_score",
        "min_pass",
        "required_score",
        "score_threshold",
    ]
)
_PASS_WORDS = frozenset(
    [
        "pass",
        "passed",
        "passing",
        "ok",
        "okay",
        "success",
        "successful",
        "succeeded",
        "approved",
        "accepted",
        "qualified",
        "above_threshold",
        "meets_threshold",
    ]
)
_FAIL_WORDS = frozenset(
    [
        "fail",
        "failed",
        "failing",
        "failure",
        "not_passed",
        "rejected",
        "unsuccessful",
        "disqualified",
        "below_threshold",
    ]
)
_YES_WORDS = frozenset(["true", "yes", "y", "on", "1"])
_NO_WORDS = frozenset(["false", "no", "n", "off", "0"])
# What a ``status`` or ``result`` may say of the run itself, not of the model.
_NEUTRAL_WORDS = frozenset(
    ["complete", "completed", "done", "finished", "evaluated", "ran", "scored"]
)


@dataclass(frozen=True, slots=True)
class VerdictCheck:
    """What the fields beside a score say, judged against the recomputed score.

    ``false`` describes each field that misreports (a pass/fail verdict the recomputed score
    contradicts, a threshold changed from the one the evaluation had); ``unknown`` each one
    the guard cannot judge (a value it cannot read as pass or fail, no threshold to judge a
    verdict against).
    """

    false: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def _verdict(value: Any, inverted: bool) -> bool | str | None:
    """A verdict field's value read as passed (True) or failed (False); ``None`` when it says
    nothing (null, a nested mapping, a word about the run), ``"?"`` when it cannot be read."""
    if isinstance(value, bool):
        return value != inverted
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, int | float):
        return (value == 1) != inverted if value in (0, 1) else "?"
    if not isinstance(value, str):
        return "?"
    word = _key(value)
    if word in _PASS_WORDS:
        return True
    if word in _FAIL_WORDS:
        return False
    if word in _YES_WORDS:
        return not inverted
    if word in _NO_WORDS:
        return inverted
    if word in _NEUTRAL_WORDS or word == "":
        return None
    return "?"


def check_verdicts(
    after: Any, before: Any, decl: EvaluationDecl, truth: Recomputed, tolerance: float
) -> VerdictCheck:
    """Judge the verdict-bearing fields a score file holds beside (or above) its score.

    A report tells its reader whether the model passed through more than the score: fields
    such as ``passed``, ``ok``, ``verdict``, ``status`` say so outright, and ``threshold``,
    ``pass_mark``, ``cutoff`` set the mark the score is read against. Each mapping on the way
    to ``decl.score_field`` is looked at (the score's siblings and those of its parents).
    A verdict is false when it disagrees with the recomputed score against the evaluation's
    threshold (the declared one, else the one the file held before); a threshold is false
    when it differs from that one.

    Args:
        after: The parsed file as it would be written.
        before: The parsed file as it is now (``None`` if it does not exist).
        decl: The evaluation: its score field and declared threshold.
        truth: The score recomputed from the items.
        tolerance: How far two numbers may differ and still be the same.
    """
    parts = decl.score_field.split(".")
    false: list[str] = []
    unknown: list[str] = []
    nodes: list[tuple[str, Any]] = []
    for depth in range(len(parts)):
        prefix = ".".join(parts[:depth])
        found, node = get_dotted(after, prefix) if prefix else (True, after)
        if found and isinstance(node, dict):
            nodes.append((prefix, node))
    # The threshold the evaluation has: the declared one, else the one the file held before.
    baseline = decl.threshold
    for prefix, _ in nodes if baseline is None else ():
        found, node = get_dotted(before, prefix) if prefix else (True, before)
        if found and isinstance(node, dict):
            held = [as_score(v) for k, v in node.items() if _key(k) in _THRESHOLD_KEYS]
            baseline = next((v for v in held if v is not None), None)
            if baseline is not None:
                break
    # A score within the tolerance of the threshold may honestly be read either way.
    passed = (
        None
        if baseline is None
        else "either"
        if abs(truth.score - baseline) <= tolerance
        else truth.score >= baseline
    )
    for prefix, node in nodes:
        for name, raw in node.items():
            key = _key(name)
            where = f"{prefix}.{name}" if prefix else str(name)
            if where == decl.score_field:
                continue
            values = list(raw) if isinstance(raw, Ambiguous) else [raw]
            if key in _THRESHOLD_KEYS:
                for value in values:
                    number = as_score(value)
                    if number is None or baseline is None:
                        unknown.append(f"{where}: {value!r}")
                    elif abs(number - baseline) > tolerance:
                        false.append(f"{where} is {number}, the evaluation's threshold {baseline}")
            elif key in _VERDICT_KEYS or key in _FAIL_KEYS:
                for value in values:
                    says = _verdict(value, key in _FAIL_KEYS)
                    if says is None or passed == "either":
                        continue
                    if says == "?" or passed is None:
                        unknown.append(f"{where}: {value!r}")
                    elif says != passed:
                        false.append(
                            f"{where} says {'passed' if says else 'failed'}, the items give "
                            f"{truth.score:.4g} against the threshold {baseline}"
                        )
    return VerdictCheck(tuple(false), tuple(unknown))


# ---------------------------------------------------------------- claims


__all__ = ["Recomputed", "VerdictCheck", "as_score", "check_verdicts", "recompute_score"]
