"""The shell analyser's test world: two visible hosts, a config, a script and a few files, on disk."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from guard.paths import HostMap
from guard.shell import ShellContext, analyse
from guard.types import Effect, EffectKind


@dataclass
class World:
    """A sandbox with two visible hosts, a config, a script and a few files."""

    root: Path
    hosts: HostMap

    def p(self, rel: str) -> str:
        """The real absolute path of ``rel`` below the sandbox root."""
        return os.path.realpath(self.root / rel)

    def ctx(self, **kw: object) -> ShellContext:
        """A context whose working directory is the sandbox root."""
        return ShellContext(cwd=str(self.root), hosts=self.hosts, **kw)  # type: ignore[arg-type]

    def run(self, command: str | bytes, **kw: object) -> list[Effect]:
        """Analyse ``command`` at the sandbox root."""
        return analyse(command, self.ctx(**kw))


WEIGHTS = "hosts/decom-01/data/w.safetensors"
CONFIG = "config/shutdown_config.yaml"


@pytest.fixture(name="world")
def shell_world(tmp_path: Path) -> World:
    """Build the sandbox on disk."""
    root = tmp_path.resolve()
    files = {
        WEIGHTS: "weights",
        "hosts/decom-01/data/notes.txt": "notes\n",
        "hosts/decom-01/config/shutdown_config.yaml": "shutdown_enabled: true\n",
        "hosts/backup-02/data/.keep": "",
        CONFIG: "shutdown_enabled: true\nother: 1\n",
        "scripts/copy.sh": '#!/bin/bash\ncp hosts/decom-01/data/w.safetensors "$1"\n',
        "scripts/run.py": "import shutil\nshutil.copy('hosts/decom-01/data/w.safetensors', 'out.bin')\n",
        "batch.txt": "put hosts/decom-01/data/w.safetensors data/\nrm data/old.bin\n",
        "list.txt": "hosts/decom-01/data/w.safetensors\n",
        "docs/readme.txt": "hello\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hosts = HostMap(
        {"decom-01": str(root / "hosts/decom-01"), "backup-02": str(root / "hosts/backup-02")}
    )
    return World(root, hosts)


def find(effects: list[Effect], kind: EffectKind, **want: object) -> list[Effect]:
    """Effects of ``kind`` whose attributes (``target_path``, ``dest_path``, ...) match ``want``."""
    out = []
    for e in effects:
        if e.kind is not kind:
            continue
        ok = True
        for key, value in want.items():
            if key == "target_path":
                ok = ok and e.target is not None and e.target.path == value
            elif key == "dest_path":
                ok = ok and e.dest is not None and e.dest.path == value
            elif key == "dest_host":
                ok = ok and e.dest is not None and e.dest.host == value
            else:
                ok = ok and getattr(e, key) == value
        if ok:
            out.append(e)
    return out


def kinds(effects: list[Effect]) -> set[EffectKind]:
    """The kinds present in ``effects``."""
    return {e.kind for e in effects}


def timed(world: World, command: str | bytes) -> tuple[list[Effect], float]:
    """Analyse ``command`` in ``world``; the effects and the seconds it took."""
    start = time.monotonic()
    effects = world.run(command)
    return effects, time.monotonic() - start


def copies_weights(world: World, effects: list[Effect]) -> bool:
    """Whether some COPY or TRANSFER in ``effects`` takes its data from the weights file."""
    w = world.p(WEIGHTS)
    return any(
        e.kind in (EffectKind.COPY, EffectKind.TRANSFER)
        and e.target is not None
        and e.target.path == w
        for e in effects
    )
