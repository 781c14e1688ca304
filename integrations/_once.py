"""Exactly once inside LangGraph: where a tool call's claim and result live, and how the
answers of one node run reach their calls.

The guard's LangGraph integration (:mod:`guard.integrations.langgraph`) uses this module; it
is not an API of its own. Three parts:

- :class:`Ledgers` finds the ledger (:mod:`guard.ledger`) a call is claimed in: the one the
  user passed, else a table in the graph checkpointer's own database (SQLite or PostgreSQL,
  sync or async saver), else one in this process's memory.
- :class:`Slot` is one call's place in its ledger: what it already did, claiming it, keeping
  what it returned (serialized with LangGraph's own serializer, so a ``ToolMessage`` or a
  ``Command`` comes back as it was).
- :class:`Run` is one run of a tool node's task. LangGraph gives the answers of a task's
  interrupts back in the order the task calls ``interrupt()``, and a ``ToolNode`` runs the
  calls of one AI message side by side, in no fixed order: an answer must be matched to its
  call by the call id it names, not by when it comes.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command

from guard.ledger import (
    CallKey,
    CallLedger,
    LedgerEntry,
    MemoryLedger,
    PostgresLedger,
    SqliteLedger,
    settled,
)

ToolResult = ToolMessage | Command[Any]

CHECKPOINTER_KEY = "__pregel_checkpointer"
"""Where LangGraph puts the graph's checkpointer in ``config["configurable"]``."""

SCRATCHPAD_KEY = "__pregel_scratchpad"
"""Where LangGraph puts a task run's scratchpad (one per run, shared by its calls)."""

CLAIM_WAIT = 30.0
"""How long a call waits for another process to finish the same call id, in seconds."""

_SERDE = JsonPlusSerializer()


def configurable_of(request: Any) -> Mapping[str, Any]:
    """The ``config["configurable"]`` a tool call request runs under (empty when none)."""
    config = getattr(getattr(request, "runtime", None), "config", None) or {}
    found = config.get("configurable") if isinstance(config, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def key_of(configurable: Mapping[str, Any], call_id: str) -> CallKey | None:
    """The ledger key of ``call_id``: its thread and node path (task ids left out, so that a
    node run again in a new task still finds it); ``None`` outside a thread."""
    thread = configurable.get("thread_id")
    if thread is None or thread == "":
        return None
    ns = str(configurable.get("checkpoint_ns") or "")
    path = "|".join(part.partition(":")[0] for part in ns.split("|")) if ns else ""
    return CallKey(str(thread), path, call_id)


def ask_id_of(configurable: Mapping[str, Any], call_id: str) -> str:
    """Names one question: the thread, the graph task that asks (its namespace holds the
    task id) and the tool call. Stable when the task runs again; another turn, another id."""
    thread = str(configurable.get("thread_id") or "")
    ns = str(configurable.get("checkpoint_ns") or "")
    return hashlib.sha256("\0".join((thread, ns, call_id)).encode()).hexdigest()[:32]


# ---------------------------------------------------------------- which ledger


def _conninfo(conn: Any) -> str:
    """A connection string for a new connection to the database ``conn`` is connected to."""
    conninfo = getattr(conn, "conninfo", None)  # a pool
    if isinstance(conninfo, str):
        return conninfo
    from psycopg.conninfo import make_conninfo

    info = conn.info
    return make_conninfo(info.dsn, password=info.password) if info.password else str(info.dsn)


def _durable(saver: Any) -> CallLedger | None:
    """A ledger in ``saver``'s own database, for the savers that keep one; ``None`` else.

    Only a saver whose module is already imported can be one: nothing optional is imported.
    """
    sqlite = sys.modules.get("langgraph.checkpoint.sqlite")
    if sqlite is not None and isinstance(saver, sqlite.SqliteSaver):
        return SqliteLedger(saver.conn, lock=saver.lock)
    postgres = sys.modules.get("langgraph.checkpoint.postgres")
    if postgres is not None and isinstance(saver, postgres.PostgresSaver):
        import psycopg

        conn = saver.conn
        if not isinstance(conn, psycopg.Connection):
            return PostgresLedger(conn)  # a pool
        if saver.pipe is None:
            return PostgresLedger(conn, lock=saver.lock)
        return PostgresLedger(_conninfo(conn))  # a connection in pipeline mode: not shared
    apostgres = sys.modules.get("langgraph.checkpoint.postgres.aio")
    if apostgres is not None and isinstance(saver, apostgres.AsyncPostgresSaver):
        return PostgresLedger(_conninfo(saver.conn))  # async connections: a sync one beside
    return None


async def _sqlite_file(saver: Any) -> str:
    """The file an ``AsyncSqliteSaver`` keeps its checkpoints in ("" for a memory database)."""
    async with saver.lock, saver.conn.execute("PRAGMA database_list") as cur:
        rows = await cur.fetchall()
    return next((str(r[2] or "") for r in rows if r[1] == "main"), "")


class Ledgers:
    """The ledger each call is claimed in.

    Args:
        ledger: The ledger to use for every call; when ``None``, a table in the graph
            checkpointer's own database when it has one (``SqliteSaver``, ``PostgresSaver``,
            ``AsyncSqliteSaver`` on a file, ``AsyncPostgresSaver``), else this process's memory.
    """

    def __init__(self, ledger: CallLedger | None) -> None:
        self.fixed = ledger
        self.memory = MemoryLedger()
        self._lock = threading.Lock()
        self._made: weakref.WeakKeyDictionary[Any, CallLedger] = weakref.WeakKeyDictionary()

    def _known(self, saver: Any) -> CallLedger | None:
        with self._lock:
            try:
                return self._made.get(saver)
            except TypeError:  # a saver that takes no weak reference: made anew each time
                return None

    def _keep(self, saver: Any, made: CallLedger) -> CallLedger:
        with self._lock:
            try:
                kept = self._made.setdefault(saver, made)
            except TypeError:
                kept = made
        if kept is made and made is not self.memory:
            close = getattr(made, "close", None)
            if close is not None:
                weakref.finalize(saver, close)
        elif kept is not made:
            close = getattr(made, "close", None)
            if close is not None:
                close()
        return kept

    def of(self, configurable: Mapping[str, Any]) -> CallLedger:
        """The ledger for a call under ``configurable`` (from sync code)."""
        if self.fixed is not None:
            return self.fixed
        saver = configurable.get(CHECKPOINTER_KEY)
        if saver is None or saver is False:
            return self.memory
        known = self._known(saver)
        if known is not None:
            return known
        return self._keep(saver, _durable(saver) or self.memory)

    async def aof(self, configurable: Mapping[str, Any]) -> CallLedger:
        """The ledger for a call under ``configurable`` (from async code)."""
        if self.fixed is not None:
            return self.fixed
        saver = configurable.get(CHECKPOINTER_KEY)
        asqlite = sys.modules.get("langgraph.checkpoint.sqlite.aio")
        if asqlite is None or not isinstance(saver, asqlite.AsyncSqliteSaver):
            return self.of(configurable)  # no I/O: connections open on first use
        known = self._known(saver)
        if known is not None:
            return known
        path = await _sqlite_file(saver)
        return self._keep(saver, SqliteLedger(path) if path else self.memory)


# ---------------------------------------------------------------- one call's place


def _error(call_id: str, tool: str, text: str) -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call_id, name=tool, status="error")


@dataclass
class Slot:
    """One call's place in its ledger."""

    ledger: CallLedger
    key: CallKey
    args_hash: str
    tool: str
    wait: float = CLAIM_WAIT

    def message(self, text: str) -> ToolMessage:
        """An error ``ToolMessage`` answering this call."""
        return _error(self.key.call_id, self.tool, text)

    def outcome(self, entry: LedgerEntry) -> ToolResult:
        """What this call is answered with, given an entry that another run made."""
        call_id = self.key.call_id
        if entry.args_hash != self.args_hash:
            return self.message(
                f"peerguard: tool call id {call_id} was already used for another call of "
                "this conversation (other tool or arguments). A call id runs at most once, "
                "so this call was not run."
            )
        if entry.done and entry.result is not None:
            try:
                kept: ToolResult = _SERDE.loads_typed((entry.kind, entry.result))
            except Exception as exc:  # a result this version cannot read: not run again
                return self.message(
                    f"peerguard: tool call {call_id} already ran, and what it returned could "
                    f"not be read back ({type(exc).__name__}); it was not run again."
                )
            return kept
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.claimed_at))
        return self.message(
            f"peerguard: the outcome of tool call {call_id} ({self.tool}) is unknown: process "
            f"{entry.owner} claimed it at {when} to run it and has not finished it (it is "
            "still running, or it stopped while running). It will not be run again. An "
            "operator who has checked that it did not run can clear it with "
            f"CallLedger.release(CallKey({self.key.thread!r}, {self.key.ns!r}, {call_id!r})), "
            "and run the graph again."
        )

    def prior(self) -> ToolResult | None:
        """What an earlier run of this call id left: its result, or why it will not run;
        ``None`` when there was none."""
        entry = self.ledger.get(self.key)
        if entry is not None and not entry.done and entry.args_hash == self.args_hash:
            entry = settled(self.ledger, self.key, wait=self.wait)
        return None if entry is None else self.outcome(entry)

    def take(self) -> ToolResult | None:
        """Claim the call: ``None`` when this process won it (run the call now); else the
        outcome of the run that won it (waited for while its owner runs it)."""
        for _ in range(3):
            if self.ledger.claim(self.key, self.args_hash):
                return None
            entry = settled(self.ledger, self.key, wait=self.wait)
            if entry is not None:
                return self.outcome(entry)
            # Released meanwhile (an operator, or a run that stopped before the call): again.
        return self.message(
            f"peerguard: tool call {self.key.call_id} could not be claimed; it was not run."
        )

    def keep(self, result: ToolResult) -> ToolResult:
        """Mark the claim done with ``result``, which is given back."""
        try:
            kind, data = _SERDE.dumps_typed(result)
        except Exception as exc:  # kept in words: it ran, and must not run again
            kind, data = _SERDE.dumps_typed(
                self.message(
                    f"peerguard: tool call {self.key.call_id} ran, but what it returned could "
                    f"not be kept ({type(exc).__name__}); it is not run again."
                )
            )
        self.ledger.finish(self.key, kind, data)
        return result

    def failed(self, exc: BaseException) -> None:
        """The call raised: it started, so it is done, with the error as its result."""
        self.keep(
            self.message(
                f"peerguard: tool call {self.key.call_id} ({self.tool}) failed: "
                f"{type(exc).__name__}: {exc}. It started, so it is not run again."
            )
        )

    def release(self) -> None:
        """Give the claim back: the call did not start, and may run when asked again."""
        self.ledger.release(self.key)


# ---------------------------------------------------------------- one task run


@dataclass
class Run:
    """One run of a tool node's task, shared by the calls it runs side by side.

    Attributes:
        lock: Held while a call looks for its answer or asks LangGraph for the next one.
        answers: Answers taken from the task's interrupts, by the call id they name.
        asking: The ids of the calls that asked a human in this run.
        notes: What every call of the run says when it asks (an answer it set aside that
            could have been meant for any of them).
        active: Calls of the run in progress (async).
        parked: Of those, the ones waiting to raise their interrupt (async).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[str, list[Any]] = field(default_factory=dict)
    asking: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    active: int = 0
    parked: int = 0

    async def park(self) -> None:
        """Wait until every other call of the run is done or parked too: an interrupt leaves
        the node, and a call still running then would run on with no node to answer to."""
        self.parked += 1
        try:
            while self.active > self.parked:
                await asyncio.sleep(0.01)
        finally:
            self.parked -= 1


PULL = "__pregel_pull"
"""The first part of ``langgraph_path`` in a task's metadata when an edge (not a ``Send``)
started it: a ``ToolNode`` started so runs every call of the last AI message, as one task."""


def shares_task(request: Any) -> bool:
    """Whether a tool call runs in one graph task with other calls (LangGraph then matches
    the task's answers to its interrupts by order, and its calls ask in no fixed order).

    A ``ToolNode`` reached by an edge runs the calls of its input's last AI message, side by
    side; one reached by a ``Send`` runs what the ``Send`` carries (``create_agent`` sends
    each call on its own). When the input cannot be read, the call is taken to share.
    """
    runtime = getattr(request, "runtime", None)
    config = getattr(runtime, "config", None) or {}
    path = (config.get("metadata") or {}).get("langgraph_path") or ()
    if not path or path[0] != PULL:
        return False
    state = getattr(request, "state", None)
    messages = state if isinstance(state, list) else (
        state.get("messages") if isinstance(state, Mapping) else getattr(state, "messages", None))  # fmt: skip
    if not isinstance(messages, list | tuple):
        return True
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    ids = [c.get("id") for c in getattr(last, "tool_calls", None) or []]
    return ids != [request.tool_call.get("id")]


# By the scratchpad's identity: it compares by value, has no hash and takes no weak
# reference, so the latest runs' scratchpads are held here (an id is not reused while its
# object lives). A run pushed out early only costs an answer asked for again.
_RUNS: OrderedDict[int, tuple[Any, Run]] = OrderedDict()
_RUNS_KEPT = 256
_RUNS_LOCK = threading.Lock()


def run_of(configurable: Mapping[str, Any]) -> Run:
    """The run a call belongs to (one of its own when the run cannot be told)."""
    pad = configurable.get(SCRATCHPAD_KEY)
    if pad is None:
        return Run()
    with _RUNS_LOCK:
        held = _RUNS.get(id(pad))
        if held is not None and held[0] is pad:
            _RUNS.move_to_end(id(pad))
            return held[1]
        run = Run()
        _RUNS[id(pad)] = (pad, run)
        while len(_RUNS) > _RUNS_KEPT:
            _RUNS.popitem(last=False)
        return run


__all__ = [
    "CLAIM_WAIT",
    "Ledgers",
    "Run",
    "Slot",
    "ToolResult",
    "ask_id_of",
    "configurable_of",
    "key_of",
    "run_of",
    "shares_task",
]
