"""Checking many audit logs together: one per writer, or shared, and their timeline.

:func:`verify_logs` runs :func:`guard.auditcheck.verify_log` on each log of a set and checks
the set itself; :func:`interleave` merges their records by time.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from guard.auditcheck import AuditProblem, AuditReport, _open_log, verify_log
from guard.auditrecord import MAX_RECORD_BYTES, AuditRecord, StrPath
from guard.exceptions import ConfigError, IntegrityError
from guard.signing import PublicKey


class AuditSetReport(BaseModel):
    """The result of :func:`verify_logs`: one report per log, and how the logs interleave.

    ``overlapping`` names the pairs of logs whose writers were active at the same time
    (their first-to-last record spans overlap): read them together, with :func:`interleave`.
    """

    model_config = ConfigDict(frozen=True)

    reports: list[AuditReport]
    overlapping: list[tuple[str, str]] = Field(default_factory=list)
    problems: list[AuditProblem] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every log verified and the set itself is sound."""
        return not self.problems and all(r.ok for r in self.reports)

    @property
    def records(self) -> int:
        """Records over every log."""
        return sum(r.records for r in self.reports)

    @property
    def first_time(self) -> str | None:
        """The time of the earliest record of any log."""
        times = [r.first_time for r in self.reports if r.first_time is not None]
        return min(times, key=_when) if times else None

    @property
    def last_time(self) -> str | None:
        """The time of the latest record of any log."""
        times = [r.last_time for r in self.reports if r.last_time is not None]
        return max(times, key=_when) if times else None


def log_files(paths: Iterable[StrPath]) -> list[str]:
    """The log files named by ``paths``: files as given, folders as their ``*.jsonl`` files.

    Raises:
        ConfigError: A path does not exist, or a folder holds no log.
    """
    out: list[str] = []
    for given in paths:
        path = os.fspath(given)
        if os.path.isdir(path):
            found = sorted(
                os.path.join(path, name) for name in os.listdir(path) if name.endswith(".jsonl")
            )
            if not found:
                raise ConfigError(f"{path}: a folder with no audit log (*.jsonl) in it")
            out += found
        elif os.path.exists(path) or os.path.exists(path + ".checkpoint"):
            out.append(path)
        else:
            raise ConfigError(f"no audit log at {path}")
    return out


def witness_for(log: StrPath, witness: StrPath | None) -> str | None:
    """The witness of ``log``: ``witness`` itself when a file, ``<witness>/<log name>.witness``
    when a folder (one witness folder for many writers' logs)."""
    if witness is None:
        return None
    witness = os.fspath(witness)
    if os.path.isdir(witness):
        return os.path.join(witness, os.path.basename(os.fspath(log)) + ".witness")
    return witness


def verify_logs(
    paths: Iterable[StrPath],
    public_key: PublicKey | None = None,
    *,
    witness: StrPath | None = None,
    **options: Any,
) -> AuditSetReport:
    """Check a set of logs, one per writer (or shared), with :func:`verify_log` each.

    Many processes on one host may share a log (appends take a ``flock``); across hosts,
    or where ``flock`` is unreliable (network filesystems), give each writer its own log.
    Either way the set is checked here: each log's own chain, and that no log is another's
    copy (the same chain counted twice).

    Args:
        paths: Log files, or folders of ``*.jsonl`` logs.
        public_key: The checkpoint signer's public key (see :func:`verify_log`).
        witness: A witness folder holding ``<log name>.witness`` for each log, or, for a
            single log, its witness file.
        **options: Passed to :func:`verify_log` (``allow_unsealed``, ``unsealed_max_age``,
            ``allow_empty``, ``head``).

    Returns:
        One report per log and how they interleave.

    Raises:
        ConfigError: A path names no log.
    """
    paths = list(paths)
    files = log_files(paths)
    if witness is not None and len(files) > 1 and not os.path.isdir(os.fspath(witness)):
        raise ConfigError(f"{os.fspath(witness)}: several logs need a witness folder, not a file")
    reports = [verify_log(f, public_key, witness=witness_for(f, witness), **options) for f in files]
    problems: list[AuditProblem] = []
    folders = [os.fspath(p) for p in paths if os.path.isdir(os.fspath(p))]
    if witness is not None and folders and os.path.isdir(os.fspath(witness)):
        # A log deleted or renamed away, with its checkpoint file, leaves no trace in its
        # folder; its witness remains. Every witness must name a log of the set.
        names = {os.path.basename(f) for f in files}
        for entry in sorted(os.listdir(os.fspath(witness))):
            name = entry.removesuffix(".witness")
            if entry.endswith(".witness") and name not in names:
                problems.append(
                    AuditProblem(
                        kind="deleted",
                        message=f"the witness folder holds {entry}, but no log {name} is in "
                        f"{', '.join(folders)}: deleted or renamed (verify every folder its "
                        "witnesses serve together)",
                    )
                )
    firsts: dict[str, str] = {}
    for path in files:
        first = _first_hash(path)
        if first is not None and first in firsts:
            problems.append(
                AuditProblem(
                    kind="duplicate",
                    message=f"{path} holds the same chain as {firsts[first]}: one writer's log "
                    "counted twice",
                )
            )
        elif first is not None:
            firsts[first] = path
    spans = [
        (r.path, _when(r.first_time), _when(r.last_time))
        for r in reports
        if r.first_time is not None and r.last_time is not None
    ]
    overlapping = [
        (a, b)
        for i, (a, a0, a1) in enumerate(spans)
        for (b, b0, b1) in spans[i + 1 :]
        if a0 <= b1 and b0 <= a1
    ]
    return AuditSetReport(reports=reports, overlapping=overlapping, problems=problems)


def interleave(paths: Iterable[StrPath]) -> Iterator[tuple[str, AuditRecord]]:
    """Every record of a set of logs, merged by time (each log's own order kept).

    Reads each log once, lazily. A line that is not a record is skipped here: run
    :func:`verify_logs` to hear about it.

    Yields:
        ``(log path, record)`` pairs, earliest first.
    """
    streams = [_timed(f) for f in log_files(paths)]
    for _when_at, _n, path, rec in heapq.merge(*streams):
        yield path, rec


def _timed(path: str) -> Iterator[tuple[datetime, int, str, AuditRecord]]:
    try:
        f = _open_log(path)
    except OSError:
        return  # not a log file (verify_logs says so)
    with f:
        for n, raw in enumerate(iter(lambda: f.readline(MAX_RECORD_BYTES + 1), b"")):
            try:
                rec = AuditRecord.from_line(raw)
            except IntegrityError:
                continue
            yield _when(rec.time), n, path, rec


def _first_hash(path: str) -> str | None:
    try:
        with _open_log(path) as f:
            return AuditRecord.from_line(f.readline(MAX_RECORD_BYTES + 1)).hash
    except (OSError, IntegrityError):
        return None


def _when(time: str | None) -> datetime:
    try:
        then = datetime.fromisoformat(time or "")
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return then if then.tzinfo is not None else then.replace(tzinfo=UTC)
