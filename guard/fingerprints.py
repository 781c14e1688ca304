"""Fingerprints of protected weights that find a copied part of them inside any file.

A hash of a whole file (:mod:`guard.assets`) knows a file that *is* a protected one. An agent
that copies part of a peer's weights (one tensor, a slice of a shard) into a file of its own,
at any offset and between any other bytes, needs more: this module cuts each protected file
into content-defined chunks, keeps a 64-bit hash of each, and looks for those hashes in the
chunks of any candidate stream.

How it works:

* **Content-defined chunking** (FastCDC 2020, through :mod:`pyfastcdc`'s C extension): a cut
  falls where a rolling hash of the last few dozen bytes meets a condition, so the same bytes
  are cut at the same places wherever they sit. A copy shifted by any number of bytes, or
  with other bytes in front, loses the chunks around its edges (until both sides cut at the
  same place, usually within a chunk or two) and keeps every chunk in between.
* **What is fingerprinted**: only tensor bytes. A safetensors file is fingerprinted after its
  8-byte length and JSON header; a GGUF file after its metadata and tensor descriptions
  (parsed, versions 2 and 3; where parsing stops early, fingerprinting starts where it
  stopped, see :func:`tensor_offset`); any other file (``.bin``, ``.pt``, unknown) whole.
  Headers are left out because unrelated models share them (names, shapes, tokenizer
  vocabularies), not because copying them is harmless.
* **Low-entropy chunks are never indexed**: a chunk that repeats a pattern of at most
  :data:`PERIOD` bytes (all zeros, one repeated byte, a float16/32/64 constant such as the
  1.0 a fresh LayerNorm holds, a short vector repeated) says nothing about whose weights it
  came from, so a file of zeros, or of ones, matches nothing.
* **What a match is**: a candidate matches a key when the *distinct* chunks it shares with
  that key's tensor bytes cover at least :attr:`FingerprintIndex.threshold` bytes,
  ``min_bytes // 2 + 1``. ``min_bytes`` (64 KiB by default) is the length of a contiguous
  copy that must be found. A copy can only be seen through the whole chunks inside it and it
  loses a few KiB at each edge, so the threshold is set at half: a copy of ``min_bytes // 2``
  bytes or less is never reported; a copy of ``min_bytes`` is (with the default chunk sizes,
  losses measured over 60,000 random 64 KiB copies into random bytes, of random bytes and of
  bfloat16 weights: median 3.6 KiB, largest 23.2 KiB, so each was found with at least 40 KiB
  matched); a copy in between may be. A chunk that the candidate repeats counts once: a
  repetition adds no evidence that more of the weights was copied.

Chunk sizes (``min_size=512, avg_size=2048, max_size=8192``, mean chunk about 2.4 KiB): a
copy loses up to a few chunks at its edges, so the loss grows with the chunk size. In the
same measurement (3,000 copies each), avg 4 KiB chunks missed 1 or 2 of the 64 KiB copies,
avg 8 KiB chunks about 5%, and 8 KiB chunks with stronger normalisation (NC 2) 17%, because
cut points then depend on where a chunk started and the two sides take longer to fall into
step. Throughput hardly depends on the chunk size (the C chunker skips ``min_size`` bytes
after each cut), while the index's memory does: about 85 bytes per chunk, some 35 MB per GB
of tensor bytes.

Speed (``benchmarks/fingerprints.py``, 256 MiB, against hashlib SHA-256 over the same bytes in
the same run, on a 2-core machine, quiet or busy): building 0.6x to 0.8x SHA-256's
throughput, scanning a file that is all copied weights 0.6x to 0.8x, one that shares
nothing about 1x. The chunker alone runs at about 1.4x; the rest is the per-chunk work in
Python, one dict lookup and a few operations for every 2.4 KiB.

Thread safety: build the index first (:meth:`FingerprintIndex.add_file`,
:meth:`FingerprintIndex.add_bytes`), then scan from any number of threads: scanning only
reads the index, and each :class:`Scanner` has its own chunker and counters. Adding while
another thread scans is not supported.

What it does not find: a copy that was transformed (re-encoded to another dtype, quantised,
compressed, encrypted, or with a byte changed every few KiB), and copies shorter than
``min_bytes // 2``. Deterministic tensors that many models share byte for byte (a stored
causal mask, a sinusoidal position table of the same size) are fingerprinted like any
other tensor bytes and can match between unrelated models.
"""

from __future__ import annotations

import array
import errno
import io
import os
import stat
import struct
import sys
from dataclasses import dataclass
from typing import IO, Final

import xxhash
from pyfastcdc import FastCDC

from guard.formats import WeightFormat, sniff_bytes

__all__ = ["PERIOD", "FingerprintIndex", "Match", "ScanTap", "Scanner", "tensor_offset"]

Bytes = bytes | bytearray | memoryview

PERIOD = 64
"""Chunks that repeat a pattern of at most this many bytes are never indexed."""

_READ = 1 << 20  # bytes per read of a file
_NORMALIZED_CHUNKING: Final = 1  # FastCDC's NC level; 2 and 3 resynchronise worse (see above)
_digest = xxhash.xxh3_64_intdigest


@dataclass(frozen=True, slots=True)
class Match:
    """A protected file whose tensor bytes a candidate shares.

    Attributes:
        key: The key the protected file was added under (its path or digest).
        matched_bytes: Bytes of the candidate covered by distinct chunks shared with that
            key's tensor bytes; at least the index's ``threshold``.
        first_offset: Offset in the candidate stream of the first matching chunk.
    """

    key: str
    matched_bytes: int
    first_offset: int


class FingerprintIndex:
    """Chunk hashes of protected files' tensor bytes, and the scans that look for them.

    Args:
        min_bytes: Length of a contiguous copy of tensor bytes that must be found. A key is
            reported when the candidate's shared chunks cover at least ``min_bytes // 2 + 1``
            bytes (:attr:`threshold`); see the module docstring for why half. Must be at
            least 8 times ``max_size``, since a copy loses up to a few chunks at its edges.
        min_size: Smallest chunk FastCDC cuts, in bytes (64 to 1 MiB).
        avg_size: FastCDC's target chunk size (256 to 4 MiB); the mean comes out above it
            (about 2.4 KiB for the default 2 KiB), since nothing is cut before ``min_size``.
        max_size: Largest chunk (1 KiB to 16 MiB); also the most bytes a :class:`Scanner`
            carries between two :meth:`Scanner.update` calls.

    Raises:
        ValueError: Sizes out of range or out of order, or ``min_bytes`` too small.
    """

    def __init__(
        self,
        *,
        min_bytes: int = 65536,
        min_size: int = 512,
        avg_size: int = 2048,
        max_size: int = 8192,
    ) -> None:
        if not min_size <= avg_size <= max_size:
            raise ValueError(
                f"chunk sizes must satisfy min <= avg <= max, not {min_size}, {avg_size}, "
                f"{max_size}"
            )
        if min_bytes < 8 * max_size:
            raise ValueError(
                f"min_bytes ({min_bytes}) must be at least 8 x max_size ({max_size}): a copy "
                "loses up to a few chunks at its edges"
            )
        # Construct once to let FastCDC check its own ranges before anything is indexed.
        FastCDC(avg_size, min_size=min_size, max_size=max_size)
        self.min_bytes = min_bytes
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        # digest -> index into _sets, the tuple of key numbers holding that chunk. Tuples are
        # interned, so a file added under one key costs one shared int per chunk, not a tuple.
        self._chunks: dict[int, int] = {}
        self._sets: list[tuple[int, ...]] = []
        self._set_ids: dict[tuple[int, ...], int] = {}
        self._keys: list[str] = []
        self._key_ids: dict[str, int] = {}

    @property
    def threshold(self) -> int:
        """Shared bytes at which a key is reported: ``min_bytes // 2 + 1``."""
        return self.min_bytes // 2 + 1

    def __len__(self) -> int:
        """Distinct chunks indexed (under any number of keys)."""
        return len(self._chunks)

    def add_file(self, path: str | os.PathLike[str], key: str) -> int:
        """Fingerprint the tensor bytes of the file at ``path`` under ``key``.

        Reads the file once, 1 MiB at a time; the format (and so where the tensor bytes
        start, :func:`tensor_offset`) is told from the content, not the name.

        Args:
            path: A regular file.
            key: What a :class:`Match` will name; adding several files under one key pools
                their chunks.

        Returns:
            Chunks of this file indexed under ``key`` (low-entropy chunks left out).

        Raises:
            OSError: The file cannot be opened or read, or is not a regular file.
        """
        with _open_regular(path) as file:
            start = tensor_offset(file)
            file.seek(start)
            builder = _Builder(self, key)
            buf = bytearray(_READ)
            view = memoryview(buf)
            while n := file.readinto(buf):
                builder.update(view[:n])
            builder._finish()
            return builder.count

    def add_bytes(self, data: Bytes, key: str, *, tensor_offset: int = 0) -> int:
        """Fingerprint ``data[tensor_offset:]`` under ``key``.

        Args:
            data: The bytes of a protected file, or of its tensors.
            key: What a :class:`Match` will name.
            tensor_offset: Where the tensor bytes start; nothing before it is fingerprinted.

        Returns:
            Chunks indexed under ``key`` (low-entropy chunks left out).
        """
        if tensor_offset < 0:
            raise ValueError(f"tensor_offset must not be negative, not {tensor_offset}")
        builder = _Builder(self, key)
        builder.update(memoryview(data).cast("B")[tensor_offset:])
        builder._finish()
        return builder.count

    def scanner(self) -> Scanner:
        """A scanner for one candidate stream, fed in pieces."""
        return Scanner(self)

    def scan_file(self, path: str | os.PathLike[str]) -> list[Match]:
        """Scan every byte of the file at ``path``, 1 MiB at a time.

        Returns:
            The matches, largest first.

        Raises:
            OSError: The file cannot be opened or read, or is not a regular file (a FIFO is
                refused rather than drained).
        """
        scanner = Scanner(self)
        buf = bytearray(_READ)
        view = memoryview(buf)
        with _open_regular(path) as file:
            while n := file.readinto(buf):
                scanner.update(view[:n])
        return scanner.matches()

    def scan_bytes(self, data: Bytes) -> list[Match]:
        """Scan ``data`` as one whole candidate stream; the matches, largest first."""
        scanner = Scanner(self)
        scanner.update(data)
        return scanner.matches()

    def export(self, key: str) -> bytes:
        """The chunk hashes indexed under ``key``, packed (8 bytes each, sorted), to keep
        beside a manifest and add to another index with :meth:`add_exported` once the file
        itself is gone. Empty when ``key`` is unknown."""
        kid = self._key_ids.get(key)
        if kid is None:
            return b""
        sets = self._sets
        found = array.array("Q", sorted(d for d, sid in self._chunks.items() if kid in sets[sid]))
        if sys.byteorder == "big":
            found.byteswap()  # little-endian on every machine
        return found.tobytes()

    def add_exported(self, data: bytes, key: str) -> int:
        """Add chunk hashes :meth:`export` packed, under ``key``; the number added.

        Raises:
            ValueError: ``data`` is not a whole number of 8-byte hashes.
        """
        if len(data) % 8:
            raise ValueError(f"exported chunk hashes are 8 bytes each, not {len(data)} bytes")
        sid = self._key_set(key)
        kid = self._sets[sid][0]
        chunks, sets = self._chunks, self._sets
        hashes = array.array("Q")
        hashes.frombytes(data)
        if sys.byteorder == "big":
            hashes.byteswap()
        for digest in hashes:
            held = chunks.setdefault(digest, sid)
            if held != sid and kid not in sets[held]:
                chunks[digest] = self._intern(tuple(sorted((*sets[held], kid))))
        return len(hashes)

    def _key_set(self, key: str) -> int:
        """The set number of ``(key,)``, registering the key if new."""
        kid = self._key_ids.get(key)
        if kid is None:
            kid = self._key_ids[key] = len(self._keys)
            self._keys.append(key)
        return self._intern((kid,))

    def _intern(self, keys: tuple[int, ...]) -> int:
        sid = self._set_ids.get(keys)
        if sid is None:
            sid = self._set_ids[keys] = len(self._sets)
            self._sets.append(keys)
        return sid


class _Stream:
    """Cuts one stream, fed in pieces, into the chunks one whole-stream cut would give.

    A cut depends only on the bytes from its chunk's start, so every chunk but the last of a
    buffer is final; the last is carried (fewer than ``max_size`` bytes) and cut again with
    what comes next. Subclasses say what to do with each final chunk in :meth:`_consume`.
    """

    def __init__(self, index: FingerprintIndex) -> None:
        self._index = index
        self._cdc = FastCDC(
            index.avg_size,
            min_size=index.min_size,
            max_size=index.max_size,
            normalized_chunking=_NORMALIZED_CHUNKING,
        )
        self._max = index.max_size
        self._pending = bytearray()  # the unfinished last chunk, shorter than max_size
        self._base = 0  # stream offset of _pending[0]

    def update(self, data: Bytes) -> None:
        """Feed the next piece of the stream."""
        view = memoryview(data).cast("B")
        pending, mx = self._pending, self._max
        while len(pending) + len(view) >= mx:
            if not pending:
                used = self._consume(view, final=False)  # cut in place, no copy
                self._base += used
                view = view[used:]  # the unfinished last chunk, shorter than max_size
                break
            # Complete the carried chunk to max_size bytes: that holds a final chunk.
            used = self._consume(pending + view[: mx - len(pending)], final=False)
            self._base += used
            if used >= len(pending):
                view = view[used - len(pending) :]
                pending.clear()
            else:
                del pending[:used]
        pending += view

    def _finish(self) -> None:
        """End the stream: the carried bytes are its last chunk."""
        if self._pending:
            self._base += self._consume(bytes(self._pending), final=True)
            self._pending.clear()

    def _consume(self, buf: Bytes, final: bool) -> int:
        """Handle the final chunks of ``buf``; return how many bytes they cover.

        Every chunk of ``buf`` is final except a last one shorter than ``max_size`` when
        ``final`` is false: that one was cut by the end of what has arrived, not by the
        content. (The loops over chunks are written out in each subclass: a generator in
        between costs a sixth of the throughput.)
        """
        raise NotImplementedError


class _Builder(_Stream):
    """Indexes the chunks of one protected stream under one key."""

    def __init__(self, index: FingerprintIndex, key: str) -> None:
        super().__init__(index)
        self._sid = index._key_set(key)
        self._kid = index._sets[self._sid][0]
        self.count = 0

    def _consume(self, buf: Bytes, final: bool) -> int:
        index = self._index
        chunks = index._chunks
        sets = index._sets
        sid, kid = self._sid, self._kid
        used = count = 0
        stop = len(buf) + 1 if final else len(buf)
        mx = self._max
        for chunk in self._cdc.cut_buf(buf):
            length = chunk.length
            end = chunk.offset + length
            if end >= stop and length < mx:
                break
            used = end
            data = chunk.data
            if _repetitive(data):
                continue
            held = chunks.setdefault(_digest(data), sid)
            if held != sid and kid not in sets[held]:
                chunks[_digest(data)] = index._intern(tuple(sorted((*sets[held], kid))))
            count += 1
        self.count += count
        return used


class Scanner(_Stream):
    """Looks for indexed chunks in one candidate stream, fed in any number of pieces.

    Feeding a stream in pieces of any sizes finds exactly what one
    :meth:`FingerprintIndex.scan_bytes` over the whole stream finds. Between two
    :meth:`update` calls it keeps fewer than ``max_size`` bytes of the stream, plus the set
    of distinct indexed chunks seen so far (bounded by the index). Use one scanner per
    stream and per thread; get one from :meth:`FingerprintIndex.scanner`.
    """

    def __init__(self, index: FingerprintIndex) -> None:
        super().__init__(index)
        # Indexed chunks seen so far: digest -> (key set, length). Only shared chunks are
        # kept, so ordinary data costs nothing here.
        self._seen: dict[int, tuple[int, int]] = {}
        # Counted per set of keys (what the index maps a chunk to), spread over the keys in
        # matches(): one dict update per shared chunk, however many keys share it.
        self._matched: dict[int, int] = {}  # key set -> shared bytes
        self._first: dict[int, int] = {}  # key set -> stream offset of its first chunk

    def shared(self) -> dict[int, tuple[tuple[str, ...], int]]:
        """Every indexed chunk the stream held in whole (the unfinished last one aside):
        its digest -> (the keys it belongs to, its length). What
        :class:`guard.carry.CarryLedger` adds up across streams."""
        index = self._index
        return {
            digest: (tuple(index._keys[kid] for kid in index._sets[sid]), length)
            for digest, (sid, length) in self._seen.items()
        }

    def matches(self) -> list[Match]:
        """Keys whose shared bytes reach the index's ``threshold``, largest first.

        Counts what was fed so far as the whole stream. Feeding more afterwards is allowed,
        and a later call counts it too.
        """
        index = self._index
        matched, first = self._matched, self._first
        if self._pending:
            # The carried bytes as the stream's last chunk, counted on copies of the
            # counters, without consuming them.
            matched, first = dict(matched), dict(first)
            new: set[int] = set()
            for chunk in self._cdc.cut_buf(bytes(self._pending)):
                digest = _digest(chunk.data)
                sid = index._chunks.get(digest)
                if sid is None or digest in self._seen or digest in new:
                    continue
                new.add(digest)
                matched[sid] = matched.get(sid, 0) + chunk.length
                first.setdefault(sid, self._base + chunk.offset)
        per_key: dict[int, int] = {}
        key_first: dict[int, int] = {}
        for sid, n in matched.items():
            for kid in index._sets[sid]:
                per_key[kid] = per_key.get(kid, 0) + n
                key_first[kid] = min(key_first.get(kid, first[sid]), first[sid])
        found = [
            Match(index._keys[kid], n, key_first[kid])
            for kid, n in per_key.items()
            if n >= index.threshold
        ]
        found.sort(key=lambda m: (-m.matched_bytes, m.key))
        return found

    def _consume(self, buf: Bytes, final: bool) -> int:
        get = self._index._chunks.get
        seen, matched, first = self._seen, self._matched, self._first
        base = self._base
        used = 0
        stop = len(buf) + 1 if final else len(buf)
        mx = self._max
        for chunk in self._cdc.cut_buf(buf):
            length = chunk.length
            end = chunk.offset + length
            if end >= stop and length < mx:
                break
            used = end
            digest = _digest(chunk.data)
            sid = get(digest)
            if sid is None or digest in seen:
                continue
            seen[digest] = (sid, length)
            matched[sid] = matched.get(sid, 0) + length
            if sid not in first:
                first[sid] = base + chunk.offset
        return used


class ScanTap:
    """A tap for :func:`guard.decoding.layers` that scans each payload as it streams: its
    ``result()`` is the payload's matches (``Layer.found``)."""

    __slots__ = ("scanner",)

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner

    def update(self, data: bytes) -> None:
        """Scan the next piece of the payload."""
        self.scanner.update(data)

    def result(self) -> tuple[object, ...]:
        """The payload's matches, largest first."""
        return tuple(self.scanner.matches())


def _repetitive(chunk: memoryview) -> bool:
    """Whether ``chunk`` repeats a pattern of at most :data:`PERIOD` bytes.

    A period ``p`` puts the chunk's first byte again at offset ``p``, so the candidates are
    the places of that byte among the next ``PERIOD`` (one ``memchr``, which finds none in
    nearly four chunks of real weights out of five); each is checked on the first
    ``2 * PERIOD`` bytes, then on the whole chunk.
    """
    width = min(PERIOD, len(chunk) // 2)
    if width == 0:
        return True  # one byte, or none: one repeated value
    head = chunk[: 2 * width].tobytes()
    start = head[0]
    at = head.find(start, 1, width + 1)
    while at > 0:
        if head[at : at + width] == head[:width]:
            data = chunk.tobytes()
            if data[at:] == data[:-at]:
                return True
        at = head.find(start, at + 1, width + 1)
    return False


def tensor_offset(file: IO[bytes]) -> int:
    """Where the tensor bytes of an open file start: what :meth:`FingerprintIndex.add_file`
    skips.

    * safetensors (told by content, as :func:`guard.formats.sniff_bytes` does): after the
      8-byte little-endian length ``N`` and the ``N`` bytes of JSON.
    * GGUF versions 2 and 3, either byte order: after the metadata key-values and tensor
      descriptions, rounded up to ``general.alignment`` (32 by default), where the tensor
      data starts. Where the metadata cannot be parsed (truncated, an unknown value type, a
      length past the end of the file, version 1, whose 32-bit lengths are not parsed), at
      the end of the last item that was parsed: the rest is fingerprinted, so the metadata
      after that point can match another file that holds the same metadata.
    * anything else: 0, every byte.

    Leaves the file position anywhere.
    """
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    head = file.read(64)
    fmt = sniff_bytes(head, size)
    if fmt is WeightFormat.SAFETENSORS:
        return 8 + int.from_bytes(head[:8], "little")
    if fmt is WeightFormat.GGUF:
        # Buffered: a vocabulary is read as hundreds of thousands of small fields.
        buffered = io.BufferedReader(file, _READ) if isinstance(file, io.RawIOBase) else file
        try:
            return _gguf_data_start(buffered, size)
        finally:
            if buffered is not file and isinstance(buffered, io.BufferedReader):
                buffered.detach()  # leave the caller's file open
    return 0


class _Truncated(Exception):
    """The GGUF metadata ends, or says something impossible, before it is parsed."""


class _GGUFReader:
    def __init__(self, file: IO[bytes], size: int, order: str) -> None:
        self.file = file
        self.size = size
        self.pos = 0
        self.order = order
        file.seek(0)

    def read(self, n: int) -> bytes:
        if n > self.size - self.pos:
            raise _Truncated
        data = self.file.read(n)
        if len(data) != n:
            raise _Truncated
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self.size - self.pos:
            raise _Truncated
        self.pos += n
        self.file.seek(self.pos)

    def u32(self) -> int:
        value: int = struct.unpack(self.order + "I", self.read(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack(self.order + "Q", self.read(8))[0]
        return value

    def string(self) -> bytes:
        return self.read(self.u64())

    def skip_string(self) -> None:
        self.skip(self.u64())


# GGUF metadata value types with a fixed size: uint8, int8, uint16, int16, uint32, int32,
# float32, bool, uint64, int64, float64. 8 is a string, 9 an array.
_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_UINT = {0: "B", 2: "H", 4: "I", 10: "Q"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_data_start(file: IO[bytes], size: int) -> int:
    file.seek(0)
    head = file.read(8)
    order = "<" if 1 <= int.from_bytes(head[4:8], "little") <= 10 else ">"
    r = _GGUFReader(file, size, order)
    last = 0
    try:
        r.skip(4)
        version = r.u32()
        last = r.pos
        if version not in (2, 3):
            return last
        tensors, kvs = r.u64(), r.u64()
        last = r.pos
        alignment = 32
        for _ in range(kvs):
            key = r.string()
            kind = r.u32()
            if key == b"general.alignment" and kind in _GGUF_UINT:
                alignment = struct.unpack(order + _GGUF_UINT[kind], r.read(_GGUF_FIXED[kind]))[0]
            else:
                _gguf_skip_value(r, kind, depth=0)
            last = r.pos
        for _ in range(tensors):
            r.skip_string()
            dims = r.u32()
            r.skip(8 * dims + 4 + 8)  # dimensions, type, offset
            last = r.pos
    except _Truncated:
        return last
    if alignment <= 0:
        return last
    return min(-(-r.pos // alignment) * alignment, size)


def _gguf_skip_value(r: _GGUFReader, kind: int, depth: int) -> None:
    if kind in _GGUF_FIXED:
        r.skip(_GGUF_FIXED[kind])
    elif kind == _GGUF_STRING:
        r.skip_string()
    elif kind == _GGUF_ARRAY and depth < 4:
        inner, count = r.u32(), r.u64()
        if inner in _GGUF_FIXED:
            r.skip(count * _GGUF_FIXED[inner])
        else:
            if count > r.size - r.pos:  # every element takes at least a byte
                raise _Truncated
            for _ in range(count):
                _gguf_skip_value(r, inner, depth + 1)
    else:
        raise _Truncated


def _open_regular(path: str | os.PathLike[str]) -> io.FileIO:
    """Open a regular file for reading; refuse FIFOs and devices without blocking on them."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
