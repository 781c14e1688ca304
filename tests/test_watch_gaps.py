"""The live watch where events can be lost: it says so (enforcement gap) and still finds changes.

Real inotify throughout: a watch process stopped while its queue overflows, a watch process in
a user namespace of its own whose inotify watch limit is lowered, and watchdog threads that die.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from watchdog.observers import inotify as wd_inotify
from watchdog.observers import polling as wd_polling
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
from watchdog.observers.inotify_c import InotifyFD
from watchdog.utils.dirsnapshot import DirectorySnapshot

from guard.testing import MemorySink
from guard.watch import Watch
from tests.conftest import World
from tests.test_watch import wait_for

W = "hosts/decom-01/data/agent_2_weights.safetensors"
REPO = Path(__file__).resolve().parent.parent


class Child:
    """A watch process (``tests/watch_child.py``) and the alerts it prints."""

    def __init__(self, world: World, *, prefix: tuple[str, ...] = (), **spec: Any) -> None:
        spec.update(
            root=str(world.root),
            hosts=world.hosts,
            declarations=world.declarations.model_dump(mode="json"),
        )
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "tests.watch_child", json.dumps(spec)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready: dict[str, Any] = {}
        self.alerts: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            record = json.loads(line)
            if record.get("ready"):
                self.ready = record
            else:
                self.alerts.append(record)

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not self.ready and time.monotonic() < end and self.proc.poll() is None:
            time.sleep(0.05)
        assert self.ready, f"the watch process did not start; exit status {self.proc.poll()}"

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for alert in list(self.alerts):
                if pred(alert):
                    return alert
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no matching alert in {timeout}s; got {self.alerts}")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def child_factory() -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def make(world: World, **kwargs: Any) -> Child:
        child = Child(world, **kwargs)
        children.append(child)
        child.wait_ready()
        return child

    yield make
    for child in children:
        child.close()


def test_queue_overflow_raises_a_gap_and_a_rescan_finds_what_was_lost(
    world: World, child_factory: Callable[..., Child]
) -> None:
    """A watch whose inotify queue overflowed reports a gap, and still finds a change and a copy."""
    child = child_factory(world)
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    scratch = world.root / "scratch"
    os.kill(child.proc.pid, signal.SIGSTOP)  # its reader cannot drain the kernel queue now
    try:
        # Each new file queues at least three events (create, open, close): the queue overflows.
        for i in range(queued // 3 + 1000):
            (scratch / f"burst{i}.txt").write_text("x")
        with open(world.root / W, "r+b") as fh:
            fh.seek(100)
            fh.write(b"tampered while events were lost")
        shutil.copyfile(world.root / W, scratch / "stash.bin")
    finally:
        os.kill(child.proc.pid, signal.SIGCONT)
    gap = child.wait_for(lambda a: bool(a.get("gap")) and "lost" in a["message"])
    assert "rescan" in gap["message"]
    child.wait_for(lambda a: "agent_2_weights" in a["message"] and "modified" in a["message"])
    child.wait_for(lambda a: "stash.bin" in a["message"] and "copy" in a["message"])


def test_watch_limit_reached_at_runtime_falls_back_to_polling(
    world: World, child_factory: Callable[..., Child]
) -> None:
    """New folders past the inotify watch limit raise a gap; polling then finds a copy in one."""
    folders = sum(1 for _ in os.walk(world.root))
    machine_limits = [
        Path(p).read_text()
        for p in ("/proc/sys/fs/inotify/max_user_watches", "/proc/sys/user/max_inotify_watches")
    ]
    # A user namespace of its own has its own inotify limits: lower them there only.
    child = child_factory(
        world,
        prefix=("unshare", "--user", "--map-root-user"),
        max_user_watches=folders + 1,
    )
    assert child.ready["polling"] is False
    deep = world.root / "scratch/a/b/c/d"
    deep.mkdir(parents=True)
    gap = child.wait_for(lambda a: bool(a.get("gap")) and "polling" in a["message"])
    assert "scratch/a/b" in gap["message"]
    shutil.copyfile(world.root / W, deep / "kept.bin")
    child.wait_for(lambda a: "kept.bin" in a["message"] and "copy" in a["message"])
    # The machine's own limits are untouched: lowering them would starve every other watch.
    assert [
        Path(p).read_text()
        for p in ("/proc/sys/fs/inotify/max_user_watches", "/proc/sys/user/max_inotify_watches")
    ] == machine_limits


def test_unable_to_watch_a_new_folder_falls_back_to_polling(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder watchdog cannot watch (ENOSPC) raises a gap and polling finds changes in it."""
    real_add = InotifyFD.add_callback

    def add_callback(self: InotifyFD, path: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"/unwatched" in path:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real_add(self, path, *args, **kwargs)

    monkeypatch.setattr(InotifyFD, "add_callback", add_callback)
    logger = wd_inotify.logger
    handlers, level = list(logger.handlers), logger.level
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, polling_interval=0.1, sweep_interval=0.1) as watch:
        assert not watch.stats.polling
        (world.root / "scratch/unwatched/inner").mkdir(parents=True)
        gap = wait_for(sink, lambda a: a.enforcement_gap and "polling" in a.message)
        assert "unwatched" in gap.message
        assert watch.stats.polling
        shutil.copyfile(world.root / W, world.root / "scratch/unwatched/inner/kept.bin")
        wait_for(sink, lambda a: "kept.bin" in a.message and "copy" in a.message)
    assert logger.handlers == handlers
    assert logger.level == level


class _Dying:
    """Lets a test kill one watchdog thread of the next observer it builds."""

    def __init__(self) -> None:
        self.now = threading.Event()

    def check(self) -> None:
        if self.now.is_set():
            raise RuntimeError("this watchdog thread dies")


def _observer_with_dying(which: str, dying: _Dying, monkeypatch: pytest.MonkeyPatch) -> Any:
    if which == "reader":

        class DyingFD(InotifyFD):
            def _read_event_buffer(self, *args: Any, **kwargs: Any) -> bytes:
                dying.check()
                return super()._read_event_buffer(*args, **kwargs)

        monkeypatch.setattr(wd_inotify, "InotifyFD", DyingFD)
        return InotifyObserver

    class DyingEmitter(InotifyEmitter):
        def queue_events(self, timeout: float, *, full_events: bool = False) -> None:
            dying.check()
            super().queue_events(timeout, full_events=full_events)

    class DyingObserver(InotifyObserver):
        def __init__(self) -> None:
            super().__init__()
            if which == "emitter":
                self._emitter_class = DyingEmitter

        def dispatch_events(self, event_queue: Any) -> None:
            if which == "observer":
                dying.check()
            super().dispatch_events(event_queue)

    return DyingObserver


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("which", ["emitter", "observer", "reader"])
def test_a_dead_watchdog_thread_raises_a_gap_and_polling_takes_over(
    world: World, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watchdog thread that dies is noticed: gap alert, rescan, and polling finds a later copy."""
    dying = _Dying()
    factory: Callable[[], BaseObserver] = _observer_with_dying(which, dying, monkeypatch)
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, observer_factory=factory, polling_interval=0.1, sweep_interval=0.1) as watch:
        dying.now.set()
        (world.root / "scratch/wake.txt").write_text("an event wakes the thread up to die")
        gap = wait_for(sink, lambda a: a.enforcement_gap and "polling" in a.message)
        assert "stopped" in gap.message
        assert watch.stats.polling
        shutil.copyfile(world.root / W, world.root / "scratch/kept.bin")
        wait_for(sink, lambda a: "kept.bin" in a.message and "copy" in a.message)


def test_failing_polling_snapshots_raise_a_gap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polling that cannot take a snapshot of a root (watchdog only logs it) raises a gap."""
    failing = threading.Event()
    real = DirectorySnapshot  # what the polling emitter calls, by that module's global name

    def snapshot(*args: Any, **kwargs: Any) -> Any:
        if failing.is_set():
            raise OSError(errno.EIO, "Input/output error")
        return real(*args, **kwargs)

    monkeypatch.setattr(wd_polling, "DirectorySnapshot", snapshot)
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, force_polling=True, polling_interval=0.1, sweep_interval=0.1):
        failing.set()
        gap = wait_for(sink, lambda a: a.enforcement_gap and "snapshot" in a.message)
        assert str(world.root) in gap.message


def test_falling_far_behind_raises_a_gap(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A watch with more events waiting than max_backlog says its alerts are late."""
    handle = Watch._handle

    def slow(self: Watch, *args: Any) -> None:
        time.sleep(0.002)
        handle(self, *args)

    monkeypatch.setattr(Watch, "_handle", slow)
    sink = MemorySink()
    guard = world.guard(sinks=[sink])
    with Watch(guard, sweep_interval=0.05, max_backlog=100):
        for i in range(300):
            (world.root / f"scratch/busy{i}.txt").write_text("x")
        gap = wait_for(sink, lambda a: a.enforcement_gap and "behind" in a.message)
        assert "rescans" in gap.message
