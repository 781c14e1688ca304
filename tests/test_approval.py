"""Approvers outside LangGraph: console (a real pseudo-terminal), callback, and a timeout that denies."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time

import pytest
from pydantic import ValidationError

from guard.approval import (
    ApprovalRequest,
    ApprovalResponse,
    CallbackApprover,
    ConsoleApprover,
    TimeoutApprover,
    render_request,
)
from guard.exceptions import ApprovalTimeout, CallBlocked
from guard.types import ToolCall
from tests.conftest import AGENT, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"


def delete_call() -> ToolCall:
    return ToolCall(agent=AGENT, tool="delete_file", args={"path": W})


def test_console_on_a_real_terminal_approves_with_y(world: World) -> None:
    """On a pseudo-terminal, typing y approves; the prompt shows the call, assets and hash."""
    master, slave = os.openpty()
    tty_in = os.fdopen(slave, "r", closefd=True)
    shown = io.StringIO()
    os.write(master, b"y\n")
    try:
        guard = world.guard(approver=ConsoleApprover(stdin=tty_in, stdout=shown))
        guard.run(delete_call(), lambda c: (world.root / W).unlink())
    finally:
        tty_in.close()
        os.close(master)
    assert not (world.root / W).exists()
    prompt = shown.getvalue()
    assert delete_call().args_hash in prompt
    assert "agent-2" in prompt and "peer-asset-change" in prompt


@pytest.mark.parametrize("typed", ["n\n", "\n", "", "yes please\n"])
def test_console_refuses_anything_but_yes(world: World, typed: str) -> None:
    """Only y/yes approves: no, empty, end of input and other text refuse."""
    guard = world.guard(
        approver=ConsoleApprover(stdin=io.StringIO(typed), stdout=io.StringIO(), require_tty=False)
    )
    with pytest.raises(CallBlocked, match="refused at the console"):
        guard.run(delete_call(), lambda c: (world.root / W).unlink())
    assert (world.root / W).exists()


def test_console_without_terminal_refuses_without_asking(world: World) -> None:
    """With no terminal to ask on, the console approver refuses."""
    shown = io.StringIO()
    guard = world.guard(approver=ConsoleApprover(stdin=io.StringIO("y\n"), stdout=shown))
    with pytest.raises(CallBlocked, match="no terminal"):
        guard.run(delete_call(), lambda c: None)
    assert shown.getvalue() == ""


def test_timeout_denies(world: World) -> None:
    """An approver that does not answer in time refuses: ApprovalTimeout, the tool never runs."""
    release = threading.Event()

    def slow(req: ApprovalRequest) -> bool:
        release.wait(5)
        return True

    guard = world.guard(approver=TimeoutApprover(CallbackApprover(slow), seconds=0.2))
    started = time.monotonic()
    with pytest.raises(ApprovalTimeout, match="timed out"):
        guard.run(delete_call(), lambda c: (world.root / W).unlink())
    release.set()
    assert time.monotonic() - started < 4
    assert (world.root / W).exists()


def test_timeout_async_denies(world: World) -> None:
    """The async path times out the same way."""

    async def slow(req: ApprovalRequest) -> bool:
        await asyncio.sleep(5)
        return True

    async def tool(call: ToolCall) -> None:
        (world.root / W).unlink()

    guard = world.guard(approver=TimeoutApprover(CallbackApprover(slow), seconds=0.1))
    with pytest.raises(ApprovalTimeout):
        asyncio.run(guard.arun(delete_call(), tool))
    assert (world.root / W).exists()


def test_timeout_passes_a_prompt_answer_through(world: World) -> None:
    """An answer within the time counts."""
    guard = world.guard(approver=TimeoutApprover(CallbackApprover(lambda r: True), seconds=2))
    guard.run(delete_call(), lambda c: (world.root / W).unlink())
    assert not (world.root / W).exists()


def test_timeout_rejects_nonpositive() -> None:
    """A timeout must be positive."""
    with pytest.raises(ValueError, match="positive"):
        TimeoutApprover(CallbackApprover(lambda r: True), seconds=0)


def test_render_request_lists_everything() -> None:
    """The rendered prompt has arguments, effects, rules, reason and hash."""
    req = ApprovalRequest(
        agent="a",
        tool="t",
        args={"x": 1},
        call_id="c",
        args_hash="h" * 64,
        rules=["r"],
        reason="why",
        effects=["delete /x"],
    )
    text = render_request(req)
    for part in ('"x": 1', "delete /x", "rules:     r", "why", "h" * 64):
        assert part in text


def test_response_for_another_call_does_not_approve() -> None:
    """An approval only approves the request whose hash it names."""
    req = ApprovalRequest(
        agent="a", tool="t", args={}, call_id="c", args_hash="abc", rules=[], reason=""
    )
    assert ApprovalResponse(approved=True, args_hash="abc").approves(req)
    assert not ApprovalResponse(approved=True, args_hash="abd").approves(req)


NOT_TRUE = ["no", "yes", 1, [True], {"approved": True}, None, 0.5]


@pytest.mark.parametrize("answer", NOT_TRUE, ids=repr)
def test_callback_answer_other_than_true_refuses(world: World, answer: object) -> None:
    """Only the bool True approves: a truthy string, number or list refuses, and says what it got."""
    guard = world.guard(approver=CallbackApprover(lambda r: answer))  # type: ignore[arg-type, return-value]  # the wrong answers under test
    with pytest.raises(CallBlocked) as info:
        guard.run(delete_call(), lambda c: (world.root / W).unlink())
    assert (world.root / W).exists()
    said = f"the approval callback returned {answer!r} ({type(answer).__name__}), not True: refused"
    assert said in info.value.decision.reason


@pytest.mark.parametrize("answer", NOT_TRUE, ids=repr)
def test_async_callback_answer_other_than_true_refuses(world: World, answer: object) -> None:
    """The async path holds an awaited answer to the same rule: only True approves."""

    async def callback(req: ApprovalRequest) -> object:
        return answer

    async def tool(call: ToolCall) -> None:
        (world.root / W).unlink()

    guard = world.guard(approver=CallbackApprover(callback))  # type: ignore[arg-type]  # the wrong answers under test
    with pytest.raises(CallBlocked, match="not True: refused"):
        asyncio.run(guard.arun(delete_call(), tool))
    assert (world.root / W).exists()


def test_callback_true_or_an_approving_response_approves() -> None:
    """True, or an ApprovalResponse approving this call, approves; False refuses plainly."""
    req = ApprovalRequest(
        agent="a", tool="t", args={}, call_id="c", args_hash="abc", rules=[], reason=""
    )
    assert CallbackApprover(lambda r: True).ask(req).approves(req)
    yes = ApprovalResponse(approved=True, args_hash="abc", approver="ops")
    assert CallbackApprover(lambda r: yes).ask(req) == yes
    no = CallbackApprover(lambda r: False).ask(req)
    assert not no.approved and "refused" in no.reason


@pytest.mark.parametrize("approved", ["yes", "true", "on", 1])
def test_approval_response_takes_only_a_real_bool(world: World, approved: object) -> None:
    """A response whose ``approved`` is not a bool is invalid, so the call is refused."""
    with pytest.raises(ValidationError):
        ApprovalResponse(approved=approved, args_hash="abc")

    def callback(req: ApprovalRequest) -> ApprovalResponse:
        return ApprovalResponse(approved=approved, args_hash=req.args_hash)

    guard = world.guard(approver=CallbackApprover(callback))
    with pytest.raises(CallBlocked):
        guard.run(delete_call(), lambda c: (world.root / W).unlink())
    assert (world.root / W).exists()
    assert ApprovalResponse.model_validate_json('{"approved": true, "args_hash": "abc"}').approved
