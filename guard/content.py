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

import base64
import binascii
import contextlib
import os
import quopri
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from guard.assets import AssetIndex, AssetInfo
from guard.decoding import layers
from guard.fingerprints import FingerprintIndex, Match, Scanner, ScanTap
from guard.streams import DecodeBudget, Tap
from guard.types import AssetKind

#: Payloads smaller than this are not scanned: nothing in them can reach ``min_bytes`` of
#: tensor bytes once decoded, unless compressed, and a compressed 64 KiB of tensor bytes
#: is rarely under 4 KiB.
MIN_PAYLOAD = 4096


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


# Printable text (and tabs and line breaks) mapped to "A", the rest to NUL: a run of text is
# then found by bytes.find in C, whatever the payload holds.
_RUN_MAP = bytes(0x41 if 0x20 <= c < 0x7F or c in b"\t\r\n" else 0 for c in range(256))
_RUN_MIN = 256  # characters: shorter runs decode to under 192 bytes, a fraction of a chunk
_RUN_NEEDLE = b"A" * _RUN_MIN
_RUN_MAX = 16 << 20  # a run held before it is decoded; a longer one is decoded in pieces
_REPEATS = re.compile(rb"(.)\1{63,}", re.S)
_HEX_CHARS = b"0123456789abcdefABCDEF\r\n"


class PayloadTap:
    """A tap for :func:`guard.decoding.layers` that scans a payload for fingerprints as it
    streams, and the runs of text in it decoded by every text encoding of bytes that a shell
    or one line of Python makes (:func:`_text_decodings`: a part in a line of a log, a string
    literal, a hex dump). Its ``result()`` is the matches, the best per protected file."""

    __slots__ = ("_best", "_index", "_pending", "_pending_len", "_raw")

    def __init__(self, index: FingerprintIndex) -> None:
        self._index = index
        self._raw = index.scanner()
        self._pending: list[bytes] = []  # a run of text that may go on in the next piece
        self._pending_len = 0
        self._best: dict[str, Match] = {}

    def update(self, data: bytes) -> None:
        """Scan the next piece of the payload."""
        self._raw.update(data)
        data = bytes(data)
        mapped = data.translate(_RUN_MAP)
        pos = 0
        if self._pending:  # a run from the last piece: where does it end?
            end = mapped.find(b"\0")
            if end < 0:
                self._hold(data)
                return
            self._hold(data[:end])
            self._flush()
            pos = end
        while (i := mapped.find(_RUN_NEEDLE, pos)) >= 0:
            start = mapped.rfind(b"\0", pos, i) + 1 or pos
            end = mapped.find(b"\0", i)
            if end < 0:  # the run goes on in the next piece
                self._hold(data[start:])
                return
            self._decode(data[start:end])
            pos = end
        tail = max(mapped.rfind(b"\0") + 1, pos)
        if tail < len(data):
            self._hold(data[tail:])  # may be the start of a run

    def _hold(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_len += len(piece)
        if self._pending_len >= _RUN_MAX:
            self._flush()  # a longer run is decoded in pieces

    def _flush(self) -> None:
        run = b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        if len(run) >= _RUN_MIN:
            self._decode(run)

    def _decode(self, run: bytes) -> None:
        for decoded in _text_decodings(run):
            scanner = self._index.scanner()
            scanner.update(decoded)
            self._keep(scanner.matches())

    def _keep(self, matches: list[Match]) -> None:
        for m in matches:
            best = self._best.get(m.key)
            if best is None or best.matched_bytes < m.matched_bytes:
                self._best[m.key] = m

    def result(self) -> tuple[object, ...]:
        """The matches of the payload and of its runs, the best per key, largest first."""
        self._flush()
        self._keep(self._raw.matches())
        return tuple(sorted(self._best.values(), key=lambda m: -m.matched_bytes))


def _table(chars: bytes) -> bytes:
    return bytes(0x41 if c in chars else 0 for c in range(256))


_LINES = b"\r\n"
_B64_TABLE = _table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-" + _LINES)
_B32_TABLE = _table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=" + _LINES)
_A85_TABLE = _table(bytes(range(0x21, 0x76)) + b"z" + _LINES)
_B85_TABLE = _table(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
    + _LINES
)
_HEX_TABLE = _table(b"0123456789abcdefABCDEFxX \t:,;.-" + _LINES)
_XXD_LINE = re.compile(rb"^[0-9a-fA-F]{6,16}: ((?:[0-9a-fA-F]{2,8} ?){1,16})", re.M)
# ``od -t x1`` and ``hexdump -C``: an address (octal, decimal or hex digits), then up to 16
# bytes in pairs of hex digits, one or two spaces apart.
_OD_LINE = re.compile(
    rb"^[0-9a-fA-F]{6,16}  ?((?:[0-9a-fA-F]{2} {1,2}){0,15}[0-9a-fA-F]{2})(?= |$)", re.M
)
# Bytes as decimal numbers: a JSON array, ``od -t u1``, a Python list.
_DEC_TABLE = _table(b"0123456789 ,\t[]" + b"\r\n")
_DEC_NUMBER = re.compile(rb"\d+")
_UU_LINE = re.compile(rb"^[!-M][ -`]{1,61}$", re.M)
_QP_ESCAPE = re.compile(rb"=[0-9A-F]{2}")
_NOT_HEX = re.compile(rb"0[xX]|[^0-9a-fA-F]")


def _spans(text: bytes, table: bytes, least: int) -> Iterator[bytes]:
    """The runs of ``text`` made only of the characters ``table`` maps to ``A``, at least
    ``least`` long: ``translate`` and ``find`` in C, so the cost is linear whatever the text
    (a regex ``[class]{n,}`` tries every start of every shorter run again)."""
    mapped = text.translate(table)
    needle = b"A" * least
    pos = 0
    while (i := mapped.find(needle, pos)) >= 0:
        start = mapped.rfind(b"\0", pos, i) + 1 or pos
        end = mapped.find(b"\0", i)
        end = len(text) if end < 0 else end
        span = text[start:end]
        if len(set(span[:256])) < 8:
            # One character over and over (padding, a compressed bomb's bytes) encodes
            # nothing: cut out, it can neither hide an encoding nor cost its decoding.
            span = _REPEATS.sub(b"\n", span)
        if len(span) >= least:
            yield span
        pos = end


def _text_decodings(text: bytes) -> Iterator[bytes]:
    """What a run of text may hold as bytes: base64 (both alphabets, every alignment), hex
    (plain, with separators, ``0x..`` literals, ``od -tx1``, ``xxd`` dumps), base32, base85,
    Ascii85, uuencode and quoted-printable. Each candidate is decoded as far as it decodes;
    the fingerprints judge what comes out."""
    for run in _spans(text, _B64_TABLE, _RUN_MIN):
        for decoded, _how in _decoded_runs(run):
            yield decoded
    for run in _spans(text, _HEX_TABLE, _RUN_MIN):
        digits = _NOT_HEX.sub(b"", run)
        if len(digits) * 3 < len(run):
            continue  # mostly separators: not a dump of bytes (0x2f, is 2 digits in 5)
        for shift in (0, 1):
            usable = digits[shift : shift + (len(digits) - shift) // 2 * 2]
            yield bytes.fromhex(usable.decode("ascii"))
    # Dumps of lines (xxd, uuencode) are looked for only where such lines can be at all:
    # counting in C first spares ordinary text a regex over every line.
    rows = _XXD_LINE.findall(text) if text.count(b": ") > 16 else []
    if len(rows) > 16:
        yield bytes.fromhex(b"".join(r.replace(b" ", b"") for r in rows).decode("ascii"))
    rows = _OD_LINE.findall(text) if text.count(b"\n") > 16 else []
    if len(rows) > 16:
        yield bytes.fromhex(b"".join(r.replace(b" ", b"") for r in rows).decode("ascii"))
    for found in _spans(text, _DEC_TABLE, _RUN_MIN):
        with contextlib.suppress(ValueError):  # a number past 255: not a list of bytes
            yield bytes(map(int, _DEC_NUMBER.findall(found)))
    for found in _spans(text, _B32_TABLE, _RUN_MIN):
        run = found.translate(None, _LINES)
        for shift in range(8):
            usable = run[shift : shift + (len(run) - shift) // 8 * 8]
            with contextlib.suppress(ValueError):
                yield _unbase32(usable)
    for table, decode in ((_A85_TABLE, base64.a85decode), (_B85_TABLE, base64.b85decode)):
        for found in _spans(text, table, _RUN_MIN):
            if b"\0" not in found.translate(_B64_TABLE):
                continue  # base64 text (decoded above): their decoders are slow pure Python
            run = found.translate(None, _LINES)
            for shift in range(5):
                usable = run[shift : shift + (len(run) - shift) // 5 * 5]
                with contextlib.suppress(ValueError):
                    yield decode(usable)
    uu = _UU_LINE.findall(text) if text.count(b"\nM") > 16 else []
    if len(uu) > 16:
        out = bytearray()
        for line in uu:
            with contextlib.suppress(binascii.Error):
                out += binascii.a2b_uu(line)
        yield bytes(out)
    if len(_QP_ESCAPE.findall(text, 0, 1 << 16)) > 64:
        yield quopri.decodestring(text)


_B32_DIGITS = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHIJKLMNOPQRSTUV"
)


def _unbase32(text: bytes) -> bytes:
    """Base32 (whole groups of 8, padded at the end only) decoded in C: the alphabet turned
    into base-32 digits and read as one integer. ``base64.b32decode`` is pure Python, a
    loop per 8 characters (over a second for a megabyte). Raises ValueError on anything else."""
    body = text.rstrip(b"=")
    if not body:
        return b""
    bits = len(body) * 5
    n = bits // 8
    value = int(body.translate(_B32_DIGITS), 32) >> (bits - n * 8)
    return value.to_bytes(n, "big")


def dump_like(text: bytes) -> bool:
    """Whether ``text`` holds rows of a dump (``xxd``, ``od -t x1``, ``hexdump -C``) or a run
    of decimal numbers (a JSON array, ``od -t u1``): bytes printed at 3.5 to 5 characters
    each."""
    if len(_XXD_LINE.findall(text)) + len(_OD_LINE.findall(text)) >= 4:
        return True
    return next(_spans(text, _DEC_TABLE, _RUN_MIN), None) is not None


def may_carry_bytes(text: bytes) -> bool:
    """Whether ``text`` holds bytes that are not text, or a run of base64 or hex long enough
    to decode to something (base64, base32, hex, Ascii85 or base85): what a piece of a file
    looks like when printed, or rows of a dump. Prose, lists of names and tables of numbers
    do not."""
    if b"\0" in text.translate(_RUN_MAP):
        return True
    if dump_like(text):
        return True  # their text column breaks the runs
    return any(
        next(_spans(text, table, _RUN_MIN), None) is not None
        for table in (_B64_TABLE, _HEX_TABLE, _A85_TABLE, _B85_TABLE)
    )


def latin1_view(data: bytes, *, strict: bool = True) -> bytes | None:
    """``data`` read as UTF-8 text and written as Latin-1: the bytes an agent carried in a
    str (each byte one character), once the str was encoded as UTF-8. ``None`` for ASCII
    (the same bytes) and, when ``strict``, for what is not UTF-8 text. Characters past
    U+00FF are left out."""
    if data.isascii():
        return None
    try:
        text = data.decode("utf-8", "strict" if strict else "ignore")
    except UnicodeDecodeError:
        return None
    return text.encode("latin-1", "ignore")


def text_decodings(text: bytes) -> Iterator[bytes]:
    """What ``text`` may hold as bytes, in every text encoding this module reads (see
    :func:`_text_decodings`)."""
    return _text_decodings(text)


def alphabet_runs(text: bytes, least: int) -> Iterator[bytes]:
    """The runs of ``text`` made of the base64 alphabet (which holds base32 and hex), at
    least ``least`` long."""
    return _spans(text, _B64_TABLE, least)


def _decoded_runs(run: bytes) -> Iterator[tuple[bytes, tuple[str, ...]]]:
    """What one run of base64-alphabet characters decodes to: as hex (when it is hex), and
    as base64 at every alignment, restarting after padding and at each line."""
    if not run.translate(None, _HEX_CHARS):  # only hex digits and line breaks
        digits = run.translate(None, b"\r\n")
        for shift in (0, 1):
            usable = digits[shift : shift + (len(digits) - shift) // 2 * 2]
            yield bytes.fromhex(usable.decode("ascii")), ("hex",)
    plain = run.translate(_URLSAFE, b"\r\n")
    pieces = _PADDING.split(plain) if b"=" in plain else [plain]
    for shift in range(4):
        yield b"".join(_unbase64(piece[shift:]) for piece in pieces), ("base64",)
    lines = run.translate(_URLSAFE, b"\r").split(b"\n")
    if len(lines) > 1:
        yield b"".join(_unbase64(line) for line in lines if len(line) >= 16), ("base64 lines",)


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
        self._index = FingerprintIndex(min_bytes=min_bytes)
        self._by_key: dict[str, tuple[str, AssetInfo]] = {}

    def _weights(self) -> list[tuple[str, AssetInfo]]:
        out: list[tuple[str, AssetInfo]] = []
        for root in self.roots:
            out.extend((p, i) for p, i in self.assets.under(root) if i.kind is AssetKind.WEIGHTS)
        return out

    def index(self) -> FingerprintIndex:
        """The fingerprint index, brought up to date first: the content of a protected
        weights file not fingerprinted yet is added (a new file, or one that changed); a copy
        of content already in costs nothing. Fingerprints of content no longer held by any
        protected file are dropped by a rebuild once they are most of the index."""
        weights = self._weights()
        with self._lock:
            held: dict[str, tuple[str, AssetInfo]] = {}
            for path, info in weights:
                held.setdefault(self.assets.digest(path) or path, (path, info))
            stale = self._by_key.keys() - held.keys()
            if stale and len(stale) * 2 > len(self._by_key):
                self._index, self._by_key = FingerprintIndex(min_bytes=self.min_bytes), {}
            for key, (path, info) in held.items():
                if key in self._by_key:
                    self._by_key[key] = (path, info)  # still there, perhaps under a new name
                    continue
                try:
                    self._index.add_file(path, key)
                except OSError:
                    continue  # gone or unreadable: nothing to find of it
                self._by_key[key] = (path, info)
            return self._index

    def __len__(self) -> int:
        """Protected weights files fingerprinted."""
        self.index()
        return len(self._by_key)

    def tap(self) -> Callable[[], Tap] | None:
        """A tap factory for :func:`guard.decoding.layers`: each payload's
        :attr:`~guard.streams.Layer.found` holds its :class:`~guard.fingerprints.Match` es;
        ``None`` when no protected weights are fingerprinted (nothing to look for)."""
        index = self.index()
        if not self._by_key:
            return None
        return lambda: PayloadTap(index)

    def hit(self, match: Match, how: tuple[str, ...] = ()) -> Hit | None:
        """The :class:`Hit` a match of this index stands for."""
        known = self._by_key.get(match.key)
        if known is None:
            return None
        return Hit(known[0], known[1], match.matched_bytes, how)

    def find(
        self,
        payload: bytes | str,
        budget: DecodeBudget | None = None,
        *,
        least: int = MIN_PAYLOAD,
        shared: dict[int, tuple[tuple[str, ...], int]] | None = None,
    ) -> Found:
        """Protected weights in ``payload``, raw, in base64 or hex runs, or under encodings.

        Args:
            payload: Bytes, or text (looked at as UTF-8, and as Latin-1 when it holds
                characters past U+007F: bytes an agent carried in a str).
            budget: Decoding limits (defaults when ``None``); what goes over them is
                reported in :attr:`Found.uninspected`.
            least: Payloads, and decoded runs, shorter than this are not looked at.
            shared: When given, every indexed chunk found whole, in any view or layer, is
                added to it (see :meth:`~guard.fingerprints.Scanner.shared`), whether or not
                the payload reaches the threshold on its own.
        """
        found = Found()
        if len(payload) < least:
            return found
        index = self.index()
        if not self._by_key:
            return found
        seen: dict[str, Hit] = {}
        scanners: list[Scanner] = []

        def tap() -> ScanTap:
            scanner = index.scanner()
            scanners.append(scanner)
            return ScanTap(scanner)

        for data, how in _views(payload, least):
            for layer in layers(data, budget, tap=tap):
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
        if shared is not None:
            for scanner in scanners:
                shared.update(scanner.shared())
        return found

    def asset_of(self, key: str) -> tuple[str, AssetInfo] | None:
        """The protected file (path, asset) a fingerprint key stands for."""
        return self._by_key.get(key)


def _views(
    payload: bytes | str, least: int = MIN_PAYLOAD
) -> Iterator[tuple[bytes, tuple[str, ...]]]:
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
        latin = latin1_view(raw)
        if latin is not None and len(latin) >= least:
            yield latin, ("text as Latin-1",)
    # A run may begin with a few characters of a word before the encoded text ("data:" is
    # not in the alphabet, "dataQUJD..." is): every alignment is decoded, as the run's
    # start cannot tell which one is the payload's.
    for decoded in _text_decodings(raw):
        if len(decoded) >= least:
            yield decoded, ("decoded text",)


_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = re.compile(rb"=+")


def _unbase64(piece: bytes) -> bytes:
    # A piece cut at its padding ends in a partial group of 2 or 3 characters, which holds 1
    # or 2 bytes: padded back, not dropped (pieces of a stream encoded one by one join up).
    extra = len(piece) % 4
    usable = piece + b"=" * (4 - extra) if extra > 1 else piece[: len(piece) - extra]
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


__all__ = [
    "MIN_PAYLOAD",
    "ContentIndex",
    "Found",
    "Hit",
    "PayloadTap",
    "alphabet_runs",
    "describe",
    "dump_like",
    "latin1_view",
    "may_carry_bytes",
    "strings_in",
    "text_decodings",
]


def strings_in(value: object, budget: int = 100_000) -> Iterator[str | bytes]:
    """The strings and bytes in a tool's result, wherever they are: inside lists, tuples,
    sets and dicts (keys too), dataclasses, pydantic models and other objects' attributes,
    an exception's message and arguments. At most ``budget`` values are visited; past it the
    rest is given as one ``repr`` (still screened, never skipped)."""
    stack: list[object] = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            yield item
            continue
        if isinstance(item, bytearray | memoryview):
            yield bytes(item)
            continue
        if item is None or isinstance(item, bool | int | float) or id(item) in seen:
            continue
        seen.add(id(item))
        budget -= 1
        if budget < 0:
            yield repr(stack)  # what is left, in one piece
            return
        # Pushed in reverse, so that what is popped comes in the result's own order (rows
        # of one text cut up are screened joined as they were).
        if isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                stack.extend((v, k))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(reversed(list(item)))
        elif isinstance(item, BaseException):
            yield str(item)
            stack.extend(reversed(item.args))
        elif hasattr(item, "__dict__") or hasattr(item, "__slots__"):
            fields = getattr(item, "__dict__", None) or {
                name: getattr(item, name, None)
                for cls in type(item).__mro__
                for name in getattr(cls, "__slots__", ())
            }
            stack.extend(reversed(list(fields.values())))
        else:
            yield repr(item)
