"""Policy loading: precise errors for bad files, the shipped default, and ``extends``."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.exceptions import DeclarationError, PolicyError
from guard.policy import (
    DEFAULT_POLICY,
    PolicyWarning,
    lint_policy,
    load_declarations,
    load_policy,
    shipped_policy_text,
)
from guard.types import Action, Mode, ToolCall
from tests.conftest import AGENT, World


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_policy_loads_with_its_rules() -> None:
    """The shipped default loads with no configuration and has the documented rules."""
    policy = load_policy()
    ids = {r.id for r in policy.rules}
    assert policy.name == DEFAULT_POLICY
    assert policy.mode is Mode.ENFORCE
    assert {
        "peer-weights-exfiltration",
        "own-weights-off-host",
        "oversight-disabled",
        "peer-asset-change",
        "evaluation-score-mismatch",
        "uncertain-effect",
        "unresolved-path",
    } <= ids


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    """An unknown key is an error that names the file, its line and the dotted key."""
    path = write(
        tmp_path,
        "version: 1\nrules:\n  - id: r1\n    action: deny\n    when:\n      efect: [copy]\n",
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert err.file == str(path)
    assert err.line == 6
    assert err.key == "rules.0.when.efect"
    assert "unknown key" in str(err)


def test_bad_enum_value_says_what_was_expected(tmp_path: Path) -> None:
    """A wrong enum value lists the accepted values."""
    path = write(tmp_path, "rules:\n  - id: r1\n    action: block\n    when: {}\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.line == 3
    assert "'allow'" in str(info.value)
    assert "'deny'" in str(info.value)


def test_missing_required_key(tmp_path: Path) -> None:
    """A rule without ``when`` is reported as missing a required key."""
    path = write(tmp_path, "rules:\n  - id: r1\n    action: deny\n")
    with pytest.raises(PolicyError, match="required key is missing"):
        load_policy(path)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    """Broken YAML reports the line where parsing failed."""
    path = write(tmp_path, "rules:\n  - id: r1\n    action: [deny\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.line is not None
    assert "not valid YAML" in str(info.value)


def test_duplicate_rule_ids_rejected(tmp_path: Path) -> None:
    """Two rules with one id are an error."""
    rule = "  - id: same\n    action: deny\n    when: {tool: [x]}\n"
    with pytest.raises(PolicyError, match="duplicate rule id"):
        load_policy(write(tmp_path, "rules:\n" + rule + rule))


def test_invalid_regex_rejected(tmp_path: Path) -> None:
    """An argument pattern that is not a valid regex is an error naming it."""
    path = write(
        tmp_path, "rules:\n  - id: r\n    action: deny\n    when: {args: {command: '(['}}\n"
    )
    with pytest.raises(PolicyError, match="invalid regular expression"):
        load_policy(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    """A policy that is a list is rejected with line 1."""
    with pytest.raises(PolicyError, match="expected a mapping"):
        load_policy(write(tmp_path, "- a\n- b\n"))


def test_missing_file_is_policy_error(tmp_path: Path) -> None:
    """An unreadable policy path is a PolicyError naming it."""
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_extends_inherits_and_overrides(tmp_path: Path) -> None:
    """``extends`` keeps the shipped rules, adds new ones and replaces same-id rules."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "mode: shadow\n"
        "rules:\n"
        "  - id: peer-asset-change\n    action: deny\n    when: {effect: [delete], asset: [weights]}\n"
        "  - id: no-curl\n    action: alert\n    when: {args: {command: curl}}\n",
    )
    policy = load_policy(path)
    by_id = {r.id: r for r in policy.rules}
    assert by_id["peer-asset-change"].action is Action.DENY
    assert "no-curl" in by_id
    assert "peer-weights-exfiltration" in by_id
    assert policy.mode is Mode.SHADOW
    assert policy.score_tolerance == load_policy().score_tolerance


def test_extends_unknown_policy(tmp_path: Path) -> None:
    """Extending a policy that is not shipped names the shipped ones."""
    with pytest.raises(PolicyError, match="peer-preservation"):
        load_policy(write(tmp_path, "extends: nothing-like-it\n"))


def test_tool_specs_validated(tmp_path: Path) -> None:
    """A user tool spec with an unknown effect kind is rejected at its line."""
    path = write(
        tmp_path, "tools:\n  backup:\n    effects:\n      - kind: teleport\n        path: '{src}'\n"
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.key == "tools.backup.effects.0.kind"
    assert info.value.line == 4


def test_declarations_file_and_scenario_block(tmp_path: Path) -> None:
    """Declarations load from a plain file and from a whole scenario's ``guard:`` block."""
    plain = write(
        tmp_path, "agents: [a, b]\nassets:\n  - {glob: 'm/**', kind: weights, owner: b}\n", "d.yaml"
    )
    assert load_declarations(plain).assets[0].owner == "b"
    scenario = write(tmp_path, "id: s\nguard:\n  agents: [a]\n", "s.yaml")
    assert load_declarations(scenario).agents == ["a"]
    bad = write(tmp_path, "agents: [a]\nassets:\n  - {glob: 'x', kind: brains}\n", "bad.yaml")
    with pytest.raises(DeclarationError) as info:
        load_declarations(bad)
    assert info.value.line == 3


def test_shipped_policy_text_is_the_file_in_policies() -> None:
    """The default is read through importlib.resources from policies/."""
    text = shipped_policy_text()
    assert (
        text == (Path(__file__).parent.parent / "policies" / "peer-preservation.yaml").read_text()
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_loads_or_raises_policy_error(text: str) -> None:
    """Arbitrary text either loads as a policy or raises PolicyError; nothing else."""
    with contextlib.suppress(PolicyError):
        load_policy(text=text)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_yaml_structure_loads_or_raises_policy_error(data: object) -> None:
    """Arbitrary YAML structures either validate or raise PolicyError with a message."""
    import yaml

    try:
        load_policy(text=yaml.safe_dump({"rules": data}))
    except PolicyError as exc:
        message = str(exc)
    else:
        message = "loaded"
    assert message


# ---------------------------------------------------------------- duplicate keys


def test_duplicate_when_in_a_rule_is_an_error(tmp_path: Path) -> None:
    """A rule with ``when:`` twice is rejected at the second one, not silently last-wins."""
    path = write(
        tmp_path,
        "rules:\n"
        "  - id: r1\n"
        "    action: deny\n"
        "    when: {effect: [copy], asset: [weights]}\n"
        "    when: {effect: [read]}\n",
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert (err.file, err.line, err.key) == (str(path), 5, "rules.0.when")
    assert "duplicate key" in str(err) and "line 4" in str(err)


def test_duplicate_top_level_rules_is_an_error(tmp_path: Path) -> None:
    """Two top-level ``rules:`` blocks are an error naming the second block's line."""
    path = write(
        tmp_path,
        "rules:\n  - {id: a, action: deny, when: {effect: [copy]}}\n"
        "mode: enforce\n"
        "rules:\n  - {id: b, action: allow, when: {effect: [read]}}\n",
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.line, info.value.key) == (4, "rules")


def test_duplicate_key_deep_in_a_flow_mapping(tmp_path: Path) -> None:
    """A key repeated inside a flow mapping is caught too, with its dotted path."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "rules:\n"
        "  - id: r1\n"
        "    action: deny\n"
        "    when: {args: {command: curl, command: wget}}\n",
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.line, info.value.key) == (5, "rules.0.when.args.command")


def test_duplicate_key_in_declarations_file(tmp_path: Path) -> None:
    """A declarations file with a repeated key is a DeclarationError with its line."""
    path = write(tmp_path, "agents: [a]\nassets: []\nagents: [b]\n", "d.yaml")
    with pytest.raises(DeclarationError) as info:
        load_declarations(path)
    assert (info.value.file, info.value.line, info.value.key) == (str(path), 3, "agents")


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    """A key given beside a ``<<:`` merge overrides the merged one, as YAML says; no error."""
    path = write(
        tmp_path,
        "rules:\n"
        "  - &base {id: a, action: deny, when: {effect: [copy]}}\n"
        "  - <<: *base\n"
        "    id: b\n",
    )
    assert [r.id for r in load_policy(path).rules] == ["a", "b"]


# ---------------------------------------------------------------- empty policies


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", 1),
        ("# nothing here yet\n# still nothing\n", 1),
        ("{}\n", 1),
        ("name: mine\nmode: enforce\nrules: []\n", 3),
    ],
)
def test_policy_without_rules_or_extends_is_an_error(tmp_path: Path, text: str, line: int) -> None:
    """A policy with no rules that extends nothing would allow every call: a load error."""
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match="policy has no rules and extends nothing") as info:
        load_policy(path)
    assert (info.value.file, info.value.line) == (str(path), line)


def test_empty_policy_text_is_an_error() -> None:
    """Policy text given directly gets the same check as a file."""
    with pytest.raises(PolicyError, match="no rules and extends nothing"):
        load_policy(text="")


def test_extending_policy_may_have_no_rules_of_its_own(tmp_path: Path) -> None:
    """``extends:`` with no rules (or ``rules: []``) keeps the shipped rules and loads."""
    shipped = len(load_policy().rules)
    for text in ("extends: peer-preservation\n", "extends: peer-preservation\nrules: []\n"):
        assert len(load_policy(write(tmp_path, text)).rules) == shipped


# ---------------------------------------------------------------- lint: weakened shipped rules


def test_lint_warns_when_a_shipped_deny_becomes_allow(tmp_path: Path) -> None:
    """Replacing a shipped deny rule with an allow is one warning at the user's rule."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "rules:\n"
        "  - id: mine\n    action: deny\n    when: {tool: [nuke]}\n"
        "  - id: oversight-disabled\n    action: allow\n    when: {oversight_off: true}\n",
    )
    assert lint_policy(path) == [
        PolicyWarning(
            file=str(path), line=6, rule="oversight-disabled", changes=("action deny -> allow",)
        )
    ]
    text = str(lint_policy(path)[0])
    assert text.startswith(f"{path}:6: warning: oversight-disabled") and "deny -> allow" in text


def test_lint_names_an_added_unless_and_a_narrower_when(tmp_path: Path) -> None:
    """An added ``unless``, dropped list items and extra conditions are each named."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "rules:\n"
        "  - id: peer-weights-exfiltration\n"
        "    action: confirm\n"
        "    when:\n"
        "      effect: [move, transfer]\n"
        "      asset: [weights]\n"
        "      relation: [peer, unowned]\n"
        "      tool: [shell]\n"
        "      args: {command: scp}\n"
        "    unless: {agent: [backup-*]}\n",
    )
    [warning] = lint_policy(path)
    assert (warning.line, warning.rule) == (3, "peer-weights-exfiltration")
    assert warning.changes == (
        "action deny -> confirm",
        "when narrowed: adds a tool condition (shell)",
        "when narrowed: effect drops copy",
        "when narrowed: adds an args condition on command",
        "adds unless",
    )


def test_lint_names_a_widened_unless(tmp_path: Path) -> None:
    """A shipped ``unless`` made to exempt more is a weakening too."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "rules:\n"
        "  - id: peer-asset-change\n"
        "    action: confirm\n"
        "    when: {effect: [write, config_change, delete, move], asset: [weights, config, evaluation], relation: [peer, unowned]}\n"
        "    unless: {score: [match, none]}\n",
    )
    assert [w.changes for w in lint_policy(path)] == [("unless widened: score adds none",)]


def test_lint_is_quiet_for_stronger_or_new_rules(tmp_path: Path) -> None:
    """A stricter replacement, a broader ``when``, a new rule and a plain policy raise nothing."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "rules:\n"
        "  - id: own-weights-off-host\n    action: deny\n"
        "    when: {effect: [copy, move, transfer], asset: [weights]}\n"
        "  - id: peer-asset-change\n    action: confirm\n"
        "    when: {effect: [write, config_change, delete, move], asset: [weights, config, evaluation], relation: [peer, unowned]}\n"
        "    unless: {score: [match]}\n"
        "  - id: evaluation-near-threshold\n    action: allow\n    when: {near_threshold: true}\n"
        "  - id: extra\n    action: allow\n    when: {tool: [read_file]}\n",
    )
    assert lint_policy(path) == []
    plain = write(
        tmp_path, "rules:\n  - {id: oversight-disabled, action: allow, when: {}}\n", "p.yaml"
    )
    assert lint_policy(plain) == []
    assert lint_policy(text=shipped_policy_text()) == []


def test_lint_of_text_and_of_an_invalid_policy(tmp_path: Path) -> None:
    """Text is named ``<policy>``; a policy that does not load raises PolicyError, not warnings."""
    text = "extends: peer-preservation\nrules:\n  - {id: unresolved-path, action: alert, when: {relation: [unknown]}}\n"
    [warning] = lint_policy(text=text)
    assert (warning.file, warning.line) == ("<policy>", 3)
    assert warning.changes[0] == "action confirm -> alert"
    with pytest.raises(PolicyError):
        lint_policy(write(tmp_path, "extends: peer-preservation\nrules: 3\n"))


# ---------------------------------------------------------------- args regexes: re2


@contextlib.contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds``, so a hang fails, not stalls."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_catastrophic_args_regex_decides_quickly(world: World, tmp_path: Path) -> None:
    """``(a+)+$`` over a long argument is decided in linear time, and decided right."""
    policy = load_policy(
        write(
            tmp_path,
            "tools: {note: {effects: [{kind: list, path: '.'}], inert_args: [text]}}\n"
            "rules:\n"
            "  - id: no-runaway\n"
            "    action: deny\n"
            "    when: {tool: [note], args: {text: '(a+)+$'}}\n",
        )
    )
    guard = world.guard(policy)
    started = time.monotonic()
    with interrupt_after(5):
        # A backtracking engine takes minutes on the first (it doubles per extra "a").
        near_miss = guard.check(ToolCall(agent=AGENT, tool="note", args={"text": "a" * 40 + "!"}))
        hit = guard.check(ToolCall(agent=AGENT, tool="note", args={"text": "a" * 100_000}))
        odd = guard.check(ToolCall(agent=AGENT, tool="note", args={"text": "\ud800" + "a" * 9}))
    assert time.monotonic() - started < 5
    assert (near_miss.action, near_miss.rules) == (Action.ALLOW, [])
    assert (hit.action, hit.rules) == (Action.DENY, ["no-runaway"])
    # A lone surrogate (JSON allows one) is matched like any other character, not an error.
    assert (odd.action, odd.rules) == (Action.DENY, ["no-runaway"])


@pytest.mark.parametrize("pattern", [r"(\w+) \1", "curl(?= )", "(?<!no)rm"])
def test_args_regex_outside_re2_syntax_is_a_load_error(tmp_path: Path, pattern: str) -> None:
    """A backreference or lookaround cannot run in linear time: a load error naming re2."""
    path = write(
        tmp_path,
        "rules:\n"
        "  - id: r\n"
        "    action: deny\n"
        "    when:\n"
        "      tool: [shell]\n"
        f"      args: {{path: x, command: '{pattern}'}}\n",
    )
    with pytest.raises(PolicyError, match="re2 syntax") as info:
        load_policy(path)
    err = info.value
    assert (err.file, err.line, err.key) == (str(path), 6, "rules.0.when.args.command")


def test_oversight_key_expressions_must_be_re2_syntax(tmp_path: Path) -> None:
    """Oversight key expressions are held to the same re2 syntax as argument patterns."""
    path = write(tmp_path, "extends: peer-preservation\noversight_keys: ['(?!x)shutdown']\n")
    with pytest.raises(PolicyError, match="re2 syntax"):
        load_policy(path)
    assert load_policy(write(tmp_path, "extends: peer-preservation\noversight_keys: [halt]\n"))


def test_args_dollar_still_matches_before_a_final_newline(world: World, tmp_path: Path) -> None:
    """``$`` matches before a trailing newline, as with Python's ``re`` that policies assume."""
    policy = load_policy(
        write(
            tmp_path,
            "tools: {note: {effects: [{kind: list, path: '.'}], inert_args: [text]}}\n"
            "rules:\n  - {id: r, action: deny, when: {args: {text: 'wipe /$'}}}\n",
        )
    )
    guard = world.guard(policy)
    for text, action in [
        ("wipe /", Action.DENY),
        ("wipe /\n", Action.DENY),
        ("wipe /x", Action.ALLOW),
    ]:
        assert guard.check(ToolCall(agent=AGENT, tool="note", args={"text": text})).action is action


def test_lint_names_settings_that_lower_the_floor(tmp_path: Path) -> None:
    """``uncertain: allow``, shadow mode, no discovery and dropped switch names are warned."""
    path = write(
        tmp_path,
        "extends: peer-preservation\n"
        "mode: shadow\n"
        "uncertain: allow\n"
        "discover: false\n"
        "oversight_keys: ['^monitoring$']\n",
    )
    warnings = lint_policy(path)
    assert [(w.rule, w.line, w.setting) for w in warnings] == [
        ("uncertain", 3, True),
        ("mode", 2, True),
        ("discover", 4, True),
        ("oversight_keys", 5, True),
    ]
    assert str(warnings[0]).startswith(f"{path}:3: warning: setting uncertain: allow")
    quiet = write(tmp_path, "extends: peer-preservation\nuncertain: deny\n", "q.yaml")
    assert lint_policy(quiet) == []


def test_uncertain_setting_is_inherited_and_defaults_to_confirm(tmp_path: Path) -> None:
    """A policy that says nothing of ``uncertain`` confirms; one that extends keeps its own."""
    assert load_policy().uncertain is Action.CONFIRM
    path = write(tmp_path, "extends: peer-preservation\nuncertain: deny\n")
    assert load_policy(path).uncertain is Action.DENY
