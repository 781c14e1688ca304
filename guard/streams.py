"""The parts of :mod:`guard.decoding` that every format shares: the budget, byte sources and streams.

A :class:`DecodeBudget` bounds one walk; a ``Meter`` counts bytes, members, places tried and
time against it and raises ``Exhausted`` when one runs out. A ``Source`` is where a payload's
bytes come from (files read again on demand, or bytes held in memory), from any offset on. A
:class:`Tap` is what another component gives :func:`guard.decoding.layers` to see every
payload's bytes as they stream. An ``Extent`` is what one format's decoding accounted for of
its source, so that a format's signature inside a stream or archive already decoded is not
tried again as a start of its own. The stream decoders here (gzip, bzip2, xz and legacy lzma,
base64) take chunks and give back at most a chunk at a time, so no payload is ever decoded
whole. The archive formats, whose members are payloads of their own, are in
:mod:`guard.members`.
"""

from __future__ import annotations

import binascii
import bz2
import contextlib
import dataclasses
import functools
import io
import lzma
import os
import re
import stat
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Protocol

from guard.exceptions import ConfigError, GuardError

KIB = 1 << 10


MIB = 1 << 20


CHUNK = MIB  # the most output any decoder is asked for at once, and the read size


_MAGIC_BYTES = 16  # enough to tell where a compressed stream starts (legacy lzma needs 13)


HEAD_BYTES = 4096
"""The leading bytes of a payload that decide which formats are tried on it."""


@dataclass(frozen=True, slots=True)
class DecodeBudget:
    """How much work looking through one file's layers may take.

    Every limit is per call of :func:`layers` (for the verifier: per file, or per folder
    whose files are read as one). Whatever would go over one is reported, not skipped.

    Attributes:
        max_depth: Layers followed one inside another: gzip of base64 is two, and so is a
            gzip found at an offset in a base64 payload. A tar right inside a compressed
            stream (``.tar.gz``) is one. A payload at this depth that holds one more layer is
            reported (over budget), not ignored.
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
        max_candidates: The most places found by a signature (where an archive or a
            compressed stream may start after a payload's first byte) that are tried, over
            the whole call. Places inside a stream or archive already decoded are not tried,
            and do not count. Each try costs at least a seek and a header: a file full of
            fake signatures is reported once this many were tried, rather than tried to the
            end.
    """

    max_depth: int = 4
    max_layer_bytes: int = 256 * MIB
    max_total_bytes: int = 1024 * MIB
    max_held_bytes: int = 32 * MIB
    max_members: int = 1000
    max_seconds: float = 10.0
    max_decoder_memory: int = 128 * MIB
    max_candidates: int = 64

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
        found: What a fresh :class:`Tap` returned (:meth:`Tap.result`) after every byte of
            this payload went through it, in order; empty without a tap, or when the payload
            did not stream through whole. Set on each decoded layer, on the file itself
            (``how`` empty) and on a payload decoded only to tell that it is a layer deeper
            than ``max_depth`` allows (that layer is over budget, yet its bytes were seen).
    """

    how: tuple[str, ...]
    outcome: Outcome
    digest: str | None = None
    size: int = 0
    reason: str = ""
    found: tuple[object, ...] = ()

    @property
    def uninspected(self) -> bool:
        """Whether something here could not be inspected (over budget or unreadable)."""
        return self.outcome in (Outcome.OVER_BUDGET, Outcome.UNREADABLE)


class Tap(Protocol):
    """Sees one payload's bytes as :func:`guard.decoding.layers` streams them.

    :func:`~guard.decoding.layers` makes a fresh tap (with the factory it is given) for every
    payload whose bytes stream through its walk: the file itself, and each decoded payload
    at every depth. The tap is fed every byte of that payload once, in order, in chunks of
    at most a mebibyte; then its :meth:`result` goes into :attr:`Layer.found`. A payload is
    never fed twice to one tap, and nothing is decoded again for a tap (but one case: a
    payload whose later compressed streams turn out corrupt is cut back to its last
    complete stream, and a fresh tap is fed the cut-back payload). Time spent in a tap counts
    against ``max_seconds``; an exception from it makes the payload unreadable.
    """

    def update(self, data: bytes) -> None:
        """Take the next bytes of the payload."""

    def result(self) -> tuple[object, ...]:
        """What the tap found in the bytes it was fed; empty for nothing."""


class DecodeSignal(GuardError):
    """A signal between the decoders and the walk in :func:`guard.decoding.layers`, which
    catches every one: none reaches its caller (a GuardError all the same, should one escape)."""


class NotThisFormat(DecodeSignal):
    """The bytes are not this format, or are corrupt before anything decoded."""


class CutBack(DecodeSignal):
    """A stream after the first is corrupt: the payload ends where the last complete one did."""


class Skip(DecodeSignal):
    """One archive member is corrupt; the archive's other members still count."""


class Stop(DecodeSignal):
    """Something could not be inspected; the walk reports it and goes on with the rest."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class Exhausted(Stop):
    """The whole call's budget (bytes in all, or time) is spent: nothing more is looked at."""

    def __init__(self, reason: str) -> None:
        super().__init__(Outcome.OVER_BUDGET, reason)
        self.where: tuple[str, ...] | None = None


def size_text(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", KIB)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


class Meter:
    """What one call of :func:`layers` has spent of its budget."""

    def __init__(self, budget: DecodeBudget) -> None:
        self.budget = budget
        self.spent = 0
        self.candidates = 0
        self._deadline = time.monotonic() + budget.max_seconds

    def spend(self, produced: int) -> None:
        """Count ``produced`` decoded bytes (and the time so far)."""
        self.spent += produced
        if self.spent > self.budget.max_total_bytes:
            raise Exhausted(
                f"decoding it produced over {size_text(self.budget.max_total_bytes)} in all "
                "(max_total_bytes)"
            )
        self.tick()

    def tick(self) -> None:
        """Check the time."""
        if time.monotonic() > self._deadline:
            raise Exhausted(f"decoding it took over {self.budget.max_seconds:g} s (max_seconds)")

    def candidate(self) -> None:
        """Count one more place tried where a format's signature is (and the time).

        Raises:
            Stop: More than ``max_candidates`` were tried.
        """
        self.candidates += 1
        if self.candidates > self.budget.max_candidates:
            raise Stop(
                Outcome.OVER_BUDGET,
                "it has more places where an archive or a compressed stream may start than "
                f"max_candidates ({self.budget.max_candidates}) allows trying",
            )
        self.tick()


_EVERYTHING = 1 << 62  # an end past any payload's


class Extent:
    """The spans of a source that one format's decoding accounted for, relative to where the
    format starts: a complete stream, an archive's headers and members. A signature inside
    one is not a start of its own (what it holds is found through the payloads decoded)."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> None:
        if end > start:
            self.spans.append((start, end))

    def rest(self) -> None:
        """Everything from the start on: what stopped there may reach anywhere after it, and
        it is reported already."""
        self.spans.append((0, _EVERYTHING))


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
class Source:
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


def _slices(data: bytes, start: int = 0) -> Iterator[bytes]:
    for at in range(start, len(data), CHUNK):
        yield data[at : at + CHUNK]


def _read(paths: Sequence[str], meter: Meter, start: int = 0) -> Iterator[bytes]:
    for path in paths:
        with _open(path) as fh:
            if start:
                start -= fh.seek(min(start, os.fstat(fh.fileno()).st_size))
            if start:  # all of this file is before the offset
                continue
            while chunk := fh.read(CHUNK):
                meter.tick()
                yield chunk


def _after(again: _Opener, offset: int) -> Iterator[bytes]:
    """A stream's bytes from ``offset`` on; those before are read (decoded) and dropped."""
    for chunk in again():
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:] if offset else chunk
        offset = 0


def at_offset(src: Source, offset: int, meter: Meter) -> Source:
    """The bytes of ``src`` from ``offset`` on, as a stream (never a seekable file: what is
    read at an offset is read as a stream, and a zip there through its local headers).

    Held bytes are sliced a chunk at a time and files are read from the offset; a payload
    that is decoded again has its bytes before the offset decoded and dropped (counted, as
    every pass is).
    """
    size = None if src.size is None else max(src.size - offset, 0)
    if src.data is not None:
        return Source(functools.partial(_slices, src.data, offset), size=size)
    if src.path is not None:
        return Source(functools.partial(_read, [src.path], meter, offset), size=size)
    return Source(functools.partial(_after, src.open, offset), size=size)


def cut_back(again: _Opener, size: int) -> Iterator[bytes]:
    """A payload read again: its first ``size`` bytes, as the first pass found them."""
    left = size
    with contextlib.suppress(CutBack):
        for chunk in again():
            if len(chunk) >= left:
                if left:
                    yield chunk[:left]
                return
            if chunk:
                left -= len(chunk)
                yield chunk


def held_source(data: bytes) -> Source:
    return Source(functools.partial(_slices, data), size=len(data), data=data)


def top_source(source: str | os.PathLike[str] | bytes | Sequence[str], meter: Meter) -> Source:
    if isinstance(source, bytes | bytearray):
        return held_source(bytes(source))
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return Source(functools.partial(_read, [path], meter), path=path)
    paths = list(source)
    total = sum(os.stat(p).st_size for p in paths)
    if total <= meter.budget.max_held_bytes:
        return held_source(b"".join(_read(paths, meter)))
    return Source(functools.partial(_read, paths, meter), size=total)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


class Inflate:
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


def pump(
    decoder: _Decompressor,
    data: bytes,
    source: Iterator[bytes],
    meter: Meter,
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
            out = decoder.decompress(data, CHUNK)
            data = b""
        else:
            out = decoder.decompress(b"", CHUNK)
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


def _counted(chunks: Iterator[bytes], taken: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            taken[0] += len(chunk)
            yield chunk


def _streams(
    chunks: Iterator[bytes],
    new: Callable[[], _Decompressor],
    starts: Callable[[bytes], bool],
    meter: Meter,
    padding: bytes = b"",
    extent: Extent | None = None,
) -> Iterator[bytes]:
    """Decode concatenated compressed streams; an empty chunk marks the end of each.

    Each complete stream's input bytes are added to ``extent``.

    Raises:
        NotThisFormat: The first stream is missing or corrupt.
        CutBack: A later stream is corrupt: the payload ends at the last mark.
        Stop: The decoder would need more memory than the budget allows.
    """
    taken = [0]  # input bytes taken from ``chunks``
    source = _counted(chunks, taken)
    data = b""
    complete = 0
    while True:
        data = _fill(data, source, padding)
        if not data or not starts(data):
            if complete:
                return  # the end, or trailing bytes that start no stream: ignored
            raise NotThisFormat
        begin = taken[0] - len(data)
        try:
            data = yield from pump(new(), data, source, meter)
        except _STREAM_ERRORS as exc:
            if isinstance(exc, lzma.LZMAError) and "memory usage limit" in str(exc).lower():
                raise Stop(
                    Outcome.OVER_BUDGET,
                    f"its decoder needs over {size_text(meter.budget.max_decoder_memory)} of memory "
                    "(max_decoder_memory)",
                ) from None
            raise (CutBack() if complete else NotThisFormat()) from None
        complete += 1
        if extent is not None:
            extent.add(begin, taken[0] - len(data))
        yield b""


def gzip_start(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def bzip2_start(data: bytes) -> bool:
    return len(data) >= 4 and data[:3] == b"BZh" and 0x31 <= data[3] <= 0x39


_XZ_MAGIC = b"\xfd7zXZ\x00"


def xz_start(data: bytes) -> bool:
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
    if dictionary < 4 * KIB:
        return False
    if dictionary != 0xFFFFFFFF:
        d = (dictionary - 1) & 0xFFFFFFFF
        for shift in (2, 3, 4, 8, 16):
            d |= d >> shift
        if (d + 1) & 0xFFFFFFFF != dictionary:  # only 2^n or 2^n + 2^(n-1)
            return False
    size = int.from_bytes(data[5:13], "little")
    return size == (1 << 64) - 1 or size < (1 << 38)


def gunzip(chunks: Iterator[bytes], meter: Meter, extent: Extent | None = None) -> Iterator[bytes]:
    # gzip members may be separated and followed by zero padding, as gzip.decompress allows.
    new = functools.partial(Inflate, 16 + zlib.MAX_WBITS)
    return _streams(chunks, new, gzip_start, meter, b"\0", extent)


def bunzip2(chunks: Iterator[bytes], meter: Meter, extent: Extent | None = None) -> Iterator[bytes]:
    return _streams(chunks, bz2.BZ2Decompressor, bzip2_start, meter, extent=extent)


def unxz(chunks: Iterator[bytes], meter: Meter, extent: Extent | None = None) -> Iterator[bytes]:
    new = functools.partial(
        lzma.LZMADecompressor, lzma.FORMAT_AUTO, memlimit=meter.budget.max_decoder_memory
    )
    return _streams(chunks, new, xz_start, meter, extent=extent)


_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def base64_start(head: bytes) -> bool:
    text = b"".join(head.split())
    return bool(text) and _BASE64.fullmatch(text) is not None


def unbase64(
    chunks: Iterator[bytes], meter: Meter, extent: Extent | None = None
) -> Iterator[bytes]:
    """Standard base64, whitespace anywhere ignored; what ``b64decode(validate=True)`` takes.

    Its ``extent`` is left empty: base64 text holds no other format's binary signature.
    """
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
                raise NotThisFormat
        carry += text
        whole = len(carry) - len(carry) % 4
        if whole:
            try:
                out = binascii.a2b_base64(carry[:whole])
            except binascii.Error:
                raise NotThisFormat from None
            carry = carry[whole:]
            meter.spend(len(out))
            yield out
    if not total or carry:
        raise NotThisFormat


@dataclass(frozen=True, slots=True)
class Member:
    """A payload an archive (or a stream) holds: ``first`` reads it now, ``again`` later.

    ``place`` says where the archive is when that is not where it was looked for (a zip
    behind a prefix, found by its central directory).
    """

    label: str
    again: _Opener
    first: Iterator[bytes]
    place: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refused:
    """A member not read at all, and why."""

    label: str
    stop: Stop
    place: tuple[str, ...] = ()


Members = Callable[[Source, Meter, Extent], Iterator[Member | Refused]]
"""A format's members in ``Source``; the first pass adds what it accounted for to the extent."""


Decode = Callable[[Iterator[bytes], Meter, Extent | None], Iterator[bytes]]


def one_member(name: str, decode: Decode) -> Members:
    """The members of a format that holds exactly one payload (compression, base64)."""

    def members(src: Source, meter: Meter, extent: Extent) -> Iterator[Member | Refused]:
        def again() -> Iterator[bytes]:
            return decode(src.open(), meter, None)

        yield Member(name, again, decode(src.open(), meter, extent))

    return members
