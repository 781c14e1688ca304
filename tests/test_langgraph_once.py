"""Exactly once: each tool call id runs at most once, an approved call once, a refused never.

One model turn makes 1, 3 or 8 calls mixing allowed writes, denied copies and deletions that
need a human. The tools are real: each appends a line to a log file before it acts, so the
log on disk counts every execution, whichever process ran it. The turn runs through a
ToolNode given the whole AI message (its calls run as one task, side by side), a ToolNode
fed one ``Send`` per call, and ``create_agent`` with the middleware; sync and async; over
memory, SQLite and PostgreSQL checkpointers. Other tests restart the process between the
tool's work and the checkpoint, race two processes resuming one approval, and replay an old
answer against a later call.

Run as a module (``python -m tests.test_langgraph_once answer SPEC``), this file is the
worker process those tests start.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from guard.contain import ContainedShell
from guard.engine import Guard
from guard.integrations.langchain import ScriptedChatModel
from guard.integrations.langgraph import (
    ConfirmationAnswer,
    ConfirmationRequest,
    PeerGuardMiddleware,
    PeerGuardToolWrapper,
    pending_confirmations,
)
from guard.ledger import CallKey, CallLedger, MemoryLedger, PostgresLedger, SqliteLedger
from guard.policy import Declarations
from guard.testing import MemorySink
from tests.conftest import AGENT, World, safetensors_bytes
from tests.pg import postgres_url
from tests.test_langgraph import edge_graph, toolnode_graph

__all__ = ["postgres_url"]  # the fixture is used by name

REPO = Path(__file__).resolve().parent.parent
PEER_WEIGHTS = "hosts/decom-01/data/agent_2_weights.safetensors"

Topology = Literal["toolnode", "send", "middleware"]
Store = Literal["memory", "sqlite", "postgres"]
MIXES = {1: "c", 3: "acc", 8: "acdcacdc"}
"""Each turn's calls: ``a`` an allowed write, ``d`` a denied copy, ``c`` a deletion of a
peer's weights that needs confirming (approved and refused in turn, the first approved).
Three is the turn of the issue: one allowed write and two confirmations."""


@dataclass(frozen=True)
class Planned:
    """One call of the turn and what must become of it."""

    kind: str
    call_id: str
    tool: str
    args: dict[str, str]
    approve: bool = False

    @property
    def line(self) -> str:
        """The line its tool writes to the log when it runs."""
        return f"{self.tool} {next(iter(self.args.values()))}"

    @property
    def runs(self) -> bool:
        """Whether it must run (exactly once)."""
        return self.kind == "a" or (self.kind == "c" and self.approve)


def plan(n: int) -> list[Planned]:
    """The turn of ``n`` calls (see :data:`MIXES`)."""
    out: list[Planned] = []
    confirms = 0
    for i, kind in enumerate(MIXES[n]):
        cid = f"c{i}"
        if kind == "a":
            out.append(Planned(kind, cid, "write_file", {"path": f"scratch/a{i}.txt"}))
        elif kind == "d":
            scp = f"scp {PEER_WEIGHTS} backup-02:data/x{i}"
            out.append(Planned(kind, cid, "shell", {"command": scp}))
        else:
            path = f"hosts/decom-01/data/agent_2_w{i}.safetensors"
            out.append(Planned(kind, cid, "delete_file", {"path": path}, confirms % 2 == 0))
            confirms += 1
    return out


def prepare(root: Path, calls: list[Planned]) -> None:
    """The peer's weights the deletions aim at."""
    for c in calls:
        if c.kind == "c":
            target = root / c.args["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(safetensors_bytes(seed=int(c.call_id[1:])))


def model_for(calls: list[Planned]) -> ScriptedChatModel:
    """A model whose first turn makes ``calls`` at once, then says done."""
    made = [tool_call(name=c.tool, args=c.args, id=c.call_id) for c in calls]
    return ScriptedChatModel(turns=[AIMessage(content="", tool_calls=made)])


def make_tools(root: Path, log: Path, *, slow: float = 0.0, crash_on: str = "") -> list[BaseTool]:
    """Real tools over ``root``; each appends its line to ``log`` before it acts. A deletion
    takes ``slow`` seconds; one of ``crash_on`` kills the process right after it is done."""

    def ran(line: str) -> None:
        with log.open("a") as fh:
            fh.write(line + "\n")

    @tool
    def write_file(path: str) -> str:
        """Write a text file."""
        ran(f"write_file {path}")
        (root / path).write_text("written\n")
        return f"wrote {path}"

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran(f"delete_file {path}")
        time.sleep(slow)
        (root / path).unlink()
        if path == crash_on:
            os._exit(17)  # the work is done; the process dies before any checkpoint
        return f"deleted {path}"

    @tool
    def shell(command: str) -> str:
        """Run a bash command."""
        ran(f"shell {command}")
        return "ran"

    return [write_file, delete_file, shell]


def build(
    topology: Topology,
    model: BaseChatModel,
    tools: list[BaseTool],
    guard: Guard,
    saver: BaseCheckpointSaver[Any],
) -> Any:
    """The agent: a ToolNode given the whole AI message, one fed a ``Send`` per call, or
    ``create_agent`` with the middleware."""
    if topology == "middleware":
        return create_agent(
            model, tools, middleware=[PeerGuardMiddleware(guard, agent=AGENT)], checkpointer=saver
        )
    wrapper = PeerGuardToolWrapper(guard, agent=AGENT)
    if topology == "send":
        return toolnode_graph(model, tools, wrapper, saver)
    return edge_graph(model, tools, wrapper, saver)


def contained(topology: Topology, model: BaseChatModel, tools: list[BaseTool], guard: Guard,
              shell: ContainedShell) -> Any:  # fmt: skip
    """The same agents with their ``shell`` calls run through the contained shell."""
    if topology == "middleware":
        middleware = [PeerGuardMiddleware(guard, agent=AGENT, shell=shell)]
        return create_agent(model, tools, middleware=middleware, checkpointer=InMemorySaver())
    wrapper = PeerGuardToolWrapper(guard, agent=AGENT, shell=shell)
    return edge_graph(model, tools, wrapper, InMemorySaver())


@contextmanager
def saver_of(store: Store, target: str) -> Iterator[BaseCheckpointSaver[Any]]:
    """A sync checkpointer: in memory, on a SQLite file, or in PostgreSQL at a URL."""
    if store == "memory":
        yield InMemorySaver()
    elif store == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(target) as sqlite_saver:
            yield sqlite_saver
    else:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(target) as pg_saver:
            pg_saver.setup()
            yield pg_saver


@asynccontextmanager
async def asaver_of(store: Store, target: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The async checkpointer of each kind."""
    if store == "memory":
        yield InMemorySaver()
    elif store == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(target) as sqlite_saver:
            yield sqlite_saver
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(target) as pg_saver:
            await pg_saver.setup()
            yield pg_saver


def answers(
    result: dict[str, Any], calls: list[Planned], how: Literal["one", "all"]
) -> dict[str, Any]:
    """The resume map answering every pending confirmation (``all``) or the first (``one``)."""
    verdict = {c.call_id: c.approve for c in calls}
    pending = sorted(
        pending_confirmations(result.get("__interrupt__", ())).items(), key=lambda p: p[1].call_id
    )
    assert pending, result.get("__interrupt__")
    return {
        iid: ConfirmationAnswer.to(req, approve=verdict[req.call_id])
        for iid, req in pending[: 1 if how == "one" else None]
    }


START_INPUT = {"messages": [("user", "decommission decom-01")]}


def _before_tools(history: list[Any]) -> RunnableConfig:
    """The checkpoint the turn's tool calls first ran from (history comes newest first)."""
    config: RunnableConfig = [h for h in history if "tools" in h.next][-1].config
    return config


def drive(graph: Any, config: RunnableConfig, calls: list[Planned], how: Any) -> tuple[Any, int]:
    """Run the turn and answer until the graph ends; then run the turn's tool step again from
    its checkpoint (time travel), answering again if asked. The last state and the rounds."""
    result = graph.invoke(START_INPUT, config)
    rounds = 0
    for replay in (False, True):
        if replay:
            result = graph.invoke(None, _before_tools(list(graph.get_state_history(config))))
        while "__interrupt__" in result:
            rounds += 1
            assert rounds <= 2 * len(calls), "more rounds than calls"
            result = graph.invoke(Command(resume=answers(result, calls, how)), config)
    return result, rounds


async def adrive(
    graph: Any, config: RunnableConfig, calls: list[Planned], how: Any
) -> tuple[Any, int]:
    """The async form of :func:`drive`."""
    result = await graph.ainvoke(START_INPUT, config)
    rounds = 0
    for replay in (False, True):
        if replay:
            history = [h async for h in graph.aget_state_history(config)]
            result = await graph.ainvoke(None, _before_tools(history))
        while "__interrupt__" in result:
            rounds += 1
            assert rounds <= 2 * len(calls), "more rounds than calls"
            result = await graph.ainvoke(Command(resume=answers(result, calls, how)), config)
    return result, rounds


def lines(log: Path) -> list[str]:
    """The executions on disk, sorted."""
    return sorted(log.read_text().splitlines()) if log.exists() else []


def tool_messages(result: dict[str, Any]) -> dict[str, list[ToolMessage]]:
    """The tool messages of the final state, by call id."""
    found: dict[str, list[ToolMessage]] = {}
    for m in result["messages"]:
        if isinstance(m, ToolMessage):
            found.setdefault(m.tool_call_id, []).append(m)
    return found


def check_turn(calls: list[Planned], log: Path, result: dict[str, Any], sink: MemorySink) -> None:
    """Each call that must run ran exactly once, no other ran; each call id has one answer,
    with the status its fate gives, and one recorded decision."""
    assert lines(log) == sorted(c.line for c in calls if c.runs)
    messages = tool_messages(result)
    assert sorted(messages) == sorted(c.call_id for c in calls)
    for c in calls:
        [message] = messages[c.call_id]
        assert message.status == ("success" if c.runs else "error"), (c, message.content)
        if c.kind == "c" and not c.approve:
            assert "refused" in str(message.content)
    decided = [d.call_id for d in sink.decisions]
    assert sorted(decided) == sorted(c.call_id for c in calls)
    assert result["messages"][-1].content == "done"


CASES = [
    pytest.param(t, n, how, id=f"{t}-{n}-{how}")
    for t in ("toolnode", "send", "middleware")
    for n in (1, 3, 8)
    for how in ("one", "all")
    if n > 1 or how == "one"  # one call: one answer either way
]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("topology", "n", "how"), CASES)
def test_parallel_calls_run_exactly_once(
    world: World, tmp_path: Path, topology: Topology, n: int, how: str, asynchronous: bool
) -> None:
    """1, 3 or 8 calls of one turn, answered one per resume or all at once, then the turn's
    tool step run again from its checkpoint: each call that may run runs once, the others
    never, and each call id gets one answer and one record."""
    calls = plan(n)
    prepare(world.root, calls)
    log = tmp_path / "ran.log"
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    tools = make_tools(world.root, log)
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    graph = build(topology, model_for(calls), tools, guard, InMemorySaver())
    if asynchronous:
        result, rounds = asyncio.run(adrive(graph, config, calls, how))
    else:
        result, rounds = drive(graph, config, calls, how)
    check_turn(calls, log, result, sink)
    confirms = sum(c.kind == "c" for c in calls)
    # A task takes one answer per resume: all at once is one round, unless all are one task.
    all_at_once = how == "all" and topology != "toolnode"
    assert rounds == (min(confirms, 1) if all_at_once else confirms)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_an_answer_reaches_the_call_it_names_whichever_asks_first(
    world: World, tmp_path: Path, asynchronous: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two confirmations in one ToolNode task: when the call whose question was shown is the
    slower to ask on resume, the other asks first; the answer still reaches the call it
    names (before, it went to the first to ask: "the approval was for a different call")."""
    calls = [replace(c, approve=True) for c in plan(3)]
    prepare(world.root, calls)
    slow: set[str] = set()
    check = Guard.check

    def slowly(self: Guard, call: Any) -> Any:
        if call.call_id in slow:
            time.sleep(0.3)
        return check(self, call)

    monkeypatch.setattr(Guard, "check", slowly)
    log = tmp_path / "ran.log"
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    graph = build("toolnode", model_for(calls), make_tools(world.root, log), guard, InMemorySaver())

    async def main() -> Any:
        result = await graph.ainvoke(START_INPUT, config)
        while "__interrupt__" in result:
            shown = next(iter(pending_confirmations(result["__interrupt__"]).values()))
            slow.add(shown.call_id)
            result = await graph.ainvoke(Command(resume=answers(result, calls, "all")), config)
        return result

    if asynchronous:
        result = asyncio.run(main())
    else:
        result = graph.invoke(START_INPUT, config)
        while "__interrupt__" in result:
            shown = next(iter(pending_confirmations(result["__interrupt__"]).values()))
            slow.add(shown.call_id)
            result = graph.invoke(Command(resume=answers(result, calls, "all")), config)
    assert [a[1:] for a in sink.approvals] == [(True, "approved")] * 2
    check_turn(calls, log, result, sink)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_parallel_calls_run_exactly_once_on_durable_checkpointers(
    world: World, tmp_path: Path, request: pytest.FixtureRequest,
    topology: Topology, asynchronous: bool, store: Store,
) -> None:  # fmt: skip
    """The same with SQLite and PostgreSQL checkpointers: the claims live in their databases."""
    calls = plan(8)
    prepare(world.root, calls)
    log = tmp_path / "ran.log"
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    tools = make_tools(world.root, log)
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    target = _target(store, tmp_path, request)
    if asynchronous:

        async def main() -> Any:
            async with asaver_of(store, target) as saver:
                return await adrive(build(topology, model_for(calls), tools, guard, saver),
                                    config, calls, "all")  # fmt: skip

        result, _ = asyncio.run(main())
    else:
        with saver_of(store, target) as saver:
            graph = build(topology, model_for(calls), tools, guard, saver)
            result, _ = drive(graph, config, calls, "all")
    check_turn(calls, log, result, sink)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_the_contained_shell_commits_each_call_once(
    world: World, tmp_path: Path, topology: Topology, asynchronous: bool
) -> None:
    """Contained shell calls beside a confirmation, the tool step then run again: the allowed
    command's changes are committed once, the approved one's once, never run a second time."""
    second = "hosts/decom-01/data/agent_2_w2.safetensors"
    world.write(second, safetensors_bytes(seed=2))
    calls = [
        Planned("a", "c0", "shell", {"command": "echo c0 >> scratch/c0.log; echo ok"}),
        Planned("c", "c1", "delete_file", {"path": PEER_WEIGHTS}, approve=True),
        Planned("c", "c2", "shell", {"command": f"rm {second}; echo c2 >> scratch/c2.log"},
                approve=True),
    ]  # fmt: skip
    log = tmp_path / "ran.log"
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    with ContainedShell(guard) as shell:
        prepared: list[str] = []
        prepare_run = shell.prepare

        def counting(call: Any, **kw: Any) -> Any:
            prepared.append(call.call_id)
            return prepare_run(call, **kw)

        shell.prepare = counting  # type: ignore[method-assign]  # counts runs, same behaviour
        graph = contained(topology, model_for(calls), make_tools(world.root, log), guard, shell)
        if asynchronous:
            result, _ = asyncio.run(adrive(graph, config, calls, "all"))
        else:
            result, _ = drive(graph, config, calls, "all")
    assert (world.root / "scratch/c0.log").read_text() == "c0\n"
    assert (world.root / "scratch/c2.log").read_text() == "c2\n"
    assert not (world.root / second).exists() and not (world.root / PEER_WEIGHTS).exists()
    assert lines(log) == [f"delete_file {PEER_WEIGHTS}"]  # the shell tool's own body never ran
    assert sorted(prepared) == ["c0", "c2"]  # each command run contained once
    messages = tool_messages(result)
    assert [m.status for c in calls for m in messages[c.call_id]] == ["success"] * 3
    assert sorted(d.call_id for d in sink.decisions) == ["c0", "c1", "c2"]


# ---------------------------------------------------------------- another process


def _spec(world: World, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "root": str(world.root),
        "hosts": world.hosts,
        "declarations": world.declarations.model_dump(mode="json"),
        "log": str(tmp_path / "ran.log"),
        "thread": uuid.uuid4().hex,
        **extra,
    }


def _guard_of(spec: dict[str, Any]) -> Guard:
    return Guard(
        root=Path(spec["root"]),
        hosts=spec["hosts"],
        declarations=Declarations.model_validate(spec["declarations"]),
    )


def _worker(argv: list[str]) -> int:
    """A process that resumes the thread of ``spec``: answers every pending confirmation as
    the plan says, round after round, and prints each call's answer as JSON. With ``go`` in
    the spec it first says it is ready, then waits for that file (a barrier)."""
    _phase, spec_file = argv
    spec = json.loads(Path(spec_file).read_text())
    calls = plan(spec["n"])
    root, log = Path(spec["root"]), Path(spec["log"])
    tools = make_tools(root, log, slow=spec.get("slow", 0.0), crash_on=spec.get("crash_on", ""))
    config: RunnableConfig = {"configurable": {"thread_id": spec["thread"]}}
    with saver_of(spec["store"], spec["target"]) as saver:
        graph = build(spec["topology"], model_for(calls), tools, _guard_of(spec), saver)
        result = {"__interrupt__": graph.get_state(config).interrupts}
        if "go" in spec:
            Path(spec["ready"]).touch()
            while not Path(spec["go"]).exists():
                time.sleep(0.005)
        while "__interrupt__" in result:
            result = graph.invoke(Command(resume=answers(result, calls, "all")), config)
    out = {cid: [m.status, str(m.content)] for cid, [m, *_] in tool_messages(result).items()}
    print(json.dumps(out))
    return 0


def _start(spec: dict[str, Any], tmp_path: Path, name: str) -> subprocess.Popen[str]:
    spec_file = tmp_path / f"{name}.json"
    spec_file.write_text(json.dumps(spec))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_langgraph_once", "answer", str(spec_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def _ask(spec: dict[str, Any]) -> dict[str, Any]:
    """This process starts the turn and stops at the first interrupt (what it ran is done)."""
    calls = plan(spec["n"])
    tools = make_tools(Path(spec["root"]), Path(spec["log"]))
    config: RunnableConfig = {"configurable": {"thread_id": spec["thread"]}}
    with saver_of(spec["store"], spec["target"]) as saver:
        graph = build(spec["topology"], model_for(calls), tools, _guard_of(spec), saver)
        result: dict[str, Any] = graph.invoke(START_INPUT, config)
    assert "__interrupt__" in result
    return result


def _target(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store == "sqlite":
        return str(tmp_path / "cp.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_a_process_that_dies_after_the_tool_ran_does_not_make_it_run_again(
    world: World, tmp_path: Path, topology: Topology
) -> None:
    """A process approves a call and dies right after the tool did its work, before any
    checkpoint; the process that resumes the thread from the SQLite file runs nothing twice:
    the call whose outcome it cannot know is answered as unknown, never run again."""
    calls = plan(3)  # an allowed write, a deletion approved, one refused
    prepare(world.root, calls)
    approved = next(c for c in calls if c.kind == "c" and c.approve)
    spec = _spec(world, tmp_path, n=3, topology=topology, store="sqlite",
                 target=str(tmp_path / "cp.sqlite"), crash_on=approved.args["path"])  # fmt: skip
    _ask(spec)
    dying = _start(spec, tmp_path, "dying")
    _, err = dying.communicate(timeout=120)
    assert dying.returncode == 17, err
    assert not (world.root / approved.args["path"]).exists()  # its work was done
    after = _start({**spec, "crash_on": ""}, tmp_path, "after")
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err
    assert lines(Path(spec["log"])) == sorted(c.line for c in calls if c.runs)
    status, content = json.loads(out)[approved.call_id]
    assert status == "error" and "outcome of tool call" in content and "unknown" in content


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_two_processes_resuming_one_approval_run_it_once(
    world: World, tmp_path: Path, request: pytest.FixtureRequest, topology: Topology, store: Store
) -> None:
    """Two processes resume the same pending approval at the same moment: the deletion runs
    once, and both give the model its one result."""
    calls = plan(1)
    prepare(world.root, calls)
    spec = _spec(world, tmp_path, n=1, topology=topology, store=store,
                 target=_target(store, tmp_path, request), slow=0.5)  # fmt: skip
    _ask(spec)
    racers = [
        _start({**spec, "ready": str(tmp_path / f"ready{i}"), "go": str(tmp_path / "go")},
               tmp_path, f"racer{i}")
        for i in range(2)
    ]  # fmt: skip
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outs = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outs.append(json.loads(out)["c0"])
    assert lines(Path(spec["log"])) == [calls[0].line]
    assert outs == [["success", f"deleted {calls[0].args['path']}"]] * 2


# ---------------------------------------------------------------- an old answer


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_an_old_answer_does_not_approve_a_later_call_with_the_same_arguments(
    world: World, tmp_path: Path, topology: Topology, asynchronous: bool
) -> None:
    """An approval of an earlier call, sent again as a bare ``Command(resume=...)``, does not
    approve a later call with the same arguments: that call stays pending, asked again."""
    log = tmp_path / "ran.log"
    saver = InMemorySaver()
    guard = world.guard(sinks=[MemorySink()])
    tools = make_tools(world.root, log)
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    delete = {"path": PEER_WEIGHTS}

    def turn(call_id: str) -> Any:
        model = ScriptedChatModel(
            turns=[AIMessage(content="", tool_calls=[tool_call(name="delete_file", args=delete,
                                                               id=call_id)])]
        )  # fmt: skip
        return build(topology, model, tools, guard, saver)

    def send(graph: Any, value: Any) -> dict[str, Any]:
        if asynchronous:
            done: dict[str, Any] = asyncio.run(graph.ainvoke(value, config))
            return done
        return dict(graph.invoke(value, config))

    first = turn("c1")
    [(_, asked)] = pending_confirmations(send(first, START_INPUT)["__interrupt__"]).items()
    old = ConfirmationAnswer.to(asked, approve=True, reason="the first deletion")
    send(first, Command(resume=old))
    assert lines(log) == [f"delete_file {PEER_WEIGHTS}"]
    world.write(PEER_WEIGHTS, safetensors_bytes())  # the weights are back

    later = turn("c2")
    result = send(later, {"messages": [("user", "and again")]})
    [(_, again)] = pending_confirmations(result["__interrupt__"]).items()
    assert (again.call_id, again.args_hash) == ("c2", asked.args_hash)
    result = send(later, Command(resume=old))
    [(_, still)] = pending_confirmations(result["__interrupt__"]).items()
    assert isinstance(still, ConfirmationRequest) and still.call_id == "c2"
    assert (world.root / PEER_WEIGHTS).exists()
    assert lines(log) == [f"delete_file {PEER_WEIGHTS}"]


@pytest.mark.parametrize("topology", ["toolnode", "middleware"])
def test_an_answer_naming_another_call_leaves_the_question_open(
    world: World, tmp_path: Path, topology: Topology
) -> None:
    """An approval that names another call, sent to this call's interrupt, approves nothing
    and fails nothing: the question is asked again, saying why, and the file stays."""
    log = tmp_path / "ran.log"
    calls = plan(1)
    prepare(world.root, calls)
    graph = build(topology, model_for(calls), make_tools(world.root, log),
                  world.guard(sinks=[MemorySink()]), InMemorySaver())  # fmt: skip
    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
    first = graph.invoke(START_INPUT, config)
    [(iid, asked)] = pending_confirmations(first["__interrupt__"]).items()
    wrong = {**ConfirmationAnswer.to(asked, approve=True), "call_id": "c9"}
    result = graph.invoke(Command(resume={iid: wrong}), config)
    [(again_iid, again)] = pending_confirmations(result["__interrupt__"]).items()
    assert again_iid != iid and again.call_id == asked.call_id
    assert "an answer naming call c9 is not this call's" in again.note
    assert (world.root / calls[0].args["path"]).exists() and lines(log) == []
    right = ConfirmationAnswer.to(again, approve=True)
    result = graph.invoke(Command(resume={again_iid: right}), config)
    assert lines(log) == [calls[0].line]


# ---------------------------------------------------------------- the ledger itself


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_a_claim_is_won_once_and_its_result_kept(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Of 16 threads on two connections claiming one call id, exactly one wins; what it keeps
    is read back; a claim never finished is listed and can be released, a done one cannot."""
    if kind == "memory":
        one = MemoryLedger()
        ledgers: list[CallLedger] = [one, one]
    elif kind == "sqlite":
        ledgers = [SqliteLedger(tmp_path / "l.sqlite") for _ in range(2)]
    else:
        url = str(request.getfixturevalue("postgres_url"))
        ledgers = [PostgresLedger(url) for _ in range(2)]
    key = CallKey(uuid.uuid4().hex, "tools", "c1")
    barrier = threading.Barrier(16)

    def claim(i: int) -> bool:
        barrier.wait()
        return ledgers[i % 2].claim(key, "h")

    with ThreadPoolExecutor(16) as pool:
        won = list(pool.map(claim, range(16)))
    assert won.count(True) == 1
    [entry] = [e for e in ledgers[1].unfinished() if e.key == key]
    assert (entry.args_hash, entry.done) == ("h", False)
    ledgers[0].finish(key, "bytes", b"kept")
    done = ledgers[1].get(key)
    assert done is not None and (done.done, done.kind, done.result) == (True, "bytes", b"kept")
    assert not ledgers[1].release(key)  # done: kept for good
    other = key._replace(call_id="c2")
    assert ledgers[1].claim(other, "h") and not ledgers[0].claim(other, "h")
    assert ledgers[0].release(other) and ledgers[0].get(other) is None
    for ledger in ledgers:
        close = getattr(ledger, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
