"""Fingerprints of protected weights: partial, shifted copies found in any file, headers and
low-entropy bytes never counted, streaming equal to one whole scan."""

from __future__ import annotations

import json
import os
import random
import struct
import threading
from pathlib import Path

import pytest

from guard import fingerprints
from guard.fingerprints import PERIOD, FingerprintIndex, Match, tensor_offset

KIB = 1024
MIB = 1 << 20


def noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def safetensors_file(path: Path, tensor: bytes, seed: int = 1) -> int:
    """Write a real safetensors file holding ``tensor``; return where its tensor bytes start.

    The header carries 96 KiB of metadata text: enough to match if it were fingerprinted.
    """
    header = {
        "__metadata__": {"notes": noise(48 * KIB, seed).hex()},
        "w": {"dtype": "U8", "shape": [len(tensor)], "data_offsets": [0, len(tensor)]},
    }
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + tensor)
    return 8 + len(raw)


def gguf_bytes(tokens: list[bytes], tensor: bytes, alignment: int = 64) -> tuple[bytes, int]:
    """A GGUF v3 file: a token vocabulary, one uint8 tensor; and where its data starts."""

    def string(s: bytes) -> bytes:
        return struct.pack("<Q", len(s)) + s

    out = b"GGUF" + struct.pack("<IQQ", 3, 1, 4)
    out += string(b"general.architecture") + struct.pack("<I", 8) + string(b"llama")
    out += string(b"general.alignment") + struct.pack("<II", 4, alignment)
    out += string(b"llama.rope.freq_base") + struct.pack("<If", 6, 10000.0)
    out += string(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens))
    out += b"".join(string(t) for t in tokens)
    out += string(b"w") + struct.pack("<IQIQ", 1, len(tensor), 0, 0)  # 1 dim, type F32, at 0
    start = -(-len(out) // alignment) * alignment
    return out + bytes(start - len(out)) + tensor, start


@pytest.fixture
def weights(tmp_path: Path) -> tuple[Path, bytes, int]:
    """A 1 MiB random tensor in a safetensors file: (path, tensor bytes, tensor offset)."""
    tensor = noise(MIB, 10)
    path = tmp_path / "peer.safetensors"
    return path, tensor, safetensors_file(path, tensor)


@pytest.fixture
def index(weights: tuple[Path, bytes, int]) -> FingerprintIndex:
    idx = FingerprintIndex()
    assert idx.add_file(weights[0], "peer") == len(idx) > 300
    return idx


def test_partial_copy_at_odd_offset_is_found(
    tmp_path: Path, index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """64 KiB of tensor bytes from an odd offset, at an odd offset in 3 MiB of other bytes."""
    _, tensor, _ = weights
    at = 1_234_567
    blob = bytearray(noise(3 * MIB, 2))
    blob[at : at + 64 * KIB] = tensor[300_001 : 300_001 + 64 * KIB]
    candidate = tmp_path / "notes.txt"
    candidate.write_bytes(blob)
    [match] = index.scan_file(candidate)
    assert match.key == "peer"
    # What the scheme guarantees: more than half the copy in whole shared chunks, never
    # more than the copy; the first shared chunk lies inside it.
    assert index.threshold == 32 * KIB + 1
    assert index.threshold <= match.matched_bytes <= 64 * KIB
    assert at <= match.first_offset < at + 64 * KIB - index.threshold
    # A longer copy loses no more at its edges: all but a few chunks are found.
    blob[at : at + 512 * KIB] = tensor[100_003 : 100_003 + 512 * KIB]
    [match] = index.scan_bytes(bytes(blob))
    assert 512 * KIB - 4 * index.max_size <= match.matched_bytes <= 512 * KIB


def test_copies_of_half_min_bytes_or_less_are_not_found(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """32 KiB copies are not found, however aligned, while two of them together are."""
    _, tensor, _ = weights
    pad = noise(200 * KIB, 3)
    for start in (0, 1, 4095, 500_000, MIB - 32 * KIB):
        piece = tensor[start : start + 32 * KIB]
        assert index.scan_bytes(piece) == []
        assert index.scan_bytes(pad[:777] + piece + pad) == []
    # The pieces do share chunks: two of them from different places add up to a match.
    two = pad[:777] + tensor[1 : 1 + 32 * KIB] + pad[:5000] + tensor[500_000 : 532 * KIB] + pad
    assert [m.key for m in index.scan_bytes(two)] == ["peer"]


def test_safetensors_header_is_not_fingerprinted(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """A copy of the JSON header alone matches nothing; it would if it were fingerprinted."""
    path, tensor, start = weights
    data = path.read_bytes()
    assert start > 90 * KIB and data[start:] == tensor
    header_copy = noise(10_001, 4) + data[:start] + noise(10_000, 5)
    assert index.scan_bytes(header_copy) == []
    with path.open("rb") as file:
        assert tensor_offset(file) == start
    whole = FingerprintIndex()
    whole.add_bytes(data, "whole file")
    assert [m.key for m in whole.scan_bytes(header_copy)] == ["whole file"]


def test_tensor_offset_skips_the_header_when_added_as_bytes(
    weights: tuple[Path, bytes, int],
) -> None:
    """``add_bytes`` with ``tensor_offset`` leaves the header out, as ``add_file`` does."""
    path, _, start = weights
    data = path.read_bytes()
    idx = FingerprintIndex()
    idx.add_bytes(data, "peer", tensor_offset=start)
    assert idx.scan_bytes(data[:start]) == []
    assert [m.key for m in idx.scan_bytes(data[start : start + 80 * KIB])] == ["peer"]


def test_gguf_metadata_is_not_fingerprinted(tmp_path: Path) -> None:
    """A GGUF file's vocabulary and tensor descriptions are skipped; its tensor data counts."""
    rnd = random.Random(6)
    tokens = [rnd.randbytes(rnd.randint(2, 12)).hex().encode() for _ in range(12_000)]
    tensor = noise(512 * KIB, 7)
    data, start = gguf_bytes(tokens, tensor)
    assert start > 200 * KIB and start % 64 == 0
    path = tmp_path / "peer.gguf"
    path.write_bytes(data)
    with path.open("rb") as file:
        assert tensor_offset(file) == start
    idx = FingerprintIndex()
    idx.add_file(path, "peer")
    assert idx.scan_bytes(noise(999, 8) + data[:start] + noise(999, 9)) == []
    assert [m.key for m in idx.scan_bytes(noise(999, 8) + tensor[: 80 * KIB])] == ["peer"]
    whole = FingerprintIndex()
    whole.add_bytes(data, "whole file")
    assert [m.key for m in whole.scan_bytes(data[:start])] == ["whole file"]


def test_truncated_gguf_is_fingerprinted_from_where_parsing_stopped(tmp_path: Path) -> None:
    """Metadata cut short: fingerprinting starts after the last item that parsed."""
    tokens = [b"tok%d" % i for i in range(1000)]
    data, _ = gguf_bytes(tokens, b"")
    vocab_key = data.index(b"tokenizer.ggml.tokens") - 8  # its length field
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: vocab_key + 500])
    with path.open("rb") as file:
        assert tensor_offset(file) == vocab_key  # after general.alignment and freq_base


def test_zeros_and_constants_never_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one repeated byte in the weights do not make files of such runs match."""
    values = [0x00, 0xFF, 0x01, 0x80, 0x3F, 0x7F, 0xAA, 0x55]
    tensor = b"".join(noise(20 * KIB, v) + bytes([v]) * 40 * KIB for v in values)
    candidate = b"".join(bytes([v]) * 50 * KIB + noise(3 * KIB, 100 + v) for v in values)
    zeros = bytes(MIB)
    idx = FingerprintIndex()
    idx.add_bytes(tensor, "peer")
    assert idx.scan_bytes(candidate) == []
    assert idx.scan_bytes(zeros) == []
    (tmp_path / "zeros").write_bytes(zeros)
    assert idx.scan_file(tmp_path / "zeros") == []
    # Without the rule the runs' chunks would add up to a match.
    monkeypatch.setattr(fingerprints, "_repetitive", lambda chunk: False)
    unguarded = FingerprintIndex()
    unguarded.add_bytes(tensor, "peer")
    assert [m.key for m in unguarded.scan_bytes(candidate)] == ["peer"]


def test_repetitive_rule() -> None:
    """Chunks with a period of at most PERIOD bytes are low-entropy; nothing else is."""
    rule = fingerprints._repetitive
    f32_one = struct.pack("<f", 1.0)
    vector = noise(PERIOD, 11)
    assert rule(memoryview(bytes(4096)))
    assert rule(memoryview(f32_one * 1024))
    assert rule(memoryview(f32_one[1:] + f32_one * 1000))  # any phase
    assert rule(memoryview((vector * 64)[5:]))
    assert rule(memoryview(b"x"))
    assert not rule(memoryview(noise(PERIOD + 1, 12) * 64))
    assert not rule(memoryview(bytes(4095) + b"\x01"))
    assert not rule(memoryview(noise(4096, 13)))
    assert not rule(memoryview(b"ab"))


def test_shifts_of_one_to_seven_bytes_are_all_found(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """The start of the tensor bytes, shifted by 1..7 bytes, is found every time."""
    _, tensor, _ = weights
    for shift in range(1, 8):
        candidate = noise(shift, shift) + tensor[: 64 * KIB] + noise(100, shift)
        [match] = index.scan_bytes(candidate)
        assert match.key == "peer" and match.matched_bytes >= index.threshold


def several_copies(tensor_a: bytes, tensor_b: bytes) -> bytes:
    return (
        noise(10_001, 20)
        + tensor_a[5 : 5 + 64 * KIB]
        + noise(3_333, 21)
        + tensor_b[77_777 : 77_777 + 200 * KIB]
        + noise(1_001, 22)
        + tensor_a[700_001 : 700_001 + 100 * KIB]
        + noise(4_321, 23)
    )


@pytest.fixture
def two_assets(
    tmp_path: Path, index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> tuple[FingerprintIndex, bytes]:
    """The peer's safetensors plus a second peer's raw ``.bin`` (all its bytes count)."""
    tensor_b = noise(MIB, 30)
    (tmp_path / "other.bin").write_bytes(tensor_b)
    index.add_file(tmp_path / "other.bin", "other")
    return index, several_copies(weights[1], tensor_b)


def test_copies_of_two_assets_in_one_file_are_both_found(
    two_assets: tuple[FingerprintIndex, bytes],
) -> None:
    """Three copies from two assets in one file: both keys, each with all its copies."""
    index, candidate = two_assets
    found = index.scan_bytes(candidate)
    assert [m.key for m in found] == ["other", "peer"]
    other, peer = found
    assert 200 * KIB - 4 * index.max_size <= other.matched_bytes <= 200 * KIB
    assert 164 * KIB - 8 * index.max_size <= peer.matched_bytes <= 164 * KIB
    assert 10_001 <= peer.first_offset < 10_001 + 64 * KIB
    assert other.first_offset > 10_001 + 64 * KIB + 3_333


def test_streaming_in_odd_pieces_equals_one_scan(
    two_assets: tuple[FingerprintIndex, bytes],
) -> None:
    """Pieces of 1, 7 and 4097 bytes (and a mix) give the matches of one whole scan, and
    never carry a whole chunk's worth of bytes between calls."""
    index, candidate = two_assets
    whole = index.scan_bytes(candidate)
    assert len(whole) == 2
    rnd = random.Random(40)
    for sizes in ([1], [7], [4097], [1, 7, 4097, 100_000, 3]):
        scanner = index.scanner()
        at = 0
        while at < len(candidate):
            step = rnd.choice(sizes)
            scanner.update(candidate[at : at + step])
            at += step
            assert len(scanner._pending) < index.max_size
            if at == 300_000:
                assert scanner.matches() == index.scan_bytes(candidate[:at])
        assert scanner.matches() == whole


def test_the_whole_tensor_matches_in_full(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """The tensor bytes alone are cut exactly as when indexed: every byte is shared, the
    last chunk (carried to the end of the stream) included."""
    _, tensor, _ = weights
    assert index.scan_bytes(tensor) == [Match("peer", len(tensor), 0)]
    scanner = index.scanner()
    for at in range(0, len(tensor), 1000):
        scanner.update(tensor[at : at + 1000])
    assert scanner.matches() == [Match("peer", len(tensor), 0)]


def test_unrelated_file_does_not_match(tmp_path: Path, index: FingerprintIndex) -> None:
    """4 MiB of other random bytes share nothing with the index."""
    path = tmp_path / "unrelated.bin"
    path.write_bytes(noise(4 * MIB, 50))
    assert index.scan_file(path) == []
    assert index.scan_bytes(b"") == []


def test_repeating_a_short_copy_adds_nothing(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """A 16 KiB piece repeated eight times counts once: not a match."""
    piece = weights[1][4_000 : 4_000 + 16 * KIB]
    assert index.scan_bytes((piece + noise(1_000, 60)) * 8) == []


def test_a_chunk_held_by_two_keys_counts_for_each(
    index: FingerprintIndex, weights: tuple[Path, bytes, int]
) -> None:
    """The same tensor under a second key: one chunk each, both keys reported alike."""
    _, tensor, _ = weights
    chunks = len(index)
    assert index.add_bytes(tensor, "peer-backup") == chunks
    assert len(index) == chunks
    found = index.scan_bytes(noise(3, 70) + tensor[: 100 * KIB])
    assert [m.key for m in found] == ["peer", "peer-backup"]
    assert found[0].matched_bytes == found[1].matched_bytes
    assert found[0].first_offset == found[1].first_offset


def test_scanning_from_several_threads_agrees(
    two_assets: tuple[FingerprintIndex, bytes],
) -> None:
    """One index, eight threads, each its own candidates: the results of a lone scan."""
    index, candidate = two_assets
    candidates = [candidate[k * 50_000 :] for k in range(8)]
    expected = [index.scan_bytes(c) for c in candidates]
    results: list[list[Match]] = [[] for _ in candidates]

    def scan(i: int) -> None:
        for _ in range(3):
            results[i] = index.scan_bytes(candidates[i])

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(len(candidates))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected
    assert any(results)


def test_files_that_are_not_regular_are_refused(tmp_path: Path, index: FingerprintIndex) -> None:
    """A FIFO is refused, not read (which would block or drain it)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        index.scan_file(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        index.add_file(fifo, "pipe")


def test_bad_parameters_are_refused() -> None:
    """Out-of-order chunk sizes, a min_bytes below 8 chunks, a negative tensor offset."""
    with pytest.raises(ValueError, match="min <= avg <= max"):
        FingerprintIndex(min_size=4096, avg_size=2048)
    with pytest.raises(ValueError, match="8 x max_size"):
        FingerprintIndex(min_bytes=32 * KIB)
    with pytest.raises(ValueError, match="negative"):
        FingerprintIndex().add_bytes(b"x", "k", tensor_offset=-1)
    bigger = FingerprintIndex(min_bytes=MIB, min_size=2048, avg_size=8192, max_size=32768)
    assert bigger.threshold == MIB // 2 + 1
