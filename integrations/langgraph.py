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
with LangGraph's ``interrupt()``; its value is a :class:`ConfirmationRequest` (as a dict) and
the graph resumes with ``Command(resume=...)`` carrying a :class:`ConfirmationAnswer`. The
answer counts only if its ``args_hash`` is the hash of the call being resumed: an edited
call needs a new approval. Pending confirmations live in the graph's checkpointer, so the
process that asks and the one that answers need not be the same.

Several confirmations pending at once (one per tool call: ``create_agent`` and graphs that
``Send`` each tool call to the tool node) are answered by interrupt id::

      pending = pending_confirmations(result["__interrupt__"])
      graph.invoke(Command(resume={iid: ConfirmationAnswer.to(req, approve=True)
                                   for iid, req in pending.items()}), config)

The acting agent is, in order: the wrapper's ``agent``; the graph config's
``config["configurable"]["peerguard_agent"]``; the runtime context's ``agent_id`` (attribute
or key). With none, the call is denied.

LangGraph runs a node again from its start when it resumes, so the code before
``interrupt()`` runs twice: the guard only *checks* (a pure function) before it, and records
the decision once, after the answer (or at once, for a call that needs no answer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Annotated, Any, Final, Literal, NotRequired

from guard.exceptions import missing_extra

try:
    from langchain.agents.middleware import AgentMiddleware, AgentState
    from langchain.agents.middleware.types import PrivateStateAttr
    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest
    from langgraph.runtime import Runtime
    from langgraph.types import Command, Interrupt, interrupt
except ImportError as exc:  # the extra is not installed
    raise missing_extra("langgraph", "the LangGraph integration", exc) from exc
from pydantic import BaseModel, ConfigDict, StrictBool

from guard.approval import ApprovalRequest, ApprovalResponse
from guard.contain import ContainedShell, PendingRun
from guard.engine import Guard, unidentified
from guard.evaluations import Recomputed
from guard.exceptions import CallBlocked
from guard.types import Action, Alert, Decision, ToolCall

CONFIG_AGENT_KEY = "peerguard_agent"
"""The ``config["configurable"]`` key that names the acting agent."""

CONTEXT_AGENT_KEY = "agent_id"
"""The runtime context's attribute or key that names the acting agent."""

CONFIRMATION_TYPE: Final = "peerguard.confirmation"
"""The ``type`` of a peerguard confirmation interrupt's value."""

ToolResult = ToolMessage | Command[Any]


class ConfirmationRequest(ApprovalRequest):
    """The value of the interrupt a ``confirm`` decision raises, as a dict in the interrupt.

    ``type`` tells a client this interrupt is peerguard's. ``effects`` says in plain words
    what the call would do; ``assets`` lists each protected asset it touches with its owner
    and the agent's relation to it; ``rules`` and ``reason`` say why it needs a human.
    """

    type: Literal["peerguard.confirmation"] = CONFIRMATION_TYPE


class ConfirmationAnswer(BaseModel):
    """The resume value a confirmation expects: ``Command(resume=answer.model_dump())``.

    ``args_hash`` must be the ``args_hash`` of the :class:`ConfirmationRequest` answered;
    an approval naming another hash does not approve the call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approve: StrictBool  # "yes", 1 or "on" is not an approval
    args_hash: str
    reason: str = ""

    @classmethod
    def to(
        cls, request: ConfirmationRequest | Mapping[str, Any], *, approve: bool, reason: str = ""
    ) -> dict[str, Any]:
        """The resume value answering ``request`` (a request or its dict form).

        Args:
            request: The confirmation being answered.
            approve: True to let the call run.
            reason: Why, recorded with the approval.

        Returns:
            The answer as the dict ``Command(resume=...)`` takes.
        """
        hash_ = (
            request.args_hash
            if isinstance(request, ConfirmationRequest)
            else str(request["args_hash"])
        )
        return cls(approve=approve, args_hash=hash_, reason=reason).model_dump()


def pending_confirmations(interrupts: Iterable[Interrupt]) -> dict[str, ConfirmationRequest]:
    """peerguard's confirmations among ``interrupts``, by interrupt id.

    Pass ``result["__interrupt__"]`` of an interrupted ``invoke``, or
    ``graph.get_state(config).interrupts``. Other interrupts are left out.
    """
    found: dict[str, ConfirmationRequest] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, Mapping) and value.get("type") == CONFIRMATION_TYPE:
            found[item.id] = ConfirmationRequest.model_validate(dict(value))
    return found


def _context_agent(context: Any) -> str | None:
    if context is None:
        return None
    found = (
        context.get(CONTEXT_AGENT_KEY)
        if isinstance(context, Mapping)
        else getattr(context, CONTEXT_AGENT_KEY, None)
    )
    return str(found) if found else None


class _Gate:
    """The decision steps shared by the ToolNode wrapper and the agent middleware."""

    def __init__(
        self, guard: Guard, agent: str | None, shell: ContainedShell | None = None
    ) -> None:
        self.guard = guard
        self.agent = agent
        self.shell = shell

    def agent_of(self, request: ToolCallRequest) -> str | None:
        if self.agent:
            return self.agent
        runtime = getattr(request, "runtime", None)
        config = getattr(runtime, "config", None) or {}
        configured = (config.get("configurable") or {}).get(CONFIG_AGENT_KEY)
        if configured:
            return str(configured)
        return _context_agent(getattr(runtime, "context", None))

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
        return ToolCall(agent, name, args, call_id)  # it keeps its own copy of args

    def enter(
        self,
        request: ToolCallRequest,
        call: ToolCall,
        checked: tuple[Decision, float] | None = None,
    ) -> Decision | ToolMessage:
        """Decide on the call: the decision when it may go on, else the refusal.

        ``checked`` is the decision and its latency when already made (off the event loop).
        """
        if checked is None:
            started = time.perf_counter()
            decision = self.guard.check(call)
            elapsed = time.perf_counter() - started
        else:
            decision, elapsed = checked
        response: ApprovalResponse | None = None
        if decision.enforced and decision.action is Action.CONFIRM:
            # Sinks drop the repeat when the node re-runs on resume (keyed by call id).
            self.guard.sinks.confirmation_requested(decision)
            prompt = ConfirmationRequest.from_decision(decision, call.args)
            # Raises GraphInterrupt the first time; returns the answer when resumed.
            answer = interrupt(prompt.model_dump(mode="json"), response_schema=ConfirmationAnswer)
            response = ApprovalResponse(
                approved=answer.approve,
                args_hash=answer.args_hash,
                reason=answer.reason,
                approver="langgraph-interrupt",
            )
        decision = self.guard.record(decision, seconds=elapsed, call=call)
        try:
            self.guard.settle(call, decision, response)
        except CallBlocked as error:
            return self.blocked(request, error)
        self.guard.before(decision)
        return decision

    def run(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        call = self.call_of(request)
        if not isinstance(call, ToolCall):  # the refusal (ToolCall is no ABC: a cheap test)
            return call
        if self.shell is not None and call.tool == self.shell.tool:
            with self.guard.sinks.tool_span(call):
                return self._contained(request, call, self.shell)
        if not self.guard.sinks.spans:
            return self._run(request, call, execute)
        with self.guard.sinks.tool_span(call):
            return self._run(request, call, execute)

    def _run(
        self,
        request: ToolCallRequest,
        call: ToolCall,
        execute: Callable[[ToolCallRequest], ToolResult],
    ) -> ToolResult:
        decision = self.enter(request, call)
        if isinstance(decision, ToolMessage):
            return decision
        try:
            result = execute(request)
        finally:
            self.guard.after(decision)
        return self.screened(request, call, decision, result)

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
        if self.shell is not None and call.tool == self.shell.tool:
            with self.guard.sinks.tool_span(call):
                return await self._acontained(request, call, self.shell)
        if not self.guard.sinks.spans:
            return await self._arun(request, call, execute)
        with self.guard.sinks.tool_span(call):
            return await self._arun(request, call, execute)

    async def _arun(
        self,
        request: ToolCallRequest,
        call: ToolCall,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        # Deciding (a shell analysis may read scripts) and the re-hash after the call (a copied
        # weights file is hashed whole) run in a worker thread: the agent's loop goes on.
        started = time.perf_counter()
        made = await asyncio.to_thread(self.guard.check, call)
        decision = self.enter(request, call, (made, time.perf_counter() - started))
        if isinstance(decision, ToolMessage):
            return decision
        try:
            result = await execute(request)
        finally:
            await asyncio.to_thread(self.guard.after, decision)
        return await asyncio.to_thread(self.screened, request, call, decision, result)

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

    def _answer(self, pending: PendingRun, shell: ContainedShell) -> ApprovalResponse | None:
        if not pending.needs_approval:
            return None
        self.guard.sinks.confirmation_requested(pending.decision)
        prompt = ConfirmationRequest.model_validate(pending.request(shell).model_dump())
        # Raises GraphInterrupt the first time (the run is kept); returns the answer on resume.
        answer = interrupt(prompt.model_dump(mode="json"), response_schema=ConfirmationAnswer)
        return ApprovalResponse(
            approved=answer.approve,
            args_hash=answer.args_hash,
            reason=answer.reason,
            approver="langgraph-interrupt",
        )

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

    def _contained(
        self, request: ToolCallRequest, call: ToolCall, shell: ContainedShell
    ) -> ToolResult:
        pending = self._prepared(request, call, shell)
        if isinstance(pending, ToolMessage):
            return pending
        return self._finished(request, shell, pending, self._answer(pending, shell))

    async def _acontained(
        self, request: ToolCallRequest, call: ToolCall, shell: ContainedShell
    ) -> ToolResult:
        pending = await asyncio.to_thread(self._prepared, request, call, shell)
        if isinstance(pending, ToolMessage):
            return pending
        response = self._answer(pending, shell)
        return await asyncio.to_thread(self._finished, request, shell, pending, response)


class PeerGuardToolWrapper:
    """The guard as a LangGraph ``ToolNode`` tool-call wrapper, sync and async.

    Pass both methods: ``ToolNode(tools, wrap_tool_call=w.wrap_tool_call,
    awrap_tool_call=w.awrap_tool_call)``. Confirmations use ``interrupt()``, so the graph
    needs a checkpointer; route each tool call to the node with its own ``Send`` when a
    model turn may hold several calls that need confirming.

    Args:
        guard: The guard.
        agent: The acting agent's id; when ``None``, taken from the graph config's
            ``configurable.peerguard_agent`` or the runtime context's ``agent_id``.
        shell: A :class:`~guard.contain.ContainedShell`: calls of its tool name run through
            it (contained, judged on what they did) instead of the tool's own function.
    """

    def __init__(
        self, guard: Guard, agent: str | None = None, *, shell: ContainedShell | None = None
    ) -> None:
        self.guard = guard
        self.agent = agent
        self._gate = _Gate(guard, agent, shell)

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
    """

    def __init__(
        self, guard: Guard, agent: str | None = None, *, shell: ContainedShell | None = None
    ) -> None:
        super().__init__()
        self.guard = guard
        self.agent = agent
        self._gate = _Gate(guard, agent, shell)

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
        agent = self.agent or _context_agent(getattr(runtime, "context", None))
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
