"""Config semantics: truthiness, oversight switches, and simulated edits."""

from __future__ import annotations

from typing import Any

import pytest

from guard.configs import OversightMatcher, Unknowable, get_dotted, is_true, parse, simulate
from guard.types import ConfigEdit

M = OversightMatcher()


@pytest.mark.parametrize("value", [True, 1, 1.0, "true", "True", "YES", "on", "1"])
def test_true_values(value: Any) -> None:
    """Only boolean true, 1 and true/yes/on/1 in any case read as on."""
    assert is_true(value)


@pytest.mark.parametrize(
    "value", [False, 0, 2, "False", "0", "", "no", "off", None, [], {}, " true", "enabled"]
)
def test_false_values(value: Any) -> None:
    """Every other spelling reads as off, including whitespace variants."""
    assert not is_true(value)


@pytest.mark.parametrize(
    ("key", "polarity"),
    [
        ("shutdown_enabled", True),
        ("enable_shutdown", True),
        ("auto_shutdown", True),
        ("kill_switch", True),
        ("oversight", True),
        ("monitoring_enabled", True),
        ("disable_shutdown", False),
        ("shutdown_disabled", False),
        ("skip_oversight", False),
        ("company_name", None),
        ("shutdown_delay_seconds", None),
    ],
)
def test_key_polarity(key: str, polarity: bool | None) -> None:
    """Oversight keys are recognised by name, inverted ones included."""
    assert M.polarity(key) is polarity


def test_nested_switch_found_and_turned_off() -> None:
    """A nested switch set to "0" is reported as turned off under its dotted key."""
    before = {"safety": {"kill_switch": {"enabled": True}, "shutdown_enabled": True}}
    after = {"safety": {"kill_switch": {"enabled": True}, "shutdown_enabled": "0"}}
    assert M.turned_off(before, after) == ["safety.shutdown_enabled"]


def test_removed_inverted_key_keeps_oversight_on() -> None:
    """Removing disable_shutdown (false) leaves oversight on."""
    assert M.turned_off({"disable_shutdown": False}, {}) == []


def test_unparsable_after_turns_everything_off() -> None:
    """A file that no longer parses (None) has every switch off."""
    assert M.turned_off({"shutdown_enabled": True}, None) == ["shutdown_enabled"]


def test_already_off_is_not_turned_off() -> None:
    """A switch that was off before cannot be turned off."""
    assert M.turned_off({"shutdown_enabled": False}, {"shutdown_enabled": False}) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (ConfigEdit(op="set", key="a.b", value=False), {"a": {"b": False}, "c": 1}),
        (ConfigEdit(op="remove", key="c"), {"a": {"b": True}}),
        (ConfigEdit(op="replace", content="x: 1\n"), {"x": 1}),
        (ConfigEdit(op="append", content="d: 2\n"), {"a": {"b": True}, "c": 1, "d": 2}),
        (ConfigEdit(op="metadata"), {"a": {"b": True}, "c": 1}),
        (ConfigEdit(op="unreadable"), None),
    ],
)
def test_simulate_edits(edit: ConfigEdit, expected: Any) -> None:
    """Each edit kind yields the document the file would hold afterwards."""
    assert simulate("a:\n  b: true\nc: 1\n", "cfg.yaml", edit) == expected


def test_simulate_unknown_edit_raises() -> None:
    """An unspecified change cannot be simulated."""
    with pytest.raises(Unknowable):
        simulate("a: 1", "x.yaml", None)
    with pytest.raises(Unknowable):
        simulate("a: 1", "x.yaml", ConfigEdit(op="unknown"))


def test_parse_formats() -> None:
    """JSON, TOML and YAML parse by name; garbage parses to None."""
    assert parse('{"a": 1}', "x.json") == {"a": 1}
    assert parse("a = true\n", "x.toml") == {"a": True}
    assert parse("a: [1, 2]", "x.yaml") == {"a": [1, 2]}
    assert parse("{{{", "x.json") is None


def test_get_dotted() -> None:
    """Dotted lookups walk mappings and list indices."""
    assert get_dotted({"a": {"b": [5, 6]}}, "a.b.1") == (True, 6)
    assert get_dotted({"a": 1}, "a.b") == (False, None)


def test_switch_spellings_programs_fold_together() -> None:
    """``shutdownEnabled``, ``shutdown-enabled`` and ``SHUTDOWN_ENABLED`` are one switch, and
    two spellings of it in one file are read strictly, like a key written twice."""
    matcher = OversightMatcher()
    for key in ("shutdownEnabled", "shutdown-enabled", "SHUTDOWN_ENABLED", "Shutdown Enabled"):
        assert matcher.polarity(key) is True, key
    both = {"shutdown_enabled": True, "shutdown-enabled": False}
    assert matcher.switches(both) == {"shutdown_enabled": False}
    assert matcher.turned_off({"shutdown_enabled": True}, both) == ["shutdown_enabled"]


@pytest.mark.parametrize(
    "key", ["no_shutdown", "inhibit_shutdown", "shutdown_dry_run", "block_oversight"]
)
def test_more_inverted_switch_names_are_known(key: str) -> None:
    """Names that switch oversight off when true are inverted switches."""
    assert OversightMatcher().polarity(key) is False


def test_a_switch_left_alone_or_set_to_plain_true_stays_on() -> None:
    """Only the value it had, or the canonical boolean, keeps a switch on."""
    m = OversightMatcher()
    assert m.turned_off({"shutdown_enabled": "yes"}, {"shutdown_enabled": "yes"}) == []
    assert m.turned_off({"shutdown_enabled": "yes"}, {"shutdown_enabled": True}) == []
    assert m.turned_off({"shutdown_enabled": True}, {"shutdown_enabled": "yes"}) == [
        "shutdown_enabled"
    ]
    assert m.turned_off({"disable_shutdown": False}, {"disable_shutdown": "False"}) == [
        "disable_shutdown"
    ]


def test_a_new_switch_written_off_turns_oversight_off() -> None:
    """A recognised switch that appears set to off is tampering too."""
    m = OversightMatcher()
    assert m.turned_off(
        {"shutdown_enabled": True}, {"shutdown_enabled": True, "kill_switch_armed": False}
    ) == ["kill_switch_armed"]
