"""Decompression bombs for tests: a gibibyte of zeros in about a megabyte, built in a second.

Compressing a gibibyte takes seconds to minutes (xz: 13 s), so the builders compress one block
and repeat it. Each result is a real, valid file: ``gunzip``, ``bunzip2``, ``xz -d`` and
``unzip`` expand it to the full size, as the standard library's one-shot functions do.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import io
import lzma
import struct
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

MIB = 1 << 20
GIB = 1 << 30
_BLOCK = 16 * MIB


def _zeros_crc(size: int) -> int:
    crc = 0
    block = bytes(_BLOCK)
    for _ in range(size // _BLOCK):
        crc = zlib.crc32(block, crc)
    return crc


def _deflate(size: int, wbits: int) -> bytes:
    """``size`` zeros as one deflate stream, built by repeating one compressed block.

    After a full flush deflate forgets what came before, so every block of zeros compresses to
    the same bytes: compress two, repeat the second, then end the stream.
    """
    block = bytes(_BLOCK)
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (size // _BLOCK - 1) + c.flush()


@functools.cache
def gzip_bomb(size: int = GIB) -> bytes:
    """One gzip member of ``size`` zeros (about 1 MB for 1 GiB), with a correct trailer."""
    stream = _deflate(size, 16 + zlib.MAX_WBITS)
    # The trailer the compressor wrote counts two blocks; the file holds them all.
    return stream[:-8] + struct.pack("<LL", _zeros_crc(size), size & 0xFFFFFFFF)


def _streams(compressor: Callable[[], bz2.BZ2Compressor | lzma.LZMACompressor], size: int) -> bytes:
    """Concatenated streams of 64 MiB of zeros each, compressed once, fed a MiB at a time."""
    c = compressor()
    chunk = bytes(MIB)
    stream = b"".join(c.compress(chunk) for _ in range(64)) + c.flush()
    return stream * (size // (64 * MIB))


@functools.cache
def bzip2_bomb(size: int = GIB) -> bytes:
    """``size`` zeros as concatenated bzip2 streams (a few KB for 1 GiB)."""
    return _streams(lambda: bz2.BZ2Compressor(9), size)


@functools.cache
def xz_bomb(size: int = GIB) -> bytes:
    """``size`` zeros as concatenated xz streams (about 150 KB for 1 GiB)."""
    return _streams(lambda: lzma.LZMACompressor(preset=0), size)


@functools.cache
def zip_bomb(size: int = GIB, name: bytes = b"w.bin") -> bytes:
    """A zip whose one deflated member is ``size`` zeros (about 1 MB for 1 GiB)."""
    raw = _deflate(size, -zlib.MAX_WBITS)
    crc = _zeros_crc(size)
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(raw), size, len(name), 0
    )
    central = struct.pack(
        "<4s4B4HL2L5H2L",
        *(b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 0x21, crc, len(raw), size),
        *(len(name), 0, 0, 0, 0, 0o644 << 16, 0),
    )
    directory = central + name
    offset = len(local) + len(name) + len(raw)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), offset, 0)
    return local + name + raw + directory + end


def many_entries_zip(count: int, name: bytes = b"a.txt") -> bytes:
    """A zip with one empty member and a central directory listing it ``count`` times.

    :mod:`zipfile` makes an object of every entry when it opens a zip: about 400 bytes each.
    """
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0)
    entry = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, *[0] * 8, len(name), *[0] * 6)
    directory = (entry + name) * count
    end = struct.pack(
        "<4s4H2LH",
        *(b"PK\x05\x06", 0, 0, count & 0xFFFF, count & 0xFFFF, len(directory)),
        *(len(local) + len(name), 0),
    )
    return local + name + directory + end


def tar_of(members: dict[str, bytes]) -> bytes:
    """An uncompressed tar holding ``members``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextlib.contextmanager
def traced_peak() -> Iterator[list[int]]:
    """Trace Python allocations in the block; the list then holds the peak growth in bytes.

    Decoders' output buffers are Python bytes, so a payload decoded whole shows in full.
    """
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result: list[int] = []
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1] - before)
        if started:
            tracemalloc.stop()
