"""The ``guarded`` decorator and ``guard_tool``, on real files in a temporary world."""

from __future__ import annotations

import asyncio
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, ToolException, tool
from pydantic import BaseModel

from guard.approval import ApprovalRequest, CallbackApprover
from guard.decorator import (
    acting_as,
    current_agent_id,
    guarded,
)
from guard.engine import UNIDENTIFIED_AGENT_RULE, Guard
from guard.exceptions import CallBlocked
from guard.integrations.langchain import guard_tool
from guard.testing import MemorySink
from guard.types import Action, args_hash
from tests.conftest import AGENT, PEER, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"


def sink_of(guard: Guard) -> MemorySink:
    (sink,) = guard.sinks.sinks
    return sink  # type: ignore[return-value]  # world.guard() records with a MemorySink


# ---------------------------------------------------------------- guarded


def test_allowed_call_runs_and_is_recorded(world: World) -> None:
    """An allowed call runs; the guard saw the bound arguments, defaults included."""
    guard = world.guard()

    @guarded(guard, agent=AGENT)
    def read_file(path: str, encoding: str = "utf-8") -> str:
        return (world.root / path).read_text(encoding=encoding)

    assert read_file("scratch/notes.txt") == "mine\n"
    (decision,) = sink_of(guard).decisions
    assert decision.action is Action.ALLOW
    assert (decision.agent, decision.tool) == (AGENT, "read_file")


def test_denied_call_raises_and_does_not_run(world: World) -> None:
    """Copying a peer's weights to another host raises CallBlocked; the body never runs."""
    guard = world.guard()
    ran: list[str] = []

    @guarded(guard, agent=AGENT)
    def copy_file(src: str, dst: str) -> None:
        ran.append(src)

    with pytest.raises(CallBlocked) as info:
        copy_file(W, "hosts/backup-02/data/")
    assert info.value.decision.action is Action.DENY
    assert "peer-weights-exfiltration" in info.value.decision.rules
    assert ran == []
    assert not (world.root / "hosts/backup-02/data/agent_2_weights.safetensors").exists()


def test_confirmation_goes_to_the_guards_approver(world: World) -> None:
    """A confirm asks the guard's approver, which sees the exact call; approved, it runs."""
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request)
        return True

    guard = world.guard(approver=CallbackApprover(approve))

    @guarded(guard, agent=AGENT)
    def delete_file(path: str) -> None:
        (world.root / path).unlink()

    delete_file(path=W)
    assert not (world.root / W).exists()
    assert [r.args for r in asked] == [{"path": W}]


def test_refused_confirmation_raises(world: World) -> None:
    """With no approver, a confirmation is refused and the file stays."""
    guard = world.guard()

    @guarded(guard, agent=AGENT)
    def delete_file(path: str) -> None:
        (world.root / path).unlink()

    with pytest.raises(CallBlocked, match="confirmation refused"):
        delete_file(W)
    assert (world.root / W).exists()


def test_async_function_stays_async(world: World) -> None:
    """A coroutine function stays one; it is decided before it is awaited."""
    guard = world.guard(approver=CallbackApprover(lambda _r: False))
    ran: list[str] = []

    @guarded(guard, agent=AGENT)
    async def delete_file(path: str) -> str:
        ran.append(path)
        (world.root / path).unlink()
        return "gone"

    assert inspect.iscoroutinefunction(delete_file)
    with pytest.raises(CallBlocked):
        asyncio.run(delete_file(W))
    assert ran == []
    assert asyncio.run(delete_file("scratch/notes.txt")) == "gone"


def test_async_approver_is_awaited(world: World) -> None:
    """An async approval callback works with an async guarded function."""

    async def approve(request: ApprovalRequest) -> bool:
        return bool(request.args["path"] == W)

    guard = world.guard(approver=CallbackApprover(approve))

    @guarded(guard, agent=AGENT)
    async def delete_file(path: str) -> None:
        (world.root / path).unlink()

    asyncio.run(delete_file(W))
    assert not (world.root / W).exists()


def test_wrapper_keeps_name_doc_signature_and_hints(world: World) -> None:
    """The decorated function looks like the original to people and to LangChain."""
    guard = world.guard()

    def read_file(path: str, limit: int = 10) -> str:
        """Read the first bytes of a file."""
        return path[:limit]

    wrapped = guarded(guard, agent=AGENT)(read_file)
    assert wrapped.__name__ == "read_file"
    assert wrapped.__doc__ == "Read the first bytes of a file."
    assert inspect.signature(wrapped) == inspect.signature(read_file)
    assert typing.get_type_hints(wrapped) == typing.get_type_hints(read_file)
    assert wrapped.__wrapped__ is read_file  # type: ignore[attr-defined]  # set by functools.wraps
    schema = StructuredTool.from_function(wrapped).tool_call_schema
    assert isinstance(schema, type) and issubclass(schema, BaseModel)
    assert list(schema.model_fields) == ["path", "limit"]


def test_tool_name_and_argument_shapes(world: World) -> None:
    """``tool=`` names the call; ``**kwargs`` merge in, ``*args`` become a list, self is dropped."""
    guard = world.guard()

    class Files:
        @guarded(guard, agent=AGENT, tool="read_file")
        def peek(self, path: str, *more: str, **options: Any) -> str:
            return path

    assert Files().peek("scratch/notes.txt", "a", "b", mode="r") == "scratch/notes.txt"
    (decision,) = sink_of(guard).decisions
    assert decision.tool == "read_file"
    call_args = {"path": "scratch/notes.txt", "more": ["a", "b"], "mode": "r"}
    assert decision.args_hash == args_hash("read_file", call_args)


def test_agent_from_acting_as_and_from_a_callable(world: World) -> None:
    """By default the agent is the one acting_as set; a callable is asked at each call."""
    guard = world.guard()

    @guarded(guard)
    def read_file(path: str) -> str:
        return path

    who = [PEER]

    @guarded(guard, agent=lambda: who[0], tool="read_file")
    def read_again(path: str) -> str:
        return path

    with acting_as(AGENT):
        assert current_agent_id() == AGENT
        with acting_as(PEER):
            read_file("scratch/notes.txt")
        read_file("scratch/notes.txt")
    assert current_agent_id() is None
    read_again("scratch/notes.txt")
    assert [d.agent for d in sink_of(guard).decisions] == [PEER, AGENT, PEER]


def test_acting_as_is_per_task(world: World) -> None:
    """Concurrent asyncio tasks each keep their own acting agent."""
    guard = world.guard()

    @guarded(guard)
    async def read_file(path: str) -> str | None:
        await asyncio.sleep(0)
        return current_agent_id()

    async def as_agent(agent: str) -> str | None:
        with acting_as(agent):
            return await read_file("scratch/notes.txt")

    async def main() -> list[str | None]:
        return list(await asyncio.gather(as_agent(AGENT), as_agent(PEER)))

    assert asyncio.run(main()) == [AGENT, PEER]


def test_no_agent_is_denied(world: World) -> None:
    """Outside acting_as and with no agent given, even a harmless call is denied."""
    guard = world.guard()

    @guarded(guard)
    def read_file(path: str) -> str:
        return path

    with pytest.raises(CallBlocked, match="could not tell which agent") as info:
        read_file("scratch/notes.txt")
    assert info.value.decision.rules == [UNIDENTIFIED_AGENT_RULE]
    assert sink_of(guard).alerts[0].enforcement_gap
    with pytest.raises(ValueError, match="non-empty"), acting_as(""):
        pass


# ---------------------------------------------------------------- guard_tool


def tools_over(root: Path) -> tuple[BaseTool, BaseTool]:
    """A sync ``delete_file`` and an async ``read_file`` tool over the world."""

    @tool
    def delete_file(path: str) -> str:
        """Delete a file from the sandbox."""
        (root / path).unlink()
        return f"deleted {path}"

    @tool
    async def read_file(path: str) -> str:
        """Read a text file from the sandbox."""
        return (root / path).read_text()

    return delete_file, read_file


def test_guarded_tool_looks_the_same_to_the_model(world: World) -> None:
    """Name, description and schemas are the original's; the original is not changed."""
    delete_file, _ = tools_over(world.root)
    guarded_tool = guard_tool(delete_file, world.guard(), agent=AGENT)
    assert isinstance(guarded_tool, StructuredTool)
    assert guarded_tool is not delete_file
    assert guarded_tool.name == delete_file.name
    assert guarded_tool.description == delete_file.description
    assert guarded_tool.args_schema is delete_file.args_schema
    assert guarded_tool.tool_call_schema.model_json_schema() == (  # type: ignore[union-attr]  # a pydantic schema here
        delete_file.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    )
    assert type(delete_file) is StructuredTool
    assert delete_file.handle_tool_error is False


def test_blocked_tool_call_is_an_error_the_agent_reads(world: World) -> None:
    """A refused call returns the reason: an error ToolMessage for a tool call."""
    delete_file, _ = tools_over(world.root)
    guarded_tool = guard_tool(delete_file, world.guard(), agent=AGENT)
    message = guarded_tool.invoke(
        {"name": "delete_file", "args": {"path": W}, "id": "c1", "type": "tool_call"}
    )
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.tool_call_id == "c1"
    assert "peer-asset-change" in str(message.content)
    assert "peer-asset-change" in guarded_tool.invoke({"path": W})
    assert (world.root / W).exists()


def test_allowed_tool_call_runs(world: World) -> None:
    """An allowed call reaches the original tool."""
    guard = world.guard(approver=CallbackApprover(lambda _r: True))
    delete_file, read_file = tools_over(world.root)
    assert guard_tool(delete_file, guard, agent=AGENT).invoke({"path": W}) == f"deleted {W}"
    assert not (world.root / W).exists()
    reader = guard_tool(read_file, guard, agent=AGENT)
    assert asyncio.run(reader.ainvoke({"path": "scratch/notes.txt"})) == "mine\n"


def test_sync_tool_called_async_is_decided_once(world: World) -> None:
    """A sync-only tool run through ainvoke (in a thread) is decided once, not twice."""
    guard = world.guard()
    delete_file, _ = tools_over(world.root)
    guarded_tool = guard_tool(delete_file, guard, agent=AGENT)
    out = asyncio.run(guarded_tool.ainvoke({"path": "scratch/notes.txt"}))
    assert out == "deleted scratch/notes.txt"
    assert len(sink_of(guard).decisions) == 1


def test_async_tool_blocked(world: World) -> None:
    """The async path blocks too, before the coroutine runs."""
    ran: list[str] = []

    @tool
    async def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return "deleted"

    guarded_tool = guard_tool(delete_file, world.guard(), agent=AGENT)
    message = asyncio.run(
        guarded_tool.ainvoke(
            {"name": "delete_file", "args": {"path": W}, "id": "c1", "type": "tool_call"}
        )
    )
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert ran == []


def test_tool_agent_from_config_or_acting_as(world: World) -> None:
    """With no agent given, the run config's peerguard_agent, then acting_as, name it."""
    guard = world.guard()
    _, read_file = tools_over(world.root)
    reader = guard_tool(read_file, guard)
    config = {"configurable": {"peerguard_agent": PEER}}
    asyncio.run(reader.ainvoke({"path": "scratch/notes.txt"}, config))  # type: ignore[arg-type]
    with acting_as(AGENT):
        asyncio.run(reader.ainvoke({"path": "scratch/notes.txt"}))
    out = asyncio.run(reader.ainvoke({"path": "scratch/notes.txt"}))
    assert "could not tell which agent" in out
    assert [d.agent for d in sink_of(guard).decisions] == [PEER, AGENT, ""]


def test_custom_base_tool_and_injected_args(world: World) -> None:
    """A BaseTool subclass is guarded too; injected arguments are not shown to the guard."""
    guard = world.guard()
    seen: list[str] = []

    class ReadFile(BaseTool):
        name: str = "read_file"
        description: str = "Read a file."

        def _run(self, path: str, token: Annotated[str, InjectedToolArg]) -> str:
            seen.append(token)
            return (world.root / path).read_text()

    reader = guard_tool(ReadFile(), guard, agent=AGENT)
    assert isinstance(reader, ReadFile)
    assert reader.invoke({"path": "scratch/notes.txt", "token": "t0k"}) == "mine\n"
    assert asyncio.run(reader.ainvoke({"path": "scratch/notes.txt", "token": "t1"})) == "mine\n"
    assert seen == ["t0k", "t1"]
    expected = args_hash("read_file", {"path": "scratch/notes.txt"})
    assert [d.args_hash for d in sink_of(guard).decisions] == [expected, expected]


def test_tools_own_errors_are_handled_as_before(world: World) -> None:
    """A ToolException of the tool itself propagates or is handled as the original says."""

    def fail(path: str) -> str:
        raise ToolException(f"cannot read {path}")

    strict = StructuredTool.from_function(fail, name="read_file", description="Read.")
    lenient = StructuredTool.from_function(
        fail, name="read_file", description="Read.", handle_tool_error="read failed"
    )
    guard = world.guard()
    with pytest.raises(ToolException, match="cannot read"):
        guard_tool(strict, guard, agent=AGENT).invoke({"path": "x"})
    assert guard_tool(lenient, guard, agent=AGENT).invoke({"path": "x"}) == "read failed"


def test_guard_tool_rejects_non_tools(world: World) -> None:
    """Only LangChain tools can be guarded this way; plain functions use @guarded."""
    with pytest.raises(TypeError, match="BaseTool"):
        guard_tool(len, world.guard())  # type: ignore[type-var]  # the point of the test
