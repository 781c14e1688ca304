"""Standard human review: a peerguard confirmation speaks LangChain v1's HITL format.

The interrupt is read with LangChain's own types (``HITLRequest``, ``ToolApprovalRequest``) and
answered with them (``ApproveDecision``, ``EditDecision``, ``RejectDecision``,
``HITLResponse``), with the Agent Inbox's ``HumanResponse``, and with peerguard's own answer.
The tools are real: each appends a line to a log file before it acts, so the log on disk
counts every execution. Each behaviour runs through the ToolNode wrapper (one ``Send`` per
call) and the ``create_agent`` middleware, sync and async.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain.agents.middleware.human_in_the_loop import (
    ApproveDecision,
    EditDecision,
    HITLRequest,
    HITLResponse,
    RejectDecision,
    ToolApprovalRequest,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt.interrupt import HumanResponse
from langgraph.types import Command, Interrupt
from pydantic import Field, TypeAdapter

from guard.engine import Guard
from guard.integrations.langchain import ScriptedChatModel
from guard.integrations.langgraph import (
    CONFIRMATION_TYPE,
    ConfirmationAnswer,
    ConfirmationRequest,
    PeerGuardToolWrapper,
    pending_confirmations,
)
from guard.testing import MemorySink
from guard.types import Action
from tests.conftest import AGENT, PEER, World, safetensors_bytes
from tests.test_contain_langgraph import Agent as ContainedAgent
from tests.test_langgraph import KINDS, Kind, build, edge_graph, make_tools

W = "hosts/decom-01/data/agent_2_weights.safetensors"
OTHER = "hosts/decom-01/data/agent_2_optimizer.safetensors"
RM = {"command": f"rm {W}"}
HARMLESS = {"command": "echo kept > scratch/kept.txt"}
SCP = {"command": f"scp {W} backup-02:data/"}


class Listening(ScriptedChatModel):
    """A scripted model that keeps the messages it was last called with."""

    heard: list[BaseMessage] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.heard = list(messages)
        return super()._generate(messages, *args, **kwargs)


def model_for(*items: tuple[str, str, dict[str, Any]]) -> Listening:
    """A model whose first turn makes these ``(tool, id, args)`` calls, then says done."""
    made = [tool_call(name=name, args=args, id=id_) for name, id_, args in items]
    return Listening(turns=[AIMessage(content="", tool_calls=made)])


def logged_tools(root: Path, log: Path) -> list[BaseTool]:
    """Real tools over ``root``; each appends its line to ``log`` before it acts."""

    def ran(line: str) -> None:
        with log.open("a") as fh:
            fh.write(line + "\n")

    return make_tools(root, ran)


@dataclass
class Review:
    """One agent over the world, asked and answered through one integration."""

    world: World
    kind: Kind
    asynchronous: bool
    log: Path
    sink: MemorySink = field(default_factory=MemorySink)

    def __post_init__(self) -> None:
        self.guard: Guard = self.world.guard(sinks=[self.sink])
        self.config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
        self.graph: Any = None
        self.model: Listening | None = None

    def start(self, *items: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
        self.model = model_for(*items)
        tools = logged_tools(self.world.root, self.log)
        self.graph = build(self.kind, self.model, tools, self.guard, InMemorySaver())
        return self.send({"messages": [("user", "decommission decom-01")]})

    def send(self, value: Any) -> dict[str, Any]:
        if self.asynchronous:
            done: dict[str, Any] = asyncio.run(self.graph.ainvoke(value, self.config))
            return done
        return dict(self.graph.invoke(value, self.config))

    def pending(self, result: dict[str, Any]) -> tuple[Interrupt, ConfirmationRequest]:
        """The one confirmation ``result`` waits on: the raw interrupt and peerguard's view."""
        [raw] = result["__interrupt__"]
        [(iid, request)] = pending_confirmations([raw]).items()
        assert iid == raw.id
        return raw, request

    def replay(self) -> dict[str, Any]:
        """Run the tool step again from its checkpoint (time travel)."""
        history = list(self.graph.get_state_history(self.config))
        before = [h for h in history if "tools" in h.next][-1].config
        if self.asynchronous:
            done: dict[str, Any] = asyncio.run(self.graph.ainvoke(None, before))
            return done
        return dict(self.graph.invoke(None, before))

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def decisions(self, call_id: str) -> list[Action]:
        return [d.action for d in self.sink.decisions if d.call_id == call_id]


def messages(result: dict[str, Any]) -> dict[str, ToolMessage]:
    """The tool messages of ``result``, by call id."""
    return {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}


@pytest.fixture(
    params=[(k, a) for k in KINDS for a in (False, True)],
    ids=lambda p: f"{p[0]}-{'async' if p[1] else 'sync'}",
)
def review(request: pytest.FixtureRequest, world: World, tmp_path: Path) -> Review:
    """A review for each integration (ToolNode wrapper, middleware), sync and async."""
    kind, asynchronous = request.param
    return Review(world, kind, asynchronous, tmp_path / "ran.log")


def edit(args: dict[str, Any], name: str = "shell") -> EditDecision:
    return EditDecision(type="edit", edited_action={"name": name, "args": args})


# ---------------------------------------------------------------- the request


def test_the_interrupt_is_a_standard_review_request(review: Review, world: World) -> None:
    """The interrupt's value validates as LangChain's HITLRequest and ToolApprovalRequest for
    the one call, its description says why in words, and peerguard's fields sit beside it."""
    raw, request = review.pending(review.start(("delete_file", "c1", {"path": W})))
    value = raw.value
    hitl = TypeAdapter(HITLRequest).validate_python(value)
    [action] = hitl["action_requests"]
    assert (action["name"], action["args"]) == ("delete_file", {"path": W})
    description = action.get("description", "")
    for shown in ("peer-asset-change", f"weights of {PEER}", "delete", request.args_hash):
        assert shown in description
    assert hitl["review_configs"] == [
        {"action_name": "delete_file", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    per_call = TypeAdapter(ToolApprovalRequest).validate_python(value)
    assert (per_call["type"], per_call["tool_call_id"]) == ("tool_approval", "c1")
    assert per_call["description"] == description
    ours = value["peerguard"]
    assert ours["type"] == CONFIRMATION_TYPE and ours["agent"] == AGENT
    assert (ours["rules"], ours["call_id"]) == (["peer-asset-change"], "c1")
    assert ours["args_hash"] == request.args_hash and ours["ask_id"] == request.ask_id
    assert ours["assets"][0]["owner"] == PEER and ours["effects"][0].startswith("delete")
    assert review.lines() == [] and (world.root / W).exists()


def test_the_response_schema_takes_the_standard_answers(world: World, tmp_path: Path) -> None:
    """The interrupt's published response schema accepts the standard decisions, a
    HITLResponse of one, and peerguard's answer; not an edit naming another tool."""
    jsonschema = pytest.importorskip("jsonschema")
    review = Review(world, "middleware", False, tmp_path / "ran.log")
    raw, request = review.pending(review.start(("delete_file", "c1", {"path": W})))
    schema = raw.response_schema
    assert isinstance(schema, dict)
    good: list[Any] = [
        ApproveDecision(type="approve"),
        RejectDecision(type="reject", message="not yet"),
        edit({"path": OTHER}, name="delete_file"),
        HITLResponse(decisions=[ApproveDecision(type="approve")]),
        ConfirmationAnswer.to(request, approve=True),
    ]
    for answer in good:
        jsonschema.validate(answer, schema)
    for bad in (edit(SCP), HITLResponse(decisions=[]), {"type": "maybe"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# ---------------------------------------------------------------- approve, reject


ANSWERS: dict[str, Any] = {
    "decision": ApproveDecision(type="approve"),
    "hitl-response": HITLResponse(decisions=[ApproveDecision(type="approve")]),
}


@pytest.mark.parametrize("keyed", [True, False], ids=["by-id", "bare"])
@pytest.mark.parametrize("form", list(ANSWERS))
def test_an_approval_runs_the_call_once(
    review: Review, world: World, form: str, keyed: bool
) -> None:
    """A standard approval, sent by interrupt id or bare, runs the exact call once; running
    the tool step again from its checkpoint does not run it again."""
    raw, _ = review.pending(review.start(("delete_file", "c1", {"path": W})))
    answer = ANSWERS[form]
    result = review.send(Command(resume={raw.id: answer} if keyed else answer))
    assert messages(result)["c1"].status == "success"
    assert review.lines() == [f"delete_file {W}"] and not (world.root / W).exists()
    assert review.decisions("c1") == [Action.CONFIRM]
    assert [a[1] for a in review.sink.approvals] == [True]
    review.replay()
    assert review.lines() == [f"delete_file {W}"]


def test_a_rejection_never_runs_and_the_model_hears_why(review: Review, world: World) -> None:
    """A rejection's message reaches the model in the call's error ToolMessage; the tool
    never runs."""
    raw, _ = review.pending(review.start(("delete_file", "c1", {"path": W})))
    why = "keep agent-2's weights until the audit is signed"
    result = review.send(Command(resume={raw.id: RejectDecision(type="reject", message=why)}))
    message = messages(result)["c1"]
    assert message.status == "error" and why in str(message.content)
    assert review.model is not None
    heard = [m for m in review.model.heard if isinstance(m, ToolMessage)]
    assert [why in str(m.content) for m in heard] == [True]
    assert review.lines() == [] and (world.root / W).exists()
    assert review.sink.approvals[-1][1:] == (False, why)


# ---------------------------------------------------------------- edit


def test_an_edit_to_harmless_arguments_runs_the_edited_call_once(
    review: Review, world: World
) -> None:
    """An edit is a new call: decided on again (allowed), it runs once, under the agent's call
    id, and the agent is told it was edited; the original never runs."""
    raw, _ = review.pending(review.start(("shell", "c1", RM)))
    result = review.send(Command(resume={raw.id: HITLResponse(decisions=[edit(HARMLESS)])}))
    message = messages(result)["c1"]
    assert message.status == "success" and message.tool_call_id == "c1"
    assert "a human edited this call" in str(message.content)
    assert review.lines() == [f"shell {HARMLESS['command']}"]
    assert (world.root / W).exists() and (world.root / "scratch/kept.txt").exists()
    assert review.decisions("c1") == [Action.CONFIRM, Action.ALLOW]
    review.replay()
    assert review.lines() == [f"shell {HARMLESS['command']}"]


def test_an_edit_to_denied_arguments_does_not_run(review: Review, world: World) -> None:
    """An edit the guard denies does not run: the agent gets the denial, nothing is copied."""
    raw, _ = review.pending(review.start(("shell", "c1", RM)))
    result = review.send(Command(resume={raw.id: edit(SCP)}))
    message = messages(result)["c1"]
    assert message.status == "error" and message.tool_call_id == "c1"
    assert "peer-weights-exfiltration" in str(message.content)
    assert "edit" in str(message.content)
    assert review.lines() == [] and (world.root / W).exists()
    assert not (world.root / "hosts/backup-02/data/agent_2_weights.safetensors").exists()
    assert review.decisions("c1") == [Action.CONFIRM, Action.DENY]


def test_an_edit_that_needs_a_human_is_asked_again(review: Review, world: World) -> None:
    """An edit the guard wants confirmed is a new question about the edited call; an answer to
    the first question does not answer it, and approved, the edited call runs once."""
    world.write(OTHER, safetensors_bytes(seed=5))
    raw, first = review.pending(review.start(("delete_file", "c1", {"path": W})))
    moved = edit({"path": OTHER}, name="delete_file")
    again_raw, again = review.pending(review.send(Command(resume={raw.id: moved})))
    assert again_raw.id != raw.id
    assert again_raw.value["action_requests"][0]["args"] == {"path": OTHER}
    assert again.call_id == "c1" and again.args_hash != first.args_hash
    assert again.ask_id != first.ask_id and "edited" in again.note
    old = ConfirmationAnswer.to(first, approve=True)
    still_raw, still = review.pending(review.send(Command(resume={again_raw.id: old})))
    assert "another question" in still.note and review.lines() == []
    result = review.send(Command(resume={still_raw.id: ApproveDecision(type="approve")}))
    assert messages(result)["c1"].status == "success"
    assert review.lines() == [f"delete_file {OTHER}"]
    assert (world.root / W).exists() and not (world.root / OTHER).exists()


@pytest.mark.parametrize("kind", KINDS)
def test_an_edit_may_not_change_the_tool(world: World, tmp_path: Path, kind: Kind) -> None:
    """An edit naming another tool is refused: the question stays open, saying why, and
    nothing runs until an answer it can take."""
    review = Review(world, kind, False, tmp_path / "ran.log")
    raw, _ = review.pending(review.start(("delete_file", "c1", {"path": W})))
    again_raw, again = review.pending(review.send(Command(resume={raw.id: edit(RM)})))
    assert 'may not change the tool (delete_file to "shell")' in again.note
    assert again.note in again_raw.value["description"]
    assert review.lines() == [] and (world.root / W).exists()
    review.send(Command(resume={again_raw.id: ApproveDecision(type="approve")}))
    assert review.lines() == [f"delete_file {W}"]


# ---------------------------------------------------------------- answers it cannot read

UNREADABLE: dict[str, tuple[Any, str]] = {
    "unknown-type": ({"type": "maybe"}, 'decision type "maybe"'),
    "two-decisions": (
        HITLResponse(decisions=[ApproveDecision(type="approve")] * 2),
        "exactly one decision, not 2",
    ),
    "no-decisions": (HITLResponse(decisions=[]), "exactly one decision, not 0"),
    "args-not-an-object": (
        EditDecision(type="edit", edited_action={"name": "delete_file", "args": W}),  # type: ignore[typeddict-item]
        "args must be an object",
    ),
    "respond": ({"type": "respond", "message": "deleted"}, "respond is not offered"),
    "a-word": ("yes", 'the answer "yes" is not a decision'),
    "no-type": ({"approved": True}, "has no decision type"),
    "bad-own-answer": ({"approve": "yes", "args_hash": "h"}, "ConfirmationAnswer is not valid"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_answer_leaves_the_question_open(
    world: World, tmp_path: Path, kind: Kind, case: str
) -> None:
    """An answer that cannot be read fails nothing and approves nothing: the question is asked
    again with a note saying what was wrong, and a readable answer then runs the call."""
    review = Review(world, kind, False, tmp_path / "ran.log")
    raw, _ = review.pending(review.start(("delete_file", "c1", {"path": W})))
    answer, said = UNREADABLE[case]
    again_raw, again = review.pending(review.send(Command(resume={raw.id: answer})))
    assert said in again.note, again.note
    assert again_raw.value["description"].startswith(f"Asked again: {again.note}")
    assert review.lines() == [] and review.sink.decisions == []
    review.send(
        Command(resume={again_raw.id: HITLResponse(decisions=[ApproveDecision(type="approve")])})
    )
    assert review.lines() == [f"delete_file {W}"]


# ---------------------------------------------------------------- other review UIs


@pytest.mark.parametrize("kind", KINDS)
def test_the_agent_inbox_answers_are_read(world: World, tmp_path: Path, kind: Kind) -> None:
    """The Agent Inbox's one-item HumanResponse list: accept approves, an edit is a new call,
    a response rejects with its words."""
    review = Review(world, kind, True, tmp_path / "ran.log")
    raw, _ = review.pending(review.start(("shell", "c1", RM)))
    changed = HumanResponse(type="edit", args={"action": "shell", "args": HARMLESS})
    review.send(Command(resume={raw.id: [changed]}))
    assert review.lines() == [f"shell {HARMLESS['command']}"] and (world.root / W).exists()

    review = Review(world, kind, True, tmp_path / "ran2.log")
    raw, _ = review.pending(review.start(("shell", "c2", RM)))
    result = review.send(Command(resume=[HumanResponse(type="response", args="not today")]))
    assert "not today" in str(messages(result)["c2"].content) and review.lines() == []

    raw, _ = review.pending(review.start(("delete_file", "c3", {"path": W})))
    review.send(Command(resume={raw.id: [HumanResponse(type="accept", args=None)]}))
    assert review.lines() == [f"delete_file {W}"]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_contained_command_is_not_editable(world: World, asynchronous: bool) -> None:
    """A contained shell command already ran in its sandbox: its request offers approve and
    reject only, an edit is set aside with a note, and a standard approval commits the run."""
    agent = ContainedAgent(world, f"rm {W}; echo removed", asynchronous=asynchronous)
    [raw] = agent.start()["__interrupt__"]
    assert raw.value["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    again = agent.send(Command(resume={raw.id: edit(HARMLESS)}))
    [(iid, asked)] = pending_confirmations(again["__interrupt__"]).items()
    assert "an edit is not offered" in asked.note and (world.root / W).exists()
    done = agent.send(Command(resume={iid: ApproveDecision(type="approve")}))
    assert not (world.root / W).exists() and agent.prepared == ["c1"]
    assert [m.content for m in done["messages"] if isinstance(m, ToolMessage)] == ["removed"]


# ---------------------------------------------------------------- one task, several calls


def whole_message_graph(model: BaseChatModel, tools: list[BaseTool], guard: Guard) -> Any:
    """A ToolNode reached by an edge: it runs every call of the AI message as one task."""
    return edge_graph(model, tools, PeerGuardToolWrapper(guard, agent=AGENT), InMemorySaver())


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("n", [1, 2])
def test_a_task_of_several_calls_takes_only_answers_that_name_theirs(
    world: World, tmp_path: Path, asynchronous: bool, n: Literal[1, 2]
) -> None:
    """A ToolNode given a whole AI message asks its calls in no fixed order: with one call a
    standard approval is that call's; with two it could be the other's, so it is set aside,
    saying so, and answers naming their call run each call once."""
    world.write(OTHER, safetensors_bytes(seed=5))
    review = Review(world, "toolnode", asynchronous, tmp_path / "ran.log")
    targets = [W, OTHER][:n]
    model = model_for(*[("delete_file", f"c{i}", {"path": p}) for i, p in enumerate(targets)])
    review.graph = whole_message_graph(model, logged_tools(world.root, review.log), review.guard)
    result = review.send({"messages": [("user", "decommission decom-01")]})
    raw, _ = review.pending(result)
    result = review.send(Command(resume={raw.id: ApproveDecision(type="approve")}))
    if n == 1:
        assert review.lines() == [f"delete_file {W}"] and "__interrupt__" not in result
        return
    raw, asked = review.pending(result)
    assert asked.note.count("several tool calls in one task") == 1 and review.lines() == []
    rounds = 0
    while "__interrupt__" in result:
        rounds += 1
        assert rounds <= 4
        raw, asked = review.pending(result)
        answer = ConfirmationAnswer.to(asked, approve=True)
        result = review.send(Command(resume={raw.id: answer}))
    assert sorted(review.lines()) == sorted(f"delete_file {p}" for p in targets)
