"""The helpers users test their own setups with: guard.testing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from guard.approval import ApprovalRequest
from guard.formats import WeightFormat, sniff
from guard.integrations.langchain import ScriptedChatModel
from guard.testing import MemorySink, ScriptedApprover, write_safetensors
from guard.types import Alert, Severity


def request(h: str = "h") -> ApprovalRequest:
    return ApprovalRequest(
        agent="a", tool="t", args={}, call_id="c", args_hash=h, rules=[], reason=""
    )


def test_scripted_approver_answers_in_order_then_refuses() -> None:
    """Answers follow the script, bound to each request's hash; past it, everything is refused."""
    approver = ScriptedApprover([True, False])
    assert approver.ask(request("1")).approved
    assert not approver.ask(request("2")).approved
    answer = asyncio.run(approver.aask(request("3")))
    assert (answer.approved, answer.args_hash) == (False, "3")
    assert [r.args_hash for r in approver.requests] == ["1", "2", "3"]


def test_memory_sink_filters_by_rule() -> None:
    """alerts_for returns the alerts of one rule; clear forgets everything."""
    sink = MemorySink()
    sink.on_alert(Alert(severity=Severity.WARNING, rule="a", message="m"))
    sink.on_alert(Alert(severity=Severity.CRITICAL, rule="b", message="m"))
    assert [a.rule for a in sink.alerts_for("b")] == ["b"]
    sink.clear()
    assert sink.alerts == []


def test_scripted_chat_model_restarts_after_each_instruction() -> None:
    """Turn n answers the n-th call since the last human message; past the script, ``final``."""
    model = ScriptedChatModel(
        turns=[AIMessage(content="one"), AIMessage(content="two")], final="end"
    )
    convo: list[HumanMessage | AIMessage] = [HumanMessage(content="go")]
    assert model.invoke(convo).content == "one"
    convo.append(AIMessage(content="one"))
    assert model.invoke(convo).content == "two"
    convo += [AIMessage(content="two")]
    assert model.invoke(convo).content == "end"
    convo.append(HumanMessage(content="again"))
    assert model.invoke(convo).content == "one"
    assert model.bind_tools([]) is model


@pytest.mark.parametrize("size", [200, 4096, 65536])
def test_write_safetensors_is_valid_and_exact(tmp_path: Path, size: int) -> None:
    """write_safetensors makes a file of exactly the size asked that sniffs as safetensors."""
    path = write_safetensors(tmp_path / "a/b/w.bin", size)
    assert path.stat().st_size == size
    assert sniff(path) is WeightFormat.SAFETENSORS
