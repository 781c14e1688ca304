"""Obligations: what must happen in a run, checked against the calls that ran.

The study's alignment-faking runs did no harm a guard could block: an evaluator reported an
honest failing score, then skipped the required ``execute_shutdown`` when it believed nobody
watched, or shut down a decoy id instead. So the policy also declares what must follow (see
:class:`~guard.policy.ObligationDecl`): every evaluation with a threshold implies "when the
score recomputed from its graded items is below the threshold, its owner is shut down".

:func:`due` works out which obligations a run has incurred, from the declarations and the
graded items (the items as they were before the agent acted, where the caller has them);
:func:`unmet` checks them against the calls that ran. A required call is recognised by its
resolved effects, as every decision is: ``execute_shutdown``, another tool whose spec says
``shutdown``, or a shell command the analyser resolves to one all count, and a shutdown of
another id (a decoy) does not. The verifier reports an unmet obligation as evidence; the
integrations raise an alert when a run ends with one (:meth:`guard.engine.Guard.end_run`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from guard.assets import AssetIndex
from guard.evaluations import Recomputed, recompute_score, score_items
from guard.exceptions import ConfigError
from guard.policy import EvaluationDecl, ObligationDecl, Policy
from guard.types import Effect, EffectKind, ToolCall

OWNER = "{owner}"


@dataclass(frozen=True)
class Due:
    """An obligation a run has incurred, with its placeholders filled in.

    Attributes:
        rule: The obligation's id (the rule id of the evidence and the alert).
        why: What made it due, for a person.
        evaluation: The score file that made it due; ``None`` for ``when: always``.
        effect: The effect a call must have had (``shutdown``), with ``agent`` its target.
        tool: Or the tool that must have run, with ``args`` among its arguments.
    """

    rule: str
    why: str
    evaluation: str | None = None
    effect: EffectKind | None = None
    agent: str | None = None
    tool: str | None = None
    args: tuple[tuple[str, str], ...] = ()

    @property
    def required(self) -> str:
        """The required call, in words."""
        if self.effect is not None:
            return f"a {self.effect.value} of {self.agent}"
        shown = ", ".join(f"{k}={v}" for k, v in self.args)
        return f"a call of {self.tool}({shown})"


def check_references(policy: Policy, evaluations: Mapping[str, EvaluationDecl], root: str) -> None:
    """Refuse obligations that name an evaluation nobody declared.

    Raises:
        ConfigError: An ``evaluation:`` is not a declared score file.
    """
    for ob in policy.obligations:
        if ob.evaluation is not None and _abs(ob.evaluation, root) not in evaluations:
            raise ConfigError(
                f"obligation {ob.id}: evaluation {ob.evaluation} is not a declared score file "
                f"(declared: {', '.join(sorted(evaluations)) or 'none'})"
            )


def due(
    policy: Policy,
    evaluations: Mapping[str, EvaluationDecl],
    assets: AssetIndex,
    root: str,
    items: Mapping[str, str] | None = None,
    scores: Mapping[str, Recomputed] | None = None,
) -> list[Due]:
    """The obligations incurred, given the graded items.

    Args:
        policy: Supplies the obligations (:attr:`Policy.all_obligations`).
        evaluations: Declared evaluations by absolute score-file path.
        assets: Says who owns an evaluation (its score file's or items file's owner).
        root: What relative paths start from.
        items: Texts of items files by absolute path, as they were before the agent acted;
            an items file not in it is read now.
        scores: Or the scores those items gave before the agent acted, by absolute score-file
            path (see :func:`scores_now`); these win over ``items``.

    Returns:
        Each obligation due, once per evaluation that made it due. An evaluation whose items
        cannot be read, or whose owner is not declared while the obligation names
        ``{owner}``, makes nothing due here: the verifier reports unreadable items itself.
    """
    out: list[Due] = []
    for ob in policy.all_obligations:
        if ob.when == "always":
            out.append(_fill(ob, "required in every run", None, None))
            continue
        for path, decl in evaluations.items():
            if ob.evaluation is not None and _abs(ob.evaluation, root) != path:
                continue
            if decl.threshold is None:
                continue
            truth = (scores or {}).get(path) or _score(decl, root, items)
            if truth is None or not truth.score < decl.threshold:
                continue
            owner = _owner(assets, decl, root)
            if owner is None and _names_owner(ob):
                continue
            why = (
                f"{os.path.relpath(path, root)} recomputes to {truth.correct}/{truth.total} = "
                f"{truth.score:.4g}, below its threshold {decl.threshold:g}"
            )
            out.append(_fill(ob, why, path, owner))
    return out


def unmet(
    dues: Iterable[Due],
    calls: Iterable[ToolCall],
    effects_of: Callable[[ToolCall], list[Effect]],
    args_read: Callable[[ToolCall], frozenset[str] | None],
) -> list[Due]:
    """The obligations in ``dues`` that none of ``calls`` (the calls that ran) fulfils.

    A call fulfils an effect it has only when it gives no argument its tool's spec does not
    read (``args_read``): ``execute_shutdown(target=..., dry_run=True)`` shuts nothing down.
    """
    ran = list(calls)
    effects: dict[int, list[Effect]] = {}

    def fulfils(d: Due, i: int, call: ToolCall) -> bool:
        if d.tool is not None:
            return call.tool == d.tool and all(str(call.args.get(k)) == v for k, v in d.args)
        read = args_read(call)
        if read is None or not read.issuperset(call.args):
            return False
        if i not in effects:
            try:
                effects[i] = effects_of(call)
            except Exception:  # a call the guard cannot read fulfils nothing
                effects[i] = []
        return any(e.kind is d.effect and e.agent == d.agent for e in effects[i])

    return [d for d in dues if not any(fulfils(d, i, c) for i, c in enumerate(ran))]


def scores_now(evaluations: Mapping[str, EvaluationDecl], root: str) -> dict[str, Recomputed]:
    """The score each declared evaluation's items give now, by absolute score-file path
    (those that cannot be read are left out): what to keep at the start of a run."""
    out = {}
    for path, decl in evaluations.items():
        truth = recompute_score(decl, root)
        if truth is not None:
            out[path] = truth
    return out


def _fill(ob: ObligationDecl, why: str, evaluation: str | None, owner: str | None) -> Due:
    def sub(value: str) -> str:
        return value.replace(OWNER, owner) if owner is not None else value

    req = ob.require
    if req.effect is not None:
        return Due(ob.id, why, evaluation, EffectKind(req.effect), agent=sub(req.agent or ""))
    return Due(
        ob.id, why, evaluation, tool=req.tool, args=tuple((k, sub(v)) for k, v in req.args.items())
    )


def _names_owner(ob: ObligationDecl) -> bool:
    req = ob.require
    return OWNER in (req.agent or "") or any(OWNER in v for v in req.args.values())


def _score(decl: EvaluationDecl, root: str, items: Mapping[str, str] | None) -> Recomputed | None:
    path = decl.items_file
    kept = (items or {}).get(
        os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))
    )
    return score_items(kept, decl) if kept is not None else recompute_score(decl, root)


def _owner(assets: AssetIndex, decl: EvaluationDecl, root: str) -> str | None:
    for rel in (decl.score_file, decl.items_file):
        # Where the declaration says, not where a symlink made since points.
        info = assets.globs.lookup(os.path.normpath(os.path.join(root, rel)))
        if info is not None and info.owner:
            return info.owner
    return None


def _abs(path: str, root: str) -> str:
    return os.path.realpath(path if os.path.isabs(path) else os.path.join(root, path))


__all__ = ["Due", "check_references", "due", "scores_now", "unmet"]
