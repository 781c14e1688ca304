"""Snapshot speed on a tree like real model storage, beside the baselines that bound it.

The tree: one big weights file (1 GiB by default) and many small files (5,000 of 1-64 KiB:
configs, shards, evaluation items) in per-agent folders, all in a temp dir, page cache warm.

Three comparisons, each measured in the same run (medians of several runs), with targets:

1. One big file: ``snapshot`` vs an in-process ``hashlib.sha256`` loop over page-aligned 1 MiB
   reads of the same file. Target: at least 90% of the loop's throughput.
2. The full tree, nothing cached: ``snapshot`` vs ``aide --init`` with a sha256-only rule.
   Target: faster than aide (snapshot hashes on every core; aide is shown with its default
   single worker and with ``num_workers`` set to the core count).
3. The unchanged tree again with the previous manifest (stat cache): ``snapshot`` vs a bare
   ``os.scandir`` + ``stat`` walk (target: at most 1.5x the walk) and vs ``aide --check``
   (target: at least 50x faster).

Run: ``.venv/bin/python benchmarks/snapshot.py`` (about 2 GiB of disk traffic; for a quick
run: ``--big-mib 64 --small 500``). ``aide`` comes from Debian's package
(``apt-get install -y aide``); without it those comparisons are skipped and say so.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from guard import manifest
from guard.manifest import Manifest, snapshot

MiB = 1 << 20


def build_tree(root: Path, big_mib: int, small: int, seed: int = 7) -> Path:
    """Write the big file and the small files; return the big file's path."""
    rnd = random.Random(seed)
    big = root / "models/agent-1/model-00001-of-00001.safetensors"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        for _ in range(big_mib):
            f.write(os.urandom(MiB))
    kinds = ["config.json", "tokenizer.json", "shard.bin", "items.jsonl", "report.json"]
    for i in range(small):
        folder = root / f"models/agent-{i % 50}" / ("evals" if i % 5 == 3 else "files")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}-{kinds[i % len(kinds)]}").write_bytes(
            rnd.randbytes(rnd.randint(1024, 64 * 1024))
        )
    return big


def warm(root: Path) -> None:
    """Read every file once so that every run sees a warm page cache."""
    buf = bytearray(MiB)
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass


def hashlib_loop(path: Path) -> str:
    """The reference: SHA-256 over page-aligned 1 MiB reads, in process."""
    buf = mmap.mmap(-1, MiB)
    view = memoryview(buf)
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    view.release()
    buf.close()
    return h.hexdigest()


def bare_walk(root: Path) -> int:
    """The floor for a re-snapshot: scandir every folder, lstat every file, keep nothing."""
    n = 0
    stack = [os.fspath(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    n += 1
    return n


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(fn) for _ in range(runs))


def round_robin(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median time of each function, run in turn round after round.

    Interleaving makes drift on a shared machine (other jobs, turbo, page cache) fall on
    every side alike instead of on whichever ran last.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


class Aide:
    """``aide`` with a throw-away config: one sha256-only rule over the tree."""

    def __init__(self, work: Path, root: Path, workers: int | None) -> None:
        self.work = work
        self.config = work / f"aide-{workers or 'default'}.conf"
        lines = [
            f"database_in=file:{work}/aide.db",
            f"database_out=file:{work}/aide.db.new",
            "gzip_dbout=no",
            "report_url=stdout",
            "Sha = sha256",
            f"{root} Sha",
        ]
        if workers:
            lines.insert(0, f"num_workers={workers}")
        self.config.write_text("\n".join(lines) + "\n")

    def run(self, command: str) -> subprocess.CompletedProcess[bytes]:
        aide = shutil.which("aide")
        if aide is None:
            raise RuntimeError("aide is not installed")
        return subprocess.run(
            [aide, f"--config={self.config}", command], capture_output=True, check=False
        )

    def init(self) -> None:
        result = self.run("--init")
        if result.returncode != 0:
            raise RuntimeError(f"aide --init failed: {result.stderr.decode()}")
        os.replace(self.work / "aide.db.new", self.work / "aide.db")

    def check(self) -> None:
        result = self.run("--check")
        if result.returncode != 0:  # non-zero also means "differences found": not expected
            raise RuntimeError(f"aide --check: {result.returncode} {result.stdout.decode()}")


def report(name: str, ours: float, theirs: float, target: str, met: bool) -> None:
    print(f"  {name}")
    print(f"    peerguard {ours * 1000:10.1f} ms   baseline {theirs * 1000:10.1f} ms")
    print(f"    {target}: {'met' if met else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big file")
    parser.add_argument("--small", type=int, default=5000, help="number of small files")
    parser.add_argument("--runs", type=int, default=5, help="runs per peerguard measurement")
    parser.add_argument("--aide-runs", type=int, default=3, help="runs per aide measurement")
    parser.add_argument("--dir", default=None, help="parent of the temp dir (default: $TMPDIR)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    have_aide = shutil.which("aide") is not None

    with tempfile.TemporaryDirectory(prefix="peerguard-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        root = work / "storage"
        root.mkdir()
        print(f"tree: 1 file of {args.big_mib} MiB + {args.small} files of 1-64 KiB, {cores} cores")
        big = build_tree(root, args.big_mib, args.small)
        built_ns = time.time_ns()
        warm(root)
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"      {total / MiB:.0f} MiB in {args.small + 1} files, page cache warm")
        rescans = max(args.runs, 15)
        print(
            f"      medians, runs interleaved: {2 * args.runs + 1} rounds for the single file, "
            f"{args.aide_runs} with aide, {rescans} for the re-snapshot\n"
        )

        # 1. One big file.
        print("1. one big file, full hash")
        digest = hashlib_loop(big)
        one = snapshot([big])
        if one.entries[str(big.resolve())].digest != digest:
            raise SystemExit("snapshot and hashlib disagree on the big file's digest")
        # Twice the runs (about a second each at full size): a single file is the comparison
        # most easily skewed by one busy moment on a shared machine.
        one_file = round_robin(
            {"loop": lambda: hashlib_loop(big), "ours": lambda: snapshot([big])}, 2 * args.runs + 1
        )
        ref, ours = one_file["loop"], one_file["ours"]
        share = ref / ours
        report(
            f"snapshot at {args.big_mib * MiB / ours / 1e9:.2f} GB/s, hashlib loop at "
            f"{args.big_mib * MiB / ref / 1e9:.2f} GB/s: {share:.0%} of the loop",
            ours,
            ref,
            "target >= 90% of the hashlib loop",
            share >= 0.9,
        )

        # 2. The full tree, nothing cached.
        print("\n2. full tree, nothing cached")
        aides: dict[str, Aide] = {}
        if have_aide:
            aides = {
                "aide --init (default: 1 worker)": Aide(work, root, None),
                f"aide --init (num_workers={cores})": Aide(work, root, cores),
            }
            fns: dict[str, Callable[[], object]] = {}
            for label, aide in aides.items():
                fns[f"ours before {label}"] = lambda: snapshot([root])
                fns[label] = aide.init
            full = round_robin(fns, args.aide_runs)
            ours_full = statistics.median(v for k, v in full.items() if k.startswith("ours"))
        else:
            ours_full = median_of(lambda: snapshot([root]), args.runs)
        cpu, wall = time.process_time(), time.perf_counter()
        snapshot([root])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"  snapshot: {ours_full * 1000:.1f} ms ({total / ours_full / 1e9:.2f} GB/s)")
        print(
            f"  one more run: {cpu * 1000:.0f} ms CPU in {wall * 1000:.0f} ms wall on {cores} "
            f"cores (the small files are hashed beside the big one, which no thread can split)"
        )
        if have_aide:
            for label in aides:
                theirs = full[label]
                report(
                    f"vs {label}: peerguard {theirs / ours_full:.1f}x faster",
                    ours_full,
                    theirs,
                    "target: faster than aide",
                    ours_full < theirs,
                )
        else:
            print("  aide not installed (apt-get install -y aide): comparison skipped")

        # 3. The unchanged tree again, with the previous manifest as stat cache.
        print("\n3. unchanged tree, previous manifest as stat cache")
        # Entries stamped within RACY_WINDOW_NS of a snapshot are hashed again next time (the
        # racy-clean rule); wait until the fresh tree is past that, as a settled store is.
        settle = built_ns + manifest.RACY_WINDOW_NS + 100_000_000 - time.time_ns()
        if settle > 0:
            time.sleep(settle / 1e9)
        previous: Manifest = snapshot([root])
        walk_times: list[float] = []
        ours_times: list[float] = []
        rehashed = 0
        # Interleaved, so that drift on a shared machine hits both sides alike; chained, as a
        # watch loop runs (each snapshot is the next one's cache).
        for _ in range(rescans):
            walk_times.append(timed(lambda: bare_walk(root)))
            start = time.perf_counter()
            current = snapshot([root], previous=previous)
            ours_times.append(time.perf_counter() - start)
            rehashed += sum(
                1 for p, e in current.entries.items() if e is not previous.entries.get(p)
            )
            previous = current
        walk = statistics.median(walk_times)
        ours_re = statistics.median(ours_times)
        print(f"  files re-hashed across all runs: {rehashed}")
        report(
            f"vs bare scandir+lstat walk: {ours_re / walk:.2f}x the walk",
            ours_re,
            walk,
            "target <= 1.5x the walk",
            ours_re <= 1.5 * walk,
        )
        if have_aide:
            check = aides[f"aide --init (num_workers={cores})"]  # aide at its fastest
            check.init()
            theirs = median_of(check.check, args.aide_runs)
            report(
                f"vs aide --check (num_workers={cores}): peerguard {theirs / ours_re:.0f}x faster",
                ours_re,
                theirs,
                "target >= 50x faster than aide --check",
                theirs >= 50 * ours_re,
            )


if __name__ == "__main__":
    main()
