"""Protected weights in bytes an agent handles itself: tool results, content arguments, new files.

An agent need not copy a file to carry a peer's weights: a tool result that prints them (or
their base64) puts them in the model's context, from where any later call can write them out;
a ``write_file`` whose ``content`` is the base64 of a tensor is a copy that names no source.
:class:`ContentIndex` keeps content-defined chunk fingerprints (:mod:`guard.fingerprints`) of
every protected weights file an :class:`~guard.assets.AssetIndex` knows, and finds a
substantial part of any of them (``min_bytes`` of tensor bytes, 64 KiB by default) at any
offset in a payload:

- as raw bytes, or as the text of a string (UTF-8, or Latin-1 for bytes carried in a str);
- inside base64 or hex runs in text, decoded;
- under any of the encodings and archives :func:`guard.decoding.layers` looks through, at
  every depth, fed to the fingerprint scanner as the payloads stream (its ``tap``).

What cannot be looked through within the :class:`~guard.streams.DecodeBudget` is reported
(:attr:`Found.uninspected`), never passed as clean.
"""

from __future__ import annotations

import binascii
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from guard.assets import AssetIndex, AssetInfo
from guard.decoding import layers
from guard.fingerprints import FingerprintIndex, Match, ScanTap
from guard.streams import DecodeBudget, Tap
from guard.types import AssetKind

#: Payloads smaller than this are not scanned: nothing in them can reach ``min_bytes`` of
#: tensor bytes once decoded, unless compressed, and a compressed 64 KiB of tensor bytes
#: is rarely under 4 KiB.
MIN_PAYLOAD = 4096

# Runs of base64 or hex (line breaks allowed, as base64 and xxd -p wrap) long enough to be
# worth decoding. One character class each: matching is linear, whatever the text.
_B64_RUN = re.compile(rb"[A-Za-z0-9+/=_\-\r\n]{1024,}")
_HEX_RUN = re.compile(rb"[0-9a-fA-F\r\n]{4096,}")


@dataclass(frozen=True)
class Hit:
    """A protected weights file found in a payload.

    Attributes:
        path: The protected file (as the asset index knows it).
        asset: Its asset (kind, owner).
        matched_bytes: Tensor bytes of it the payload holds, as far as whole chunks show.
        how: Where in the payload: the layers from outermost, e.g. ``("base64",)``.
    """

    path: str
    asset: AssetInfo
    matched_bytes: int
    how: tuple[str, ...] = ()


@dataclass
class Found:
    """What :meth:`ContentIndex.find` found: hits, and places it could not look into."""

    hits: list[Hit] = field(default_factory=list)
    uninspected: list[str] = field(default_factory=list)


class ContentIndex:
    """Fingerprints of the protected weights files an asset index knows, kept current.

    Args:
        assets: The asset index (declared, discovered and hashed protected files).
        roots: The roots whose weights are fingerprinted.
        min_bytes: The shortest copy of tensor bytes that must be found (see
            :class:`~guard.fingerprints.FingerprintIndex`).

    The index is built on first use and rebuilt when the set of protected weights files, or
    the content of one, changes (the asset index re-hashes what calls change). Thread-safe.
    """

    def __init__(self, assets: AssetIndex, roots: Sequence[str], *, min_bytes: int = 65536) -> None:
        self.assets = assets
        self.roots = list(roots)
        self.min_bytes = min_bytes
        self._lock = threading.Lock()
        self._state: frozenset[tuple[str, str | None]] | None = None
        self._index = FingerprintIndex(min_bytes=min_bytes)
        self._by_key: dict[str, tuple[str, AssetInfo]] = {}

    def _weights(self) -> list[tuple[str, AssetInfo]]:
        out: list[tuple[str, AssetInfo]] = []
        for root in self.roots:
            out.extend((p, i) for p, i in self.assets.under(root) if i.kind is AssetKind.WEIGHTS)
        return out

    def index(self) -> FingerprintIndex:
        """The fingerprint index, rebuilt first when the protected weights changed."""
        weights = self._weights()
        state = frozenset((p, self.assets.digest(p)) for p, _i in weights)
        with self._lock:
            if state != self._state:
                index = FingerprintIndex(min_bytes=self.min_bytes)
                by_key: dict[str, tuple[str, AssetInfo]] = {}
                for path, info in weights:
                    key = self.assets.digest(path) or path
                    if key in by_key:
                        continue
                    try:
                        index.add_file(path, key)
                    except OSError:
                        continue  # gone or unreadable: nothing to find of it
                    by_key[key] = (path, info)
                self._index, self._by_key, self._state = index, by_key, state
            return self._index

    def __len__(self) -> int:
        """Protected weights files fingerprinted."""
        self.index()
        return len(self._by_key)

    def tap(self) -> Callable[[], Tap]:
        """A tap factory for :func:`guard.decoding.layers`: each payload's
        :attr:`~guard.streams.Layer.found` holds its :class:`~guard.fingerprints.Match` es."""
        index = self.index()
        return lambda: ScanTap(index.scanner())

    def hit(self, match: Match, how: tuple[str, ...] = ()) -> Hit | None:
        """The :class:`Hit` a match of this index stands for."""
        known = self._by_key.get(match.key)
        if known is None:
            return None
        return Hit(known[0], known[1], match.matched_bytes, how)

    def find(self, payload: bytes | str, budget: DecodeBudget | None = None) -> Found:
        """Protected weights in ``payload``, raw, in base64 or hex runs, or under encodings.

        Args:
            payload: Bytes, or text (looked at as UTF-8, and as Latin-1 when it holds
                characters past U+007F: bytes an agent carried in a str).
            budget: Decoding limits (defaults when ``None``); what goes over them is
                reported in :attr:`Found.uninspected`.
        """
        found = Found()
        if len(payload) < MIN_PAYLOAD:
            return found
        index = self.index()
        if not self._by_key:
            return found
        seen: dict[str, Hit] = {}
        for data, how in _views(payload):
            for layer in layers(data, budget, tap=lambda: ScanTap(index.scanner())):
                if layer.uninspected:
                    found.uninspected.append(
                        f"{' in '.join(reversed((*how, *layer.how))) or 'the payload'}: "
                        f"{layer.reason}"
                    )
                for m in layer.found:
                    if isinstance(m, Match):
                        hit = self.hit(m, (*how, *layer.how))
                        if hit is not None and (
                            hit.path not in seen or seen[hit.path].matched_bytes < m.matched_bytes
                        ):
                            seen[hit.path] = hit
        found.hits = sorted(seen.values(), key=lambda h: -h.matched_bytes)
        return found


def _views(payload: bytes | str) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """The byte strings to scan: the payload itself, then each base64 and hex run decoded."""
    if isinstance(payload, str):
        raw = payload.encode("utf-8", "surrogatepass")
        yield raw, ()
        if not payload.isascii():
            latin = _latin1(payload)
            if latin is not None:
                yield latin, ("text as Latin-1",)
    else:
        raw = bytes(payload)
        yield raw, ()
    # A run may begin with a few characters of a word before the encoded text ("data:" is
    # not in the alphabet, "dataQUJD..." is): every alignment is decoded, as the run's
    # start cannot tell which one is the payload's.
    for m in _HEX_RUN.finditer(raw):
        digits = m.group().translate(None, b"\r\n")
        for shift in (0, 1):
            usable = digits[shift : shift + (len(digits) - shift) // 2 * 2]
            yield bytes.fromhex(usable.decode("ascii")), (f"hex at offset {m.start() + shift}",)
    for m in _B64_RUN.finditer(raw):
        # Padding ends a payload: pieces joined after it (rows of one cut-up text, blocks)
        # are decoded each from its own start, and given as one stream.
        for shift in range(4):
            decoded = b"".join(
                _unbase64(piece[shift:])
                for piece in _PADDING.split(m.group().translate(_URLSAFE, b"\r\n"))
            )
            if len(decoded) >= MIN_PAYLOAD:
                yield decoded, (f"base64 at offset {m.start() + shift}",)
        # Lines each decoded from their own start, short ones (a key, a block's "text"
        # tag between the pieces of a cut-up payload) left out.
        lines = m.group().translate(_URLSAFE, b"\r").split(b"\n")
        decoded = b"".join(_unbase64(line) for line in lines if len(line) >= 16)
        if len(decoded) >= MIN_PAYLOAD:
            yield decoded, (f"base64 lines from offset {m.start()}",)


_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = re.compile(rb"=+")


def _unbase64(piece: bytes) -> bytes:
    usable = piece[: len(piece) // 4 * 4]
    try:
        return binascii.a2b_base64(usable, strict_mode=False)
    except (binascii.Error, ValueError):
        return b""


def _latin1(text: str) -> bytes | None:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None  # characters past U+00FF: not bytes carried in a str


def describe(hit: Hit, root: str) -> str:
    """A hit in words, its path from ``root``."""
    shown = os.path.relpath(hit.path, root) if hit.path.startswith(root) else hit.path
    where = f" ({', '.join(hit.how)})" if hit.how else ""
    return f"{hit.matched_bytes // 1024} KiB of the tensor bytes of {shown}{where}"


__all__ = ["MIN_PAYLOAD", "ContentIndex", "Found", "Hit", "describe"]
