"""Checking an audit log written by :class:`guard.audit.AuditLog`: :func:`verify_log`.

The check reads the log once, line by line: each record's hash, the chain of ``prev`` hashes,
sequence numbers without gaps, and each checkpoint's signature against the trusted keys. It
then holds the log against its ``<log>.checkpoint`` file, so that records cut off the end show.
What it finds is an :class:`AuditReport` of :class:`AuditProblem` entries: a damaged log is
a finding, not an exception (``AuditReport.raise_for_problems`` turns it into one).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from guard.audit import CHECKPOINT, GENESIS, AuditRecord, ProblemKind, StrPath, checkpoint_statement
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


class AuditReport(BaseModel):
    """The result of :func:`verify_log`.

    ``sealed_through`` is the seq of the last checkpoint that verified (signature included
    when a public key was given); ``unsealed`` counts the records after it, which nothing
    signed covers yet.
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


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _check_checkpoint(
    rec: AuditRecord, lineno: int, public_key: PublicKey | None, problems: list[AuditProblem]
) -> bool:
    """Check one checkpoint record; returns True when it verifies."""
    p = rec.payload
    if p.get("count") != rec.seq or p.get("head") != rec.prev:
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
    sig = p.get("sig")
    if not isinstance(sig, str):
        problems.append(
            AuditProblem(
                kind="unsigned-checkpoint",
                seq=rec.seq,
                line=lineno,
                message=f"checkpoint at seq {rec.seq} carries no signature",
            )
        )
        return False
    try:
        verify_signature(checkpoint_statement(rec.seq, rec.prev), decode_signature(sig), public_key)
    except IntegrityError:
        problems.append(
            AuditProblem(
                kind="forged-signature",
                seq=rec.seq,
                line=lineno,
                message=f"checkpoint at seq {rec.seq}: signature does not verify with the "
                "given key (forged, or the chain before it was rewritten)",
            )
        )
        return False
    return True


def verify_log(
    path: StrPath,
    public_key: PublicKey | None = None,
    *,
    allow_unsealed: int = 0,
    allow_empty: bool = False,
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
        allow_empty: Accept a log with no record (otherwise an empty or missing log is a
            problem: deleting the log must not verify).

    Returns:
        A report; ``report.ok`` is False when anything is wrong (see ``report.problems``).

    Raises:
        ConfigError: Neither the log nor its checkpoint file exists.
    """
    log_path = os.fspath(path)
    problems: list[AuditProblem] = []
    hashes: dict[int, str] = {}
    prevs: list[tuple[int, str, int]] = []  # (seq, prev, line) in file order
    checkpoints = 0
    good_checkpoints: list[int] = []
    max_seq = -1
    try:
        f = open(log_path, "rb")  # noqa: SIM115 - read in a loop below, closed by `with`
    except FileNotFoundError:
        if not os.path.exists(log_path + ".checkpoint"):
            raise ConfigError(f"no audit log at {log_path}") from None
        f = open(os.devnull, "rb")  # noqa: SIM115 - the log is gone: verify as empty
        problems.append(AuditProblem(kind="truncated", message="the log file is missing"))
    with f:
        for lineno, raw in enumerate(f, start=1):
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
            if rec.computed_hash() != rec.hash:
                problems.append(
                    AuditProblem(
                        kind="edited",
                        seq=rec.seq,
                        line=lineno,
                        message=f"record seq {rec.seq} (line {lineno}) does not match its hash: "
                        "its content was edited",
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
            prevs.append((rec.seq, rec.prev, lineno))
            if rec.kind == CHECKPOINT:
                checkpoints += 1
                if _check_checkpoint(rec, lineno, public_key, problems):
                    good_checkpoints.append(rec.seq)

    missing = [n for n in range(max_seq + 1) if n not in hashes]
    for first, last in _ranges(missing):
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

    # Only a checkpoint with an intact chain up to it seals anything.
    broken = [p.seq for p in problems if p.seq is not None and p.kind != "checkpoint-file"]
    first_broken = min(broken) if broken else None
    sealed = [s for s in good_checkpoints if first_broken is None or s < first_broken]
    sealed_through = sealed[-1] if sealed else None
    unsealed = max_seq - (sealed_through if sealed_through is not None else -1)
    # A log that fails already fails; an unsealed tail is news when nothing else is wrong.
    if public_key is not None and unsealed > allow_unsealed and not problems:
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
    )


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
        with open(side, "rb") as f:
            data = f.read()
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
    try:
        rec = AuditRecord.from_line(data)
    except IntegrityError as exc:
        problems.append(AuditProblem(kind="checkpoint-file", message=f"{side}: {exc}"))
        return
    if rec.kind != CHECKPOINT or rec.computed_hash() != rec.hash:
        problems.append(
            AuditProblem(
                kind="checkpoint-file", message=f"{side} is not an intact checkpoint record"
            )
        )
        return
    if public_key is not None:
        sig = rec.payload.get("sig")
        try:
            if not isinstance(sig, str):
                raise IntegrityError("unsigned")
            verify_signature(
                checkpoint_statement(rec.seq, rec.prev), decode_signature(sig), public_key
            )
        except IntegrityError:
            problems.append(
                AuditProblem(
                    kind="checkpoint-file",
                    message=f"{side}: signature missing or invalid for the given key",
                )
            )
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
