"""What changed between two manifests: created, deleted, modified, moved and copied files, and
metadata changes; and which files of a manifest hold a given content."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from guard.exceptions import ConfigError
from guard.manifest import _META_FIELDS, Manifest, ManifestEntry


class MetadataChange(BaseModel):
    """A path whose content is unchanged but whose stat data changed."""

    model_config = ConfigDict(frozen=True)

    path: str
    fields: list[str]


class MovedFile(BaseModel):
    """A removed path whose content now lives at an added path."""

    model_config = ConfigDict(frozen=True)

    source: str
    dest: str
    digest: str


class CopiedFile(BaseModel):
    """An added path holding the same content as paths that existed before."""

    model_config = ConfigDict(frozen=True)

    dest: str
    sources: list[str]
    digest: str


class ManifestDiff(BaseModel):
    """What changed between two manifests. Every list is sorted by path.

    ``added``, ``removed`` and ``modified`` are the raw facts; ``moved`` and ``copied``
    interpret them by content (a moved path is in both ``removed`` and, as its dest, in
    ``added``). Empty files are never matched as moves or copies: every empty file has the
    same hash. ``links_gained`` lists files whose hard-link count rose: a hard link made from
    anywhere, inside the roots or not, which a watcher on the roots does not see.
    """

    model_config = ConfigDict(frozen=True)

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)
    metadata: list[MetadataChange] = Field(default_factory=list)
    moved: list[MovedFile] = Field(default_factory=list)
    copied: list[CopiedFile] = Field(default_factory=list)
    links_gained: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything at all differs."""
        return bool(
            self.added or self.removed or self.modified or self.metadata or self.links_gained
        )


def _content(entry: ManifestEntry) -> tuple[str, str | None, str | None, str | None]:
    return entry.kind, entry.digest, entry.target, entry.error


def diff(before: Manifest, after: Manifest) -> ManifestDiff:
    """Compare two manifests.

    Args:
        before: The earlier manifest.
        after: The later one.

    Returns:
        The differences (see :class:`ManifestDiff`).

    Raises:
        ConfigError: The manifests were hashed with different algorithms.
    """
    if before.algorithm != after.algorithm:
        raise ConfigError(
            f"cannot compare a {before.algorithm} manifest with a {after.algorithm} one"
        )
    old, new = before.entries, after.entries
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    modified: list[str] = []
    metadata: list[MetadataChange] = []
    links: list[str] = []
    for path in sorted(old.keys() & new.keys()):
        a, b = old[path], new[path]
        if a is b:
            continue
        if _content(a) != _content(b):
            modified.append(path)
        else:
            fields = [f for f in _META_FIELDS if getattr(a, f) != getattr(b, f)]
            if fields:
                metadata.append(MetadataChange(path=path, fields=fields))
        if b.nlink > a.nlink:
            links.append(path)

    by_hash_before = _index(before)
    by_hash_added: dict[str, list[str]] = {}
    for path in added:
        e = new[path]
        if e.kind == "file" and e.digest is not None and e.size > 0:
            by_hash_added.setdefault(e.digest, []).append(path)
    moved: list[MovedFile] = []
    used: set[str] = set()
    for path in removed:
        e = old[path]
        if e.kind != "file" or e.digest is None or e.size == 0:
            continue
        free = [d for d in by_hash_added.get(e.digest, []) if d not in used]
        if not free:
            continue
        # A rename keeps the inode: prefer that destination over a copy made beside it.
        same = [d for d in free if (new[d].inode, new[d].dev) == (e.inode, e.dev)]
        dest = (same or free)[0]
        used.add(dest)
        moved.append(MovedFile(source=path, dest=dest, digest=e.digest))
    copied: list[CopiedFile] = []
    for digest, dests in by_hash_added.items():
        sources = by_hash_before.get(digest)
        if not sources:
            continue
        for dest in dests:
            if dest not in used:
                copied.append(CopiedFile(dest=dest, sources=sources, digest=digest))
    copied.sort(key=lambda c: c.dest)
    return ManifestDiff(
        added=added,
        removed=removed,
        modified=modified,
        metadata=metadata,
        moved=moved,
        copied=copied,
        links_gained=links,
    )


def _index(manifest: Manifest) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for path in sorted(manifest.entries):
        e = manifest.entries[path]
        if e.kind == "file" and e.digest is not None and e.size > 0:
            index.setdefault(e.digest, []).append(path)
    return index


def find_by_hash(manifest: Manifest, digest: str) -> list[str]:
    """Every regular file in ``manifest`` whose content hash is ``digest``.

    Args:
        manifest: Where to look.
        digest: A hex digest made with the manifest's algorithm (case-insensitive).

    Returns:
        The matching paths, sorted.
    """
    wanted = digest.lower()
    return sorted(
        path for path, e in manifest.entries.items() if e.kind == "file" and e.digest == wanted
    )
