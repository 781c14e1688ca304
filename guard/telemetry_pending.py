"""Where :class:`~guard.telemetry.OtelSink` counts the confirmations that wait for a human.

The process that asks for a confirmation and the one that gets the answer are often
different (a LangGraph graph paused in one worker and resumed in another). A counter kept in
each process cannot be right: the asking one never sees the answer, and the resuming one runs
the node again and asks once more. So ``peerguard.confirmations.pending`` is an observable
gauge read from one source of truth, a :class:`PendingStore`:

- :class:`MemoryPending` (the default): this process only, right when one process asks and
  answers;
- :class:`SqlitePending`: a table (``peerguard_pending``) in a SQLite file every process of
  the deployment opens (the LangGraph checkpointer's file, or any shared one). Asking inserts
  the call id (a repeat is ignored), answering deletes it (whoever asked), and every process
  reports the same count. Aggregate it across processes with ``max``, not ``sum``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from typing import Protocol, runtime_checkable

Key = tuple[str, str]
"""(agent, rule) of a pending confirmation; rule is ``""`` when none matched."""


@runtime_checkable
class PendingStore(Protocol):
    """The confirmations asked and not yet answered, by call id."""

    def add(self, call_id: str, agent: str, rule: str) -> None:
        """A confirmation was asked (again: ignored)."""

    def remove(self, call_id: str) -> None:
        """It was answered or abandoned (unknown call ids are ignored)."""

    def counts(self) -> dict[Key, int]:
        """How many wait, by (agent, rule)."""


class MemoryPending:
    """Pending confirmations of this process, the oldest forgotten past ``size``."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, Key] = OrderedDict()

    def add(self, call_id: str, agent: str, rule: str) -> None:
        """Record an asked confirmation."""
        with self._lock:
            if call_id in self._rows:
                return
            self._rows[call_id] = (agent, rule)
            if len(self._rows) > self._size:
                self._rows.popitem(last=False)

    def remove(self, call_id: str) -> None:
        """Forget an answered one."""
        with self._lock:
            self._rows.pop(call_id, None)

    def counts(self) -> dict[Key, int]:
        """Pending confirmations by (agent, rule)."""
        with self._lock:
            return dict(Counter(self._rows.values()))


class SqlitePending:
    """Pending confirmations in a SQLite file shared by every process that asks or answers.

    Args:
        path: The database file (created, with its table, if missing).
    """

    TABLE = "peerguard_pending"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS peerguard_pending (call_id TEXT PRIMARY KEY, "
                "agent TEXT NOT NULL, rule TEXT NOT NULL, asked_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        # One connection per use: the gauge is read on the SDK's metric thread.
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def add(self, call_id: str, agent: str, rule: str) -> None:
        """Record an asked confirmation (a repeat keeps the first)."""
        self._run(
            "INSERT OR IGNORE INTO peerguard_pending VALUES (?, ?, ?, ?)",
            (call_id, agent, rule, time.time()),
        )

    def remove(self, call_id: str) -> None:
        """Delete an answered one, whichever process asked."""
        self._run("DELETE FROM peerguard_pending WHERE call_id = ?", (call_id,))

    def counts(self) -> dict[Key, int]:
        """Pending confirmations by (agent, rule), across every process."""
        rows = self._run("SELECT agent, rule, COUNT(*) FROM peerguard_pending GROUP BY agent, rule")
        return {(str(a), str(r)): int(str(n)) for a, r, n in rows}


__all__ = ["Key", "MemoryPending", "PendingStore", "SqlitePending"]
