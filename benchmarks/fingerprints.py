"""Fingerprint speed beside hashlib SHA-256 over the same bytes (target: at least half).

Two files of N MiB (256 by default) in a temp dir, page cache warm: a protected file of random
bytes, and a candidate of the same size that holds it shifted by an odd number of bytes behind
other random bytes. Three measurements, run in turn round after round, medians:

* ``sha256``: an in-process ``hashlib.sha256`` loop over 1 MiB reads into one reusable
  buffer, of the protected file: the baseline.
* ``build``: a new :class:`~guard.fingerprints.FingerprintIndex` and ``add_file`` of the
  protected file.
* ``scan``: ``scan_file`` of the candidate with that index. Every chunk after the shift is
  shared, so every chunk takes the slower path of a match.
* ``scan-miss``: ``scan_file`` of the candidate with an index of 1 MiB of other bytes, the
  common case of a file that shares nothing (shown, not held to the target).

Exits 1 when building or scanning runs at less than half the speed of SHA-256.
Run: ``.venv/bin/python benchmarks/fingerprints.py`` (``--mib 64`` for a quick run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from guard.fingerprints import FingerprintIndex

MiB = 1 << 20
SHIFT = 12_345  # bytes of other data in front of the copy in the candidate
TARGET = 0.5  # of SHA-256's throughput, for building and for scanning


def write_random(path: Path, mib: int, prefix: bytes = b"", source: Path | None = None) -> None:
    """Write ``prefix`` then random bytes (or ``source``'s bytes) up to ``mib`` MiB in all."""
    with open(path, "wb") as out:
        out.write(prefix)
        left = mib * MiB - len(prefix)
        if source is None:
            while left > 0:
                out.write(os.urandom(min(MiB, left)))
                left -= MiB
            return
        with open(source, "rb") as src:
            while left > 0 and (block := src.read(min(MiB, left))):
                out.write(block)
                left -= len(block)


def sha256_loop(path: Path) -> str:
    """The baseline: SHA-256 over 1 MiB reads into one reusable buffer."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def build(path: Path) -> FingerprintIndex:
    index = FingerprintIndex()
    index.add_file(path, "peer")
    return index


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="size of each file in MiB")
    parser.add_argument("--runs", type=int, default=5, help="rounds of the three measurements")
    parser.add_argument("--dir", default=None, help="parent of the temp dir (default: $TMPDIR)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="peerguard-fp-", dir=args.dir) as tmp:
        protected = Path(tmp) / "peer.bin"
        candidate = Path(tmp) / "candidate.bin"
        write_random(protected, args.mib)
        write_random(candidate, args.mib, os.urandom(SHIFT), source=protected)
        size = args.mib * MiB
        for path in (protected, candidate):
            sha256_loop(path)  # warm the page cache

        index = build(protected)
        [match] = index.scan_file(candidate)
        if match.key != "peer" or match.matched_bytes < size - SHIFT - 4 * index.max_size:
            raise SystemExit(f"the shifted copy was not found whole: {match}")
        print(
            f"{args.mib} MiB per file, {len(index)} chunks indexed "
            f"(mean {size // len(index)} bytes), the copy found with "
            f"{match.matched_bytes / MiB:.2f} MiB shared"
        )

        unrelated = FingerprintIndex()
        unrelated.add_bytes(os.urandom(MiB), "unrelated")
        times: dict[str, list[float]] = {"sha256": [], "build": [], "scan": [], "scan-miss": []}
        for _ in range(args.runs):
            times["sha256"].append(timed(lambda: sha256_loop(protected)))
            times["build"].append(timed(lambda: build(protected)))
            times["scan"].append(timed(lambda: index.scan_file(candidate)))
            times["scan-miss"].append(timed(lambda: unrelated.scan_file(candidate)))
        medians = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"medians of {args.runs} interleaved rounds\n")
    print(f"  {'':10} {'ms':>9} {'MB/s':>8} {'vs SHA-256':>11}")
    failed = []
    for name, seconds in medians.items():
        ratio = medians["sha256"] / seconds
        verdict = ""
        if name in ("build", "scan"):
            verdict = "  met" if ratio >= TARGET else "  NOT MET"
            if ratio < TARGET:
                failed.append(name)
        print(
            f"  {name:10} {seconds * 1000:9.1f} {size / seconds / 1e6:8.0f} {ratio:10.2f}x{verdict}"
        )
    print(f"\ntarget: building and scanning each at least {TARGET:.1f}x SHA-256's throughput")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
