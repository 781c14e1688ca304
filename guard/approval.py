"""Approvers: who answers when the policy says a call needs a human's confirmation.

An approval is bound to the hash of the exact call (tool and arguments). An answer that names
another hash does not approve this call: an edited call is a new call. With no approver
configured, a confirmation is refused (fail closed).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TextIO, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from guard.types import AssetRef, Decision

TIMED_OUT = "confirmation timed out"
"""How the reason of a refusal for lack of an answer in time begins."""


class ApprovalRequest(BaseModel):
    """What a human is shown: the exact call, what it would do, whose assets, which rule."""

    model_config = ConfigDict(frozen=True)

    agent: str
    tool: str
    args: dict[str, Any]
    call_id: str
    args_hash: str
    rules: list[str]
    reason: str
    effects: list[str] = Field(default_factory=list)
    assets: list[AssetRef] = Field(default_factory=list)
    changes: list[str] = Field(default_factory=list)
    """What a contained run of the call changed, one line each: approved, exactly this is
    committed (empty for calls that were not run first)."""

    @classmethod
    def from_decision(cls, decision: Decision, args: dict[str, Any]) -> ApprovalRequest:
        """The request for a ``confirm`` decision on a call with ``args``."""
        return cls(
            agent=decision.agent,
            tool=decision.tool,
            args=args,
            call_id=decision.call_id,
            args_hash=decision.args_hash,
            rules=decision.rules,
            reason=decision.reason,
            effects=[e.describe() for e in decision.effects],
            assets=decision.assets,
        )


class ApprovalResponse(BaseModel):
    """A human's answer. ``args_hash`` must be the hash of the call being approved.

    ``approved`` takes only a real bool: pydantic would otherwise read ``"yes"``, ``"on"`` or
    ``1`` as an approval.
    """

    model_config = ConfigDict(frozen=True)

    approved: StrictBool
    args_hash: str
    reason: str = ""
    approver: str = ""

    def approves(self, request: ApprovalRequest) -> bool:
        """True only for an approval of exactly this call."""
        return self.approved and self.args_hash == request.args_hash


@runtime_checkable
class Approver(Protocol):
    """Answers confirmation requests, synchronously."""

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Return the answer for ``request``."""
        ...


class DenyAll:
    """The approver used when none is configured: every confirmation is refused."""

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Refuse, saying why."""
        return ApprovalResponse(
            approved=False,
            args_hash=request.args_hash,
            reason="no approver configured",
            approver="peerguard",
        )


Answer = bool | ApprovalResponse


def _shown(value: object, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters, and never raising."""
    try:
        text = repr(value)
    except Exception:  # a callback's own object: its repr is not ours to trust
        text = f"<{type(value).__name__} whose repr failed>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CallbackApprover:
    """An approver backed by a function of the request, sync or async.

    The function returns ``True`` (approve), ``False`` (refuse) or a full
    :class:`ApprovalResponse`. Anything else refuses, truthy or not (``"no"``, ``1``, a
    list): an approval is a deliberate ``True``, and the refusal's reason records what the
    callback returned instead.

    Args:
        fn: The callback.
        name: Recorded as the approver's identity.
    """

    def __init__(
        self, fn: Callable[[ApprovalRequest], Answer | Awaitable[Answer]], name: str = "callback"
    ) -> None:
        self.fn = fn
        self.name = name

    def _wrap(self, request: ApprovalRequest, answer: object) -> ApprovalResponse:
        if isinstance(answer, ApprovalResponse):
            return answer
        if answer is True:
            return ApprovalResponse(approved=True, args_hash=request.args_hash, approver=self.name)
        if answer is False:
            reason = "refused by the approval callback"
        else:
            reason = (
                f"the approval callback returned {_shown(answer)} ({type(answer).__name__}), "
                "not True: refused"
            )
        return ApprovalResponse(
            approved=False, args_hash=request.args_hash, reason=reason, approver=self.name
        )

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Call the callback (it must not be async here; use :meth:`aask` for that)."""
        answer = self.fn(request)
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()
            raise TypeError("an async approval callback needs Guard.arun, not Guard.run")
        return self._wrap(request, answer)

    async def aask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Call the callback, awaiting it when it is async."""
        answer = self.fn(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return self._wrap(request, answer)


def render_request(request: ApprovalRequest) -> str:
    """The request in plain words, as a console shows it: call, effects, assets, rule, hash."""
    lines = [
        f"peerguard: {request.agent} wants to run {request.tool}",
        f"  arguments: {json.dumps(request.args, sort_keys=True, default=str)[:2000]}",
    ]
    lines += [f"  effect:    {e}" for e in request.effects[:20]]
    for a in request.assets[:20]:
        whose = a.owner or "no declared owner"
        kind = a.kind.value if a.kind else "possibly protected"
        lines.append(
            f"  touches:   {a.path or '<unresolved>'} ({kind} of {whose}, {a.relation.value})"
        )
    lines.append(f"  rules:     {', '.join(request.rules)}")
    lines.append(f"  why:       {request.reason}")
    lines.append(f"  call hash: {request.args_hash}")
    return "\n".join(lines)


class ConsoleApprover:
    """Asks a human at a terminal, showing the exact call, its effects, assets and rule.

    Only an explicit ``y``/``yes`` approves; anything else (including end of input) refuses.
    With no interactive terminal the request is refused without asking.

    Args:
        stdin: Where answers come from (default: ``sys.stdin``).
        stdout: Where the prompt goes (default: ``sys.stderr``, so tool output stays clean).
        require_tty: Refuse when ``stdin`` is not a terminal.
    """

    def __init__(
        self, stdin: TextIO | None = None, stdout: TextIO | None = None, *, require_tty: bool = True
    ) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.require_tty = require_tty

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Prompt and read one answer."""
        stdin = self.stdin or sys.stdin
        stdout = self.stdout or sys.stderr
        if self.require_tty and not stdin.isatty():
            return ApprovalResponse(
                approved=False,
                args_hash=request.args_hash,
                reason="no terminal to ask on",
                approver="console",
            )
        print(render_request(request), file=stdout)
        print("Approve this exact call? [y/N] ", end="", file=stdout, flush=True)
        answer = stdin.readline().strip().lower()
        approved = answer in ("y", "yes")
        reason = (
            "approved at the console"
            if approved
            else f"refused at the console ({answer or 'no answer'})"
        )
        return ApprovalResponse(
            approved=approved, args_hash=request.args_hash, reason=reason, approver="console"
        )

    async def aask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Ask in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.ask, request)


class TimeoutApprover:
    """Wraps an approver: no answer within ``seconds`` refuses the call (a timeout denies).

    Args:
        inner: The approver that asks (console, callback, ...).
        seconds: How long to wait for an answer.
    """

    def __init__(self, inner: Approver, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"seconds must be positive, not {seconds}")
        self.inner = inner
        self.seconds = seconds

    def _timed_out(self, request: ApprovalRequest) -> ApprovalResponse:
        return ApprovalResponse(
            approved=False,
            args_hash=request.args_hash,
            reason=f"{TIMED_OUT} after {self.seconds:g}s",
            approver="timeout",
        )

    def ask(self, request: ApprovalRequest) -> ApprovalResponse:
        """Ask ``inner`` in a worker thread; refuse if it has not answered in time."""
        box: list[ApprovalResponse | BaseException] = []
        worker = threading.Thread(
            target=lambda: box.append(_safe_ask(self.inner, request)), daemon=True
        )
        worker.start()
        worker.join(self.seconds)
        if not box:
            return self._timed_out(request)
        answer = box[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def aask(self, request: ApprovalRequest) -> ApprovalResponse:
        """The async form: awaits ``inner.aask`` (or ``ask`` in a thread) under a timeout."""
        aask = getattr(self.inner, "aask", None)
        pending = aask(request) if aask is not None else asyncio.to_thread(self.inner.ask, request)
        try:
            return await asyncio.wait_for(pending, self.seconds)
        except TimeoutError:
            return self._timed_out(request)


def _safe_ask(approver: Approver, request: ApprovalRequest) -> ApprovalResponse | BaseException:
    try:
        return approver.ask(request)
    except Exception as exc:  # handed back to the caller's thread
        return exc


__all__ = [
    "TIMED_OUT",
    "ApprovalRequest",
    "ApprovalResponse",
    "Approver",
    "CallbackApprover",
    "ConsoleApprover",
    "DenyAll",
    "TimeoutApprover",
    "render_request",
]
