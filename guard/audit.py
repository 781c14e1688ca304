"""An append-only, hash-chained, signed audit log in JSON lines.

Each line is one record::

    {"key":null,"kind":"decision","payload":{...},"prev":"<hash of record seq-1>",
     "seq":41,"time":"2026-11-23T19:15:00.123456+00:00","hash":"<sha256 of the rest>"}

``hash`` is the SHA-256 of the record's canonical JSON without ``hash`` (sorted keys, no
spaces), and ``prev`` chains it to the record before, so editing, deleting or reordering a
record breaks the chain where it happened. The verifier hashes the exact bytes on disk (the
line with its ``hash`` field cut off), not a re-encoding of what it parsed, so a record means
the same to every reader: reformatting one is an edit, and a key given twice is corrupt. A chain alone proves nothing against someone who
rewrites the whole file, so every ``checkpoint_every`` records, and on :meth:`AuditLog.close`
and :meth:`AuditLog.checkpoint`, a ``checkpoint`` record seals the chain: it names the head
hash and count and carries an Ed25519 signature of them when the log has a key. The log is
fsynced at each checkpoint, and the checkpoint is also written to ``<log>.checkpoint``, so that
cutting records off the end shows as a log that ends before its checkpoint file says it does.
:func:`guard.auditcheck.verify_log` checks a log.

Limits, stated plainly: records after the last checkpoint are not signed yet (the report counts
them as ``unsealed``); and whoever can replace both the log and its checkpoint file with an
older signed pair rolls the log back, unless the checkpoints also go somewhere the agent cannot
write: a *witness* file in another folder (``witness=``), or any store reached by ``on_seal``
(telemetry, a remote service). :func:`guard.auditcheck.verify_log` holds the log against it.

A record that cannot be written (a full disk) is not lost silently: the log counts what it
could not write and, as soon as writing works again, writes a ``gap`` record (how many, of
which kinds, between which times, and the error) before the next record, and tells
``on_gap``.

Many writers, threads and processes, can share one log: each append takes an exclusive
``flock`` on the file, reads only what other writers appended since its last look, chains to
the real head, and writes one line with one ``write`` on an ``O_APPEND`` descriptor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from guard.auditrecord import (
    CHECKPOINT,
    GAP,
    GENESIS,
    MAX_RECORD_BYTES,
    RESUMED,
    AuditRecord,
    StrPath,
    canonical,
    checkpoint_statement,
    exact_digest,
    is_canonical,
    read_small,
)
from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    PrivateKey,
    encode_signature,
    key_id,
    sign,
)
from guard.sinks import Sink
from guard.types import Alert, Decision, Severity

_log = logging.getLogger("peerguard.audit")


AUDIT_GAP_RULE = "audit-gap"
"""The rule of the alert :class:`AuditSink` raises once a gap is marked."""


_RESERVED = frozenset({CHECKPOINT, GAP, RESUMED})

_TAIL_BYTES = 4 << 20  # how far back a writer looks the first time, for recent dedup keys
_ANCHOR_BYTES = 64 << 20  # how far back a new writer looks for its witness's checkpoint
_CHECKPOINT_PREFIX = b'{"key":null,"kind":"checkpoint",'


class AuditLog:
    """An append-only audit log file for one writer process (any number of threads), or,
    with ``shared=True``, for several processes on one host.

    Close it (or use it as a context manager): records after the last checkpoint carry no
    signature until the next one, and :meth:`close` writes it.

    A writer signs, at its next checkpoint, every record chained before it. On its own log
    (the default), it refuses to go on when the log grows by lines it did not write: a record
    someone appended, well formed and chained but unsigned, is never sealed as its own. A
    shared log cannot tell another writer's record from such a forgery, so keep a shared log
    where no agent can write. Either way, when a writer opens a log whose last records no
    checkpoint covers (its predecessor was killed), it writes a ``resumed`` marker naming
    them before sealing them: the verifier reports them as *adopted*, vouched for by no
    writer.

    Args:
        path: The JSON-lines file (created with mode 0640 if missing).
        key: Private key to sign checkpoints with; ``None`` writes unsigned checkpoints, which
            only a verifier without a key accepts.
        checkpoint_every: Write a checkpoint after this many records.
        window: How many recent dedup keys to remember (see ``key`` in :meth:`append`).
        witness: A file outside the log's folder that receives every checkpoint, newest
            only; ``verify_log(..., witness=...)`` then detects a log cut back to an older
            signed state. Put it where the agent cannot write.
        on_seal: Called with each checkpoint once it is durable (ship the signed head to
            telemetry or a remote store). A listener that raises is logged (logger
            ``peerguard.audit``); the append still succeeds.
        on_gap: Called with each ``gap`` record once written (raise an alert, count a
            metric).
        shared: Several processes write this log (appends take a ``flock``); see above.

    Raises:
        ConfigError: A bad ``checkpoint_every`` or ``window``, a witness inside the log's
            folder, or the file cannot be opened.
    """

    def __init__(
        self,
        path: StrPath,
        key: PrivateKey | None = None,
        *,
        checkpoint_every: int = 100,
        window: int = 1000,
        witness: StrPath | None = None,
        on_seal: Callable[[AuditRecord], None] | None = None,
        on_gap: Callable[[AuditRecord], None] | None = None,
        shared: bool = False,
    ) -> None:
        if checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, not {checkpoint_every}")
        if window < 0:
            raise ConfigError(f"window must not be negative, not {window}")
        self.path = os.fspath(path)
        self.checkpoint_path = self.path + ".checkpoint"
        self.witness_path = None if witness is None else os.fspath(witness)
        if self.witness_path is not None:
            _check_witness_outside(self.witness_path, self.path)
        #: Called with each checkpoint once durable; add your own.
        self.seal_listeners: list[Callable[[AuditRecord], None]] = [on_seal] if on_seal else []
        #: Called with each ``gap`` record once written; add your own.
        self.gap_listeners: list[Callable[[AuditRecord], None]] = [on_gap] if on_gap else []
        self._loss: _Loss | None = None
        self.shared = shared
        self._adopted: tuple[int, int] | None = None  # unsealed records found at first look
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
        self._loss_lock = threading.Lock()
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
        if not kind or kind in _RESERVED:
            raise ConfigError(f"record kind {kind!r} is empty or reserved")
        gap: AuditRecord | None = None
        try:
            self._acquire()
        except OSError as exc:
            self._lose(kind, exc)
            raise
        try:
            if key is not None:
                existing = self._recent.get(key)
                if existing is not None:
                    return AuditRecord.from_line(existing)
            try:
                self._write_resumed()
                gap = self._write_gap()
                record = self._write(kind, payload, key)
            except OSError as exc:
                self._lose(kind, exc)
                raise
            sealing = self._checkpoint() if (record.seq + 1) % self._every == 0 else None
        finally:
            self._release()
            # A marker written just before a record that did not fit is news all the same.
            if gap is not None:
                _tell(self.gap_listeners, gap)
        if sealing is not None:
            self._seal(sealing)
        return record

    @property
    def lost(self) -> int:
        """Records this writer could not write and has not yet marked with a ``gap`` record."""
        loss = self._loss
        return 0 if loss is None else loss.count

    def _lose(self, kind: str, error: OSError) -> None:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._loss_lock:
            if self._loss is None:
                self._loss = _Loss(first=now)
            self._loss.add(kind, now, error)

    def _write_gap(self) -> AuditRecord | None:
        """Write the gap marker for what could not be written before (holding the lock)."""
        with self._loss_lock:
            loss, self._loss = self._loss, None
        if loss is None:
            return None
        try:
            return self._write(GAP, loss.payload(), None)
        except OSError:
            with self._loss_lock:  # still not written: keep counting from where it was
                if self._loss is not None:
                    loss.merge(self._loss)
                self._loss = loss
            raise

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
        if self._end >= 0 and not self.shared:
            raise IntegrityError(
                f"audit log {self.path} grew by {size - self._end} bytes this writer did not "
                "write: someone appended to it (a log several processes write needs "
                "shared=True, and a folder no agent can write)"
            )
        continuing = self._end >= 0 and size - self._end <= _TAIL_BYTES
        if continuing and self._last_line:
            # Our own last line must still be where we wrote it: a tail rewritten in place
            # and then appended to must not become the head we chain to and sign.
            mine = self._last_line + b"\n"
            if os.pread(self._fd, len(mine), self._end - len(mine)) != mine:
                raise IntegrityError(f"audit log {self.path}: records were rewritten")
        # A writer's first look holds the log against its witness: a log replaced by a forged
        # chain (between two runs) must not be chained onto, signed and witnessed.
        anchor = None if continuing or self.witness_path is None else _mirrored(self.witness_path)
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
            records = [self._checked(line) for line in lines]
            short = anchor is not None and (not records or records[0].seq > anchor[0])
            if start == 0 or (records and not short):
                break
            if size - start > (_ANCHOR_BYTES if short else _TAIL_BYTES + MAX_RECORD_BYTES):
                raise IntegrityError(
                    f"audit log {self.path}: no record, or not its witnessed checkpoint, in "
                    f"the last {size - start} bytes"
                )
            start = max(0, start - _TAIL_BYTES)  # one record longer than the window
        before = self._head if continuing else None
        for line, rec in zip(lines, records, strict=True):
            if before is not None and (rec.seq != before[0] + 1 or rec.prev != before[1]):
                raise IntegrityError(
                    f"audit log {self.path}: record seq {rec.seq} does not chain to the one "
                    "before it: records were rewritten or forged"
                )
            before = (rec.seq, rec.hash)
            if self._window and isinstance(rec.key, str):
                self._remember(rec.key, line)
        if anchor is not None:
            held = {rec.seq: rec.hash for rec in records}
            if not records or records[-1].seq < anchor[0] or held.get(anchor[0]) != anchor[1]:
                raise IntegrityError(
                    f"audit log {self.path} no longer holds the checkpoint at seq {anchor[0]} "
                    f"its witness {self.witness_path} records: rolled back or replaced"
                )
        if records:
            last = records[-1]
            if continuing and self._head is not None and last.seq <= self._head[0]:
                raise IntegrityError(f"audit log {self.path}: records were rewritten")
            if not continuing and last.kind != CHECKPOINT:
                sealed = [r.seq for r in records if r.kind == CHECKPOINT]
                first = sealed[-1] + 1 if sealed else records[0].seq
                self._adopted = (first, last.seq)
            self._head = (last.seq, last.hash)
            self._last_line = lines[-1]
        self._end = size

    def _checked(self, line: bytes) -> AuditRecord:
        """A record read back from the log: intact and in the writer's canonical form."""
        rec = AuditRecord.from_line(line)
        if exact_digest(line) != rec.hash or not is_canonical(line, rec):
            raise IntegrityError(f"audit log {self.path}: the record seq {rec.seq} was altered")
        return rec

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
        # Once more from what a reader parses: {1: "a"} reads back as {"1": "a"}, and
        # int keys sort otherwise than str keys; the stored bytes must be canonical as read.
        payload = json.loads(body)["payload"]
        body = canonical(
            {"key": key, "kind": kind, "payload": payload, "prev": prev, "seq": seq, "time": now}
        )
        digest = hashlib.sha256(body).hexdigest()
        # The stored line is the hashed body with "hash" added last.
        line = body[:-1] + b',"hash":"' + digest.encode() + b'"}'
        data = line + b"\n"
        if len(data) > MAX_RECORD_BYTES:
            raise ConfigError(f"audit record of {len(data)} bytes: at most {MAX_RECORD_BYTES}")
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

    def _write_resumed(self) -> None:
        """Name the unsealed records found at the first look, before sealing them."""
        if self._adopted is None:
            return
        first, last = self._adopted
        self._write(RESUMED, {"first": first, "last": last}, None)
        self._adopted = None

    def _checkpoint(self) -> AuditRecord | None:
        """Write a checkpoint record (called holding the lock); :meth:`_seal` follows."""
        if self._head is None:
            return None
        self._write_resumed()
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
        _publish(self.checkpoint_path, line, checkpoint.seq, self._locked())
        if self.witness_path is not None:
            # The witness may be shared by writers of several processes: its own lock file.
            _publish(self.witness_path, line, checkpoint.seq, _flocked(self.witness_path + ".lock"))
        _tell(self.seal_listeners, checkpoint)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The log's own lock, without catching up with other writers."""
        self._acquire(sync=False)
        try:
            yield
        finally:
            self._release()


def _publish(path: str, line: bytes, seq: int, lock: AbstractContextManager[None]) -> None:
    """Store the checkpoint ``line`` alone in ``path`` (a mirror or a witness), never over a
    newer one: written and fsynced beside it, then renamed over it under ``lock``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + "-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with lock:
            if _mirrored_seq(path) < seq:
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _flocked(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on the lock file ``path`` (created if missing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tell(listeners: list[Callable[[AuditRecord], None]], record: AuditRecord) -> None:
    """Call each listener; one that fails is logged and never fails the append (the record
    is written: refusing the call now would report a loss that did not happen)."""
    for listener in listeners:
        try:
            listener(record)
        except Exception:
            _log.exception("audit log listener %r failed on seq %d", listener, record.seq)


@dataclass
class _Loss:
    """Records one writer could not write, not yet marked in the log."""

    first: str
    last: str = ""
    count: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, when: str, error: OSError) -> None:
        self.count += 1
        self.last = when
        self.kinds[kind] += 1
        self.errors[error.strerror or repr(error)] += 1

    def merge(self, later: _Loss) -> None:
        self.count += later.count
        self.last = later.last
        self.kinds.update(later.kinds)
        self.errors.update(later.errors)

    def payload(self) -> dict[str, Any]:
        return {
            "lost": self.count,
            "first": self.first,
            "last": self.last,
            "kinds": dict(sorted(self.kinds.items())),
            "errors": dict(sorted(self.errors.items())),
        }


def _check_witness_outside(witness: str, log: str) -> None:
    folder = os.path.realpath(os.path.dirname(os.path.abspath(log)))
    real = os.path.realpath(witness)
    if real == folder or real.startswith(folder.rstrip("/") + "/"):
        raise ConfigError(
            f"audit witness {witness} is inside the log's folder {folder}: whoever can roll the "
            "log back can roll the witness back with it; keep it elsewhere"
        )


def _mirrored(path: str) -> tuple[int, str] | None:
    """``(seq, hash)`` of the checkpoint stored alone in ``path``; ``None`` if none is."""
    try:
        data = json.loads(read_small(path))
        seq, digest = data.get("seq"), data.get("hash")
    except (OSError, ValueError, AttributeError):
        return None
    if type(seq) is not int or not isinstance(digest, str):
        return None
    return seq, digest


def _mirrored_seq(path: str) -> int:
    found = _mirrored(path)
    return -1 if found is None else found[0]


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
    "rolled-back",
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
    does not run (it is denied with an enforcement-gap alert on the other sinks). When the
    log can write again after such a loss (a full disk), it marks the gap in the log, and the
    sink raises an ``audit-gap`` alert on the other sinks, with the number lost in its
    ``lost`` detail (telemetry counts it in ``peerguard.audit.records_lost``).

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
        self._report: Callable[[Alert], None] | None = None
        log.gap_listeners.append(self._on_gap)

    def attach(self, report: Callable[[Alert], None]) -> None:
        """Keep the fanout's way to the other sinks, for ``audit-gap`` alerts."""
        self._report = report

    def _on_gap(self, gap: AuditRecord) -> None:
        p = gap.payload
        errors = ", ".join(sorted(p.get("errors", {}))) or "unknown error"
        alert = Alert(
            severity=Severity.ERROR,
            rule=AUDIT_GAP_RULE,
            message=f"audit log {self.log.path} could not record {p.get('lost')} record(s) "
            f"between {p.get('first')} and {p.get('last')} ({errors}); the gap is marked at "
            f"seq {gap.seq}",
            enforcement_gap=True,
            details=(("lost", int(p.get("lost", 0))), ("seq", gap.seq), ("log", self.log.path)),
        )
        if self._report is not None:
            self._report(alert)

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
    "AUDIT_GAP_RULE",
    "AuditLog",
    "AuditSink",
]
