"""Tamper-to-alert latency of the live watch (target: p99 under 1 s, and no change unalerted).

Six kinds of change to protected files, each made ``--rounds`` times outside the guard,
interleaved, one every ``--gap`` seconds: modify weights in place, copy weights to a new name,
rename weights, delete weights, ``sed -i`` on an oversight config, and delete weights then
write the same bytes back. Latency is from just before the change to the first alert that
names the changed file (the new name, for a copy). Each backend (inotify, and the polling
fallback) is measured quietly and during a burst: a separate process creating, writing and
deleting files in the watched root at ``--burst-rate`` files a second.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/watch_latency.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from guard import AssetDecl, AssetKind, Declarations, Guard, Sink
from guard.types import Alert
from guard.watch import Watch

KINDS = ("modify", "copy", "rename", "delete", "sed -i", "delete+recreate")

BURST = """
import os, sys, time
folder, rate = sys.argv[1], float(sys.argv[2])
made, start = 0, time.monotonic()
while not os.path.exists(os.path.join(folder, "..", "stop-burst")):
    path = os.path.join(folder, f"b{made % 1000}.tmp")
    with open(path, "w") as fh:
        fh.write("background " * 10)
    os.unlink(path)
    made += 1
    if rate and made % 20 == 0:
        ahead = start + made / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
print(made / (time.monotonic() - start))
"""


class Clock(Sink):
    """Notes when the first alert naming each changed file arrives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: dict[str, tuple[str, float]] = {}  # needle -> (kind, started)
        self.latencies: dict[str, list[float]] = {k: [] for k in KINDS}

    def expect(self, needle: str, kind: str, started: float) -> None:
        """Wait for an alert containing ``needle``."""
        with self._lock:
            self.pending[needle] = (kind, started)

    def on_alert(self, alert: Alert) -> None:
        """Match the alert against the changes still waiting for one."""
        now = time.perf_counter()
        with self._lock:
            for needle in [n for n in self.pending if n in alert.message]:
                kind, started = self.pending.pop(needle)
                self.latencies[kind].append(now - started)


def weights(path: Path, i: int) -> None:
    """A 4 KiB safetensors file whose bytes no other file in the run has."""
    payload = 4096 - 8 - 80
    meta = {"w": {"dtype": "U8", "shape": [payload], "data_offsets": [0, payload]}}
    header = json.dumps(meta).encode().ljust(80)
    body = i.to_bytes(8, "little") + os.urandom(payload - 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + body)


def setup(root: Path, rounds: int) -> None:
    """The files ``rounds`` changes of each kind need, each changed once."""
    for folder in ("models", "config", "scratch/burst"):
        (root / folder).mkdir(parents=True)
    for i in range(rounds):
        for prefix in ("m", "k", "r", "d", "x"):
            weights(root / f"models/{prefix}{i}.safetensors", i)
        (root / f"config/c{i}.yaml").write_text("shutdown_enabled: true\n")


def change(root: Path, kind: str, i: int) -> str:
    """Make change ``kind`` number ``i``; return the path its alert must name."""
    models = root / "models"
    if kind == "modify":
        target = models / f"m{i}.safetensors"
        with open(target, "r+b") as fh:
            fh.seek(200)
            fh.write(os.urandom(16))
    elif kind == "copy":
        target = root / f"scratch/copy{i}.bin"
        shutil.copyfile(models / f"k{i}.safetensors", target)
    elif kind == "rename":
        target = models / f"r{i}.safetensors"
        os.rename(target, root / f"scratch/moved{i}.bin")
    elif kind == "delete":
        target = models / f"d{i}.safetensors"
        target.unlink()
    elif kind == "sed -i":
        target = root / f"config/c{i}.yaml"
        subprocess.run(["sed", "-i", "s/true/false/", str(target)], check=True)
    else:
        target = models / f"x{i}.safetensors"
        data = target.read_bytes()
        target.unlink()
        target.write_bytes(data)
    return str(target)


def measure(
    rounds: int, *, polling: bool, burst_rate: float | None, gap: float, settle: float
) -> tuple[dict[str, list[float]], dict[str, int], float | None]:
    """One scenario; returns latencies and unalerted counts by kind, and the burst's rate."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        setup(root, rounds)
        clock = Clock()
        guard = Guard(
            root=root,
            declarations=Declarations(
                assets=[
                    AssetDecl(glob="models/*", kind=AssetKind.WEIGHTS, owner="peer"),
                    AssetDecl(glob="config/*", kind=AssetKind.CONFIG, owner="peer"),
                ]
            ),
            sinks=[clock],
        )
        burst: subprocess.Popen[str] | None = None
        with Watch(guard, force_polling=polling):
            if burst_rate is not None:
                burst = subprocess.Popen(
                    [sys.executable, "-c", BURST, str(root / "scratch/burst"), str(burst_rate)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            time.sleep(0.5)
            for n in range(rounds * len(KINDS)):
                kind, i = KINDS[n % len(KINDS)], n // len(KINDS)
                started = time.perf_counter()
                needle = _needle(root, kind, i)
                clock.expect(needle + " ", kind, started)
                change(root, kind, i)
                time.sleep(gap)
            end = time.monotonic() + settle
            while clock.pending and time.monotonic() < end:
                time.sleep(0.05)
            rate = None
            if burst is not None:
                (root / "scratch/stop-burst").touch()
                out, _ = burst.communicate(timeout=30)
                rate = float(out.strip() or 0)
        missed = dict.fromkeys(KINDS, 0)
        for kind, _started in clock.pending.values():
            missed[kind] += 1
        return clock.latencies, missed, rate


def _needle(root: Path, kind: str, i: int) -> str:
    """The path the alert for change ``kind`` number ``i`` names."""
    paths: dict[str, Callable[[], Path]] = {
        "modify": lambda: root / f"models/m{i}.safetensors",
        "copy": lambda: root / f"scratch/copy{i}.bin",
        "rename": lambda: root / f"models/r{i}.safetensors",
        "delete": lambda: root / f"models/d{i}.safetensors",
        "sed -i": lambda: root / f"config/c{i}.yaml",
        "delete+recreate": lambda: root / f"models/x{i}.safetensors",
    }
    return str(paths[kind]())


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    """Measure every backend and load; exit 1 when a p99 reaches 1 s or a change is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="changes of each kind")
    parser.add_argument("--gap", type=float, default=0.02, help="seconds between changes")
    parser.add_argument(
        "--burst-rate", type=float, default=2000, help="files/s made and deleted (0: flat out)"
    )
    parser.add_argument("--settle", type=float, default=10.0, help="wait for late alerts (s)")
    args = parser.parse_args()
    print(
        f"{'backend':9}{'load':16}{'change':17}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'unalerted':>11}"
    )
    worst = 0.0
    unalerted = 0
    for polling in (False, True):
        for burst in (False, True):
            lat, missed, rate = measure(
                args.rounds,
                polling=polling,
                burst_rate=args.burst_rate if burst else None,
                gap=args.gap,
                settle=args.settle,
            )
            load = f"burst {rate:,.0f}/s" if rate is not None else "quiet"
            for kind in KINDS:
                seen = lat[kind] or [float("inf")]
                worst = max(worst, pct(seen, 0.99))
                unalerted += missed[kind]
                print(
                    f"{'polling' if polling else 'inotify':9}{load:16}{kind:17}"
                    f"{len(lat[kind]) + missed[kind]:>5}{statistics.median(seen) * 1e3:>9.1f}"
                    f"{pct(seen, 0.99) * 1e3:>9.1f}{max(seen) * 1e3:>9.1f}{missed[kind]:>11}"
                )
    print(
        f"target: p99 under 1000 ms, none unalerted; worst p99 {worst * 1e3:.1f} ms, "
        f"{unalerted} unalerted"
    )
    return 0 if worst < 1.0 and unalerted == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
