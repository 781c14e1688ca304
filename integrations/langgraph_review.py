"""A peerguard confirmation as LangChain's human review: what the reviewer sees and may answer.

The value of a confirmation interrupt reads three ways at once:

- as LangChain v1's ``HITLRequest`` (what ``HumanInTheLoopMiddleware`` raises, and what the
  Agent Chat UI and Agent Inbox render): ``action_requests`` holds one ``ActionRequest`` for
  the call (``name``, ``args``, ``description``), ``review_configs`` one ``ReviewConfig``
  with its ``allowed_decisions`` (``approve``, ``edit``, ``reject``; a contained shell
  command, already run in its sandbox, is not editable);
- as the middleware's per-call ``ToolApprovalRequest``: ``type`` is ``"tool_approval"``,
  with ``tool_call_id``, ``name``, ``args`` and ``description``;
- as peerguard's own :class:`ConfirmationRequest`, under the ``peerguard`` key: its ``type``
  (:data:`CONFIRMATION_TYPE`, how :func:`pending_confirmations` recognises it), the acting
  agent, ``rules``, ``reason``, ``effects``, ``assets``, ``changes``, ``args_hash``,
  ``call_id``, ``ask_id`` and, when the question is asked again, ``note`` (why).

The description says, in plain words, who wants to run what, what it would do, whose assets
it touches, and why it needs a human; a ``note`` comes first.

The graph resumes with any of these answers (:func:`read_reply` reads them):

- a ``Decision``: ``{"type": "approve"}``, ``{"type": "reject", "message": ...}`` (the
  message reaches the model in the call's error ``ToolMessage``), or ``{"type": "edit",
  "edited_action": {"name": <the same tool>, "args": {...}}}``;
- a ``HITLResponse`` holding exactly one of those: ``{"decisions": [decision]}`` (what the
  Agent Chat UI sends);
- the older ``HumanResponse`` list the Agent Inbox still sends: ``[{"type": "accept" |
  "ignore" | "response" | "edit", "args": ...}]`` (accept approves, ignore rejects, a
  response rejects with its text, an edit carries ``{"action": name, "args": {...}}``);
- peerguard's own :class:`ConfirmationAnswer`, ``ConfirmationAnswer.to(request, approve=...)``.

A standard decision names no call: it answers the interrupt it is sent to (LangGraph routes a
resume keyed by interrupt id to that interrupt, and a bare ``Command(resume=...)`` to the one
pending). peerguard's own answer names the call id, the question (``ask_id``) and the hash of
the exact arguments: a client that wants an answer never to approve anything but the call the
human saw, even when replayed, sends that form. An edit is a new call: the guard decides on
it from scratch before it runs, and it may need a human again. An answer peerguard cannot
read (an unknown type, two decisions for the one call, an edit naming another tool or whose
arguments are not an object) approves nothing and fails nothing: the question is asked again,
its ``note`` (and description) saying what was wrong.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from langchain_core.messages import ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Interrupt, interrupt
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from guard.approval import ApprovalRequest, ApprovalResponse, render_request
from guard.integrations._once import Run, ToolResult, ask_id_of, configurable_of, shares_task
from guard.types import Decision, ToolCall

CONFIRMATION_TYPE: Final = "peerguard.confirmation"
"""The ``type`` of peerguard's part of a confirmation interrupt (``value["peerguard"]``)."""

REQUEST_TYPE: Final = "tool_approval"
"""The ``type`` of a confirmation interrupt's value: LangChain's per-call approval request."""

DecisionName = Literal["approve", "edit", "reject"]

DECISIONS: Final[tuple[DecisionName, ...]] = ("approve", "edit", "reject")
"""What a reviewer may decide on a call."""

NOT_EDITABLE: Final[tuple[DecisionName, ...]] = ("approve", "reject")
"""What a reviewer may decide on a contained shell command: it already ran in its sandbox,
and approving commits exactly what that run did."""


class ConfirmationRequest(ApprovalRequest):
    """A confirmation a ``confirm`` decision asks for, as peerguard sees it.

    ``effects`` says in plain words what the call would do; ``assets`` lists each protected
    asset it touches with its owner and the agent's relation to it; ``rules`` and ``reason``
    say why it needs a human. ``call_id`` is the tool call's id and ``ask_id`` names this
    question (the graph task that asks, the call, and for an edited call its arguments): an
    answer in peerguard's own form echoes both, as :meth:`ConfirmationAnswer.to` does.
    :meth:`to_interrupt` gives the interrupt's value; :func:`pending_confirmations` reads it
    back.
    """

    type: Literal["peerguard.confirmation"] = CONFIRMATION_TYPE
    ask_id: str = ""
    note: str = ""
    """Why the question is asked (again): an answer set aside, or a human's edit that needs
    a human too."""
    decisions: list[DecisionName] = Field(default_factory=lambda: list(DECISIONS))
    """What the reviewer may decide."""

    def describe(self) -> str:
        """The request in plain words, for the reviewer: the note first, then who wants to run
        what, its effects, the assets it touches, the rule and why, and what each answer does."""
        lines = [f"Asked again: {self.note}", ""] if self.note else []
        lines.append(render_request(self))
        lines += [f"  changed:   {c}" for c in self.changes[:20]]
        offered = [
            "approve runs exactly this call, once",
            "edit makes a new call, checked again before it runs" if "edit" in self.decisions
            else "",
            "reject tells the agent why it did not run",
        ]  # fmt: skip
        lines += ["", "; ".join(o for o in offered if o) + "."]
        return "\n".join(lines)

    def to_interrupt(self) -> dict[str, Any]:
        """The interrupt's value: a ``HITLRequest`` and a ``ToolApprovalRequest`` for this one
        call, with peerguard's own fields under ``peerguard``."""
        args = self.model_dump(mode="json", include={"args"})["args"]
        description = self.describe()
        return {
            "type": REQUEST_TYPE,
            "tool_call_id": self.call_id,
            "name": self.tool,
            "args": args,
            "description": description,
            "action_requests": [{"name": self.tool, "args": args, "description": description}],
            "review_configs": [
                {"action_name": self.tool, "allowed_decisions": list(self.decisions)}
            ],
            "peerguard": self.model_dump(mode="json", exclude={"tool", "args"}),
        }

    @classmethod
    def from_interrupt(cls, value: Any) -> ConfirmationRequest | None:
        """The request an interrupt's value holds; ``None`` for another interrupt. Reads the
        value :meth:`to_interrupt` makes and the flat one earlier versions made."""
        if not isinstance(value, Mapping):
            return None
        ours = value.get("peerguard")
        if isinstance(ours, Mapping) and ours.get("type") == CONFIRMATION_TYPE:
            return cls.model_validate(
                {**ours, "tool": value.get("name"), "args": value.get("args")}
            )
        if value.get("type") == CONFIRMATION_TYPE:  # as earlier versions asked
            return cls.model_validate(dict(value))
        return None

    def response_schema(self, args_schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON Schema of the answers this request takes, for clients to render (it is
        published with the interrupt, not enforced: :func:`read_reply` reads every answer).

        Args:
            args_schema: The tool's argument schema, for an edit's ``args``.
        """
        args = dict(args_schema or {"type": "object"})
        defs = args.pop("$defs", None)  # its references name the document's root
        by_type: dict[str, dict[str, Any]] = {
            "approve": _object({"type": {"const": "approve"}}, ["type"]),
            "reject": _object(
                {"type": {"const": "reject"}, "message": {"type": "string"}}, ["type"]
            ),
            "edit": _object(
                {
                    "type": {"const": "edit"},
                    "edited_action": _object(
                        {
                            "name": {"const": self.tool},
                            "args": args,
                        },
                        ["name", "args"],
                    ),
                },
                ["type", "edited_action"],
            ),
        }
        decision = {"oneOf": [by_type[d] for d in self.decisions]}
        batch = {"type": "array", "items": decision, "minItems": 1, "maxItems": 1}
        schema: dict[str, Any] = {
            "title": "Decision",
            "anyOf": [
                decision,
                _object({"decisions": batch}, ["decisions"]),
                ConfirmationAnswer.model_json_schema(),
            ],
        }
        if defs:
            schema["$defs"] = defs
        return schema


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


class ConfirmationAnswer(BaseModel):
    """peerguard's own answer: ``Command(resume=ConfirmationAnswer.to(request, approve=...))``.

    It is bound to one question of one call: ``call_id`` and ``ask_id`` must be the
    :class:`ConfirmationRequest`'s, and an approval counts only when ``args_hash`` is the hash
    of the call as it runs. An answer that names another call (or another question of the
    same call id) does not answer this one, which stays open; one that names no call
    approves nothing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approve: StrictBool  # "yes", 1 or "on" is not an approval
    args_hash: str
    call_id: str = ""
    ask_id: str = ""
    reason: str = ""

    @classmethod
    def to(
        cls, request: ConfirmationRequest | Mapping[str, Any], *, approve: bool, reason: str = ""
    ) -> dict[str, Any]:
        """The resume value answering ``request``: a request, its dict form, or the
        interrupt's value.

        Args:
            request: The confirmation being answered.
            approve: True to let the call run.
            reason: Why, recorded with the approval.

        Returns:
            The answer as the dict ``Command(resume=...)`` takes.
        """
        asked: Mapping[str, Any]
        if isinstance(request, ConfirmationRequest):
            asked = request.model_dump()
        else:
            found = ConfirmationRequest.from_interrupt(request) if "peerguard" in request else None
            asked = found.model_dump() if found is not None else request
        return cls(
            approve=approve,
            args_hash=str(asked["args_hash"]),
            call_id=str(asked.get("call_id") or ""),
            ask_id=str(asked.get("ask_id") or ""),
            reason=reason,
        ).model_dump()


NAMES_NO_CALL = (
    "the answer names no tool call (no call_id), so it may be for a different call: it "
    "approves nothing; answer with ConfirmationAnswer.to(request, ...)"
)


def pending_confirmations(interrupts: Iterable[Interrupt]) -> dict[str, ConfirmationRequest]:
    """peerguard's confirmations among ``interrupts``, by interrupt id.

    Pass ``result["__interrupt__"]`` of an interrupted ``invoke``, or
    ``graph.get_state(config).interrupts``. Other interrupts are left out.
    """
    found: dict[str, ConfirmationRequest] = {}
    for item in interrupts:
        request = ConfirmationRequest.from_interrupt(item.value)
        if request is not None:
            found[item.id] = request
    return found


# ---------------------------------------------------------------- reading an answer


@dataclass(frozen=True)
class Reply:
    """A reviewer's answer, read.

    Attributes:
        kind: ``approve``, ``reject`` or ``edit`` (a standard decision, naming no call),
            ``answer`` (peerguard's own), or ``unreadable``.
        message: A rejection's words for the agent.
        args: An edit's new arguments.
        answer: peerguard's own answer.
        problem: Why an unreadable answer could not be used, for the question's note.
    """

    kind: Literal["approve", "reject", "edit", "answer", "unreadable"]
    message: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    answer: ConfirmationAnswer | None = None
    problem: str = ""


HOW = (
    'answer with {"type": "approve"}, {"type": "reject", "message": "..."}, {"type": "edit", '
    '"edited_action": {"name": ..., "args": {...}}}, {"decisions": [one of those]}, or '
    "ConfirmationAnswer.to(request, approve=...)"
)


def _unreadable(problem: str) -> Reply:
    return Reply("unreadable", problem=f"{problem}; nothing was decided, {HOW}")


def _shown(value: object, limit: int = 120) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'the answer'}: {e['msg']}"
        for e in exc.errors()[:3]
    )


def read_reply(value: Any, asked: ConfirmationRequest) -> Reply:
    """What the resume value ``value`` answers to ``asked``; never raises.

    Reads a ``Decision``, a ``HITLResponse`` of one decision, a one-item ``HumanResponse``
    list, or a :class:`ConfirmationAnswer` (or its dict form). Anything else, and a decision
    this request does not offer, is ``unreadable``, with the problem in words.
    """
    if isinstance(value, ConfirmationAnswer):
        return Reply("answer", answer=value)
    if isinstance(value, list | tuple):
        if len(value) != 1:
            return _unreadable(
                f"a list answer must hold exactly one decision for this one call, not {len(value)}"
            )
        return _decision(value[0], asked)
    if not isinstance(value, Mapping):
        return _unreadable(f"the answer {_shown(value)} is not a decision")
    if "decisions" in value:
        decisions = value["decisions"]
        if not isinstance(decisions, list | tuple):
            return _unreadable(f"decisions must be a list, not {_shown(decisions)}")
        if len(decisions) != 1:
            return _unreadable(
                "this interrupt asks about one tool call, so it takes exactly one decision, "
                f"not {len(decisions)}"
            )
        return _decision(decisions[0], asked)
    if "type" not in value and ("approve" in value or "args_hash" in value):
        try:
            return Reply("answer", answer=ConfirmationAnswer.model_validate(dict(value)))
        except ValidationError as exc:
            return _unreadable(f"the ConfirmationAnswer is not valid ({_errors(exc)})")
    return _decision(value, asked)


def _decision(item: Any, asked: ConfirmationRequest) -> Reply:
    """One decision: LangChain's (approve, edit, reject) or the Agent Inbox's older
    ``HumanResponse`` (accept, edit, response, ignore)."""
    if not isinstance(item, Mapping):
        return _unreadable(f"a decision is an object with a type, not {_shown(item)}")
    if "type" not in item:
        return _unreadable(f"the answer {_shown(item)} has no decision type")
    kind = item.get("type")
    if kind in ("approve", "accept"):  # an accept's args echo the request: not an edit
        return Reply("approve")
    if kind == "ignore":
        return Reply("reject")
    if kind in ("reject", "response"):
        message = item.get("message") if kind == "reject" else item.get("args")
        if message is not None and not isinstance(message, str):
            return _unreadable(f"a {kind}'s message must be text, not {_shown(message)}")
        return Reply("reject", message=message or "")
    if kind == "edit":
        return _edit(item, asked)
    if kind == "respond":
        return _unreadable(
            "respond is not offered: a human may not answer in place of a guarded tool"
        )
    return _unreadable(f"the decision type {_shown(kind)} is not one of approve, edit, reject")


def _edit(item: Mapping[str, Any], asked: ConfirmationRequest) -> Reply:
    if "edit" not in asked.decisions:
        return _unreadable(
            "an edit is not offered for this call (a contained command already ran in its "
            "sandbox, and approving commits exactly what it did): approve or reject it"
        )
    legacy = "edited_action" not in item  # the Agent Inbox: {"args": {"action", "args"}}
    action = item.get("args") if legacy else item.get("edited_action")
    if not isinstance(action, Mapping):
        return _unreadable(f"an edit's edited_action must be an object, not {_shown(action)}")
    name = action.get("action") if legacy else action.get("name")
    if name != asked.tool:
        return _unreadable(
            f"an edit may not change the tool ({asked.tool} to {_shown(name)}): the guard "
            f"decided on {asked.tool}; reject this call to have the agent make another"
        )
    args = action.get("args")
    if not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args):
        return _unreadable(
            f"an edit's args must be an object of named arguments, not {_shown(args)}"
        )
    return Reply("edit", args=dict(args))


# ---------------------------------------------------------------- what the answer came to

APPROVER: Final = "langgraph-interrupt"
"""The approver recorded with an answer given through a LangGraph interrupt."""

EDIT_ASKED = (
    "a human edited this call; the guard decided on the edit as a new call, and it needs a "
    "human too"
)
SHARED_TASK = (
    "this step runs several tool calls in one task (a ToolNode given a whole AI message), and "
    "a decision that names no call could reach another of them than the one shown, so it was "
    "set aside: answer with ConfirmationAnswer.to(request, ...), which names the call, or "
    "send each tool call to the tool node with its own Send, as create_agent does"
)
REPLACED = "replaced by a new call with the edited arguments, decided on again"
EDIT_BLOCKED = "peerguard decided on a human's edit of this call as a new call, and:"
EDIT_RAN = (
    "peerguard: a human edited this call before it ran; it was decided on again, and ran "
    "with these arguments instead of yours:"
)


def question(
    request: ToolCallRequest, asked: ApprovalRequest, *, edited: bool = False,
    decisions: tuple[DecisionName, ...] = DECISIONS,
) -> ConfirmationRequest:  # fmt: skip
    """The question for ``asked``: bound to this call, and for a human's edit of it, to
    the edited arguments (an answer to the first question does not answer the next)."""
    key = f"{asked.call_id}\0{asked.args_hash}" if edited else asked.call_id
    return ConfirmationRequest.model_validate(
        {
            **asked.model_dump(),
            "ask_id": ask_id_of(configurable_of(request), key),
            "decisions": list(decisions),
            "note": EDIT_ASKED if edited else "",
        }
    )


def answer(request: ToolCallRequest, prompt: ConfirmationRequest, run: Run) -> Reply:
    """The answer to ``prompt``: the reviewer's decision, or an answer of peerguard's own
    taken from the run's interrupts by the call it names.

    The answers of a task come back in the order its calls ask, and calls run side by
    side ask in no fixed order: each answer of peerguard's own is filed under the call
    id it names, and a call takes only its own. One naming no call goes to the call that
    took it (it approves nothing). A standard decision names no call either: it answers
    the question it was sent to, except in a task with other calls, where it is set
    aside. An answer that cannot be read is set aside too, and the question is asked
    again with a note saying why. Raises GraphInterrupt when this call's answer is not
    there.
    """
    notes: list[str] = []
    schema = prompt.response_schema(args_schema(request))
    with run.lock:
        run.asking.add(prompt.call_id)
        while True:
            for found in run.answers.get(prompt.call_id, ()):
                if found.ask_id == prompt.ask_id:
                    return Reply("answer", answer=found)
            said = [n for n in dict.fromkeys((prompt.note, *run.notes, *notes)) if n]
            shown = prompt.model_copy(update={"note": "; ".join(said)}) if said else prompt
            # Raises GraphInterrupt when the task has no answer left; else the next one.
            reply = read_reply(interrupt(shown.to_interrupt(), response_schema=schema), shown)
            named = reply.answer
            problem = reply.problem
            if reply.kind != "unreadable" and named is None:  # a standard decision
                if len(run.asking) == 1 and not shares_task(request):
                    return reply
                problem = SHARED_TASK
                if problem not in run.notes:
                    run.notes.append(problem)
            elif named is not None:
                if not named.call_id:
                    return reply
                run.answers.setdefault(named.call_id, []).append(named)
                if named.call_id != prompt.call_id:
                    problem = (
                        f"an answer naming call {named.call_id} is not this call's: it "
                        "goes to that call, if that call is asked in this step"
                    )
                elif named.ask_id != prompt.ask_id:
                    problem = (
                        f"an answer for call {prompt.call_id} was set aside: it answers "
                        f"another question (ask_id {named.ask_id or 'missing'}), not this one"
                    )
            if problem and problem not in notes:
                notes.append(problem)


def approval(reply: Reply, prompt: ConfirmationRequest) -> ApprovalResponse:
    """The approval (or refusal) ``reply`` gives the call ``prompt`` asked about."""
    named = reply.answer
    if named is None:  # a standard decision: it answers the question it was sent to
        return ApprovalResponse(approved=reply.kind == "approve", args_hash=prompt.args_hash,
                                reason=reply.message, approver=APPROVER)  # fmt: skip
    if not named.call_id:
        return ApprovalResponse(approved=False, args_hash=named.args_hash,
                                reason=NAMES_NO_CALL, approver=APPROVER)  # fmt: skip
    return ApprovalResponse(
        approved=named.approve, args_hash=named.args_hash, reason=named.reason,
        approver=APPROVER,
    )  # fmt: skip


def edited(call: ToolCall, reply: Reply) -> tuple[ToolCall | None, Reply]:
    """The new call a human's edit makes, if ``reply`` is one (an edit that changes no
    argument approves the call as asked)."""
    if reply.kind != "edit":
        return None, reply
    new = dataclasses.replace(call, args=reply.args)
    try:
        same = new.args_hash == call.args_hash
    except Exception:  # arguments that cannot be hashed: the guard denies them
        same = False
    return (None, Reply("approve")) if same else (new, reply)


@dataclass
class Verdict:
    """What deciding on a call came to.

    Attributes:
        call: The call that runs: the agent's, or a human's edit of it (same call id).
        decision: The guard's decision on ``call``.
        response: The human's answer, when ``decision`` waited for one.
        elapsed: How long the guard took to decide (every decision), in seconds.
        replaced: The calls a human's edit replaced, with the guard's decisions on them.
    """

    call: ToolCall
    decision: Decision
    response: ApprovalResponse | None = None
    elapsed: float = 0.0
    replaced: list[tuple[ToolCall, Decision]] = field(default_factory=list)

    def replace(self, call: ToolCall, decision: Decision, seconds: float) -> None:
        """A human edited the call: ``call`` replaces it, and ``decision`` is the guard's."""
        self.replaced.append((self.call, self.decision))
        self.call, self.decision = call, decision
        self.elapsed += seconds

    def request(self, request: ToolCallRequest) -> ToolCallRequest:
        """The request that runs: ``request``, with the edited arguments if a human edited
        it (the tool call id stays, so the result answers the agent's call)."""
        if not self.replaced:
            return request
        return request.override(tool_call={**request.tool_call, "args": dict(self.call.args)})

    def told(self, result: ToolResult) -> ToolResult:
        """``result``, telling the agent that a human edited its call, and to what."""
        if not self.replaced or not isinstance(result, ToolMessage):
            return result
        return noted(result, f"{EDIT_RAN} {json.dumps(self.call.args, default=str)}")


def noted(message: ToolMessage, text: str) -> ToolMessage:
    """``message`` with ``text`` before its content."""
    content = message.content
    if isinstance(content, str):
        new: str | list[str | dict[Any, Any]] = f"{text}\n\n{content}" if content else text
    elif content and all(isinstance(b, str) for b in content):
        new = [text, *content]
    else:
        new = [{"type": "text", "text": text}, *content]
    return message.model_copy(update={"content": new})


def args_schema(request: ToolCallRequest) -> dict[str, Any] | None:
    """The JSON Schema of the tool's arguments, as the model sees them, when it has one."""
    try:
        schema = getattr(request.tool, "tool_call_schema", None)
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_json_schema()
        return dict(schema) if isinstance(schema, Mapping) else None
    except Exception:  # a schema that cannot be shown: an edit's args are any object
        return None


__all__ = [
    "APPROVER",
    "CONFIRMATION_TYPE",
    "DECISIONS",
    "NAMES_NO_CALL",
    "NOT_EDITABLE",
    "REQUEST_TYPE",
    "ConfirmationAnswer",
    "ConfirmationRequest",
    "Reply",
    "Verdict",
    "answer",
    "approval",
    "args_schema",
    "edited",
    "noted",
    "pending_confirmations",
    "question",
    "read_reply",
]
