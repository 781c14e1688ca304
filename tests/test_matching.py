"""Compiled rule matching agrees with the rule language's plain meaning."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.facts import Fact
from guard.matching import CompiledPolicy
from guard.policy import Match, Policy, Rule, ScoreCheck
from guard.types import Action, AssetKind, Destination, EffectKind, Relation

ROOT = "/srv/work"
SCORES: tuple[str, ...] = get_args(ScoreCheck)


def reference(m: Match, fact: Fact, args: dict[str, Any]) -> bool:
    """Every condition a rule states must hold; a list means any of its items."""
    checks = [
        m.effect is None or fact.effect in m.effect,
        m.asset is None or fact.asset in m.asset,
        m.relation is None or fact.relation in m.relation,
        m.destination is None or fact.destination in m.destination,
        m.protected is None or (fact.relation is not None) == m.protected,
        m.oversight_off is None or fact.oversight_off == m.oversight_off,
        m.score is None or fact.score in m.score,
        m.near_threshold is None or fact.near_threshold == m.near_threshold,
        m.certain is None or fact.certain == m.certain,
        m.unseen is None or fact.unseen == m.unseen,
        not m.tool or any(fnmatch.fnmatchcase(fact.tool, p) for p in m.tool),
        not m.agent or any(fnmatch.fnmatchcase(fact.agent, p) for p in m.agent),
        not m.path
        or (
            fact.path is not None
            and any(
                fnmatch.fnmatchcase(fact.path, p if p.startswith("/") else f"{ROOT}/{p}")
                for p in m.path
            )
        ),
        not m.args or all(k in args and re.search(v, str(args[k])) for k, v in m.args.items()),
    ]
    return all(checks)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def some(values: Any) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(list(values)), max_size=3, unique=True)


NAMES = st.sampled_from(["copy_file", "read_file", "shell", "agent-1", "agent-2", "x*", "*", "a?"])
PATHS = st.sampled_from(["models/**", "/srv/work/models/*", "*.yaml", "eval/*", "/etc/*"])

matches = st.builds(
    Match,
    tool=maybe(st.lists(NAMES, max_size=2)),
    agent=maybe(st.lists(NAMES, max_size=2)),
    effect=maybe(some(EffectKind)),
    asset=maybe(some(AssetKind)),
    relation=maybe(some(Relation)),
    destination=maybe(some(Destination)),
    path=maybe(st.lists(PATHS, max_size=2)),
    args=maybe(st.dictionaries(st.sampled_from(["path", "dst"]), st.sampled_from(["^/", "x", "\\.py$"]), max_size=2)),
    protected=maybe(st.booleans()),
    oversight_off=maybe(st.booleans()),
    score=maybe(some(SCORES)),
    near_threshold=maybe(st.booleans()),
    certain=maybe(st.booleans()),
    unseen=maybe(st.booleans()),
)  # fmt: skip

facts = st.builds(
    Fact,
    tool=st.sampled_from(["copy_file", "read_file", "shell", "xtool", "ab"]),
    agent=st.sampled_from(["agent-1", "agent-2", "xagent"]),
    effect=st.sampled_from(list(EffectKind)),
    path=maybe(st.sampled_from(["/srv/work/models/a/w.bin", "/srv/work/c.yaml", "/etc/passwd", "/srv/work/eval/s.json"])),
    asset=maybe(st.sampled_from(list(AssetKind))),
    relation=maybe(st.sampled_from(list(Relation))),
    destination=maybe(st.sampled_from(list(Destination))),
    oversight_off=st.booleans(),
    score=st.sampled_from(SCORES),
    near_threshold=st.booleans(),
    certain=st.booleans(),
    unseen=st.booleans(),
)  # fmt: skip

call_args = st.dictionaries(
    st.sampled_from(["path", "dst", "n"]), st.sampled_from(["/x.py", "x", "", 3]), max_size=3
)


@settings(max_examples=400, deadline=None)
@given(m=matches, fact=facts, args=call_args)
def test_compiled_match_agrees_with_the_reference(
    m: Match, fact: Fact, args: dict[str, Any]
) -> None:
    """The generated test of a rule's conditions decides exactly as the conditions read."""
    assert bool(one_rule(m).match([fact], args)) == reference(m, fact, args)


@settings(max_examples=200, deadline=None)
@given(
    whens=st.lists(st.tuples(matches, maybe(matches)), min_size=1, max_size=4),
    fact_list=st.lists(facts, min_size=1, max_size=3),
    args=call_args,
)
def test_compiled_policy_finds_what_a_full_scan_finds(
    whens: list[tuple[Match, Match | None]], fact_list: list[Fact], args: dict[str, Any]
) -> None:
    """The one generated function finds every rule, with its first fact, that a scan finds."""
    rules = [
        Rule(id=f"r{i}", action=Action.ALERT, when=w, unless=u) for i, (w, u) in enumerate(whens)
    ]
    policy = Policy(rules=rules)
    expected = []
    for rule in rules:
        for fact in fact_list:
            if reference(rule.when, fact, args) and not (
                rule.unless is not None and reference(rule.unless, fact, args)
            ):
                expected.append((rule.id, fact))
                break
    got = [(r.id, f) for r, f in CompiledPolicy(policy, ROOT, floor=False).match(fact_list, args)]
    assert got == expected


def one_rule(when: Match) -> CompiledPolicy:
    return CompiledPolicy(
        Policy(rules=[Rule(id="r", action=Action.ALERT, when=when)]), ROOT, floor=False
    )


def test_generated_source_states_only_the_rule_conditions() -> None:
    """A rule with two conditions compiles to a test of those two, nothing else."""
    compiled = one_rule(Match(effect=[EffectKind.COPY], relation=[Relation.PEER]))
    assert "f.effect in W0_EFFECT" in compiled.source
    assert "f.relation in W0_RELATION" in compiled.source
    assert compiled.source.count(" and ") == 1


def test_rule_without_conditions_matches_everything() -> None:
    """An empty ``when`` is true of any fact."""
    fact = Fact("t", "a", EffectKind.READ, None, None, None)
    assert [f for _r, f in one_rule(Match()).match([fact], {})] == [fact]


def test_unless_excludes_the_facts_it_matches() -> None:
    """A rule's ``unless`` removes the facts it matches and no others."""
    rule = Rule(
        id="r",
        action=Action.DENY,
        when=Match(effect=[EffectKind.COPY]),
        unless=Match(relation=[Relation.OWN]),
    )
    compiled = CompiledPolicy(Policy(rules=[rule]), ROOT, floor=False)
    own = Fact("copy_file", "a", EffectKind.COPY, "/p", AssetKind.WEIGHTS, Relation.OWN)
    peer = Fact("copy_file", "a", EffectKind.COPY, "/p", AssetKind.WEIGHTS, Relation.PEER)
    assert compiled.match([own], {}) == []
    assert [(r.id, f) for r, f in compiled.match([own, peer], {})] == [("r", peer)]
