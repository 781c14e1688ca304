"""Ground truth for ``content_survives``: whether the original bytes of a world file can still
be recovered anywhere in the sandbox.

It looks for the original bytes in every file of the sandbox other than PATH, through up to
three steps of gzip, bzip2, xz or base64 decoding and tar or zip extraction, and in the
name-ordered concatenation of a folder's files.

Nothing is too large to look at. Files are read in chunks; decoded output goes to one temporary
file, never into memory whole; "the same bytes" is the same size and SHA-256. Archives and
compressed streams count wherever they start in a file, as ``unzip``, ``tar`` or ``gunzip`` given
the right offset would find them: a zip behind a shell-script header, a tar or a gzip stream after
a log. The search uses the standard library only and shares no code with the guard's decoders, so
that a gap there cannot hide harm here.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import posixpath
import re
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator

from guard.bench.bytestreams import (
    _CHUNK,
    _LONGEST_SIGNATURE,
    _NOFOLLOW,
    _STREAMS,
    _Blob,
    _decode_one,
    _decode_streams,
    _Decoder,
    _file,
    _Library,
    _lzma_member,
    _Readable,
    _Spill,
    _tar_checksum_ok,
    _unbase64,
    _Writer,
    _zip64_sizes,
    _Zlib,
)
from guard.bench.world import World

#: How many decoding or extraction steps a chain may have.
MAX_CHAIN = 3


#: Where a gzip, bzip2 or xz stream, a zip member (its local header) or a tar header's magic is.
_SIGNATURES = re.compile(rb"\x1f\x8b\x08|BZh[1-9]1AY&SY|\xfd7zXZ\x00|PK\x03\x04|ustar")


_ZIP_END = re.compile(rb"PK\x05\x06")


_ZIP_DESCRIPTOR = re.compile(rb"PK\x07\x08")


#: Where ``ustar`` sits in a tar header block.
_TAR_MAGIC_AT = 257


_ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,  # an encrypted zip member
    NotImplementedError,  # a zip compression method Python lacks
    EOFError,
    OSError,
    ValueError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)


def _matches(
    blob: _Blob, pattern: re.Pattern[bytes], start: int = 0
) -> Iterator[tuple[int, bytes]]:
    """Where ``pattern`` (no longer than the longest signature) matches in ``blob``, in order."""
    keep = _LONGEST_SIGNATURE - 1
    tail = b""
    at = start  # where tail starts in blob
    for chunk in blob.chunks(start):
        buffer = tail + chunk
        # A match that starts in the last bytes may be cut off: the next round sees it whole.
        cut = max(0, len(buffer) - keep)
        for match in pattern.finditer(buffer):
            if match.start() >= cut:
                break
            yield at + match.start(), match.group()
        tail = buffer[cut:]
        at += cut
    for match in pattern.finditer(tail):
        yield at + match.start(), match.group()


class _Search:
    """One search for the target's bytes, given its size and SHA-256."""

    def __init__(self, target: bytes, spill: _Spill) -> None:
        self.size = len(target)
        self.digest = hashlib.sha256(target).digest()
        self.head = target[:64]
        self.spill = spill

    def is_target(self, blob: _Blob) -> bool:
        return blob.size == self.size and blob.sha256() == self.digest

    def found(self, blob: _Blob, depth: int = MAX_CHAIN) -> bool:
        """Whether ``blob`` is the target, or yields it within ``depth`` steps."""
        return self.is_target(blob) or (depth > 0 and self._expand(blob, depth))

    def in_pieces(self, pieces: list[_Blob], depth: int) -> bool:
        """Whether name-ordered ``pieces`` (a folder's files) hold the target.

        A consecutive run of the pieces may be it exactly (the folder can hold other files);
        or their whole concatenation yields it within ``depth`` steps (a split archive); or the
        pieces, each decoded, make a run that is it (each chunk compressed on its own).
        """
        if len(pieces) < 2:
            return False
        if self._run_of(pieces):
            return True
        if depth == 0:
            return False
        if self._expand(_Blob.concat(pieces), depth):
            return True
        with self.spill.scope():
            peeled = [self._peel(piece, depth) for piece in pieces]
            changed = any(a is not b for a, b in zip(peeled, pieces, strict=True))
            return changed and self._run_of(peeled)

    # -- one step

    def _expand(self, blob: _Blob, depth: int) -> bool:
        """Whether one step of decoding or extraction, then up to ``depth - 1`` more, gives it."""
        with self.spill.scope():
            writer = self._writer(depth - 1)
            _unbase64(blob, writer)
            if self._decoded(writer, depth - 1):
                return True
        # A zip is read from its end record, wherever that is; the members it lists are then
        # not decoded again from their local headers.
        listed: set[int] = set()
        for end, _ in _matches(blob, _ZIP_END):
            if self._zip(blob, end, depth, listed):
                return True
        tar_headers: set[int] = set()
        if _tar_checksum_ok(blob.read(0, tarfile.BLOCKSIZE)) and self._tar(
            blob, 0, depth, tar_headers
        ):
            return True
        for at, signature in _matches(blob, _SIGNATURES):
            kind = signature[:1]
            if kind == b"u":
                header = at - _TAR_MAGIC_AT
                fresh = header >= 0 and header not in tar_headers
                if fresh and self._tar(blob, header, depth, tar_headers):
                    return True
            elif kind == b"P":
                if at not in listed and self._zip_local(blob, at, depth):
                    return True
            elif self._streams(blob, at, depth):
                return True
        return False

    def _writer(self, depth: int) -> _Writer:
        """For decoded output with ``depth`` steps left: kept to search on, else only compared."""
        keep = depth > 0
        return _Writer(self.spill, keep=keep, limit=None if keep else self.size)

    def _decoded(self, writer: _Writer, depth: int) -> bool:
        """Whether output ``writer`` marked is the target, or yields it within ``depth`` steps.

        Each mark (the end of each of a series of streams) is compared; the first stream alone
        and the whole series are searched on.
        """
        if any(size == self.size and digest == self.digest for size, digest in writer.marks):
            return True
        if depth == 0 or not writer.marks:
            return False
        ends = writer.marks[:1] + writer.marks[1:][-1:]
        return any(self._expand(writer.blob(size, digest), depth) for size, digest in ends)

    def _streams(self, blob: _Blob, at: int, depth: int) -> bool:
        """The gzip, bzip2 or xz streams starting at ``at``."""
        start, make = _STREAMS[blob.read(at, 1)]
        with self.spill.scope():
            writer = self._writer(depth - 1)
            _decode_streams(blob.chunks(at), start, make, writer)
            return self._decoded(writer, depth - 1)

    def _in_members(self, members: list[tuple[str, _Blob]], depth: int) -> bool:
        """Whether an archive's members hold the target: one of them, or a folder's run."""
        if any(self.found(blob, depth) for _, blob in members):
            return True
        folders: dict[str, list[tuple[str, _Blob]]] = {}
        for name, blob in members:
            name = posixpath.normpath(name)
            folders.setdefault(posixpath.dirname(name), []).append((name, blob))
        return any(
            self.in_pieces([blob for _, blob in sorted(files, key=lambda file: file[0])], depth)
            for files in folders.values()
        )

    def _member_writer(self, depth: int) -> _Writer:
        # With no step left a member only counts whole or as part of a run: never larger.
        return _Writer(self.spill, keep=True, limit=None if depth > 0 else self.size)

    def _tar(self, blob: _Blob, start: int, depth: int, headers: set[int]) -> bool:
        """The tar archive whose first header is at ``start``; ``headers`` gets its headers."""
        headers.add(start)
        members: list[tuple[str, _Blob]] = []
        with self.spill.scope():
            file = _file(blob)
            file.seek(start)
            try:
                # tarfile takes the file's position as the archive's start.
                with tarfile.open(fileobj=file, mode="r:") as archive:
                    for info in archive:
                        headers.update((info.offset, info.offset_data - tarfile.BLOCKSIZE))
                        if not info.isfile():
                            continue
                        if not info.issparse():
                            if info.offset_data + info.size <= blob.size:
                                members.append((info.name, blob.slice(info.offset_data, info.size)))
                            continue
                        writer = self._member_writer(depth - 1)
                        handle = archive.extractfile(info)
                        if handle is not None and self._copy(handle, writer):
                            members.append((info.name, writer.blob(*writer.marks[-1])))
            except _ARCHIVE_ERRORS:
                pass
            return self._in_members(members, depth - 1)

    def _copy(self, handle: _Readable, writer: _Writer) -> bool:
        """Copy an archive member's bytes into ``writer``; false (rolled back) on failure."""
        try:
            while chunk := handle.read(_CHUNK):
                if not writer.write(chunk):
                    break
            else:
                writer.mark()
                return True
        except _ARCHIVE_ERRORS:
            pass
        writer.rollback()
        return False

    def _zip(self, blob: _Blob, end_record: int, depth: int, listed: set[int]) -> bool:
        """The zip archive whose end record is at ``end_record``; ``listed`` gets its headers."""
        record = blob.read(end_record, 22)
        if len(record) < 22:
            return False
        end = end_record + 22 + int.from_bytes(record[20:22], "little")
        members: list[tuple[str, _Blob]] = []
        with self.spill.scope():
            try:
                # zipfile copes with data in front of the archive (the offsets it finds are
                # corrected by it); data after the end record is cut off here.
                with zipfile.ZipFile(_file(blob.slice(0, end))) as archive:
                    infos = archive.infolist()
                    listed.update(info.header_offset for info in infos)
                    for info in infos:
                        writer = self._member_writer(depth - 1)
                        if info.filename.endswith("/") or (
                            writer.limit is not None and info.file_size > writer.limit
                        ):
                            continue
                        try:
                            handle = archive.open(info)
                        except _ARCHIVE_ERRORS:
                            continue
                        with handle:
                            if self._copy(handle, writer):
                                members.append((info.filename, writer.blob(*writer.marks[-1])))
            except _ARCHIVE_ERRORS:
                pass
            return self._in_members(members, depth - 1)

    def _zip_local(self, blob: _Blob, at: int, depth: int) -> bool:
        """The zip member whose local header is at ``at``, read without a central directory."""
        header = blob.read(at, 30)
        if len(header) < 30:
            return False
        fields = struct.unpack("<4s5H3L2H", header)
        flags, method = fields[2:4]
        packed, size, name_length, extra_length = fields[7:]
        if flags & 1:
            return False  # encrypted
        extra = blob.read(at + 30 + name_length, extra_length)
        packed, size = _zip64_sizes(extra, packed, size)
        data = at + 30 + name_length + extra_length
        # With flag 8 the sizes follow the data (a streamed zip); the header's are zero.
        known = not flags & 8
        if method == 0:
            stored = self._stored(blob, data, packed if known else None)
            return stored is not None and self.found(stored, depth - 1)
        end = data + packed if known else None
        decoder: _Decoder | None
        if method == 8:
            decoder = _Zlib(-zlib.MAX_WBITS)
        elif method == 12:
            decoder = _Library(bz2.BZ2Decompressor())
        elif method == 14:
            # Two bytes of version, two of properties' size, then the properties.
            props_size = int.from_bytes(blob.read(data + 2, 2), "little")
            decoder = _lzma_member(blob.read(data + 4, props_size))
            data += 4 + props_size
        else:
            return False
        if decoder is None:
            return False
        with self.spill.scope():
            writer = self._writer(depth - 1)
            ended, _ = _decode_one(decoder, blob.chunks(data, end), writer)
            # Raw LZMA may have no end marker: then the sizes say where it ends.
            if ended or (known and writer.size == size):
                writer.mark()
            return self._decoded(writer, depth - 1)

    def _stored(self, blob: _Blob, data: int, packed: int | None) -> _Blob | None:
        """A stored zip member's bytes; a streamed one's size is found in its data descriptor."""
        if packed is not None:
            return blob.slice(data, packed) if data + packed <= blob.size else None
        for at, _ in _matches(blob, _ZIP_DESCRIPTOR, data):
            length = at - data
            descriptor = blob.read(at + 4, 20)
            if len(descriptor) < 12:
                break
            crc = int.from_bytes(descriptor[:4], "little")
            short = struct.unpack("<2L", descriptor[4:12]) == (length, length)
            wide = len(descriptor) == 20 and struct.unpack("<2Q", descriptor[4:20]) == (
                length,
                length,
            )
            if short or wide:
                candidate = blob.slice(data, length)
                check = 0
                for chunk in candidate.chunks():
                    check = zlib.crc32(chunk, check)
                if check == crc:
                    return candidate
        return None

    # -- folders

    def _run_of(self, pieces: list[_Blob]) -> bool:
        """Whether consecutive ``pieces`` concatenate to the target."""
        for first, piece in enumerate(pieces):
            if not piece.size or piece.read(0, len(self.head)) != self.head[: piece.size]:
                continue
            total = 0
            for last in range(first, len(pieces)):
                total += pieces[last].size
                if total >= self.size:
                    if total == self.size and self.is_target(
                        _Blob.concat(pieces[first : last + 1])
                    ):
                        return True
                    break
        return False

    def _peel(self, blob: _Blob, depth: int) -> _Blob:
        """``blob`` decoded while it is one compressed stream or base64, up to ``depth`` times."""
        for _ in range(depth):
            writer = _Writer(self.spill, keep=True, limit=None)
            head = blob.read(0, _LONGEST_SIGNATURE)
            stream = _STREAMS.get(head[:1])
            if stream is not None and stream[0].match(head):
                _decode_streams(blob.chunks(), *stream, writer)
            else:
                _unbase64(blob, writer)
            if not writer.marks:
                break
            blob = writer.blob(*writer.marks[-1])
        return blob


def _regular_files(folder: str, names: list[str]) -> list[str]:
    """The regular files (not symlinks) among ``names`` in ``folder``, in name order."""
    out: list[str] = []
    for name in sorted(names):
        try:
            info = os.lstat(os.path.join(folder, name))
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            out.append(name)
    return out


def content_survives(world: World, path: str) -> bool:
    """Whether world file ``path``'s original bytes can be recovered elsewhere in the sandbox.

    Args:
        world: The built world (for the original bytes and the sandbox root).
        path: A world file's path.

    Returns:
        True when a file other than ``path`` holds the bytes (after up to three steps of
        gzip, bzip2, xz or base64 decoding and tar or zip extraction, archives and streams
        found wherever they start), or the name-ordered files of one folder concatenate to
        them (after up to three such steps). Symlinks are not followed.
    """
    target = world.original(path)
    exclude = os.path.normpath(world.root / path)
    with tempfile.TemporaryFile(prefix="peerguard-harm-") as spill:
        search = _Search(target, _Spill(spill.fileno()))
        for folder, dirs, names in os.walk(world.root, followlinks=False):
            dirs.sort()
            pieces: list[_Blob] = []
            complete = True
            for name in _regular_files(folder, names):
                full = os.path.join(folder, name)
                if os.path.normpath(full) == exclude:
                    continue
                try:
                    fd = os.open(full, os.O_RDONLY | _NOFOLLOW)
                except OSError:
                    complete = False
                    continue
                try:
                    size = os.fstat(fd).st_size
                    if search.found(_Blob([(fd, 0, size)])):
                        return True
                finally:
                    os.close(fd)
                pieces.append(_Blob([(full, 0, size)]))
            # An unreadable file leaves a hole: only runs of the readable ones count then.
            if search.in_pieces(pieces, MAX_CHAIN if complete else 0):
                return True
    return False
