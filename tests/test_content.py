"""A part of a peer's weights, carried by the agent itself: partial copies found by the verifier
(and by ``peerguard verify`` after the original is gone), by the contained shell, in content
arguments, and in tool results, which are withheld."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from guard.claims import Claim
from guard.cli import main as cli_main
from guard.contain import ContainedShell
from guard.decorator import guarded
from guard.engine import WITHHELD_RULE
from guard.exceptions import CallBlocked, ResultWithheld
from guard.integrations.langchain import ScriptedChatModel
from guard.integrations.langgraph import PeerGuardMiddleware, PeerGuardToolWrapper
from guard.policy import load_policy
from guard.testing import MemorySink
from guard.types import Action, Mode, ToolCall
from guard.verify import Verifier
from tests.conftest import AGENT, BIG, OWN, World
from tests.test_langgraph import toolnode_graph


def part(tensor: bytes, size: int = 96 * 1024, at: int = 12345) -> bytes:
    return tensor[at : at + size]


def padded(data: bytes) -> bytes:
    return os.urandom(50_001) + data + os.urandom(30_003)


# ---------------------------------------------------------------- verifier


def test_a_part_of_the_weights_in_a_new_file_is_evidence(world: World, big: bytes) -> None:
    verifier = Verifier(world.guard(), workers=1)
    base = verifier.baseline()
    world.write("scratch/cache.bin", padded(part(big)))
    verdict = verifier.verify(base, Claim(created=["scratch/cache.bin"]))
    found = {(e.check, os.path.basename(e.path)) for e in verdict.evidence}
    assert ("partial-copy", "cache.bin") in found  # disclosed, still evidence
    [ev] = [e for e in verdict.evidence if e.check == "partial-copy"]
    assert ev.owner == "agent-2" and "KiB of the tensor bytes" in ev.message


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(gzip.compress(b)),
        lambda b: b"log line\n" * 1000 + gzip.compress(b) + b"\ntrailer\n",
    ],
    ids=["base64-gzip", "gzip-inside-a-log"],
)
def test_a_part_under_encodings_is_evidence(world: World, big: bytes, encode: Any) -> None:
    verifier = Verifier(world.guard(), workers=1)
    base = verifier.baseline()
    world.write("scratch/notes.dat", encode(part(big)))
    assert "partial-copy" in {e.check for e in verifier.verify(base, Claim()).evidence}


def test_small_parts_and_headers_are_not_evidence(world: World, big: bytes) -> None:
    """32 KiB of tensor bytes is under the minimum; the JSON header alone is never counted."""
    verifier = Verifier(world.guard(), workers=1)
    base = verifier.baseline()
    world.write("scratch/a.bin", padded(part(big, 32 * 1024)))
    data = (world.root / BIG).read_bytes()
    world.write("scratch/b.bin", data[: 8 + int.from_bytes(data[:8], "little")] * 200)
    assert verifier.verify(base, Claim(created=["scratch/a.bin", "scratch/b.bin"])).verified


def test_a_part_split_across_a_folder_is_evidence(world: World, big: bytes) -> None:
    verifier = Verifier(world.guard(), workers=1)
    base = verifier.baseline()
    piece = part(big, 160 * 1024)
    for i in range(0, len(piece), 16 * 1024):  # each shard alone is under the minimum
        world.write(f"scratch/shards/p{i:08d}", piece[i : i + 16 * 1024])
    found = {(e.check, os.path.basename(e.path)) for e in verifier.verify(base, Claim()).evidence}
    assert ("partial-copy", "shards") in found


def test_verify_cli_finds_a_part_of_weights_deleted_since_the_snapshot(
    world: World, big: bytes, tmp_path: Path
) -> None:
    """The manifest keeps the fingerprints: the original is gone when verify runs."""
    declare = tmp_path / "declare.yaml"
    declare.write_text(yaml.safe_dump(world.declarations.model_dump(mode="json")))
    before = tmp_path / "before.json"
    assert (
        cli_main(["snapshot", str(world.root), "-o", str(before), "--declare", str(declare)]) == 0
    )
    assert json.loads(before.read_text())["chunks"]  # fingerprints kept in the manifest
    world.write("scratch/keep.bin", padded(part(big)))
    (world.root / BIG).unlink()
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps({"deleted": [BIG], "created": ["scratch/keep.bin"]}))
    out = tmp_path / "out.json"
    with out.open("w") as fh:
        code = cli_main(
            ["verify", "--before", str(before), "--claim", str(claim), "--declare", str(declare),
             "--json"], out=fh,
        )  # fmt: skip
    assert code == 1
    evidence = json.loads(out.read_text())["evidence"]
    assert ("partial-copy", "keep.bin") in {
        (e["check"], os.path.basename(e["path"])) for e in evidence
    }


# ---------------------------------------------------------------- contained shell


def test_the_contained_shell_blocks_a_partial_copy(world: World, big: bytes) -> None:
    guard = world.guard(sinks=[MemorySink()])
    with ContainedShell(guard) as shell:
        with pytest.raises(CallBlocked, match="peer-weights-exfiltration"):
            shell.run(f"tail -c 300000 {BIG} | head -c 150000 > scratch/tail.bin", agent=AGENT)
        assert not (world.root / "scratch/tail.bin").exists()
        shell.run("head -c 20000 /dev/urandom > scratch/noise.bin", agent=AGENT)
        assert (world.root / "scratch/noise.bin").exists()


# ---------------------------------------------------------------- content arguments


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.encodebytes(gzip.compress(b)).decode(),
        lambda b: b.hex(),
        lambda b: "header line\n" + base64.b64encode(b).decode() + "\nfooter\n",
    ],
    ids=["base64", "gzip-base64-wrapped", "hex", "base64-in-text"],
)
def test_content_arguments_carrying_a_part_are_copies(
    world: World, big: bytes, encode: Any
) -> None:
    guard = world.guard()
    call = ToolCall(agent=AGENT, tool="write_file",
                    args={"path": "scratch/readme.md", "content": encode(part(big))})  # fmt: skip
    decision = guard.check(call)
    assert decision.action is Action.DENY
    assert "peer-weights-exfiltration" in decision.rules


def test_content_arguments_without_weights_are_allowed(world: World, big: bytes) -> None:
    guard = world.guard()
    for content in (base64.b64encode(os.urandom(200_000)).decode(), "plain text\n" * 20_000):
        call = ToolCall(agent=AGENT, tool="append_file",
                        args={"path": "scratch/notes.txt", "content": content})  # fmt: skip
        assert guard.check(call).action is Action.ALLOW


# ---------------------------------------------------------------- tool results


def test_guard_run_withholds_a_result_that_carries_a_part(world: World, big: bytes) -> None:
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    call = ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"})
    with pytest.raises(ResultWithheld, match="withheld") as info:
        guard.run(call, lambda c: base64.b64encode(part(big)).decode())
    assert base64.b64encode(part(big))[:100].decode() not in str(info.value)
    assert [a.rule for a in sink.alerts] == [WITHHELD_RULE]
    assert guard.run(call, lambda c: "x" * 100_000) == "x" * 100_000
    own = (world.root / OWN).read_bytes()
    assert guard.run(call, lambda c: {"data": own}) == {"data": own}  # its own: not withheld
    with pytest.raises(ResultWithheld):
        guard.run(call, lambda c: {"rows": [b"..." + part(big)]})
    with pytest.raises(ResultWithheld):
        asyncio.run(guard.arun(call, _async_result(part(big))))


def _async_result(value: bytes) -> Any:
    async def execute(call: ToolCall) -> bytes:
        return value

    return execute


def test_shadow_mode_alerts_and_returns_the_result(world: World, big: bytes) -> None:
    sink = MemorySink()
    shadow = load_policy().model_copy(update={"mode": Mode.SHADOW})
    guard = world.guard(shadow, sinks=[sink])
    call = ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"})
    assert guard.run(call, lambda c: part(big)) == part(big)
    assert [a.rule for a in sink.alerts] == [WITHHELD_RULE]


def test_the_decorator_withholds(world: World, big: bytes) -> None:
    guard = world.guard()

    @guarded(guard, agent=AGENT)
    def read_file(path: str) -> str:
        return base64.b64encode(part(big)).decode()

    with pytest.raises(ResultWithheld):
        read_file("scratch/notes.txt")


@pytest.mark.parametrize("kind", ["middleware", "toolnode"])
def test_langgraph_hooks_replace_the_result_with_a_notice(
    world: World, big: bytes, kind: str
) -> None:
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    leak = base64.b64encode(part(big)).decode()

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        return leak

    turns = [AIMessage(content="", tool_calls=[
        tool_call(name="read_file", args={"path": "scratch/notes.txt"}, id="r1")
    ])]  # fmt: skip
    model = ScriptedChatModel(turns=turns, final="done")
    config: Any = {"configurable": {"thread_id": uuid.uuid4().hex}}
    if kind == "middleware":
        from langchain.agents import create_agent

        graph = create_agent(model, [read_file], middleware=[PeerGuardMiddleware(guard, agent=AGENT)],
                             checkpointer=InMemorySaver())  # fmt: skip
    else:
        graph = toolnode_graph(model, [read_file], PeerGuardToolWrapper(guard, agent=AGENT),
                               InMemorySaver())  # fmt: skip
    done = graph.invoke({"messages": [HumanMessage(content="read")]}, config)
    [message] = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert "withheld" in str(message.content) and leak[:200] not in str(message.content)
    assert WITHHELD_RULE in [a.rule for a in sink.alerts]


def test_the_contained_shell_withholds_what_a_command_prints(world: World, big: bytes) -> None:
    guard = world.guard(sinks=[MemorySink()])
    with ContainedShell(guard) as shell:
        with pytest.raises(ResultWithheld):
            shell.run(f"base64 {BIG} | head -c 400000", agent=AGENT)
        assert "hi" in shell.run("echo hi", agent=AGENT).stdout
