"""Byte plumbing for the bench's ground truth (:mod:`guard.bench.survival`): reading files by
offset, a spill file for decoded output, and stream decoders, all from the standard library."""

from __future__ import annotations

import base64
import binascii
import bz2
import hashlib
import io
import itertools
import lzma
import os
import re
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: How much is read, decoded or written at a time.
_CHUNK = 1024 * 1024


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_WHITESPACE = b" \t\n\r\v\f"


_URL_TO_STD = bytes.maketrans(b"-_", b"+/")


_DECODE_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


def _pread(source: int | str, offset: int, count: int) -> bytes:
    """Up to ``count`` bytes at ``offset`` of an open descriptor, or of a path opened for it."""
    if isinstance(source, str):
        try:
            fd = os.open(source, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return b""
        try:
            return _pread(fd, offset, count)
        finally:
            os.close(fd)
    parts: list[bytes] = []
    while count > 0:
        try:
            part = os.pread(source, count, offset)
        except OSError:
            break
        if not part:
            break
        parts.append(part)
        offset += len(part)
        count -= len(part)
    return b"".join(parts)


class _Blob:
    """Bytes kept in files: ``(source, start, length)`` pieces, read in order.

    A source is an open descriptor, or a path opened for each read (a folder's files, which may
    be many). Nothing is read until asked for.
    """

    __slots__ = ("digest", "pieces", "size")

    def __init__(
        self, pieces: Iterable[tuple[int | str, int, int]], digest: bytes | None = None
    ) -> None:
        self.pieces = tuple(piece for piece in pieces if piece[2] > 0)
        self.size = sum(piece[2] for piece in self.pieces)
        self.digest = digest

    @classmethod
    def concat(cls, blobs: Iterable[_Blob]) -> _Blob:
        """The blobs one after the other."""
        return cls(piece for blob in blobs for piece in blob.pieces)

    def slice(self, start: int, length: int, digest: bytes | None = None) -> _Blob:
        """``length`` bytes from ``start`` (fewer past the end)."""
        out: list[tuple[int | str, int, int]] = []
        end = start + length
        at = 0
        for source, first, size in self.pieces:
            low, high = max(start, at), min(end, at + size)
            if low < high:
                out.append((source, first + low - at, high - low))
            at += size
            if at >= end:
                break
        return _Blob(out, digest)

    def read(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes at ``offset``."""
        parts: list[bytes] = []
        for source, first, length in self.slice(offset, count).pieces:
            part = _pread(source, first, length)
            parts.append(part)
            if len(part) < length:  # the file got shorter
                break
        return b"".join(parts)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from ``start`` to ``end`` (default: the end), a chunk at a time."""
        end = self.size if end is None else min(end, self.size)
        while start < end:
            data = self.read(start, min(_CHUNK, end - start))
            if not data:
                return
            yield data
            start += len(data)

    def sha256(self) -> bytes:
        """The SHA-256 of the bytes (computed once)."""
        if self.digest is None:
            digest = hashlib.sha256()
            for chunk in self.chunks():
                digest.update(chunk)
            self.digest = digest.digest()
        return self.digest


class _Window(io.RawIOBase):
    """A blob as a seekable file, for :mod:`zipfile` and :mod:`tarfile`."""

    def __init__(self, blob: _Blob) -> None:
        super().__init__()
        self._blob = blob
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._at, os.SEEK_END: self._blob.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start")
        self._at = base + offset
        return self._at

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._blob.read(self._at, len(view))
        view[: len(data)] = data
        self._at += len(data)
        return len(data)


def _file(blob: _Blob) -> io.BufferedReader:
    return io.BufferedReader(_Window(blob), buffer_size=64 * 1024)


class _Spill:
    """One temporary file for decoded output, used as a stack.

    Output is appended at the end; what a :meth:`scope` appended is given back when it exits.
    The search is depth-first, so what is still needed (an archive's members while its folders
    are checked) always lies before what is being made.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.end = 0
        self._high = 0

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Give back, on exit, everything appended inside."""
        mark = self.end
        try:
            yield
        finally:
            self.end = mark
            if self._high > mark:
                os.ftruncate(self.fd, mark)
                self._high = mark

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, self.end)
            self.end += written
            view = view[written:]
        self._high = max(self._high, self.end)


class _Writer:
    """Decoded bytes: hashed, appended to the spill when ``keep``, refused past ``limit``.

    :meth:`mark` records where the output is whole (the end of a stream or a member), with its
    size and SHA-256; :meth:`rollback` drops what came after the last mark.
    """

    def __init__(self, spill: _Spill, *, keep: bool, limit: int | None) -> None:
        self.spill = spill
        self.keep = keep
        self.limit = limit
        self.start = spill.end
        self.size = 0
        self.marks: list[tuple[int, bytes]] = []
        self._hash = hashlib.sha256()
        self._good = (0, self._hash.copy())

    def write(self, data: bytes) -> bool:
        """Take ``data``; false (taking nothing) when it would go past the limit."""
        if self.limit is not None and self.size + len(data) > self.limit:
            return False
        self.size += len(data)
        self._hash.update(data)
        if self.keep:
            self.spill.append(data)
        return True

    def mark(self) -> None:
        self.marks.append((self.size, self._hash.digest()))
        self._good = (self.size, self._hash.copy())

    def rollback(self) -> None:
        self.size, good = self._good
        self._hash = good.copy()
        if self.keep:
            self.spill.end = self.start + self.size

    def blob(self, size: int, digest: bytes) -> _Blob:
        """The first ``size`` bytes written (kept ones only)."""
        return _Blob([(self.spill.fd, self.start, size)], digest)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused(self) -> bytes: ...

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The output ``data`` gives, a chunk at a time."""
        ...


class _Zlib:
    """A zlib decoder (gzip or raw deflate) behind the :class:`_Decoder` interface."""

    def __init__(self, wbits: int) -> None:
        self._decoder = zlib.decompressobj(wbits)

    @property
    def eof(self) -> bool:
        return self._decoder.eof

    @property
    def unused(self) -> bytes:
        return self._decoder.unused_data

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            out = self._decoder.decompress(data, _CHUNK)
            yield out
            data = self._decoder.unconsumed_tail
            if self._decoder.eof or (not data and len(out) < _CHUNK):
                return


class _Library:
    """A bz2 or lzma decoder behind the :class:`_Decoder` interface."""

    def __init__(self, decoder: bz2.BZ2Decompressor | lzma.LZMADecompressor) -> None:
        self._decoder = decoder

    @property
    def eof(self) -> bool:
        return self._decoder.eof

    @property
    def unused(self) -> bytes:
        return self._decoder.unused_data

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield self._decoder.decompress(data, _CHUNK)
        while not self._decoder.eof and not self._decoder.needs_input:
            yield self._decoder.decompress(b"", _CHUNK)


def _decode_one(decoder: _Decoder, chunks: Iterator[bytes], writer: _Writer) -> tuple[bool, bytes]:
    """Decode one stream from ``chunks``: whether it ended, and the bytes read past its end."""
    try:
        for data in chunks:
            for out in decoder.feed(data):
                if not writer.write(out):
                    return False, b""
            if decoder.eof:
                return True, decoder.unused
    except _DECODE_ERRORS:
        pass
    return False, b""


def _decode_streams(
    chunks: Iterator[bytes], start: re.Pattern[bytes], make: Callable[[], _Decoder], writer: _Writer
) -> None:
    """Decode streams that follow one another, as gunzip, bunzip2 and unxz do; mark each end."""
    rest = b""
    while True:
        while len(rest) < _LONGEST_SIGNATURE:
            more = next(chunks, None)
            if more is None:
                break
            rest += more
        if not start.match(rest):
            break
        ended, rest = _decode_one(make(), itertools.chain([rest], chunks), writer)
        if not ended:
            break
        writer.mark()
    writer.rollback()


def _b64(text: bytes) -> bytes:
    return base64.b64decode(text.translate(_URL_TO_STD), validate=True)


def _unbase64(blob: _Blob, writer: _Writer) -> None:
    """Decode ``blob`` as base64 into ``writer``: marked if it is base64, else rolled back."""
    if _decode_base64(blob, writer):
        writer.mark()
    else:
        writer.rollback()


def _decode_base64(blob: _Blob, writer: _Writer) -> bool:
    """Whether ``blob`` is base64 (standard or URL-safe, whitespace ignored, as ``base64 -d``)."""
    probe = blob.read(0, 4096).translate(None, _WHITESPACE)
    if probe and not _BASE64_PROBE.fullmatch(probe):
        return False  # most files are not base64, and say so at once
    pending = b""
    padding = 0
    alphabets: set[bytes] = set()
    seen = False
    try:
        for chunk in blob.chunks():
            text = chunk.translate(None, _WHITESPACE)
            if not text:
                continue
            if padding:  # only more padding may follow padding
                if text.strip(b"="):
                    return False
                padding += len(text)
                continue
            cut = text.find(b"=")
            if cut >= 0:
                if text[cut:].strip(b"="):
                    return False
                padding = len(text) - cut
                text = text[:cut]
            if not _BASE64_CHARS.fullmatch(text):
                return False
            alphabets.update(kind for kind in (b"+", b"/", b"-", b"_") if kind in text)
            if alphabets & {b"+", b"/"} and alphabets & {b"-", b"_"}:
                return False
            seen = True
            data = pending + text
            whole = len(data) - len(data) % 4
            if not writer.write(_b64(data[:whole])):
                return False
            pending = data[whole:]
        if not seen or padding > 2 or (len(pending) + padding) % 4:
            return False
        if pending and not writer.write(_b64(pending + b"=" * padding)):
            return False
    except (binascii.Error, ValueError):
        return False
    return True


def _tar_checksum_ok(data: bytes) -> bool:
    # Old-style (v7) tar headers have no magic; their checksum field identifies them.
    if len(data) < tarfile.BLOCKSIZE:
        return False
    try:
        stored = int(data[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    header = data[:148] + b" " * 8 + data[156:512]
    return stored == sum(header)


def _zip64_sizes(extra: bytes, packed: int, size: int) -> tuple[int, int]:
    """A local header's compressed and full sizes, from its zip64 extra field where marked so."""
    if _ZIP64_MARK not in (packed, size):
        return packed, size
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, at)
        if tag == 1:
            field = extra[at + 4 : at + 4 + length]
            values = [
                int.from_bytes(field[i : i + 8], "little") for i in range(0, len(field) - 7, 8)
            ]
            if size == _ZIP64_MARK and values:
                size = values.pop(0)
            if packed == _ZIP64_MARK and values:
                packed = values.pop(0)
            break
        at += 4 + length
    return packed, size


def _lzma_member(props: bytes) -> _Decoder | None:
    """The decoder for a zip member's raw LZMA data, from the properties in front of it."""
    if len(props) < 5:
        return None
    settings, dict_size = props[0], int.from_bytes(props[1:5], "little")
    lc, rest = settings % 9, settings // 9
    lp, pb = rest % 5, rest // 5
    filters = [{"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}]
    try:
        return _Library(lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters))
    except _DECODE_ERRORS:
        return None


_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/_-]*")


_BASE64_PROBE = re.compile(rb"[A-Za-z0-9+/_=-]*")


_ZIP64_MARK = 0xFFFFFFFF


_LONGEST_SIGNATURE = 10


#: By a signature's first byte: what starts a stream of that kind, and its decoder.
_STREAMS: dict[bytes, tuple[re.Pattern[bytes], Callable[[], _Decoder]]] = {
    b"\x1f": (re.compile(rb"\x1f\x8b\x08"), lambda: _Zlib(16 + zlib.MAX_WBITS)),
    b"B": (re.compile(rb"BZh[1-9]"), lambda: _Library(bz2.BZ2Decompressor())),
    b"\xfd": (
        re.compile(rb"\xfd7zXZ\x00"),
        lambda: _Library(lzma.LZMADecompressor(format=lzma.FORMAT_XZ)),
    ),
}
