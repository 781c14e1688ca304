"""Recognising model-weight files by their content, whatever they are called.

An agent can rename ``model.safetensors`` to ``notes.txt``, so the guard never trusts a
file name: it reads a small, bounded prefix of the file and looks for the structure each
weight format starts with. :func:`sniff_bytes` is the pure core (leading bytes plus total
size); :func:`sniff` opens a path, reads what the core needs and never raises.

What counts as each format:

* **safetensors**: an 8-byte little-endian header length ``N`` (``2 <= N <= size - 8``,
  under 100 MB), then ``{``. When the whole header was read, it must parse as a JSON object
  whose values are tensor entries (``dtype``, ``shape``, ``data_offsets``) or the
  ``__metadata__`` map; trailing space padding is allowed. When only part of it was read
  (headers over :data:`SAFETENSORS_HEADER_CAP`), that part must be valid UTF-8 without
  control characters and continue with a quoted key.
* **GGUF**: ``GGUF`` then a uint32 version 1..10, in either byte order.
* **PyTorch zip** (``torch.save`` since 1.6, TorchScript): a zip with a ``data.pkl`` member.
  :func:`sniff` reads the member names from the central directory (at most
  :data:`ZIP_DIRECTORY_CAP` of it); from bytes alone only a first member named
  ``.../data.pkl`` or ``.../data/<n>`` decides, as it does for a zip without a directory.
* **npz**: a zip whose members all end in ``.npy`` (decided by :func:`sniff` only). A
  directory longer than the cap counts as npz when every name read so far ends in ``.npy``.
* **pickle** (legacy ``torch.save``, joblib, scikit-learn): a ``PROTO`` opcode with protocol
  2..5, or the legacy torch magic number as the first opcode.
* **npy**: ``\\x93NUMPY`` then major version 1..3.
* **HDF5** (Keras ``.h5``): the HDF5 signature at offset 0, 512, 1024 or 2048.
* **ONNX**, with less certainty because protobuf has no magic number: field 1
  (``ir_version``, a varint 1..20) followed by another ``ModelProto`` field tag, *and* either a
  ``.onnx`` name or a producer marker (``onnx``, ``pytorch``) in the bytes read.

Everything else (text, JSON, CSV, YAML, gzip, tar, zips of other files, random bytes) is
``None``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import stat
import struct
from enum import StrEnum
from typing import IO, Any

from guard.members import zip_directory, zip_names


class WeightFormat(StrEnum):
    """A serialisation format that model weights are stored in."""

    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    PYTORCH_ZIP = "pytorch-zip"
    NUMPY_ZIP = "npz"
    PICKLE = "pickle"
    NUMPY = "npy"
    HDF5 = "hdf5"
    ONNX = "onnx"


HEADER_BYTES = 64
"""Leading bytes :func:`sniff_bytes` needs for every format at offset 0.

More helps: HDF5 behind a user block, long safetensors headers and zips named by their
central directory need more, which :func:`sniff` reads itself.
"""

SAFETENSORS_HEADER_CAP = 1 << 20
"""The most of a safetensors JSON header :func:`sniff` reads to validate it."""

ZIP_DIRECTORY_CAP = 4 << 20
"""The most of a zip's central directory :func:`sniff` reads for member names.

Enough for some 50,000 members (``torch.save`` writes one per tensor storage). The names are
read one by one from the raw bytes: :mod:`zipfile` would make an object for every entry, so a
directory of a million tiny entries would cost hundreds of megabytes.
"""

GGUF_HEADER_BYTES = 24
"""GGUF's fixed leading fields: magic, version, tensor count and metadata count (16 bytes in
version 1, whose counts are 32-bit). The metadata and tensor descriptions after them are not
parsed, so :func:`header_size` stops here."""

_SAFETENSORS_MAX_HEADER = 100_000_000  # the limit the reference implementation enforces
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # a user block shifts the superblock to a power of two
# One read covers every fixed-offset check: a 2 KiB read costs the same page as 64 bytes.
_PROBE_BYTES = _HDF5_OFFSETS[-1] + len(_HDF5_SIGNATURE)
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
# Legacy torch.save pickles the magic number 0x1950a86a20f9469cfc6c first, as LONG1.
_TORCH_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
# ModelProto fields that may follow ir_version: producer_name (2), producer_version (3),
# domain (4), model_version (5, varint), doc_string (6), graph (7), opset_import (8).
_ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42})
_ONNX_MARKERS = (b"onnx", b"pytorch")  # also matches tf2onnx, skl2onnx, keras2onnx
_TORCH_HEAD_MEMBER = re.compile(rb"(?:^|/)(?:data\.pkl|data/\d+)\Z")
_JSON_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # never raw inside JSON text


def sniff_bytes(head: bytes, size: int, name: str = "") -> WeightFormat | None:
    """Tell the weight format from a file's leading bytes.

    Args:
        head: The file's first bytes; at least :data:`HEADER_BYTES` of them when the file
            is that long. Longer heads let more checks decide.
        size: The file's total size in bytes.
        name: The file's name, used only to firm up the weak ONNX evidence.

    Returns:
        The format, or ``None`` when the bytes are not recognisably weights.
    """
    # safetensors first: its length prefix can begin with bytes that look like a pickle.
    if _is_safetensors(head, size):
        return WeightFormat.SAFETENSORS
    if head.startswith(b"GGUF") and len(head) >= 8:
        little, big = struct.unpack_from("<I", head, 4)[0], struct.unpack_from(">I", head, 4)[0]
        if 1 <= little <= 10 or 1 <= big <= 10:
            return WeightFormat.GGUF
    if head.startswith(b"\x93NUMPY") and len(head) >= 7 and 1 <= head[6] <= 3:
        return WeightFormat.NUMPY
    if head.startswith(_ZIP_LOCAL_HEADER):
        return _zip_from_head(head)
    if (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith(
        _TORCH_LEGACY_MAGIC
    ):
        return WeightFormat.PICKLE
    if any(head[at : at + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE for at in _HDF5_OFFSETS):
        return WeightFormat.HDF5
    if _is_onnx(head, name):
        return WeightFormat.ONNX
    return None


def sniff(path: str | os.PathLike[str]) -> WeightFormat | None:
    """Tell the weight format of the file at ``path`` from its content.

    Reads a bounded amount: one read of a few KiB, plus the safetensors header (up to
    :data:`SAFETENSORS_HEADER_CAP`) or a zip's central directory (up to
    :data:`ZIP_DIRECTORY_CAP`) when those formats need it.

    Returns:
        The format, or ``None`` for anything that is not recognisably weights, including
        folders, missing or unreadable paths and non-regular files (FIFOs, devices), which
        are never opened.
    """
    try:
        # Check before opening: opening a FIFO blocks and opening a device can have effects.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        # O_NONBLOCK in case the path was swapped for a FIFO after the stat above.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None
    try:
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            return _sniff_open(file, info.st_size, os.path.basename(os.fspath(path)))
    except (OSError, ValueError):
        return None


def header_size(path: str | os.PathLike[str]) -> int:
    """How many leading bytes of the file at ``path`` are a weights header, not tensor data.

    A bounded read of at most these bytes (``head -c``, ``dd count=``) shows the file's
    metadata and copies none of its weights.

    Returns:
        For safetensors, the 8-byte length plus the JSON header it announces; for GGUF, its
        fixed leading fields (:data:`GGUF_HEADER_BYTES`); 0 for any other file (whose header,
        if it has one, the guard does not measure), folders and unreadable paths.
    """
    fmt = sniff(path)
    if fmt is not WeightFormat.SAFETENSORS and fmt is not WeightFormat.GGUF:
        return 0
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return 0
            head = file.read(9)
            size = os.fstat(file.fileno()).st_size
    except (OSError, ValueError):
        return 0
    if fmt is WeightFormat.SAFETENSORS:
        length = _safetensors_header_len(head, size)
        return 0 if length is None else 8 + length
    version = struct.unpack_from("<I", head, 4)[0] if len(head) >= 8 else 0
    return 16 if version == 1 or version == 1 << 24 else GGUF_HEADER_BYTES


def _sniff_open(file: IO[bytes], size: int, name: str) -> WeightFormat | None:
    head = file.read(_PROBE_BYTES)
    header_len = _safetensors_header_len(head, size)
    if header_len is not None and len(head) < 8 + header_len:
        head += file.read(min(8 + header_len, SAFETENSORS_HEADER_CAP) - len(head))
    if head.startswith(_ZIP_LOCAL_HEADER):
        return _zip_from_directory(file, head)
    return sniff_bytes(head, size, name)


def _safetensors_header_len(head: bytes, size: int) -> int | None:
    if len(head) < 9 or head[8] != ord("{"):
        return None
    length = int.from_bytes(head[:8], "little")
    if 2 <= length <= size - 8 and length < _SAFETENSORS_MAX_HEADER:
        return length
    return None


def _is_safetensors(head: bytes, size: int) -> bool:
    length = _safetensors_header_len(head, size)
    if length is None:
        return False
    raw = head[8 : 8 + length]
    if len(raw) < length:
        return _plausible_json_object_start(raw)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: deeply nested hostile JSON
        return False
    return isinstance(header, dict) and all(_is_tensor_entry(k, v) for k, v in header.items())


def _is_tensor_entry(key: str, value: Any) -> bool:
    if key == "__metadata__":
        return isinstance(value, dict)
    return (
        isinstance(value, dict)
        and isinstance(value.get("dtype"), str)
        and isinstance(value.get("shape"), list)
        and isinstance(value.get("data_offsets"), list)
        and len(value["data_offsets"]) == 2
    )


def _plausible_json_object_start(raw: bytes) -> bool:
    # The cut may fall inside a multi-byte character, so decode without finishing.
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return False
    rest = text[1:].lstrip(" \t\r\n")
    return (not rest or rest.startswith('"')) and _JSON_CONTROL.search(text) is None


def _zip_from_head(head: bytes) -> WeightFormat | None:
    # Only the first local header is visible: torch writes data.pkl (or data/<n>) first.
    if len(head) < 30:
        return None
    name_len = struct.unpack_from("<H", head, 26)[0]
    member = head[30 : 30 + name_len]
    if len(member) == name_len and _TORCH_HEAD_MEMBER.search(member):
        return WeightFormat.PYTORCH_ZIP
    return None


def _zip_from_directory(file: IO[bytes], head: bytes) -> WeightFormat | None:
    count = 0
    all_npy = True
    try:
        directory = zip_directory(file)
        if directory is None:  # a cut-off copy has no directory
            return _zip_from_head(head)
        for name in zip_names(file, directory, ZIP_DIRECTORY_CAP):
            if name == b"data.pkl" or name.endswith(b"/data.pkl"):
                return WeightFormat.PYTORCH_ZIP
            count += 1
            all_npy = all_npy and name.endswith(b".npy")
    except (OSError, ValueError, struct.error):  # a hostile or damaged directory
        return _zip_from_head(head)
    if count and all_npy:
        return WeightFormat.NUMPY_ZIP
    if directory.size > ZIP_DIRECTORY_CAP:  # not all read: the first member still decides
        return _zip_from_head(head)
    return None


def _is_onnx(head: bytes, name: str) -> bool:
    # ir_version < 128 is a one-byte varint, so the next field tag sits at offset 2.
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 20:
        return False
    if head[2] not in _ONNX_NEXT_TAGS:
        return False
    lowered = head.lower()
    return name.lower().endswith(".onnx") or any(m in lowered for m in _ONNX_MARKERS)
