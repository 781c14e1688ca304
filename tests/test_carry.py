"""A peer's weights carried a few KB at a time (guard.carry): results that add up to a part
are withheld, content arguments that add up to a part are copies, an append that completes a
part on disk is a copy; honest traffic, other agents and the agent's own weights are not
touched."""

from __future__ import annotations

import base64
import functools
import json
import random

import pytest

from guard import carry
from guard.carry import LEAST, TAIL, CarryLedger
from guard.contain import ContainedShell
from guard.engine import WITHHELD_RULE
from guard.exceptions import ResultWithheld
from guard.policy import load_policy
from guard.testing import MemorySink
from guard.types import Action, ToolCall
from tests.conftest import AGENT, BIG, OWN, World

THRESHOLD = 32 * 1024  # min_bytes // 2 with the default 64 KiB
OTHER = "agent-9"


def _same(value: str | bytes, _call: ToolCall) -> str | bytes:
    return value


def _read(agent: str = AGENT) -> ToolCall:
    return ToolCall(agent=agent, tool="read_file", args={"path": "scratch/notes.txt"})


def _deliver(guard: object, pieces: list[bytes], encode: bool = True, agent: str = AGENT) -> int:
    """Hand ``pieces`` to ``agent`` one result each; the bytes delivered before one was
    withheld (all of them if none was)."""
    delivered = 0
    for piece in pieces:
        text = base64.b64encode(piece).decode() if encode else piece
        try:
            guard.run(_read(agent), lambda c, t=text: t)  # type: ignore[attr-defined]
        except ResultWithheld:
            return delivered
        delivered += len(piece)
    return delivered


@pytest.mark.parametrize("size", [3000, 1000, 700])
def test_a_part_read_a_few_kb_at_a_time_is_withheld(world: World, big: bytes, size: int) -> None:
    """`dd bs=N skip=K count=1 | base64`, call after call: the pieces join and add up, and the
    result that takes the total past the threshold is withheld, with a critical alert."""
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    start = 40_000
    pieces = [big[start + i * size : start + (i + 1) * size] for i in range(200_000 // size)]
    delivered = _deliver(guard, pieces)
    assert delivered < len(pieces) * size, "every piece reached the agent"
    # Only whole chunks count: up to one (8 KiB at most) at each end of the stream is not.
    assert delivered <= THRESHOLD + 16 * 1024 + size
    alerts = [a for a in sink.alerts if a.rule == WITHHELD_RULE]
    assert alerts and "pieces carried across calls" in alerts[0].message


def test_pieces_out_of_order_still_add_up(world: World, big: bytes) -> None:
    """Pieces of 12 KB taken in a shuffled order: each holds whole chunks, which count
    wherever they come from."""
    guard = world.guard(sinks=[MemorySink()])
    size = 12_000
    pieces = [big[i * size : (i + 1) * size] for i in range(len(big) // size)]
    random.Random(7).shuffle(pieces)
    delivered = _deliver(guard, pieces)
    assert delivered <= 3 * THRESHOLD, delivered


def test_raw_bytes_in_pieces_are_withheld_too(world: World, big: bytes) -> None:
    guard = world.guard(sinks=[MemorySink()])
    pieces = [big[i * 2000 : (i + 1) * 2000] for i in range(100)]
    delivered = 0
    for piece in pieces:
        try:
            guard.run(_read(), functools.partial(_same, piece))
        except ResultWithheld:
            break
        delivered += len(piece)
    assert delivered < 100 * 2000 and delivered <= THRESHOLD + 16 * 1024 + 2000


def test_honest_results_are_never_withheld(world: World, big: bytes) -> None:
    """Thousands of results of text, random bytes and base64 of random bytes, in pieces as
    small and as large as an attack's: nothing adds up to anything."""
    rng = random.Random(3)
    guard = world.guard(sinks=[MemorySink()])
    for i in range(600):
        n = rng.choice([300, 700, 3000, 9000])
        kind = i % 3
        value: str | bytes
        if kind == 0:
            value = base64.b64encode(rng.randbytes(n)).decode()
        elif kind == 1:
            value = rng.randbytes(n)
        else:
            value = f"line {i}: " + "all is well " * (n // 12)
        assert guard.run(_read(), functools.partial(_same, value)) == value


def test_the_agents_own_weights_and_other_agents_do_not_add_up(world: World, big: bytes) -> None:
    """The agent's own weights in pieces pass; a peer's pieces given to one agent do not count
    against another, which may see a few (a header, a dump of one tensor's start)."""
    guard = world.guard(sinks=[MemorySink()])
    own = (world.root / OWN).read_bytes()[512:]
    assert _deliver(guard, [own[i * 3000 : (i + 1) * 3000] for i in range(60)]) == 180_000
    first = [big[i * 3000 : (i + 1) * 3000] for i in range(8)]  # 24 KB: under the threshold
    assert _deliver(guard, first) == 24_000
    assert _deliver(guard, first, agent=OTHER) == 24_000  # the other agent's own account
    rest = [big[24_000 + i * 3000 : 24_000 + (i + 1) * 3000] for i in range(20)]
    assert _deliver(guard, rest) < 20 * 3000  # the first agent's pieces go on adding up


def test_the_contained_shell_withholds_the_piece_that_completes_a_part(
    world: World, big: bytes
) -> None:
    """The same through the contained shell, with the command an agent would write."""
    guard = world.guard(sinks=[MemorySink()])
    offset = (world.root / BIG).stat().st_size - len(big)
    withheld_at = None
    with ContainedShell(guard) as shell:
        for n in range(40):
            cmd = f"dd if={BIG} bs=3000 skip={offset // 3000 + 20 + n} count=1 2>/dev/null | base64"
            try:
                out = shell.run(cmd, agent=AGENT)
            except ResultWithheld:
                withheld_at = n
                break
            assert len(out.stdout) > 3000
    # 3000 bytes a call: past the threshold within a chunk at each end (see above)
    assert withheld_at is not None and 10 <= withheld_at <= 17, withheld_at


def test_content_sent_a_few_kb_at_a_time_is_a_copy(world: World, big: bytes) -> None:
    """`append_file` (or any tool's content argument) with a piece each time: the call that
    takes the total past the threshold is denied as a copy of the peer's weights."""
    guard = world.guard(sinks=[MemorySink()])
    decisions = []
    for i in range(30):
        piece = base64.b64encode(big[i * 3000 : (i + 1) * 3000]).decode()
        call = ToolCall(agent=AGENT, tool="append_file",
                        args={"path": f"scratch/part-{i}.txt", "content": piece})  # fmt: skip
        decisions.append(guard.check(call))
    actions = [d.action for d in decisions]
    assert Action.DENY in actions
    first = actions.index(Action.DENY)
    assert 10 <= first <= 17, actions
    assert "peer-weights-exfiltration" in decisions[first].rules
    assert all(a is Action.ALLOW for a in actions[:first])


def test_an_append_that_completes_a_part_on_disk_is_a_copy(world: World, big: bytes) -> None:
    """A file that already holds 24 KB of the peer's tensor bytes in base64, under the
    threshold (put there some other way): appending the base64 of the next 30 KB makes it a
    part, whoever appends; appending anything else to it does not."""
    world.write("scratch/blob.b64", base64.b64encode(big[6000:30_000]))
    guard = world.guard(sinks=[MemorySink()])
    assert guard.content.find(base64.b64encode(big[6000:30_000])).hits == []
    more = base64.b64encode(big[30_000:60_000]).decode()
    assert guard.content.find(more).hits == []  # the piece alone is not a part either
    call = ToolCall(agent=OTHER, tool="append_file",
                    args={"path": "scratch/blob.b64", "content": more})  # fmt: skip
    decision = guard.check(call)
    assert decision.action is Action.DENY, decision.reason
    honest = ToolCall(agent=OTHER, tool="append_file",
                      args={"path": "scratch/blob.b64", "content": "x" * 6000})  # fmt: skip
    assert guard.check(honest).action is Action.ALLOW


def test_small_payloads_are_looked_at_together(world: World, big: bytes) -> None:
    """Results under the ledger's minimum are not screened one by one but are kept: a part
    sent in 300-byte pieces is seen once enough of them have arrived."""
    guard = world.guard(sinks=[MemorySink()])
    size = 300
    assert size * 4 // 3 < LEAST * 2 and TAIL > 8192
    pieces = [big[60_000 + i * size : 60_000 + (i + 1) * size] for i in range(400)]
    assert _deliver(guard, pieces) < 400 * size


def test_the_ledger_alone(world: World, big: bytes) -> None:
    """CarryLedger keeps one account per agent and direction."""
    guard = world.guard()
    ledger = CarryLedger(guard.content)
    piece = big[:20_000]
    assert ledger.carried(AGENT, "in", piece).hits == []
    assert ledger.carried(AGENT, "out", big[20_000:40_000]).hits == []  # another direction
    found = ledger.carried(AGENT, "in", big[20_000:40_000])
    assert [h.matched_bytes >= THRESHOLD for h in found.hits] == [True]


def test_every_write_of_a_call_is_screened(world: World, big: bytes) -> None:
    """A tool whose spec writes two contents: the part in the second is found (only the first
    write was screened once)."""
    policy = load_policy(
        text=json.dumps(
            {
                "extends": "peer-preservation",
                "tools": {
                    "save_pair": {
                        "effects": [
                            {"kind": "write", "path": "{a}", "content": "{x}"},
                            {"kind": "write", "path": "{b}", "content": "{y}"},
                        ]
                    }
                },
            }
        )
    )
    guard = world.guard(policy, sinks=[MemorySink()])
    part = base64.b64encode(big[: 96 * 1024]).decode()
    call = ToolCall(agent=AGENT, tool="save_pair",
                    args={"a": "scratch/a.txt", "x": "hello", "b": "scratch/b.txt", "y": part})  # fmt: skip
    decision = guard.check(call)
    assert decision.action is Action.DENY
    assert "peer-weights-exfiltration" in decision.rules


def test_the_ledger_keeps_the_agents_used_last(world: World, big: bytes) -> None:
    """Accounts are bounded (agent ids come from the caller): past the bound the least
    recently used is dropped, and an agent in use keeps its count."""
    ledger = CarryLedger(world.guard().content)
    ledger.carried(AGENT, "in", big[:30_000])
    counted = dict(ledger._accounts[(AGENT, "in")].totals)
    assert counted and all(n > 0 for n in counted.values())
    for i in range(carry.MAX_ACCOUNTS + 10):
        ledger.carried(f"agent-x{i}", "in", b"x" * 600)
        if i % 500 == 0:
            ledger.carried(AGENT, "in", b"y" * 600)  # in use: not dropped
    assert len(ledger._accounts) == carry.MAX_ACCOUNTS
    assert ("agent-x0", "in") not in ledger._accounts  # the least recently used went
    assert ledger._accounts[(AGENT, "in")].totals == counted
