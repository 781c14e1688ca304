"""Live watch: the second line, catching changes to protected assets that no approved call made.

The decision engine judges calls before they run; the watch does not trust it. It observes the
protected roots (``watchdog``: inotify where it can, polling where it must) and raises an alert
when a protected asset is modified, deleted, moved, replaced (``sed -i`` writes a temp file and
moves it over the target) or copied (a new file whose hash is a protected file's), unless the
change belongs to a call the guard let run. Attribution is by path: while a call runs, and for
a short grace period after, events on the paths it touched (and below folders it touched
whole, and temp files beside the files it edits) are expected.

Two things inotify does not report are swept for instead: a hard link to a protected file made
from outside the watched roots (its link count rises; a sweep stats protected files), and a
protected root deleted and recreated (the sweep notices the new inode and re-establishes the
watch). An exhausted inotify watch limit falls back to polling, and says so in an alert.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from guard.exceptions import missing_extra

try:
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer
    from watchdog.observers.api import BaseObserver, ObservedWatch
    from watchdog.observers.polling import PollingObserver
except ImportError as exc:  # the extra is not installed
    raise missing_extra("watch", "Watch", exc) from exc

from guard.assets import AssetInfo, sha256_file
from guard.engine import Guard
from guard.types import Alert, AssetKind, Decision, Severity

WATCH_RULE = "watch"
_LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE, errno.ENFILE})


@dataclass
class _Expected:
    paths: frozenset[str]
    folders: tuple[str, ...]
    until: float = float("inf")


@dataclass
class _Tracked:
    ino: int
    nlink: int
    digest: str | None


@dataclass
class WatchStats:
    """What the watch has seen, for tests and status output."""

    events: int = 0
    attributed: int = 0
    alerts: int = 0
    polling: bool = False
    recent: list[Alert] = field(default_factory=list)


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.watch._on_event(event)
        except Exception as exc:  # the observer thread must survive anything
            self.watch._emit(
                Severity.ERROR,
                f"the watch failed to process {event.event_type} {event.src_path!r}: {exc!r}",
                gap=True,
            )


class Watch:
    """Observe a guard's protected roots and alert on unexplained changes to its assets.

    Args:
        guard: The guard whose asset registry, roots and sinks the watch uses. The watch
            registers itself with it, so calls the guard runs are attributed.
        grace: Seconds after a call ends during which its paths' events are still expected.
        sweep_interval: Seconds between sweeps for new hard links and replaced roots.
        force_polling: Use polling even where inotify is available.
        polling_interval: Seconds between polls when polling.
        observer_factory: Builds the inotify observer (tests inject failures here).
    """

    def __init__(
        self,
        guard: Guard,
        *,
        grace: float = 1.0,
        sweep_interval: float = 0.25,
        force_polling: bool = False,
        polling_interval: float = 0.25,
        observer_factory: Callable[[], BaseObserver] = Observer,
    ) -> None:
        self.guard = guard
        self.grace = grace
        self.sweep_interval = sweep_interval
        self.polling_interval = polling_interval
        self.force_polling = force_polling
        self._observer_factory = observer_factory
        self.stats = WatchStats()
        self._lock = threading.RLock()
        self._expected: dict[str, _Expected] = {}
        self._tracked: dict[str, _Tracked] = {}
        self._roots: dict[str, tuple[int, int] | None] = {}
        self._last_alert: dict[tuple[str, str], float] = {}
        self._observer: BaseObserver | None = None
        self._watches: dict[str, ObservedWatch] = {}
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._handler = _Handler(self)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Watch:
        """Start observing (idempotent). Returns ``self``."""
        if self._observer is not None:
            return self
        self.guard.add_listener(self)
        self._track_all()
        self._roots = {r: _root_id(r) for r in self.guard.roots}
        self._observer = self._start_observer()
        self._stop.clear()
        self._sweeper = threading.Thread(
            target=self._sweep_loop, name="peerguard-watch-sweep", daemon=True
        )
        self._sweeper.start()
        return self

    def stop(self) -> None:
        """Stop observing and wait for the threads to end."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self.guard.remove_listener(self)

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_observer(self) -> BaseObserver:
        if not self.force_polling:
            observer = self._observer_factory()
            try:
                for root in self._roots:
                    if os.path.isdir(root):
                        self._watches[root] = observer.schedule(self._handler, root, recursive=True)
                observer.start()
                return observer
            except OSError as exc:
                if exc.errno not in _LIMIT_ERRNOS:
                    raise
                observer.unschedule_all()
                self._watches.clear()
                self._emit(
                    Severity.WARNING,
                    f"inotify limit reached ({exc.strerror}); the watch falls back to polling every "
                    f"{self.polling_interval}s, so detection is slower",
                    gap=True,
                )
        self.stats.polling = True
        polling = PollingObserver(timeout=self.polling_interval)
        for root in self._roots:
            if os.path.isdir(root):
                self._watches[root] = polling.schedule(self._handler, root, recursive=True)
        polling.start()
        return polling

    # ------------------------------------------------------------------ attribution

    def before_execute(self, decision: Decision) -> None:
        """The guard is about to run ``decision``'s call: expect events on what it touches."""
        paths: set[str] = set()
        folders: list[str] = []
        for eff in decision.effects:
            for loc in (eff.target, eff.dest):
                if loc is None or loc.path is None:
                    continue
                paths.add(loc.path)
                # Editors write a temp file beside the target and move it over it.
                folders.append(os.path.dirname(loc.path))
                if eff.recursive or os.path.isdir(loc.path):
                    folders.append(loc.path)
        with self._lock:
            self._expected[decision.call_id] = _Expected(frozenset(paths), tuple(folders))

    def after_execute(self, decision: Decision) -> None:
        """The call ended: keep expecting its events for the grace period."""
        with self._lock:
            exp = self._expected.get(decision.call_id)
            if exp is not None:
                exp.until = time.monotonic() + self.grace

    def _attributed(self, path: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for call_id in [c for c, e in self._expected.items() if e.until < now]:
                del self._expected[call_id]
            for exp in self._expected.values():
                if path in exp.paths:
                    return True
                for folder in exp.folders:
                    if path == folder or path.startswith(folder.rstrip("/") + "/"):
                        return True
        return False

    # ------------------------------------------------------------------ events

    def _known(self, path: str) -> AssetInfo | None:
        index = self.guard.assets
        return index.globs.lookup(path) or index.known(path)

    def _on_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        self.stats.events += 1
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        touched = [p for p in (src, dest) if p]
        if all(self._attributed(p) for p in touched):
            self.stats.attributed += 1
            self._refresh(touched)
            return
        untracked = [p for p in touched if p not in self._tracked]
        alerted: set[str] = set()
        if event.is_directory:
            self._on_folder_event(kind, src, dest)
        elif kind == "deleted":
            info = self._known(src)
            if info is not None:
                self._asset_alert(info, src, "was deleted outside any approved call")
        elif kind == "moved":
            info = self._known(src)
            if info is not None:
                self._asset_alert(info, src, f"was moved to {dest} outside any approved call")
            self._check_changed(
                dest, "was replaced (a file moved over it) outside any approved call"
            )
            if self._check_new(dest):
                alerted.add(dest)
        elif kind == "created":
            if self._check_new(src):
                alerted.add(src)
        elif src in self._tracked:  # modified, closed (after write), attrib
            self._check_changed(src, "was modified outside any approved call")
        else:
            # A new file is often created empty and written after: judge it once it has content.
            if self._check_new(src):
                alerted.add(src)
        self._refresh(touched)
        # The file may have been written between its check above and the refresh, which then
        # indexed it as an asset and started tracking it: later events on it would look like
        # nothing changed. A path this refresh began to track is judged as new here.
        for path in untracked:
            info = self._known(path) if path in self._tracked else None
            if info is not None and path not in alerted:
                self._alert_new(info, path)

    def _on_folder_event(self, kind: str, src: str, dest: str) -> None:
        if kind not in ("deleted", "moved"):
            return
        for path, info in self.guard.assets.under(src):
            verb = (
                f"was moved with its folder to {dest}"
                if kind == "moved"
                else "was deleted with its folder"
            )
            self._asset_alert(info, path, verb + " outside any approved call")

    def _check_changed(self, path: str, what: str) -> None:
        info = self._known(path)
        tracked = self._tracked.get(path)
        if info is None or tracked is None:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        if st.st_nlink > tracked.nlink and st.st_ino == tracked.ino:
            self._asset_alert(
                info, path, f"gained a hard link ({tracked.nlink} -> {st.st_nlink}): a copy"
            )
        try:
            digest = sha256_file(path)
        except OSError:
            return
        if tracked.digest is not None and digest != tracked.digest:
            self._asset_alert(info, path, what)

    def _check_new(self, path: str) -> bool:
        """Alert if ``path``, not tracked yet, is a copy or new weights; True if it alerted."""
        if not path or path in self._tracked:
            return False
        info = self.guard.assets.lookup(path)
        return info is not None and self._alert_new(info, path)

    def _alert_new(self, info: AssetInfo, path: str) -> bool:
        if info.source.startswith(("same content", "hard link")):
            self._asset_alert(
                info,
                path,
                f"appeared as a copy ({info.source}) outside any approved call",
                copy=True,
            )
            return True
        if info.kind is AssetKind.WEIGHTS and info.source.startswith("content:"):
            self._asset_alert(
                info, path, "new weights file appeared outside any approved call", copy=True
            )
            return True
        return False

    def _refresh(self, paths: list[str]) -> None:
        self.guard.hosts.invalidate()
        self.guard.assets.refresh(paths)
        for path in paths:
            self._track(path)

    # ------------------------------------------------------------------ sweep

    def _track(self, path: str) -> None:
        if self._known(path) is None:
            self._tracked.pop(path, None)
            return
        try:
            st = os.stat(path)
        except OSError:
            self._tracked.pop(path, None)
            return
        self._tracked[path] = _Tracked(st.st_ino, st.st_nlink, self.guard.assets.digest(path))

    def _track_all(self) -> None:
        self._tracked.clear()
        for root in self.guard.roots:
            for path, _info in self.guard.assets.under(root):
                self._track(path)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            try:
                self._sweep()
            except Exception as exc:  # keep sweeping; say that a sweep failed
                self._emit(Severity.ERROR, f"the watch sweep failed: {exc!r}", gap=True)

    def _sweep(self) -> None:
        for root, ident in list(self._roots.items()):
            now_id = _root_id(root)
            if now_id == ident:
                continue
            self._roots[root] = now_id
            if now_id is None:
                self._emit(Severity.CRITICAL, f"protected root {root} was deleted")
                continue
            self._emit(
                Severity.CRITICAL,
                f"protected root {root} was replaced; the watch is re-established on it",
            )
            if self._observer is not None:
                old = self._watches.pop(root, None)
                if old is not None:
                    self._observer.unschedule(old)
                self._watches[root] = self._observer.schedule(self._handler, root, recursive=True)
            self.guard.assets.scan()
            self._track_all()
        for path, tracked in list(self._tracked.items()):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_ino == tracked.ino and st.st_nlink > tracked.nlink:
                info = self._known(path)
                if info is not None and not self._attributed(path):
                    self._asset_alert(
                        info, path, f"gained a hard link ({tracked.nlink} -> {st.st_nlink}): a copy"
                    )
                tracked.nlink = st.st_nlink

    # ------------------------------------------------------------------ alerts

    def _asset_alert(self, info: AssetInfo, path: str, what: str, *, copy: bool = False) -> None:
        whose = f"{info.owner}'s" if info.owner else "unowned"
        severity = Severity.CRITICAL if copy or info.kind is not AssetKind.OTHER else Severity.ERROR
        self._emit(
            severity, f"{whose} {info.kind.value} {path} {what}", key=(path, what.split(" ")[0])
        )

    def _emit(
        self,
        severity: Severity,
        message: str,
        *,
        gap: bool = False,
        key: tuple[str, str] | None = None,
    ) -> None:
        if key is not None:
            now = time.monotonic()
            with self._lock:
                if now - self._last_alert.get(key, -1e9) < 1.0:
                    return  # one change raises several events; alert once
                self._last_alert[key] = now
        alert = Alert(severity=severity, rule=WATCH_RULE, message=message, enforcement_gap=gap)
        self.stats.alerts += 1
        self.stats.recent.append(alert)
        del self.stats.recent[:-1000]
        self.guard.sinks.alert(alert)


def _root_id(root: str) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


__all__ = ["WATCH_RULE", "Watch", "WatchStats"]
