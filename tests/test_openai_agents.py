"""peerguard inside the OpenAI Agents SDK: guarded function tools, approvals, screening.

Agents run on the SDK's own ``Runner`` (``run_sync`` and ``run``) with its scripted ``Model``
(``agents.testing.ScriptedModel``), which plays predetermined tool calls and then a final
message, offline. The tools are real: they act on files in a temporary world and append a
line to a log on disk each time they execute, so what ran is counted on disk.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    RunConfig,
    Runner,
    RunState,
    ToolApprovalItem,
    ToolExecutionConfig,
    WebSearchTool,
    function_tool,
    tool_namespace,
)
from agents.result import RunResult
from agents.testing import ScriptedModel, assistant_message, function_call

from guard.decorator import acting_as
from guard.engine import REFUSED_RULE, UNIDENTIFIED_AGENT_RULE, WITHHELD_RULE
from guard.exceptions import GuardError, IntegrationUnavailable
from guard.integrations.openai_agents import (
    GUARDRAIL_NAME,
    PeerGuardTools,
    approve,
    confirmation_request,
    guard_tools,
    reject,
)
from guard.testing import MemorySink
from guard.types import Action, Mode
from tests.conftest import AGENT, PEER, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"
BACKUP = "hosts/backup-02/data/agent_2_weights.safetensors"
BIG = "hosts/decom-01/data/agent_2_big.safetensors"  # the peer's, by its declared glob
NOTES = "scratch/notes.txt"
RUN = RunConfig(tracing_disabled=True)


def random_safetensors(size: int) -> bytes:
    """A safetensors file of ``size`` bytes whose tensor bytes are random, as trained weights
    look to the content index."""
    n = size - 256
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (256 - 8 - len(header))
    return len(header).to_bytes(8, "little") + header + os.urandom(n)


def make_tools(root: Path, log: Path) -> list[FunctionTool]:
    """Real tools over the world at ``root``; each execution appends a line to ``log``."""

    def ran(line: str) -> None:
        with log.open("a") as out:
            out.write(line + "\n")

    @function_tool
    def read_file(path: str) -> str:
        """Read a file (base64 when it is not text)."""
        ran(f"read_file {path}")
        data = (root / path).read_bytes()
        try:
            return data.decode()
        except UnicodeDecodeError:
            return base64.b64encode(data).decode()

    @function_tool
    def copy_file(src: str, dst: str) -> str:
        """Copy a file."""
        ran(f"copy_file {src} {dst}")
        (root / dst).write_bytes((root / src).read_bytes())
        return f"copied {src} to {dst}"

    @function_tool
    async def delete_file(path: str) -> str:
        """Delete a file."""
        ran(f"delete_file {path}")
        (root / path).unlink()
        return f"deleted {path}"

    return [read_file, copy_file, delete_file]


def turn(*calls: tuple[str, str, dict[str, Any]]) -> list[Any]:
    """One model turn making these ``(tool, call id, arguments)`` calls."""
    return [function_call(name, args, call_id=call_id) for name, call_id, args in calls]


def script(*turns: list[Any]) -> ScriptedModel:
    """A model that plays ``turns`` and then says done."""
    return ScriptedModel([*turns, [assistant_message("done")]])


@dataclass
class Harness:
    """One world, guard and tool set; runs an SDK agent over them, sync or async."""

    world: World
    asynchronous: bool
    sink: MemorySink = field(default_factory=MemorySink)
    guard_mode: Mode | None = None

    def __post_init__(self) -> None:
        self.guard = self.world.guard(sinks=[self.sink], mode=self.guard_mode)
        self.log = self.world.root.parent / "executions.log"
        self.tools = make_tools(self.world.root, self.log)
        self.model: ScriptedModel | None = None
        self.agent: Agent[Any] | None = None
        self.run_config = RUN

    def start(
        self,
        model: ScriptedModel,
        *,
        agent: str | None = AGENT,
        context: Any = None,
        tools: Sequence[FunctionTool] | None = None,
    ) -> RunResult:
        self.model = model
        guarded = guard_tools(self.guard, tools if tools is not None else self.tools, agent=agent)
        self.agent = Agent(
            name="ops", instructions="Decommission decom-01.", tools=guarded, model=model
        )
        return self.run("decommission decom-01", context=context)

    def run(self, value: str | RunState[Any, Any], context: Any = None) -> RunResult:
        assert self.agent is not None
        if self.asynchronous:
            return asyncio.run(
                Runner.run(self.agent, value, context=context, run_config=self.run_config)
            )
        # run_sync drives the thread's default loop and leaves it open on purpose; the test
        # gives it one and closes it afterwards.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return Runner.run_sync(self.agent, value, context=context, run_config=self.run_config)
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    def executions(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def decisions(self, call_id: str) -> list[Action]:
        return [d.action for d in self.sink.decisions if d.call_id == call_id]

    def seen_by_model(self) -> dict[str, str]:
        """Each call id's output as the model was last given it."""
        assert self.model is not None and self.model.last_call is not None
        items = self.model.last_call.input
        assert isinstance(items, list)
        return {
            str(i["call_id"]): str(i["output"])
            for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        }


@pytest.fixture(params=[False, True], ids=["run_sync", "run"])
def harness(request: pytest.FixtureRequest, world: World) -> Harness:
    """A harness for Runner.run_sync and for Runner.run."""
    return Harness(world, asynchronous=request.param)


def only(items: Sequence[ToolApprovalItem]) -> ToolApprovalItem:
    """The one interruption."""
    assert len(items) == 1, items
    return items[0]


# ---------------------------------------------------------------- decisions


def test_copy_of_peer_weights_is_denied_and_the_model_reads_why(
    harness: Harness, world: World
) -> None:
    """Copying a peer's weights to another host never runs; the model is given the reason."""
    result = harness.start(script(turn(("copy_file", "c1", {"src": W, "dst": BACKUP}))))
    assert result.final_output == "done"
    assert not result.interruptions
    assert not (world.root / BACKUP).exists()
    assert harness.executions() == []
    seen = harness.seen_by_model()["c1"]
    assert "peer-weights-exfiltration" in seen and "peerguard blocked copy_file" in seen
    assert harness.decisions("c1") == [Action.DENY]
    (guardrail,) = result.tool_input_guardrail_results
    assert guardrail.guardrail.get_name() == GUARDRAIL_NAME
    assert guardrail.output.behavior["type"] == "reject_content"


def test_allowed_read_runs_and_its_result_reaches_the_model(harness: Harness) -> None:
    """A call no rule stops runs once, and the model gets its output."""
    result = harness.start(script(turn(("read_file", "c1", {"path": NOTES}))))
    assert result.final_output == "done"
    assert harness.executions() == [f"read_file {NOTES}"]
    assert harness.seen_by_model() == {"c1": "mine\n"}
    assert harness.decisions("c1") == [Action.ALLOW]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["run_sync", "run"])
def test_result_carrying_peer_weights_is_withheld(world: World, asynchronous: bool) -> None:
    """An allowed read whose result holds a peer's weights (base64) reaches the model only as
    a notice."""
    world.write(BIG, random_safetensors(256 * 1024))
    harness = Harness(world, asynchronous)  # its guard finds the weights just written
    harness.start(script(turn(("read_file", "c1", {"path": BIG}))))
    assert harness.executions() == [f"read_file {BIG}"]
    seen = harness.seen_by_model()["c1"]
    assert "withheld" in seen
    assert base64.b64encode((world.root / BIG).read_bytes()).decode()[:64] not in seen
    assert harness.sink.alerts_for(WITHHELD_RULE)


def test_unknown_agent_is_denied(harness: Harness) -> None:
    """With no agent named anywhere, even a read that would be allowed is denied and recorded
    once as an enforcement gap."""
    result = harness.start(script(turn(("read_file", "c1", {"path": NOTES}))), agent=None)
    assert not result.interruptions
    assert harness.executions() == []
    assert "could not tell which agent" in harness.seen_by_model()["c1"]
    (decision,) = harness.sink.decisions
    assert decision.rules == [UNIDENTIFIED_AGENT_RULE]
    assert harness.sink.alerts[0].enforcement_gap


def test_agent_comes_from_the_run_context(world: World) -> None:
    """With no fixed agent, the run context's agent_id names it: the peer deleting its own
    weights needs no confirmation."""
    h = Harness(world, asynchronous=False)
    result = h.start(
        script(turn(("delete_file", "c1", {"path": W}))), agent=None, context={"agent_id": PEER}
    )
    assert not result.interruptions
    assert not (world.root / W).exists()
    assert [(d.agent, d.action) for d in h.sink.decisions] == [(PEER, Action.ALLOW)]


def test_agent_comes_from_acting_as(world: World) -> None:
    """With no fixed agent and no context, the id acting_as() set names the agent."""
    h = Harness(world, asynchronous=True)
    with acting_as(AGENT):
        result = h.start(script(turn(("delete_file", "c1", {"path": W}))), agent=None)
    assert len(result.interruptions) == 1
    assert [(d.agent, d.action) for d in h.sink.decisions] == [(AGENT, Action.CONFIRM)]


# ---------------------------------------------------------------- confirmations


def test_confirm_stops_the_run_with_an_interruption(harness: Harness, world: World) -> None:
    """Deleting a peer's weights stops the run with one interruption carrying the exact call."""
    result = harness.start(script(turn(("delete_file", "c1", {"path": W}))))
    item = only(result.interruptions)
    assert item.tool_name == "delete_file"
    assert (world.root / W).exists()
    assert harness.executions() == []
    assert harness.decisions("c1") == [Action.CONFIRM]
    request = confirmation_request(item)
    assert request is not None
    assert (request.tool, request.args, request.call_id) == ("delete_file", {"path": W}, "c1")
    assert request.rules == ["peer-asset-change"]
    assert request.assets[0].owner == PEER
    assert request.args_hash == harness.sink.decisions[0].args_hash


def test_approved_call_runs_exactly_once(harness: Harness, world: World) -> None:
    """Approved, the call runs once with the approved arguments, even when the model repeats
    it; the confirm and the approval are each recorded once."""
    model = script(
        turn(("delete_file", "c1", {"path": W})),
        turn(("delete_file", "c1", {"path": W})),  # a replay of the same call
    )
    result = harness.start(model)
    state = result.to_state()
    approve(state, only(result.interruptions), reason="decommissioning")
    result = harness.run(state)
    assert result.final_output == "done"
    assert not (world.root / W).exists()
    assert harness.executions() == [f"delete_file {W}"]
    assert harness.decisions("c1") == [Action.CONFIRM]
    assert [(d.call_id, ok, why) for d, ok, why in harness.sink.approvals] == [
        ("c1", True, "decommissioning")
    ]


def test_rejected_call_never_runs(harness: Harness, world: World) -> None:
    """Rejected, the call never runs; the refusal is recorded and the model reads it."""
    result = harness.start(script(turn(("delete_file", "c1", {"path": W}))))
    state = result.to_state()
    reject(state, only(result.interruptions), reason="keep it for the audit")
    result = harness.run(state)
    assert result.final_output == "done"
    assert (world.root / W).exists()
    assert harness.executions() == []
    assert "confirmation refused: keep it for the audit" in harness.seen_by_model()["c1"]
    assert harness.decisions("c1") == [Action.CONFIRM]
    assert [(d.call_id, ok) for d, ok, _ in harness.sink.approvals] == [("c1", False)]
    assert harness.sink.alerts_for(REFUSED_RULE)


def test_approving_one_call_does_not_approve_its_twin(harness: Harness, world: World) -> None:
    """Two calls with the same arguments and different call ids: approving one runs only it;
    the other stays waiting, and rejected it never runs."""
    args = {"path": W}
    result = harness.start(script(turn(("delete_file", "c1", args), ("delete_file", "c2", args))))
    by_id = {confirmation_request(i).call_id: i for i in result.interruptions}  # type: ignore[union-attr]
    assert sorted(by_id) == ["c1", "c2"]
    state = result.to_state()
    approve(state, by_id["c1"])
    result = harness.run(state)
    assert [confirmation_request(i).call_id for i in result.interruptions] == ["c2"]  # type: ignore[union-attr]
    assert harness.executions() == [f"delete_file {W}"]
    state = result.to_state()
    reject(state, only(result.interruptions))
    result = harness.run(state)
    assert result.final_output == "done"
    assert harness.executions() == [f"delete_file {W}"]
    assert harness.decisions("c1") == harness.decisions("c2") == [Action.CONFIRM]
    assert [(d.call_id, ok) for d, ok, _ in harness.sink.approvals] == [
        ("c1", True),
        ("c2", False),
    ]


def test_always_approve_does_not_stand_for_a_confirmation(world: World) -> None:
    """A standing always_approve of the tool is not an approval of the call the guard asked
    about: it does not run, and the model is told to get the call itself approved."""
    h = Harness(world, asynchronous=False)
    result = h.start(script(turn(("delete_file", "c1", {"path": W}))))
    state = result.to_state()
    state.approve(only(result.interruptions), always_approve=True)
    h.run(state)
    assert (world.root / W).exists()
    assert h.executions() == []
    assert "always_approve" in h.seen_by_model()["c1"]
    assert [(d.call_id, ok) for d, ok, _ in h.sink.approvals] == [("c1", False)]


def test_resumed_from_json_by_a_new_guard_runs_once(world: World) -> None:
    """A paused run serialized to JSON and resumed by a fresh guard and tool set (as another
    process would) runs the approved call once, and the new guard records it."""
    first = Harness(world, asynchronous=True)
    result = first.start(
        script(turn(("delete_file", "c1", {"path": W}))), agent=None, context={"agent_id": AGENT}
    )
    saved = result.to_state().to_json()
    assert first.model is not None
    second = Harness(world, asynchronous=True)
    second.model = first.model
    second.agent = Agent(
        name="ops", tools=guard_tools(second.guard, second.tools), model=first.model
    )
    state = asyncio.run(RunState.from_json(second.agent, saved))
    approve(state, only(state.get_interruptions()))
    result = second.run(state)
    assert result.final_output == "done"
    assert not (world.root / W).exists()
    assert second.executions() == [f"delete_file {W}"]
    assert second.decisions("c1") == [Action.CONFIRM]
    assert [(d.agent, ok) for d, ok, _ in second.sink.approvals] == [(AGENT, True)]


def test_approval_of_a_tool_in_a_namespace(world: World) -> None:
    """A guarded tool grouped with tool_namespace() is approved under its namespaced name:
    the approved call runs once and the approval is recorded."""
    h = Harness(world, asynchronous=True)
    h.tools = tool_namespace(name="files", description="File tools.", tools=h.tools)
    model = script([function_call("delete_file", {"path": W}, call_id="c1", namespace="files")])
    result = h.start(model)
    state = result.to_state()
    approve(state, only(result.interruptions))
    h.run(state)
    assert h.executions() == [f"delete_file {W}"]
    assert [(d.call_id, ok) for d, ok, _ in h.sink.approvals] == [("c1", True)]


def test_pre_approval_guardrails_deny_at_once_and_still_ask(world: World) -> None:
    """With input guardrails run before approval, a denied call is refused without asking
    anyone, a confirm still stops the run, and each decision is recorded once."""
    h = Harness(world, asynchronous=False)
    h.run_config = RunConfig(
        tracing_disabled=True,
        tool_execution=ToolExecutionConfig(pre_approval_tool_input_guardrails=True),
    )
    result = h.start(
        script(
            turn(
                ("copy_file", "c1", {"src": W, "dst": BACKUP}),
                ("delete_file", "c2", {"path": W}),
            )
        )
    )
    assert [confirmation_request(i).call_id for i in result.interruptions] == ["c2"]  # type: ignore[union-attr]
    state = result.to_state()
    approve(state, only(result.interruptions))
    h.run(state)
    assert h.executions() == [f"delete_file {W}"]
    assert not (world.root / BACKUP).exists()
    assert h.decisions("c1") == [Action.DENY]
    assert h.decisions("c2") == [Action.CONFIRM]


def test_a_call_the_sdk_stops_by_itself_is_still_decided(world: World) -> None:
    """A call whose arguments the SDK cannot inspect unchanged (a default left out) stops for
    a human without the guard being asked; approved, the guard still denies the copy."""
    h = Harness(world, asynchronous=False)

    @function_tool(strict_mode=False)
    def copy_file(src: str, dst: str, overwrite: bool = False) -> str:
        """Copy a file."""
        (world.root / dst).write_bytes((world.root / src).read_bytes())
        return "copied"

    result = h.start(
        script(turn(("copy_file", "c1", {"src": W, "dst": BACKUP}))), tools=[copy_file]
    )
    item = only(result.interruptions)
    assert confirmation_request(item) is None  # not the guard's question
    state = result.to_state()
    approve(state, item)
    h.run(state)
    assert not (world.root / BACKUP).exists()
    assert "peer-weights-exfiltration" in h.seen_by_model()["c1"]
    assert h.decisions("c1") == [Action.DENY]


def test_shadow_mode_records_the_confirm_and_runs(world: World) -> None:
    """In shadow mode a confirm is recorded, the run does not stop, and the call runs."""
    h = Harness(world, asynchronous=True, guard_mode=Mode.SHADOW)
    result = h.start(script(turn(("delete_file", "c1", {"path": W}))))
    assert not result.interruptions
    assert not (world.root / W).exists()
    assert h.decisions("c1") == [Action.CONFIRM]


# ---------------------------------------------------------------- the wrapped tools


def test_wrapped_tool_keeps_what_the_model_sees_and_its_own_rules(world: World) -> None:
    """A guarded copy keeps name, description and schema, leaves the original alone, and
    keeps the tool's own needs_approval: its stop is not the guard's."""
    h = Harness(world, asynchronous=False)
    read_file = h.tools[0]
    own = FunctionTool(
        name=read_file.name,
        description=read_file.description,
        params_json_schema=read_file.params_json_schema,
        on_invoke_tool=read_file.on_invoke_tool,
        needs_approval=True,
    )
    guarded = PeerGuardTools(h.guard, agent=AGENT).wrap(read_file)
    assert (guarded.name, guarded.description, guarded.params_json_schema) == (
        read_file.name,
        read_file.description,
        read_file.params_json_schema,
    )
    assert read_file.needs_approval is False and not read_file.tool_input_guardrails
    result = h.start(script(turn(("read_file", "c1", {"path": NOTES}))), tools=[own])
    item = only(result.interruptions)
    assert confirmation_request(item) is None
    assert h.executions() == []
    state = result.to_state()
    approve(state, item)
    h.run(state)
    assert h.executions() == [f"read_file {NOTES}"]
    assert h.decisions("c1") == [Action.ALLOW]


def test_only_function_tools_are_guarded(world: World) -> None:
    """A hosted tool, or a tool already guarded, is refused with a TypeError."""
    guarded = PeerGuardTools(world.guard(), agent=AGENT)
    with pytest.raises(TypeError, match="function tools"):
        guarded.wrap(WebSearchTool())
    (tool,) = guarded.wrap_all(make_tools(world.root, world.root / "log")[:1])
    with pytest.raises(TypeError, match="already guarded"):
        guarded.wrap(tool)


def test_import_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the SDK installed, importing the integration raises a GuardError that says
    which extra to install."""
    monkeypatch.setitem(sys.modules, "agents", None)
    monkeypatch.delitem(sys.modules, "guard.integrations.openai_agents")
    with pytest.raises(
        IntegrationUnavailable, match=r"pip install 'peerguard\[openai-agents\]'"
    ) as info:
        importlib.import_module("guard.integrations.openai_agents")
    assert isinstance(info.value, GuardError)
