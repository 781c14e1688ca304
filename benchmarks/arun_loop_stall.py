"""How long ``Guard.arun`` stalls the agent's event loop: offloaded (as shipped) against inline.

An async agent shares one event loop between every coroutine. ``Guard.arun`` decides (a shell
analysis reads scripts) and, after the call, re-hashes what it touched (a copied weights file is
hashed whole). The shipped code runs both in a worker thread; the baseline, measured in the same
run, runs them on the loop, as the code did before. A 1 ms ticker runs beside each call and the
longest gap between its ticks is the stall. Medians over ``--rounds`` calls of each kind,
alternated. Run: ``.venv/bin/python benchmarks/arun_loop_stall.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from guard import AssetDecl, AssetKind, Declarations, Guard, Sink, ToolCall

AGENT = "agent-1"
REAL_TO_THREAD = asyncio.to_thread


def build(root: Path, mib: int) -> Guard:
    header = json.dumps({"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}).encode()
    weights = root / "models/agent-1/model.safetensors"
    weights.parent.mkdir(parents=True)
    with weights.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        block = bytes(range(256)) * 4096
        for _ in range(mib):
            fh.write(block)
    return Guard(
        root=root,
        declarations=Declarations(
            agents=[AGENT],
            assets=[AssetDecl(glob="models/agent-1/**", kind=AssetKind.WEIGHTS, owner=AGENT)],
        ),
        sinks=[Sink()],
    )


async def stall(guard: Guard, call: ToolCall, execute: Callable[[ToolCall], Any]) -> float:
    """The longest gap, in ms, between ticks of a 1 ms ticker while ``arun`` runs."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.005)
    await guard.arun(call, execute)
    done.set()
    await task
    return max(gaps) * 1000


async def inline(fn: Callable[..., Any], /, *args: Any) -> Any:
    """``asyncio.to_thread`` as the code did before: run on the loop itself."""
    return fn(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="size of the weights copied")
    parser.add_argument("--rounds", type=int, default=9)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pg-arun-"))
    try:
        guard = build(root.resolve(), opts.mib)
        src = guard.root + "/models/agent-1/model.safetensors"
        results: dict[str, list[float]] = {"offloaded": [], "inline": []}
        for i in range(opts.rounds * 2):
            dst = f"{guard.root}/models/agent-1/copy-{i}.safetensors"
            call = ToolCall(agent=AGENT, tool="copy_file", args={"src": src, "dst": dst})

            async def execute(c: ToolCall, dst: str = dst) -> None:
                # The tool itself copies in a thread, as a well-behaved async tool does.
                await REAL_TO_THREAD(shutil.copyfile, src, dst)

            kind = "offloaded" if i % 2 == 0 else "inline"
            if kind == "inline":
                with mock.patch("guard.engine.asyncio.to_thread", inline):
                    results[kind].append(asyncio.run(stall(guard, call, execute)))
            else:
                results[kind].append(asyncio.run(stall(guard, call, execute)))
            Path(dst).unlink()
        off = statistics.median(results["offloaded"])
        base = statistics.median(results["inline"])
        print(f"copy of {opts.mib} MiB own weights, {opts.rounds} rounds each, longest loop stall:")
        print(f"  inline (baseline):  median {base:8.1f} ms")
        print(f"  offloaded:          median {off:8.1f} ms   ({base / off:.0f}x shorter)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
