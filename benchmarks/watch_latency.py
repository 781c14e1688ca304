"""Tamper-to-alert latency of the live watch (target: p99 under 1 s).

Each round changes one protected file outside the guard (modify in place, copy to a new name,
rename, delete, or ``sed -i`` on an oversight config) and measures the time until the watch's
alert reaches a sink. Both backends are measured: inotify, and the polling fallback used when
the inotify watch limit is exhausted. Run: ``.venv/bin/python benchmarks/watch_latency.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from guard import AssetDecl, AssetKind, Declarations, Guard, Sink
from guard.testing import write_safetensors
from guard.types import Alert
from guard.watch import Watch


class Clock(Sink):
    """Notes when each alert arrives."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.at = 0.0

    def on_alert(self, alert: Alert) -> None:
        if not self.event.is_set():
            self.at = time.perf_counter()
            self.event.set()


def tamper(root: Path, i: int) -> None:
    kind = i % 5
    target = root / f"models/w{i}.safetensors"
    if kind == 0:
        with open(target, "r+b") as fh:
            fh.seek(200)
            fh.write(os.urandom(16))
    elif kind == 1:
        shutil.copyfile(target, root / f"scratch/copy{i}.bin")
    elif kind == 2:
        os.rename(target, root / f"scratch/moved{i}.bin")
    elif kind == 3:
        target.unlink()
    else:
        subprocess.run(["sed", "-i", "s/true/false/", str(root / f"config/c{i}.yaml")], check=True)


def measure(rounds: int, polling: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "scratch").mkdir()
        (root / "config").mkdir()
        for i in range(rounds):
            write_safetensors(root / f"models/w{i}.safetensors", 4096, seed=i)
            (root / f"config/c{i}.yaml").write_text("shutdown_enabled: true\n")
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
        latencies = []
        with Watch(guard, force_polling=polling, polling_interval=0.25):
            time.sleep(0.3)
            for i in range(rounds):
                clock.event.clear()
                started = time.perf_counter()
                tamper(root, i)
                if clock.event.wait(5):
                    latencies.append(clock.at - started)
                else:
                    latencies.append(float("inf"))
                time.sleep(0.05)
        return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    print(f"{'backend':10}{'rounds':>8}{'median ms':>12}{'p99 ms':>10}{'max ms':>10}{'missed':>8}")
    for polling in (False, True):
        lat = measure(args.rounds, polling)
        missed = sum(1 for x in lat if x == float("inf"))
        seen = [x for x in lat if x != float("inf")] or [float("inf")]
        print(
            f"{'polling' if polling else 'inotify':10}{len(lat):>8}{statistics.median(seen) * 1e3:>12.1f}"
            f"{pct(seen, 0.99) * 1e3:>10.1f}{max(seen) * 1e3:>10.1f}{missed:>8}"
        )
    print("target: p99 under 1000 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
