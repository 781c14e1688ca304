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
import struct
import tarfile
import time
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


def test_a_zip_too_large_to_hold_is_read_through_its_local_headers() -> None:
    """A zip inside a gzip, larger than max_held_bytes, is read as a stream, member by member."""
    data = os.urandom(100_000)
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        inner = zipped({"a.txt": b"a", "w.bin": data, "z.txt": b"z"}, method)
        result = list(layers(gzip.compress(inner), DecodeBudget(max_held_bytes=1024)))
        assert found(result, data) == [("gzip", "zip member w.bin")], method
        assert found(result, b"z") == [("gzip", "zip member z.txt")], method
        assert not stopped(result), method


def test_a_streamed_zip_is_read_through_its_local_headers() -> None:
    """Members whose sizes follow their data (a zip written to a pipe) are read to their
    stream's end; a stored one, whose end only the central directory tells, is reported."""
    data = os.urandom(5000)
    pipe = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(pipe), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.bin", data)
        archive.writestr("z.txt", b"z")
    packed = pipe.getvalue()
    assert packed[6] & 0x8  # sizes in a data descriptor after the data
    cut = packed[: packed.index(b"PK\x01\x02")]  # no central directory: local headers only
    for encoded in (cut, gzip.compress(cut), b"#!/bin/sh\n" + cut):
        result = list(layers(encoded))
        assert len(found(result, data)) == 1 and not stopped(result), result
        assert found(result, b"z")
    stored = bytearray(cut)
    stored[8] = 0  # method: stored
    result = stopped(list(layers(bytes(stored))))
    assert [layer.outcome for layer in result] == [Outcome.UNREADABLE]
    assert "central directory" in result[0].reason


class _Unseekable(io.RawIOBase):
    """A pipe: zipfile then writes each member's sizes after its data."""

    def __init__(self, sink: io.BytesIO) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._sink.write(data)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("a pipe")


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


def test_depth_is_configurable(tmp_path: Path) -> None:
    """max_depth (or depth=) sets how deep the walk goes, and where one more is reported; a
    stream found at an offset is a layer like any other."""
    data = os.urandom(2000)
    prefix = b"run 7 finished\n"
    path = tmp_path / "run.log"
    path.write_bytes(
        prefix
        + bz2.compress(base64.b64encode(gzip.compress(base64.b64encode(gzip.compress(data)))))
    )
    deep = (f"bzip2 at offset {len(prefix)}", "base64", "gzip", "base64", "gzip")
    assert found(list(layers(path, DecodeBudget(max_depth=5))), data) == [deep]
    assert found(list(layers(path, depth=5)), data) == [deep]
    for budget, depth in ((DecodeBudget(), 4), (DecodeBudget(max_depth=2), 2)):
        result = list(layers(path, budget))
        assert not found(result, data)
        assert [layer.how for layer in stopped(result)] == [deep[: depth + 1]]
        assert f"max_depth ({depth})" in stopped(result)[0].reason


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
    for budget, where, why in (
        (DecodeBudget(max_seconds=1e-9), (), "max_seconds"),  # while the file itself is read
        (DecodeBudget(max_total_bytes=MIB), ("gzip",), "max_total_bytes"),
    ):
        result = list(layers(encoded, budget))
        assert [(layer.how, layer.outcome) for layer in result] == [(where, Outcome.OVER_BUDGET)]
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


# ---------------------------------------------------------------- formats at any offset


LOG_LINE = b"2024-05-01T12:00:00Z INFO worker-3 step=1042 loss=0.3141 lr=3e-4 ok\n"


def weights(size: int = 50_000) -> bytes:
    return os.urandom(size)


def test_zip_behind_a_shell_header_is_opened_as_unzip_opens_it(tmp_path: Path) -> None:
    """``cat header.sh w.zip > x.sh``: the zip's offsets are relative to its start, as unzip allows."""
    data = weights()
    header = b"#!/bin/sh\necho 'installing'\nexit 0\n" + b"# padding\n" * 100
    path = tmp_path / "x.sh"
    path.write_bytes(header + zipped({"w.bin": data}))
    with zipfile.ZipFile(path) as archive:  # what unzip sees
        assert archive.read("w.bin") == data
    result = list(layers(path))
    assert found(result, data) == [(f"zip at offset {len(header)}", "zip member w.bin")]
    assert not stopped(result)


def test_two_zips_one_after_the_other_are_both_read(tmp_path: Path) -> None:
    """``cat a.zip b.zip``: the end record names b.zip; a.zip is read by its local headers."""
    first, second = weights(), weights()
    a = zipped({"a.bin": first})
    path = tmp_path / "ab.zip"
    path.write_bytes(a + zipped({"b.bin": second}))
    result = list(layers(path))
    assert found(result, first) == [("zip at offset 0", "zip member a.bin")]
    assert found(result, second) == [(f"zip at offset {len(a)}", "zip member b.bin")]
    assert not stopped(result)


def test_tar_after_a_large_log_is_found(tmp_path: Path) -> None:
    """``cat big.log w.tar > x``: a tar header (ustar magic, checksum) found 8 MiB in."""
    data = weights()
    log = LOG_LINE * (8 * MIB // len(LOG_LINE))
    path = tmp_path / "x"
    path.write_bytes(log + tar_of({"w.bin": data}))
    result = list(layers(path))
    assert found(result, data) == [(f"tar at offset {len(log)}", "tar member w.bin")]
    assert not stopped(result)


@pytest.mark.parametrize("name", ["gzip", "bzip2", "xz"])
def test_compressed_stream_after_a_text_prefix_is_found(tmp_path: Path, name: str) -> None:
    """A gzip, bzip2 or xz stream that starts after other bytes is found where it starts."""
    data = weights()
    prefix = b"notes from the run\n" + LOG_LINE * 50
    path = tmp_path / "notes.txt"
    path.write_bytes(prefix + ENCODINGS[name](data) + b"\nmore notes\n")
    result = list(layers(path))
    assert found(result, data) == [(f"{name} at offset {len(prefix)}",)]
    assert not stopped(result)


OFFSET_ENCODINGS: dict[str, tuple[Callable[[bytes], bytes], tuple[str, ...]]] = {
    "gzip": (ENCODINGS["gzip"], ()),
    "bzip2": (bz2.compress, ()),
    "xz": (lzma.compress, ()),
    "tar": (ENCODINGS["tar"], ("tar member w.bin",)),
    "zip": (ENCODINGS["zip stored"], ("zip member w.bin",)),
}


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.binary(max_size=700).map(lambda b: b"\n" + b),
    name=st.sampled_from(sorted(OFFSET_ENCODINGS)),
    trailer=st.sampled_from([b"", b"\n# end\n"]),
)
def test_formats_at_offsets_are_found_at_any_chunk_boundary(
    prefix: bytes, name: str, trailer: bytes
) -> None:
    """A format after other bytes is found where it starts, even read 3 bytes at a time."""
    data = b"weights " * 100
    encode, inner = OFFSET_ENCODINGS[name]
    with pytest.MonkeyPatch.context() as patch:
        for module in (streams, members):
            patch.setattr(module, "CHUNK", 3)
        result = list(layers(prefix + encode(data) + trailer))
    assert found(result, data) == [(f"{name} at offset {len(prefix)}", *inner)], result


def test_four_layers_are_found_and_a_fifth_is_reported(tmp_path: Path) -> None:
    """base64(gzip(base64(gzip(x)))) is found with the default budget; one more layer is
    reported as over max_depth, not passed."""
    data = weights()
    four = base64.b64encode(gzip.compress(base64.b64encode(gzip.compress(data))))
    (tmp_path / "four").write_bytes(four)
    (tmp_path / "five").write_bytes(gzip.compress(four))
    assert found(list(layers(tmp_path / "four")), data) == [("base64", "gzip", "base64", "gzip")]
    result = list(layers(tmp_path / "five"))
    assert not found(result, data)
    [layer] = stopped(result)
    assert layer.how == ("gzip", "base64", "gzip", "base64", "gzip")
    assert layer.outcome is Outcome.OVER_BUDGET and "max_depth" in layer.reason
    assert found(list(layers(tmp_path / "five", DecodeBudget(max_depth=5))), data)


def test_a_split_of_four_layers_is_found_from_its_folder(tmp_path: Path) -> None:
    """A 4-layer payload split into a folder's files is found at the folder, as deep as a file."""
    from guard.manifest import snapshot
    from guard.recovery import recoverable

    root = tmp_path / "root"
    data = weights(20_000)
    original = root / "data" / "w.bin"
    original.parent.mkdir(parents=True)
    original.write_bytes(data)
    prev = snapshot([root], workers=1)
    encoded = base64.b64encode(gzip.compress(base64.b64encode(gzip.compress(data))))
    parts = root / "scratch" / "parts"
    parts.mkdir(parents=True)
    for i in range(0, len(encoded), 4000):
        (parts / f"part_{i // 4000:03d}").write_bytes(encoded[i : i + 4000])
    original.unlink()
    now = snapshot([root], previous=prev, workers=1)
    result = list(recoverable(prev, now, {sha(data)}, DecodeBudget()))
    assert [(path, layer.how) for path, layer in result if layer.digest == sha(data)] == [
        (str(parts.resolve()), ("concatenated files", "base64", "gzip", "base64", "gzip"))
    ]
    assert not [layer for _, layer in result if layer.uninspected]


def test_a_file_ten_times_the_original_holding_it_is_found(tmp_path: Path) -> None:
    """No guess from sizes: a tar ten times the original's size, holding it, is looked into."""
    from guard.manifest import snapshot
    from guard.recovery import recoverable

    root = tmp_path / "root"
    data = weights(300_000)
    original = root / "data" / "w.bin"
    original.parent.mkdir(parents=True)
    original.write_bytes(data)
    prev = snapshot([root], workers=1)
    bundle = root / "scratch" / "bundle.tar"
    bundle.parent.mkdir()
    bundle.write_bytes(tar_of({"filler.bin": os.urandom(9 * len(data)), "w.bin": data}))
    assert bundle.stat().st_size > 10 * len(data)
    original.unlink()
    now = snapshot([root], previous=prev, workers=1)
    result = list(recoverable(prev, now, {sha(data)}, DecodeBudget()))
    assert [(path, layer.how) for path, layer in result if layer.digest == sha(data)] == [
        (str(bundle.resolve()), ("tar member w.bin",))
    ]


def _fake_local_header() -> bytes:
    """A zip local header any writer could have made, for data that is not deflate at all."""
    name = b"w.bin"
    header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, 16, 16, len(name), 0)
    return header + name + b"\xff" * 16


def test_a_file_of_fake_signatures_is_reported_within_budget(tmp_path: Path) -> None:
    """10,000 plausible zip local headers: max_candidates are tried, then the file is reported."""
    path = tmp_path / "fakes.bin"
    path.write_bytes(b"junk" + (_fake_local_header() + b"--junk--") * 10_000)
    started = time.monotonic()
    result = list(layers(path))
    assert time.monotonic() - started < 5
    [layer] = stopped(result)
    assert layer.outcome is Outcome.OVER_BUDGET and "max_candidates" in layer.reason
    assert layer.how == (f"zip at offset {4 + 64 * (len(_fake_local_header()) + 8)}",)
    assert "this one and over 3999 more after it were not tried" in layer.reason
    # A real zip's own local headers are not places of their own: they cost nothing.
    many = zipped({f"m{i}": b"x" * 10 for i in range(200)})
    assert not stopped(list(layers(b"prefix" + many)))


def test_time_budget_is_honoured_on_a_large_file(tmp_path: Path) -> None:
    """A 64 MiB file whose looking through takes longer than max_seconds ends at about that
    time with an over-budget layer, rather than running on."""
    path = tmp_path / "big.bin"
    with path.open("wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(MIB))

    class Slow:
        def update(self, data: bytes) -> None:
            time.sleep(0.02)

        def result(self) -> tuple[object, ...]:
            return ()

    for budget, tap in ((0.5, Slow), (0.02, None)):
        started = time.monotonic()
        result = list(layers(path, DecodeBudget(max_seconds=budget), tap=tap))
        assert time.monotonic() - started < budget + 0.5
        assert [(layer.how, layer.outcome) for layer in result] == [((), Outcome.OVER_BUDGET)]
        assert "max_seconds" in result[0].reason


def test_a_large_file_is_scanned_and_tapped_in_bounded_memory(tmp_path: Path) -> None:
    """Reading a 64 MiB file for signatures, and feeding it to a tap, holds only chunks."""
    path = tmp_path / "big.bin"
    whole = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(64):
            block = os.urandom(MIB)
            whole.update(block)
            fh.write(block)
    with traced_peak() as peak:
        result = list(layers(path, tap=Sha))
    assert [(layer.how, layer.digest) for layer in result if not layer.how] == [
        ((), whole.hexdigest())
    ]
    assert peak[0] < 8 * MIB, peak


# ---------------------------------------------------------------- the tap


class Sha:
    """A tap that hashes what it is fed, and counts how often it was made and fed."""

    made = 0

    def __init__(self) -> None:
        Sha.made += 1
        self._hash = hashlib.sha256()
        self._fed = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self._fed += len(data)

    def result(self) -> tuple[object, ...]:
        return (self._hash.hexdigest(), self._fed)


def test_tap_sees_exactly_the_bytes_of_every_payload(tmp_path: Path) -> None:
    """Each payload, the file itself too, is fed once, whole and in order, to a fresh tap:
    its hash is the layer's digest, held payloads and payloads streamed again alike."""
    data = weights()
    inner = tar_gz({"w.bin": data, "b64.txt": base64.b64encode(gzip.compress(data))})
    prefix = b"#!/bin/sh\nexit 0\n"
    path = tmp_path / "x.sh"
    path.write_bytes(prefix + zipped({"inner.tgz": inner, "plain.bin": data}) + b"")
    expected = [
        (),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz"),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz", "gzip"),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz", "gzip", "tar member w.bin"),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz", "gzip", "tar member b64.txt"),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz", "gzip", "tar member b64.txt", "base64"),
        (f"zip at offset {len(prefix)}", "zip member inner.tgz", "gzip", "tar member b64.txt", "base64", "gzip"),
        (f"zip at offset {len(prefix)}", "zip member plain.bin"),
    ]  # fmt: skip
    for budget in (DecodeBudget(), DecodeBudget(max_held_bytes=1024)):
        Sha.made = 0
        result = list(layers(path, budget, tap=Sha))
        decoded = [layer for layer in result if layer.outcome is Outcome.DECODED]
        assert [layer.how for layer in decoded] == expected
        for layer in decoded:
            assert layer.found == (layer.digest, layer.size), layer.how
        assert decoded[0].digest == sha(path.read_bytes())
        assert Sha.made == len(decoded)  # one tap per payload, none for a pass streamed again
        assert not stopped(result)


def test_tap_over_streams_cut_back_and_beyond_the_depth() -> None:
    """A payload cut back to its last complete stream is tapped as cut back; a payload a
    layer too deep is still tapped, on the layer that reports it."""
    data = weights()
    packed = gzip.compress(data) + b"\x1f\x8b\x08\x00 corrupt gzip member"
    [layer] = [layer for layer in layers(packed, tap=Sha) if layer.how == ("gzip",)]
    assert layer.digest == sha(data) and layer.found == (sha(data), len(data))
    [deep] = stopped(list(layers(gzip.compress(gzip.compress(data)), depth=1, tap=Sha)))
    assert deep.how == ("gzip", "gzip") and deep.found == (sha(data), len(data))


def test_without_a_tap_the_file_itself_is_not_a_layer() -> None:
    """Callers that hash files themselves see no layer for the file itself, as before."""
    data = weights()
    assert [layer.how for layer in layers(gzip.compress(data))] == [("gzip",)]
    assert list(layers(data)) == []

    class Nothing:
        def update(self, data: bytes) -> None:
            pass

        def result(self) -> tuple[object, ...]:
            return ()

    assert [layer.how for layer in layers(gzip.compress(data), tap=Nothing)] == [("gzip",)]
