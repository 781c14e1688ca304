"""Path resolution, host attribution and the caches the engine invalidates."""

from __future__ import annotations

import os
from pathlib import Path

from guard.paths import HostMap, resolve
from guard.types import Action, ToolCall
from tests.conftest import AGENT, World, safetensors_bytes


def test_resolution_remembers_a_missing_file_until_invalidated(tmp_path: Path) -> None:
    """A path found missing is reported missing until invalidate(); then it is looked at again."""
    hosts = HostMap({})
    path = hosts.realpath("new.bin", str(tmp_path))
    assert path == str(tmp_path / "new.bin")
    assert hosts.missing(path)
    (tmp_path / "new.bin").write_bytes(b"x")
    assert hosts.missing(path)  # cached: nothing was invalidated
    hosts.invalidate()
    assert hosts.realpath("new.bin", str(tmp_path)) == path
    assert not hosts.missing(path)


def test_an_existing_file_or_unasked_path_is_not_missing(tmp_path: Path) -> None:
    """Only a resolution that found nothing marks a path missing."""
    (tmp_path / "here.txt").write_text("x")
    hosts = HostMap({})
    here = hosts.realpath("here.txt", str(tmp_path))
    assert not hosts.missing(here)
    assert not hosts.missing(str(tmp_path / "never-asked"))


def test_a_dangling_symlink_resolves_to_its_name_and_is_missing(tmp_path: Path) -> None:
    """A link to nothing resolves as written (the kernel would create the link's name)."""
    os.symlink(tmp_path / "nowhere" / "x", tmp_path / "dangling")
    hosts = HostMap({})
    path = hosts.realpath("dangling", str(tmp_path))
    assert path == resolve("dangling", str(tmp_path))
    assert hosts.missing(path)


def test_located_paths_are_attributed_to_the_innermost_host(tmp_path: Path) -> None:
    """A cached location keeps the host whose folder holds it."""
    (tmp_path / "a/b").mkdir(parents=True)
    hosts = HostMap({"outer": str(tmp_path / "a"), "inner": str(tmp_path / "a/b")})
    assert hosts.local("b/f", str(tmp_path / "a")).host == "inner"
    assert hosts.local("b/f", str(tmp_path / "a")).host == "inner"  # from the cache
    assert hosts.local("f", str(tmp_path / "a")).host == "outer"
    assert hosts.local("f", str(tmp_path)).host is None


def test_weights_appearing_at_a_missing_destination_count_after_invalidate(world: World) -> None:
    """A copy onto a path first seen empty is judged anew once the guard's caches are dropped.

    The engine drops them after every call it lets run, and a live watch on every change, so
    an overwrite of weights that appeared in between is not let through as a plain copy.
    """
    guard = world.guard()
    call = ToolCall(
        agent=AGENT,
        tool="copy_file",
        args={"src": "scratch/notes.txt", "dst": "hosts/decom-01/data/new.bin"},
    )
    assert guard.check(call).action is Action.ALLOW
    world.write("hosts/decom-01/data/new.bin", safetensors_bytes(seed=11))
    guard.hosts.invalidate()
    again = guard.check(call)
    assert again.action is Action.CONFIRM
    assert [a.path for a in again.assets] == [str(world.root / "hosts/decom-01/data/new.bin")]
