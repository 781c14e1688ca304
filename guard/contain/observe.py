"""From a :class:`~guard.contain.changes.ChangeSet` to *observed* effects, judged like predicted ones.

Each change becomes the effects a call that made it would have been predicted to have, so that
the same policy and asset index judge it:

- a created or modified file whose content is a protected file's (by hash), or holds it under
  gzip, bzip2, xz, base64, tar or zip (:func:`guard.decoding.layers`), or holds a part of a
  protected weights file's tensor bytes at any offset (:mod:`guard.fingerprints`), or whose
  folder's new files hold it when read in name order (a split): a ``copy`` of that file to it;
- a modified file: a ``write`` with the new content (``replace``), so that a config whose
  switch is now off, or a score file whose score differs from the recomputed one, is seen as
  what it is; a change of mode only: a ``write`` of its metadata (``unreadable`` when the mode
  takes read access away: a switch nobody can read is a switch turned off);
- a deleted file or folder: a ``delete``; a moved one: a ``move``;
- extended attributes on a new or changed file, or a set-user-ID or set-group-ID program:
  content or code the guard does not inspect (an *unseen* ``unknown``: a human decides).

Content that could not be inspected (over the decoding budget, unreadable) is an uncertain
``unknown`` effect on the file: what cannot be looked at is not passed as harmless.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable

from guard.assets import AssetIndex, sha256_files
from guard.configs import MAX_CONFIG_BYTES
from guard.contain.changes import Change, ChangeKind, ChangeSet, sha256_of
from guard.content import ContentIndex, describe
from guard.decoding import layers
from guard.fingerprints import Match
from guard.paths import HostMap
from guard.shell.perms import takes_access
from guard.streams import DecodeBudget, Outcome, Tap
from guard.types import ConfigEdit, Effect, EffectKind, Location

__all__ = ["observed_effects"]

VIA = "contained"


def observed_effects(
    changes: ChangeSet,
    assets: AssetIndex,
    hosts: HostMap,
    *,
    budget: DecodeBudget | None = None,
    content: ContentIndex | None = None,
) -> list[Effect]:
    """The effects ``changes`` had, for the policy to judge.

    Args:
        changes: What a contained command changed.
        assets: The guard's asset index (protected files, their hashes and sizes).
        hosts: The guard's hosts (a path under a host's folder is on that host).
        budget: Limits for looking through encodings (defaults apply when ``None``); no
            file is skipped for its size, what goes over the budget is an uncertain effect.
        content: Fingerprints of the protected weights: a new file holding a part of one
            (at any offset, under any encoding) is a copy of it.
    """
    budget = budget or DecodeBudget()
    tap = content.tap() if content is not None else None  # one look at the weights
    effects: list[Effect] = []
    folders: dict[str, list[Change]] = {}
    for change in changes:
        if change.times_only:
            continue  # a folder's time stamps: nothing to judge
        effects.extend(_effects_of(change, assets, hosts, budget, tap, content))
        if change.kind in (ChangeKind.CREATED, ChangeKind.MODIFIED) and change.type == "file":
            folders.setdefault(os.path.dirname(change.path), []).append(change)
    for folder, parts in folders.items():
        effects.extend(_split(folder, parts, assets, hosts, budget, tap, content))
    return effects


def _loc(path: str, hosts: HostMap) -> Location:
    return Location(raw=path, path=path, host=hosts.host_of(path))


def _effects_of(
    change: Change,
    assets: AssetIndex,
    hosts: HostMap,
    budget: DecodeBudget,
    tap: Callable[[], Tap] | None,
    content: ContentIndex | None,
) -> Iterable[Effect]:
    here = _loc(change.path, hosts)
    if change.kind is ChangeKind.DELETED:
        yield Effect(kind=EffectKind.DELETE, target=here, via=VIA, note="observed")
        return
    if change.kind is ChangeKind.MOVED and change.source is not None:
        yield Effect(kind=EffectKind.MOVE, target=_loc(change.source, hosts), dest=here, via=VIA,
                     note="observed")  # fmt: skip
        return
    if change.xattrs:
        # Bytes in extended attributes travel with the file and are not looked at.
        yield Effect(kind=EffectKind.UNKNOWN, target=here, via=VIA, certain=False, unseen=True,
                     note="observed: extended attributes the guard does not inspect "
                     f"({', '.join(change.xattrs[:3])})")  # fmt: skip
    if change.mode is not None and change.mode & (stat.S_ISUID | stat.S_ISGID):
        yield Effect(kind=EffectKind.UNKNOWN, target=here, via=VIA, certain=False, unseen=True,
                     note="observed: a set-user-ID or set-group-ID program, code that runs "
                     "later with its owner's rights")  # fmt: skip
    if change.kind is ChangeKind.METADATA:
        unreadable = (
            change.old_mode is not None
            and change.mode is not None
            and takes_access(change.old_mode, change.mode, folder=change.type == "dir")
        )
        edit = ConfigEdit(op="unreadable" if unreadable else "metadata")
        yield Effect(kind=EffectKind.WRITE, target=here, via=VIA, edit=edit, note="observed")
        return
    if change.type != "file" or change.upper is None:
        note = f"observed: a new {change.type}"
        yield Effect(kind=EffectKind.WRITE, target=here, via=VIA, note=note)
        return
    yield Effect(kind=EffectKind.WRITE, target=here, via=VIA, edit=_edit(change),
                 note="observed")  # fmt: skip
    yield from _copies(change.upper, here, change, assets, hosts, budget, tap, content)


def _edit(change: Change) -> ConfigEdit | None:
    """The new content of a modified text file small enough to read as a config."""
    if change.kind is not ChangeKind.MODIFIED or change.upper is None:
        return None
    if change.size > MAX_CONFIG_BYTES:
        return ConfigEdit(op="unknown")
    if change.type != "file":
        return ConfigEdit(op="unknown")
    try:
        fd = os.open(change.upper, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ConfigEdit(op="unknown")
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return ConfigEdit(op="unknown")
    try:
        return ConfigEdit(op="replace", content=data.decode("utf-8"))
    except UnicodeDecodeError:
        return ConfigEdit(op="unknown")


def _copies(
    source: str | list[str],
    dest: Location,
    change: Change | None,
    assets: AssetIndex,
    hosts: HostMap,
    budget: DecodeBudget,
    tap: Callable[[], Tap] | None,
    content: ContentIndex | None,
) -> Iterable[Effect]:
    """A ``copy`` from each protected file whose content ``source`` holds, whole or a part
    of its tensor bytes (:mod:`guard.fingerprints`)."""
    seen: set[str] = set()
    digest = change.digest if change is not None else None
    size = change.size if change is not None else 0
    if change is not None and digest is None and assets.has_size(size):
        digest = sha256_of(source) if isinstance(source, str) else None
    if digest is not None:
        hit = assets.by_digest(digest)
        if hit is not None:
            seen.add(hit[0])
            yield Effect(kind=EffectKind.COPY, target=_loc(hit[0], hosts), dest=dest, via=VIA,
                         note="observed: the same content")  # fmt: skip
    if change is not None and isinstance(source, str):
        for path, how in _padded(source, size, assets):
            if path not in seen:
                seen.add(path)
                yield Effect(kind=EffectKind.COPY, target=_loc(path, hosts), dest=dest, via=VIA,
                             note=f"observed: its content, {how}")  # fmt: skip
    if digest is not None and assets.by_digest(digest) is not None:
        return  # a protected file's own bytes: decoding them finds that file, seen above
    if assets.largest_size() == 0:
        return  # no protected file's content exists to be found in anything
    parts: dict[str, str] = {}  # protected path -> how a part of it was found
    for layer in layers(source, budget, tap=tap):
        if layer.uninspected:
            yield Effect(kind=EffectKind.UNKNOWN, target=dest, via=VIA, certain=False,
                         note=f"observed content that could not be inspected: {layer.reason}")  # fmt: skip
        if content is not None:
            for m in layer.found:
                hit_part = content.hit(m, layer.how) if isinstance(m, Match) else None
                if hit_part is not None and hit_part.path not in parts:
                    parts[hit_part.path] = describe(hit_part, os.path.dirname(hit_part.path))
        if layer.outcome is not Outcome.DECODED or not layer.how or layer.digest is None:
            continue
        hit = assets.by_digest(layer.digest)
        if hit is not None and hit[0] not in seen:
            seen.add(hit[0])
            how = " in ".join(reversed(layer.how))
            yield Effect(kind=EffectKind.COPY, target=_loc(hit[0], hosts), dest=dest, via=VIA,
                         note=f"observed: its content, as {how}")  # fmt: skip
    for path, what in parts.items():
        if path not in seen:
            yield Effect(kind=EffectKind.COPY, target=_loc(path, hosts), dest=dest, via=VIA,
                         note=f"observed: a part of its content, {what}")  # fmt: skip


_PAD = 1 << 16  # bytes of padding before or after a protected file's content still looked for
_PAD_SIZES = 16  # protected file sizes tried per file, nearest first


def _padded(path: str, size: int, assets: AssetIndex) -> list[tuple[str, str]]:
    """Protected files whose whole content starts or ends a file a little larger than they
    are (a byte or a header added before or after): (path, how)."""
    sizes = [s for s in assets.sizes_below(size) if size - s <= _PAD][:_PAD_SIZES]
    if not sizes:
        return []
    found: list[tuple[str, str]] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        for want in sizes:
            for offset, how in (
                (0, "with bytes added after it"),
                (size - want, "with bytes added before it"),
            ):
                hit = assets.by_digest(_range_digest(fd, offset, want))
                if hit is not None:
                    found.append((hit[0], how))
    finally:
        os.close(fd)
    return found


def _range_digest(fd: int, offset: int, length: int) -> str:
    h = hashlib.sha256()
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 20), offset)
        if not chunk:
            break
        h.update(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return h.hexdigest()


def _split(
    folder: str, parts: list[Change], assets: AssetIndex, hosts: HostMap, budget: DecodeBudget,
    tap: Callable[[], Tap] | None, content: ContentIndex | None,
) -> Iterable[Effect]:  # fmt: skip
    """A folder's new files read in name order as one (``split`` and ``cat`` them back)."""
    if len(parts) < 2:
        return
    ordered = sorted(parts, key=lambda p: p.path)
    paths = [p.upper for p in ordered if p.upper is not None]
    dest = _loc(folder, hosts)
    digest = sha256_files(paths)
    if digest is None:
        return
    hit = assets.by_digest(digest)
    if hit is not None:
        yield Effect(kind=EffectKind.COPY, target=_loc(hit[0], hosts), dest=dest, via=VIA,
                     note="observed: its content, split into the folder's new files")  # fmt: skip
    yield from _copies(paths, dest, None, assets, hosts, budget, tap, content)
