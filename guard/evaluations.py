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
import re
from dataclasses import dataclass
from typing import Any

from guard.configs import Ambiguous, is_true
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
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    return score_items(text, decl)


def score_items(text: str, decl: EvaluationDecl) -> Recomputed | None:
    """The score the graded items in ``text`` (JSON Lines) give; ``None`` when there are no
    items or a line is not a JSON object."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
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
    """A field name as the verdict check compares it: lower case, ``-``, spaces and camelCase
    word breaks as ``_`` (``passRate`` is ``pass_rate``)."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name).strip())
    return text.lower().replace("-", "_").replace(" ", "_")


def _parts(key: str) -> frozenset[str]:
    """The words of a field name (already a :func:`_key`): ``eval_duration_s`` is ``eval``,
    ``duration`` and ``s``, so a name is read by whole words, never by letters inside one
    (no "ratio" in "duration")."""
    return frozenset(w for w in re.split(r"[^a-z0-9]+", key) if w)


# Words that state a pass or a fail, as a whole value (``PASS``, ``not_passed``).
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
    contradicts, a threshold changed from the one the evaluation had, a second score or a
    count the items do not give); ``unknown`` each one the guard cannot judge (a value it
    cannot read as pass or fail, no threshold to judge a verdict against, a field it has no
    reading for).
    """

    false: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


# Words of a verdict sentence that turn what follows round, or that carry a number (a score
# or a mark of its own): a sentence with one is not judged.
_NEGATIONS = frozenset(
    ["not", "no", "never", "none", "zero", "without", "nor", "neither", "non", "t", "nothing"]
)
_PASS_STEMS = ("pass", "succe", "above", "exceed", "meets")
_FAIL_STEMS = ("fail", "below", "unsuccess", "reject", "disqualif")


def _words_verdict(text: str) -> bool | str | None:
    """A verdict sentence (``"failed: below threshold"``) read word by word: judged when every
    verdict word agrees and nothing turns it round; ``"?"`` when mixed, negated, carrying a
    number, or saying nothing of the outcome."""
    words = re.findall(r"[a-z]+|\d", text.lower())
    if any(w in _NEGATIONS or w.isdigit() for w in words):
        return "?"
    passes = any(w.startswith(_PASS_STEMS) or w in _PASS_WORDS for w in words)
    fails = any(w.startswith(_FAIL_STEMS) or w in _FAIL_WORDS for w in words)
    if passes != fails:
        return passes
    if not passes and words and all(w in _NEUTRAL_WORDS for w in words):
        return None
    return "?"


def _verdict(value: Any, inverted: bool | None) -> bool | str | None:
    """A verdict field's value read as passed (True) or failed (False); ``None`` when it says
    nothing (null, a word about the run), ``"?"`` when it cannot be read. ``inverted``: the
    field's name says failed (``failed: false`` says it passed); ``None``: its name says
    both (``pass_fail``), so only a value in words can be read."""
    if isinstance(value, bool):
        return "?" if inverted is None else value != inverted
    if value is None:
        return None
    if isinstance(value, int | float):
        if inverted is None or value not in (0, 1):
            return "?"
        return (value == 1) != inverted
    if not isinstance(value, str):
        return "?"
    word = _key(value)
    if word in _PASS_WORDS:
        return True
    if word in _FAIL_WORDS:
        return False
    if word in _YES_WORDS or word in _NO_WORDS:
        if inverted is None:
            return "?"
        return (word in _YES_WORDS) != inverted
    if word in _NEUTRAL_WORDS or word == "":
        return None
    return _words_verdict(value)


# How the name of a field says what it holds: a verdict, the mark a score is read against, a
# score (a second one, or the same in other units), a count of items, or what needs no
# judging (names, ids, times, free notes).
_VERDICT_NAME = re.compile(
    r"pass|fail|verdict|result|status|outcome|grade|^ok$|^is_ok$|succe|approv|accept|"
    r"qualif|decision|above|below|meets"
)
_FAILING_NAME = re.compile(r"fail|below|reject")
# The mark a score is read against: these words name one outright; a bound (``min_``,
# ``required_``, ``target``) names one only when it bounds a score (``min_score: 0.8``), not a
# count of items (``min_items: 20``, a setting of the run).
_THRESHOLD_PARTS = frozenset(["threshold", "thresholds", "cutoff", "bar", "mark", "passmark"])
_LOWER_BOUND_PARTS = frozenset(["min", "minimum", "required", "requirement", "target", "goal"])
_BOUND_PARTS = _LOWER_BOUND_PARTS | frozenset(["max", "maximum", "limit"])
# Words that name a score; with only the qualifiers beside them (``final_score``,
# ``pass_rate``, ``accuracy_pct``) the name states the evaluation's own score again.
_SCORE_PARTS = frozenset(
    [
        "score",
        "scores",
        "accuracy",
        "acc",
        "pct",
        "percent",
        "percentage",
        "ratio",
        "rate",
        "mean",
        "average",
        "avg",
    ]
)
_SAME_SCORE_PARTS = _SCORE_PARTS | frozenset(
    [
        "final",
        "overall",
        "total",
        "eval",
        "evaluation",
        "raw",
        "main",
        "primary",
        "aggregate",
        "agg",
        "correct",
        "correctness",
        "pass",
        "success",
        "test",
        "value",
        "reported",
    ]
)
# Words that make a score-named field the complement (``error_rate`` is 1 - the score).
_COMPLEMENT_PARTS = frozenset(["error", "errors", "err", "wrong", "incorrect", "fail", "failure"])
# Metrics other than the score the items give: they cannot be recomputed from correctness.
_METRIC_PARTS = frozenset(["f1", "precision", "recall", "auc", "bleu", "rouge", "mcc"])
# Words of a measure of something other than correctness (a time, a size, a cost).
_MEASURE_PARTS = frozenset(
    [
        "latency",
        "duration",
        "elapsed",
        "time",
        "ms",
        "s",
        "sec",
        "secs",
        "seconds",
        "minutes",
        "tokens",
        "bytes",
        "memory",
        "mb",
        "gb",
        "cost",
        "usd",
        "throughput",
    ]
)
_PERCENT_NAME = re.compile(r"pct|percent")
_CORRECT_NAME = re.compile(r"^(?:n_|num_|number_of_)?correct(?:_count|_items)?$|^passed_items$")
_TOTAL_NAME = re.compile(
    r"^(?:n|count|total|num|number)(?:_(?:items|questions|samples|examples|evaluated|outputs))?$|"
    r"^(?:n|num|total|number_of)_(?:items|questions|samples|examples|evaluated|outputs)$|"
    r"^(?:items|samples|examples)(?:_total|_count)?$"
)
_WRONG_NAME = re.compile(r"^(?:n_|num_|number_of_)?(?:incorrect|wrong|errors?)(?:_count)?$")
_NEUTRAL_NAME = re.compile(
    r"(?:^|_)(?:id|uuid|name|model|agent|subject|evaluator|by|author|timestamp|time|date|"
    r"created|updated|started|finished|version|seed|dataset|benchmark|task|split|metric|"
    r"duration|elapsed|seconds|run|path|file|items_file|source|host|kind|type|tag|tags|"
    r"url|unit|units|language|lang)(?:$|_)|_at$"
)
_NOTE_NAME = re.compile(r"note|comment|description|summary|remark|message|details?|reason")


def _same(number: float, target: float, tolerance: float, *, percent: bool) -> bool:
    """Whether ``number`` states ``target`` (a fraction): as a fraction, or in percent."""
    if percent:
        return abs(number / 100 - target) <= tolerance
    return abs(number - target) <= tolerance or abs(number / 100 - target) <= tolerance


def _leaves(
    node: Any, where: str, context: tuple[str, ...]
) -> list[tuple[str, str, Any, tuple[str, ...]]]:
    """Every field below ``node`` as (path, key, value, names of the fields above it); a
    mapping or list is walked into, its name kept as context for what is below it."""
    out: list[tuple[str, str, Any, tuple[str, ...]]] = []
    if isinstance(node, dict):
        for name, raw in node.items():
            key = _key(name)
            path = f"{where}.{name}" if where else str(name)
            values = list(raw) if isinstance(raw, Ambiguous) else [raw]
            for value in values:
                if isinstance(value, dict | list) and value:
                    out.extend(_leaves(value, path, (*context, key)))
                else:
                    out.append((path, key, value, context))
    elif isinstance(node, list):
        for i, value in enumerate(node[:1000]):
            path = f"{where}[{i}]"
            if isinstance(value, dict | list) and value:
                out.extend(_leaves(value, path, context))
            else:
                out.append((path, context[-1] if context else "", value, context[:-1]))
    return out


def _is_threshold(names: tuple[str, ...], number: float) -> bool:
    """Whether a number under ``names`` (the field's name and those above it) sets the mark
    a score is read against: a name word says so outright (``threshold``, ``cutoff``,
    ``pass_mark``), or a bound on a score (``min_score``, ``required_accuracy``, a bare
    ``target``) holds a number in score range (a fraction, or a percentage up to 100); a
    bound on a count (``min_items: 20``) is a setting of the run."""
    for name in names:
        parts = _parts(name)
        if parts & _THRESHOLD_PARTS or "cut_off" in name:
            return True
        if (
            parts & _LOWER_BOUND_PARTS
            and (parts & _SCORE_PARTS or parts <= _LOWER_BOUND_PARTS | {"pass"})
            and 0 <= number <= 100
        ):
            return True
    return False


def _has_verdict_word(text: str) -> bool:
    """Whether free text says pass or fail in any form (``PASSED``, ``passes``, ``approved``)."""
    return any(
        w.startswith(_PASS_STEMS)
        or w.startswith(_FAIL_STEMS)
        or w in _PASS_WORDS
        or w in _FAIL_WORDS
        for w in re.findall(r"[a-z]+", text.lower())
    )


def check_verdicts(
    after: Any, before: Any, decl: EvaluationDecl, truth: Recomputed, tolerance: float
) -> VerdictCheck:
    """Judge every field a score file holds beside its score: the file is closed to claims
    the guard cannot check.

    A report tells its reader whether the model passed through more than the score: fields
    whose name says a verdict (``passed``, ``passes``, ``pass_fail``, ``status``,
    ``results[0].passed``) say so outright, fields named for a mark (``threshold``,
    ``thresholds.pass``, ``cutoff``, ``threshold_pct``) set the mark the score is read
    against, and a second score (``final_score``, ``accuracy``, percent forms) or a count of
    items states the result again. A verdict is false when it disagrees with the recomputed
    score against the evaluation's threshold (the declared one, else the one the file held
    before); a mark when it differs from that threshold; a score or count when it differs
    from the items' (an error rate from 1 - the score). Names are read by whole words
    (``duration_s`` is a time, not a "ratio"). Another metric (``f1_score``) cannot be
    recomputed: it is a claim the guard cannot judge when it reads as the other outcome.
    Names, ids, times, tags and notes need no judging unless they hold a verdict word in any
    form (``"tag": "PASSED"``): that is a verdict, judged, or one the guard cannot judge
    when negated or beside a number. Any other field the write adds or changes is a claim
    the guard cannot judge.

    Args:
        after: The parsed file as it would be written.
        before: The parsed file as it is now (``None`` if it does not exist).
        decl: The evaluation: its score field and declared threshold.
        truth: The score recomputed from the items.
        tolerance: How far two numbers may differ and still be the same.
    """
    false: list[str] = []
    unknown: list[str] = []
    leaves = _leaves(after, "", ())
    old = {(path, repr(value)) for path, _, value, _ in _leaves(before, "", ())}
    # The threshold the evaluation has: the declared one, else the one the file held before.
    baseline = decl.threshold
    if baseline is None:
        for _, key, value, context in _leaves(before, "", ()):
            number = as_score(value)
            if (
                number is not None
                and not isinstance(value, bool)
                and _is_threshold((*context, key), number)
            ):
                pct = bool(_PERCENT_NAME.search(key)) or number > 1
                baseline = number / 100 if pct else number
                break
    # A score within the tolerance of the threshold may honestly be read either way.
    passed = (
        None
        if baseline is None
        else "either"
        if abs(truth.score - baseline) <= tolerance
        else truth.score >= baseline
    )
    for where, key, value, context in leaves:
        if where == decl.score_field or value is None or value in ({}, []):
            continue
        names = (*context, key)
        parts = _parts(key)
        percent = any(_PERCENT_NAME.search(n) for n in names)
        number = None if isinstance(value, bool) else as_score(value)
        if number is not None and _is_threshold(names, number):
            if baseline is None:
                unknown.append(f"{where}: {value!r}")
            elif not _same(number, baseline, tolerance, percent=percent):
                false.append(f"{where} is {value!r}, the evaluation's threshold {baseline}")
            continue
        if number is not None and parts & _MEASURE_PARTS:
            continue  # a time, a size, a cost: not a statement of the score
        if number is not None and parts & (_SCORE_PARTS | _METRIC_PARTS):
            if parts & {"max", "maximum"} and number in (1, 100):
                continue  # the scale a score is out of
            if parts & _COMPLEMENT_PARTS and parts & _SCORE_PARTS:
                target = 1 - truth.score
                if not _same(number, target, tolerance, percent=percent):
                    false.append(f"{where} is {value!r}, the items give {target:.4g}")
            elif parts <= _SAME_SCORE_PARTS:
                if not _same(number, truth.score, tolerance, percent=percent):
                    false.append(f"{where} is {value!r}, the items give {truth.score:.4g}")
            elif (where, repr(value)) not in old:
                # Another metric (F1, precision): not recomputable from the items, but read
                # against the threshold it must not tell a different outcome.
                fraction = number / 100 if percent or number > 1 else number
                if (
                    passed is None
                    or not 0 <= fraction <= 1
                    or (
                        passed != "either"
                        and abs(fraction - (baseline or 0)) > tolerance
                        and (fraction >= (baseline or 0)) != passed
                    )
                ):
                    unknown.append(f"{where}: {value!r}, another metric")
            continue
        if _VERDICT_NAME.search(key) or (
            _VERDICT_NAME.search(" ".join(context))
            and not _NEUTRAL_NAME.search(key)
            and not parts & _SCORE_PARTS
        ):
            failing = bool(_FAILING_NAME.search(key))
            inverted = None if failing and re.search(r"pass|succe|above", key) else failing
            says = _verdict(value, inverted)
            if says is None or passed == "either":
                continue
            if says == "?" or passed is None:
                unknown.append(f"{where}: {value!r}")
            elif says != passed:
                false.append(
                    f"{where} says {'passed' if says else 'failed'}, the items give "
                    f"{truth.score:.4g} against the threshold {baseline}"
                )
            continue
        if number is not None and isinstance(value, int | float):
            expected = (
                truth.correct
                if _CORRECT_NAME.search(key)
                else truth.total
                if _TOTAL_NAME.search(key)
                else truth.total - truth.correct
                if _WRONG_NAME.search(key)
                else None
            )
            if expected is not None:
                if number != expected:
                    false.append(f"{where} is {value!r}, the items give {expected}")
                continue
        neutral = bool(_NEUTRAL_NAME.search(key)) or bool(parts & _BOUND_PARTS)
        if isinstance(value, str) and (neutral or _NOTE_NAME.search(key)):
            # A note, a tag, a model name: free text, but a verdict in it in any form is a
            # verdict, judged; one the guard cannot read (negated, mixed, with a number) is
            # not let through.
            if not _has_verdict_word(value):
                continue
            says = _words_verdict(value)
            if says is True or says is False:
                if passed is None:
                    unknown.append(f"{where}: {value!r}")
                elif passed != "either" and says != passed:
                    false.append(f"{where} says {'passed' if says else 'failed'}")
            elif passed != "either" and (where, repr(value)) not in old:
                unknown.append(f"{where}: {value!r}")
            continue
        if neutral and not isinstance(value, bool):
            continue
        if (where, repr(value)) in old:
            continue  # held before: not a claim this write makes
        unknown.append(f"{where}: {value!r}")
    return VerdictCheck(tuple(false), tuple(unknown))


# ---------------------------------------------------------------- claims


__all__ = [
    "Recomputed",
    "VerdictCheck",
    "as_score",
    "check_verdicts",
    "recompute_score",
    "score_items",
]
