"""Verification of a 2 GiB tree with the chunk index, against the current verifier in one run.

The tree (in a fresh temp dir, page cache warm): 4 peer weights files of 256 MiB, real
safetensors with random tensor bytes, declared as the peer's weights (``models/peer/**``), and
4,996 other files of about 1 GiB in all (random sizes; JSON, YAML, JSONL, logs and text, and
random binaries) in a few hundred folders.

The agent's run, applied between the baseline and the verification by renames (so every round
sees the same bytes, already in the page cache): 100 new or changed files of about 200 MiB,
mostly ordinary, and one peer weights file deleted, all of it claimed. Three of the files hold a
part of a peer's tensor bytes:

* 1 MiB of the deleted file's tensor bytes, at an odd offset in a new 20 MiB file of random bytes;
* a gzip of the base64 of 256 KiB of another peer file's;
* an existing binary file changed, 512 KiB of a third one's put in at an odd offset.

Measured, each verifier in its own subprocess (so that its peak RSS is its own), the two run in
turn round after round, medians:

* ``Verifier(fingerprints=False)``, the current verifier: whole copies only;
* ``Verifier(fingerprints=True)``: with the chunk index of the protected weights.

For each: ``baseline()`` (snapshot of the roots, and the chunk index), ``verify()`` (snapshot
again with the baseline as stat cache, then the checks: every new or changed file, and every
folder they are in read as one file, through the decoders and, with the index, the fingerprint
scan; and every structured config of the baseline parsed again for oversight switches), peak
RSS, and the partial copies found (``partial-copy`` evidence): the current verifier must find
none of them, the new one all three, with every other piece of evidence the same. The time of
``Guard()`` (which finds and hashes the protected files) is shown, outside both.

In the same run, on one peer file (256 MiB; 32 MiB with ``--small``), page cache warm: hashlib
SHA-256 into a reusable buffer, building a :class:`~guard.fingerprints.FingerprintIndex` of it,
and scanning a candidate of the same size that holds it shifted by an odd number of bytes;
building and scanning must each run at least half as fast as SHA-256 (the measurement of
``benchmarks/fingerprints.py``, here on the tree's own file).

Exits 1 when a verifier finds the wrong partial copies or a ratio to SHA-256 is under 0.5.
Run: ``.venv/bin/python benchmarks/verify_tree.py`` (about 2.3 GiB of disk under ``--dir``,
about 2 minutes on 2 cores); ``--small`` for a 256 MiB tree of 1,000 files. From another
checkout of the repository, put it first on ``PYTHONPATH``: the children import the same
``guard`` as the parent.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import guard
from guard import AssetDecl, AssetKind, Claim, Declarations, Guard
from guard.manifest import RACY_WINDOW_NS, snapshot
from guard.verify import Verifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fingerprints import build, sha256_loop, timed

MiB = 1 << 20
TARGET = 0.5  # of SHA-256's throughput, for building the index and for scanning
SHIFT = 12_345  # bytes in front of the copy in the scanned candidate
PEER = "models/peer"
DECLARATIONS = Declarations(
    agents=["ops", "peer"],
    assets=[AssetDecl(glob=f"{PEER}/**", kind=AssetKind.WEIGHTS, owner="peer")],
)
Result = dict[str, Any]  # what a child reports
VARIANTS = {"current": False, "fingerprints": True}  # name -> Verifier(fingerprints=...)


@dataclass(frozen=True)
class Scale:
    peer_files: int
    peer_mib: int
    others: int
    others_mib: int
    folders: int
    run_files: int  # new or changed, the three with parts included
    run_mib: int
    host_mib: int  # the new file that holds 1 MiB of the deleted weights


FULL = Scale(4, 256, 4996, 1024, 300, 100, 200, 20)
SMALL = Scale(4, 32, 996, 128, 60, 100, 32, 4)

# YAML files stay as small as configs are: verify() parses every structured config of the
# baseline again (pure-Python YAML, a few MB/s), so YAML files of 256 KiB would cost seconds.
YAML_MAX = 16 * 1024
TEXT = (".json", ".yaml", ".jsonl", ".log", ".txt", ".md", ".csv")
BINARY = (".bin", ".npy", ".pt", ".parquet", ".arrow", ".dat", ".pkl")
WORDS = (
    "the", "model", "loss", "step", "epoch", "eval", "score", "agent", "tool", "call",
    "shell", "file", "weights", "shard", "token", "batch", "learning", "rate", "warmup",
    "decay", "gradient", "norm", "clip", "checkpoint", "resume", "seed", "config", "run",
    "metric", "accuracy", "reward", "policy", "value", "sample", "prompt", "answer",
    "correct", "item", "dataset", "split", "train", "test", "validation", "cache",
    "write", "read", "copy", "move", "delete", "upload", "host", "node", "gpu", "memory",
    "time", "seconds", "ok",
)  # fmt: skip


# -- the tree


def chunked_random(out: Path, size: int) -> None:
    with open(out, "wb") as f:
        left = size
        while left > 0:
            f.write(os.urandom(min(MiB, left)))
            left -= MiB


def write_safetensors(path: Path, mib: int) -> int:
    """A safetensors file of 16 MiB bf16 tensors with random bytes; returns the header end."""
    n = mib // 16
    tensor = 16 * MiB
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for i in range(n):
        header[f"model.layers.{i}.mlp.weight"] = {
            "dtype": "BF16",
            "shape": [4096, 2048],
            "data_offsets": [i * tensor, (i + 1) * tensor],
        }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for _ in range(n * 16):
            f.write(os.urandom(MiB))
    return 8 + len(raw)


def tensor_bytes(path: Path, offset: int, size: int) -> bytes:
    """``size`` tensor bytes of a safetensors file from ``offset`` in its tensor data."""
    with open(path, "rb") as f:
        header = int.from_bytes(f.read(8), "little")
        f.seek(8 + header + offset)
        return f.read(size)


class Text:
    """Pseudo-text from a fixed vocabulary, cheap to slice in any length."""

    def __init__(self, rnd: random.Random) -> None:
        words = [*WORDS, *(f"{w}_{i}" for w in WORDS[:20] for i in range(20))]
        lines = []
        for _ in range(20_000):
            lines.append(" ".join(rnd.choices(words, k=rnd.randint(4, 16))))
        self.corpus = "\n".join(lines) + "\n"
        self.rnd = rnd

    def slice(self, n: int, *, oneline: bool = False) -> str:
        at = self.rnd.randrange(len(self.corpus))
        text = self.corpus[at : at + n]
        while len(text) < n:
            text += self.corpus[: n - len(text)]
        return text.replace("\n", " ") if oneline else text

    def content(self, suffix: str, size: int, seq: int) -> bytes:
        """A file of about ``size`` bytes that parses as its suffix says."""
        if suffix == ".json":
            notes = [self.slice(200, oneline=True) for _ in range(max(1, size // 210))]
            doc = {"name": f"cfg-{seq}", "seed": seq, "lr": 3e-4, "notes": notes}
            return json.dumps(doc, indent=1).encode()
        if suffix == ".yaml":
            n = min(size, YAML_MAX) // 72 + 1
            lines = [f'key_{j}: "{self.slice(60, oneline=True)}"' for j in range(n)]
            return ("\n".join(lines) + "\n").encode()
        if suffix == ".jsonl":
            rows = []
            for j in range(size // 150 + 1):
                item = {"id": j, "prompt": self.slice(100, oneline=True), "correct": j % 3 > 0}
                rows.append(json.dumps(item))
            return ("\n".join(rows) + "\n").encode()
        if suffix == ".csv":
            rows = [f"{j},{self.slice(40, oneline=True)},{j * 0.5}" for j in range(size // 55 + 1)]
            return ("\n".join(rows) + "\n").encode()
        return self.slice(size).encode()


def sizes_summing_to(rnd: random.Random, n: int, total: int, low: int, high: int) -> list[int]:
    """``n`` log-uniform sizes in ``[low, high]`` scaled to sum to about ``total``."""
    raw = [int(low * (high / low) ** rnd.random()) for _ in range(n)]
    scale = total / sum(raw)
    return [max(1, int(s * scale)) for s in raw]


def write_file(path: Path, text: Text, size: int, seq: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix in BINARY:
        chunked_random(path, size)
    elif suffix == ".gz":
        path.write_bytes(gzip.compress(text.content(".log", size, seq), compresslevel=6))
    else:
        path.write_bytes(text.content(suffix, size, seq))


def build_tree(work: Path, scale: Scale, seed: int) -> dict[str, list[str]]:
    """Write the tree under ``work/tree`` and the agent's run under ``work/staged``; return
    the plan of the run (what to move where), also written to ``work/plan.json``."""
    rnd = random.Random(seed)
    tree, staged = work / "tree", work / "staged"
    peers = []
    for i in range(scale.peer_files):
        peer = tree / PEER / f"model-{i + 1:05d}-of-{scale.peer_files:05d}.safetensors"
        peer.parent.mkdir(parents=True, exist_ok=True)
        write_safetensors(peer, scale.peer_mib)
        peers.append(peer)

    text = Text(rnd)
    tops = ["datasets", "logs", "checkpoints/ops", "runs", "configs", "src", "evals", "cache"]
    folders = [
        f"{rnd.choice(tops)}/g{i // 10:02d}/f{i:03d}" + ("/sub" if i % 7 == 0 else "")
        for i in range(scale.folders)
    ]
    # A third of the files (by count) are text of up to 256 KiB; binaries take the rest.
    n_text = scale.others // 3
    text_sizes = [int(200 * (256 * 1024 / 200) ** rnd.random()) for _ in range(n_text)]
    left = scale.others_mib * MiB - sum(text_sizes)
    bin_sizes = sizes_summing_to(rnd, scale.others - n_text, left, 4096, 16 * MiB)
    others: list[str] = []
    for seq, size in enumerate(text_sizes + bin_sizes):
        suffix = rnd.choice(TEXT) if seq < n_text else rnd.choice(BINARY)
        rel = f"{rnd.choice(folders)}/file-{seq:05d}{suffix}"
        write_file(tree / rel, text, size, seq)
        others.append(rel)

    # The agent's run. Parts of the peers' tensor bytes, each from a different file: the
    # last one is the file the run deletes (its part shows the index outlives the file).
    deleted = peers[-1].relative_to(tree).as_posix()
    host = "scratch/cache/blob-0007.bin"
    host_path = staged / host
    host_path.parent.mkdir(parents=True)
    with open(host_path, "wb") as f:
        front = scale.host_mib * MiB // 3 | 1  # an odd offset
        f.write(os.urandom(front))
        f.write(tensor_bytes(peers[-1], 3 * MiB + 12_345, MiB))
        f.write(os.urandom(scale.host_mib * MiB - MiB - front))
    dump = "runs/agent-run/state/snapshot.b64.gz"
    (staged / dump).parent.mkdir(parents=True)
    part = tensor_bytes(peers[1], 1_234_567, 256 * 1024)
    (staged / dump).write_bytes(gzip.compress(base64.b64encode(part)))
    mid = MiB // 2
    edited = next(r for r in others if r.endswith(BINARY) and (tree / r).stat().st_size > mid)
    old = (tree / edited).read_bytes()
    (staged / edited).parent.mkdir(parents=True, exist_ok=True)
    part = tensor_bytes(peers[2], 77_777, 512 * 1024)
    (staged / edited).write_bytes(old[: mid + 1] + part + old[mid + 1 :])
    planted = [host, dump, edited]

    # The ordinary rest: some existing files (of up to 4 MiB) changed in place, new files in
    # new folders and in existing ones, a few gzipped logs among them.
    ordinary = scale.run_files - len(planted)
    small = [r for r in others if r != edited and (tree / r).stat().st_size <= 4 * MiB]
    changed = [edited, *rnd.sample(small, ordinary // 6)]
    new_folders = ["scratch/cache", "scratch/tmp", "runs/agent-run/ckpt", "runs/agent-run/logs"]
    for seq, rel in enumerate(changed[1:], start=200_000):
        size = (tree / rel).stat().st_size
        write_file(staged / rel, text, size + rnd.randint(1, 4096), seq)
    left = scale.run_mib * MiB - sum((staged / r).stat().st_size for r in [*planted, *changed])
    n_new = ordinary - (len(changed) - 1)
    created = [host, dump]
    binaries: list[tuple[str, int, int]] = []
    for seq, size in enumerate(sizes_summing_to(rnd, n_new, left, 2048, 8 * MiB), start=100_000):
        kind = rnd.random()
        if size <= 512 * 1024 and kind < 0.5:
            suffix = rnd.choice(TEXT)
        else:
            suffix = ".gz" if kind > 0.9 else rnd.choice(BINARY)
        place = rnd.choice(new_folders) if seq % 2 else rnd.choice(folders)
        rel = f"{place}/new-{seq}{'.log' if suffix == '.gz' else ''}{suffix}"
        created.append(rel)
        if suffix in BINARY:
            binaries.append((rel, size, seq))
        else:
            write_file(staged / rel, text, size, seq)
            left -= (staged / rel).stat().st_size
    # Text comes out smaller than drawn (YAML capped, logs gzipped): binaries make up the rest.
    scale_up = left / sum(size for _r, size, _s in binaries)
    for rel, size, seq in binaries:
        write_file(staged / rel, text, int(size * scale_up), seq)

    new_dirs = sorted(
        {p.as_posix() for r in created for p in Path(r).parents if not (tree / p).exists()} - {"."},
        key=lambda d: d.count("/"),
    )
    plan = {
        "deleted": [deleted],
        "changed": changed,
        "created": created,
        "planted": planted,
        "new_dirs": new_dirs,
    }
    (work / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan


def moves(work: Path, plan: dict[str, list[str]]) -> list[tuple[Path, Path]]:
    """The renames that turn the tree into the tree after the agent's run, in order."""
    tree, staged, aside = work / "tree", work / "staged", work / "aside"
    out = [(tree / rel, aside / rel) for rel in plan["deleted"]]
    for rel in plan["changed"]:
        out += [(tree / rel, aside / rel), (staged / rel, tree / rel)]
    out += [(staged / rel, tree / rel) for rel in plan["created"]]
    return out


def apply_run(work: Path, plan: dict[str, list[str]]) -> None:
    for rel in plan["new_dirs"]:
        (work / "tree" / rel).mkdir()
    for src, dst in moves(work, plan):
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)


def undo_run(work: Path, plan: dict[str, list[str]]) -> None:
    """Put the tree back as before the run; safe to call again, or on a tree never changed."""
    for src, dst in reversed(moves(work, plan)):
        if dst.exists() and not src.exists():
            os.rename(dst, src)
    for rel in reversed(plan["new_dirs"]):
        path = work / "tree" / rel
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def looked_through(work: Path, plan: dict[str, list[str]]) -> tuple[int, int, int]:
    """What verify() decodes: the bytes of the new or changed files, and the folders they are
    in with the bytes of those folders' files read as one (a split), two files or more."""
    tree, staged = work / "tree", work / "staged"
    run = {*plan["created"], *plan["changed"]}
    files = sum((staged / rel).stat().st_size for rel in run)
    folders = {os.path.dirname(rel) for rel in run}
    joined = 0
    for folder in folders:
        names = {rel for rel in run if os.path.dirname(rel) == folder}
        if (tree / folder).is_dir():
            names |= {f"{folder}/{p.name}" for p in (tree / folder).iterdir() if p.is_file()}
        if len(names) >= 2:
            joined += sum(((staged if r in run else tree) / r).stat().st_size for r in names)
    return files, len(folders), joined


def read_all(root: Path) -> int:
    """Read every file below ``root`` once (a warm page cache); the bytes read."""
    buf = bytearray(MiB)
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    total += n
    return total


# -- one verifier, in its own process


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(variant: str, work: Path, workers: int | None) -> None:
    """Baseline, the agent's run, verification; one JSON line of results on stdout."""
    started = peak_mib()
    plan = json.loads((work / "plan.json").read_text())
    root = work / "tree"
    t0 = time.perf_counter()
    g = Guard(root=root, declarations=DECLARATIONS)
    t1 = time.perf_counter()
    verifier = Verifier(g, workers=workers, fingerprints=VARIANTS[variant])
    base = verifier.baseline()
    t2 = time.perf_counter()
    after_baseline = peak_mib()
    claim = Claim(deleted=plan["deleted"], modified=plan["changed"], created=plan["created"])
    apply_run(work, plan)
    try:
        t3 = time.perf_counter()
        # What verify(base, claim) does, in two steps to show where the time goes.
        now = snapshot(g.roots, previous=base.manifest, workers=workers)
        t4 = time.perf_counter()
        verdict = verifier.verify(base, claim, after=now)
        t5 = time.perf_counter()
    finally:
        undo_run(work, plan)
    tree = os.path.realpath(root)
    result = {
        "setup": t1 - t0,
        "baseline": t2 - t1,
        "verify": t5 - t3,
        "snapshot": t4 - t3,
        "checks": t5 - t4,
        "rss_start": started,
        "rss_baseline": after_baseline,
        "rss_peak": peak_mib(),
        "chunks": len(base.fingerprints),
        "evidence": sorted([e.check, os.path.relpath(e.path, tree)] for e in verdict.evidence),
    }
    print(json.dumps(result))


def run_child(variant: str, work: Path, workers: int | None) -> Result:
    # The children import the same guard package as this process (a worktree's, say).
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(guard.__file__).parent.parent), env.get("PYTHONPATH")) if p
    )
    cmd = [sys.executable, __file__, "--child", variant, "--work", str(work)]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    undo_run(work, json.loads((work / "plan.json").read_text()))  # in case it died half-way
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed ({proc.returncode}):\n{proc.stderr}")
    result: Result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- SHA-256 against the index, in this process


def speeds(work: Path, peer: Path, rounds: int) -> dict[str, float]:
    """Median seconds of SHA-256, building and scanning, over ``peer`` and a shifted copy."""
    candidate = work / "candidate.bin"
    size = peer.stat().st_size
    with open(candidate, "wb") as out, open(peer, "rb") as src:
        out.write(os.urandom(SHIFT))
        left = size - SHIFT
        while left > 0 and (block := src.read(min(MiB, left))):
            out.write(block)
            left -= len(block)
    sha256_loop(candidate)  # warm
    index = build(peer)
    [match] = index.scan_file(candidate)
    if match.matched_bytes < size - SHIFT - 64 * 1024 - 4 * index.max_size:
        raise SystemExit(f"the shifted copy was not found whole: {match}")
    times: dict[str, list[float]] = {"sha256": [], "build": [], "scan": []}
    for _ in range(rounds):
        times["sha256"].append(timed(lambda: sha256_loop(peer)))
        times["build"].append(timed(lambda: build(peer)))
        times["scan"].append(timed(lambda: index.scan_file(candidate)))
    candidate.unlink()
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- the report


def med(results: list[Result], key: str) -> float:
    return statistics.median(float(r[key]) for r in results)


def spread(results: list[Result], key: str) -> str:
    values = [float(r[key]) for r in results]
    return f"{min(values):.2f}-{max(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/var/tmp", help="parent of the temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its tree")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of both verifiers")
    parser.add_argument("--small", action="store_true", help="256 MiB tree of 1,000 files")
    parser.add_argument("--workers", type=int, default=None, help="hashing threads (all cores)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work, args.workers)
        return 0

    scale = SMALL if args.small else FULL
    work = Path(tempfile.mkdtemp(prefix="peerguard-verify-", dir=args.dir))
    try:
        return measure(work, scale, args)
    finally:
        if args.keep:
            print(f"\nkept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, scale: Scale, args: argparse.Namespace) -> int:
    print(f"guard: {Path(guard.__file__).parent}, {os.cpu_count()} cores, tree in {work}")
    t = time.perf_counter()
    plan = build_tree(work, scale, args.seed)
    built_ns = time.time_ns()
    os.sync()  # no writeback of the build in the first round
    tree_bytes = read_all(work / "tree")
    run_bytes = read_all(work / "staged")
    files = sum(len(f) for _d, _s, f in os.walk(work / "tree"))
    folders = sum(1 for _ in os.walk(work / "tree"))
    planted: list[str] = plan["planted"]
    n_run = len(plan["created"]) + len(plan["changed"])
    print(
        f"tree: {tree_bytes / MiB:,.0f} MiB in {files:,} files and {folders} folders "
        f"({scale.peer_files} peer weights files of {scale.peer_mib} MiB); built and read "
        f"in {time.perf_counter() - t:.0f} s"
    )
    print(
        f"run:  {n_run} new or changed files, {run_bytes / MiB:,.0f} MiB "
        f"({len(plan['created'])} new, {len(plan['changed'])} changed), "
        f"1 weights file deleted; {len(planted)} hold a part of a peer's tensor bytes"
    )
    files_bytes, n_folders, joined = looked_through(work, plan)
    print(
        f"      verify() decodes {(files_bytes + joined) / MiB:,.0f} MiB: the new or changed "
        f"files, and the {n_folders} folders they are in read whole ({joined / MiB:,.0f} MiB)"
    )
    settle = built_ns + RACY_WINDOW_NS + 100_000_000 - time.time_ns()
    if settle > 0:  # past the racy-clean window, as a settled tree is
        time.sleep(settle / 1e9)

    results: dict[str, list[Result]] = {name: [] for name in VARIANTS}
    for r in range(args.repeat):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            results[name].append(run_child(name, work, args.workers))
        print(
            f"  round {r + 1}: "
            + ", ".join(
                f"{n} baseline {float(results[n][-1]['baseline']):.2f} s "
                f"verify {float(results[n][-1]['verify']):.2f} s"
                for n in VARIANTS
            ),
            flush=True,
        )
    peer = work / "tree" / PEER / f"model-00001-of-{scale.peer_files:05d}.safetensors"
    rounds = max(5, 2 * args.repeat - 1, 512 * MiB // peer.stat().st_size)  # small: more
    speed = speeds(work, peer, rounds)

    cur, fp = results["current"], results["fingerprints"]
    rows = [
        ("Guard() (finds and hashes the assets)", "setup", "s"),
        ("baseline()", "baseline", "s"),
        ("verify()", "verify", "s"),
        ("  snapshot after the run", "snapshot", "s"),
        ("  the checks (decoders, scan)", "checks", "s"),
        ("RSS after imports", "rss_start", "MiB"),
        ("peak RSS by the end of baseline()", "rss_baseline", "MiB"),
        ("peak RSS", "rss_peak", "MiB"),
    ]
    print(f"\nmedians of {args.repeat} rounds, each verifier in its own process\n")
    print(f"  {'':38} {'current':>9} {'fingerprints':>13} {'ratio':>7}   range (current; fp)")
    for label, key, unit in rows:
        a, b = med(cur, key), med(fp, key)
        fmt = ".2f" if unit == "s" else ".0f"
        print(
            f"  {label + ' (' + unit + ')':38} {a:9{fmt}} {b:13{fmt}} {b / a:6.2f}x   "
            f"{spread(cur, key)}; {spread(fp, key)}"
        )
    print(f"  {'chunks indexed':38} {med(cur, 'chunks'):9.0f} {med(fp, 'chunks'):13,.0f}")

    failed: list[str] = []
    found: dict[str, list[str]] = {}
    rest: dict[str, list[list[str]]] = {}
    for name, runs in results.items():
        evidence: list[list[str]] = runs[-1]["evidence"]
        if any(r["evidence"] != evidence for r in runs):
            failed.append(f"{name}: the evidence differs between rounds")
        found[name] = sorted(p for check, p in evidence if check == "partial-copy")
        rest[name] = [e for e in evidence if e[0] != "partial-copy"]
    print(
        f"  {'partial copies found':38} {len(found['current']):>7}/{len(planted)} "
        f"{len(found['fingerprints']):>11}/{len(planted)}"
    )
    other = Counter(check for check, _p in rest["current"])
    print(f"  other evidence (both): {dict(other) or 'none'}")
    if found["current"]:
        failed.append(f"the current verifier found partial copies: {found['current']}")
    if found["fingerprints"] != sorted(planted):
        failed.append(f"the chunk index found {found['fingerprints']}, not {sorted(planted)}")
    if rest["current"] != rest["fingerprints"]:
        failed.append(f"other evidence differs: {rest['current']} vs {rest['fingerprints']}")

    size = peer.stat().st_size
    print(f"\none {size / MiB:.0f} MiB peer file, medians of {rounds} interleaved rounds\n")
    print(f"  {'':10} {'ms':>9} {'MB/s':>8} {'vs SHA-256':>11}")
    for name, seconds in speed.items():
        ratio = speed["sha256"] / seconds
        verdict = ""
        if name != "sha256":
            verdict = "  met" if ratio >= TARGET else "  NOT MET"
            if ratio < TARGET:
                failed.append(f"{name} at {ratio:.2f}x SHA-256")
        print(
            f"  {name:10} {seconds * 1000:9.1f} {size / seconds / 1e6:8.0f} {ratio:10.2f}x{verdict}"
        )
    print(f"\ntarget: building and scanning each at least {TARGET:.1f}x SHA-256's throughput")
    for problem in failed:
        print(f"FAILED: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
