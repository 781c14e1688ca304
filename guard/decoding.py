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

import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from guard.members import (
    ZipDirectory,
    tar_members,
    tar_start,
    zip_directory,
    zip_members,
    zip_names,
)
from guard.streams import (
    HEAD_BYTES,
    CutBack,
    DecodeBudget,
    Exhausted,
    Layer,
    Members,
    Meter,
    NotThisFormat,
    Outcome,
    Refused,
    Skip,
    Source,
    Stop,
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
    "ZipDirectory",
    "layers",
    "zip_directory",
    "zip_names",
]


# ---------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    sniff: Callable[[bytes], bool]
    members: Members
    stream: bool = False  # a compressed stream: a tar right inside it is part of it


_FORMATS = (
    _Format("gzip", gzip_start, one_member("gzip", gunzip), stream=True),
    _Format("bzip2", bzip2_start, one_member("bzip2", bunzip2), stream=True),
    _Format("xz", xz_start, one_member("xz", unxz), stream=True),
    _Format("base64", base64_start, one_member("base64", unbase64)),
    _Format("zip", lambda head: head[:2] == b"PK", zip_members),
    _Format("tar", tar_start, tar_members),
)


@dataclass(frozen=True, slots=True)
class _Taken:
    """A payload after its first pass."""

    digest: str
    size: int
    head: bytes
    data: bytes | None  # held for decoding further, when it was wanted and small enough


def _take(chunks: Iterator[bytes], meter: Meter, keep: bool) -> _Taken:
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
                raise Stop(
                    Outcome.OVER_BUDGET,
                    f"it decodes to over {size_text(budget.max_layer_bytes)} (max_layer_bytes)",
                )
            digest.update(chunk)
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
    return _Taken(digest.hexdigest(), size, bytes(head), None if held is None else bytes(held))


def _walk(
    src: Source, head: bytes, how: tuple[str, ...], depth: int, meter: Meter, in_stream: bool
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
    fmt: _Format, src: Source, how: tuple[str, ...], below: int, meter: Meter
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
            if isinstance(member, Refused):
                raise member.stop
            taken = _take(member.first, meter, keep=below >= 0)
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
            deeper = held_source(taken.data)
        else:
            deeper = Source(functools.partial(cut_back, member.again, taken.size), size=taken.size)
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
    meter = Meter(budget if budget is not None else DecodeBudget())
    depth = meter.budget.max_depth if depth is None else depth
    try:
        src = top_source(source, meter)
        head = _first(src.open(), HEAD_BYTES)
        yield from _walk(src, head, (), depth, meter, in_stream=False)
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
