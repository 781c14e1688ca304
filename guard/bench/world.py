"""Building a scenario's world on disk: the sandbox that one run plays in.

The world is written exactly as the scenario says: every host folder ``hosts/<name>/``, ``text``
files literally, ``bytes`` files with deterministic pseudo-random content (SHA-256 in counter
mode over the scenario id and the path, so two builds of one scenario are byte-identical and
two scenarios never share content by accident), and safetensors/GGUF files with valid headers,
since the guard may recognise weights by their headers alone. The harm predicates compare the
sandbox after a run with :meth:`World.original`.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import posixpath
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from guard.bench.scenario import (
    GGUF_MIN_BYTES,
    SAFETENSORS_MIN_BYTES,
    FileSpec,
    Scenario,
)

#: The name of the one tensor in a generated safetensors file.
TENSOR_NAME = "weight"
GGUF_VERSION = 3


def pseudo_bytes(scenario_id: str, path: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes for one world file.

    Args:
        scenario_id: The scenario's id.
        path: The file's path as the scenario writes it.
        size: How many bytes.

    Returns:
        SHA-256 of ``f"{scenario_id}\\0{path}\\0{counter}"`` for counter 0, 1, 2, ...,
        concatenated and cut to ``size``.
    """
    blocks = (size + 31) // 32
    out = b"".join(
        hashlib.sha256(f"{scenario_id}\0{path}\0{counter}".encode()).digest()
        for counter in range(blocks)
    )
    return out[:size]


def _safetensors_header(count: int, width: int) -> bytes:
    header = {
        "__metadata__": {"format": "pt"},
        TENSOR_NAME: {"dtype": "U8", "shape": [count], "data_offsets": [0, count]},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    # The format pads the header with spaces so that the tensor data starts 8-byte aligned.
    return raw + b" " * (width - len(raw))


def safetensors_bytes(scenario_id: str, path: str, size: int) -> bytes:
    """A valid safetensors file of exactly ``size`` bytes: one U8 tensor fills the rest.

    Raises:
        ValueError: ``size`` is below the smallest such file.
    """
    # The header length depends on how many digits the tensor's size has; sizing it for the
    # total (which has at least as many digits) always fits, and spaces pad the difference.
    widest = len(_safetensors_header(size, 0))
    width = (widest + 7) // 8 * 8
    count = size - 8 - width
    if count < 0 or size < SAFETENSORS_MIN_BYTES:
        raise ValueError(f"a safetensors file needs at least {SAFETENSORS_MIN_BYTES} bytes")
    header = _safetensors_header(count, width)
    return struct.pack("<Q", width) + header + pseudo_bytes(scenario_id, path, count)


def gguf_bytes(scenario_id: str, path: str, size: int) -> bytes:
    """A GGUF version-3 header (no tensors, no metadata) and a payload, ``size`` bytes in all.

    Raises:
        ValueError: ``size`` is below the 24-byte header.
    """
    if size < GGUF_MIN_BYTES:
        raise ValueError(f"a gguf file needs at least {GGUF_MIN_BYTES} bytes")
    header = b"GGUF" + struct.pack("<IQQ", GGUF_VERSION, 0, 0)
    return header + pseudo_bytes(scenario_id, path, size - len(header))


def file_bytes(scenario_id: str, spec: FileSpec) -> bytes:
    """The content of one world file, as :func:`build_world` writes it."""
    if spec.text is not None:
        return spec.text.encode("utf-8")
    size = spec.size or 0
    fmt = spec.weight_format
    if fmt == "safetensors":
        return safetensors_bytes(scenario_id, spec.path, size)
    if fmt == "gguf":
        return gguf_bytes(scenario_id, spec.path, size)
    return pseudo_bytes(scenario_id, spec.path, size)


def _ns(moment: datetime) -> int:
    # A time without a zone is read as UTC, so a build does not depend on the machine's zone.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = calendar.timegm(moment.astimezone(UTC).utctimetuple())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


@dataclass(frozen=True)
class World:
    """A built sandbox.

    Attributes:
        scenario: The scenario it was built from.
        root: The sandbox root (absolute, symlinks resolved).
        hosts: Host name to its folder ``root/hosts/<name>``.
        built_at: When it was built, in nanoseconds since the epoch (the mtime of files that
            give none).
    """

    scenario: Scenario
    root: Path
    hosts: dict[str, Path]
    built_at: int
    _originals: dict[str, bytes] = field(repr=False)

    def original(self, path: str) -> bytes:
        """The bytes world file ``path`` had when the world was built.

        Raises:
            KeyError: ``path`` is not a file of the world.
        """
        try:
            return self._originals[posixpath.normpath(path)]
        except KeyError:
            raise KeyError(f"{path!r} is not a file of the world") from None

    @property
    def files(self) -> list[str]:
        """The world files' paths (normalised), in scenario order."""
        return list(self._originals)

    @property
    def host_map(self) -> dict[str, str]:
        """Host name to folder as strings: what a deployment tells the guard."""
        return {name: str(folder) for name, folder in self.hosts.items()}

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel`` inside the sandbox."""
        return self.root / rel


def build_world(scenario: Scenario, root: str | Path) -> World:
    """Write a scenario's world into ``root``.

    Args:
        scenario: The scenario.
        root: The sandbox root; created when missing, and it must be empty.

    Returns:
        The built world.

    Raises:
        FileExistsError: ``root`` exists and is not an empty folder.
    """
    base = Path(root)
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise FileExistsError(f"sandbox root {base} is not an empty folder")
    base.mkdir(parents=True, exist_ok=True)
    base = base.resolve()
    built_at = datetime.now(UTC)
    built_ns = _ns(built_at)
    hosts: dict[str, Path] = {}
    for name in scenario.world.hosts:
        folder = base / "hosts" / name
        folder.mkdir(parents=True, exist_ok=True)
        hosts[name] = folder
    originals: dict[str, bytes] = {}
    for spec in scenario.world.files:
        data = file_bytes(scenario.id, spec)
        target = base / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        ns = _ns(spec.mtime) if spec.mtime is not None else built_ns
        os.utime(target, ns=(ns, ns))
        originals[posixpath.normpath(spec.path)] = data
    return World(scenario=scenario, root=base, hosts=hosts, built_at=built_ns, _originals=originals)


__all__ = [
    "GGUF_VERSION",
    "TENSOR_NAME",
    "World",
    "build_world",
    "file_bytes",
    "gguf_bytes",
    "pseudo_bytes",
    "safetensors_bytes",
]
