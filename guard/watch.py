"""Live watch: the second line, catching changes to protected assets that no approved call made.

The decision engine judges calls before they run; the watch does not trust it. It observes the
protected roots (``watchdog``: inotify where it can, polling where it must) and raises an alert
when a protected asset is modified, deleted, moved, replaced (``sed -i`` writes a temp file and
moves it over the target) or copied (a new file whose hash is a protected file's), unless the
change belongs to a call the guard let run. Attribution is by path: while a call runs, and for
a short grace period after, events on the paths it touched (and below folders it touched
whole, and temp files beside the files it edits) are expected.

Events are not trusted to arrive either. Every protected file is tracked by a stat key, its
identity (inode and inode generation) and its hash (:mod:`guard.watchscan`), and a sweep stats
them all every ``sweep_interval``: a change that no event explained by the next sweep is judged
from the file itself. The sweep also catches what inotify never reports: a hard link made from
outside the roots (the link count rises) and a protected root deleted and recreated.

Where events may have been lost the watch raises an enforcement-gap alert and rescans the
roots at once (the rescan hashes only files whose stat moved, and looks for new copies): when
inotify's queue overflowed, when the watch falls far behind, when a folder could not be watched
(the watch limit reached at runtime; watchdog only logs that) and when a watchdog thread died.
For the last two it also falls back to polling.

An alert is dropped only when it repeats the last one about the same path: same kind, same
resulting state (the same digest, the same destination), with no new file at that path since.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
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
    from watchdog.utils import BaseThread
except ImportError as exc:  # the extra is not installed
    raise missing_extra("watch", "Watch", exc) from exc

from guard import watchscan
from guard.assets import AssetInfo
from guard.engine import Guard
from guard.facts import this_host
from guard.types import Alert, AlertAsset, AssetKind, Decision, Severity
from guard.watchscan import Tracked, stat_key

WATCH_RULE = "watch"
"""What every watch alert's rule id begins with (``watch-modified``, ...: see
:data:`guard.watchscan.FINDINGS`)."""
_LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE, errno.ENFILE})
_GONE = "gone"
_MEMORY = 10_000  # paths whose last alert is remembered, to drop its repeats


@dataclass
class _Expected:
    paths: frozenset[str]
    folders: tuple[str, ...]
    until: float = float("inf")
    agent: str = ""
    tool: str = ""


@dataclass
class WatchStats:
    """What the watch has seen, for tests and status output."""

    events: int = 0
    attributed: int = 0
    alerts: int = 0
    gaps: int = 0
    rescans: int = 0
    polling: bool = False
    recent: list[Alert] = field(default_factory=list)


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.watch._on_event(event)
        except Exception as exc:  # the observer thread must survive anything
            self.watch._report_gap(
                f"the watch failed to process {event.event_type} {event.src_path!r}: {exc!r}",
                fall_back=False,
            )


class Watch:
    """Observe a guard's protected roots and alert on unexplained changes to its assets.

    Args:
        guard: The guard whose asset registry, roots and sinks the watch uses. The watch
            registers itself with it, so calls the guard runs are attributed.
        grace: Seconds after a call ends during which its paths' events are still expected.
        sweep_interval: Seconds between sweeps (stat of every protected file, roots, threads).
        force_polling: Use polling even where inotify is available.
        polling_interval: Seconds between polls when polling.
        observer_factory: Builds the inotify observer (tests inject failures here).
        max_backlog: Events waiting to be handled past which the watch is too far behind: it
            raises an enforcement-gap alert and rescans.
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
        max_backlog: int = 100_000,
    ) -> None:
        self.guard = guard
        self.grace = grace
        self.sweep_interval = sweep_interval
        self.polling_interval = polling_interval
        self.force_polling = force_polling
        self.max_backlog = max_backlog
        self._observer_factory = observer_factory
        self.stats = WatchStats()
        self._lock = threading.RLock()  # attribution
        self._work = threading.RLock()  # events, sweeps and rescans, one at a time
        self._expected: dict[str, _Expected] = {}
        self._tracked: dict[str, Tracked] = {}
        self._pending: set[str] = set()
        self._last: dict[str, tuple[str, object]] = {}
        self._configs: dict[str, object] = {}  # parsed content of config assets, last seen
        self._roots: dict[str, tuple[int, int] | None] = {}
        self._observer: BaseObserver | None = None
        self._watches: dict[str, ObservedWatch] = {}
        self._reports: list[tuple[str, bool]] = []
        self._reports_lock = threading.Lock()
        self._behind = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._handler = _Handler(self)
        self._tap = watchscan.LogTap(guard.roots, self._on_blind_spot)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Watch:
        """Start observing (idempotent).

        Returns:
            ``self``.
        """
        if self._observer is not None:
            return self
        self.guard.add_listener(self)
        self._stop.clear()
        self._wake.clear()
        self._behind = False
        with self._reports_lock:
            self._reports.clear()
        self._tap.install()
        with self._work:
            self._track_all()
            self._roots = {r: _root_id(r) for r in self.guard.roots}
            self._observer = self._start_observer()
        self._sweeper = threading.Thread(
            target=self._sweep_loop, name="peerguard-watch-sweep", daemon=True
        )
        self._sweeper.start()
        return self

    def stop(self) -> None:
        """Stop observing and wait for the threads to end."""
        self._stop.set()
        self._wake.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None
        with self._work:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        self._tap.remove()
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
        return self._start_polling()

    def _start_polling(self) -> BaseObserver:
        self.stats.polling = True
        self._watches.clear()
        polling = PollingObserver(timeout=self.polling_interval)
        for root in self._roots:
            if os.path.isdir(root):
                self._watches[root] = polling.schedule(self._handler, root, recursive=True)
        polling.start()
        return polling

    # ------------------------------------------------------------------ attribution

    def before_execute(self, decision: Decision) -> None:
        """The guard is about to run ``decision``'s call: expect events on what it touches.

        Args:
            decision: The allowed call's decision.
        """
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
            self._expected[decision.call_id] = _Expected(
                frozenset(paths), tuple(folders), agent=decision.agent, tool=decision.tool
            )

    def after_execute(self, decision: Decision) -> None:
        """The call ended: keep expecting its events for the grace period.

        Args:
            decision: The call's decision.
        """
        with self._lock:
            exp = self._expected.get(decision.call_id)
            if exp is not None:
                exp.until = time.monotonic() + self.grace

    def _running(self) -> tuple[str, _Expected] | None:
        """The guarded call running now (the latest to start), if any."""
        with self._lock:
            running = [(c, e) for c, e in self._expected.items() if e.until == float("inf")]
        return running[-1] if running else None

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
        if kind == "events_lost":
            # Acted on by the sweep thread at once: losses on several roots make one rescan.
            self._report_gap(
                f"inotify lost events below {src} (its queue overflowed)", fall_back=False
            )
            return
        if event.is_directory and kind not in ("created", "deleted", "moved"):
            return  # a folder's own change: the events of the files in it say what changed
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        with self._work:
            self._handle(kind, src, dest, event.is_directory)

    def _handle(self, kind: str, src: str, dest: str, is_dir: bool) -> None:
        touched = [p for p in (src, dest) if p]
        if kind in ("created", "moved"):
            # A new file at this path: what was said of the one before does not cover it.
            self._last.pop(dest if kind == "moved" else src, None)
        if kind in ("created", "deleted", "moved"):
            self.guard.hosts.invalidate()
        if all(self._attributed(p) for p in touched):
            self.stats.attributed += 1
            for path in touched:
                self._last.pop(path, None)
            self._refresh(touched)
            return
        if is_dir:
            self._on_folder_event(kind, src, dest)
            return
        untracked = [p for p in touched if p not in self._tracked]
        alerted: set[str] = set()
        if kind == "deleted":
            self._on_deleted(src)
        elif kind == "moved":
            self._on_moved(src, dest)
            if dest in self._tracked:
                self._check_tracked(dest, moved_over=True)
            elif self._check_new(dest):
                alerted.add(dest)
        elif src in self._tracked:  # created, modified, closed (after write), attrib
            self._check_tracked(src)
        elif self._check_new(src):
            # A new file is often created empty and written after: judged on each event.
            alerted.add(src)
        self._refresh([p for p in touched if p in self._tracked or self._indexable(p)])
        # The file may have been written between its check above and the refresh, which then
        # indexed it as an asset and started tracking it: later events on it would look like
        # nothing changed. A path this refresh began to track is judged as new here.
        for path in untracked:
            info = self._known(path) if path in self._tracked else None
            if info is not None and path not in alerted:
                self._alert_new(info, path)

    def _indexable(self, path: str) -> bool:
        """Whether the index has, or should have, an entry for ``path`` (probes are cached)."""
        index = self.guard.assets
        return index.known(path) is not None or index.lookup(path) is not None

    def _on_deleted(self, path: str) -> None:
        info = self._known(path)
        if info is not None:
            # Even when a file is back at the path by now: a delete is an event of its own.
            self._asset_alert(info, path, "was deleted", "deleted", _GONE)

    def _on_moved(self, src: str, dest: str) -> None:
        info = self._known(src)
        if info is not None:
            self._asset_alert(info, src, f"was moved to {dest}", "moved", dest)

    def _on_folder_event(self, kind: str, src: str, dest: str) -> None:
        if kind not in ("deleted", "moved"):
            return  # the files in a new folder have events of their own
        inside = self.guard.assets.under(src)
        for path, info in inside:
            if kind == "moved":
                moved_to = dest + path[len(src) :]
                what = f"was moved with its folder to {dest}"
                self._asset_alert(info, path, what + "", "moved", moved_to)
            else:
                what = "was deleted with its folder"
                self._asset_alert(info, path, what, "deleted", _GONE)
        gone = [path for path, _info in inside]
        self.guard.assets.refresh(gone)
        for path in gone:
            self._tracked.pop(path, None)
            self._pending.discard(path)
        if kind == "moved":
            self.guard.assets.refresh([dest])

    def _check_tracked(self, path: str, *, moved_over: bool = False) -> None:
        tracked = self._tracked.get(path)
        info = self._known(path)
        if tracked is None or info is None:
            return
        try:
            st = os.lstat(path)
        except OSError:
            return  # gone: the event of its deletion, or the sweep, reports it
        if stat_key(st) == tracked.key and st.st_nlink == tracked.nlink:
            return  # nothing changed since the watch last looked
        new = watchscan.read_state(path, st)
        if new is not None:
            self._judge(info, path, tracked, new, moved_over=moved_over)

    def _judge(
        self, info: AssetInfo, path: str, old: Tracked, new: Tracked, *, moved_over: bool = False
    ) -> None:
        """Alert on how a tracked file changed from ``old`` to ``new``, and track ``new``."""
        self._tracked[path] = new
        self._pending.discard(path)
        if new.ident == old.ident and new.nlink > old.nlink:
            self._asset_alert(
                info,
                path,
                f"gained a hard link ({old.nlink} -> {new.nlink}): a copy",
                "link",
                new.nlink,
            )
        off: list[str] = []
        if path in self._configs and (new.ident != old.ident or new.digest != old.digest):
            matcher = self.guard.fact_finder.oversight
            off = watchscan.switched_off(matcher, self._configs[path], path)
            self._configs[path] = watchscan.config_state(path)
        how = "a file moved over it" if moved_over else "deleted and recreated, or swapped"
        if off:
            by = f"replaced the file ({how})" if new.ident != old.ident else "changed it in place"
            what = f"had oversight switched off ({', '.join(off)}) by an edit that {by}"
            self._asset_alert(info, path, what, "oversight-off", (new.ident, new.digest))
        elif new.ident != old.ident:
            what = f"was replaced ({how})"
            self._asset_alert(info, path, what, "replaced", (new.ident, new.digest))
        elif new.digest != old.digest:
            self._asset_alert(info, path, "was modified", "modified", new.digest)

    def _check_new(self, path: str) -> bool:
        """Alert if ``path``, not tracked yet, is a copy or new weights; True if it alerted."""
        if not path or path in self._tracked:
            return False
        info = self.guard.assets.lookup(path)
        return info is not None and self._alert_new(info, path)

    def _alert_new(self, info: AssetInfo, path: str) -> bool:
        if info.source.startswith(("same content", "hard link")):
            what = f"appeared as a copy ({info.source})"
        elif info.kind is AssetKind.WEIGHTS and info.source.startswith("content:"):
            what = "new weights file appeared"
        else:
            return False
        self._asset_alert(info, path, what, "copy", info.source, copy=True)
        return True

    def _refresh(self, paths: list[str]) -> None:
        """Re-index ``paths`` and track (or stop tracking) the files among them."""
        if not paths:
            return
        self.guard.assets.refresh(paths)
        for path in paths:
            self._track(path)

    # ------------------------------------------------------------------ tracking

    def _track(self, path: str) -> None:
        if self._known(path) is None:
            self._tracked.pop(path, None)
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._tracked.pop(path, None)
            return
        if stat_mod.S_ISDIR(st.st_mode):
            return
        prev = self._tracked.get(path)
        if prev is not None and prev.key == stat_key(st) and prev.nlink == st.st_nlink:
            return
        state = watchscan.read_state(path, st)
        if state is not None:
            self._tracked[path] = state
            self._pending.discard(path)

    def _track_all(self) -> None:
        self._tracked.clear()
        self._pending.clear()
        index = self.guard.assets
        for root in self.guard.roots:
            for path, info in index.under(root):
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                ident = (st.st_ino, watchscan.generation(path))
                self._tracked[path] = Tracked(stat_key(st), ident, st.st_nlink, index.digest(path))
                if info.kind is AssetKind.CONFIG:
                    self._configs[path] = watchscan.config_state(path)

    def _recheck(self, path: str, tracked: Tracked, st: os.stat_result | None) -> None:
        """Judge a tracked file whose stat moved, from the file itself (no event needed)."""
        info = self._known(path)
        if info is None:
            self._tracked.pop(path, None)
            return
        if self._attributed(path):
            self._last.pop(path, None)
        elif st is None:
            self._asset_alert(info, path, "was deleted", "deleted", _GONE)
        else:
            new = watchscan.read_state(path, st)
            if new is None:
                return  # gone meanwhile: the next look reports it
            self._judge(info, path, tracked, new)
        self._refresh([path])

    def rescan(self) -> None:
        """Look at every protected file and every file in the roots now, without events.

        A tracked file whose stat key moved is hashed and judged (modified, replaced, deleted,
        hard-linked); a file not tracked yet is judged as new (a copy, new weights). Called
        where events may have been lost; safe to call at any time.
        """
        with self._work:
            self.stats.rescans += 1
            self.guard.hosts.invalidate()
            for path, tracked in list(self._tracked.items()):
                st = _lstat(path)
                if st is None or stat_key(st) != tracked.key or st.st_nlink != tracked.nlink:
                    self._recheck(path, tracked, st)
            for path in watchscan.walk_files(self.guard.roots):
                if path in self._tracked:
                    continue
                if not self._attributed(path):
                    self._check_new(path)
                if self._indexable(path):
                    self._refresh([path])

    # ------------------------------------------------------------------ sweep

    def _sweep_loop(self) -> None:
        while True:
            self._wake.wait(self.sweep_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._sweep()
            except Exception as exc:  # keep sweeping; say that a sweep failed
                self._emit(Severity.ERROR, f"the watch sweep failed: {exc!r}", gap=True)

    def _sweep(self) -> None:
        self._check_backend()
        self._check_backlog()
        self._check_roots()
        with self._work:
            earlier, self._pending = self._pending, set()
            for path, tracked in list(self._tracked.items()):
                st = _lstat(path)
                if st is not None and stat_key(st) == tracked.key and st.st_nlink == tracked.nlink:
                    continue
                if path in earlier:  # no event explained it since the last sweep
                    self._recheck(path, tracked, st)
                else:
                    self._pending.add(path)

    def _check_roots(self) -> None:
        for root, ident in list(self._roots.items()):
            now_id = _root_id(root)
            if now_id == ident:
                continue
            with self._work:
                self._roots[root] = now_id
                if now_id is None:
                    self._emit(
                        Severity.CRITICAL,
                        f"protected root {root} was deleted",
                        finding="deleted",
                        assets=(AlertAsset(root, this_host()),),
                    )
                    continue
                self._emit(
                    Severity.CRITICAL,
                    f"protected root {root} was replaced; the watch is re-established on it",
                    finding="replaced",
                    assets=(AlertAsset(root, this_host()),),
                )
                if self._observer is not None:
                    old = self._watches.pop(root, None)
                    if old is not None:
                        self._observer.unschedule(old)
                    watch = self._observer.schedule(self._handler, root, recursive=True)
                    self._watches[root] = watch
                self.guard.assets.scan()
                self._track_all()

    # ------------------------------------------------------------------ blind spots

    def _report_gap(self, reason: str, *, fall_back: bool) -> None:
        """Note, from any thread, that events may have been missed; the sweep acts on it."""
        with self._reports_lock:
            self._reports.append((reason, fall_back))
        self._wake.set()

    def _on_blind_spot(self, logger: str, path: str, message: str) -> None:
        inotify = logger.endswith(".inotify")
        if self._observer is None or (inotify and self.stats.polling):
            return  # stopped, or the last words of an inotify observer already replaced
        self._report_gap(f"{path} is not watched (watchdog: {message})", fall_back=inotify)

    def _dead_thread(self) -> str | None:
        """The watchdog thread of the current observer that died, if one did."""
        observer = self._observer
        if observer is None:
            return None
        try:
            threads: list[threading.Thread] = [observer, *list(observer.emitters)]
        except RuntimeError:  # the set of emitters changed while being read: next sweep
            return None
        reader = getattr(observer, "_inotify_fd", None)  # the inotify reader thread
        if isinstance(reader, threading.Thread):
            threads.append(reader)
        for thread in threads:
            if thread.ident is None or thread.is_alive():
                continue
            stopped = isinstance(thread, BaseThread) and thread.stopped_event.is_set()
            if thread is not observer and thread is not reader and stopped:
                continue  # an emitter watchdog stopped itself: its root was deleted
            return f"the watchdog thread {thread.name!r} ({type(thread).__name__}) stopped"
        return None

    def _check_backend(self) -> None:
        with self._reports_lock:
            reports, self._reports = self._reports, []
        dead = self._dead_thread()
        if dead is not None:
            reports.append((dead, True))
        if not reports:
            return
        reason = reports[0][0]
        if len(reports) > 1:
            reason += f" (and {len(reports) - 1} more)"
        if any(fall_back for _reason, fall_back in reports):
            self._fall_back(reason)
            return
        with self._work:
            self._emit(
                Severity.WARNING, f"{reason}; the watch rescans the protected roots", gap=True
            )
            self.rescan()

    def _fall_back(self, reason: str) -> None:
        """Replace the observer by a polling one, say so, and rescan for what was missed."""
        with self._work:
            old = self._observer
            if old is None or self._stop.is_set():
                return
            was_polling = self.stats.polling
            self._observer = self._start_polling()
            how = "restarts polling" if was_polling else "falls back to polling"
            self._emit(
                Severity.WARNING,
                f"{reason}; the watch {how} every {self.polling_interval}s (so detection is "
                "slower) and rescans the protected roots",
                gap=True,
            )
            self.rescan()
        # Stopped on a thread of its own: a broken observer must not stall the sweep.
        threading.Thread(
            target=_retire, args=(old,), name="peerguard-watch-retire", daemon=True
        ).start()

    def _check_backlog(self) -> None:
        observer = self._observer
        if observer is None:
            return
        queued = observer.event_queue.qsize()
        if queued <= self.max_backlog:
            if queued < self.max_backlog // 10:
                self._behind = False
            return
        if self._behind:
            return
        self._behind = True
        with self._work:
            self._emit(
                Severity.WARNING,
                f"the watch is {queued} events behind the filesystem, so its alerts are late; "
                "it rescans the protected roots",
                gap=True,
            )
            self.rescan()

    # ------------------------------------------------------------------ alerts

    def _asset_alert(
        self,
        info: AssetInfo,
        path: str,
        what: str,
        kind: str,
        state: object,
        *,
        copy: bool = False,
    ) -> None:
        """Alert on ``path``, unless this repeats the last alert on it (same kind and state)."""
        if self._last.get(path) == (kind, state):
            return  # the same change, reported again (several events, or a sweep and an event)
        self._last.pop(path, None)
        self._last[path] = (kind, state)
        if len(self._last) > _MEMORY:
            del self._last[next(iter(self._last))]
        whose = f"{info.owner}'s" if info.owner else "unowned"
        severity = Severity.CRITICAL if copy or info.kind is not AssetKind.OTHER else Severity.ERROR
        running = self._running()
        if running is None:
            when, agent, tool, call_id = "outside any guarded call", None, None, None
        else:
            call_id, exp = running
            agent, tool = exp.agent, exp.tool
            when = f"while {agent}'s call {tool} ({call_id}) ran, which does not explain it"
        asset = AlertAsset(path, this_host(), info.kind.value, info.owner)
        self._emit(
            severity,
            f"{whose} {info.kind.value} {path} {what} {when}",
            finding=kind,
            call=(agent, tool, call_id),
            assets=(asset,),
        )

    def _emit(
        self,
        severity: Severity,
        message: str,
        *,
        gap: bool = False,
        finding: str = "gap",
        call: tuple[str | None, str | None, str | None] = (None, None, None),
        assets: tuple[AlertAsset, ...] = (),
    ) -> None:
        alert = Alert(
            severity, watchscan.FINDINGS[finding], message, *call, gap,
            (("watch.finding", finding),), assets,
        )  # fmt: skip
        self.stats.alerts += 1
        self.stats.gaps += gap
        self.stats.recent.append(alert)
        del self.stats.recent[:-1000]
        self.guard.sinks.alert(alert)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _retire(observer: BaseObserver) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing more to do with it
        observer.stop()
        observer.join(timeout=5)


def _root_id(root: str) -> tuple[int, int] | None:
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


__all__ = ["WATCH_RULE", "Watch", "WatchStats"]
