"""What a contained command changed, read from the overlay upper layers: a :class:`ChangeSet`.

An overlay's upper layer holds exactly what the command changed under its root:

- a regular file, folder or symlink that is not in the real tree: **created**;
- a regular file that is in the real tree: **modified** (its content, or only its mode or
  time stamps: :attr:`Change.kind` says which);
- a character device 0/0 (a *whiteout*): the real file or folder there was **deleted**;
- a folder marked opaque (``user.overlay.opaque``): the real folder there was deleted and a
  new one made in its place; whatever the real one held and the new one does not is deleted.

Overlayfs with ``userxattr`` has no redirects, so a rename shows as a delete and a create;
:func:`read_changes` pairs a deleted file with a created file of the same content (hash)
into a **move**.

Content hashes (SHA-256) are taken of every created or modified regular file; the hashing
reads each file once, from the upper layer.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from guard.assets import sha256_files
from guard.contain.sandbox import Overlay, opaque_mark, walk, whiteout

__all__ = ["Change", "ChangeKind", "ChangeSet", "read_changes"]


class ChangeKind(StrEnum):
    """What happened to one path."""

    CREATED = "created"
    MODIFIED = "modified"  # content changed
    METADATA = "metadata"  # same content; mode or time stamps changed
    DELETED = "deleted"
    MOVED = "moved"  # ``source`` moved to ``path`` (same content)


@dataclass(frozen=True, slots=True)
class Change:
    """One change a contained command made.

    Attributes:
        kind: What happened.
        path: The real path changed (for a move, where the content went).
        root: The protected root it is under.
        upper: Where the new content is in the upper layer (``None`` for a delete).
        source: For a move, the real path the content came from.
        type: ``"file"`` (regular), ``"dir"``, ``"symlink"`` or ``"special"`` (a FIFO or
            socket; for a delete: what was there).
        size: Size of the new content in bytes (0 for a delete or a folder).
        digest: SHA-256 of the new content of a regular file, else ``None``.
        mode: The new mode bits (``None`` for a delete).
        old_mode: The mode before (``None`` if it did not exist).
        mtime_ns: The new modification time.
        xattrs: Names of the extended attributes it carries (overlayfs's own left out).
    """

    kind: ChangeKind
    path: str
    root: str
    upper: str | None = None
    source: str | None = None
    type: str = "file"
    size: int = 0
    digest: str | None = None
    mode: int | None = None
    old_mode: int | None = None
    mtime_ns: int = 0
    xattrs: tuple[str, ...] = ()

    @property
    def times_only(self) -> bool:
        """A folder whose only change is its time stamps (a file made or removed in it):
        committed, so that the tree is as the command left it, but nothing to show or judge."""
        return (
            self.kind is ChangeKind.METADATA and self.type == "dir" and self.mode == self.old_mode
        )

    def describe(self, shown: str | None = None) -> str:
        """One line for a person: ``created backup/x (12 bytes)``."""
        where = shown or self.path
        if self.kind is ChangeKind.MOVED:
            return f"moved {self.source} -> {where}"
        if self.kind is ChangeKind.DELETED:
            return f"deleted {where}{'/ (folder)' if self.type == 'dir' else ''}"
        extra = f" ({self.size} bytes)" if self.type == "file" else f" ({self.type})"
        if self.kind is ChangeKind.METADATA:
            extra = (
                f" (mode {self.old_mode:o} -> {self.mode:o})" if self.old_mode != self.mode else ""
            )
            return f"touched {where}{extra}"
        return f"{self.kind.value} {where}{extra}"


@dataclass(slots=True)
class ChangeSet:
    """Everything one contained command changed, root by root.

    Attributes:
        changes: Every change, in path order (moves, then the rest).
        layers: The layers it was read from (what a commit applies).
    """

    changes: list[Change] = field(default_factory=list)
    layers: tuple[Overlay, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def shown(self) -> list[Change]:
        """The changes worth a person's attention (not folder time stamps)."""
        return [c for c in self.changes if not c.times_only]

    def of_kind(self, *kinds: ChangeKind) -> list[Change]:
        """The changes of the given kinds."""
        return [c for c in self.changes if c.kind in kinds]

    def summary(self) -> str:
        """A short account: ``2 created, 1 modified, 1 deleted``."""
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.kind.value] = counts.get(c.kind.value, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no changes"


def _type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "special"  # a FIFO or socket: never opened (a FIFO would block the reader)


def sha256_of(path: str) -> str:
    """SHA-256 of a regular file, read without following a symlink.

    Raises:
        OSError: It cannot be read as a regular file.
    """
    digest = sha256_files([path])
    if digest is None:
        raise OSError(f"cannot be read as a regular file: {path}")
    return digest


def _same_content(a: str, b: str, size: int) -> bool:
    """Whether two regular files of ``size`` bytes hold the same bytes."""
    try:
        if not (stat.S_ISREG(os.lstat(a).st_mode) and stat.S_ISREG(os.lstat(b).st_mode)):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            left = size
            while left > 0:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    break
                left -= len(x)
            return fa.read(1) == fb.read(1)
    except OSError:
        return False


def read_changes(
    layers: Sequence[Overlay], *, digest_if: Callable[[int], bool] | None = None
) -> ChangeSet:
    """The :class:`ChangeSet` in the upper layers of ``layers``, against the real trees.

    Args:
        layers: The run's layers.
        digest_if: Hash a new or changed file only when this says yes to its size (the
            guard asks for the sizes of protected files); ``None`` hashes every one. Files
            that may be a moved file are hashed regardless.
    """
    found: list[Change] = []
    want = digest_if or (lambda _size: True)
    for layer in layers:
        found.extend(_read_layer(layer, want))
    return ChangeSet(_pair_moves(found), tuple(layers))


def _read_layer(layer: Overlay, want: Callable[[int], bool]) -> Iterator[Change]:
    # (upper folder, real folder, whether the real folder's content is hidden: opaque)
    stack: list[tuple[str, str, bool]] = [(layer.upper, layer.root, False)]
    while stack:
        upper_dir, real_dir, hidden = stack.pop()
        seen: set[str] = set()
        with os.scandir(upper_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            seen.add(entry.name)
            st = entry.stat(follow_symlinks=False)
            real = os.path.join(real_dir, entry.name)
            try:
                old = None if hidden else os.lstat(real)
            except OSError:
                old = None
            if whiteout(st):
                if old is not None:
                    yield from _deleted(layer, real, old)
                continue
            new_type = _type(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                opaque = opaque_mark(entry.path) is not None
                if old is None or not stat.S_ISDIR(old.st_mode):
                    if old is not None:
                        yield from _deleted(layer, real, old)
                    yield _change(ChangeKind.CREATED, layer, real, entry.path, st, None, want)
                elif opaque:
                    # The real folder was removed and made again: what it held is gone,
                    # unless the new one has it again (seen as created below).
                    for sub, sub_st in walk(real):
                        yield from _deleted(layer, sub, sub_st, recurse=False)
                elif (
                    stat.S_IMODE(st.st_mode) != stat.S_IMODE(old.st_mode)
                    or st.st_mtime_ns != old.st_mtime_ns
                ):
                    # its mode changed, or its list of names did (a file made and removed)
                    yield _change(ChangeKind.METADATA, layer, real, entry.path, st, old, want)
                stack.append((entry.path, real, hidden or opaque or old is None))
                continue
            if old is None:
                yield _change(ChangeKind.CREATED, layer, real, entry.path, st, None, want)
            elif _type(old.st_mode) != new_type:
                yield from _deleted(layer, real, old)
                yield _change(ChangeKind.CREATED, layer, real, entry.path, st, None, want)
            else:
                yield _modified(layer, real, entry.path, st, old, want)


def _modified(
    layer: Overlay, real: str, upper: str, st: os.stat_result, old: os.stat_result,
    want: Callable[[int], bool],
) -> Change:  # fmt: skip
    if stat.S_ISLNK(st.st_mode):
        same = os.readlink(upper) == os.readlink(real)
    elif not stat.S_ISREG(st.st_mode):
        same = False  # a FIFO or socket made again: never opened
    else:
        same = st.st_size == old.st_size and _same_content(upper, real, st.st_size)
    kind = ChangeKind.METADATA if same else ChangeKind.MODIFIED
    return _change(kind, layer, real, upper, st, old, want)


def _change(
    kind: ChangeKind, layer: Overlay, real: str, upper: str, st: os.stat_result,
    old: os.stat_result | None, want: Callable[[int], bool],
) -> Change:  # fmt: skip
    regular = stat.S_ISREG(st.st_mode)
    hashed = regular and kind is not ChangeKind.METADATA and want(st.st_size)
    return Change(
        kind=kind,
        path=real,
        root=layer.root,
        upper=upper,
        type=_type(st.st_mode),
        size=st.st_size if regular else 0,
        digest=sha256_of(upper) if hashed else None,
        mode=stat.S_IMODE(st.st_mode),
        old_mode=stat.S_IMODE(old.st_mode) if old is not None else None,
        mtime_ns=st.st_mtime_ns,
        xattrs=_xattrs(upper),
    )


def _xattrs(path: str) -> tuple[str, ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(n for n in names if not n.startswith(("user.overlay.", "trusted.overlay.")))


def _deleted(
    layer: Overlay, real: str, old: os.stat_result, *, recurse: bool = True
) -> Iterator[Change]:
    """A delete of ``real``; for a folder, also of everything in it (each file is a change:
    a protected file inside a deleted folder is deleted too)."""
    kind = _type(old.st_mode)
    yield Change(ChangeKind.DELETED, real, layer.root, type=kind, old_mode=stat.S_IMODE(old.st_mode),
                 size=old.st_size if kind == "file" else 0)  # fmt: skip
    if kind == "dir" and recurse:
        for sub, sub_st in walk(real):
            t = _type(sub_st.st_mode)
            yield Change(ChangeKind.DELETED, sub, layer.root, type=t,
                         old_mode=stat.S_IMODE(sub_st.st_mode),
                         size=sub_st.st_size if t == "file" else 0)  # fmt: skip


def _pair_moves(changes: list[Change]) -> list[Change]:
    """A deleted file and a created file with the same content are one move (one to one)."""
    gone = {c.size for c in changes if c.kind is ChangeKind.DELETED and c.type == "file"}
    created: dict[tuple[int, str], list[int]] = {}
    for i, c in enumerate(changes):
        if c.kind is not ChangeKind.CREATED or c.type != "file" or c.size not in gone:
            continue
        digest = c.digest
        if digest is None and c.upper is not None:
            try:
                digest = sha256_of(c.upper)
            except OSError:
                continue
            changes[i] = c = dataclasses.replace(c, digest=digest)
        if digest is not None:
            created.setdefault((c.size, digest), []).append(i)
    if not created:
        return changes
    taken: set[int] = set()
    moves: list[Change] = []
    for i, c in enumerate(changes):
        if c.kind is not ChangeKind.DELETED or c.type != "file":
            continue
        if not any(size == c.size for size, _d in created):
            continue  # nothing created has its size: no need to read it
        try:
            digest = sha256_of(c.path)
        except OSError:
            continue
        slots = created.get((c.size, digest))
        if not slots:
            continue
        j = slots.pop(0)
        new = changes[j]
        taken.update((i, j))
        moves.append(
            Change(ChangeKind.MOVED, new.path, new.root, upper=new.upper, source=c.path,
                   type="file", size=new.size, digest=new.digest, mode=new.mode,
                   old_mode=c.old_mode, mtime_ns=new.mtime_ns)
        )  # fmt: skip
    rest = [c for k, c in enumerate(changes) if k not in taken]
    return moves + rest
