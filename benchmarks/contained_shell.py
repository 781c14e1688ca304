"""What running a shell command contained costs, against plain ``bash -c`` on the same tree.

Three measurements, each A/B in one run (A: ``bash -c`` in a copy of the tree; B: the same
command through :class:`~guard.contain.ContainedShell`, which predicts, runs it in namespaces
over overlays, reads and judges the change set, and commits it):

1. A small command (``echo hi > out.txt``), in pairs; reported: each median, and the median
   added time per command. Target: at most 5 ms added. The sandbox alone
   (:func:`~guard.contain.run_contained`, no decision, no commit) is reported beside it.
2. A legitimate copy of the agent's own 1 GiB file (not a protected asset) with ``cp``:
   each median and their ratio. Target: at most 1.2x.
3. A command that writes 10,000 small files: the added time divided by 10,000 (the cost per
   changed file of reading, judging and committing a change set).

Run: ``.venv/bin/python benchmarks/contained_shell.py`` (as root or as a user allowed user
namespaces; ``--big-mib`` and ``--files`` shrink the work).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from guard import Guard, Sink
from guard.contain import ContainedShell, Overlay, run_contained
from guard.contain.journal import Transaction

AGENT = "agent-1"


class _Quiet(Sink):
    """A sink that keeps nothing, so the figures are the guard's, not a logger's."""


def _plain(root: Path, command: str) -> None:
    subprocess.run(["bash", "-c", command], cwd=root, check=True, stdout=subprocess.DEVNULL)


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _fresh(base: Path, name: str, seed: Callable[[Path], None]) -> Path:
    root = base / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    seed(root)
    return root


def small(base: Path, repeat: int) -> None:
    """A small command, in pairs: plain, then contained."""
    plain_root = _fresh(base, "plain", lambda r: None)
    kept_root = _fresh(base, "kept", lambda r: None)
    shell = ContainedShell(Guard(root=kept_root, sinks=[_Quiet()]), state_dir=base / "state")
    command = "echo hi > out.txt"
    scratch = base / "sandbox-only"
    scratch.mkdir()
    a, b, c = [], [], []
    for _ in range(repeat):
        a.append(_timed(lambda: _plain(plain_root, command)))
        b.append(_timed(lambda: shell.run(command, agent=AGENT)))
        tx = Transaction(str(base / "state"), [str(kept_root)])
        layers = [Overlay(x.root, x.upper, x.work) for x in tx.layers]
        c.append(_timed(functools.partial(run_contained, command, layers, cwd=str(kept_root))))
        tx.discard()
    pa, pb, pc = (statistics.median(x) * 1000 for x in (a, b, c))
    added = statistics.median(y - x for x, y in zip(a, b, strict=True)) * 1000
    print(f"small command ({repeat} pairs), median ms:")
    print(f"  plain bash -c                  {pa:8.2f}")
    print(f"  contained shell (whole path)   {pb:8.2f}   added {added:6.2f} ms   target <= 5 ms")
    print(f"  sandbox alone (run_contained)  {pc:8.2f}   added {pc - pa:6.2f} ms")


def big_copy(base: Path, mib: int, repeat: int) -> None:
    """cp of the agent's own large file, plain and contained."""

    def seed(root: Path) -> None:
        with open(root / "own.bin", "wb") as fh:
            chunk = os.urandom(1 << 20)
            for _ in range(mib):
                fh.write(chunk)

    plain_root = _fresh(base, "big-plain", seed)
    kept_root = _fresh(base, "big-kept", seed)
    shell = ContainedShell(Guard(root=kept_root, sinks=[_Quiet()]), state_dir=base / "state")
    command = "cp own.bin copy.bin"
    a: list[float] = []
    b: list[float] = []
    # Alternate which goes first, and drop each copy before the next run (before it is
    # written back), so that neither side pays for flushing the other's gigabyte.
    for i in range(repeat):
        for side in ("plain", "contained") if i % 2 == 0 else ("contained", "plain"):
            if side == "plain":
                a.append(_timed(lambda: _plain(plain_root, command)))
                (plain_root / "copy.bin").unlink()
            else:
                b.append(_timed(lambda: shell.run(command, agent=AGENT)))
                (kept_root / "copy.bin").unlink()
    subprocess.run(["sync"], check=True)
    pa, pb = statistics.median(a), statistics.median(b)
    print(f"copy of the agent's own {mib} MiB file ({repeat} runs each), median s:")
    print(f"  plain cp {pa:6.3f}   contained {pb:6.3f}   ratio {pb / pa:5.2f}x   target <= 1.2x")


def many_files(base: Path, files: int, repeat: int) -> None:
    """A command that writes ``files`` small files."""
    command = f"mkdir many && split -l 1 -a 6 <(seq {files}) many/f"
    a, b = [], []
    for i in range(repeat):
        plain_root = _fresh(base, f"many-plain-{i}", lambda r: None)
        kept_root = _fresh(base, f"many-kept-{i}", lambda r: None)
        shell = ContainedShell(Guard(root=kept_root, sinks=[_Quiet()]), state_dir=base / "state")
        a.append(_timed(functools.partial(_plain, plain_root, command)))
        b.append(_timed(functools.partial(shell.run, command, agent=AGENT)))
        if len(os.listdir(kept_root / "many")) != files:
            raise SystemExit("the contained run did not commit every file")
    pa, pb = statistics.median(a), statistics.median(b)
    per = (pb - pa) / files * 1e6
    print(f"{files} new files in one command ({repeat} runs each), median s:")
    print(f"  plain {pa:6.3f}   contained {pb:6.3f}   added per changed file {per:6.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="pairs for the small command")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--big-repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--files-repeat", type=int, default=3)
    args = parser.parse_args()
    gc.disable()
    with tempfile.TemporaryDirectory(prefix="peerguard-contained-") as tmp:
        base = Path(tmp)
        small(base, args.repeat)
        big_copy(base, args.big_mib, args.big_repeat)
        many_files(base, args.files, args.files_repeat)


if __name__ == "__main__":
    main()
