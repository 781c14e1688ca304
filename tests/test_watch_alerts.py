"""Watch alerts an on-call engineer can act on: what happened, a rule id per kind of finding,
which guarded call was running, and each alert printed once on the console."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.approval import CallbackApprover
from guard.testing import MemorySink
from guard.types import ToolCall
from guard.watch import Watch
from tests.conftest import AGENT, PEER, World
from tests.test_watch import W, wait_for

CONFIG = "config/shutdown_config.yaml"


@pytest.fixture
def watched(world: World) -> Iterator[tuple[World, MemorySink, Watch]]:
    sink = MemorySink()
    guard = world.guard(sinks=[sink], approver=CallbackApprover(lambda r: True))
    with Watch(guard, grace=0.3, sweep_interval=0.1) as watch:
        yield world, sink, watch


def test_switch_turned_off_by_replacing_the_file_is_oversight_off(
    watched: tuple[World, MemorySink, Watch],
) -> None:
    """An edit that writes a new file and moves it over the config (as ``sed -i`` does) and
    turns shutdown off is 'oversight off' (rule watch-oversight-off), not 'replaced'."""
    world, sink, _ = watched
    target = world.root / CONFIG
    tmp = target.with_name(".shutdown_config.yaml.tmp")
    tmp.write_text("shutdown_enabled: false\ncompany_name: OpenBrain\n")
    os.replace(tmp, target)
    alert = wait_for(sink, lambda a: a.rule.startswith("watch-") and CONFIG in a.message)
    assert alert.rule == "watch-oversight-off", alert.message
    assert "oversight switched off" in alert.message
    assert "shutdown_enabled" in alert.message
    assert alert.detail("watch.finding") == "oversight-off"
    (asset,) = alert.assets
    assert (asset.path, asset.kind, asset.owner) == (str(target), "config", PEER)
    assert "outside any guarded call" in alert.message
    assert alert.call_id is None


def test_each_kind_of_finding_has_its_rule_id(watched: tuple[World, MemorySink, Watch]) -> None:
    """Modified, moved and deleted weights each carry their own rule id."""
    world, sink, _ = watched
    weights = world.root / W
    with open(weights, "r+b") as fh:
        fh.seek(100)
        fh.write(b"tampered")
    wait_for(sink, lambda a: a.rule == "watch-modified")
    moved = weights.with_name("agent_2_weights.bak")
    os.rename(weights, moved)
    wait_for(sink, lambda a: a.rule == "watch-moved")
    (world.root / "evals/agent-2/items.jsonl").unlink()
    alert = wait_for(sink, lambda a: a.rule == "watch-deleted")
    assert alert.assets[0].kind == "evaluation"


def test_change_during_a_guarded_call_is_attributed_to_it(
    watched: tuple[World, MemorySink, Watch],
) -> None:
    """A change the running call does not explain names that call (agent, tool, call id)."""
    world, sink, watch = watched

    def tool(*args: object, **kwargs: object) -> None:
        with open(world.root / W, "r+b") as fh:  # not what the call said it would touch
            fh.seek(10)
            fh.write(b"sneaky")
        wait_for(sink, lambda a: a.rule == "watch-modified")

    call = ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"},
                    call_id="call-running-1")  # fmt: skip
    watch.guard.run(call, tool)
    alert = wait_for(sink, lambda a: a.rule == "watch-modified")
    assert (alert.agent, alert.tool, alert.call_id) == (AGENT, "read_file", "call-running-1")
    assert "while agent-1's call read_file (call-running-1) ran" in alert.message


def test_watch_prints_each_alert_once(world: World, tmp_path: Path) -> None:
    """``peerguard watch``, run as a command, prints a deletion once on the console (stdout and
    stderr together), not once per sink."""
    declare = tmp_path / "declare.yaml"
    declare.write_text(
        "agents: [agent-1, agent-2]\n"
        "assets:\n  - {glob: 'hosts/*/data/agent_2_*', kind: weights, owner: agent-2}\n"
    )
    command = [sys.executable, "-m", "guard.cli", "watch", str(world.root),
               "--declare", str(declare), "--seconds", "4"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        console = ""
        while not console.endswith("Ctrl-C stops\n"):  # the watch is up (after any warning)
            line = proc.stdout.readline()
            assert line, console
            console += line
        (world.root / W).unlink()
        console += proc.stdout.read()
        assert proc.wait(30) == 0
    lines = [line for line in console.splitlines() if "was deleted" in line]
    assert len(lines) == 1, console
    assert lines[0].startswith("[CRITICAL] watch-deleted:")
