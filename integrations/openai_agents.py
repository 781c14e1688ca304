"""peerguard for the OpenAI Agents SDK: every function tool call is decided before it runs.

::

    from guard.integrations.openai_agents import guard_tools

    agent = Agent(name="ops", tools=guard_tools(guard, [read_file, delete_file], agent="ops-agent"))

:func:`guard_tools` returns copies of the ``FunctionTool`` objects that keep their name,
description and parameter schema, so the model sees the same tools, and hooks the guard in
through the three places the SDK documents for this:

- a **tool input guardrail** decides just before the call runs. A denied call never runs: the
  guardrail answers ``reject_content`` with the reason, which the model reads as the call's
  output. (A wrapper around ``on_invoke_tool`` could do the same, but the guardrail is the SDK's
  own place for it: its result is listed in ``RunResult.tool_input_guardrail_results`` and the
  tool keeps its invoker, failure handling and argument checks.)
- **needs_approval** turns a ``confirm`` into the SDK's human-in-the-loop interruption: the run
  stops with a ``ToolApprovalItem`` in ``result.interruptions``; the app approves or rejects it
  on the ``RunState`` (:func:`approve`, :func:`reject`) and resumes. An approval lets exactly
  the call that was interrupted run, once: its call id (a per-call SDK approval; an
  ``always_approve`` does not count) and its arguments (the hash the human was shown). The
  input guardrail checks both before the approved call runs and records the approval through
  :meth:`guard.engine.Guard.settle`, the engine's approval path. A tool's own
  ``needs_approval`` is kept: the run stops when either asks.
- a **tool output guardrail** screens what the call returned (:meth:`Guard.screen`): a result
  holding another model's weights is withheld and the model reads the notice instead.

For a call whose arguments the SDK cannot inspect unchanged (a default filled in, a value
converted), the SDK stops for a human without asking ``needs_approval`` at all; once approved,
the call still meets the input guardrail, which decides on it as on any other (a deny stays a
deny).

The acting agent is, in order: the ``agent`` given here (an id, or a function returning the
current one); the run context's ``agent_id`` (attribute or key of the ``context`` passed to
``Runner.run``); the id set with :func:`guard.decorator.acting_as`. With none the call is
denied (rule ``unidentified-agent``). The SDK agent's ``name`` is never used: it is display
text, not an identity the policy declares.

Each decision is recorded once per tool call id: a ``confirm`` when the run stops to ask (as
:meth:`Guard.run` records before it asks its approver), any other decision just before the
call would run. An approval is recorded when the approved call is about to run; a rejection
is recorded by :func:`reject` (the SDK skips a rejected call without calling any hook, so a
plain ``state.reject`` leaves the ``confirm`` recorded with no answer).

Runs started with ``Runner.run`` and ``Runner.run_sync`` take the same path: the SDK runs
guardrails and approval checks on its event loop, and the guard's own work runs in a worker
thread. This module is the only place peerguard imports the SDK.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from guard.exceptions import missing_extra

try:
    from agents import (
        FunctionTool,
        RunContextWrapper,
        RunState,
        Tool,
        ToolApprovalItem,
        ToolGuardrailFunctionOutput,
        ToolInputGuardrail,
        ToolInputGuardrailData,
        ToolOutputGuardrail,
        ToolOutputGuardrailData,
    )
    from agents.tool_context import ToolContext
except ImportError as exc:  # the extra is not installed
    raise missing_extra("openai-agents", "the OpenAI Agents SDK integration", exc) from exc

from guard.approval import ApprovalRequest, ApprovalResponse
from guard.decorator import (
    CONTEXT_AGENT_KEY,
    AgentSource,
    context_agent,
    current_agent_id,
    resolve_agent,
)
from guard.engine import Guard, unidentified
from guard.exceptions import CallBlocked, ResultWithheld
from guard.types import Action, Decision, ToolCall

GUARDRAIL_NAME = "peerguard"
"""The name of the input and output guardrails, as the run's guardrail results show it."""

APPROVER = "openai-agents"
"""The approver recorded for answers given on a ``RunState``."""

_REMEMBER = 10_000  # call ids each gate keeps per kind of record (oldest forgotten first)

K = TypeVar("K")
V = TypeVar("V")
Approval = Literal["call", "sticky"] | None


class _Recent(Generic[K, V]):
    """A dict that forgets its oldest entries past ``limit`` (runs that stopped for good
    never come back for theirs)."""

    def __init__(self, limit: int = _REMEMBER) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)


def _arguments(raw: str | None) -> dict[str, Any] | None:
    """The call's arguments from the model's JSON; ``None`` when they are not a JSON object."""
    if raw is None or not raw.strip():
        return {}  # the SDK invokes a tool given no arguments with none
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _shown(value: Any) -> Any:
    """What the model is given for a tool's output, in a form :meth:`Guard.screen` reads."""
    if value is None or isinstance(value, str | bytes | bytearray | int | float | bool):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {str(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    try:
        return str(value)  # the SDK gives the model str() of any other output
    except Exception:  # a tool's own object: its str() is not ours to trust
        return f"<{type(value).__name__} whose str() failed>"


def _refused(error: CallBlocked) -> ToolGuardrailFunctionOutput:
    return ToolGuardrailFunctionOutput.reject_content(str(error), error.decision.summary())


def _sdk_approval(ctx: ToolContext[Any], call_id: str) -> Approval:
    """How the run's approvals cover this call: an approval of its call id, a standing
    ``always_approve`` of the tool, or none.

    The SDK answers both with ``is_tool_approved`` (by the namespaced name, for a tool in a
    namespace); a standing approval also answers yes for a call id nobody has seen, which is
    how the two are told apart. Anything else, a lookup that finds nothing included, is no
    approval: the call is refused, never let through.
    """
    name = ctx.qualified_tool_name
    if ctx.is_tool_approved(name, call_id) is not True:
        return None
    probe = f"peerguard-probe-{uuid.uuid4().hex}"
    return "sticky" if ctx.is_tool_approved(name, probe) is True else "call"


def _guardrails_before_approval(ctx: ToolContext[Any]) -> bool:
    """True when the run asks input guardrails to run before a call waits for approval too
    (``RunConfig.tool_execution.pre_approval_tool_input_guardrails``)."""
    execution = ctx.run_config.tool_execution if ctx.run_config is not None else None
    return execution is not None and execution.pre_approval_tool_input_guardrails is True


class _Gate:
    """What the hooks of one :class:`PeerGuardTools` share: the guard, how the agent is
    named, and which calls were asked about, approved and are running."""

    def __init__(self, guard: Guard, agent: AgentSource | None) -> None:
        self.guard = guard
        self.agent = agent
        self._lock = threading.Lock()
        # Call ids the SDK was told need approval, and the confirm recorded for each.
        self._stopped: _Recent[str, Decision | None] = _Recent()
        self._reasons: _Recent[str, str] = _Recent()  # given to approve(), by call id
        self._ran: _Recent[str, None] = _Recent()  # approved calls let through (once each)
        self._looked: _Recent[str, None] = _Recent()  # looked at before their approval
        self._running: _Recent[str, tuple[ToolCall, Decision]] = _Recent()

    def agent_of(self, context: Any) -> str | None:
        return resolve_agent(self.agent) or context_agent(context) or current_agent_id()

    # -- needs_approval: does the run stop for this call?

    async def needs_confirmation(
        self, ctx: RunContextWrapper[Any], tool: str, params: dict[str, Any], call_id: str
    ) -> bool:
        """True when the guard's decision is an enforced ``confirm``; the decision is
        recorded the first time it is asked for (the SDK may ask again on resume)."""
        who = self.agent_of(ctx.context)
        if who is None:
            return False  # the input guardrail denies it, and records why
        call = ToolCall(who, tool, params, call_id)
        started = time.perf_counter()
        decision = await asyncio.to_thread(self.guard.check, call)
        if not (decision.enforced and decision.action is Action.CONFIRM):
            return False
        with self._lock:
            known = self._stopped.get(call_id)
        if known is not None and known.args_hash == decision.args_hash:
            return True
        seconds = time.perf_counter() - started
        recorded = await asyncio.to_thread(self._ask, call, decision, seconds)
        return recorded.action is Action.CONFIRM

    def _ask(self, call: ToolCall, decision: Decision, seconds: float) -> Decision:
        self.guard.sinks.confirmation_requested(decision)
        recorded = self.guard.record(decision, seconds=seconds, call=call)
        if recorded.action is Action.CONFIRM:
            with self._lock:
                self._stopped[call.call_id] = recorded
        return recorded

    def stopping(self, call_id: str) -> None:
        """The SDK was told this call needs approval (by the guard or the tool's own rule)."""
        with self._lock:
            if call_id not in self._stopped:
                self._stopped[call_id] = None

    # -- the input guardrail: may the call run now?

    async def admit(self, data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        tool, call_id = ctx.tool_name, ctx.tool_call_id
        args = _arguments(ctx.tool_arguments)
        who = self.agent_of(ctx.context)
        if who is None:
            decision = await asyncio.to_thread(unidentified, self.guard, tool, args or {}, call_id)
            return _refused(CallBlocked(decision))
        if args is None:
            call = ToolCall(who, tool, {}, call_id)
            failed = self.guard.fail_closed(call, ValueError("its arguments are not a JSON object"))
            return _refused(CallBlocked(await asyncio.to_thread(self.guard.record, failed)))
        call = ToolCall(who, tool, args, call_id)
        approval = _sdk_approval(ctx, call_id)
        if approval is None and _guardrails_before_approval(ctx) and self._first_look(call_id):
            # The look before the run stops for approval: nothing runs yet, so only a deny
            # answers. Any later look at an unapproved call is refused below.
            return await asyncio.to_thread(self._before_approval, call)
        started = time.perf_counter()
        decision = await asyncio.to_thread(self.guard.check, call)
        seconds = time.perf_counter() - started
        return await asyncio.to_thread(self._admit, call, decision, seconds, approval)

    def _first_look(self, call_id: str) -> bool:
        """True the first time the guardrail looks at a call the run is stopping for."""
        with self._lock:
            if call_id not in self._stopped or call_id in self._looked:
                return False
            self._looked[call_id] = None
            return True

    def _before_approval(self, call: ToolCall) -> ToolGuardrailFunctionOutput:
        decision = self.guard.check(call)
        if decision.enforced and decision.action is Action.DENY:
            # Only a confirm was recorded when the run stopped: this deny is news.
            return _refused(CallBlocked(self.guard.record(decision, call=call)))
        return ToolGuardrailFunctionOutput.allow({"waiting_for_approval": call.call_id})

    def _admit(
        self, call: ToolCall, decision: Decision, seconds: float, approval: Approval
    ) -> ToolGuardrailFunctionOutput:
        with self._lock:
            asked = self._stopped.get(call.call_id)
        if not (
            asked is not None
            and asked.action is decision.action
            and asked.args_hash == decision.args_hash
        ):
            # Not recorded when the run stopped: a call that did not stop, or one whose
            # decision changed while it waited (a deny stands whatever was approved).
            decision = self.guard.record(decision, seconds=seconds, call=call)
        response = None
        if decision.enforced and decision.action is Action.CONFIRM:
            response = self._answer(call, decision, asked, approval)
        try:
            self.guard.settle(call, decision, response)
        except CallBlocked as error:
            return _refused(error)
        with self._lock:
            if response is not None:
                self._ran[call.call_id] = None
            self._running[call.call_id] = (call, decision)
        self.guard.before(decision)
        return ToolGuardrailFunctionOutput.allow(decision.summary())

    def _answer(
        self, call: ToolCall, decision: Decision, asked: Decision | None, approval: Approval
    ) -> ApprovalResponse:
        """The answer the run's approvals give to the guard's ``confirm`` of ``call``."""
        with self._lock:
            reason = self._reasons.pop(call.call_id)
            again = call.call_id in self._ran
        refused = None
        if again:
            refused = "this call already ran once on its approval"
        elif approval == "sticky":
            refused = (
                f"an always_approve decision on {call.tool} does not approve a call peerguard "
                "asks to confirm: approve each call itself"
            )
        elif approval is None:
            refused = "the run holds no approval of this call"
        if refused is not None:
            return ApprovalResponse(
                approved=False, args_hash=decision.args_hash, reason=refused, approver=APPROVER
            )
        # Approved by its call id. The human was shown the arguments the run stopped with;
        # the SDK binds a call id to one invocation (a resumed run in another process has
        # only that to go on).
        shown = asked.args_hash if asked is not None else decision.args_hash
        return ApprovalResponse(
            approved=True, args_hash=shown, reason=reason or "approved", approver=APPROVER
        )

    # -- the output guardrail: may the result reach the model?

    async def screen(self, data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        with self._lock:
            running = self._running.pop(ctx.tool_call_id)
        if running is None:  # not let through by this gate: screen it against anyone's weights
            who = self.agent_of(ctx.context) or "<unidentified>"
            call = ToolCall(
                who, ctx.tool_name, _arguments(ctx.tool_arguments) or {}, ctx.tool_call_id
            )
            decision = None
        else:
            call, decision = running
            await asyncio.to_thread(self.guard.after, decision)
        try:
            await asyncio.to_thread(self.guard.screen, call, _shown(data.output), decision)
        except ResultWithheld as withheld:
            return _refused(withheld)
        return ToolGuardrailFunctionOutput.allow()

    # -- answers given on a RunState

    def asked(self, item: ToolApprovalItem) -> tuple[ToolCall, Decision] | None:
        """The call and ``confirm`` this gate stopped the run for at ``item``, re-decided when
        this process did not stop it (the agent is then the gate's own or acting_as())."""
        call_id = _call_id(item)
        if call_id is None:
            return None
        args = _arguments(item.arguments) or {}
        with self._lock:
            known = self._stopped.get(call_id)
        if known is not None:
            return ToolCall(known.agent, known.tool, args, call_id), known
        who = resolve_agent(self.agent) or current_agent_id()
        if who is None or item.tool_name is None:
            return None
        call = ToolCall(who, item.tool_name, args, call_id)
        decision = self.guard.check(call)
        if decision.enforced and decision.action is Action.CONFIRM:
            return call, decision
        return None

    def approved(self, item: ToolApprovalItem, reason: str) -> None:
        call_id = _call_id(item)
        if call_id is not None and reason:
            with self._lock:
                self._reasons[call_id] = reason

    def refuse(self, item: ToolApprovalItem, reason: str) -> str | None:
        """Record the refusal of ``item``'s confirmation; the message the model is given."""
        found = self.asked(item)
        if found is None:
            return None
        call, decision = found
        response = ApprovalResponse(
            approved=False,
            args_hash=decision.args_hash,
            reason=reason or "rejected",
            approver=APPROVER,
        )
        try:
            self.guard.settle(call, decision, response)
        except CallBlocked as error:
            return str(error)
        return None  # pragma: no cover - settle refuses every refusal of an enforced confirm


def _call_id(item: ToolApprovalItem) -> str | None:
    raw = item.raw_item
    found = raw.get("call_id") if isinstance(raw, Mapping) else getattr(raw, "call_id", None)
    return found if isinstance(found, str) and found else None


class _NeedsApproval:
    """A tool's ``needs_approval``: the guard's ``confirm``, or the tool's own rule."""

    def __init__(self, gate: _Gate, tool: str, own: Any) -> None:
        self.gate = gate
        self.tool = tool
        self.own = own

    async def __call__(
        self, ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        guard_asks = await self.gate.needs_confirmation(ctx, self.tool, params, call_id)
        own = self.own
        if callable(own):
            own = own(ctx, params, call_id)
            if inspect.isawaitable(own):
                own = await own
        stops = guard_asks or bool(own)
        if stops:
            self.gate.stopping(call_id)
        return stops


class PeerGuardTools:
    """Guards OpenAI Agents SDK function tools with one guard and one way of naming the agent.

    Args:
        guard: The guard.
        agent: The acting agent: an id, or a function returning the current one. When
            ``None``, the run context's ``agent_id``, then the id set with ``acting_as()``.
    """

    def __init__(self, guard: Guard, *, agent: AgentSource | None = None) -> None:
        self.guard = guard
        self.agent = agent
        self._gate = _Gate(guard, agent)
        self.input_guardrail: ToolInputGuardrail[Any] = ToolInputGuardrail(
            guardrail_function=self._gate.admit, name=GUARDRAIL_NAME
        )
        """Decides on each call just before it runs (already on every tool :meth:`wrap` returns)."""
        self.output_guardrail: ToolOutputGuardrail[Any] = ToolOutputGuardrail(
            guardrail_function=self._gate.screen, name=GUARDRAIL_NAME
        )
        """Screens each result for other models' weights (already on every wrapped tool)."""

    def wrap(self, tool: Tool) -> FunctionTool:
        """A copy of ``tool`` that the guard decides on before each call.

        The copy keeps the name, description, parameter schema, invoker and the tool's own
        guardrails (the guard's input guardrail runs after them, on the call exactly as it
        will run; its output guardrail runs first, so theirs never see a withheld result) and
        its own ``needs_approval`` (the run stops when either asks).

        Raises:
            TypeError: ``tool`` is not a ``FunctionTool`` (hosted, shell or computer tools are
                not guarded here), or is already guarded.
        """
        if not isinstance(tool, FunctionTool):
            raise TypeError(
                f"peerguard guards function tools; {getattr(tool, 'name', tool)!r} is a "
                f"{type(tool).__name__}"
            )
        if isinstance(tool.needs_approval, _NeedsApproval):
            raise TypeError(f"tool {tool.name!r} is already guarded")
        guarded = copy.copy(tool)  # FunctionTool.__copy__ rebinds the invoker to the copy
        guarded.needs_approval = _NeedsApproval(self._gate, tool.name, tool.needs_approval)
        guarded.tool_input_guardrails = [*(tool.tool_input_guardrails or []), self.input_guardrail]
        guarded.tool_output_guardrails = [
            self.output_guardrail,
            *(tool.tool_output_guardrails or []),
        ]
        return guarded

    def wrap_all(self, tools: Iterable[Tool]) -> list[Tool]:
        """:meth:`wrap` each of ``tools``, in order (as the list ``Agent(tools=...)`` takes)."""
        return [self.wrap(t) for t in tools]


def guard_tools(
    guard: Guard, tools: Iterable[Tool], *, agent: AgentSource | None = None
) -> list[Tool]:
    """Guarded copies of ``tools``: ``Agent(tools=guard_tools(guard, tools, agent="a-1"))``.

    Args:
        guard: The guard.
        tools: ``FunctionTool`` objects (``@function_tool`` functions).
        agent: The acting agent; see :class:`PeerGuardTools`.

    Returns:
        The guarded copies, in order (the originals are left unchanged).
    """
    return PeerGuardTools(guard, agent=agent).wrap_all(tools)


def _gate_of(item: ToolApprovalItem) -> _Gate | None:
    """The gate of the guarded tool ``item`` waits on, found on the item's agent."""
    for tool in getattr(item.agent, "tools", ()):
        if isinstance(tool, FunctionTool) and tool.name == item.tool_name:
            needs = tool.needs_approval
            if isinstance(needs, _NeedsApproval):
                return needs.gate
    return None


def confirmation_request(item: ToolApprovalItem) -> ApprovalRequest | None:
    """What peerguard asks a human to confirm at ``item`` (an entry of
    ``result.interruptions``): the exact call, its effects, whose assets, which rule and the
    args hash; ``None`` when the run stopped there for another reason (the tool's own
    ``needs_approval``)."""
    gate = _gate_of(item)
    found = gate.asked(item) if gate is not None else None
    if gate is None or found is None:
        return None
    call, decision = found
    return gate.guard.approval_request(call, decision)


def approve(state: RunState[Any, Any], item: ToolApprovalItem, *, reason: str = "") -> None:
    """Approve the call at ``item``, and only that call: ``state.approve(item)`` with no
    standing approval for later calls. The approval and ``reason`` are recorded when the call
    runs, once the run is resumed with ``state``."""
    gate = _gate_of(item)
    if gate is not None:
        gate.approved(item, reason)
    state.approve(item, always_approve=False)


def reject(state: RunState[Any, Any], item: ToolApprovalItem, *, reason: str = "") -> None:
    """Reject the call at ``item``: it never runs. The refusal is recorded on the guard's
    sinks (with ``reason``), and the model is told, once the run is resumed with ``state``,
    that the confirmation was refused."""
    gate = _gate_of(item)
    message = gate.refuse(item, reason) if gate is not None else None
    state.reject(item, rejection_message=message)


__all__ = [
    "APPROVER",
    "CONTEXT_AGENT_KEY",
    "GUARDRAIL_NAME",
    "PeerGuardTools",
    "approve",
    "confirmation_request",
    "guard_tools",
    "reject",
]
