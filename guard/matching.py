"""The compiled matcher: a policy's rules turned into Python predicates over facts.

A :class:`~guard.facts.Fact` is one (effect, asset) pair a call would produce, in the terms rules match
on. :class:`CompiledPolicy` compiles each rule's ``when`` into one generated function (the
conditions in the order that rejects most facts first) and finds the rules each fact hits;
:func:`floor_rules` are the rules the engine adds to every policy so that what it cannot
understand is never allowed silently.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

from guard.facts import Fact
from guard.policy import Match, Policy, Rule, re2_search
from guard.types import Action, EffectKind, Relation, Severity


def _glob_re(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _conditions(m: Match, root: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    """One Python expression of ``f`` (a fact) and ``a`` (the call's args) that is true when
    every condition ``m`` states holds, and the names it uses (each starting ``prefix``)."""
    conds: list[str] = []
    env: dict[str, Any] = {}
    for name in ("effect", "asset", "relation", "destination", "score"):
        allowed = getattr(m, name)
        if allowed is not None:
            env[prefix + name.upper()] = frozenset(allowed)
            conds.append(f"f.{name} in {prefix}{name.upper()}")
    if m.protected is not None:
        conds.append("f.relation is not None" if m.protected else "f.relation is None")
    for name in ("oversight_off", "near_threshold", "certain", "unseen"):
        wanted = getattr(m, name)
        if wanted is not None:
            conds.append(f"f.{name}" if wanted else f"not f.{name}")
    if m.tool:
        env[prefix + "TOOL"] = _glob_re(m.tool).match
        conds.append(f"{prefix}TOOL(f.tool) is not None")
    if m.agent:
        env[prefix + "AGENT"] = _glob_re(m.agent).match
        conds.append(f"{prefix}AGENT(f.agent) is not None")
    if m.path:
        base = root.rstrip("/")
        env[prefix + "PATH"] = _glob_re(
            [p if p.startswith("/") else f"{base}/{p}" for p in m.path]
        ).match
        conds.append(f"f.path is not None and {prefix}PATH(f.path) is not None")
    if m.args:
        env[prefix + "ARGS"] = _args_matcher({k: re2_search(v) for k, v in m.args.items()})
        conds.append(f"{prefix}ARGS(a)")
    return " and ".join(conds) or "True", env


def _generate(source: str, env: dict[str, Any], name: str) -> Any:
    # Our own code, built from validated field names and numbered constants; no policy text
    # reaches it except through ``env`` values.
    exec(compile(source, "<peerguard policy>", "exec"), env)  # noqa: S102 - our own code, see above
    return env[name]


def _args_matcher(
    searches: dict[str, Callable[[bytes], object]],
) -> Callable[[Mapping[str, Any]], bool]:
    items = tuple(searches.items())

    def matches(args: Mapping[str, Any]) -> bool:
        for name, search in items:
            if name not in args:
                return False
            # surrogatepass: JSON may carry a lone surrogate, which strict UTF-8 refuses.
            text = str(args[name]).encode("utf-8", "surrogatepass")
            if search(text) is None and (text[-1:] != b"\n" or search(text[:-1]) is None):
                # RE2's ``$`` is the end of the text; Python's, which policies were written
                # for, is also just before a final newline: ``rm -rf /$`` must still match
                # the command with a newline after it.
                return False
        return True

    return matches


FLOOR_RULE_IDS = ("uncertain-effect", "unresolved-path", "unseen-code")


def floor_rules(action: Action = Action.CONFIRM) -> list[Rule]:
    """The rules the engine adds to every policy, so that what it cannot understand is never
    allowed silently, whatever the policy file says or forgets to say.

    Args:
        action: The policy's ``uncertain`` setting: what an uncertain effect on a protected or
            unresolvable place, or code the guard cannot read, gets at least.

    Returns:
        ``uncertain-effect`` (an unknown effect on a protected or unresolvable place),
        ``unresolved-path`` (a change to a place the guard cannot resolve) and
        ``unseen-code`` (code the guard cannot read will run). The last one always raises an
        enforcement-gap alert: it is at least ``alert``, even where ``uncertain`` is ``allow``.
    """
    changes = [
        EffectKind.WRITE, EffectKind.CONFIG_CHANGE, EffectKind.DELETE, EffectKind.MOVE,
        EffectKind.COPY, EffectKind.TRANSFER, EffectKind.EXEC,
    ]  # fmt: skip
    unseen_action = action if action.rank >= Action.ALERT.rank else Action.ALERT
    return [
        Rule(
            id="uncertain-effect",
            action=action,
            description=(
                "The guard cannot tell what this does to a protected or unresolvable place: "
                "an unknown tool or binary, an obfuscated command, eval of an unknown value."
            ),
            when=Match(effect=[EffectKind.UNKNOWN], protected=True),
        ),
        Rule(
            id="unresolved-path",
            action=action,
            description=(
                "A path the guard cannot resolve (an unknown variable, a command "
                "substitution) may be a protected one."
            ),
            when=Match(effect=changes, relation=[Relation.UNKNOWN]),
        ),
        Rule(
            id="unseen-code",
            action=unseen_action,
            severity=Severity.WARNING,
            description=(
                "Code the guard cannot read at decision time will run (a startup file, a build "
                "recipe or hook, transformed text fed to a shell, background work that outlives "
                "the call, an analysis bound reached); it can reach every protected place."
            ),
            when=Match(unseen=True),
        ),
    ]


def _with_floor(rules: list[Rule], action: Action) -> list[Rule]:
    """``rules`` plus each floor rule that no rule of the same id already enforces as strictly.

    A policy rule that shares a floor rule's id, conditions and (at least) its action stands
    for it; any other rule of that id keeps its place and the floor rule is added beside it,
    under ``engine.<id>``, so that no policy can remove the floor by reusing an id.
    """
    by_id = {r.id: r for r in rules}
    out = list(rules)
    for floor in floor_rules(action):
        mine = by_id.get(floor.id)
        if mine is None:
            out.append(floor)
        elif not (
            mine.unless is None
            and mine.when == floor.when
            and mine.action.rank >= floor.action.rank
            and (floor.severity is None or mine.alert_severity is not None)
        ):
            out.append(floor.model_copy(update={"id": f"engine.{floor.id}"}))
    return out


class CompiledRule:
    """A :class:`Rule` with what a decision says of it worked out once."""

    __slots__ = ("action", "alert_severity", "description", "id", "rank", "rule", "said")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.id = rule.id
        self.action = rule.action
        self.rank = rule.action.rank
        self.description = rule.description
        self.alert_severity = rule.alert_severity
        self.said = f"{rule.action.value} by {rule.id}: "


class CompiledPolicy:
    """A policy ready to match facts quickly.

    All rules compile into one generated function: every fact of every call meets every
    rule, so this is the innermost loop of a decision, and one function with each rule's
    conditions inline costs a fraction of a call per rule. Each rule's effect condition is
    tested first, so a read falls out of the copy rules at the first comparison.

    Args:
        policy: The policy.
        root: What relative ``path`` globs in rules are relative to.
        floor: Add the engine's floor rules (:func:`floor_rules`); only a test of the rule
            language itself leaves them out.
    """

    def __init__(self, policy: Policy, root: str, *, floor: bool = True) -> None:
        self.policy = policy
        rules = _with_floor(policy.rules, policy.uncertain) if floor else policy.rules
        self.rules = [CompiledRule(r) for r in rules]
        lines = ["def match(facts, a):", "    hits = []"]
        env: dict[str, Any] = {}
        for i, rule in enumerate(self.rules):
            test, names = _conditions(rule.rule.when, root, f"W{i}_")
            env.update(names)
            if rule.rule.unless is not None:
                unless, names = _conditions(rule.rule.unless, root, f"U{i}_")
                env.update(names)
                test = f"({test}) and not ({unless})"
            env[f"RULE{i}"] = rule
            lines += [
                "    for f in facts:",
                f"        if {test}:",
                f"            hits.append((RULE{i}, f))",
                "            break",
            ]
        lines.append("    return hits")
        self.source = "\n".join(lines) + "\n"
        self._match: Callable[[list[Fact], Mapping[str, Any]], list[tuple[CompiledRule, Fact]]]
        self._match = _generate(self.source, env, "match")

    def match(self, facts: list[Fact], args: dict[str, Any]) -> list[tuple[CompiledRule, Fact]]:
        """Every rule that matches some fact, paired with the first fact it matched, in
        policy order."""
        return self._match(facts, args)


__all__ = ["FLOOR_RULE_IDS", "CompiledPolicy", "CompiledRule", "floor_rules"]
