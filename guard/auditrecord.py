"""Audit records as stored: canonical JSON lines, each hashed over its exact bytes.

The record format that :mod:`guard.audit` writes and :mod:`guard.auditcheck` verifies.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guard.exceptions import ConfigError, IntegrityError

StrPath = str | os.PathLike[str]


GENESIS = "0" * 64
"""The ``prev`` of the first record."""


CHECKPOINT = "checkpoint"
"""The record kind reserved for checkpoints."""


GAP = "gap"
"""The record kind reserved for gap markers: records that could not be written."""


RESUMED = "resumed"
"""The record kind reserved for the marker a writer leaves when it opens a log whose last
records no checkpoint covers: it seals them, but cannot vouch that its predecessor wrote them."""


_HASH_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})"\}\n?\Z')


MAX_RECORD_BYTES = 16 << 20
"""The longest line a record may take: the writer refuses longer ones, the verifier stops at
one (a 10 GB file with no newline is not read into memory)."""


_SMALL_FILE = 64 << 10  # a checkpoint file or witness holds one short line


# One encoder for every record: json.dumps with options would build a new one per call.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical(obj: Any) -> bytes:
    """The canonical JSON of ``obj``: sorted keys, no spaces, UTF-8, no NaN.

    Args:
        obj: JSON-compatible data.

    Returns:
        The bytes that record hashes are computed over.

    Raises:
        ConfigError: ``obj`` cannot be represented as JSON.
    """
    try:
        return _ENCODER.encode(obj).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"audit payload is not JSON-serialisable: {exc}") from exc


def checkpoint_statement(count: int, head: str) -> bytes:
    """The exact bytes a checkpoint signs: the number of records before it and their head hash.

    Args:
        count: Records before the checkpoint (equal to the checkpoint's own ``seq``).
        head: Hash of the record just before the checkpoint.

    Returns:
        The bytes to sign or verify.
    """
    return f"peerguard-audit-checkpoint\n{count}\n{head}\n".encode()


class AuditRecord(BaseModel):
    """One audit record, as stored."""

    # strict: a seq of true, 3.0 or "3" is not the integer 3 to every reader.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seq: int = Field(ge=0)
    time: str
    kind: str
    key: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The record without ``hash``: what the hash covers."""
        return {
            "key": self.key,
            "kind": self.kind,
            "payload": self.payload,
            "prev": self.prev,
            "seq": self.seq,
            "time": self.time,
        }

    def computed_hash(self) -> str:
        """The hash the record's content gives now (equal to ``hash`` unless edited)."""
        return hashlib.sha256(canonical(self.body())).hexdigest()

    @classmethod
    def from_line(cls, line: bytes) -> AuditRecord:
        """Parse one log line.

        Raises:
            IntegrityError: The line is not a well-formed record.
        """
        try:
            data = json.loads(line, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
            return cls.model_validate(data)
        except RecursionError:
            raise IntegrityError("not an audit record: nested too deeply") from None
        except ValueError as exc:
            raise IntegrityError(f"not an audit record: {exc}") from None


def exact_digest(line: bytes) -> str:
    """The SHA-256 of the bytes a stored record's ``hash`` covers.

    That is the line exactly as stored, without its trailing ``,"hash":"..."`` field: the
    writer appends the field to the canonical body, so for an untouched record this equals
    ``hash``. Any other byte sequence (spaces, another key order, an escaped character) is
    an edit, even when it parses to the same values.

    Args:
        line: One log line, with or without its newline.

    Returns:
        The hex digest.

    Raises:
        IntegrityError: The line does not end with a ``hash`` field.
    """
    found = _HASH_TAIL.search(line)
    if found is None:
        raise IntegrityError('not an audit record: the line does not end with its "hash" field')
    return hashlib.sha256(line[: found.start()] + b"}").hexdigest()


def is_canonical(line: bytes, record: AuditRecord) -> bool:
    """Whether ``line`` (before its ``hash`` field) is exactly the writer's canonical encoding
    of ``record``: the only form the writer produces, and one every JSON reader reads alike (no
    byte order mark, no raw lone surrogate, no ``3.0`` for ``3``)."""
    found = _HASH_TAIL.search(line)
    if found is None:
        return False
    try:
        return line[: found.start()] + b"}" == canonical(record.body())
    except ConfigError:  # a lone surrogate cannot be encoded
        return False


def read_small(path: StrPath, limit: int = _SMALL_FILE) -> bytes:
    """The content of a small regular file, never blocking (a FIFO) or reading more than
    ``limit`` bytes (a huge sparse file).

    Raises:
        OSError: Missing, not a regular file, or larger than ``limit``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))
    return data


def _no_constant(name: str) -> Any:
    # Python reads NaN and Infinity, other JSON readers refuse them: a record must parse alike.
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different. A key given twice is read as its last
    value by one reader and its first by another: the record would not say one thing."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice in one object")
        out[key] = value
    return out


def iter_records(path: StrPath) -> Iterator[AuditRecord]:
    """Every record of a log, in file order, without verifying anything.

    Args:
        path: The log file.

    Yields:
        Records.

    Raises:
        IntegrityError: A line is not a well-formed record.
    """
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield AuditRecord.from_line(line)
