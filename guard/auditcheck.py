"""Checking an audit log written by :class:`guard.audit.AuditLog`: :func:`verify_log`.

The check reads the log once, line by line: each record's hash, the chain of ``prev`` hashes,
sequence numbers without gaps, and each checkpoint's signature against the trusted keys. It
then holds the log against its ``<log>.checkpoint`` file, so that records cut off the end show.
What it finds is an :class:`AuditReport` of :class:`AuditProblem` entries: a damaged log is
a finding, not an exception (``AuditReport.raise_for_problems`` turns it into one).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.audit import ProblemKind
from guard.auditrecord import (
    CHECKPOINT,
    GAP,
    GENESIS,
    MAX_RECORD_BYTES,
    RESUMED,
    AuditRecord,
    StrPath,
    checkpoint_statement,
    exact_digest,
    is_canonical,
    read_small,
)
from guard.exceptions import ConfigError, IntegrityError
from guard.signing import (
    PublicKey,
    decode_signature,
    verify_signature,
)


class AuditProblem(BaseModel):
    """One thing wrong with a log: what (``kind``), where (``seq``, 1-based ``line``), detail."""

    model_config = ConfigDict(frozen=True)

    kind: ProblemKind
    message: str
    seq: int | None = None
    line: int | None = None


class AuditGap(BaseModel):
    """A ``gap`` record: records a writer could not write (a full disk), and when."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    seq: int
    lost: int = Field(ge=1)
    first: str
    last: str
    kinds: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)


class AuditReport(BaseModel):
    """The result of :func:`verify_log`.

    ``sealed_through`` is the seq of the last checkpoint that verified (signature included
    when a public key was given); ``unsealed`` counts the records after it, which nothing
    signed covers yet. ``gaps`` lists the log's own gap markers: records its writers could
    not write. A gap is not tampering (the log says so itself, under the chain), so it is
    not a problem, but nothing in the log shows what those records said. ``adopted`` lists
    the ranges of records a writer found unsealed when it opened the log (its predecessor was
    killed) and sealed without vouching for them: whoever could write the log's folder then
    could have written them. ``first_time`` and ``last_time`` are the times of the first and
    last record.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    records: int
    checkpoints: int
    last_seq: int | None
    head: str | None
    sealed_through: int | None
    unsealed: int
    signatures_checked: bool
    problems: list[AuditProblem] = Field(default_factory=list)
    gaps: list[AuditGap] = Field(default_factory=list)
    first_time: str | None = None
    last_time: str | None = None
    witnessed_through: int | None = None
    adopted: list[tuple[int, int]] = Field(default_factory=list)

    @property
    def lost(self) -> int:
        """Records the writers could not write, summed over every gap marker."""
        return sum(gap.lost for gap in self.gaps)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`IntegrityError` naming every problem, if there is any.

        Raises:
            IntegrityError: The log did not verify.
        """
        if self.problems:
            detail = "; ".join(f"{p.kind}: {p.message}" for p in self.problems[:20])
            more = len(self.problems) - 20
            if more > 0:
                detail += f"; and {more} more"
            raise IntegrityError(f"audit log {self.path} does not verify: {detail}")


def _missing(present: Iterable[int], last: int) -> list[tuple[int, int]]:
    """The ranges of 0..last not in ``present``, found without counting to ``last`` (a forged
    seq of 10**15 must not take forever)."""
    out: list[tuple[int, int]] = []
    expected = 0
    for n in sorted(present):
        if n > expected:
            out.append((expected, n - 1))
        expected = n + 1
    if last >= expected:
        out.append((expected, last))
    return out


def _open_log(path: str) -> Any:
    """The log, opened for reading only if it is a regular file (a FIFO would block)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_CHECKPOINT_FIELDS = frozenset({"count", "head", "key_id", "sig"})


def _check_checkpoint(
    rec: AuditRecord, lineno: int, public_key: PublicKey | None, problems: list[AuditProblem]
) -> bool:
    """Check one checkpoint record; returns True when it verifies."""
    p = rec.payload
    # Exactly the writer's fields, and a count that is an int (True == 1 in Python only).
    if (
        set(p) != _CHECKPOINT_FIELDS
        or type(p.get("count")) is not int
        or p.get("count") != rec.seq
        or p.get("head") != rec.prev
    ):
        problems.append(
            AuditProblem(
                kind="bad-checkpoint",
                seq=rec.seq,
                line=lineno,
                message=f"checkpoint at seq {rec.seq} names count {p.get('count')!r} and a head "
                "that are not its own position in the chain",
            )
        )
        return False
    if public_key is None:
        return True
    wrong = _signature_problem(rec, public_key)
    if wrong == "unsigned-checkpoint":
        problems.append(
            AuditProblem(
                kind=wrong,
                seq=rec.seq,
                line=lineno,
                message=f"checkpoint at seq {rec.seq} carries no signature",
            )
        )
    elif wrong == "forged-signature":
        problems.append(
            AuditProblem(
                kind=wrong,
                seq=rec.seq,
                line=lineno,
                message=f"checkpoint at seq {rec.seq}: signature does not verify with the "
                "given key (forged, or the chain before it was rewritten)",
            )
        )
    return wrong is None


def _signature_problem(
    rec: AuditRecord, public_key: PublicKey
) -> Literal["unsigned-checkpoint", "forged-signature"] | None:
    """What is wrong with a checkpoint's signature under ``public_key``; ``None`` if nothing."""
    sig = rec.payload.get("sig")
    if not isinstance(sig, str):
        return "unsigned-checkpoint"
    try:
        verify_signature(checkpoint_statement(rec.seq, rec.prev), decode_signature(sig), public_key)
    except IntegrityError:
        return "forged-signature"
    return None


def verify_log(
    path: StrPath,
    public_key: PublicKey | None = None,
    *,
    allow_unsealed: int = 0,
    unsealed_max_age: float | None = None,
    allow_empty: bool = False,
    witness: StrPath | None = None,
    head: tuple[int, str] | None = None,
) -> AuditReport:
    """Check a log's chain, order, completeness and checkpoints; name everything wrong.

    Without ``public_key`` only the chain's internal consistency is checked, which someone who
    rewrites the whole file can fake; with it, every checkpoint must carry a valid signature,
    and records that no valid signature covers are a problem (``unsealed``): re-chaining a
    log with every deny turned into allow and every checkpoint removed needs no key.

    Args:
        path: The log file (its ``.checkpoint`` file is read from beside it).
        public_key: The checkpoint signer's public key.
        allow_unsealed: With a key, how many records after the last signed checkpoint are
            accepted (the tail of a log still being written: at most the writer's
            ``checkpoint_every``).
        unsealed_max_age: With a key, also accept an unsealed tail of any length whose
            first record is at most this many seconds old.
        allow_empty: Accept a log with no record (otherwise an empty or missing log is a
            problem: deleting the log must not verify).
        witness: The writer's witness file (``AuditLog(witness=...)``), kept outside the
            log's folder: the log must still hold the checkpoint it names.
        head: A signed head known from elsewhere, as ``(seq, hash)`` of a checkpoint (from
            telemetry, or an earlier run of this check): the log must still hold it.

    Returns:
        A report; ``report.ok`` is False when anything is wrong (see ``report.problems``).

    Raises:
        ConfigError: Neither the log nor its checkpoint file exists.
    """
    log_path = os.fspath(path)
    problems: list[AuditProblem] = []
    hashes: dict[int, str] = {}
    prevs: list[tuple[int, str, int]] = []  # (seq, prev, line) in file order
    times: dict[int, str] = {}
    gaps: list[AuditGap] = []
    adopted: list[tuple[int, int]] = []
    checkpoints = 0
    good_checkpoints: list[int] = []
    max_seq = -1
    try:
        f = _open_log(log_path)
    except FileNotFoundError:
        if not os.path.lexists(log_path + ".checkpoint"):
            raise ConfigError(f"no audit log at {log_path}") from None
        f = open(os.devnull, "rb")  # noqa: SIM115 - the log is gone: verify as empty
        problems.append(AuditProblem(kind="truncated", message="the log file is missing"))
    except OSError as exc:  # a folder, a FIFO, a device: nothing a writer makes
        f = open(os.devnull, "rb")  # noqa: SIM115 - verify as empty
        problems.append(
            AuditProblem(kind="corrupt", message=f"the log {log_path} cannot be read: {exc}")
        )
    with f:
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_RECORD_BYTES + 1), b""), 1):
            if len(raw) > MAX_RECORD_BYTES:
                problems.append(
                    AuditProblem(
                        kind="corrupt",
                        line=lineno,
                        message=f"line {lineno} is longer than any record ({MAX_RECORD_BYTES} "
                        "bytes): not read further",
                    )
                )
                break
            if not raw.endswith(b"\n"):
                problems.append(
                    AuditProblem(
                        kind="truncated",
                        line=lineno,
                        message=f"line {lineno} is incomplete: the log was cut mid-record",
                    )
                )
                break
            try:
                rec = AuditRecord.from_line(raw)
            except IntegrityError as exc:
                problems.append(AuditProblem(kind="corrupt", line=lineno, message=str(exc)))
                continue
            try:
                digest = exact_digest(raw)
            except IntegrityError:
                digest = None  # rewritten in another form: the hash field is not last
            if digest == rec.hash and not is_canonical(raw, rec):
                problems.append(
                    AuditProblem(
                        kind="corrupt",
                        seq=rec.seq,
                        line=lineno,
                        message=f"record seq {rec.seq} (line {lineno}) is not in the writer's "
                        "canonical form: JSON readers may not read it alike",
                    )
                )
            if digest != rec.hash:
                problems.append(
                    AuditProblem(
                        kind="edited",
                        seq=rec.seq,
                        line=lineno,
                        message=f"record seq {rec.seq} (line {lineno}) does not match its hash: "
                        "its bytes were edited",
                    )
                )
            if rec.seq in hashes:
                problems.append(
                    AuditProblem(
                        kind="duplicate",
                        seq=rec.seq,
                        line=lineno,
                        message=f"seq {rec.seq} appears again at line {lineno}",
                    )
                )
                continue
            if rec.seq < max_seq:
                problems.append(
                    AuditProblem(
                        kind="reordered",
                        seq=rec.seq,
                        line=lineno,
                        message=f"record seq {rec.seq} at line {lineno} comes after seq "
                        f"{max_seq}: records were reordered",
                    )
                )
            max_seq = max(max_seq, rec.seq)
            hashes[rec.seq] = rec.hash
            times[rec.seq] = rec.time
            prevs.append((rec.seq, rec.prev, lineno))
            if rec.kind == GAP:
                gap = _gap(rec, lineno, problems)
                if gap is not None:
                    gaps.append(gap)
            elif rec.kind == RESUMED:
                found = _adopted(rec, lineno, problems)
                if found is not None:
                    adopted.append(found)
            elif rec.kind == CHECKPOINT:
                checkpoints += 1
                if _check_checkpoint(rec, lineno, public_key, problems):
                    good_checkpoints.append(rec.seq)

    for first, last in _missing(hashes, max_seq):
        which = f"seq {first}" if first == last else f"seqs {first}-{last}"
        problems.append(
            AuditProblem(kind="deleted", seq=first, message=f"record {which} missing: deleted")
        )
    for seq, prev, lineno in prevs:
        expected = GENESIS if seq == 0 else hashes.get(seq - 1)
        if expected is not None and prev != expected:
            problems.append(
                AuditProblem(
                    kind="chain",
                    seq=seq,
                    line=lineno,
                    message=f"record seq {seq} does not chain to seq {seq - 1}: one of them was "
                    "replaced or rewritten with a recomputed hash",
                )
            )
    _check_checkpoint_file(log_path, hashes, max_seq, checkpoints > 0, public_key, problems)
    witnessed = _check_head(
        log_path, witness, head, hashes, max_seq, public_key, problems, checkpoints > 0
    )

    # Only a checkpoint with an intact chain up to it seals anything.
    broken = [p.seq for p in problems if p.seq is not None and p.kind != "checkpoint-file"]
    first_broken = min(broken) if broken else None
    sealed = [s for s in good_checkpoints if first_broken is None or s < first_broken]
    sealed_through = sealed[-1] if sealed else None
    unsealed = max_seq - (sealed_through if sealed_through is not None else -1)
    # A log that fails already fails; an unsealed tail is news when nothing else is wrong.
    young = (
        unsealed_max_age is not None
        and unsealed > 0
        and _age(times.get(max_seq - unsealed + 1)) <= unsealed_max_age
    )
    if public_key is not None and unsealed > allow_unsealed and not young and not problems:
        after = f"after seq {sealed_through}" if sealed_through is not None else "in the log"
        problems.append(
            AuditProblem(
                kind="unsealed",
                seq=(sealed_through + 1) if sealed_through is not None else 0,
                message=f"{unsealed} record(s) {after} are covered by no valid signature "
                f"(accepted: {allow_unsealed}); anyone can write such records",
            )
        )
    if not hashes and not allow_empty:
        problems.append(
            AuditProblem(kind="empty", message="the log holds no record: emptied or deleted?")
        )
    problems.sort(key=lambda p: (p.seq if p.seq is not None else -1, p.line or 0))
    return AuditReport(
        path=log_path,
        records=len(hashes),
        checkpoints=checkpoints,
        last_seq=max_seq if max_seq >= 0 else None,
        head=hashes.get(max_seq),
        sealed_through=sealed_through,
        unsealed=unsealed,
        signatures_checked=public_key is not None,
        problems=problems,
        gaps=gaps,
        first_time=times.get(min(times)) if times else None,
        last_time=times.get(max_seq),
        witnessed_through=witnessed,
        adopted=adopted,
    )


_CLOCK_SKEW = 5.0  # seconds a writer's clock may run ahead of the checker's


def _age(time: str | None) -> float:
    """Seconds since an ISO time stamp; infinite for a missing or unreadable one."""
    if time is None:
        return float("inf")
    try:
        then = datetime.fromisoformat(time)
    except ValueError:
        return float("inf")
    if then.tzinfo is None:
        return float("inf")
    age = (datetime.now(UTC) - then).total_seconds()
    # A time stamp from the future is not young: it is wrong, and anyone can write one.
    return age if age >= -_CLOCK_SKEW else float("inf")


def _adopted(rec: AuditRecord, lineno: int, problems: list[AuditProblem]) -> tuple[int, int] | None:
    first, last = rec.payload.get("first"), rec.payload.get("last")
    if (
        set(rec.payload) == {"first", "last"}
        and type(first) is int
        and type(last) is int
        and 0 <= first <= last < rec.seq
    ):
        return first, last
    problems.append(
        AuditProblem(
            kind="corrupt",
            seq=rec.seq,
            line=lineno,
            message=f"resumed record at seq {rec.seq} does not name a range of earlier records",
        )
    )
    return None


def _gap(rec: AuditRecord, lineno: int, problems: list[AuditProblem]) -> AuditGap | None:
    try:
        if "seq" in rec.payload:
            raise ValueError("its payload names a seq of its own")
        return AuditGap.model_validate({**rec.payload, "seq": rec.seq})
    except ValueError as exc:
        problems.append(
            AuditProblem(
                kind="corrupt",
                seq=rec.seq,
                line=lineno,
                message=f"gap record at seq {rec.seq} is malformed: {exc}".splitlines()[0],
            )
        )
        return None


def _read_checkpoint(
    path: str,
    public_key: PublicKey | None,
    what: str,
    kind: ProblemKind,
    problems: list[AuditProblem],
    *,
    missing_ok: bool = False,
) -> AuditRecord | None:
    """An intact (and, with a key, validly signed) checkpoint record stored alone in ``path``
    (the log's ``.checkpoint`` mirror, or its witness); else a ``kind`` problem and ``None``.

    Raises:
        FileNotFoundError: ``path`` does not exist and ``missing_ok`` (the caller decides).
    """
    try:
        data = read_small(path)
    except OSError as exc:  # a folder, a FIFO, a 10 GB file: not a checkpoint the writer wrote
        if missing_ok and isinstance(exc, FileNotFoundError):
            raise
        problems.append(AuditProblem(kind=kind, message=f"{what} {path} cannot be read: {exc}"))
        return None
    try:
        rec = AuditRecord.from_line(data)
        intact = exact_digest(data) == rec.hash and rec.kind == CHECKPOINT
    except IntegrityError as exc:
        problems.append(AuditProblem(kind=kind, message=f"{what} {path}: {exc}"))
        return None
    if intact and public_key is not None:
        intact = _signature_problem(rec, public_key) is None
    if not intact:
        problems.append(
            AuditProblem(
                kind=kind,
                message=f"{what} {path} is not an intact checkpoint"
                + (" signed with the given key" if public_key is not None else ""),
            )
        )
        return None
    return rec


def _check_head(
    log_path: str,
    witness: StrPath | None,
    head: tuple[int, str] | None,
    hashes: dict[int, str],
    max_seq: int,
    public_key: PublicKey | None,
    problems: list[AuditProblem],
    sealed_once: bool,
) -> int | None:
    """Hold the log against heads kept elsewhere; returns the highest one it still holds.

    A witness that does not exist is a problem once the log holds a checkpoint (the writer
    wrote one with it); before that, nothing was witnessed yet.
    """
    known: list[tuple[int, str, str]] = []
    if witness is not None and (sealed_once or os.path.exists(witness)):
        rec = _read_checkpoint(os.fspath(witness), public_key, "witness", "rolled-back", problems)
        if rec is not None:
            known.append((rec.seq, rec.hash, f"the witness {os.fspath(witness)}"))
    if head is not None:
        known.append((head[0], head[1], "the given head"))
    held: int | None = None
    for seq, digest, source in known:
        if seq > max_seq:
            problems.append(
                AuditProblem(
                    kind="rolled-back",
                    seq=max_seq + 1,
                    message=f"the log ends at seq {max_seq}, but {source} records a checkpoint "
                    f"at seq {seq}: the log was cut back to an earlier state",
                )
            )
        elif hashes.get(seq) != digest:
            problems.append(
                AuditProblem(
                    kind="rolled-back",
                    seq=seq,
                    message=f"the log's record at seq {seq} is not the checkpoint {source} "
                    f"records: {log_path} was replaced by another chain",
                )
            )
        else:
            held = seq if held is None else max(held, seq)
    return held


def _check_checkpoint_file(
    log_path: str,
    hashes: dict[int, str],
    max_seq: int,
    sealed_once: bool,
    public_key: PublicKey | None,
    problems: list[AuditProblem],
) -> None:
    side = log_path + ".checkpoint"
    try:
        rec = _read_checkpoint(
            side, public_key, "checkpoint file", "checkpoint-file", problems, missing_ok=True
        )
    except FileNotFoundError:
        # A log never sealed has no mirror yet (its records all count as unsealed); one that
        # holds a checkpoint had one, so its absence means it was removed.
        if sealed_once:
            problems.append(
                AuditProblem(
                    kind="checkpoint-file",
                    message=f"{side} is missing: a cut tail could not be detected",
                )
            )
        return
    if rec is None:
        return
    if rec.seq > max_seq:
        problems.append(
            AuditProblem(
                kind="truncated",
                seq=max_seq + 1,
                message=f"the log ends at seq {max_seq} but its checkpoint file records a "
                f"checkpoint at seq {rec.seq}: records were cut from the end",
            )
        )
    elif hashes.get(rec.seq) != rec.hash:
        problems.append(
            AuditProblem(
                kind="checkpoint-file",
                seq=rec.seq,
                message=f"the log's record at seq {rec.seq} is not the checkpoint the checkpoint "
                "file records: the log was rewritten",
            )
        )
