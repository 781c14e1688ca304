"""Commit a contained command's upper layers to the real trees, journaled; or discard them.

A commit first writes a journal (``<state>/journal/<id>.json``, by rename) naming the layers,
then applies each upper layer to its root in one walk, every step of which is atomic on its
own and can be done again:

- a whiteout: the real path is removed, then the whiteout;
- an opaque folder: the real folder is emptied and made again, then the folder loses its
  opaque mark (so that a second pass merges instead of emptying again);
- a file or symlink: renamed over the real path (copied beside it, then renamed, when the
  layer is on another filesystem): the real path holds the old or the new content, never a mix;
- a new folder with nothing real below it: renamed into place whole;
- a folder that exists in both: merged, then given the mode and time stamps the command left.

A process killed during a commit leaves the journal behind; :func:`recover` (run when a
contained shell starts, and by ``peerguard recover``) applies it again to the end. Nothing an
allowed call wrote is lost, and nothing is applied twice in a way that matters: a step already
done finds nothing left to do.

What this guards against is a process killed in the middle (the page cache survives it). A
power cut may lose the last commits, as it may any write not followed by ``fsync``: the
overlays are mounted ``volatile`` (no flush when a sandbox ends) and a commit does not flush
either; a deployment that needs more runs ``sync`` where its own durability requires it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence

from guard.contain.sandbox import (
    ContainmentError,
    Overlay,
    opaque_mark,
    remove_tree,
    walk,
    whiteout,
)

__all__ = ["Transaction", "discard", "later", "recover", "settled"]

_OVERLAY_XATTR = ("user.overlay.", "trusted.overlay.")


class Transaction:
    """The folders of one contained run: an upper and a work folder per protected root.

    Args:
        state: The folder transactions live in (made if missing). It must not be inside a
            protected root, and should be on the same filesystem as the roots, so that a
            commit is a rename.
        roots: The protected roots.
    """

    def __init__(self, state: str, roots: Sequence[str]) -> None:
        self.state = state
        self.roots = tuple(roots)
        self.id = uuid.uuid4().hex
        self.folder = os.path.join(state, "tx", self.id)
        layers = []
        for i, root in enumerate(roots):
            base = os.path.join(self.folder, str(i))
            upper, work = os.path.join(base, "upper"), os.path.join(base, "work")
            os.makedirs(upper)
            os.makedirs(work)
            layers.append(Overlay(root, upper, work))
        self.layers: tuple[Overlay, ...] = tuple(layers)
        self._sealed: list[tuple[str, int, int, int, int]] | None = None

    def empty(self) -> bool:
        """Whether the run left nothing in any upper layer (nothing to commit)."""
        return not any(os.listdir(layer.upper) for layer in self.layers)

    def seal(self) -> None:
        """Record the upper layers as they are now: what is judged. :meth:`commit` applies
        them only if nothing in them changed since (no process of the run is left by then,
        but a commit must not rest on that alone)."""
        self._sealed = _signature(self.layers)

    def commit(self) -> None:
        """Apply every upper layer to its root (journaled), then remove the transaction.

        A run that changed one file (or nothing) is applied by one rename, or not at all,
        which is atomic by itself: it needs no journal.

        Raises:
            ContainmentError: The upper layers changed after :meth:`seal`: nothing is
                applied, and the transaction is discarded.
        """
        if self._sealed is not None and _signature(self.layers) != self._sealed:
            self.discard()
            raise ContainmentError(
                "the run's changes were altered after they were judged; nothing was committed"
            )
        steps = self._steps(limit=2)
        if steps == 0:
            self.discard()
            return
        journal = None
        if steps > 1:
            journal = os.path.join(self.state, "journal", f"{self.id}.json")
            os.makedirs(os.path.dirname(journal), exist_ok=True)
            record = {"id": self.id, "layers": [[x.root, x.upper, x.work] for x in self.layers]}
            tmp = journal + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(record, fh)
            os.replace(tmp, journal)  # whole or absent: a killed process never leaves half
        with _locked(self.state):
            _apply(self.layers)
            if journal is not None:
                os.unlink(journal)
        self.discard()

    def _steps(self, limit: int) -> int:
        """How many entries the upper layers hold, counted up to ``limit``; an opaque folder
        or a whiteout counts as ``limit``."""
        count = 0
        for layer in self.layers:
            for path, st in walk(layer.upper):
                if whiteout(st) or (stat.S_ISDIR(st.st_mode) and opaque_mark(path) is not None):
                    return limit
                count += 1
                if count >= limit:
                    return count
        return count

    def discard(self, *, wait: bool = False) -> None:
        """Throw the run's changes away, in the background unless ``wait``: nothing reads
        them any more, and what a process leaves unfinished there, :func:`recover` removes."""
        if wait:
            discard(self.folder)
        else:
            later(discard, self.folder)


_WORK: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]]] = queue.SimpleQueue()
_WORKER: list[threading.Thread] = []
_WORKER_LOCK = threading.Lock()


def later(fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` on the one background thread that tidies transactions (folders to
    remove, the next transaction's folders to make), off the calls' path."""
    _WORK.put((fn, args))
    with _WORKER_LOCK:
        if not _WORKER or not _WORKER[0].is_alive():
            worker = threading.Thread(target=_work, name="peerguard-contain", daemon=True)
            worker.start()
            _WORKER[:] = [worker]


def settled(timeout: float = 30.0) -> bool:
    """Wait until the background thread has done everything asked of it so far (True), or
    ``timeout`` seconds (False)."""
    done = threading.Event()
    later(done.set)
    return done.wait(timeout)


def _work() -> None:
    while True:
        fn, args = _WORK.get()
        with contextlib.suppress(Exception):  # tidying only: recover() redoes what fails
            fn(*args)


def discard(folder: str) -> None:
    """Remove a transaction's folder (see :func:`~guard.contain.sandbox.remove_tree`)."""
    remove_tree(folder)


def recover(state: str) -> list[str]:
    """Finish every commit a killed process left half done in ``state``; the ids finished.

    Transactions with no journal (runs that were never committed) are discarded.
    """
    done: list[str] = []
    jdir = os.path.join(state, "journal")
    if not os.path.isdir(state):
        return done
    with _locked(state):
        for name in sorted(os.listdir(jdir)) if os.path.isdir(jdir) else []:
            path = os.path.join(jdir, name)
            if name.endswith(".tmp"):
                os.unlink(path)  # never became a journal: nothing was applied
                continue
            with open(path) as fh:
                record = json.load(fh)
            _apply(tuple(Overlay(*x) for x in record["layers"]))
            os.unlink(path)
            done.append(str(record["id"]))
    tx = os.path.join(state, "tx")
    for name in os.listdir(tx) if os.path.isdir(tx) else []:
        discard(os.path.join(tx, name))
    return done


_LOCKS: dict[str, tuple[threading.Lock, int]] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _locked(state: str) -> Iterator[None]:
    """One commit at a time per state folder: across threads (a lock) and processes (flock
    on a file kept open)."""
    with _LOCKS_GUARD:
        held = _LOCKS.get(state)
        if held is None or held[1] < 0:
            os.makedirs(state, exist_ok=True)
            path = os.path.join(state, "lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            held = _LOCKS[state] = (threading.Lock(), fd)
    lock, fd = held
    with lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _signature(layers: Sequence[Overlay]) -> list[tuple[str, int, int, int, int]]:
    """Every entry of the upper layers: path, inode, size, modification time, mode."""
    out = [
        (path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
        for layer in layers
        for path, st in walk(layer.upper)
    ]
    out.sort()
    return out


def _apply(layers: Sequence[Overlay]) -> None:
    for layer in layers:
        if os.path.isdir(layer.upper):
            same_fs = os.stat(layer.upper).st_dev == os.stat(layer.root).st_dev
            _merge(layer.upper, layer.root, same_fs)


def _clean_xattrs(path: str) -> None:
    """Drop overlayfs's bookkeeping attributes from something moved into the real tree."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(_OVERLAY_XATTR):
            with contextlib.suppress(OSError):
                os.removexattr(path, name, follow_symlinks=False)


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _merge(upper_dir: str, real_dir: str, same_fs: bool) -> None:
    with os.scandir(upper_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        src = entry.path
        dst = os.path.join(real_dir, entry.name)
        st = entry.stat(follow_symlinks=False)
        if whiteout(st):
            _remove(dst)
            os.unlink(src)
            continue
        if stat.S_ISDIR(st.st_mode):
            mark = opaque_mark(src)
            try:
                real = os.lstat(dst)
            except FileNotFoundError:
                real = None
            if real is not None and not stat.S_ISDIR(real.st_mode):
                _remove(dst)
                real = None
            if mark is not None and real is not None:
                shutil.rmtree(dst)
                os.mkdir(dst, stat.S_IMODE(st.st_mode))
                os.removexattr(src, mark, follow_symlinks=False)
            elif real is None and same_fs and _prepared(src):
                os.rename(src, dst)
                continue
            elif real is None:
                os.mkdir(dst, stat.S_IMODE(st.st_mode))
            _merge(src, dst, same_fs)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            os.rmdir(src)
            continue
        if same_fs:
            _clean_xattrs(src)
            if stat.S_ISDIR(os.lstat(dst).st_mode) if os.path.lexists(dst) else False:
                shutil.rmtree(dst)
            os.rename(src, dst)
        else:
            tmp = os.path.join(real_dir, f".peerguard-{uuid.uuid4().hex}")
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), tmp)
            else:
                shutil.copy2(src, tmp, follow_symlinks=False)
            _clean_xattrs(tmp)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.rename(tmp, dst)
            os.unlink(src)


def _prepared(folder: str) -> bool:
    """Ready ``folder`` to be renamed into the real tree whole: overlayfs's attributes removed.
    False when it holds a whiteout (then it is merged entry by entry instead)."""
    _clean_xattrs(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if whiteout(st):
                return False
            _clean_xattrs(path)
    return True
