"""Median decision time of ``Guard.check`` at 10, 1,000 and 100,000 declared assets.

Targets (issue: core guard): a structured file-tool call at most 10 us median, a typical shell
command at most 100 us, and at most 1.5x growth from 10 to 100,000 declared assets. The
baseline measured in the same run is a bare ``os.stat`` of the same file, so a reader can tell
a slow machine from a slow guard. Run: ``.venv/bin/python benchmarks/decision_time.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from guard import AssetDecl, AssetKind, Decision, Declarations, Guard, Sink, ToolCall

AGENT = "agent-0"


def build(root: Path, n_assets: int) -> Guard:
    header = json.dumps({"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}).encode()
    weights = root / "hosts/srv-a/models/agent-1/model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    (root / "hosts/srv-a/data").mkdir(parents=True)
    (root / "hosts/srv-a/data/report.txt").write_text("quarterly numbers\n")
    (root / "hosts/srv-b").mkdir(parents=True)
    assets = []
    for i in range(n_assets):
        # Half per-agent model folders under a wildcard host, half per-agent file patterns.
        if i % 2:
            assets.append(
                AssetDecl(
                    glob=f"hosts/*/models/agent-{i}/**", kind=AssetKind.WEIGHTS, owner=f"agent-{i}"
                )
            )
        else:
            assets.append(
                AssetDecl(
                    glob=f"hosts/*/data/agent_{i}_*", kind=AssetKind.WEIGHTS, owner=f"agent-{i}"
                )
            )
    return Guard(
        root=root,
        hosts={"srv-a": str(root / "hosts/srv-a"), "srv-b": str(root / "hosts/srv-b")},
        declarations=Declarations(
            agents=[f"agent-{i}" for i in range(min(n_assets, 50))], assets=assets
        ),
        sinks=[Sink()],
    )


COPY = "structured copy_file (deny)"
READ = "structured read_file (allow)"
COPY_FULL = "  copy_file, hash and reason read"
READ_FULL = "  read_file, hash and reason read"


def _read_all(decision: Decision) -> tuple[str, str]:
    return decision.args_hash, decision.reason


def median_us(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(min(200, repeat)):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return statistics.median(samples) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3000)
    parser.add_argument("--sizes", default="10,1000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    calls = {
        COPY: ToolCall(
            agent=AGENT, tool="copy_file",
            args={"src": "hosts/srv-a/models/agent-1/model.safetensors", "dst": "hosts/srv-a/data/x"},
        ),
        READ: ToolCall(agent=AGENT, tool="read_file", args={"path": "hosts/srv-a/data/report.txt"}),
        "shell scp host to host (deny)": ToolCall(
            agent=AGENT, tool="shell",
            args={"command": "scp -o StrictHostKeyChecking=no srv-a:models/agent-1/model.safetensors srv-b:/data/"},
        ),
        "shell ls -la (allow)": ToolCall(agent=AGENT, tool="shell", args={"command": "ls -la hosts/srv-a/data"}),
    }  # fmt: skip
    order = [COPY, COPY_FULL, READ, READ_FULL, *[c for c in calls if c not in (COPY, READ)]]
    results: dict[str, dict[int, float]] = {name: {} for name in order}
    baseline: dict[int, float] = {}
    # Build every world first, then measure them round-robin in short batches, so that the
    # machine's drift (other load, clock frequency, caches) falls on every size alike.
    tmps = {n: tempfile.TemporaryDirectory() for n in sizes}
    guards = {}
    for n in sizes:
        t0 = time.perf_counter()
        guards[n] = build(Path(tmps[n].name), n)
        print(f"{n:>7} declared assets: guard built in {time.perf_counter() - t0:.2f} s")
    samples: dict[tuple[str, int], list[float]] = {}
    rounds = 10
    batch = max(1, args.repeat // rounds)
    for _ in range(rounds):
        for n in sizes:
            stat_path = str(Path(tmps[n].name) / "hosts/srv-a/data/report.txt")
            samples.setdefault(("stat", n), []).append(
                median_us(lambda p=stat_path: os.stat(p), batch)  # type: ignore[misc]
            )
            for name, call in calls.items():
                g = guards[n]
                samples.setdefault((name, n), []).append(
                    median_us(lambda c=call, g=g: g.check(c), batch)  # type: ignore[misc]
                )
            # A decision hashes the call's arguments and words an allow's reason only when
            # they are read (an approval or a record needs them): the same calls with both read.
            for name, call in ((COPY_FULL, calls[COPY]), (READ_FULL, calls[READ])):
                g = guards[n]
                samples.setdefault((name, n), []).append(
                    median_us(lambda c=call, g=g: _read_all(g.check(c)), batch)  # type: ignore[misc]
                )
    for n in sizes:
        baseline[n] = statistics.median(samples[("stat", n)])
        for name in results:
            results[name][n] = statistics.median(samples[(name, n)])
        tmps[n].cleanup()
    print()
    print(
        f"{'median decision time (us)':34}" + "".join(f"{n:>12,}" for n in sizes) + f"{'growth':>9}"
    )
    print(f"{'baseline: os.stat of one file':34}" + "".join(f"{baseline[n]:>12.2f}" for n in sizes))
    for name, per in results.items():
        growth = per[sizes[-1]] / per[sizes[0]]
        print(f"{name:34}" + "".join(f"{per[n]:>12.2f}" for n in sizes) + f"{growth:>8.2f}x")
    print()
    print("targets: structured <= 10 us, shell <= 100 us, growth 10 -> 100,000 assets <= 1.5x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
