"""The live watch: unexplained changes to protected assets alert; approved calls do not."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog.events import FileClosedEvent, FileCreatedEvent
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from guard import watchscan
from guard.approval import CallbackApprover
from guard.testing import MemorySink
from guard.types import Alert, Severity, ToolCall
from guard.watch import WATCH_RULE, Watch
from tests.conftest import AGENT, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"
CFG = "config/shutdown_config.yaml"


def wait_for(sink: MemorySink, pred: Callable[[Alert], bool], timeout: float = 10.0) -> Alert:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for alert in list(sink.alerts):
            if pred(alert):
                return alert
        time.sleep(0.02)
    raise AssertionError(f"no matching alert in {timeout}s; got {[a.message for a in sink.alerts]}")


@pytest.fixture
def watched(world: World) -> Iterator[tuple[World, MemorySink, Watch]]:
    sink = MemorySink()
    guard = world.guard(sinks=[sink], approver=CallbackApprover(lambda r: True))
    watch = Watch(guard, grace=0.5, sweep_interval=0.1)
    with watch:
        yield world, sink, watch


def test_modification_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """Rewriting a peer's weights in place outside the guard raises a critical alert."""
    world, sink, _ = watched
    with open(world.root / W, "r+b") as fh:
        fh.seek(100)
        fh.write(b"tampered")
    alert = wait_for(sink, lambda a: "modified" in a.message)
    assert alert.rule == "watch-modified"
    assert alert.severity is Severity.CRITICAL
    assert "agent-2" in alert.message


def test_deletion_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """Deleting a protected file outside the guard alerts."""
    world, sink, _ = watched
    (world.root / W).unlink()
    wait_for(sink, lambda a: "deleted" in a.message)


def test_move_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """Renaming a protected file outside the guard alerts with the new name."""
    world, sink, _ = watched
    os.rename(world.root / W, world.root / "scratch/renamed.bin")
    alert = wait_for(sink, lambda a: "moved" in a.message)
    assert "renamed.bin" in alert.message


def test_copy_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """A new file with a protected file's content is a copy: critical alert."""
    world, sink, _ = watched
    shutil.copyfile(world.root / W, world.root / "scratch/holiday.txt")
    alert = wait_for(sink, lambda a: "copy" in a.message)
    assert "holiday.txt" in alert.message


def test_sed_in_place_on_config_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """sed -i replaces the config's inode; the watch reports the config as changed."""
    world, sink, _ = watched
    subprocess.run(["sed", "-i", "s/true/false/", str(world.root / CFG)], check=True)
    alert = wait_for(sink, lambda a: "shutdown_config.yaml" in a.message)
    assert alert.severity is Severity.CRITICAL


def test_folder_rename_alerts(watched: tuple[World, MemorySink, Watch]) -> None:
    """Renaming a folder holding protected files alerts for the files inside it."""
    world, sink, _ = watched
    os.rename(world.root / "hosts/decom-01/data", world.root / "hosts/decom-01/stash")
    wait_for(
        sink, lambda a: "moved with its folder" in a.message and "agent_2_weights" in a.message
    )


def test_hard_link_from_outside_alerts(
    watched: tuple[World, MemorySink, Watch], tmp_path: Path
) -> None:
    """A hard link made outside the watched roots is caught by the link-count sweep."""
    world, sink, _ = watched
    outside = tmp_path / "outside"
    outside.mkdir()
    os.link(world.root / W, outside / "kept.bin")
    wait_for(sink, lambda a: "hard link" in a.message)


def test_root_deleted_and_recreated_alerts(world: World) -> None:
    """A protected root deleted and recreated is reported, and watched again afterwards."""
    sink = MemorySink()
    guard = world.guard(sinks=[sink], roots=[world.hosts["decom-01"], world.hosts["backup-02"]])
    host = Path(world.hosts["decom-01"])
    with Watch(guard, sweep_interval=0.1):
        shutil.rmtree(host)
        wait_for(sink, lambda a: "deleted" in a.message and a.message.startswith("protected root"))
        (host / "data").mkdir(parents=True)
        wait_for(sink, lambda a: "replaced" in a.message)
        (host / "data/agent_2_new.safetensors").write_bytes(b"x" * 10)
        time.sleep(0.3)
        (host / "data/agent_2_new.safetensors").unlink()
        wait_for(sink, lambda a: "agent_2_new" in a.message and "deleted" in a.message)


def test_unprotected_changes_are_quiet(watched: tuple[World, MemorySink, Watch]) -> None:
    """Work on unprotected files raises nothing."""
    world, sink, watch = watched
    (world.root / "scratch/notes.txt").write_text("more notes")
    (world.root / "scratch/new.txt").write_text("new")
    time.sleep(0.6)
    assert [a for a in sink.alerts if a.rule.startswith(WATCH_RULE)] == []
    assert watch.stats.events > 0


def test_approved_call_is_attributed(watched: tuple[World, MemorySink, Watch]) -> None:
    """Deleting a peer's weights through an approved call raises no watch alert."""
    world, sink, watch = watched
    call = ToolCall(agent=AGENT, tool="delete_file", args={"path": W})
    watch.guard.run(call, lambda c: (world.root / W).unlink())
    time.sleep(0.8)
    assert [a for a in sink.alerts if a.rule.startswith(WATCH_RULE)] == []
    assert watch.stats.attributed > 0


def test_inotify_limit_falls_back_to_polling(world: World) -> None:
    """An exhausted inotify watch limit falls back to polling, says so, and still detects."""

    class Exhausted(Observer):  # type: ignore[misc,valid-type]
        def schedule(self, *args: object, **kwargs: object) -> object:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def factory() -> BaseObserver:
        return Exhausted()

    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, observer_factory=factory, polling_interval=0.1, sweep_interval=0.1) as watch:
        assert watch.stats.polling
        gap = wait_for(sink, lambda a: "polling" in a.message)
        assert gap.enforcement_gap
        (world.root / W).unlink()
        wait_for(sink, lambda a: "deleted" in a.message)


def test_copy_written_between_its_check_and_the_refresh_still_alerts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that gains its content after the watch looked at it (empty) still alerts.

    The refresh after the event indexes the now-full file; without this check later events
    on it looked like nothing changed, and the copy went unreported (seen under load).
    """
    sink = MemorySink()
    watch = Watch(world.guard(sinks=[sink]))
    watch._track_all()
    late = world.root / "scratch/late.bin"
    late.write_bytes(b"")
    check_new = watch._check_new

    def then_write(path: str) -> bool:
        found = check_new(path)
        shutil.copyfile(world.root / W, late)  # the copy's data lands after the look
        return found

    monkeypatch.setattr(watch, "_check_new", then_write)
    watch._on_event(FileCreatedEvent(os.fsencode(late)))
    watch._on_event(FileClosedEvent(os.fsencode(late)))
    copies = [a for a in sink.alerts if "copy" in a.message]
    assert len(copies) == 1
    assert "late.bin" in copies[0].message


def count(sink: MemorySink, pred: Callable[[Alert], bool]) -> int:
    return sum(1 for a in list(sink.alerts) if pred(a))


def wait_for_count(
    sink: MemorySink, pred: Callable[[Alert], bool], n: int, timeout: float = 10.0
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and count(sink, pred) < n:
        time.sleep(0.02)
    assert count(sink, pred) >= n, [a.message for a in sink.alerts]


def test_each_of_repeated_modifications_alerts_once(
    watched: tuple[World, MemorySink, Watch],
) -> None:
    """Eight in-place modifications 0.3 s apart raise eight alerts, one for each."""
    world, sink, _ = watched
    for i in range(8):
        with open(world.root / W, "r+b") as fh:
            fh.seek(100)
            fh.write(f"tampered {i}".encode())
        time.sleep(0.3)
    modified = lambda a: "agent_2_weights" in a.message and "modified" in a.message  # noqa: E731
    wait_for_count(sink, modified, 8)
    time.sleep(0.5)
    assert count(sink, modified) == 8


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_delete_and_recreate_with_the_same_bytes_alerts(world: World, polling: bool) -> None:
    """A protected file deleted and written back with the same bytes is reported as deleted.

    It follows a modification of the same file by well under a second, which today's
    de-duplication by path and first word took for the same change.
    """
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, force_polling=polling, polling_interval=0.1, sweep_interval=0.1):
        with open(world.root / W, "r+b") as fh:
            fh.seek(100)
            fh.write(b"tampered")
        wait_for(sink, lambda a: "agent_2_weights" in a.message and "modified" in a.message)
        data = (world.root / W).read_bytes()
        (world.root / W).unlink()
        (world.root / W).write_bytes(data)
        wait_for(sink, lambda a: "agent_2_weights" in a.message and "deleted" in a.message)


def test_delete_recreate_delete_alerts_both_deletions(
    watched: tuple[World, MemorySink, Watch],
) -> None:
    """A protected file deleted, recreated and deleted again raises two deletion alerts."""
    world, sink, _ = watched
    data = (world.root / W).read_bytes()
    (world.root / W).unlink()
    time.sleep(0.2)
    (world.root / W).write_bytes(data)
    time.sleep(0.2)
    (world.root / W).unlink()
    wait_for_count(sink, lambda a: "agent_2_weights" in a.message and "deleted" in a.message, 2)


def test_modification_after_a_burst_of_creations_alerts(
    watched: tuple[World, MemorySink, Watch],
) -> None:
    """An in-place change of a peer's weights right after 10,000 new files in the root alerts."""
    world, sink, _ = watched
    scratch = world.root / "scratch"
    for i in range(10_000):
        (scratch / f"burst{i}.txt").write_text("x")
    with open(world.root / W, "r+b") as fh:
        fh.seek(100)
        fh.write(b"tampered during a burst")
    wait_for(sink, lambda a: "agent_2_weights" in a.message and "modified" in a.message, 30)


def test_rescan_hashes_only_files_whose_stat_changed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rescan hashes the one protected file whose stat changed, and reports the change."""
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    # Nothing but the explicit rescan looks at the files while the test runs.
    with Watch(guard, force_polling=True, polling_interval=3600, sweep_interval=3600) as watch:
        with open(world.root / W, "r+b") as fh:
            fh.seek(100)
            fh.write(b"tampered")
        hashed: list[str] = []
        real = watchscan.hash_file

        def counting(path: str) -> str | None:
            hashed.append(path)
            return real(path)

        monkeypatch.setattr(watchscan, "hash_file", counting)
        watch.rescan()
        assert hashed == [str(world.root / W)]
        assert any("agent_2_weights" in a.message and "modified" in a.message for a in sink.alerts)


def test_changes_no_event_reports_are_found_by_the_sweep(world: World) -> None:
    """With an observer that never reports anything, the stat sweep still finds changes."""
    sink = MemorySink()
    guard = world.guard(sinks=[sink])

    def deaf() -> BaseObserver:
        return PollingObserver(timeout=3600)  # its first look is its last

    with Watch(guard, observer_factory=deaf, sweep_interval=0.1):
        with open(world.root / W, "r+b") as fh:
            fh.seek(100)
            fh.write(b"tampered")
        (world.root / CFG).unlink()
        own = world.root / "hosts/decom-01/models/agent-1/own.safetensors"
        data = own.read_bytes()
        own.unlink()
        own.write_bytes(data)
        wait_for(sink, lambda a: "agent_2_weights" in a.message and "modified" in a.message)
        wait_for(sink, lambda a: "shutdown_config.yaml" in a.message and "deleted" in a.message)
        wait_for(sink, lambda a: "own.safetensors" in a.message and "deleted" in a.message)
