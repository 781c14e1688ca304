"""peerguard for LangGraph and LangChain agents: every tool call is decided before it runs.

Two ways in, the same behaviour:

- :class:`PeerGuardToolWrapper` for a LangGraph ``ToolNode``::

      guard_wrapper = PeerGuardToolWrapper(guard, agent="agent-1")
      ToolNode(tools, wrap_tool_call=guard_wrapper.wrap_tool_call,
               awrap_tool_call=guard_wrapper.awrap_tool_call)

- :class:`PeerGuardMiddleware` for LangChain's ``create_agent``::

      create_agent(model, tools, middleware=[PeerGuardMiddleware(guard)],
                   checkpointer=InMemorySaver())

A denied call never reaches the tool: the agent gets a ``ToolMessage`` with
``status="error"`` whose content says why. A call that needs confirmation pauses the graph
with LangGraph's ``interrupt()``. Its value is LangChain's standard human review request (the
``HITLRequest`` of ``HumanInTheLoopMiddleware``, which the Agent Chat UI and the Agent Inbox
show, and its per-call ``ToolApprovalRequest``) for the one call, with peerguard's own fields
(rules, reason, effects, assets, the args hash) under ``peerguard``
(:mod:`guard.integrations.langgraph_review`). The graph resumes with ``Command(resume=...)``
carrying a standard decision (``{"type": "approve"}``, ``{"type": "reject", "message":
...}``, ``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}``, or
``{"decisions": [one of those]}``) or peerguard's :class:`ConfirmationAnswer`.

A standard decision names no call: it answers the interrupt it is sent to (by interrupt id,
or the one pending). peerguard's own answer is bound to one question of one call: it names
the request's ``call_id`` and ``ask_id`` (the graph task that asked), and it approves only if
its ``args_hash`` is the hash of the call being resumed, so an old answer approves no later
call; one naming another call does not answer this one (the question stays open), and one
naming no call approves nothing. An edit is a new call under the same tool call id: the guard
decides on it from scratch, and it runs, is denied, or asks a human again; the call id still
runs at most once, and its ``ToolMessage`` says that a human edited it. A rejection's message
reaches the agent in the error ``ToolMessage``. An answer that cannot be read (an unknown
type, two decisions, an edit naming another tool) approves nothing and fails nothing: the
question is asked again, its note saying what was wrong. Pending confirmations live in the
graph's checkpointer, so the process that asks and the one that answers need not be the same.

Several confirmations pending at once (one per tool call: ``create_agent`` and graphs that
``Send`` each tool call to the tool node) are answered by interrupt id::

      pending = pending_confirmations(result["__interrupt__"])
      graph.invoke(Command(resume={iid: {"type": "approve"} for iid in pending}), config)

A ``ToolNode`` given a whole AI message runs its calls side by side as one task, and LangGraph
takes one answer per task per resume: its confirmations are asked one per resume, and each
answer reaches the call it names, whichever call asks first. There an answer must name its
call (``ConfirmationAnswer.to(request, ...)``): a standard decision, which names none, could
reach another of the task's calls than the one the human saw, so it is set aside and the
question asked again, saying so.

The acting agent is, in order: the wrapper's ``agent``; the graph config's
``config["configurable"]["peerguard_agent"]``; the runtime context's ``agent_id`` (attribute
or key). With none, the call is denied.

Exactly once. LangGraph runs a node again from its start when it resumes (with every call of
that node), time travel runs it again from an older checkpoint, and two processes may resume
the same thread at once. Whatever runs the node, each tool call id runs at most once: after
the decision (and the human's answer), right before the tool runs, the call is claimed in a
ledger (:mod:`guard.ledger`), one atomic insert that one process wins; only the winner runs
the call, and keeps what it returned there. A call id the ledger holds as done is answered
from it, never decided or run again (a denial or refusal is kept too); one claimed and never
done (its process died while it ran) is answered as "outcome unknown", never run again, until
an operator clears it (:meth:`guard.ledger.CallLedger.release`). The ledger is, unless the
wrapper or middleware is given one (``ledger=``), a ``peerguard_calls`` table in the
checkpointer's own database (``SqliteSaver``, ``PostgresSaver``, and their async forms), or
this process's memory for other checkpointers. Keys are the thread id, the node path and the
tool call id; outside a thread (no ``thread_id``) no ledger is kept. The guard only *checks*
(a pure function) before ``interrupt()``, and records the decision once, with the claim.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, NotRequired

from guard.exceptions import missing_extra

try:
    from langchain.agents.middleware import AgentMiddleware, AgentState
    from langchain.agents.middleware.types import PrivateStateAttr
    from langchain_core.messages import ToolMessage
    from langgraph.errors import GraphBubbleUp, GraphInterrupt
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.runtime import Runtime
except ImportError as exc:  # the extra is not installed
    raise missing_extra("langgraph", "the LangGraph integration", exc) from exc

from guard.approval import ApprovalResponse
from guard.contain import ContainedShell, PendingRun
from guard.decorator import CONTEXT_AGENT_KEY, context_agent
from guard.engine import Guard, unidentified
from guard.evaluations import Recomputed
from guard.exceptions import CallBlocked
from guard.integrations._once import (
    CLAIM_WAIT,
    Ledgers,
    Run,
    Slot,
    ToolResult,
    configurable_of,
    key_of,
    run_of,
)
from guard.integrations.langgraph_review import (
    CONFIRMATION_TYPE,
    EDIT_BLOCKED,
    NOT_EDITABLE,
    REPLACED,
    ConfirmationAnswer,
    ConfirmationRequest,
    Reply,
    Verdict,
    answer,
    approval,
    edited,
    noted,
    pending_confirmations,
    question,
)
from guard.ledger import CallLedger
from guard.types import Action, Alert, Decision, ToolCall

CONFIG_AGENT_KEY = "peerguard_agent"
"""The ``config["configurable"]`` key that names the acting agent."""


class _Gate:
    """The decision steps shared by the ToolNode wrapper and the agent middleware.

    Each call id runs at most once: before deciding, a call its ledger already holds is
    answered from it; after the decision (and a human's answer), the call is claimed in the
    ledger right before it runs, and only the run that wins the claim runs it. Denials and
    refusals are kept there too, so a node run again answers them the same way.
    """

    def __init__(
        self,
        guard: Guard,
        agent: str | None,
        shell: ContainedShell | None = None,
        ledger: CallLedger | None = None,
        claim_wait: float = CLAIM_WAIT,
    ) -> None:
        self.guard = guard
        self.agent = agent
        self.shell = shell
        self.ledgers = Ledgers(ledger)
        self.claim_wait = claim_wait

    def agent_of(self, request: ToolCallRequest) -> str | None:
        if self.agent:
            return self.agent
        runtime = getattr(request, "runtime", None)
        config = getattr(runtime, "config", None) or {}
        configured = (config.get("configurable") or {}).get(CONFIG_AGENT_KEY)
        if configured:
            return str(configured)
        return context_agent(getattr(runtime, "context", None))

    @staticmethod
    def blocked(request: ToolCallRequest, error: CallBlocked) -> ToolMessage:
        tool_call = request.tool_call
        return ToolMessage(
            content=str(error),
            tool_call_id=tool_call.get("id") or error.decision.call_id,
            name=tool_call["name"],
            status="error",
        )

    def call_of(self, request: ToolCallRequest) -> ToolCall | ToolMessage:
        """The guard's view of the request, or the refusal when no agent can be named."""
        tool_call = request.tool_call
        name = tool_call["name"]
        args = tool_call.get("args") or {}
        call_id = tool_call.get("id") or uuid.uuid4().hex
        agent = self.agent_of(request)
        if agent is None:
            return self.blocked(
                request, CallBlocked(unidentified(self.guard, name, dict(args), call_id))
            )
        if not tool_call.get("id") and key_of(configurable_of(request), call_id) is not None:
            # In a thread, a node runs again on resume and on replay: a call with no id has
            # no place in the ledger, so nothing could hold it to running once.
            return ToolMessage(
                content=f"{name} refused: the tool call has no id, so it cannot be held to "
                "running exactly once when the graph resumes; call it again with an id",
                tool_call_id=tool_call.get("id") or "",
                name=name,
                status="error",
            )
        return ToolCall(agent, name, args, call_id)  # it keeps its own copy of args

    def _slot(
        self, request: ToolCallRequest, call: ToolCall, ledger: CallLedger | None
    ) -> Slot | None:
        """The call's place in ``ledger``; ``None`` outside a thread or without a call id."""
        key = key_of(configurable_of(request), call.call_id)
        if ledger is None or key is None or not request.tool_call.get("id"):
            return None
        return Slot(ledger, key, call.args_hash, call.tool, self.claim_wait)

    def slot(self, request: ToolCallRequest, call: ToolCall) -> Slot | None:
        configurable = configurable_of(request)
        if key_of(configurable, call.call_id) is None:
            return None
        return self._slot(request, call, self.ledgers.of(configurable))

    async def aslot(self, request: ToolCallRequest, call: ToolCall) -> Slot | None:
        configurable = configurable_of(request)
        if key_of(configurable, call.call_id) is None:
            return None
        return self._slot(request, call, await self.ledgers.aof(configurable))

    # -- the human's answer

    async def aanswer(
        self, request: ToolCallRequest, prompt: ConfirmationRequest, run: Run
    ) -> Reply:
        try:
            return answer(request, prompt, run)
        except GraphInterrupt:
            await run.park()
            raise

    def asked(self, decision: Decision, call: ToolCall) -> bool:
        """Whether ``decision`` waits for a human (told to the sinks, once per call id)."""
        if decision.enforced and decision.action is Action.CONFIRM:
            # Sinks drop the repeat when the node re-runs on resume (keyed by call id).
            self.guard.sinks.confirmation_requested(decision)
            return True
        return False

    def checked(self, call: ToolCall) -> tuple[Decision, float]:
        """The guard's decision on ``call``, and how long it took (seconds)."""
        started = time.perf_counter()
        decision = self.guard.check(call)
        return decision, time.perf_counter() - started

    def decided(self, request: ToolCallRequest, call: ToolCall, run: Run) -> Verdict:
        """The guard's decision on ``call`` and, when it waits for a human, their answer. A
        human's edit is a new call, decided on from scratch (and asked about again)."""
        decision, seconds = self.checked(call)
        verdict = Verdict(call, decision, elapsed=seconds)
        while self.asked(verdict.decision, verdict.call):
            asked = ConfirmationRequest.from_decision(verdict.decision, verdict.call.args)
            prompt = question(request, asked, edited=bool(verdict.replaced))
            new, reply = edited(verdict.call, answer(request, prompt, run))
            if new is None:
                verdict.response = approval(reply, prompt)
                break
            verdict.replace(new, *self.checked(new))
        return verdict

    async def adecided(self, request: ToolCallRequest, call: ToolCall, run: Run) -> Verdict:
        # Deciding (a shell analysis may read scripts) runs in a worker thread.
        decision, seconds = await asyncio.to_thread(self.checked, call)
        verdict = Verdict(call, decision, elapsed=seconds)
        while self.asked(verdict.decision, verdict.call):
            asked = ConfirmationRequest.from_decision(verdict.decision, verdict.call.args)
            prompt = question(request, asked, edited=bool(verdict.replaced))
            new, reply = edited(verdict.call, await self.aanswer(request, prompt, run))
            if new is None:
                verdict.response = approval(reply, prompt)
                break
            verdict.replace(new, *await asyncio.to_thread(self.checked, new))
        return verdict

    def admit(self, request: ToolCallRequest, verdict: Verdict) -> Decision | ToolMessage:
        """Record the decision and settle it: the decision when the call may run, else the
        refusal. Runs once per call id (after its claim), so each is recorded once; so are
        the decisions a human's edit replaced, each with the edit in its reason."""
        why = f"a human edited the call: {REPLACED}"
        for old_call, old in verdict.replaced:
            try:
                kept = old.replace(reason=f"{old.reason}; {why}")
            except Exception:  # a reason that cannot be worked out: record() denies it
                kept = old
            self.guard.record(kept, call=old_call)
            self.guard.sinks.approval(old, False, why)
        call = verdict.call
        decision = self.guard.record(verdict.decision, seconds=verdict.elapsed, call=call)
        try:
            self.guard.settle(call, decision, verdict.response)
        except CallBlocked as error:
            message = self.blocked(request, error)
            return message if not verdict.replaced else noted(message, EDIT_BLOCKED)
        self.guard.before(decision)
        return decision

    # -- the run: decide, ask, claim, run, keep

    def run(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        call = self.call_of(request)
        if not isinstance(call, ToolCall):  # the refusal (ToolCall is no ABC: a cheap test)
            return call
        slot = self.slot(request, call)
        if slot is not None and (before := slot.prior()) is not None:
            return before
        if self.shell is not None and call.tool == self.shell.tool:
            with self.guard.sinks.tool_span(call):
                return self._contained(request, call, self.shell, slot)
        if not self.guard.sinks.spans:
            return self._run(request, call, execute, slot)
        with self.guard.sinks.tool_span(call):
            return self._run(request, call, execute, slot)

    def _run(
        self,
        request: ToolCallRequest,
        call: ToolCall,
        execute: Callable[[ToolCallRequest], ToolResult],
        slot: Slot | None,
    ) -> ToolResult:
        verdict = self.decided(request, call, run_of(configurable_of(request)))
        # Claimed with the agent's own call (an edit runs under its call id, at most once).
        if slot is not None and (other := slot.take()) is not None:
            return other
        try:
            admitted = self.admit(request, verdict)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        if isinstance(admitted, ToolMessage):
            return slot.keep(admitted) if slot is not None else admitted
        try:
            result = execute(verdict.request(request))
        except GraphBubbleUp:  # the tool asks a human itself: it runs again when answered
            if slot is not None:
                slot.release()
            raise
        except Exception as exc:
            if slot is not None:
                slot.failed(exc)
            raise
        finally:
            self.guard.after(admitted)
        result = verdict.told(self.screened(request, verdict.call, admitted, result))
        return slot.keep(result) if slot is not None else result

    def screened(
        self, request: ToolCallRequest, call: ToolCall, decision: Decision, result: ToolResult
    ) -> ToolResult:
        """``result``, or the notice that replaces it when it carries another model's weights
        (:meth:`guard.engine.Guard.screen`): the content, the artifact, and the messages of
        a ``Command``."""
        # A Command's whole update (any message type, any key), or the message's content and
        # artifact.
        shown = getattr(result, "update", None) if not isinstance(result, ToolMessage) else (
            result.content, result.artifact)  # fmt: skip
        try:
            self.guard.screen(call, shown, decision)
        except CallBlocked as error:
            return self.blocked(request, error)
        return result

    async def arun(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        call = self.call_of(request)
        if not isinstance(call, ToolCall):  # the refusal (ToolCall is no ABC: a cheap test)
            return call
        # Counted before the first await: every call of a ToolNode's gather is counted before
        # any of them can raise an interrupt (see Run.park).
        run = run_of(configurable_of(request))
        run.active += 1
        try:
            slot = await self.aslot(request, call)
            if slot is not None and (before := await asyncio.to_thread(slot.prior)) is not None:
                return before
            if self.shell is not None and call.tool == self.shell.tool:
                with self.guard.sinks.tool_span(call):
                    return await self._acontained(request, call, self.shell, slot, run)
            if not self.guard.sinks.spans:
                return await self._arun(request, call, execute, slot, run)
            with self.guard.sinks.tool_span(call):
                return await self._arun(request, call, execute, slot, run)
        finally:
            run.active -= 1

    async def _arun(
        self,
        request: ToolCallRequest,
        call: ToolCall,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
        slot: Slot | None,
        run: Run,
    ) -> ToolResult:
        # Deciding, the ledger, and the re-hash after the call (a copied weights file is
        # hashed whole) run in a worker thread: the agent's loop goes on.
        verdict = await self.adecided(request, call, run)
        if slot is not None and (other := await asyncio.to_thread(slot.take)) is not None:
            return other
        try:
            admitted = self.admit(request, verdict)
        except BaseException:
            if slot is not None:
                await asyncio.to_thread(slot.release)
            raise
        if isinstance(admitted, ToolMessage):
            return await asyncio.to_thread(slot.keep, admitted) if slot is not None else admitted
        try:
            result = await execute(verdict.request(request))
        except GraphBubbleUp:  # the tool asks a human itself: it runs again when answered
            if slot is not None:
                await asyncio.to_thread(slot.release)
            raise
        except Exception as exc:
            if slot is not None:
                await asyncio.to_thread(slot.failed, exc)
            raise
        finally:
            await asyncio.to_thread(self.guard.after, admitted)
        result = await asyncio.to_thread(self.screened, request, verdict.call, admitted, result)
        result = verdict.told(result)
        return await asyncio.to_thread(slot.keep, result) if slot is not None else result

    # -- the contained shell: the command runs first, contained; a human sees what it did

    def _prepared(
        self, request: ToolCallRequest, call: ToolCall, shell: ContainedShell
    ) -> PendingRun | ToolMessage:
        # The node runs again after a human's answer: the run made before is reused.
        pending = shell.pending(call.call_id)
        if pending is not None:
            return pending
        try:
            return shell.prepare(call)
        except CallBlocked as error:
            return self.blocked(request, error)

    def _prompt(
        self, request: ToolCallRequest, pending: PendingRun, shell: ContainedShell
    ) -> ConfirmationRequest | None:
        if not pending.needs_approval:
            return None
        self.guard.sinks.confirmation_requested(pending.decision)
        return question(request, pending.request(shell), decisions=NOT_EDITABLE)

    def _finished(
        self, request: ToolCallRequest, shell: ContainedShell, pending: PendingRun,
        response: ApprovalResponse | None,
    ) -> ToolMessage:  # fmt: skip
        try:
            result = shell.finish(pending, response)
        except CallBlocked as error:
            return self.blocked(request, error)
        return ToolMessage(
            content=result.text(),
            tool_call_id=pending.call.call_id,
            name=pending.call.tool,
            status="success" if result.exit_code == 0 else "error",
        )

    def _commit(
        self, request: ToolCallRequest, shell: ContainedShell, pending: PendingRun,
        response: ApprovalResponse | None, slot: Slot | None,
    ) -> ToolResult:  # fmt: skip
        """Claim the call, then commit its run (or refuse it): the claim's loser throws its
        run away, so two runs of one call id never both commit."""
        if slot is not None and (other := slot.take()) is not None:
            shell.discard(pending)
            return other
        try:
            message = self._finished(request, shell, pending, response)
        except Exception as exc:
            if slot is not None:
                slot.failed(exc)
            raise
        return slot.keep(message) if slot is not None else message

    def _contained(
        self, request: ToolCallRequest, call: ToolCall, shell: ContainedShell, slot: Slot | None
    ) -> ToolResult:
        pending = self._prepared(request, call, shell)
        if isinstance(pending, ToolMessage):  # denied before or after its contained run
            return self._kept(slot, pending)
        prompt = self._prompt(request, pending, shell)
        run = run_of(configurable_of(request))
        response = None
        if prompt is not None:
            response = approval(answer(request, prompt, run), prompt)
        return self._commit(request, shell, pending, response, slot)

    async def _acontained(
        self, request: ToolCallRequest, call: ToolCall, shell: ContainedShell,
        slot: Slot | None, run: Run,
    ) -> ToolResult:  # fmt: skip
        pending = await asyncio.to_thread(self._prepared, request, call, shell)
        if isinstance(pending, ToolMessage):
            return await asyncio.to_thread(self._kept, slot, pending)
        prompt = self._prompt(request, pending, shell)
        response = None
        if prompt is not None:
            response = approval(await self.aanswer(request, prompt, run), prompt)
        return await asyncio.to_thread(self._commit, request, shell, pending, response, slot)

    @staticmethod
    def _kept(slot: Slot | None, message: ToolMessage) -> ToolResult:
        """``message`` as the call's outcome, unless another run already has one."""
        if slot is None:
            return message
        other = slot.take()
        return other if other is not None else slot.keep(message)


class PeerGuardToolWrapper:
    """The guard as a LangGraph ``ToolNode`` tool-call wrapper, sync and async.

    Pass both methods: ``ToolNode(tools, wrap_tool_call=w.wrap_tool_call,
    awrap_tool_call=w.awrap_tool_call)``. Confirmations use ``interrupt()``, so the graph
    needs a checkpointer. A ToolNode given a whole AI message runs its calls as one task, and
    LangGraph takes one answer per task per resume: its confirmations are asked one after
    another, each answer reaching the call it names. Route each call to the node with its own
    ``Send`` to have them all asked at once.

    Args:
        guard: The guard.
        agent: The acting agent's id; when ``None``, taken from the graph config's
            ``configurable.peerguard_agent`` or the runtime context's ``agent_id``.
        shell: A :class:`~guard.contain.ContainedShell`: calls of its tool name run through
            it (contained, judged on what they did) instead of the tool's own function.
        ledger: Where each call id is claimed before it runs and its result kept
            (:mod:`guard.ledger`); when ``None``, a table in the checkpointer's own database
            (SQLite or PostgreSQL), or this process's memory for other checkpointers.
        claim_wait: How long a call whose id another process is running waits for its
            result before answering that its outcome is unknown, in seconds.
    """

    def __init__(
        self,
        guard: Guard,
        agent: str | None = None,
        *,
        shell: ContainedShell | None = None,
        ledger: CallLedger | None = None,
        claim_wait: float = CLAIM_WAIT,
    ) -> None:
        self.guard = guard
        self.agent = agent
        self._gate = _Gate(guard, agent, shell, ledger, claim_wait)

    def wrap_tool_call(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        """Decide on the call; run ``execute`` only if it may run.

        Returns:
            The tool's result, or an error ``ToolMessage`` saying why the call was blocked.
        """
        return self._gate.run(request, execute)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """The async form of :meth:`wrap_tool_call`."""
        return await self._gate.arun(request, execute)


def calls_that_ran(messages: Iterable[Any], agent: str = "-") -> list[ToolCall]:
    """The tool calls in a conversation that ran: each AI message's tool call whose
    ``ToolMessage`` answer has ``status="success"`` (a blocked or failed call does not count).
    """
    asked: dict[str, ToolCall | None] = {}
    ran: list[ToolCall] = []
    for message in messages:
        for tc in getattr(message, "tool_calls", None) or []:
            cid = tc.get("id")
            if not cid:
                continue
            # Two calls under one id: which one an answer belongs to cannot be told, so
            # neither counts as having run.
            asked[cid] = (
                None
                if cid in asked
                else ToolCall(
                    agent=agent, tool=tc["name"], args=dict(tc.get("args") or {}), call_id=cid
                )
            )
        if isinstance(message, ToolMessage) and message.status == "success":
            call = asked.get(message.tool_call_id)
            if call is not None and (message.name is None or message.name == call.tool):
                ran.append(call)
    return ran


def end_of_run(
    guard: Guard,
    messages: Iterable[Any],
    agent: str | None = None,
    scores: Mapping[str, Any] | None = None,
) -> list[Alert]:
    """Check the run's obligations (:meth:`guard.engine.Guard.end_run`) against the calls in
    ``messages`` that ran; a critical alert for each one unmet. :class:`PeerGuardMiddleware`
    does this when the agent stops; call it yourself at the end of a ``ToolNode`` graph, with
    ``scores`` from :meth:`~guard.engine.Guard.start_run` (or its JSON form) at its start."""
    kept = {p: Recomputed(**v) if isinstance(v, Mapping) else v for p, v in (scores or {}).items()}
    return guard.end_run(calls_that_ran(messages, agent or "-"), agent=agent, scores=kept)


class GuardState(AgentState[Any]):
    """The agent state with what :class:`PeerGuardMiddleware` keeps in the checkpoint: the
    scores the graded items gave when the conversation started (private: neither input nor
    output)."""

    peerguard_scores: NotRequired[Annotated[dict[str, dict[str, Any]], PrivateStateAttr]]


class PeerGuardMiddleware(AgentMiddleware[GuardState, Any, Any]):
    """The guard as LangChain ``create_agent`` middleware (``wrap_tool_call``, sync and async).

    Put it last in ``middleware=[...]``: the last is the innermost, so the guard decides on
    the call exactly as it will run, after any middleware that edits calls. A tool name the
    agent does not have is decided like any tool without a spec (it needs confirmation),
    since middleware further in may serve tools added at run time.

    Args:
        guard: The guard.
        agent: The acting agent's id; when ``None``, taken from the graph config's
            ``configurable.peerguard_agent`` or the runtime context's ``agent_id``
            (``create_agent(..., context_schema=...)``, ``invoke(..., context=...)``).
        shell: A :class:`~guard.contain.ContainedShell`: calls of its tool name run through
            it (contained, judged on what they did) instead of the tool's own function; a
            confirmation shows the human the change set the run made.
        ledger: Where each call id is claimed before it runs and its result kept
            (:mod:`guard.ledger`); when ``None``, a table in the checkpointer's own database
            (SQLite or PostgreSQL), or this process's memory for other checkpointers.
        claim_wait: How long a call whose id another process is running waits for its
            result before answering that its outcome is unknown, in seconds.
    """

    def __init__(
        self,
        guard: Guard,
        agent: str | None = None,
        *,
        shell: ContainedShell | None = None,
        ledger: CallLedger | None = None,
        claim_wait: float = CLAIM_WAIT,
    ) -> None:
        super().__init__()
        self.guard = guard
        self.agent = agent
        self._gate = _Gate(guard, agent, shell, ledger, claim_wait)

    state_schema = GuardState

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolResult],
    ) -> ToolResult:
        """Decide on the call; run ``handler`` only if it may run."""
        return self._gate.run(request, handler)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """The async form of :meth:`wrap_tool_call`."""
        return await self._gate.arun(request, handler)

    def before_agent(self, state: GuardState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """When the conversation starts: keep, in the checkpoint, the scores the graded items
        give, so that items changed during the run cannot hide an obligation."""
        if "peerguard_scores" in state:
            return None
        kept = self.guard.start_run()
        return {"peerguard_scores": {p: dataclasses.asdict(r) for p, r in kept.items()}}

    async def abefore_agent(
        self, state: GuardState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """The async form of :meth:`before_agent`."""
        return await asyncio.to_thread(self.before_agent, state, runtime)

    def after_agent(self, state: GuardState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """When the agent stops: a critical alert for each obligation the calls that ran
        left unmet (a required shutdown skipped, or aimed at a decoy)."""
        agent = self.agent or context_agent(getattr(runtime, "context", None))
        end_of_run(self.guard, state.get("messages", []), agent, state.get("peerguard_scores"))
        return None

    async def aafter_agent(self, state: GuardState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """The async form of :meth:`after_agent`."""
        await asyncio.to_thread(self.after_agent, state, runtime)
        return None


__all__ = [
    "CONFIG_AGENT_KEY",
    "CONFIRMATION_TYPE",
    "CONTEXT_AGENT_KEY",
    "ConfirmationAnswer",
    "ConfirmationRequest",
    "GuardState",
    "PeerGuardMiddleware",
    "PeerGuardToolWrapper",
    "calls_that_ran",
    "end_of_run",
    "pending_confirmations",
]
