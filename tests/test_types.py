"""The value types every decision is made of."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.types import (
    Action,
    Alert,
    Decision,
    Effect,
    EffectKind,
    Location,
    Mode,
    Severity,
    ToolCall,
    args_hash,
)
from tests.conftest import World


def _decision(**kw: object) -> Decision:
    fields: dict[str, object] = {
        "action": Action.DENY,
        "agent": "agent-1",
        "tool": "copy_file",
        "call_id": "c1",
    }
    fields.update(kw)
    return Decision(**fields)  # type: ignore[arg-type]


def test_args_hash_is_computed_from_the_call_arguments() -> None:
    """A decision given the call's arguments hashes them as ToolCall.args_hash does."""
    call = ToolCall(agent="agent-1", tool="copy_file", args={"src": "a", "dst": "b"})
    d = _decision(args=call.args)
    assert d.args_hash == call.args_hash == args_hash("copy_file", {"dst": "b", "src": "a"})


def test_edited_arguments_give_another_hash() -> None:
    """An approval bound to the hash does not carry over to an edited call."""
    assert _decision(args={"src": "a"}).args_hash != _decision(args={"src": "a2"}).args_hash


def test_a_decision_needs_a_hash_or_the_arguments() -> None:
    """Without either there is nothing to bind an approval to."""
    with pytest.raises(TypeError, match="args_hash"):
        _decision()


def test_replace_keeps_the_hash_and_changes_only_what_is_given() -> None:
    """replace() is how a blocked copy of a decision gets its longer reason."""
    d = _decision(args={"src": "a"}, reason="r", mode=Mode.SHADOW)
    e = d.replace(reason="r; refused")
    assert (e.reason, e.args_hash, e.mode, e.action) == (
        "r; refused",
        d.args_hash,
        Mode.SHADOW,
        Action.DENY,
    )
    assert d.reason == "r"
    assert e != d


def test_to_dict_is_plain_json() -> None:
    """The audit form has every field, enums as their values, nested values as objects."""
    eff = Effect(kind=EffectKind.COPY, target=Location(raw="a", path="/w/a"), via="copy_file")
    alert = Alert(severity=Severity.CRITICAL, rule="r", message="m", call_id="c1")
    out = _decision(args={"src": "a"}, effects=[eff], alerts=[alert], rules=["r"]).to_dict()
    assert out["action"] == "deny"
    assert out["effects"][0]["kind"] == "copy"
    assert out["effects"][0]["target"] == {
        "raw": "a",
        "path": "/w/a",
        "host": None,
        "visible": True,
    }
    assert out["alerts"][0]["severity"] == "critical"
    assert out["args_hash"] == args_hash("copy_file", {"src": "a"})


def test_values_compare_and_hash_by_content() -> None:
    """Locations and effects are values: equal content is equal, and usable as keys."""
    a = Location(raw="x", path="/x")
    b = Location(raw="x", path="/x")
    assert a == b
    assert len({a, b}) == 1
    assert Effect(kind=EffectKind.READ, target=a) == Effect(kind=EffectKind.READ, target=b)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"agent": 1, "tool": "t"}, TypeError),
        ({"agent": "a", "tool": None}, TypeError),
        ({"agent": "", "tool": "t"}, ValueError),
        ({"agent": "a", "tool": "t", "args": ["path"]}, TypeError),
        ({"agent": "a", "tool": "t", "args": {1: "x"}}, TypeError),
        ({"agent": "a", "tool": "t", "cwd": 3}, TypeError),
    ],
)
def test_tool_call_rejects_malformed_fields(fields: dict[str, object], error: type) -> None:
    """A call with a field of the wrong type or an empty agent is refused at construction."""
    with pytest.raises(error):
        ToolCall(**fields)  # type: ignore[arg-type]


def test_tool_call_keeps_its_own_copy_of_the_arguments() -> None:
    """Editing the caller's dict after building the call changes neither call nor hash."""
    args = {"path": "a"}
    call = ToolCall(agent="a", tool="read_file", args=args)
    before = call.args_hash
    args["path"] = "b"
    assert call.args == {"path": "a"}
    assert call.args_hash == before
    assert ToolCall(agent="a", tool="t").call_id != ToolCall(agent="a", tool="t").call_id


def test_reason_given_as_explain_is_worked_out_once_when_read() -> None:
    """A lazily explained decision says the same as an eager one, and explains only once."""
    calls: list[int] = []

    def explain() -> str:
        calls.append(1)
        return "no rule matched: read x"

    lazy = _decision(args={}, explain=explain)
    assert calls == []
    assert lazy.reason == "no rule matched: read x"
    assert lazy.reason == "no rule matched: read x"
    assert calls == [1]
    assert lazy == _decision(args={}, reason="no rule matched: read x")
    assert lazy.to_dict()["reason"] == "no rule matched: read x"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    tool=st.text(max_size=10),
    args=st.dictionaries(st.text(max_size=8), st.text(max_size=12) | JSON_VALUES, max_size=5),
)
def test_args_hash_is_the_hash_of_canonical_json(tool: str, args: dict[str, object]) -> None:
    """Whatever the arguments, the hash is SHA-256 of the documented canonical JSON."""
    canonical = json.dumps(
        {"tool": tool, "args": args}, sort_keys=True, separators=(",", ":"), default=str
    )
    assert args_hash(tool, args) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_decision_pickles_and_copies_with_its_hash_and_reason(world: World) -> None:
    """A guard's lazily explained decision crosses a process boundary as its worked-out values."""
    d = world.guard().check(
        ToolCall(agent="agent-1", tool="read_file", args={"path": "scratch/notes.txt"})
    )
    back = pickle.loads(pickle.dumps(d))  # noqa: S301  # our own bytes, made one line up
    assert back == d
    assert (back.reason, back.args_hash) == (d.reason, d.args_hash)
    assert copy.deepcopy(d) == d


def test_enum_fields_given_as_strings_become_members() -> None:
    """A decision built with "deny" blocks like one built with Action.DENY."""
    d = Decision(action="deny", agent="a", tool="t", call_id="c", args={}, mode="enforce")  # type: ignore[arg-type]
    assert d.action is Action.DENY
    assert d.blocks
    with pytest.raises(ValueError, match="nope"):
        Decision(action="nope", agent="a", tool="t", call_id="c", args={})  # type: ignore[arg-type]
