"""Tests for guard.formats: weight files are recognised by content, not by name."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import random
import struct
import tarfile
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.formats import HEADER_BYTES, WeightFormat, sniff, sniff_bytes
from tests.bombs import MIB, many_entries_zip, traced_peak

# ---------------------------------------------------------------- builders of real files


def safetensors_bytes(header: Mapping[str, object], data: bytes, pad: int = 0) -> bytes:
    """A safetensors file: u64 header length, JSON header (space-padded), tensor bytes."""
    raw = json.dumps(header).encode() + b" " * pad
    return struct.pack("<Q", len(raw)) + raw + data


def safetensors_small() -> bytes:
    """One 2x2 float32 tensor."""
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    return safetensors_bytes(header, bytes(16))


def gguf_v3() -> bytes:
    """A minimal GGUF v3 file: magic, version, tensor count, one string metadata pair."""
    key, value = b"general.architecture", b"llama"
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)  # type 8 is string
    kv += struct.pack("<Q", len(value)) + value
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members`` in the given order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return buffer.getvalue()


def torch_zip(prefix: str = "archive") -> bytes:
    """A zip laid out like ``torch.save`` writes it: data.pkl first, then version and data."""
    return zip_bytes(
        {
            f"{prefix}/data.pkl": pickle.dumps({"w": 1}, protocol=2),
            f"{prefix}/version": b"3\n",
            f"{prefix}/data/0": bytes(16),
        }
    )


def npy_bytes() -> bytes:
    """An .npy v1.0 file holding a 2x2 float32 array, preamble padded to 128 bytes."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
    header += b" " * (128 - 10 - len(header) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)


def npz_bytes() -> bytes:
    """An .npz file: a zip of .npy members, as numpy.savez writes it."""
    return zip_bytes({"arr_0.npy": npy_bytes(), "arr_1.npy": npy_bytes()})


def pickle_bytes() -> bytes:
    """A protocol-4 pickle of a dict, as joblib or a legacy checkpoint would be."""
    return pickle.dumps({"weights": [0.5, 1.5], "step": 7}, protocol=4)


def torch_legacy_bytes() -> bytes:
    """A protocol-1 pickle stream that starts with the legacy torch magic number (LONG1)."""
    return b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."


def hdf5_bytes(offset: int = 0) -> bytes:
    """The HDF5 signature after an ``offset``-byte user block, then superblock padding."""
    return b"U" * offset + b"\x89HDF\r\n\x1a\n" + bytes(96)


def proto_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (payloads here are shorter than 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def onnx_bytes(producer: bytes = b"pytorch") -> bytes:
    """A tiny ModelProto: ir_version 8, producer, a graph and an opset import."""
    graph = proto_field(2, b"main_graph")
    opset = proto_field(1, b"") + b"\x10\x11"  # domain "", version 17
    return (
        b"\x08\x08"
        + proto_field(2, producer)
        + proto_field(3, b"2.1.0")
        + proto_field(7, graph)
        + proto_field(8, opset)
    )


POSITIVES: dict[str, tuple[Callable[[], bytes], WeightFormat]] = {
    "safetensors": (safetensors_small, WeightFormat.SAFETENSORS),
    "gguf": (gguf_v3, WeightFormat.GGUF),
    "torch-zip": (torch_zip, WeightFormat.PYTORCH_ZIP),
    "npz": (npz_bytes, WeightFormat.NUMPY_ZIP),
    "pickle": (pickle_bytes, WeightFormat.PICKLE),
    "torch-legacy": (torch_legacy_bytes, WeightFormat.PICKLE),
    "npy": (npy_bytes, WeightFormat.NUMPY),
    "hdf5": (hdf5_bytes, WeightFormat.HDF5),
    "onnx": (onnx_bytes, WeightFormat.ONNX),
}

# Formats whose evidence sits in the first HEADER_BYTES (zips need the central directory).
HEAD_DECIDABLE = [k for k in POSITIVES if k not in {"npz"}]


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    """Write ``content`` to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    path.write_bytes(content)
    return path


# ---------------------------------------------------------------- positives


@pytest.mark.parametrize("kind", list(POSITIVES))
def test_weights_recognised_under_misleading_name(tmp_path: Path, kind: str) -> None:
    """Each format is recognised from content when the file is renamed to notes.txt."""
    build, expected = POSITIVES[kind]
    assert sniff(write(tmp_path, "notes.txt", build())) == expected


@pytest.mark.parametrize("kind", HEAD_DECIDABLE)
def test_sniff_bytes_decides_from_header_bytes(kind: str) -> None:
    """sniff_bytes recognises each non-npz format from just HEADER_BYTES leading bytes."""
    build, expected = POSITIVES[kind]
    content = build()
    assert sniff_bytes(content[:HEADER_BYTES], len(content), "notes.txt") == expected


def test_sniff_accepts_pathlike_and_str(tmp_path: Path) -> None:
    """sniff takes both str and os.PathLike paths."""
    path = write(tmp_path, "x", gguf_v3())
    assert sniff(str(path)) == sniff(path) == WeightFormat.GGUF


def test_weight_format_values_are_stable() -> None:
    """The string values of WeightFormat are the ones policies and audit logs use."""
    assert [f.value for f in WeightFormat] == [
        "safetensors",
        "gguf",
        "pytorch-zip",
        "npz",
        "pickle",
        "npy",
        "hdf5",
        "onnx",
    ]


def test_safetensors_space_padded_header_and_metadata(tmp_path: Path) -> None:
    """A safetensors header with __metadata__ and trailing space padding is recognised."""
    header: dict[str, object] = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]},
    }
    path = write(tmp_path, "a.bin", safetensors_bytes(header, bytes(8), pad=7))
    assert sniff(path) == WeightFormat.SAFETENSORS


def test_safetensors_header_longer_than_probe_is_read_and_validated(tmp_path: Path) -> None:
    """sniff reads a multi-KiB safetensors header past its first read to validate it."""
    header: dict[str, object] = {
        f"model.layers.{i}.self_attn.q_proj.weight": {
            "dtype": "F16",
            "shape": [1],
            "data_offsets": [2 * i, 2 * i + 2],
        }
        for i in range(200)
    }
    content = safetensors_bytes(header, bytes(400))
    assert len(content) > 8192
    assert sniff(write(tmp_path, "shard", content)) == WeightFormat.SAFETENSORS
    broken = content[:8] + content[8:-400].replace(b'"dtype"', b'"dtypo"') + bytes(400)
    assert sniff(write(tmp_path, "broken", broken)) is None


def test_safetensors_truncated_header_judged_on_its_start() -> None:
    """With only part of a header in hand, a JSON-object start is accepted, garbage is not."""
    content = safetensors_small()
    size = len(content) + 10_000
    long_prefix = struct.pack("<Q", 5_000) + b'{"model.embed_tokens.weight": {"dtype": "'
    assert sniff_bytes(long_prefix, size) == WeightFormat.SAFETENSORS
    garbage = struct.pack("<Q", 5_000) + b"{\x00\x01\xff garbage"
    assert sniff_bytes(garbage, size) is None


def test_safetensors_prefix_with_garbage_json_is_not_weights(tmp_path: Path) -> None:
    """A valid-looking length prefix followed by a non-JSON or wrong-shaped header is None."""
    for i, body in enumerate([b"{not json at all}", b'{"w": [1, 2, 3]}', b'{"w": {"x": 1}}']):
        assert sniff(write(tmp_path, f"g{i}", struct.pack("<Q", len(body)) + body)) is None


def test_safetensors_length_beyond_file_is_rejected(tmp_path: Path) -> None:
    """A header length larger than the file cannot be safetensors."""
    body = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    assert sniff(write(tmp_path, "s", struct.pack("<Q", len(body) + 1000) + body)) is None


def test_safetensors_deeply_nested_header_does_not_raise(tmp_path: Path) -> None:
    """A header nested deeply enough to exhaust the JSON parser's recursion returns None."""
    body = b'{"w": ' + b"[" * 200_000 + b"}"
    assert sniff(write(tmp_path, "deep", struct.pack("<Q", len(body)) + body)) is None


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_pickle_protocols_recognised(tmp_path: Path, version: int) -> None:
    """Pickles of protocol 2 to 5 are recognised."""
    content = pickle.dumps({"a": 1}, protocol=version)
    assert sniff(write(tmp_path, "p", content)) == WeightFormat.PICKLE


def test_gguf_needs_plausible_version() -> None:
    """GGUF magic with a nonsense version is not GGUF; a big-endian version 3 is."""
    assert sniff_bytes(b"GGUF" + struct.pack("<I", 999) + bytes(16), 24) is None
    assert sniff_bytes(b"GGUF" + struct.pack(">I", 3) + bytes(16), 24) == WeightFormat.GGUF


@pytest.mark.parametrize("offset", [512, 1024, 2048])
def test_hdf5_behind_user_block(tmp_path: Path, offset: int) -> None:
    """The HDF5 signature after a 512/1024/2048-byte user block is found by sniff."""
    assert sniff(write(tmp_path, "k", hdf5_bytes(offset))) == WeightFormat.HDF5


def test_onnx_needs_name_or_producer_marker(tmp_path: Path) -> None:
    """ONNX-shaped protobuf without a producer marker counts only under a .onnx name."""
    content = onnx_bytes(producer=b"acme")
    assert sniff(write(tmp_path, "model.bin", content)) is None
    assert sniff(write(tmp_path, "model.ONNX", content)) == WeightFormat.ONNX
    assert sniff_bytes(content, len(content), "x.onnx") == WeightFormat.ONNX


def test_torch_zip_with_long_archive_name_uses_central_directory(tmp_path: Path) -> None:
    """A torch zip whose first member name is past the head is found via the directory."""
    content = torch_zip(prefix="resnet18-f37072fd" * 8)
    assert sniff_bytes(content[:HEADER_BYTES], len(content)) is None
    assert sniff(write(tmp_path, "r", content)) == WeightFormat.PYTORCH_ZIP


def test_truncated_torch_zip_falls_back_to_first_member(tmp_path: Path) -> None:
    """A cut-off torch zip (no central directory) is still recognised by its first member."""
    content = torch_zip()[:200]
    assert sniff(write(tmp_path, "partial", content)) == WeightFormat.PYTORCH_ZIP


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"a.txt", None),
        (b"arr.npy", WeightFormat.NUMPY_ZIP),  # every name read says npz: fail closed
        (b"archive/data.pkl", WeightFormat.PYTORCH_ZIP),
    ],
)
def test_huge_zip_directory_is_read_only_up_to_the_cap(
    tmp_path: Path, name: bytes, expected: WeightFormat | None
) -> None:
    """A zip listing 300,000 members is judged from the first 4 MiB of its directory, in
    bounded memory: zipfile would make 300,000 objects (over 100 MiB) to list them."""
    path = write(tmp_path, "many.zip", many_entries_zip(300_000, name))
    with traced_peak() as peak:
        assert sniff(path) == expected
    assert peak[0] < 16 * MIB, peak


def test_symlink_to_weights_is_followed(tmp_path: Path) -> None:
    """A symlink is judged by the file it points to; a dangling one is None."""
    target = write(tmp_path, "model", gguf_v3())
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert sniff(tmp_path / "link") == WeightFormat.GGUF
    assert sniff(tmp_path / "dangling") is None


# ---------------------------------------------------------------- negatives


def tar_bytes() -> bytes:
    """A tar archive of one text file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"hello world\n" * 10
        info = tarfile.TarInfo("notes/readme.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


NEGATIVES: dict[str, bytes] = {
    "empty": b"",
    "text": b"The quick brown fox jumps over the lazy dog.\n" * 20,
    "json": json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode(),
    "yaml": b"model:\n  name: llama\n  layers: 32\nweights: model.safetensors\n",
    "csv": b"epoch,loss,accuracy\n1,0.53,0.81\n2,0.41,0.86\n",
    "random": random.Random(20240607).randbytes(4096),
    "gzip": gzip.compress(b"not weights\n" * 100, mtime=0),
    "tar": tar_bytes(),
    "plain-zip": zip_bytes({"notes/readme.txt": b"hi", "data.csv": b"a,b\n1,2\n"}),
    "mixed-zip": zip_bytes({"arr_0.npy": npy_bytes(), "readme.txt": b"hi"}),
    "empty-zip": zip_bytes({}),
    "lookalike-zip": zip_bytes({"backup/metadata.pkl.txt": b"x", "mydata.pkl": b"y"}),
    "short-pickle-byte": b"\x80",
}


@pytest.mark.parametrize("kind", list(NEGATIVES))
def test_ordinary_files_are_not_weights(tmp_path: Path, kind: str) -> None:
    """Text, JSON, YAML, CSV, random bytes, gzip, tar and non-model zips are not weights."""
    content = NEGATIVES[kind]
    assert sniff(write(tmp_path, "model.safetensors", content)) is None
    assert sniff_bytes(content[:HEADER_BYTES], len(content), "model.onnx") is None


def test_folder_and_missing_path_are_none(tmp_path: Path) -> None:
    """A folder and a path that does not exist both return None."""
    assert sniff(tmp_path) is None
    assert sniff(tmp_path / "missing.safetensors") is None
    assert sniff("bad\0path") is None


def test_fifo_returns_none_without_blocking(tmp_path: Path) -> None:
    """A FIFO is not opened (opening it would block with no writer) and returns None."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    results: list[WeightFormat | None] = []
    worker = threading.Thread(target=lambda: results.append(sniff(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert results == [None]


def test_unreadable_file_returns_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the process may not open returns None instead of raising."""
    path = write(tmp_path, "locked", gguf_v3())

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    assert sniff(path) is None


# ---------------------------------------------------------------- property

PREFIXES = [
    b"",
    b"GGUF",
    b"\x93NUMPY",
    b"PK\x03\x04",
    b"\x80\x04",
    b"\x08\x07\x12",
    b"\x89HDF\r\n\x1a\n",
    struct.pack("<Q", 20) + b"{",
]


@settings(deadline=None, max_examples=200)
@given(
    prefix=st.sampled_from(PREFIXES),
    rest=st.binary(max_size=3000),
    size=st.integers(min_value=-10, max_value=2**64),
    name=st.text(max_size=20),
)
def test_sniff_bytes_never_raises(prefix: bytes, rest: bytes, size: int, name: str) -> None:
    """sniff_bytes returns a WeightFormat or None for any bytes, size and name."""
    result = sniff_bytes(prefix + rest, size, name)
    assert result is None or isinstance(result, WeightFormat)
