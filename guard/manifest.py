"""Manifests: what every file under some roots was, by content hash, at one moment.

A manifest is the after-the-fact record that does not trust what an agent said it did. Two
snapshots and :func:`diff` show what was added, removed, rewritten, renamed, copied or
hard-linked, whatever tool did it.

Speed comes from two things. Hashing streams each file through one page-aligned 1 MiB buffer
per thread (``mmap`` + ``preadv``), and OpenSSL's SHA-256 releases the GIL, so a thread pool over
all cores hashes many files at once while one big file runs at full single-core speed. And a
stat cache: a file whose size, mtime, ctime, inode and device equal its entry in the previous
manifest is not read again.

The stat cache trusts the filesystem's timestamps. ``os.utime`` can forge an mtime but not a
ctime, so a rewrite followed by a forged mtime is still caught. What it cannot catch is a change
the timestamps cannot show: ctime set back by changing the system clock, raw device writes, or
a rewrite within the same timestamp tick as the previous snapshot. The last is handled as git
handles its "racily clean" index entries: an entry stamped within :data:`RACY_WINDOW_NS` of the
start of the snapshot that recorded it is hashed again next time. Signing the manifest keeps
the cache itself from being poisoned; a snapshot without ``previous`` hashes everything.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import mmap
import os
import stat
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    PrivateKey,
    PublicKey,
    decode_signature,
    encode_signature,
    sign,
    verify_signature,
)

CHUNK = 1 << 20
"""Read size: 1 MiB, page-aligned because the buffer is an anonymous ``mmap``."""

RACY_WINDOW_NS = 2_000_000_000
"""An entry whose mtime or ctime is this close to (or after) the start of the snapshot that
recorded it is not trusted by the stat cache. Linux stamps files from a coarse clock (one tick,
1-10 ms) and some filesystems keep 1-2 s granularity, so a rewrite just after a snapshot can
leave every timestamp unchanged."""

_RETRIES = 3  # a file still changing after this many reads is recorded as unstable

StrPath = str | os.PathLike[str]
EntryKind = Literal["file", "symlink", "dir", "other"]


class HashProgress(Protocol):
    """Told how much hashing a snapshot has to do and how far it got (a progress display).

    ``advance`` is called from the hashing threads: it must be thread-safe.
    """

    def begin(self, files: int, size: int) -> None:
        """``files`` files of ``size`` bytes in all are to be hashed."""

    def advance(self, size: int) -> None:
        """One more file, of ``size`` bytes, is hashed."""


class _Hasher(Protocol):
    def update(self, data: Any, /) -> None: ...

    def hexdigest(self) -> str: ...


def _blake3() -> Callable[[], _Hasher] | None:
    try:
        module = importlib.import_module("blake3")
    except ImportError:
        return None
    factory: Callable[[], _Hasher] = module.blake3
    return factory


def hasher_factory(algorithm: str) -> Callable[[], _Hasher]:
    """The constructor of a streaming hash object for ``algorithm``.

    Args:
        algorithm: ``sha256`` (default everywhere), ``sha512``, ``blake2b``, or ``blake3`` when
            the optional ``blake3`` package is installed.

    Returns:
        A zero-argument callable returning an object with ``update`` and ``hexdigest``.

    Raises:
        ConfigError: Unknown algorithm, or ``blake3`` without the package.
    """
    if algorithm == "sha256":
        return hashlib.sha256
    if algorithm == "sha512":
        return hashlib.sha512
    if algorithm == "blake2b":
        return hashlib.blake2b
    if algorithm == "blake3":
        factory = _blake3()
        if factory is None:
            raise ConfigError("algorithm blake3 needs the blake3 package: pip install blake3")
        return factory
    raise ConfigError(f"unknown hash algorithm {algorithm!r}: use sha256, sha512, blake2b, blake3")


class ManifestEntry(BaseModel):
    """One path in a manifest, as ``lstat`` saw it, plus its content hash.

    ``kind`` is ``file`` (hashed), ``symlink`` (``target`` recorded, never followed), ``dir``
    (only recorded when it could not be listed, with ``error``) or ``other`` (fifo, socket,
    device: never opened). ``error`` says why a file has no trustworthy ``digest``: it could
    not be read, or it kept changing while being hashed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    kind: EntryKind
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    dev: int
    mode: int
    nlink: int
    digest: str | None = None
    target: str | None = None
    error: str | None = None


def _entry(
    path: str,
    st: os.stat_result,
    kind: EntryKind,
    digest: str | None = None,
    target: str | None = None,
    error: str | None = None,
) -> ManifestEntry:
    return ManifestEntry(
        path=path,
        kind=kind,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        inode=st.st_ino,
        dev=st.st_dev,
        mode=st.st_mode,
        nlink=st.st_nlink,
        digest=digest,
        target=target,
        error=error,
    )


_KEY = struct.Struct("=qqqQQ")
_pack_key = _KEY.pack


def _key(st: os.stat_result) -> bytes:
    """The stat-cache key: (ctime_ns, mtime_ns, size, inode, dev) packed into 40 bytes.

    Mode and link count are not compared: chmod, link and unlink all move the ctime. Packed,
    because a re-snapshot compares one key per file and one bytes object is far cheaper to
    compare than a tuple of five separately allocated ints.
    """
    return _pack_key(st.st_ctime_ns, st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


class _StatIndex:
    """The stat cache a manifest offers the next snapshot.

    ``keys`` maps each trusted file's path to its packed key, ``entries`` the same paths to
    their entries. Both are read-only once built, so consecutive manifests of an unchanged
    tree share them instead of copying them.
    """

    __slots__ = ("entries", "keys", "source")

    def __init__(
        self,
        keys: dict[str, bytes],
        entries: dict[str, ManifestEntry],
        source: dict[str, ManifestEntry],
    ) -> None:
        self.keys = keys
        self.entries = entries
        self.source = source  # the manifest entries this was built for


def _trusted(entry: ManifestEntry, before_ns: int) -> bool:
    # Racily clean entries (stamped too close to the snapshot) are never cache hits.
    return (
        entry.kind == "file"
        and entry.digest is not None
        and entry.error is None
        and entry.mtime_ns < before_ns
        and entry.ctime_ns < before_ns
    )


class Manifest(BaseModel):
    """Every file under ``roots`` at one moment.

    ``entries`` maps absolute paths to entries. ``started_ns`` is the wall clock (ns since the
    epoch) just before the first ``stat``: the stat cache compares timestamps with it. The
    model is frozen; change it with ``model_copy(update=...)``, never by editing ``entries``
    in place (the stat cache it offers would not follow).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    algorithm: str
    roots: list[str]
    created: datetime
    started_ns: int
    entries: dict[str, ManifestEntry] = Field(default_factory=dict)
    # The text of small structured files (configs, scores, graded items) as they were, kept
    # by the verifier (guard.verify.keep_texts) so that what a deleted, emptied or moved file
    # said can still be read; each one's hash is its entry's digest.
    texts: dict[str, str] = Field(default_factory=dict)
    # Chunk fingerprints of protected weights files by content digest (base64 of packed
    # 8-byte hashes; guard.verify.keep_fingerprints), to find a part of one copied elsewhere
    # after the file itself is gone.
    chunks: dict[str, str] = Field(default_factory=dict)
    # The stat cache this manifest offers the next snapshot: built by snapshot() as it goes,
    # or on first use for a manifest read from disk; rebuilt when model_copy gave the
    # manifest other entries. Never serialised.
    _index: _StatIndex | None = PrivateAttr(default=None)

    def _stat_index(self) -> _StatIndex:
        if self._index is None or self._index.source is not self.entries:
            before = self.started_ns - RACY_WINDOW_NS
            trusted = {p: e for p, e in self.entries.items() if _trusted(e, before)}
            keys = {
                p: _pack_key(e.ctime_ns, e.mtime_ns, e.size, e.inode, e.dev)
                for p, e in trusted.items()
            }
            self._index = _StatIndex(keys, trusted, self.entries)
        return self._index

    def to_bytes(self) -> bytes:
        """The canonical serialised form: JSON, entries sorted by path.

        Returns:
            The bytes :meth:`write` stores and signs.
        """
        ordered = self.model_copy(
            update={
                "entries": dict(sorted(self.entries.items())),
                "texts": dict(sorted(self.texts.items())),
                "chunks": dict(sorted(self.chunks.items())),
            }
        )
        return ordered.model_dump_json().encode()

    def write(self, path: StrPath, key: PrivateKey | None = None) -> None:
        """Write the manifest as JSON, atomically; with a key, also a detached signature.

        The signature goes to ``path + ".sig"`` (base64 Ed25519 over the exact file bytes), the
        way Tripwire signs its database, so the manifest stays plain JSON anyone can read.

        Args:
            path: Destination file.
            key: Private key to sign with; ``None`` writes no signature (and removes a stale
                one, which would otherwise fail verification confusingly).
        """
        data = self.to_bytes()
        _atomic_write(os.fspath(path), data)
        sig_path = os.fspath(path) + ".sig"
        if key is not None:
            _atomic_write(sig_path, (encode_signature(sign(data, key)) + "\n").encode())
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sig_path)

    @classmethod
    def read(cls, path: StrPath, public_key: PublicKey | None = None) -> Manifest:
        """Read a manifest, verifying its signature when a public key is given.

        Args:
            path: The manifest file.
            public_key: The signer's public key. With it, a missing or bad ``.sig`` raises;
                without it, the file is trusted as it is.

        Returns:
            The manifest.

        Raises:
            ConfigError: The file does not exist.
            IntegrityError: Missing or invalid signature, or content that is not a manifest.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ConfigError(f"no manifest at {os.fspath(path)}") from None
        if public_key is not None:
            sig_path = os.fspath(path) + ".sig"
            try:
                with open(sig_path, "rb") as f:
                    sig = decode_signature(f.read())
            except FileNotFoundError:
                raise IntegrityError(f"manifest {os.fspath(path)} has no signature") from None
            try:
                verify_signature(data, sig, public_key)
            except IntegrityError:
                raise IntegrityError(
                    f"manifest {os.fspath(path)} does not match its signature: it was altered"
                ) from None
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise IntegrityError(f"{os.fspath(path)} is not a valid manifest: {exc}") from None

    def files(self) -> Iterator[ManifestEntry]:
        """Entries of regular files, in no particular order."""
        return (e for e in self.entries.values() if e.kind == "file")


def _atomic_write(path: str, data: bytes) -> None:
    # A reader (or a crash) must see the old file or the new one, never half of one.
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- hashing -------------------------------------------------------------------------------

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
# O_NOFOLLOW: a file swapped for a symlink between the walk and the open is not followed.
# O_NONBLOCK: a file swapped for a fifo does not hang the snapshot (regular files ignore it).


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (
        a.st_size == b.st_size
        and a.st_mtime_ns == b.st_mtime_ns
        and a.st_ctime_ns == b.st_ctime_ns
        and a.st_ino == b.st_ino
    )


def _hash_file(
    path: str, new: Callable[[], _Hasher], buf: mmap.mmap
) -> tuple[os.stat_result, str | None, str | None]:
    """Hash one file through ``buf``.

    Returns:
        The ``fstat`` taken before reading (what the stat cache keys on, so any change during
        or after the read shows next time), the hex digest (``None`` if not a regular file
        any more), and an error note (``None`` when the content was stable).
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return before, None, None
        if before.st_size > 64 * CHUNK:
            with contextlib.suppress(OSError):  # only a hint to the kernel's readahead
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        first = before
        digest = ""
        chunk = len(buf)
        with memoryview(buf) as view:
            for _attempt in range(_RETRIES):
                h = new()
                offset = 0
                size = before.st_size
                # Read exactly the size fstat gave: growth, shrinkage or a rewrite is caught by
                # the fstat after the read, and small files cost one read instead of two.
                while offset < size:
                    n = os.preadv(fd, [buf], offset)
                    if n == 0:
                        break
                    h.update(view[:n] if n < chunk else buf)
                    offset += n
                digest = h.hexdigest()
                after = os.fstat(fd)
                if _same(before, after) and offset == size:
                    return before, digest, None
                before = after
        # Still changing: keep the stat from before the first read, so that whatever the
        # content settles to, the next snapshot sees a different stat and hashes it again.
        return first, digest, "changed while being hashed"
    finally:
        os.close(fd)


def _hash_all(
    paths: list[str],
    algorithm: str,
    workers: int,
    progress: HashProgress | None = None,
    sizes: list[int] | None = None,
) -> list[tuple[os.stat_result | None, str | None, str | None]]:
    new = hasher_factory(algorithm)
    results: list[tuple[os.stat_result | None, str | None, str | None]] = [
        (None, None, None)
    ] * len(paths)
    # Threads pull indices from one shared counter (next() on a count is atomic under the GIL)
    # instead of one future per file: thousands of futures cost more than small files.
    counter = itertools.count()

    def work() -> None:
        buf = mmap.mmap(-1, CHUNK)
        try:
            while True:
                i = next(counter)
                if i >= len(paths):
                    return
                try:
                    results[i] = _hash_file(paths[i], new, buf)
                except FileNotFoundError:
                    results[i] = (None, None, None)  # vanished since the walk: not there
                except OSError as exc:
                    results[i] = (None, None, f"{type(exc).__name__}: {exc.strerror}")
                if progress is not None:
                    progress.advance(sizes[i] if sizes is not None else 0)
        finally:
            buf.close()

    n = min(workers, len(paths))
    if n <= 1:
        work()
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="peerguard-hash") as pool:
            for future in [pool.submit(work) for _ in range(n)]:
                future.result()
    return results


# --- snapshot ------------------------------------------------------------------------------


def _roots(roots: Iterable[StrPath]) -> list[str]:
    resolved: list[str] = []
    for root in roots:
        real = os.path.realpath(os.fspath(root))
        if not os.path.lexists(real):
            raise ConfigError(f"snapshot root {os.fspath(root)} does not exist")
        resolved.append(real)
    if not resolved:
        raise ConfigError("snapshot needs at least one root")
    # A root inside another root would be walked twice.
    unique = sorted(set(resolved))
    kept: list[str] = []
    for root in unique:
        if not any(root.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(root)
    return kept


def snapshot(
    roots: Iterable[StrPath],
    *,
    previous: Manifest | None = None,
    algorithm: str = "sha256",
    workers: int | None = None,
    progress: HashProgress | None = None,
) -> Manifest:
    """Record every file under ``roots``: stat data and content hash.

    Symlinks are never followed: a symlink is recorded with its target and not hashed. A file
    whose (size, mtime_ns, ctime_ns, inode, dev) equals its entry in ``previous`` keeps that
    entry's hash without being read (unless the entry was racily clean, see the module doc).

    Args:
        roots: Directories (or single files) to record; resolved to absolute real paths.
        previous: An earlier manifest of the same roots to use as a stat cache. Read it with a
            public key (:meth:`Manifest.read`): a forged cache hides changes.
        algorithm: Hash algorithm (see :func:`hasher_factory`). A ``previous`` made with a
            different algorithm is ignored.
        workers: Hashing threads; default: every core.
        progress: Told the files and bytes to hash (those the stat cache does not vouch
            for), then each file hashed.

    Returns:
        The new manifest.

    Raises:
        ConfigError: A root does not exist, or the algorithm is unknown.
    """
    hasher_factory(algorithm)  # fail on a bad algorithm before walking anything
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    started_ns = time.time_ns()
    created = datetime.now(UTC)
    root_paths = _roots(roots)
    cache = _StatIndex({}, {}, {})
    if previous is not None and previous.algorithm == algorithm:
        cache = previous._stat_index()

    hits, misses, unlisted = _walk(root_paths, cache.keys)
    keys, cached = cache.keys, cache.entries
    if len(hits) != len(keys):
        # Something cached was removed or changed: drop those paths. Set arithmetic and dict
        # copies run in C; only the stale paths cost a Python step each.
        keys, cached = dict(keys), dict(cached)
        for path in keys.keys() - set(hits):
            del keys[path], cached[path]
    new_keys: dict[str, bytes] = {}
    new_cached: dict[str, ManifestEntry] = {}
    extra: dict[str, ManifestEntry] = dict(unlisted)
    to_hash: list[tuple[str, int]] = []
    for path, st in misses:
        if stat.S_ISREG(st.st_mode):
            to_hash.append((path, st.st_size))
        else:
            extra[path] = _special(path, st)

    if progress is not None:
        progress.begin(len(to_hash), sum(size for _path, size in to_hash))
    if to_hash:
        # Biggest first, so one huge file starts at once and small ones fill the other cores.
        to_hash.sort(key=lambda item: item[1], reverse=True)
        paths = [path for path, _size in to_hash]
        sizes = [size for _path, size in to_hash]
        results = _hash_all(paths, algorithm, workers or os.cpu_count() or 1, progress, sizes)
        trusted_before = started_ns - RACY_WINDOW_NS
        for path, (st_or_none, digest, error) in zip(paths, results, strict=True):
            if st_or_none is None or not stat.S_ISREG(st_or_none.st_mode):
                # Unreadable, vanished, or swapped for something else since the walk.
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    note = error or "changed type while being hashed"
                    extra[path] = _entry(path, st, "file", error=note)
                else:
                    extra[path] = _special(path, st)
                continue
            entry = _entry(path, st_or_none, "file", digest=digest, error=error)
            if _trusted(entry, trusted_before):
                new_keys[path] = _key(st_or_none)
                new_cached[path] = entry
            else:
                extra[path] = entry

    if new_keys:
        keys, cached = dict(keys), dict(cached)
        keys.update(new_keys)
        cached.update(new_cached)
    # An unchanged tree of plain files shares one entries dict from manifest to manifest.
    entries = cached if not extra else {**cached, **extra}
    manifest = Manifest.model_construct(
        version=1,
        algorithm=algorithm,
        roots=root_paths,
        created=created,
        started_ns=started_ns,
        entries=entries,
    )
    manifest._index = _StatIndex(keys, cached, entries)
    return manifest


def _walk(
    roots: list[str], cache: dict[str, bytes]
) -> tuple[list[str], list[tuple[str, os.stat_result]], dict[str, ManifestEntry]]:
    """Walk the roots without following symlinks, matching files against the stat cache.

    Returns:
        The paths whose stat key matched the cache, every other non-directory path with its
        ``lstat``, and entries for directories that could not be listed.
    """
    hits: list[str] = []
    misses: list[tuple[str, os.stat_result]] = []
    unlisted: dict[str, ManifestEntry] = {}
    cached = cache.get
    hit = hits.append
    pack = _pack_key
    for root in roots:
        st = os.lstat(root)
        if not stat.S_ISDIR(st.st_mode):
            if cached(root) == _key(st):
                hit(root)
            else:
                misses.append((root, st))
            continue
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                it = os.scandir(directory)
            except FileNotFoundError:
                continue
            except OSError as exc:
                # A directory that cannot be listed is recorded, never silently skipped.
                with contextlib.suppress(OSError):
                    unlisted[directory] = _entry(
                        directory, os.lstat(directory), "dir", error=type(exc).__name__
                    )
                continue
            with it:
                # The hot loop of a re-snapshot: fast locals only, one packed key compared.
                for d in it:
                    if d.is_dir(follow_symlinks=False):
                        stack.append(d.path)
                        continue
                    try:
                        st = d.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    path = d.path
                    if cached(path) == pack(
                        st.st_ctime_ns, st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev
                    ):
                        hit(path)
                    else:
                        misses.append((path, st))
    return hits, misses, unlisted


def _special(path: str, st: os.stat_result) -> ManifestEntry:
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError as exc:
            return _entry(path, st, "symlink", error=type(exc).__name__)
        return _entry(path, st, "symlink", target=target)
    return _entry(path, st, "other")


# --- comparing -----------------------------------------------------------------------------


_META_FIELDS = ("mode", "mtime_ns", "ctime_ns", "inode", "dev", "nlink")


__all__ = [
    "CHUNK",
    "RACY_WINDOW_NS",
    "HashProgress",
    "Manifest",
    "ManifestEntry",
    "hasher_factory",
    "snapshot",
]
