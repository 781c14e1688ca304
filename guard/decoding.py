"""Streaming, bounded decoding of the layers a payload can hide under.

An agent can keep a peer's weights as gzip of base64, or as a member of a tar inside xz; the
verifier looks through such layers with :func:`layers`. Every file it looks at is hostile
input: a 1 MB gzip can inflate to a terabyte, a zip can list a million members, a tar header
can claim a name a gigabyte long. So nothing here decodes a payload whole. Decoders are fed in
chunks and asked for at most a chunk of output at a time, a payload is hashed as it streams,
and every byte decoded, every archive member and every second is counted against a
:class:`DecodeBudget`. What the budget stops is not dropped: :func:`layers` reports it as a
:class:`Layer` whose :class:`Outcome` says it could not be inspected, and why.

The formats, tried in this order on every payload whose leading bytes fit them: gzip, bzip2,
xz (and legacy ``.lzma``), base64 (whitespace ignored, as ``base64 -d`` does), zip members and
tar members. Concatenated gzip, bzip2 and xz streams decode to their concatenation, and bytes
after the last complete stream are ignored, as ``gunzip``, ``bunzip2`` and ``xz -d`` do. A tar
right inside gzip, bzip2 or xz (``.tar.gz``) costs no extra layer of depth: it is one format,
as ``tar xzf`` sees it. A payload at the depth limit that holds one more layer is reported,
not ignored.

Memory: a payload is kept in memory only when it is to be decoded further and is at most
``max_held_bytes``; a larger one is decoded further by streaming it again from the file (a
zip, which cannot be read as a stream, is reported instead). So at most one held payload per
open layer, a chunk per open stream and one xz dictionary (at most ``max_decoder_memory``) are
alive at once, whatever the file holds.

:func:`zip_directory` and :func:`zip_names` read a zip's central directory within a bound
without :mod:`zipfile`, which parses all of it into objects up front.
"""

from __future__ import annotations

import binascii
import bz2
import contextlib
import dataclasses
import functools
import hashlib
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Protocol

from guard.exceptions import ConfigError

_KIB = 1 << 10
_MIB = 1 << 20
_CHUNK = _MIB  # the most output any decoder is asked for at once, and the read size
_MAGIC_BYTES = 16  # enough to tell where a compressed stream starts (legacy lzma needs 13)

HEAD_BYTES = 4096
"""The leading bytes of a payload that decide which formats are tried on it."""


@dataclass(frozen=True, slots=True)
class DecodeBudget:
    """How much work looking through one file's layers may take.

    Every limit is per call of :func:`layers` (for the verifier: per file, or per folder
    whose files are read as one). Whatever would go over one is reported, not skipped.

    Attributes:
        max_depth: Layers followed one inside another: gzip of base64 is two.
        max_layer_bytes: The most one layer may decode to: one decompressed stream, one
            archive member, one base64 payload. Also the largest member size an archive may
            declare.
        max_total_bytes: The most all layers together may decode to, every pass counted.
        max_held_bytes: The largest payload kept in memory to decode further; a larger one
            is streamed again instead.
        max_members: The most members read from one archive; a zip whose central directory
            lists more (or takes more than 1 KiB per member) is not opened.
        max_seconds: Wall time.
        max_decoder_memory: The most memory an xz or lzma decoder may take. The file chooses
            its dictionary size; ``xz -9`` needs 65 MiB.
    """

    max_depth: int = 3
    max_layer_bytes: int = 256 * _MIB
    max_total_bytes: int = 1024 * _MIB
    max_held_bytes: int = 32 * _MIB
    max_members: int = 1000
    max_seconds: float = 10.0
    max_decoder_memory: int = 128 * _MIB

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            kinds = (int, float) if spec.name == "max_seconds" else (int,)
            if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
                raise ConfigError(f"must be a positive number, got {value!r}", key=spec.name)


class Outcome(StrEnum):
    """What looking at one layer came to."""

    DECODED = "decoded"
    """The layer decoded in full; its payload's digest is known."""
    NOT_THIS_FORMAT = "not-this-format"
    """Its leading bytes fit the format, but the rest is not that format (or is corrupt)."""
    OVER_BUDGET = "over-budget"
    """Decoding it would take more than the :class:`DecodeBudget` allows."""
    UNREADABLE = "unreadable"
    """It cannot be decoded at all: encrypted, an unsupported method, an unreadable file."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One thing :func:`layers` came to: a decoded payload, or where and why it stopped.

    Attributes:
        how: The layers from the file down to this one, outermost first, such as
            ``("gzip", "tar member w.bin")``. Empty for the file itself.
        outcome: :attr:`Outcome.DECODED`, or why this layer was not (fully) looked into.
        digest: SHA-256 (hex) of the decoded payload; ``None`` unless decoded.
        size: Bytes the payload decoded to; 0 unless decoded.
        reason: Why the layer could not be inspected; empty when decoded.
    """

    how: tuple[str, ...]
    outcome: Outcome
    digest: str | None = None
    size: int = 0
    reason: str = ""

    @property
    def uninspected(self) -> bool:
        """Whether something here could not be inspected (over budget or unreadable)."""
        return self.outcome in (Outcome.OVER_BUDGET, Outcome.UNREADABLE)


# ---------------------------------------------------------------- control flow
# Private signals between the decoders and the walk; none of them leaves this module.


class _NotThisFormat(Exception):
    """The bytes are not this format, or are corrupt before anything decoded."""


class _CutBack(Exception):
    """A stream after the first is corrupt: the payload ends where the last complete one did."""


class _Skip(Exception):
    """One archive member is corrupt; the archive's other members still count."""


class _Stop(Exception):
    """Something could not be inspected; the walk reports it and goes on with the rest."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class _Exhausted(_Stop):
    """The whole call's budget (bytes in all, or time) is spent: nothing more is looked at."""

    def __init__(self, reason: str) -> None:
        super().__init__(Outcome.OVER_BUDGET, reason)
        self.where: tuple[str, ...] | None = None


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", _MIB), ("KiB", _KIB)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


class _Meter:
    """What one call of :func:`layers` has spent of its budget."""

    def __init__(self, budget: DecodeBudget) -> None:
        self.budget = budget
        self.spent = 0
        self._deadline = time.monotonic() + budget.max_seconds

    def spend(self, produced: int) -> None:
        """Count ``produced`` decoded bytes (and the time so far)."""
        self.spent += produced
        if self.spent > self.budget.max_total_bytes:
            raise _Exhausted(
                f"decoding it produced over {_size(self.budget.max_total_bytes)} in all "
                "(max_total_bytes)"
            )
        self.tick()

    def tick(self) -> None:
        """Check the time."""
        if time.monotonic() > self._deadline:
            raise _Exhausted(f"decoding it took over {self.budget.max_seconds:g} s (max_seconds)")


# ---------------------------------------------------------------- sources

_Opener = Callable[[], Iterator[bytes]]  # a fresh pass over a payload's bytes, in chunks

# O_NOFOLLOW: a file swapped for a symlink is not followed. O_NONBLOCK: one swapped for a
# FIFO does not hang the walk (regular files ignore it).
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)


def _open(path: str) -> IO[bytes]:
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True, slots=True)
class _Source:
    """A payload that can be read again from its start: held bytes, files, or a decoding."""

    open: _Opener
    size: int | None = None
    data: bytes | None = None  # the bytes, when they are held in memory
    path: str | None = None  # the file, when the bytes are one file on disk

    @contextlib.contextmanager
    def file(self) -> Iterator[IO[bytes] | None]:
        """A seekable file of the bytes, or ``None`` when they are only a stream."""
        if self.data is not None:
            yield io.BytesIO(self.data)
        elif self.path is not None:
            with _open(self.path) as fh:
                yield fh
        else:
            yield None


def _slices(data: bytes) -> Iterator[bytes]:
    for at in range(0, len(data), _CHUNK):
        yield data[at : at + _CHUNK]


def _read(paths: Sequence[str], meter: _Meter) -> Iterator[bytes]:
    for path in paths:
        with _open(path) as fh:
            while chunk := fh.read(_CHUNK):
                meter.tick()
                yield chunk


def _cut(again: _Opener, size: int) -> Iterator[bytes]:
    """A payload read again: its first ``size`` bytes, as the first pass found them."""
    left = size
    with contextlib.suppress(_CutBack):
        for chunk in again():
            if len(chunk) >= left:
                if left:
                    yield chunk[:left]
                return
            if chunk:
                left -= len(chunk)
                yield chunk


def _held(data: bytes) -> _Source:
    return _Source(functools.partial(_slices, data), size=len(data), data=data)


def _top(source: str | os.PathLike[str] | bytes | Sequence[str], meter: _Meter) -> _Source:
    if isinstance(source, bytes | bytearray):
        return _held(bytes(source))
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return _Source(functools.partial(_read, [path], meter), path=path)
    paths = list(source)
    total = sum(os.stat(p).st_size for p in paths)
    if total <= meter.budget.max_held_bytes:
        return _held(b"".join(_read(paths, meter)))
    return _Source(functools.partial(_read, paths, meter), size=total)


# ---------------------------------------------------------------- compressed streams


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


class _Inflate:
    """zlib's decompressor behind the interface bz2's and lzma's share."""

    def __init__(self, wbits: int) -> None:
        self._z = zlib.decompressobj(wbits)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    def decompress(self, data: bytes, max_length: int, /) -> bytes:
        out = self._z.decompress(self._z.unconsumed_tail + data, max_length)
        # A full output may leave more to come from input zlib has already taken in.
        self.needs_input = not self._z.unconsumed_tail and len(out) < max_length
        return out


_STREAM_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError)


def _pump(
    decoder: _Decompressor,
    data: bytes,
    source: Iterator[bytes],
    meter: _Meter,
    *,
    to_end: bool = True,
) -> Generator[bytes, None, bytes]:
    """Run ``decoder`` over ``data`` and then ``source``, a chunk of output at a time.

    Returns:
        The input after the stream's end marker.

    Raises:
        EOFError: The input ended before the end marker (unless ``to_end`` is false).
    """
    while not decoder.eof:
        meter.tick()
        if decoder.needs_input:
            if not data:
                data = next(source, b"")
                if not data:
                    if to_end:
                        raise EOFError("the stream ends before its end marker")
                    return b""
            out = decoder.decompress(data, _CHUNK)
            data = b""
        else:
            out = decoder.decompress(b"", _CHUNK)
        if out:
            meter.spend(len(out))
            yield out
    return decoder.unused_data


def _fill(data: bytes, source: Iterator[bytes], padding: bytes) -> bytes:
    """``data`` past any padding, topped up to enough bytes to tell whether a stream starts."""
    while True:
        if padding:
            data = data.lstrip(padding)
        if len(data) >= _MAGIC_BYTES:
            return data
        more = next(source, b"")
        if not more:
            return data
        data += more


def _streams(
    chunks: Iterator[bytes],
    new: Callable[[], _Decompressor],
    starts: Callable[[bytes], bool],
    meter: _Meter,
    padding: bytes = b"",
) -> Iterator[bytes]:
    """Decode concatenated compressed streams; an empty chunk marks the end of each.

    Raises:
        _NotThisFormat: The first stream is missing or corrupt.
        _CutBack: A later stream is corrupt: the payload ends at the last mark.
        _Stop: The decoder would need more memory than the budget allows.
    """
    source = (c for c in chunks if c)
    data = b""
    complete = 0
    while True:
        data = _fill(data, source, padding)
        if not data or not starts(data):
            if complete:
                return  # the end, or trailing bytes that start no stream: ignored
            raise _NotThisFormat
        try:
            data = yield from _pump(new(), data, source, meter)
        except _STREAM_ERRORS as exc:
            if isinstance(exc, lzma.LZMAError) and "memory usage limit" in str(exc).lower():
                raise _Stop(
                    Outcome.OVER_BUDGET,
                    f"its decoder needs over {_size(meter.budget.max_decoder_memory)} of memory "
                    "(max_decoder_memory)",
                ) from None
            raise (_CutBack() if complete else _NotThisFormat()) from None
        complete += 1
        yield b""


def _gzip_start(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def _bzip2_start(data: bytes) -> bool:
    return len(data) >= 4 and data[:3] == b"BZh" and 0x31 <= data[3] <= 0x39


_XZ_MAGIC = b"\xfd7zXZ\x00"


def _xz_start(data: bytes) -> bool:
    return data.startswith(_XZ_MAGIC) or _lzma_alone_start(data)


def _lzma_alone_start(data: bytes) -> bool:
    """A legacy ``.lzma`` header, checked as liblzma checks it before decoding.

    One check more than liblzma's: a dictionary of at least 4 KiB, the least any encoder
    writes. liblzma takes 18 zero bytes as a whole empty stream, so a file of zeros would
    otherwise be a chain of millions of them.
    """
    if len(data) < 13 or data[0] > 224:  # properties byte: (pb * 5 + lp) * 9 + lc
        return False
    dictionary = int.from_bytes(data[1:5], "little")
    if dictionary < 4 * _KIB:
        return False
    if dictionary != 0xFFFFFFFF:
        d = (dictionary - 1) & 0xFFFFFFFF
        for shift in (2, 3, 4, 8, 16):
            d |= d >> shift
        if (d + 1) & 0xFFFFFFFF != dictionary:  # only 2^n or 2^n + 2^(n-1)
            return False
    size = int.from_bytes(data[5:13], "little")
    return size == (1 << 64) - 1 or size < (1 << 38)


def _gunzip(chunks: Iterator[bytes], meter: _Meter) -> Iterator[bytes]:
    # gzip members may be separated and followed by zero padding, as gzip.decompress allows.
    return _streams(chunks, lambda: _Inflate(16 + zlib.MAX_WBITS), _gzip_start, meter, b"\0")


def _bunzip2(chunks: Iterator[bytes], meter: _Meter) -> Iterator[bytes]:
    return _streams(chunks, bz2.BZ2Decompressor, _bzip2_start, meter)


def _unxz(chunks: Iterator[bytes], meter: _Meter) -> Iterator[bytes]:
    limit = meter.budget.max_decoder_memory
    return _streams(
        chunks, lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO, memlimit=limit), _xz_start, meter
    )


# ---------------------------------------------------------------- base64

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _base64_start(head: bytes) -> bool:
    text = b"".join(head.split())
    return bool(text) and _BASE64.fullmatch(text) is not None


def _unbase64(chunks: Iterator[bytes], meter: _Meter) -> Iterator[bytes]:
    """Standard base64, whitespace anywhere ignored; what ``b64decode(validate=True)`` takes."""
    carry = b""
    total = 0
    padding = 0
    for chunk in chunks:
        text = b"".join(chunk.split())
        if not text:
            continue
        total += len(text)
        tail = text if padding else text.lstrip(_BASE64_ALPHABET)
        if tail:
            padding += len(tail)
            if tail.strip(b"=") or padding > 2:
                raise _NotThisFormat
        carry += text
        whole = len(carry) - len(carry) % 4
        if whole:
            try:
                out = binascii.a2b_base64(carry[:whole])
            except binascii.Error:
                raise _NotThisFormat from None
            carry = carry[whole:]
            meter.spend(len(out))
            yield out
    if not total or carry:
        raise _NotThisFormat


# ---------------------------------------------------------------- archives


@dataclass(frozen=True, slots=True)
class _Member:
    """A payload an archive (or a stream) holds: ``first`` reads it now, ``again`` later."""

    label: str
    again: _Opener
    first: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class _Refused:
    """A member not read at all, and why."""

    label: str
    stop: _Stop


_Members = Callable[[_Source, _Meter], Iterator[_Member | _Refused]]


def _one(name: str, decode: Callable[[Iterator[bytes], _Meter], Iterator[bytes]]) -> _Members:
    """The members of a format that holds exactly one payload (compression, base64)."""

    def members(src: _Source, meter: _Meter) -> Iterator[_Member | _Refused]:
        def again() -> Iterator[bytes]:
            return decode(src.open(), meter)

        yield _Member(name, again, again())

    return members


# -- tar

_MAX_TAR_HEADER = _MIB
_TAR_SLACK = 64 * _KIB  # tarfile reads ahead a record or so
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError, zlib.error)


def _tar_start(head: bytes) -> bool:
    """A first tar header whose checksum holds, as :mod:`tarfile` requires."""
    if len(head) < tarfile.BLOCKSIZE:
        return False
    field = head[148:156]
    if field[0] in (0o200, 0o377):  # base-256, as tarfile.nti reads it
        stored = int.from_bytes(field[1:], "big") - (1 << 56 if field[0] == 0o377 else 0)
    else:
        try:
            stored = int(field.split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            return False
    block = head[: tarfile.BLOCKSIZE]
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(struct.unpack("148b8x356b", block)) + 8 * 32
    return stored in (unsigned, signed)


class _Reader(io.RawIOBase):
    """Chunks as the file object :mod:`tarfile` reads from, bounding what headers take.

    ``tarfile`` reads a GNU long name or a pax header whole, whatever size the header claims,
    and a sparse map as long as the data goes on. So between members the reader allows only
    what skipping the last member's data plus :data:`_MAX_TAR_HEADER` of headers can need.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._at = 0
        self._left: int | None = None

    def allow(self, left: int | None) -> None:
        """Allow ``left`` more bytes to be read (``None``: no bound)."""
        self._left = left

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        while self._at >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf, self._at = chunk, 0
        end = len(self._buf) if size < 0 else self._at + size
        out = self._buf[self._at : end]
        self._at += len(out)
        if self._left is not None:
            self._left -= len(out)
            if self._left < 0:
                raise _Stop(
                    Outcome.OVER_BUDGET, f"its tar headers take over {_size(_MAX_TAR_HEADER)}"
                )
        return out


def _tar_open(reader: _Reader) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=reader, mode="r|")
    except _TAR_ERRORS:
        raise _NotThisFormat from None


def _tar_entries(
    src: _Source,
) -> Iterator[tuple[tarfile.TarFile, _Reader, tarfile.TarInfo]]:
    """Every header of the tar in ``src``, read as a stream; a corrupt tail ends it."""
    reader = _Reader(src.open())
    reader.allow(_MAX_TAR_HEADER + _TAR_SLACK)
    with _tar_open(reader) as archive:
        while True:
            try:
                info = archive.next()
            except _TAR_ERRORS:
                return  # a corrupt or cut-off tail: the members before it stand
            if info is None:
                return
            yield archive, reader, info
            blocks = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            reader.allow(blocks + _MAX_TAR_HEADER + _TAR_SLACK)


def _tar_read(
    archive: tarfile.TarFile, info: tarfile.TarInfo, reader: _Reader, meter: _Meter
) -> Iterator[bytes]:
    reader.allow(None)  # tarfile stops at the member's size itself
    try:
        fh = archive.extractfile(info)
        if fh is None:
            raise _Skip
        while chunk := fh.read(_CHUNK):
            meter.spend(len(chunk))
            yield chunk
    except _TAR_ERRORS:
        raise _Skip from None


def _tar_members(src: _Source, meter: _Meter) -> Iterator[_Member | _Refused]:
    budget = meter.budget
    for count, (archive, reader, info) in enumerate(_tar_entries(src), 1):
        if count > budget.max_members:
            raise _Stop(
                Outcome.OVER_BUDGET,
                f"the archive has over {budget.max_members} members (max_members); "
                "the rest were not inspected",
            )
        if not info.isreg():
            continue
        label = f"tar member {info.name}"
        if info.size > budget.max_layer_bytes:
            yield _Refused(label, _declared_too_big(info.size, budget))
            continue
        again = functools.partial(_tar_member, src, count, meter)
        yield _Member(label, again, _tar_read(archive, info, reader, meter))


def _tar_member(src: _Source, index: int, meter: _Meter) -> Iterator[bytes]:
    for count, (archive, reader, info) in enumerate(_tar_entries(src), 1):
        if count == index:
            yield from _tar_read(archive, info, reader, meter)
            return


def _declared_too_big(size: int, budget: DecodeBudget) -> _Stop:
    return _Stop(
        Outcome.OVER_BUDGET,
        f"it declares {_size(size)}, over {_size(budget.max_layer_bytes)} (max_layer_bytes)",
    )


# -- zip

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # one central directory entry, before its name
_LOCAL = struct.Struct("<4s5H3L2H")  # a member's local header, before its name
_ZIP_ENTRY_BYTES = _KIB  # central directory bytes allowed per member
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, zlib.error)
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


@dataclass(frozen=True, slots=True)
class ZipDirectory:
    """Where a zip's central directory is and what it declares, from the end records.

    Attributes:
        start: Offset of the directory in the file (after any data prepended to the zip).
        size: Its size in bytes, as declared.
        entries: The number of members it declares.
    """

    start: int
    size: int
    entries: int


def zip_directory(file: IO[bytes]) -> ZipDirectory | None:
    """Locate a zip's central directory the way :mod:`zipfile` does, reading at most 64 KiB.

    Args:
        file: The zip, seekable.

    Returns:
        The directory's place and declared size, or ``None`` when there is no end record.
    """
    file.seek(0, os.SEEK_END)
    end = file.tell()
    if end < _EOCD.size:
        return None
    span = min(end, _EOCD.size + 0xFFFF)  # the record, then a comment of up to 64 KiB
    file.seek(end - span)
    tail = file.read(span)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return None
    fields = _EOCD.unpack_from(tail, at)
    entries, size = fields[4], fields[5]
    where = end - span + at
    if where >= _EOCD64_LOCATOR.size + _EOCD64.size:
        file.seek(where - _EOCD64_LOCATOR.size - _EOCD64.size)
        record = file.read(_EOCD64.size + _EOCD64_LOCATOR.size)
        if record[_EOCD64.size :][:4] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
            zip64 = _EOCD64.unpack_from(record)
            entries, size = zip64[7], zip64[8]
            where -= _EOCD64.size + _EOCD64_LOCATOR.size
    if size > where:
        return None
    return ZipDirectory(start=where - size, size=size, entries=entries)


def zip_names(file: IO[bytes], directory: ZipDirectory, max_bytes: int) -> Iterator[bytes]:
    """The member names in a zip's central directory, reading at most ``max_bytes`` of it.

    Args:
        file: The zip, seekable.
        directory: Where its directory is (:func:`zip_directory`).
        max_bytes: The most of the directory to read; names past it are not given (compare
            ``directory.size`` to tell).

    Returns:
        The raw names, cut at any NUL byte as :mod:`zipfile` cuts them.

    Raises:
        ValueError: An entry does not start with the central directory signature.
    """
    file.seek(directory.start)
    data = file.read(min(directory.size, max_bytes))
    at = 0
    while at + _CENTRAL.size <= len(data):
        fields = _CENTRAL.unpack_from(data, at)
        if fields[0] != b"PK\x01\x02":
            raise ValueError("bad central directory entry")
        name_end = at + _CENTRAL.size + fields[12]
        if name_end > len(data):
            return
        yield data[at + _CENTRAL.size : name_end].split(b"\0", 1)[0]
        at = name_end + fields[13] + fields[14]


def _zip_archive(fh: IO[bytes], budget: DecodeBudget) -> zipfile.ZipFile:
    """Open the zip in ``fh`` once its directory is known to be within the budget."""
    directory = zip_directory(fh)
    if directory is None:
        raise _NotThisFormat
    if (
        directory.entries > budget.max_members
        or directory.size > budget.max_members * _ZIP_ENTRY_BYTES
    ):
        raise _Stop(
            Outcome.OVER_BUDGET,
            f"its zip directory lists {directory.entries} members in {_size(directory.size)}, "
            f"over max_members ({budget.max_members})",
        )
    try:
        return zipfile.ZipFile(fh)
    except _ZIP_ERRORS:
        raise _NotThisFormat from None


def _zip_members(src: _Source, meter: _Meter) -> Iterator[_Member | _Refused]:
    budget = meter.budget
    with src.file() as fh:
        if fh is None:
            raise _Stop(
                Outcome.OVER_BUDGET,
                f"it is a zip of {_size(src.size or 0)}, over {_size(budget.max_held_bytes)} "
                "(max_held_bytes), and a zip cannot be read as a stream",
            )
        with _zip_archive(fh, budget) as archive:
            infos = archive.infolist()
            if len(infos) > budget.max_members:
                raise _Stop(Outcome.OVER_BUDGET, f"the zip has over {budget.max_members} members")
            for index, info in enumerate(infos):
                if info.is_dir():
                    continue
                label = f"zip member {info.filename}"
                refusal = _zip_refusal(info, budget)
                if refusal is not None:
                    yield _Refused(label, refusal)
                    continue
                again = functools.partial(_zip_member, src, index, meter)
                yield _Member(label, again, _zip_read(archive, info, src, meter))


def _zip_refusal(info: zipfile.ZipInfo, budget: DecodeBudget) -> _Stop | None:
    if info.flag_bits & 0x1:
        return _Stop(Outcome.UNREADABLE, "it is encrypted")
    if info.compress_type not in _ZIP_METHODS:
        return _Stop(
            Outcome.UNREADABLE,
            f"it is compressed with zip method {info.compress_type}, which the guard does not decode",
        )
    if info.file_size > budget.max_layer_bytes:
        return _declared_too_big(info.file_size, budget)
    return None


def _zip_member(src: _Source, index: int, meter: _Meter) -> Iterator[bytes]:
    with src.file() as fh:
        if fh is None:
            return
        with _zip_archive(fh, meter.budget) as archive:
            yield from _zip_read(archive, archive.infolist()[index], src, meter)


def _zip_read(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, src: _Source, meter: _Meter
) -> Iterator[bytes]:
    try:
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # zipfile inflates a chunk at a time (and checks the CRC) for these two.
            with archive.open(info) as fh:
                while chunk := fh.read(_CHUNK):
                    meter.spend(len(chunk))
                    yield chunk
        elif info.compress_type == zipfile.ZIP_BZIP2:
            # ...but decompresses bzip2 and lzma members without a bound: 4 KiB of bzip2 can
            # be gigabytes. These are decoded here from the member's raw bytes.
            yield from _bunzip2(_zip_raw(src, info, meter), meter)
        else:
            yield from _zip_lzma(_zip_raw(src, info, meter), meter)
    except (_NotThisFormat, *_ZIP_ERRORS):
        raise _Skip from None


def _zip_raw(src: _Source, info: zipfile.ZipInfo, meter: _Meter) -> Iterator[bytes]:
    """A member's bytes as stored (compressed), after its local header."""
    with src.file() as fh:
        if fh is None:
            raise _NotThisFormat
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise _NotThisFormat
        fields = _LOCAL.unpack(header)
        fh.seek(info.header_offset + _LOCAL.size + fields[-2] + fields[-1])
        left = info.compress_size
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                raise _NotThisFormat
            left -= len(chunk)
            meter.tick()
            yield chunk


def _zip_lzma(raw: Iterator[bytes], meter: _Meter) -> Iterator[bytes]:
    """A zip member compressed with method 14: a small header, then raw LZMA1."""
    source = (c for c in raw if c)
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[2:4], "little"):
        more = next(source, b"")
        if not more:
            raise _NotThisFormat
        data += more
    end = 4 + int.from_bytes(data[2:4], "little")
    props = data[4:end]
    if len(props) != 5 or props[0] > 224:
        raise _NotThisFormat
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    dictionary = int.from_bytes(props[1:5], "little")
    if dictionary > meter.budget.max_decoder_memory:
        raise _Stop(
            Outcome.OVER_BUDGET,
            f"its decoder needs over {_size(meter.budget.max_decoder_memory)} of memory "
            "(max_decoder_memory)",
        )
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dictionary, "lc": lc, "lp": lp, "pb": pb}
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1])
    # Without an end marker the stream ends with the member's stored bytes.
    yield from _pump(decoder, data[end:], source, meter, to_end=False)


# ---------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    sniff: Callable[[bytes], bool]
    members: _Members
    stream: bool = False  # a compressed stream: a tar right inside it is part of it


_FORMATS = (
    _Format("gzip", _gzip_start, _one("gzip", _gunzip), stream=True),
    _Format("bzip2", _bzip2_start, _one("bzip2", _bunzip2), stream=True),
    _Format("xz", _xz_start, _one("xz", _unxz), stream=True),
    _Format("base64", _base64_start, _one("base64", _unbase64)),
    _Format("zip", lambda head: head[:2] == b"PK", _zip_members),
    _Format("tar", _tar_start, _tar_members),
)


@dataclass(frozen=True, slots=True)
class _Taken:
    """A payload after its first pass."""

    digest: str
    size: int
    head: bytes
    data: bytes | None  # held for decoding further, when it was wanted and small enough


def _take(chunks: Iterator[bytes], meter: _Meter, keep: bool) -> _Taken:
    """Hash a payload as it streams; hold it too when ``keep`` and it fits."""
    budget = meter.budget
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    held: bytearray | None = bytearray() if keep else None
    mark = (digest.copy(), 0, 0 if keep else None)
    try:
        for chunk in chunks:
            if not chunk:  # the end of a complete stream: what a corrupt next one cuts back to
                mark = (digest.copy(), size, None if held is None else len(held))
                continue
            size += len(chunk)
            if size > budget.max_layer_bytes:
                raise _Stop(
                    Outcome.OVER_BUDGET,
                    f"it decodes to over {_size(budget.max_layer_bytes)} (max_layer_bytes)",
                )
            digest.update(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            if held is not None:
                if len(held) + len(chunk) > budget.max_held_bytes:
                    held = None
                else:
                    held += chunk
    except _CutBack:
        digest, size, kept = mark
        if held is not None and kept is not None:
            del held[kept:]
        else:
            held = None
        del head[size:]
    return _Taken(digest.hexdigest(), size, bytes(head), None if held is None else bytes(held))


def _walk(
    src: _Source, head: bytes, how: tuple[str, ...], depth: int, meter: _Meter, in_stream: bool
) -> Iterator[Layer]:
    """Try every format whose leading bytes fit ``head`` on ``src``, ``depth`` layers deep."""
    for fmt in _FORMATS:
        if not fmt.sniff(head):
            continue
        free = in_stream and fmt.name == "tar"
        if depth > 0 or free:
            yield from _attempt(fmt, src, how, depth if free else depth - 1, meter)
            continue
        # One layer more than allowed is not followed, but it is not ignored either: decode
        # it once (its first member, for an archive) to tell whether it is really there.
        for layer in _attempt(fmt, src, how, -1, meter):
            if layer.outcome is Outcome.DECODED:
                yield Layer(
                    layer.how,
                    Outcome.OVER_BUDGET,
                    reason=f"it holds {fmt.name}, a layer deeper than max_depth "
                    f"({meter.budget.max_depth}) allows",
                )
                break
            if layer.uninspected:
                yield layer


def _attempt(
    fmt: _Format, src: _Source, how: tuple[str, ...], below: int, meter: _Meter
) -> Iterator[Layer]:
    """Decode ``src`` as ``fmt``: each member, then (unless ``below`` < 0) what it holds."""
    members = fmt.members(src, meter)
    while True:
        here = (*how, fmt.name)
        try:
            member = next(members, None)
            if member is None:
                return
            here = (*how, member.label)
            if isinstance(member, _Refused):
                raise member.stop
            taken = _take(member.first, meter, keep=below >= 0)
        except _NotThisFormat:
            yield Layer(here, Outcome.NOT_THIS_FORMAT)
            return
        except _Skip:
            continue
        except _Exhausted as exc:
            exc.where = exc.where or here
            raise
        except _Stop as exc:
            yield Layer(here, exc.outcome, reason=exc.reason)
            continue
        except Exception as exc:  # hostile bytes meet stdlib parsers: fail closed, not open
            yield Layer(
                here,
                Outcome.UNREADABLE,
                reason=f"decoding it failed unexpectedly ({type(exc).__name__}: {exc})",
            )
            return
        yield Layer(here, Outcome.DECODED, digest=taken.digest, size=taken.size)
        if below < 0:
            continue
        if taken.data is not None:
            deeper = _held(taken.data)
        else:
            deeper = _Source(functools.partial(_cut, member.again, taken.size), size=taken.size)
        yield from _walk(deeper, taken.head, here, below, meter, in_stream=fmt.stream)


def _first(chunks: Iterator[bytes], n: int) -> bytes:
    head = b""
    for chunk in chunks:
        head += chunk[: n - len(head)]
        if len(head) >= n:
            break
    return head


def layers(
    source: str | os.PathLike[str] | bytes | Sequence[str],
    budget: DecodeBudget | None = None,
    *,
    depth: int | None = None,
) -> Iterator[Layer]:
    """Every payload reachable from ``source`` through layers of encoding, within a budget.

    Formats are tried only where a payload's leading bytes fit them, so most files cost one
    read of :data:`HEAD_BYTES`. The payload of each layer is hashed as it streams.

    Args:
        source: A file's path; bytes in memory; or a list of paths, read as the
            concatenation of the files (a split).
        budget: The limits; :class:`DecodeBudget` defaults when ``None``.
        depth: Layers to follow; ``budget.max_depth`` when ``None``.

    Returns:
        An iterator of :class:`Layer`, lazily computed: each decoded payload
        (:attr:`Outcome.DECODED`, with its digest), each format that fit the leading bytes
        but not the rest (:attr:`Outcome.NOT_THIS_FORMAT`), and each place that could not be
        inspected, with why (:attr:`Layer.uninspected`). A file that no longer exists yields
        nothing; one that cannot be read yields one unreadable layer with an empty ``how``.
        Never raises for what the bytes hold.
    """
    meter = _Meter(budget if budget is not None else DecodeBudget())
    depth = meter.budget.max_depth if depth is None else depth
    try:
        src = _top(source, meter)
        head = _first(src.open(), HEAD_BYTES)
        yield from _walk(src, head, (), depth, meter, in_stream=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        yield Layer((), Outcome.UNREADABLE, reason=f"it could not be read ({exc.strerror or exc})")
    except _Exhausted as exc:
        yield Layer(exc.where or (), exc.outcome, reason=exc.reason)
    except Exception as exc:  # a bug here must not pass a file as inspected: fail closed
        yield Layer(
            (),
            Outcome.UNREADABLE,
            reason=f"decoding it failed unexpectedly ({type(exc).__name__}: {exc})",
        )


__all__ = [
    "HEAD_BYTES",
    "DecodeBudget",
    "Layer",
    "Outcome",
    "ZipDirectory",
    "layers",
    "zip_directory",
    "zip_names",
]
