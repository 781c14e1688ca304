"""guard.decoding: layers are decoded as the standard tools decode them, within a budget that
holds whatever the bytes are, and what the budget stops is reported, never dropped."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import members, streams
from guard.decoding import DecodeBudget, Layer, Outcome, layers, zip_directory, zip_names
from guard.exceptions import ConfigError
from tests.bombs import GIB, MIB, many_entries_zip, tar_of, traced_peak


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz(members: dict[str, bytes]) -> bytes:
    return gzip.compress(tar_of(members), mtime=0)


def found(result: list[Layer], data: bytes) -> list[tuple[str, ...]]:
    return [layer.how for layer in result if layer.digest == sha(data)]


def stopped(result: list[Layer]) -> list[Layer]:
    return [layer for layer in result if layer.uninspected]


ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "gzip members": lambda d: gzip.compress(d[:7], mtime=0) + gzip.compress(d[7:], mtime=0),
    "bzip2": bz2.compress,
    "bzip2 streams": lambda d: bz2.compress(d[:5]) + bz2.compress(d[5:]),
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "base64": base64.b64encode,
    "base64 lines": base64.encodebytes,
    "tar": lambda d: tar_of({"w.bin": d}),
    "tar.gz": lambda d: tar_gz({"w.bin": d}),
    "zip": lambda d: zipped({"inner/w.bin": d}),
    "zip stored": lambda d: zipped({"w.bin": d}, zipfile.ZIP_STORED),
    "zip bzip2": lambda d: zipped({"w.bin": d}, zipfile.ZIP_BZIP2),
    "zip lzma": lambda d: zipped({"w.bin": d}, zipfile.ZIP_LZMA),
    "base64 of xz of zip": lambda d: base64.b64encode(lzma.compress(zipped({"w.bin": d}))),
}


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=1, max_size=5000), name=st.sampled_from(sorted(ENCODINGS)))
def test_every_encoding_decodes_to_the_original_at_any_chunk_boundary(
    data: bytes, name: str
) -> None:
    """Each format gives back the exact bytes, even fed 3 bytes at a time (chunk edges)."""
    encoded = ENCODINGS[name](data)
    with pytest.MonkeyPatch.context() as patch:
        for module in (streams, members):  # every reader and decoder reads in chunks of 3
            patch.setattr(module, "CHUNK", 3)
        result = list(layers(encoded))
    assert found(result, data), (name, result)
    assert not stopped(result)


def test_a_tiny_payload_at_the_depth_limit_is_looked_at_not_reported() -> None:
    """Two bytes that start like a zip, three layers down, are checked, not called too large."""
    encoded = ENCODINGS["base64 of xz of zip"](b"PK")
    result = list(layers(encoded, depth=3))
    assert found(result, b"PK")
    assert not stopped(result), result


def test_trailing_bytes_after_streams_are_ignored_as_the_tools_do() -> None:
    """Bytes after the last complete gzip, bzip2 or xz stream do not hide what came before."""
    data = os.urandom(3000)
    for encoded in (
        gzip.compress(data) + b"\0\0\0",  # zero padding, which gzip.decompress allows
        gzip.compress(data) + b"trailing garbage",  # what gunzip warns about and ignores
        bz2.compress(data) + b"BZh9 not a stream",
        lzma.compress(data) + b"\xfd7zXZ\0 not a stream",
    ):
        assert bz2.compress(data) not in encoded or bz2.decompress(encoded) == data
        assert found(list(layers(encoded)), data), encoded[-20:]


def test_corrupt_streams_are_not_this_format() -> None:
    """A stream cut short or damaged is reported as not this format, and nothing is decoded."""
    data = os.urandom(3000)
    packed = gzip.compress(data)
    for damaged in (packed[:-20], packed[:100] + b"\xff" * 50 + packed[150:]):
        result = list(layers(damaged))
        assert [layer.outcome for layer in result if layer.how == ("gzip",)] == [
            Outcome.NOT_THIS_FORMAT
        ]
        assert not [layer for layer in result if layer.outcome is not Outcome.NOT_THIS_FORMAT]


def test_base64_rules_match_b64decode_with_validate() -> None:
    """Base64 decodes where ``b64decode(validate=True)`` does, and is rejected where it is not."""
    assert found(list(layers(b"QUJD\nREVG\n")), b"ABCDEF")
    assert found(list(layers(b"QQ==")), b"A")
    for bad in (b"QQ=", b"QQ==QQ==", b"Q===", b"QUJD!"):
        assert not [layer for layer in layers(bad) if layer.outcome is Outcome.DECODED], bad


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_bzip2_and_lzma_members_stream_in_bounded_memory(method: int) -> None:
    """zipfile decodes these methods whole, whatever size; here a 96 MiB member streams."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=method) as archive,
        archive.open("w.bin", "w") as member,
    ):
        for _ in range(96):
            member.write(bytes(MIB))
    whole = hashlib.sha256()
    for _ in range(96):
        whole.update(bytes(MIB))
    packed = buffer.getvalue()
    with traced_peak() as peak:
        result = list(layers(packed))
    assert [layer.how for layer in result if layer.digest == whole.hexdigest()] == [
        ("zip member w.bin",)
    ]
    assert peak[0] < 48 * MIB, peak


def test_a_layer_too_large_to_hold_is_streamed_again() -> None:
    """A tar inside a gzip larger than max_held_bytes is read by decoding the gzip again."""
    data = os.urandom(100_000)
    result = list(layers(tar_gz({"w.bin": data}), DecodeBudget(max_held_bytes=1024)))
    assert found(result, data) == [("gzip", "tar member w.bin")]
    assert not stopped(result)


def test_a_zip_too_large_to_hold_is_reported() -> None:
    """A zip inside a gzip, larger than max_held_bytes, cannot stream: it is reported."""
    inner = zipped({"w.bin": os.urandom(100_000)}, zipfile.ZIP_STORED)
    result = stopped(list(layers(gzip.compress(inner), DecodeBudget(max_held_bytes=1024))))
    assert [(layer.how, layer.outcome) for layer in result] == [
        (("gzip", "zip"), Outcome.OVER_BUDGET)
    ]
    assert "max_held_bytes" in result[0].reason


def test_depth_is_followed_and_one_layer_more_is_reported() -> None:
    """Four layers are decoded; a fifth that is really there is reported, not ignored."""
    data = os.urandom(2000)
    four = base64.b64encode(gzip.compress(base64.b64encode(gzip.compress(data))))
    assert DecodeBudget().max_depth == 4
    assert found(list(layers(four)), data) == [("base64", "gzip", "base64", "gzip")]
    result = list(layers(bz2.compress(four)))
    assert not found(result, data)
    assert [(layer.how, layer.outcome) for layer in stopped(result)] == [
        (("bzip2", "base64", "gzip", "base64", "gzip"), Outcome.OVER_BUDGET)
    ]
    assert "max_depth" in stopped(result)[0].reason
    # What merely looks like one more layer (a lone "=" could start base64) is not reported.
    assert not stopped(list(layers(base64.b64encode(lzma.compress(bz2.compress(b"="))), depth=3)))


def test_tar_right_inside_a_compressed_stream_costs_no_depth() -> None:
    """A .tar.gz at the last layer still yields its members, as tarfile's r:* did."""
    data = os.urandom(2000)
    encoded = base64.b64encode(base64.b64encode(tar_gz({"w.bin": data})))
    assert found(list(layers(encoded, depth=3)), data) == [
        ("base64", "base64", "gzip", "tar member w.bin")
    ]


def test_archive_member_limits() -> None:
    """Archives with more members than max_members are reported; a tar's first ones count."""
    members = {f"m{i}": os.urandom(100) for i in range(5)}
    budget = DecodeBudget(max_members=3)
    result = list(layers(tar_of(members), budget))
    assert [layer.how[-1] for layer in result if layer.outcome is Outcome.DECODED] == [
        "tar member m0",
        "tar member m1",
        "tar member m2",
    ]
    assert [layer.how for layer in stopped(result)] == [("tar",)]
    result = stopped(list(layers(zipped(members), budget)))
    assert [layer.how for layer in result] == [("zip",)] and "max_members" in result[0].reason


def test_huge_zip_directory_is_refused_before_parsing() -> None:
    """A zip listing 200,000 entries is reported without zipfile building 200,000 objects."""
    archive = many_entries_zip(200_000)
    with traced_peak() as peak:
        result = stopped(list(layers(archive)))
    assert [layer.how for layer in result] == [("zip",)]
    assert peak[0] < 16 * MIB, peak


def test_zip_directory_and_names_read_what_zipfile_reads() -> None:
    """The central directory is found where zipfile finds it, zip64 and prepended data too."""
    buffer = io.BytesIO(b"#!/bin/sh\nprefix\n")
    buffer.seek(0, os.SEEK_END)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("a/data.pkl", b"x")
        with archive.open("b.npy", "w", force_zip64=True) as member:
            member.write(b"y")
        archive.comment = b"a comment"
    directory = zip_directory(buffer)
    assert directory is not None and directory.entries == 2
    assert list(zip_names(buffer, directory, 1 << 20)) == [b"a/data.pkl", b"b.npy"]
    assert list(zip_names(buffer, directory, 60)) == [b"a/data.pkl"]
    assert zip_directory(io.BytesIO(b"PK\x03\x04 no end record")) is None


def test_long_tar_headers_are_bounded() -> None:
    """A tar whose long-name header claims megabytes is reported, not read into memory."""
    info = tarfile.TarInfo("n" * (2 * MIB))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b""))
    result = stopped(list(layers(buffer.getvalue())))
    assert [layer.how for layer in result] == [("tar",)] and "tar headers" in result[0].reason


def test_unreadable_zip_members_are_reported() -> None:
    """An encrypted member or one compressed with a method Python lacks is reported."""
    plain = zipped({"w.bin": b"x" * 100}, zipfile.ZIP_STORED)
    encrypted = bytearray(plain)
    for at in (6, plain.index(b"PK\x01\x02") + 8):  # general purpose flags: bit 0, encrypted
        encrypted[at] |= 1
    exotic = bytearray(plain)
    for at in (8, plain.index(b"PK\x01\x02") + 10):  # compression method 99 (AES)
        exotic[at] = 99
    for archive, why in ((encrypted, "encrypted"), (exotic, "zip method 99")):
        result = stopped(list(layers(bytes(archive))))
        assert [(layer.how, layer.outcome) for layer in result] == [
            (("zip member w.bin",), Outcome.UNREADABLE)
        ]
        assert why in result[0].reason


def test_whole_budget_limits_stop_everything() -> None:
    """Running out of time or of total bytes ends the walk with one over-budget layer."""
    encoded = gzip.compress(os.urandom(3 * MIB))
    for budget, why in (
        (DecodeBudget(max_seconds=1e-9), "max_seconds"),
        (DecodeBudget(max_total_bytes=MIB), "max_total_bytes"),
    ):
        result = list(layers(encoded, budget))
        assert [(layer.how, layer.outcome) for layer in result] == [
            (("gzip",), Outcome.OVER_BUDGET)
        ]
        assert why in result[0].reason


def test_xz_dictionary_over_the_memory_limit_is_reported() -> None:
    """An xz file whose dictionary needs more than max_decoder_memory is not decoded."""
    encoded = lzma.compress(b"x" * 1000, preset=9)  # a 64 MiB dictionary
    result = stopped(list(layers(encoded, DecodeBudget(max_decoder_memory=16 * MIB))))
    assert [(layer.how, layer.outcome) for layer in result] == [(("xz",), Outcome.OVER_BUDGET)]
    assert "max_decoder_memory" in result[0].reason
    assert found(list(layers(encoded)), b"x" * 1000)


def test_files_and_concatenations_are_read_from_disk(tmp_path: Path) -> None:
    """A path is decoded from disk, a list of paths as one stream; a FIFO is unreadable."""
    data = os.urandom(5000)
    packed = gzip.compress(data)
    (tmp_path / "w.gz").write_bytes(packed)
    (tmp_path / "a").write_bytes(packed[:1000])
    (tmp_path / "b").write_bytes(packed[1000:])
    assert found(list(layers(tmp_path / "w.gz")), data) == [("gzip",)]
    split = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert found(list(layers(split)), data) == [("gzip",)]
    assert found(list(layers(split, DecodeBudget(max_held_bytes=100))), data) == [("gzip",)]
    assert list(layers(tmp_path / "missing")) == []
    os.mkfifo(tmp_path / "fifo")
    assert [layer.outcome for layer in layers(tmp_path / "fifo")] == [Outcome.UNREADABLE]


@pytest.mark.parametrize(
    "field", ["max_depth", "max_layer_bytes", "max_held_bytes", "max_members", "max_seconds"]
)
@pytest.mark.parametrize("value", [0, -1, True])
def test_budget_rejects_non_positive_values(field: str, value: int) -> None:
    """Every budget limit must be a positive number (a boolean is not one)."""
    with pytest.raises(ConfigError, match=field):
        DecodeBudget(**{field: value})


def test_defaults_fit_the_gibibyte_bombs() -> None:
    """The bombs in these tests are over every default per-layer limit (so they test it)."""
    assert DecodeBudget().max_layer_bytes < GIB
