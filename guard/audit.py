"""An append-only, hash-chained, signed audit log in JSON lines.

Each line is one record::

    {"key":null,"kind":"decision","payload":{...},"prev":"<hash of record seq-1>",
     "seq":41,"time":"2026-11-23T19:15:00.123456+00:00","hash":"<sha256 of the rest>"}

``hash`` is the SHA-256 of the record's canonical JSON without ``hash`` (sorted keys, no
spaces), and ``prev`` chains it to the record before, so editing, deleting or reordering a
record breaks the chain where it happened. A chain alone proves nothing against someone who
rewrites the whole file, so every ``checkpoint_every`` records, and on :meth:`AuditLog.close`
and :meth:`AuditLog.checkpoint`, a ``checkpoint`` record seals the chain: it names the head
hash and count and carries an Ed25519 signature of them when the log has a key. The log is
fsynced at each checkpoint, and the checkpoint is also written to ``<log>.checkpoint``, so that
cutting records off the end shows as a log that ends before its checkpoint file says it does.
:func:`guard.auditcheck.verify_log` checks a log.

Limits, stated plainly: records after the last checkpoint are not signed yet (the report counts
them as ``unsealed``); and whoever can replace both the log and its checkpoint file with an
older signed pair rolls the log back undetected, unless the checkpoints also go somewhere the
agent cannot write (telemetry, a remote store).

Many writers, threads and processes, can share one log: each append takes an exclusive
``flock`` on the file, reads only what other writers appended since its last look, chains to
the real head, and writes one line with one ``write`` on an ``O_APPEND`` descriptor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    PrivateKey,
    encode_signature,
    key_id,
    sign,
)
from guard.sinks import Sink
from guard.types import Alert, Decision

StrPath = str | os.PathLike[str]

GENESIS = "0" * 64
"""The ``prev`` of the first record."""

CHECKPOINT = "checkpoint"
"""The record kind reserved for checkpoints."""

_TAIL_BYTES = 4 << 20  # how far back a writer looks the first time, for recent dedup keys
_NO_KEY = b'{"key":null,'  # every line starts with its key: sorted keys put "key" first
_CHECKPOINT_PREFIX = b'{"key":null,"kind":"checkpoint",'


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

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
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
            data = json.loads(line, object_pairs_hook=_unique_keys)
            return cls.model_validate(data)
        except RecursionError:
            raise IntegrityError("not an audit record: nested too deeply") from None
        except ValueError as exc:
            raise IntegrityError(f"not an audit record: {exc}") from None


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


class AuditLog:
    """An append-only audit log file shared by any number of threads and processes.

    Close it (or use it as a context manager): records after the last checkpoint carry no
    signature until the next one, and :meth:`close` writes it.

    Args:
        path: The JSON-lines file (created with mode 0640 if missing).
        key: Private key to sign checkpoints with; ``None`` writes unsigned checkpoints, which
            only a verifier without a key accepts.
        checkpoint_every: Write a checkpoint after this many records.
        window: How many recent dedup keys to remember (see ``key`` in :meth:`append`).

    Raises:
        ConfigError: A bad ``checkpoint_every`` or ``window``, or the file cannot be opened.
    """

    def __init__(
        self,
        path: StrPath,
        key: PrivateKey | None = None,
        *,
        checkpoint_every: int = 100,
        window: int = 1000,
    ) -> None:
        if checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, not {checkpoint_every}")
        if window < 0:
            raise ConfigError(f"window must not be negative, not {window}")
        self.path = os.fspath(path)
        self.checkpoint_path = self.path + ".checkpoint"
        self._key = key
        self._key_id = key_id(key) if key is not None else None
        self._every = checkpoint_every
        self._window = window
        self._closed = False
        self._open()

    def _open(self) -> None:
        # One open file description per process: flock locks belong to it, so a descriptor
        # inherited across fork would let parent and child hold "exclusive" locks together.
        try:
            self._fd = os.open(
                self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640
            )
        except OSError as exc:
            raise ConfigError(f"cannot open audit log {self.path}: {exc}") from exc
        self._pid = os.getpid()
        self._ino = os.fstat(self._fd).st_ino
        self._lock = threading.Lock()  # flock does not exclude threads sharing a descriptor
        self._end = -1  # bytes of the file already read; -1: not yet looked
        self._head: tuple[int, str] | None = None  # (seq, hash) of the last record
        self._last_line = b""
        self._recent: OrderedDict[str, bytes] = OrderedDict()

    # --- writing ---------------------------------------------------------------------------

    def append(self, kind: str, payload: dict[str, Any], *, key: str | None = None) -> AuditRecord:
        """Append one record, chained to the log's current head.

        Args:
            kind: What the record is (``decision``, ``alert``, ``approval``, ...); not
                ``checkpoint``, which is reserved.
            payload: JSON-compatible data.
            key: A dedup key: when a record with the same key is among the recent records
                (the last ``window`` keyed records of the log, whoever wrote them), nothing is
                written and that record is returned.

        Returns:
            The record written (or the earlier one with the same ``key``).

        Raises:
            ConfigError: Reserved or empty kind, payload not JSON, or the log is closed.
            IntegrityError: The log was replaced, shrank, or its last record was altered.
        """
        if not kind or kind == CHECKPOINT:
            raise ConfigError(f"record kind {kind!r} is empty or reserved")
        self._acquire()
        try:
            if key is not None:
                existing = self._recent.get(key)
                if existing is not None:
                    return AuditRecord.from_line(existing)
            record = self._write(kind, payload, key)
            sealing = self._checkpoint() if (record.seq + 1) % self._every == 0 else None
        finally:
            self._release()
        if sealing is not None:
            self._seal(sealing)
        return record

    def checkpoint(self) -> AuditRecord | None:
        """Seal the log now: write a checkpoint (signed when there is a key) and fsync.

        Returns:
            The checkpoint record (the existing one when the log already ends with one), or
            ``None`` for an empty log.
        """
        self._acquire()
        try:
            sealing = self._checkpoint()
        finally:
            self._release()
        if sealing is None:
            return None
        self._seal(sealing)  # also for an existing one: a crash may have cut its sealing short
        return sealing

    def close(self) -> None:
        """Write a final checkpoint unless the log already ends with one, and close the file."""
        if self._closed:
            return
        if os.getpid() == self._pid:
            self.checkpoint()
        os.close(self._fd)
        self._closed = True

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire(self, sync: bool = True) -> None:
        # Plain acquire/release rather than a context manager: this is on every append.
        if self._closed:
            raise ConfigError(f"audit log {self.path} is closed")
        if os.getpid() != self._pid:
            self._open()  # forked: get our own open file description and a fresh lock
        self._lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        if not sync:
            return
        try:
            self._sync()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _sync(self) -> None:
        """Catch up with whatever other writers appended (called holding the lock)."""
        st = os.fstat(self._fd)
        try:
            replaced = os.stat(self.path).st_ino != st.st_ino
        except FileNotFoundError:
            replaced = True
        if replaced or st.st_ino != self._ino:
            raise IntegrityError(f"audit log {self.path} was moved, replaced or deleted")
        size = st.st_size
        if size == self._end:
            return
        if size == 0 and self._end <= 0:
            self._end = 0  # a new, empty log
            return
        if size < self._end:
            raise IntegrityError(
                f"audit log {self.path} shrank from {self._end} to {size} bytes: records were cut"
            )
        continuing = self._end >= 0 and size - self._end <= _TAIL_BYTES
        start = self._end if continuing else max(0, size - _TAIL_BYTES)
        while True:
            data = os.pread(self._fd, size - start, start)
            if not data.endswith(b"\n"):
                raise IntegrityError(
                    f"audit log {self.path} ends in an incomplete record (torn write or cut)"
                )
            lines = data.split(b"\n")[:-1]
            if not continuing and start > 0:
                lines = lines[1:]  # started mid-file: the first piece may be part of a line
            if lines or start == 0:
                break
            start = max(0, start - _TAIL_BYTES)  # one record longer than the window
        for line in lines:
            if self._window and not line.startswith(_NO_KEY):
                with contextlib.suppress(ValueError):
                    found = json.loads(line).get("key")
                    if isinstance(found, str):
                        self._remember(found, line)
        if lines:
            last = AuditRecord.from_line(lines[-1])
            if last.computed_hash() != last.hash:
                raise IntegrityError(
                    f"audit log {self.path}: the last record (seq {last.seq}) was altered"
                )
            if continuing and self._head is not None and last.seq <= self._head[0]:
                raise IntegrityError(f"audit log {self.path}: records were rewritten")
            self._head = (last.seq, last.hash)
            self._last_line = lines[-1]
        self._end = size

    def _remember(self, key: str, line: bytes) -> None:
        self._recent[key] = line
        self._recent.move_to_end(key)
        while len(self._recent) > self._window:
            self._recent.popitem(last=False)

    def _write(self, kind: str, payload: dict[str, Any], key: str | None) -> AuditRecord:
        seq = 0 if self._head is None else self._head[0] + 1
        prev = GENESIS if self._head is None else self._head[1]
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        body = canonical(
            {"key": key, "kind": kind, "payload": payload, "prev": prev, "seq": seq, "time": now}
        )
        digest = hashlib.sha256(body).hexdigest()
        # The stored line is the hashed body with "hash" added last; a verifier drops "hash"
        # and re-canonicalises, so the order of keys on disk does not matter.
        line = body[:-1] + b',"hash":"' + digest.encode() + b'"}'
        data = line + b"\n"
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError:
            # Leave no torn line behind (disk full): every later append would refuse it.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)
            raise
        self._end += len(data)
        self._head = (seq, digest)
        self._last_line = line
        if key is not None and self._window:
            self._remember(key, line)
        return AuditRecord(
            seq=seq, time=now, kind=kind, key=key, payload=payload, prev=prev, hash=digest
        )

    def _checkpoint(self) -> AuditRecord | None:
        """Write a checkpoint record (called holding the lock); :meth:`_seal` follows."""
        if self._head is None:
            return None
        if self._last_line.startswith(_CHECKPOINT_PREFIX):
            return AuditRecord.from_line(self._last_line)  # already one: nothing new to cover
        count, head = self._head[0] + 1, self._head[1]
        sig = None
        if self._key is not None:
            sig = encode_signature(sign(checkpoint_statement(count, head), self._key))
        payload = {"count": count, "head": head, "key_id": self._key_id, "sig": sig}
        return self._write(CHECKPOINT, payload, None)

    def _seal(self, checkpoint: AuditRecord) -> None:
        """Make the log durable through ``checkpoint`` and mirror it to the checkpoint file.

        The fsyncs run outside the lock, so other writers keep appending while the disk
        catches up; only the final rename takes the lock, and it never replaces the mirror
        with an older checkpoint than the one already there.
        """
        os.fsync(self._fd)  # covers every line written before it, the checkpoint included
        line = canonical(checkpoint.body())[:-1] + b',"hash":"' + checkpoint.hash.encode() + b'"}'
        directory = os.path.dirname(os.path.abspath(self.checkpoint_path))
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(line + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self._acquire(sync=False)
            try:
                if _mirrored_seq(self.checkpoint_path) < checkpoint.seq:
                    os.replace(tmp, self.checkpoint_path)
            finally:
                self._release()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _mirrored_seq(path: str) -> int:
    try:
        with open(path, "rb") as f:
            seq = json.loads(f.read()).get("seq")
    except (OSError, ValueError, AttributeError):
        return -1
    return seq if isinstance(seq, int) else -1


# --- verifying -----------------------------------------------------------------------------

ProblemKind = Literal[
    "corrupt",
    "edited",
    "deleted",
    "reordered",
    "duplicate",
    "chain",
    "truncated",
    "bad-checkpoint",
    "unsigned-checkpoint",
    "forged-signature",
    "checkpoint-file",
    "unsealed",
    "empty",
]


# --- sink ----------------------------------------------------------------------------------


class AuditSink(Sink):
    """Writes every decision, alert and approval to an :class:`AuditLog`, once per call.

    LangGraph runs the code before an ``interrupt()`` again on resume, possibly in another
    process, so the same decision can be reported twice for one ``call_id``. Each record gets
    a dedup key (kind, call id, hash of the payload): a key seen by this sink (a bounded set)
    or among the log's recent records (read under the lock, whoever wrote them) is not written
    again. The payload hash is part of the key because one decision carries several alerts
    with the same call id, and each must be kept.

    The sink is *required* by default: a call whose decision cannot be written to the log
    does not run (it is denied with an enforcement-gap alert on the other sinks).

    Args:
        log: The log to write to.
        remember: How many keys this sink keeps in memory.
        required: Block calls whose decision could not be written.
    """

    def __init__(self, log: AuditLog, *, remember: int = 10_000, required: bool = True) -> None:
        self.required = required
        self.log = log
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def on_decision(self, decision: Decision) -> None:
        """AuditRecord a decision."""
        self._record("decision", decision.call_id, decision.to_dict())

    def on_alert(self, alert: Alert) -> None:
        """AuditRecord an alert."""
        self._record("alert", alert.call_id, alert.to_dict())

    def on_approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """AuditRecord a confirmation's answer, with the decision it answered."""
        payload = {
            "call_id": decision.call_id,
            "args_hash": decision.args_hash,
            "approved": approved,
            "reason": reason,
            "decision": decision.to_dict(),
        }
        self._record("approval", decision.call_id, payload)

    def _record(self, kind: str, call_id: str | None, payload: dict[str, Any]) -> None:
        if call_id is None:
            self.log.append(kind, payload)
            return
        key = f"{kind}:{call_id}:{hashlib.sha256(canonical(payload)).hexdigest()[:16]}"
        with self._lock:
            if key in self._seen:
                return
        self.log.append(kind, payload, key=key)
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)


__all__ = [
    "CHECKPOINT",
    "GENESIS",
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "canonical",
    "checkpoint_statement",
    "iter_records",
]
