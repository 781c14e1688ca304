"""Where content can be recovered from a tree, and what a manifest keeps to look for it.

The verifier's search (:func:`recoverable`): plain hashes from the manifests, then every new
or changed file and every folder that gained files (read as one, a split) decoded through
:func:`guard.decoding.layers` with the fingerprint scanner on its tap, so a whole copy, the
content of a deleted file, or a part of a protected model's tensor bytes is found under any
name and encoding. And what a manifest keeps so that a verification from it alone still has
what the files said (:func:`keep_texts`, :func:`fingerprints_of`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator

from guard.assets import sha256_files
from guard.configs import MAX_CONFIG_BYTES, STRUCTURED_SUFFIXES, read_config
from guard.decoding import layers
from guard.fingerprints import FingerprintIndex, Match
from guard.manifest import Manifest, ManifestEntry
from guard.streams import DecodeBudget, Layer, Outcome, Tap

#: Files whose text a manifest keeps for the verifier: configs, score files, graded items.
TEXT_SUFFIXES = (*STRUCTURED_SUFFIXES, ".jsonl")


def keep_texts(
    manifest: Manifest, previous: Manifest | None = None, *, also: Iterable[str] = ()
) -> Manifest:
    """``manifest`` with the text of every structured file in it (configs, score files,
    graded items: names ending in :data:`TEXT_SUFFIXES`, and the paths in ``also``) of at
    most :data:`~guard.configs.MAX_CONFIG_BYTES`, so that a verifier given only this manifest
    can still read what a file that was deleted, emptied or moved away said (a shutdown switch,
    the items a score is recomputed from). A text is kept only when its hash is the entry's
    digest (the file did not change between the snapshot and this read). Texts of unchanged
    files are taken from ``previous`` instead of read again.
    """
    extra = {os.path.normpath(p) for p in also}
    old_texts = previous.texts if previous is not None else {}
    old_entries = previous.entries if previous is not None else {}
    texts: dict[str, str] = {}
    for path, entry in manifest.entries.items():
        if entry.kind != "file" or entry.digest is None or entry.size > MAX_CONFIG_BYTES:
            continue
        if not path.lower().endswith(TEXT_SUFFIXES) and path not in extra:
            continue
        old = old_entries.get(path)
        if old is not None and old.digest == entry.digest and path in old_texts:
            texts[path] = old_texts[path]
            continue
        text = read_config(path)
        if isinstance(text, str) and sha256_hex(text.encode()) == entry.digest:
            texts[path] = text
    return manifest.model_copy(update={"texts": texts})


CONCATENATED = "concatenated files"


def fingerprints_of(manifest: Manifest, weights: dict[str, str]) -> FingerprintIndex:
    """Fingerprints of the protected weights (by digest): kept in the manifest (see
    :func:`keep_fingerprints`), or taken now from a file still as the manifest saw it."""
    index = FingerprintIndex()
    for digest, path in weights.items():
        kept = manifest.chunks.get(digest)
        if kept is not None:
            with contextlib.suppress(ValueError, binascii.Error):
                index.add_exported(base64.b64decode(kept), digest)
                continue
        entry = manifest.entries[path]
        try:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns, st.st_ino) != (entry.size, entry.mtime_ns, entry.inode):
                continue  # changed or gone since: its old chunks cannot be read any more
            index.add_file(path, digest)
        except OSError:
            continue
    return index


def joined(layer: Layer) -> bool:
    """Whether ``layer`` was found in a folder's files read as one (a split)."""
    return layer.how[:1] == (CONCATENATED,)


def decodings(
    source: str | list[str],
    wanted: set[str],
    budget: DecodeBudget,
    depth: int,
    tap: Callable[[], Tap] | None = None,
) -> Iterator[Layer]:
    """The layers of ``source`` that matter: payloads with a wanted digest (their ``digest``
    kept), payloads holding a part of a fingerprinted file (``found``, digest dropped), and
    every place that could not be inspected (never dropped: what cannot be looked at does
    not verify)."""
    for layer in layers(source, budget, depth=depth, tap=tap):
        if layer.uninspected or (layer.outcome is Outcome.DECODED and layer.digest in wanted):
            yield layer
        elif layer.found:
            yield dataclasses.replace(layer, digest=None)


def recoverable(
    prev: Manifest,
    now: Manifest,
    wanted: set[str],
    budget: DecodeBudget,
    tap: Callable[[], Tap] | None = None,
) -> Iterator[tuple[str, Layer]]:
    """``(path, layer)`` for every place a wanted content can be recovered from ``now``, and
    every place that could not be fully inspected for it (``layer.digest`` is then ``None``).

    Looks at plain hashes first (free, from the manifest), then decodes files that are new
    or changed since ``prev`` (:func:`guard.decoding.layers`, within ``budget``), then
    concatenates, in name order, the files of each folder that gained files (a split) and
    decodes that as deep as a file: a split of an encoded file is found as the file is.
    Nothing is skipped for its size: decoding streams, and what goes over ``budget`` is
    reported as not inspected. Content found in a folder's own files is not reported again
    from the folder's concatenation, which holds those files.
    """
    changed: list[ManifestEntry] = []
    folders: set[str] = set()
    found_in: dict[str, set[str]] = {}  # folder -> wanted digests found in its files
    for path, entry in now.entries.items():
        if entry.kind != "file":
            continue
        old = prev.entries.get(path)
        if old is None or old.digest != entry.digest:
            if entry.digest is not None and entry.digest in wanted:
                found_in.setdefault(os.path.dirname(path), set()).add(entry.digest)
                yield path, Layer((), Outcome.DECODED, digest=entry.digest, size=entry.size)
            folders.add(os.path.dirname(path))
            changed.append(entry)
    parts_in: dict[str, set[object]] = {}  # folder -> fingerprint keys found in its files
    for entry in changed:
        for layer in decodings(entry.path, wanted, budget, budget.max_depth, tap):
            if not layer.how and layer.outcome is Outcome.DECODED:
                if not layer.found:
                    continue  # the file itself: its plain hash is above
                layer = dataclasses.replace(layer, digest=None)  # only its parts are news
            if layer.digest is not None:
                found_in.setdefault(os.path.dirname(entry.path), set()).add(layer.digest)
            parts_in.setdefault(os.path.dirname(entry.path), set()).update(
                m.key for m in layer.found if isinstance(m, Match)
            )
            yield entry.path, layer
    for folder in sorted(folders):
        parts = sorted(
            (
                e
                for p, e in now.entries.items()
                if e.kind == "file" and os.path.dirname(p) == folder
            ),
            key=lambda e: e.path,
        )
        if len(parts) < 2:
            continue
        paths = [e.path for e in parts]
        digest = sha256_files(paths)
        if digest is not None and digest in wanted:
            total = sum(e.size for e in parts)
            yield folder, Layer((CONCATENATED,), Outcome.DECODED, digest=digest, size=total)
        known = found_in.get(folder, set())
        known_parts = parts_in.get(folder, set())
        for layer in decodings(paths, wanted, budget, budget.max_depth, tap):
            fresh = tuple(
                m for m in layer.found if isinstance(m, Match) and m.key not in known_parts
            )
            if not layer.how and layer.outcome is Outcome.DECODED:
                if not fresh:
                    continue  # the concatenation itself: hashed above
                layer = dataclasses.replace(layer, digest=None)
            if layer.digest is not None and layer.digest in known:
                continue  # found in one of the files already
            if layer.digest is None and not layer.uninspected and not fresh:
                continue  # parts already found in one of the files
            yield folder, dataclasses.replace(layer, how=(CONCATENATED, *layer.how), found=fresh)
    # Parts of one protected file spread over many folders, each under the minimum: every
    # new or changed file of the run, read as one stream, shares their chunks all the same.
    if tap is not None and len(changed) > 1:
        known_anywhere = set().union(*parts_in.values()) if parts_in else set()
        stream = [e.path for e in sorted(changed, key=lambda e: e.path)]
        whole = tap()
        for block in _read_all(stream):
            whole.update(block)
        fresh = tuple(
            m for m in whole.result() if isinstance(m, Match) and m.key not in known_anywhere
        )
        if fresh:
            where = os.path.commonpath(stream)
            how = (f"{len(stream)} new or changed files read as one",)
            yield where, Layer(how, Outcome.DECODED, found=fresh)


def _read_all(paths: list[str]) -> Iterator[bytes]:
    """The bytes of ``paths`` one after another, 1 MiB at a time (unreadable ones skipped:
    the decoding pass reports them)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue  # swapped for a FIFO or a device since the snapshot: never drained
            while block := fh.read(1 << 20):
                yield block


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "CONCATENATED",
    "TEXT_SUFFIXES",
    "decodings",
    "files_below",
    "fingerprints_of",
    "joined",
    "keep_texts",
    "recoverable",
    "sha256_hex",
]


def files_below(manifest: Manifest, folder: str) -> dict[str, ManifestEntry]:
    """The files below ``folder`` in ``manifest``, by path relative to it (empty: not a folder)."""
    prefix = folder.rstrip("/") + "/"
    return {
        path[len(prefix) :]: entry
        for path, entry in manifest.entries.items()
        if path.startswith(prefix) and entry.kind == "file"
    }
