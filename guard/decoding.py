"""Streaming, bounded decoding of the layers a payload can hide under.

An agent can keep a peer's weights as gzip of base64, or as a member of a tar inside xz, or
behind a shell script or a log it wrote in front of them; the verifier looks through such
layers with :func:`layers`. Every file it looks at is hostile input: a 1 MB gzip can inflate
to a terabyte, a zip can list a million members, a tar header can claim a name a gigabyte
long, a file can be full of bytes that look like the start of an archive. So nothing here
decodes a payload whole. Decoders are fed in chunks and asked for at most a chunk of output
at a time, a payload is hashed as it streams, and every byte decoded, every archive member,
every place tried and every second is counted against a :class:`DecodeBudget`. Nothing else
bounds the work: there is no guess from a file's size. What the budget stops is not dropped:
:func:`layers` reports it as a :class:`Layer` whose :class:`Outcome` says it could not be
inspected, and why.

The formats, tried in this order on every payload whose leading bytes fit them: gzip, bzip2,
xz (and legacy ``.lzma``), base64 (whitespace ignored, as ``base64 -d`` does), zip members and
tar members. Concatenated gzip, bzip2 and xz streams decode to their concatenation, and bytes
after the last complete stream are ignored, as ``gunzip``, ``bunzip2`` and ``xz -d`` do. A tar
right inside gzip, bzip2 or xz (``.tar.gz``) costs no extra layer of depth: it is one format,
as ``tar xzf`` sees it. A payload at the depth limit that holds one more layer is reported,
not ignored.

Formats are also found where they start after a payload's first byte, by their signatures,
as a person with ``dd`` and the standard tools would find them: a zip by the end record of
its central directory (offsets relative to whatever is in front of it, as ``unzip`` reads
them), or else by its local headers; a tar by a header whose ``ustar`` magic and checksum
hold; a gzip, bzip2 or xz stream by its magic. The signatures are looked for in the same
pass that hashes a payload (``bytes.find`` over each chunk, with an overlap), so finding them
costs no decoding. Each place is tried as its own layer, labelled with where it is
(``("tar at offset 8388608", "tar member w.bin")``), unless it is inside a stream or archive
already decoded at that level (whose content is found through its payloads). Places tried
count against ``max_candidates``: a file of fake signatures is reported once that many were
tried.

Memory: a payload is kept in memory only when it is to be decoded further and is at most
``max_held_bytes``; a larger one is decoded further by streaming it again from the file (a
zip is then read through its local headers). So at most one held payload per open layer, a
chunk per open stream, the places found in each open payload and one xz dictionary (at most
``max_decoder_memory``) are alive at once, whatever the file holds.

:func:`zip_directory` and :func:`zip_names` read a zip's central directory within a bound
without :mod:`zipfile`, which parses all of it into objects up front.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from guard.members import (
    ZipDirectory,
    tar_members,
    tar_start,
    zip_directory,
    zip_local_start,
    zip_members,
    zip_names,
)
from guard.streams import (
    HEAD_BYTES,
    CutBack,
    DecodeBudget,
    Exhausted,
    Extent,
    Layer,
    Member,
    Members,
    Meter,
    NotThisFormat,
    Outcome,
    Refused,
    Skip,
    Source,
    Stop,
    Tap,
    at_offset,
    base64_start,
    bunzip2,
    bzip2_start,
    cut_back,
    gunzip,
    gzip_start,
    held_source,
    one_member,
    size_text,
    top_source,
    unbase64,
    unxz,
    xz_start,
)

__all__ = [
    "HEAD_BYTES",
    "DecodeBudget",
    "Layer",
    "Outcome",
    "Tap",
    "ZipDirectory",
    "layers",
    "zip_directory",
    "zip_names",
]


# ---------------------------------------------------------------- the formats


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    sniff: Callable[[bytes], bool]
    members: Members
    stream: bool = False  # a compressed stream: a tar right inside it is part of it
    single: bool = False  # it holds one payload, labelled with the format's name


_FORMATS = (
    _Format("gzip", gzip_start, one_member("gzip", gunzip), stream=True, single=True),
    _Format("bzip2", bzip2_start, one_member("bzip2", bunzip2), stream=True, single=True),
    _Format("xz", xz_start, one_member("xz", unxz), stream=True, single=True),
    _Format("base64", base64_start, one_member("base64", unbase64), single=True),
    _Format("zip", lambda head: head[:2] == b"PK", zip_members),
    _Format("tar", tar_start, tar_members),
)


_BY_NAME = {fmt.name: fmt for fmt in _FORMATS}


def _zip_at_end(src: Source) -> bool:
    """A zip's end record at the end of ``src``: a zip with something in front of it."""
    with src.file() as fh:
        return fh is not None and zip_directory(fh) is not None


# ---------------------------------------------------------------- signatures


@dataclass(frozen=True, slots=True)
class _Signature:
    format: str
    magic: bytes
    before: int  # the format starts this many bytes before its magic
    size: int  # the bytes from that start which ``check`` reads
    check: Callable[[bytes], bool]


def _gzip_header(data: bytes) -> bool:
    return data[3] & 0xE0 == 0  # reserved flags, which gzip and zlib refuse


_SIGNATURES = (
    _Signature("gzip", b"\x1f\x8b\x08", 0, 4, _gzip_header),
    _Signature("bzip2", b"1AY&SY", 4, 10, bzip2_start),  # "BZh9", then the first block's magic
    _Signature("xz", b"\xfd7zXZ\x00", 0, 6, xz_start),
    _Signature("zip", b"PK\x03\x04", 0, 30, zip_local_start),
    _Signature("tar", b"ustar", 257, tarfile.BLOCKSIZE, tar_start),
)


_OVERLAP = max(max(s.size, s.before + len(s.magic)) for s in _SIGNATURES)


class _Scan:
    """Where formats may start in a payload after its first byte (or at it, for a zip's local
    header), found as its bytes stream past: each magic looked for with ``bytes.find`` (in
    C), over each chunk and the end of the one before, then checked on the bytes around it."""

    def __init__(self, limit: int) -> None:
        self.found: list[tuple[int, str]] = []  # (offset, format)
        self.more = False  # there were more than ``limit``: those after were not recorded
        self._limit = limit
        self._tail = b""
        self._base = 0  # the offset of the tail's first byte
        self._next = [0] * len(_SIGNATURES)  # where each magic is looked for from next

    def feed(self, chunk: bytes) -> None:
        if self.more or not chunk:
            return
        buf = self._tail + chunk
        base = self._base
        for i, sig in enumerate(_SIGNATURES):
            at = max(self._next[i] - base, 0)
            while (hit := buf.find(sig.magic, at)) >= 0:
                start = hit - sig.before
                if start + sig.size > len(buf):
                    at = hit  # checked once the bytes after it are here
                    break
                at = hit + 1
                # At offset 0 the leading bytes decide, but for a zip's local header: the
                # zip that the end record names may be another one, further on.
                first = base + start == 0 and sig.format != "zip"
                if start >= 0 and not first and sig.check(buf[start : start + sig.size]):
                    if len(self.found) >= self._limit:
                        self.more = True
                        return
                    self.found.append((base + start, sig.format))
            else:
                at = max(at, len(buf) - len(sig.magic) + 1)
            self._next[i] = base + at
        self._tail = buf[-_OVERLAP:]
        self._base = base + len(buf) - len(self._tail)

    def cut(self, size: int) -> None:
        """The payload ends at ``size`` after all."""
        self.found = [place for place in self.found if place[0] < size]


def _scan_limit(budget: DecodeBudget) -> int:
    # An archive's own headers are found too (and not tried): room for them, and more.
    return budget.max_candidates + 4 * budget.max_members


class _Covered:
    """Spans of a payload that a format's decoding accounted for."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []
        self._starts: list[int] = []

    def add(self, offset: int, extent: Extent) -> None:
        spans = sorted([*self._spans, *((offset + a, offset + b) for a, b in extent.spans)])
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self._spans = merged
        self._starts = [start for start, _ in merged]

    def __contains__(self, offset: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self._spans[i][1]

    def to_end(self, offset: int, size: int) -> bool:
        """Whether everything from ``offset`` to ``size`` is covered."""
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and self._spans[i][1] >= size


# ---------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class _Taken:
    """A payload after its first pass."""

    digest: str | None  # None only for the file itself, when there is no tap
    size: int
    head: bytes
    data: bytes | None  # held for decoding further, when it was wanted and small enough
    scan: _Scan | None  # where formats may start in it, when it is decoded further
    found: tuple[object, ...] = ()  # what its tap found
    cut: bool = False  # its last streams were corrupt: it was cut back after its tap saw them


def _take(
    chunks: Iterator[bytes], meter: Meter, keep: bool, tap: Callable[[], Tap] | None
) -> _Taken:
    """Hash a payload as it streams, and feed it to a fresh tap; when ``keep``, look for
    signatures in it too, and hold it when it fits."""
    budget = meter.budget
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    held: bytearray | None = bytearray() if keep else None
    scan = _Scan(_scan_limit(budget)) if keep else None
    seen = tap() if tap is not None else None
    mark = (digest.copy(), 0, 0 if keep else None)
    cut = False
    try:
        for chunk in chunks:
            if not chunk:  # the end of a complete stream: what a corrupt next one cuts back to
                mark = (digest.copy(), size, None if held is None else len(held))
                continue
            size += len(chunk)
            if size > budget.max_layer_bytes:
                raise Stop(
                    Outcome.OVER_BUDGET,
                    f"it decodes to over {size_text(budget.max_layer_bytes)} (max_layer_bytes)",
                )
            digest.update(chunk)
            if seen is not None:
                seen.update(chunk)
            if scan is not None:
                scan.feed(chunk)
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            if held is not None:
                if len(held) + len(chunk) > budget.max_held_bytes:
                    held = None
                else:
                    held += chunk
    except CutBack:
        digest, size, kept = mark
        if held is not None and kept is not None:
            del held[kept:]
        else:
            held = None
        del head[size:]
        if scan is not None:
            scan.cut(size)
        cut = True
    return _Taken(
        digest.hexdigest(),
        size,
        bytes(head),
        None if held is None else bytes(held),
        scan,
        () if seen is None or cut else seen.result(),
        cut,
    )


def _survey(src: Source, meter: Meter, tap: Callable[[], Tap] | None) -> _Taken:
    """The first pass over the file itself: its leading bytes, where formats may start in it
    and, with a tap, what the tap finds in it and its digest."""
    scan = _Scan(_scan_limit(meter.budget))
    seen = tap() if tap is not None else None
    digest = hashlib.sha256() if seen is not None else None
    head = bytearray()
    size = 0
    for chunk in src.open():
        meter.tick()
        size += len(chunk)
        scan.feed(chunk)
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        if seen is not None and digest is not None:
            seen.update(chunk)
            digest.update(chunk)
    return _Taken(
        None if digest is None else digest.hexdigest(),
        size,
        bytes(head),
        src.data,
        scan,
        () if seen is None else seen.result(),
    )


def _tapped(tap: Callable[[], Tap], chunks: Iterator[bytes]) -> tuple[object, ...]:
    seen = tap()
    for chunk in chunks:
        seen.update(chunk)
    return seen.result()


def _walk(
    src: Source,
    taken: _Taken,
    how: tuple[str, ...],
    depth: int,
    meter: Meter,
    in_stream: bool,
    tap: Callable[[], Tap] | None,
) -> Iterator[Layer]:
    """Try every format whose leading bytes fit on ``src``, ``depth`` layers deep, then each
    place after its first byte where a format's signature is."""
    covered = _Covered()
    for fmt in _FORMATS:
        if fmt.sniff(taken.head) or (fmt.name == "zip" and _zip_at_end(src)):
            free = in_stream and fmt.name == "tar"
            yield from _try(fmt, src, how, depth, meter, tap, free, None, covered, 0)
    if taken.scan is not None:
        yield from _places(src, taken.scan, taken.size, how, depth, meter, tap, covered)


def _places(
    src: Source,
    scan: _Scan,
    size: int,
    how: tuple[str, ...],
    depth: int,
    meter: Meter,
    tap: Callable[[], Tap] | None,
    covered: _Covered,
) -> Iterator[Layer]:
    """Try each place in ``src`` where ``scan`` found a signature, in order, but those inside
    what a format decoded already."""
    places = sorted(scan.found)
    for index, (offset, name) in enumerate(places):
        if offset in covered:
            continue
        place = f"{name} at offset {offset}"
        try:
            meter.candidate()
        except Exhausted as exc:
            exc.where = exc.where or (*how, place)
            raise
        except Stop as exc:
            left = sum(1 for at, _ in places[index + 1 :] if at not in covered)
            more = f"over {left}" if scan.more else str(left)
            yield Layer(
                (*how, place),
                exc.outcome,
                reason=f"{exc.reason}: this one and {more} more after it were not tried",
            )
            return
        fmt = _BY_NAME[name]
        yield from _try(
            fmt,
            at_offset(src, offset, meter),
            how,
            depth,
            meter,
            tap,
            False,
            place,
            covered,
            offset,
        )
    last = places[-1][0] if places else 0
    if scan.more and not covered.to_end(last, size):
        yield Layer(
            (*how, f"past offset {last}"),
            Outcome.OVER_BUDGET,
            reason=f"it has over {_scan_limit(meter.budget)} places where an archive or a "
            "compressed stream may start, the most recorded (max_candidates and 4 per "
            f"max_members); those past offset {last} were not tried",
        )


def _try(
    fmt: _Format,
    src: Source,
    how: tuple[str, ...],
    depth: int,
    meter: Meter,
    tap: Callable[[], Tap] | None,
    free: bool,
    place: str | None,
    covered: _Covered,
    offset: int,
) -> Iterator[Layer]:
    """Decode ``src`` as ``fmt`` (one layer, or no layer when ``free``), then add what it
    accounted for, from ``offset`` in its payload, to ``covered``."""
    extent = Extent()
    try:
        if depth > 0 or free:
            yield from _attempt(
                fmt, src, how, depth if free else depth - 1, meter, tap, place, extent
            )
        else:
            yield from _beyond(fmt, src, how, meter, tap, place, extent)
    finally:
        covered.add(offset, extent)


def _beyond(
    fmt: _Format,
    src: Source,
    how: tuple[str, ...],
    meter: Meter,
    tap: Callable[[], Tap] | None,
    place: str | None,
    extent: Extent,
) -> Iterator[Layer]:
    """One layer more than allowed is not followed, but it is not ignored either: decode it
    once (its first member, for an archive) to tell whether it is really there."""
    for layer in _attempt(fmt, src, how, -1, meter, tap, place, extent):
        if layer.outcome is Outcome.DECODED:
            extent.rest()
            yield Layer(
                layer.how,
                Outcome.OVER_BUDGET,
                reason=f"it holds {fmt.name}, a layer deeper than max_depth "
                f"({meter.budget.max_depth}) allows",
                found=layer.found,
            )
            return
        if layer.uninspected:
            yield layer


def _label(
    how: tuple[str, ...], place: str | None, fmt: _Format, member: Member | Refused
) -> tuple[str, ...]:
    if fmt.single:
        return (*how, place or fmt.name)
    return (*how, *(() if place is None else (place,)), *member.place, member.label)


def _attempt(
    fmt: _Format,
    src: Source,
    how: tuple[str, ...],
    below: int,
    meter: Meter,
    tap: Callable[[], Tap] | None,
    place: str | None,
    extent: Extent,
) -> Iterator[Layer]:
    """Decode ``src`` as ``fmt``: each member, then (unless ``below`` < 0) what it holds."""
    members = fmt.members(src, meter, extent)
    while True:
        here = (*how, place or fmt.name)
        member: Member | Refused | None = None
        try:
            member = next(members, None)
            if member is None:
                return
            here = _label(how, place, fmt, member)
            if isinstance(member, Refused):
                raise member.stop
            taken = _take(member.first, meter, below >= 0, tap)
        except NotThisFormat:
            yield Layer(here, Outcome.NOT_THIS_FORMAT)
            return
        except Skip:
            continue
        except Exhausted as exc:
            exc.where = exc.where or here
            raise
        except Stop as exc:
            yield Layer(here, exc.outcome, reason=exc.reason)
            if member is None or fmt.single:
                extent.rest()  # what stopped the whole format may reach anywhere after it
            continue
        except Exception as exc:  # hostile bytes meet stdlib parsers: fail closed, not open
            yield Layer(
                here,
                Outcome.UNREADABLE,
                reason=f"decoding it failed unexpectedly ({type(exc).__name__}: {exc})",
            )
            extent.rest()
            return
        found = taken.found
        if taken.cut and tap is not None:
            again = (
                held_source(taken.data).open()
                if taken.data is not None
                else cut_back(member.again, taken.size)
            )
            found = _tapped(tap, again)
        yield Layer(here, Outcome.DECODED, digest=taken.digest, size=taken.size, found=found)
        if below < 0:
            continue
        if taken.data is not None:
            deeper = held_source(taken.data)
        else:
            deeper = Source(functools.partial(cut_back, member.again, taken.size), size=taken.size)
        yield from _walk(deeper, taken, here, below, meter, fmt.stream, tap)


def layers(
    source: str | os.PathLike[str] | bytes | Sequence[str],
    budget: DecodeBudget | None = None,
    *,
    depth: int | None = None,
    tap: Callable[[], Tap] | None = None,
) -> Iterator[Layer]:
    """Every payload reachable from ``source`` through layers of encoding, within a budget.

    The file is read once to find where formats may start in it (and, with a tap, to feed
    the tap); formats are tried where its leading bytes fit them and where their signatures
    are. The payload of each layer is hashed as it streams.

    Args:
        source: A file's path; bytes in memory; or a list of paths, read as the
            concatenation of the files (a split).
        budget: The limits; :class:`DecodeBudget` defaults when ``None``.
        depth: Layers to follow; ``budget.max_depth`` when ``None``.
        tap: Makes a fresh :class:`Tap` for each payload that streams through the walk (the
            file itself, and every decoded payload at every depth), which is fed all of that
            payload's bytes once, in order; its result is the layer's :attr:`Layer.found`.
            ``None``: no tap, and no cost for one.

    Returns:
        An iterator of :class:`Layer`, lazily computed: each decoded payload
        (:attr:`Outcome.DECODED`, with its digest), each format that fit the leading bytes
        or a signature but not the rest (:attr:`Outcome.NOT_THIS_FORMAT`), and each place
        that could not be inspected, with why (:attr:`Layer.uninspected`). With a tap whose
        result for the file itself is not empty, the first layer is the file itself:
        ``how`` empty, decoded, with its digest and what the tap found; without one (or
        with an empty result) the file itself yields no layer, as a caller that hashes
        files already expects. A file that no longer exists yields nothing; one that cannot
        be read yields one unreadable layer with an empty ``how``. Never raises for what the
        bytes hold (an exception from the tap makes the payload it was fed unreadable).
    """
    meter = Meter(budget if budget is not None else DecodeBudget())
    depth = meter.budget.max_depth if depth is None else depth
    try:
        src = top_source(source, meter)
        taken = _survey(src, meter, tap)
        if taken.found:
            yield Layer(
                (), Outcome.DECODED, digest=taken.digest, size=taken.size, found=taken.found
            )
        yield from _walk(src, taken, (), depth, meter, in_stream=False, tap=tap)
    except FileNotFoundError:
        return
    except OSError as exc:
        yield Layer((), Outcome.UNREADABLE, reason=f"it could not be read ({exc.strerror or exc})")
    except Exhausted as exc:
        yield Layer(exc.where or (), exc.outcome, reason=exc.reason)
    except Exception as exc:  # a bug here must not pass a file as inspected: fail closed
        yield Layer(
            (),
            Outcome.UNREADABLE,
            reason=f"decoding it failed unexpectedly ({type(exc).__name__}: {exc})",
        )
