"""Archive members for :mod:`guard.decoding`: tar and zip, each member a payload of its own.

tar members are read as a stream through :mod:`tarfile` over a bounded reader; zip members
through :mod:`zipfile`, once the central directory, read here without :mod:`zipfile` within a
bound (:func:`zip_directory`, :func:`zip_names`), says the archive is worth opening. As
``unzip`` does, a zip may have bytes in front of it (a shell script, a self-extractor): its
directory's offsets are taken as relative to where the archive starts. A zip with no usable
central directory (none, or cut off, or a payload that can only be streamed, or one found at
an offset) is read as a stream through its local headers, one member after another, as
streaming unzippers do. A member the budget refuses (declared too big, encrypted, an unknown
method) is reported as ``Refused``.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO

from guard.streams import (
    CHUNK,
    KIB,
    MIB,
    DecodeBudget,
    Extent,
    Inflate,
    Member,
    Meter,
    NotThisFormat,
    Outcome,
    Refused,
    Skip,
    Source,
    Stop,
    at_offset,
    bunzip2,
    pump,
    size_text,
)

_MAX_TAR_HEADER = MIB


_TAR_SLACK = 64 * KIB  # tarfile reads ahead a record or so


_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError, zlib.error)


def tar_start(head: bytes) -> bool:
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
                raise Stop(
                    Outcome.OVER_BUDGET, f"its tar headers take over {size_text(_MAX_TAR_HEADER)}"
                )
        return out


def _tar_open(reader: _Reader) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=reader, mode="r|")
    except _TAR_ERRORS:
        raise NotThisFormat from None


def _tar_entries(
    src: Source, extent: Extent | None = None
) -> Iterator[tuple[tarfile.TarFile, _Reader, tarfile.TarInfo]]:
    """Every header of the tar in ``src``, read as a stream; a corrupt tail ends it. At the
    end, the bytes up to the last member's end are added to ``extent``."""
    reader = _Reader(src.open())
    reader.allow(_MAX_TAR_HEADER + _TAR_SLACK)
    with _tar_open(reader) as archive:
        while True:
            try:
                info = archive.next()
            except _TAR_ERRORS:
                info = None  # a corrupt or cut-off tail: the members before it stand
            if info is None:
                if extent is not None:
                    extent.add(0, archive.offset)
                return
            yield archive, reader, info
            blocks = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            reader.allow(blocks + _MAX_TAR_HEADER + _TAR_SLACK)


def _tar_read(
    archive: tarfile.TarFile, info: tarfile.TarInfo, reader: _Reader, meter: Meter
) -> Iterator[bytes]:
    reader.allow(None)  # tarfile stops at the member's size itself
    try:
        fh = archive.extractfile(info)
        if fh is None:
            raise Skip
        while chunk := fh.read(CHUNK):
            meter.spend(len(chunk))
            yield chunk
    except _TAR_ERRORS:
        raise Skip from None


def tar_members(src: Source, meter: Meter, extent: Extent) -> Iterator[Member | Refused]:
    budget = meter.budget
    for count, (archive, reader, info) in enumerate(_tar_entries(src, extent), 1):
        if count > budget.max_members:
            raise Stop(
                Outcome.OVER_BUDGET,
                f"the archive has over {budget.max_members} members (max_members); "
                "the rest were not inspected",
            )
        if not info.isreg():
            continue
        label = f"tar member {info.name}"
        if info.size > budget.max_layer_bytes:
            yield Refused(label, _declared_too_big(info.size, budget))
            continue
        again = functools.partial(_tar_member, src, count, meter)
        yield Member(label, again, _tar_read(archive, info, reader, meter))


def _tar_member(src: Source, index: int, meter: Meter) -> Iterator[bytes]:
    for count, (archive, reader, info) in enumerate(_tar_entries(src), 1):
        if count == index:
            yield from _tar_read(archive, info, reader, meter)
            return


def _declared_too_big(size: int, budget: DecodeBudget) -> Stop:
    return Stop(
        Outcome.OVER_BUDGET,
        f"it declares {size_text(size)}, over {size_text(budget.max_layer_bytes)} (max_layer_bytes)",
    )


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record


_EOCD64_LOCATOR = struct.Struct("<4sLQL")


_EOCD64 = struct.Struct("<4sQ2H2L4Q")


_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # one central directory entry, before its name


_LOCAL = struct.Struct("<4s5H3L2H")  # a member's local header, before its name


_ZIP_ENTRY_BYTES = KIB  # central directory bytes allowed per member


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
    """Open the zip in ``fh`` once its directory is known to be within the budget.

    Raises:
        NotThisFormat: It has no central directory, or :mod:`zipfile` cannot read it.
        Stop: The directory lists more members than the budget allows.
    """
    directory = zip_directory(fh)
    if directory is None:
        raise NotThisFormat
    if (
        directory.entries > budget.max_members
        or directory.size > budget.max_members * _ZIP_ENTRY_BYTES
    ):
        raise Stop(
            Outcome.OVER_BUDGET,
            f"its zip directory lists {directory.entries} members in {size_text(directory.size)}, "
            f"over max_members ({budget.max_members})",
        )
    try:
        return zipfile.ZipFile(fh)
    except _ZIP_ERRORS:
        raise NotThisFormat from None


def zip_members(src: Source, meter: Meter, extent: Extent) -> Iterator[Member | Refused]:
    """The members of a zip, by its central directory when it has a usable one (whatever
    is in front of it), else by its local headers from the start of ``src``."""
    budget = meter.budget
    with src.file() as fh:
        archive = None
        if fh is not None:
            with contextlib.suppress(NotThisFormat):
                archive = _zip_archive(fh, budget)
        if fh is None or archive is None:
            extent.add(0, 1)  # a local header at 0 is read here: not a place of its own
            yield from zip_local_members(src, meter, extent)
            return
        with archive:
            infos = archive.infolist()
            if len(infos) > budget.max_members:
                raise Stop(Outcome.OVER_BUDGET, f"the zip has over {budget.max_members} members")
            start = min((info.header_offset for info in infos), default=0)
            place = (f"zip at offset {start}",) if start > 0 else ()
            for info in infos:
                extent.add(*_zip_span(fh, info))
            for index, info in enumerate(infos):
                if info.is_dir():
                    continue
                label = f"zip member {info.filename}"
                refusal = _zip_refusal(info, budget)
                if refusal is not None:
                    yield Refused(label, refusal, place)
                    continue
                again = functools.partial(_zip_member, src, index, meter)
                yield Member(label, again, _zip_read(archive, info, src, meter), place)


def _zip_span(fh: IO[bytes], info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where a member's local header and data are; nothing when its header is not there."""
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL.size)
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
        return (0, 0)
    fields = _LOCAL.unpack(header)
    end = info.header_offset + _LOCAL.size + fields[-2] + fields[-1] + info.compress_size
    if info.flag_bits & _SIZES_AFTER:
        end += 16  # the data descriptor, as most writers make it
    return (info.header_offset, end)


def _zip_refusal(info: zipfile.ZipInfo, budget: DecodeBudget) -> Stop | None:
    if info.flag_bits & 0x1:
        return Stop(Outcome.UNREADABLE, "it is encrypted")
    if info.compress_type not in _ZIP_METHODS:
        return Stop(
            Outcome.UNREADABLE,
            f"it is compressed with zip method {info.compress_type}, which the guard does not decode",
        )
    if info.file_size > budget.max_layer_bytes:
        return _declared_too_big(info.file_size, budget)
    return None


def _zip_member(src: Source, index: int, meter: Meter) -> Iterator[bytes]:
    with src.file() as fh:
        if fh is None:
            return
        with _zip_archive(fh, meter.budget) as archive:
            yield from _zip_read(archive, archive.infolist()[index], src, meter)


def _zip_read(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, src: Source, meter: Meter
) -> Iterator[bytes]:
    try:
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # zipfile inflates a chunk at a time (and checks the CRC) for these two.
            with archive.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    meter.spend(len(chunk))
                    yield chunk
        elif info.compress_type == zipfile.ZIP_BZIP2:
            # ...but decompresses bzip2 and lzma members without a bound: 4 KiB of bzip2 can
            # be gigabytes. These are decoded here from the member's raw bytes.
            yield from bunzip2(_zip_raw(src, info, meter), meter)
        else:
            yield from _zip_lzma(_zip_raw(src, info, meter), meter)
    except (NotThisFormat, *_ZIP_ERRORS):
        raise Skip from None


def _zip_raw(src: Source, info: zipfile.ZipInfo, meter: Meter) -> Iterator[bytes]:
    """A member's bytes as stored (compressed), after its local header."""
    with src.file() as fh:
        if fh is None:
            raise NotThisFormat
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise NotThisFormat
        fields = _LOCAL.unpack(header)
        fh.seek(info.header_offset + _LOCAL.size + fields[-2] + fields[-1])
        left = info.compress_size
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise NotThisFormat
            left -= len(chunk)
            meter.tick()
            yield chunk


def _zip_lzma(raw: Iterator[bytes], meter: Meter) -> Iterator[bytes]:
    """A zip member compressed with method 14: a small header, then raw LZMA1."""
    source = (c for c in raw if c)
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[2:4], "little"):
        more = next(source, b"")
        if not more:
            raise NotThisFormat
        data += more
    end = 4 + int.from_bytes(data[2:4], "little")
    props = data[4:end]
    if len(props) != 5 or props[0] > 224:
        raise NotThisFormat
    pb, rest = divmod(props[0], 45)
    lp, lc = divmod(rest, 9)
    dictionary = int.from_bytes(props[1:5], "little")
    if dictionary > meter.budget.max_decoder_memory:
        raise Stop(
            Outcome.OVER_BUDGET,
            f"its decoder needs over {size_text(meter.budget.max_decoder_memory)} of memory "
            "(max_decoder_memory)",
        )
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dictionary, "lc": lc, "lp": lp, "pb": pb}
    decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1])
    # Without an end marker the stream ends with the member's stored bytes.
    yield from pump(decoder, data[end:], source, meter, to_end=False)


# ---------------------------------------------------------------- zip, by its local headers


_ENCRYPTED = 0x1  # general purpose flags
_SIZES_AFTER = 0x8  # sizes and CRC are in a data descriptor after the data
_UTF8 = 0x800


_ZIP64_EXTRA = 0x0001


_UNKNOWN = 0xFFFFFFFF  # a size given in the zip64 extra field instead


# Methods some zip writer uses: a local header with another is taken for chance bytes.
_ZIP_KNOWN_METHODS = frozenset(
    {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 18, 19, 20, 93, 95, 96, 97, 98, 99}
)


def zip_local_start(data: bytes) -> bool:
    """A zip local header that a zip writer could have made: a version to extract, a
    method and a name. A signature alone is four bytes that any large file holds somewhere."""
    if len(data) < _LOCAL.size or data[:4] != b"PK\x03\x04":
        return False
    fields = _LOCAL.unpack_from(data)
    return (fields[1] & 0xFF) <= 63 and fields[3] in _ZIP_KNOWN_METHODS and fields[9] > 0


@dataclass(frozen=True, slots=True)
class _Local:
    """A member's local header."""

    name: str
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    zip64: bool

    @property
    def streamed(self) -> bool:
        """Its data ends where its compressed stream does: its size comes after it."""
        return bool(self.flags & _SIZES_AFTER) and self.method in (
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_BZIP2,
        )


class _Cursor:
    """Chunks read as one stream of bytes, a few at a time, with bytes read too far given back."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._at = 0
        self.pos = 0

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buf = self._buf[self._at :] + chunk
                self._at = 0
                return True
        return False

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer at the end)."""
        while len(self._buf) - self._at < n and self._more():
            pass
        out = self._buf[self._at : self._at + n]
        self._at += len(out)
        self.pos += len(out)
        return out

    def pieces(self, n: int | None = None) -> Iterator[bytes]:
        """The next ``n`` bytes (all the rest when ``None``), a chunk at a time."""
        while n is None or n > 0:
            if self._at >= len(self._buf) and not self._more():
                return
            piece = self._buf[self._at : self._at + (CHUNK if n is None else min(n, CHUNK))]
            self._at += len(piece)
            self.pos += len(piece)
            if n is not None:
                n -= len(piece)
            yield piece

    def unread(self, data: bytes) -> None:
        """Give back ``data``, the last bytes read."""
        if data:
            self._buf = data + self._buf[self._at :]
            self._at = 0
            self.pos -= len(data)


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int] | None:
    """The sizes from a local header's zip64 extra field, or ``None`` when it has none."""
    at = 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, at)
        data = extra[at + 4 : at + 4 + size]
        at += 4 + size
        if kind != _ZIP64_EXTRA:
            continue
        if len(data) >= 16:  # a local header's zip64 field holds both sizes
            wide_usize, wide_csize = struct.unpack_from("<QQ", data)
            return (
                wide_usize if usize == _UNKNOWN else usize,
                wide_csize if csize == _UNKNOWN else csize,
            )
        values = [v for (v,) in struct.iter_unpack("<Q", data[: len(data) // 8 * 8])]
        if usize == _UNKNOWN and values:
            usize = values.pop(0)
        if csize == _UNKNOWN and values:
            csize = values.pop(0)
        return usize, csize
    return None


def _local_header(cursor: _Cursor) -> _Local | None:
    header = cursor.read(_LOCAL.size)
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
        return None
    _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(header)
    raw = cursor.read(name_len)
    extra = cursor.read(extra_len)
    if len(raw) < name_len or len(extra) < extra_len:
        return None
    sizes = _zip64_sizes(extra, usize, csize)
    if sizes is not None:
        usize, csize = sizes
    elif _UNKNOWN in (usize, csize) and not flags & _SIZES_AFTER:
        return None
    # As zipfile names members: cut at a NUL, UTF-8 when flagged so, else cp437.
    name = raw.split(b"\0", 1)[0].decode("utf-8" if flags & _UTF8 else "cp437", "replace")
    return _Local(name, flags, method, crc, csize, usize, sizes is not None)


def _local_refusal(local: _Local, budget: DecodeBudget) -> Stop | None:
    if local.flags & _ENCRYPTED:
        return Stop(Outcome.UNREADABLE, "it is encrypted")
    if local.method not in _ZIP_METHODS:
        return Stop(
            Outcome.UNREADABLE,
            f"it is compressed with zip method {local.method}, which the guard does not decode",
        )
    if local.flags & _SIZES_AFTER and not local.streamed and local.csize in (0, _UNKNOWN):
        return Stop(
            Outcome.UNREADABLE,
            "its size is given only after its data, and without the zip's central directory "
            "its end cannot be found",
        )
    if not local.flags & _SIZES_AFTER and local.usize > budget.max_layer_bytes:
        return _declared_too_big(local.usize, budget)
    return None


def _descriptor(cursor: _Cursor, local: _Local) -> int:
    """Read the data descriptor after a member's data; its CRC."""
    crc = cursor.read(4)
    if crc == b"PK\x07\x08":  # its signature, which most writers put there
        crc = cursor.read(4)
    wide = 16 if local.zip64 else 8
    if len(crc) < 4 or len(cursor.read(wide)) < wide:
        raise NotThisFormat
    return int.from_bytes(crc, "little")


def _local_decoded(cursor: _Cursor, local: _Local, meter: Meter) -> Iterator[bytes]:
    if local.streamed:
        decoder: Inflate | bz2.BZ2Decompressor = (
            Inflate(-zlib.MAX_WBITS)
            if local.method == zipfile.ZIP_DEFLATED
            else bz2.BZ2Decompressor()
        )
        cursor.unread((yield from pump(decoder, b"", cursor.pieces(), meter)))
        return
    raw = cursor.pieces(local.csize)
    if local.method == zipfile.ZIP_STORED:
        left = local.csize
        for piece in raw:
            left -= len(piece)
            meter.spend(len(piece))
            yield piece
        if left:
            raise NotThisFormat  # cut off
    elif local.method == zipfile.ZIP_DEFLATED:
        yield from pump(Inflate(-zlib.MAX_WBITS), b"", raw, meter)
    elif local.method == zipfile.ZIP_BZIP2:
        yield from bunzip2(raw, meter)
    else:
        yield from _zip_lzma(raw, meter)


def _local_data(
    cursor: _Cursor, local: _Local, meter: Meter, done: list[bool]
) -> Generator[bytes, None, None]:
    """A member's bytes, decoded from the stream at its data, and its CRC checked (after its
    data descriptor, when it has one). ``done`` is set once all of its data was read."""
    crc = 0
    try:
        for chunk in _local_decoded(cursor, local, meter):
            crc = zlib.crc32(chunk, crc)
            yield chunk
        expected = _descriptor(cursor, local) if local.flags & _SIZES_AFTER else local.crc
    except (NotThisFormat, lzma.LZMAError, *_ZIP_ERRORS):
        raise Skip from None
    done[0] = True
    if crc != expected:
        raise Skip


def zip_local_members(src: Source, meter: Meter, extent: Extent) -> Iterator[Member | Refused]:
    """A zip's members read through their local headers from the start of ``src``, one after
    another, as a stream; for a zip whose central directory cannot be used.

    Raises:
        NotThisFormat: ``src`` does not start with a local header.
        Stop: There are more members than ``max_members``.
    """
    budget = meter.budget
    cursor = _Cursor(src.open())
    count = 0
    while True:
        start = cursor.pos
        local = _local_header(cursor)
        if local is None:
            if not count:
                raise NotThisFormat
            return
        count += 1
        if count > budget.max_members:
            raise Stop(
                Outcome.OVER_BUDGET,
                f"the zip has over {budget.max_members} members (max_members); "
                "the rest were not inspected",
            )
        data_at = cursor.pos
        done = [False]
        refusal = _local_refusal(local, budget)
        if refusal is not None:
            yield Refused(f"zip member {local.name}", refusal)
        elif not local.name.endswith("/"):
            again = functools.partial(_zip_local_member, src, start, meter)
            data = _local_data(cursor, local, meter, done)
            yield Member(f"zip member {local.name}", again, data)
            data.close()
        if not done[0]:
            if local.streamed:  # its end is where its stream ends, which was not reached
                extent.add(start, cursor.pos)
                return
            for _ in cursor.pieces(max(data_at + local.csize - cursor.pos, 0)):
                meter.tick()
            if local.flags & _SIZES_AFTER:
                with contextlib.suppress(NotThisFormat):
                    _descriptor(cursor, local)
        extent.add(start, cursor.pos)


def _zip_local_member(src: Source, start: int, meter: Meter) -> Iterator[bytes]:
    cursor = _Cursor(at_offset(src, start, meter).open())
    local = _local_header(cursor)
    if local is not None:
        yield from _local_data(cursor, local, meter, [False])
