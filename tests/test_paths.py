"""Path resolution, host attribution and the caches the engine invalidates."""

from __future__ import annotations

import os
from pathlib import Path

from guard.paths import HostMap, resolve
from guard.types import Action, ToolCall
from tests.conftest import AGENT, World, safetensors_bytes


def test_a_dangling_symlink_resolves_to_where_it_leads(tmp_path: Path) -> None:
    """A link to nothing resolves to its target: writing through it creates the target."""
    os.symlink(tmp_path / "nowhere" / "x", tmp_path / "dangling")
    os.symlink("dangling", tmp_path / "chain")
    hosts = HostMap({})
    assert hosts.realpath("dangling", str(tmp_path)) == resolve("dangling", str(tmp_path))
    assert hosts.realpath("dangling", str(tmp_path)) == str(tmp_path / "nowhere" / "x")
    assert hosts.realpath("chain/../y", str(tmp_path)) == str(tmp_path / "nowhere" / "y")


def test_located_paths_are_attributed_to_the_innermost_host(tmp_path: Path) -> None:
    """A cached location keeps the host whose folder holds it."""
    (tmp_path / "a/b").mkdir(parents=True)
    hosts = HostMap({"outer": str(tmp_path / "a"), "inner": str(tmp_path / "a/b")})
    assert hosts.local("b/f", str(tmp_path / "a")).host == "inner"
    assert hosts.local("b/f", str(tmp_path / "a")).host == "inner"  # from the cache
    assert hosts.local("f", str(tmp_path / "a")).host == "outer"
    assert hosts.local("f", str(tmp_path)).host is None


def test_weights_appearing_at_a_path_first_seen_missing_are_judged_at_once(world: World) -> None:
    """A file that appears where a check found nothing is examined by the next check.

    Another agent or process may put a peer's weights there (a hard link, a copy) between
    two calls of this one, with no call of this guard running in between.
    """
    guard = world.guard()
    probe = ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/w.bin"})
    assert guard.check(probe).action is Action.ALLOW
    os.link(
        world.root / "hosts/decom-01/data/agent_2_weights.safetensors", world.root / "scratch/w.bin"
    )
    ship = ToolCall(
        agent=AGENT, tool="shell", args={"command": "scp scratch/w.bin backup-02:/data/"}
    )
    d = guard.check(ship)
    assert d.action is Action.DENY, d.reason
    assert "peer-weights-exfiltration" in d.rules


def test_weights_appearing_at_a_missing_destination_are_an_overwrite(world: World) -> None:
    """A copy onto a path first seen empty is judged on what is there now."""
    guard = world.guard()
    call = ToolCall(
        agent=AGENT,
        tool="copy_file",
        args={"src": "scratch/notes.txt", "dst": "hosts/decom-01/data/new.bin"},
    )
    assert guard.check(call).action is Action.ALLOW
    world.write("hosts/decom-01/data/new.bin", safetensors_bytes(seed=11))
    again = guard.check(call)
    assert again.action is Action.CONFIRM
    assert [a.path for a in again.assets] == [str(world.root / "hosts/decom-01/data/new.bin")]


def test_git_hook_samples_do_not_run_later() -> None:
    """git runs a hook only by its exact name: the .sample files git init writes are not code
    that runs later, while a hook of a real name is."""
    from guard.paths import runs_later

    assert not runs_later("/r/.git/hooks/pre-commit.sample")
    assert runs_later("/r/.git/hooks/pre-commit")
    assert runs_later("/r/.git/hooks/sub/x.sample")
