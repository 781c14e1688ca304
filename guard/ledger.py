"""The call ledger: a tool call id runs at most once, whatever runs the code around it again.

An agent framework may run the code around a tool call more than once: LangGraph runs a
node again from its start when it resumes after a human's answer (with every other call of
that node), and two processes may resume the same paused graph at the same time. The ledger
is where a call is *claimed* right before it runs, and where what it returned is kept once
it has. Claiming is one atomic insert: of all the processes that try, exactly one wins, and
only the winner runs the call. A call id already in the ledger is not run again: when it is
done, its kept result is given back instead.

Each entry is keyed by :class:`CallKey` (the conversation's thread, the place in the graph,
the tool call id) and is in one of two states:

- *claimed*: a process won the claim and is about to run the call, or is running it
  (``owner``, ``claimed_at``, and the ``args_hash`` of the call it claimed);
- *done*: the call ran (or was refused for good); ``result`` holds what it returned, as bytes
  the integration serialized.

An entry claimed and never done means the outcome is unknown: its owner may still be running
it, or crashed while it ran. It is never run again on its own. An operator who has made sure
the call did not run (or wants it to run again anyway) clears it::

    for entry in ledger.unfinished():
        print(entry.key, entry.owner, entry.claimed_at)
    ledger.release(CallKey(thread="t-1", ns="tools", call_id="call_abc"))

or, in SQL, ``DELETE FROM peerguard_calls WHERE thread_id = ... AND call_id = ...
AND done_at IS NULL``. The next run of the call's node then decides on it afresh.

Entries are kept as long as their thread may be resumed or replayed: delete a thread's rows
(``DELETE FROM peerguard_calls WHERE thread_id = ...``) when its checkpoints go.

Three ledgers, one protocol (:class:`CallLedger`):

- :class:`MemoryLedger`: in this process only;
- :class:`SqliteLedger`: a table in a SQLite file (the SQLite checkpointer's own file, or any);
- :class:`PostgresLedger`: a table in PostgreSQL, through psycopg 3.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import psycopg

TABLE = "peerguard_calls"
"""The table the SQLite and PostgreSQL ledgers keep their entries in."""


class CallKey(NamedTuple):
    """Which call an entry is about.

    Attributes:
        thread: The conversation (LangGraph's ``thread_id``).
        ns: Where in the graph the call was made (the node path, without task ids).
        call_id: The tool call id.
    """

    thread: str
    ns: str
    call_id: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One call's entry: claimed, and done once ``done_at`` is set.

    Attributes:
        key: The call.
        args_hash: The hash of the call that was claimed (tool and arguments).
        owner: Who claimed it: ``host:pid:token`` of the process.
        claimed_at: When (seconds since the epoch).
        done_at: When it was done; ``None`` while it is claimed only.
        kind: The serializer's name for ``result``.
        result: What the call returned, serialized; ``None`` until done.
    """

    key: CallKey
    args_hash: str
    owner: str
    claimed_at: float
    done_at: float | None = None
    kind: str = ""
    result: bytes | None = None

    @property
    def done(self) -> bool:
        """Whether the call's outcome is kept."""
        return self.done_at is not None


@runtime_checkable
class CallLedger(Protocol):
    """Where calls are claimed before they run and their results kept after."""

    def get(self, key: CallKey) -> LedgerEntry | None:
        """The entry of ``key``, if any."""
        ...

    def claim(self, key: CallKey, args_hash: str) -> bool:
        """Claim ``key`` for this process; True only for the one caller that wins it."""
        ...

    def finish(self, key: CallKey, kind: str, result: bytes) -> None:
        """Mark this process's claim of ``key`` done, keeping ``result``."""
        ...

    def release(self, key: CallKey) -> bool:
        """Forget a claim that is not done (an operator's decision, or a call that never
        started); True when there was one."""
        ...

    def unfinished(self) -> list[LedgerEntry]:
        """Every entry claimed and not done, oldest first."""
        ...


_me: tuple[int, str] = (0, "")


def this_owner() -> str:
    """This process as a claim's owner: ``host:pid:token`` (a fresh token after a fork)."""
    global _me  # one identity per process, renewed in a forked child
    pid = os.getpid()
    if _me[0] != pid:
        _me = (pid, secrets.token_hex(6))
    return f"{socket.gethostname()}:{pid}:{_me[1]}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process that claimed is still running: known on this host, else ``None``."""
    if owner == this_owner():
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():  # this pid, another token: an earlier process that had our pid
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


def settled(
    ledger: CallLedger, key: CallKey, *, wait: float, poll: float = 0.05
) -> LedgerEntry | None:
    """The entry of ``key`` once done; as it stands when its owner is gone or after ``wait``
    seconds; ``None`` when it was released meanwhile."""
    deadline = time.monotonic() + wait
    while True:
        entry = ledger.get(key)
        if entry is None or entry.done:
            return entry
        if owner_alive(entry.owner) is False or time.monotonic() >= deadline:
            return entry
        time.sleep(poll)


class MemoryLedger:
    """A ledger in this process's memory: it protects against the re-runs of one process,
    not against another process or a restart.

    Args:
        keep: How many done entries to keep; the oldest are forgotten beyond it (a claim that
            is not done is never forgotten).
    """

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._entries: OrderedDict[CallKey, LedgerEntry] = OrderedDict()
        self._done = 0

    def get(self, key: CallKey) -> LedgerEntry | None:
        """The entry of ``key``, if any."""
        with self._lock:
            return self._entries.get(key)

    def claim(self, key: CallKey, args_hash: str) -> bool:
        """Claim ``key``; True only for the first caller."""
        with self._lock:
            if key in self._entries:
                return False
            self._entries[key] = LedgerEntry(key, args_hash, this_owner(), time.time())
            return True

    def finish(self, key: CallKey, kind: str, result: bytes) -> None:
        """Mark this process's claim of ``key`` done, keeping ``result``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.done or entry.owner != this_owner():
                return
            self._entries[key] = replace(entry, done_at=time.time(), kind=kind, result=result)
            self._entries.move_to_end(key)
            self._done += 1
            excess = self._done - self.keep
            if excess > 0:  # forget the oldest done entries: they come first
                gone: list[CallKey] = []
                for k, e in self._entries.items():
                    if e.done:
                        gone.append(k)
                        if len(gone) == excess:
                            break
                for k in gone:
                    del self._entries[k]
                self._done -= len(gone)

    def release(self, key: CallKey) -> bool:
        """Forget a claim of ``key`` that is not done."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.done:
                return False
            del self._entries[key]
            return True

    def unfinished(self) -> list[LedgerEntry]:
        """Every entry claimed and not done, oldest first."""
        with self._lock:
            found = [e for e in self._entries.values() if not e.done]
        return sorted(found, key=lambda e: e.claimed_at)


_SELECT = "SELECT thread_id, ns, call_id, args_hash, owner, claimed_at, done_at, kind, result FROM peerguard_calls "
_SQL = {
    "get": _SELECT + "WHERE thread_id = ? AND ns = ? AND call_id = ?",
    "claim": "INSERT INTO peerguard_calls (thread_id, ns, call_id, args_hash, owner, claimed_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, ns, call_id) DO NOTHING",
    "finish": "UPDATE peerguard_calls SET done_at = ?, kind = ?, result = ? WHERE thread_id = ? "
    "AND ns = ? AND call_id = ? AND owner = ? AND done_at IS NULL",
    "release": "DELETE FROM peerguard_calls WHERE thread_id = ? AND ns = ? AND call_id = ? "
    "AND done_at IS NULL",
    "unfinished": _SELECT + "WHERE done_at IS NULL ORDER BY claimed_at",
}


def _table(real: str, blob: str) -> str:
    return (
        "CREATE TABLE IF NOT EXISTS peerguard_calls (thread_id TEXT NOT NULL, ns TEXT NOT NULL, "
        f"call_id TEXT NOT NULL, args_hash TEXT NOT NULL, owner TEXT NOT NULL, claimed_at {real} "
        f"NOT NULL, done_at {real}, kind TEXT, result {blob}, PRIMARY KEY (thread_id, ns, call_id))"
    )


def _entry(row: Any) -> LedgerEntry:
    thread, ns, call_id, hash_, owner, claimed_at, done_at, kind, result = row
    return LedgerEntry(
        CallKey(thread, ns, call_id), hash_, owner, float(claimed_at),
        None if done_at is None else float(done_at), kind or "",
        None if result is None else bytes(result),
    )  # fmt: skip


class _SqlLedger:
    """The statements both SQL ledgers run; each says how to get a cursor."""

    _mark = "?"

    def _cursor(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _run(self, name: str, params: tuple[Any, ...] = ()) -> Any:
        sql = _SQL[name] if self._mark == "?" else _SQL[name].replace("?", self._mark)
        with self._cursor() as cur:
            cur.execute(sql, params)
            if name in ("get", "unfinished"):
                return cur.fetchall()
            return cur.rowcount

    def get(self, key: CallKey) -> LedgerEntry | None:
        """The entry of ``key``, if any."""
        rows = self._run("get", tuple(key))
        return _entry(rows[0]) if rows else None

    def claim(self, key: CallKey, args_hash: str) -> bool:
        """Claim ``key``; True only for the one caller, of any process, that inserts it."""
        return bool(self._run("claim", (*key, args_hash, this_owner(), time.time())) == 1)

    def finish(self, key: CallKey, kind: str, result: bytes) -> None:
        """Mark this process's claim of ``key`` done, keeping ``result``."""
        self._run("finish", (time.time(), kind, result, *key, this_owner()))

    def release(self, key: CallKey) -> bool:
        """Forget a claim of ``key`` that is not done."""
        return bool(self._run("release", tuple(key)) > 0)

    def unfinished(self) -> list[LedgerEntry]:
        """Every entry claimed and not done, oldest first."""
        return [_entry(r) for r in self._run("unfinished")]


class SqliteLedger(_SqlLedger):
    """A ledger in a SQLite database: a table beside the checkpointer's, safe with WAL and
    with several processes (a claim is one ``INSERT ... ON CONFLICT DO NOTHING``).

    Args:
        target: The database file's path, or an open connection to share (such as a
            ``SqliteSaver``'s ``conn``; then pass its ``lock`` too).
        lock: Held around every use of the connection.
        timeout: How long to wait for another process's write lock, in seconds (for a path).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | sqlite3.Connection,
        *,
        lock: Any = None,
        timeout: float = 30.0,
    ) -> None:
        if isinstance(target, sqlite3.Connection):
            self._conn, self._own = target, False
        else:
            self._conn = sqlite3.connect(
                os.fspath(target), timeout=timeout, check_same_thread=False, isolation_level=None
            )
            self._own = True
        self._lock = lock if lock is not None else threading.Lock()
        self._ready = False

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.row_factory = None
            try:
                if not self._ready:
                    cur.execute(_table("REAL", "BLOB"))
                    self._ready = True
                yield cur
                if self._conn.in_transaction:
                    self._conn.commit()
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.rollback()
                raise
            finally:
                cur.close()

    def close(self) -> None:
        """Close the connection this ledger opened (a shared one is left open)."""
        if self._own:
            with self._lock:
                self._conn.close()


class PostgresLedger(_SqlLedger):
    """A ledger in PostgreSQL (psycopg 3): a table beside the checkpointer's; a claim is one
    ``INSERT ... ON CONFLICT DO NOTHING``, which exactly one session wins.

    Args:
        target: A connection string (a connection of its own is opened on first use), an
            open ``psycopg.Connection`` to share (such as a ``PostgresSaver``'s ``conn``;
            then pass its ``lock`` too), or a ``psycopg_pool.ConnectionPool``. psycopg is
            imported only when the ledger is first used.
        lock: Held around every use of a single connection.
    """

    _mark = "%s"

    def __init__(
        self,
        target: Any,
        *,
        lock: Any = None,
    ) -> None:
        self._target = target
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = lock if lock is not None else threading.Lock()
        self._ready = False

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        target = self._target
        if isinstance(target, str | psycopg.Connection):
            with self._lock:
                if isinstance(target, str):
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(target, autocommit=True)
                    target = self._conn
                yield target
        else:
            with target.connection() as pooled:
                yield pooled

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        from psycopg.rows import tuple_row

        with self._connection() as conn:
            if not self._ready:
                with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                    # One creator at a time: concurrent CREATE TABLE IF NOT EXISTS can fail.
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext('peerguard_calls'))")
                    cur.execute(_table("DOUBLE PRECISION", "BYTEA"))
                self._ready = True
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                yield cur

    def close(self) -> None:
        """Close the connection this ledger opened (a shared one or a pool is left open)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = [
    "TABLE",
    "CallKey",
    "CallLedger",
    "LedgerEntry",
    "MemoryLedger",
    "PostgresLedger",
    "SqliteLedger",
    "owner_alive",
    "settled",
    "this_owner",
]
