"""Guard plain functions: every call is decided before it runs.

::

    @guarded(guard, agent="ops-agent")
    def delete_file(path: str) -> None: ...

    delete_file("hosts/decom-01/data/agent_2_w.safetensors")   # raises CallBlocked

The acting agent is explicit: a fixed id, or a function that returns the current one (by
default :func:`current_agent_id`, which reads the :data:`current_agent` context variable that
:func:`acting_as` sets). A call with no agent is denied: the guard cannot tell whose assets
are whose without one.

LangChain tools are guarded by :func:`guard.integrations.langchain.guard_tool`, which keeps
this module free of any framework import.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from guard.engine import Guard, unidentified
from guard.exceptions import CallBlocked
from guard.types import ToolCall

P = ParamSpec("P")
R = TypeVar("R")

AgentSource = str | Callable[[], str | None]
"""Who is acting: a fixed agent id, or a function returning the current one (or ``None``)."""

current_agent: ContextVar[str | None] = ContextVar("peerguard_current_agent", default=None)
"""The agent acting in this context (thread, task); set it with :func:`acting_as`."""


def current_agent_id() -> str | None:
    """The agent :func:`acting_as` set in this context, ``None`` outside one."""
    return current_agent.get()


@contextmanager
def acting_as(agent_id: str) -> Iterator[str]:
    """Run the body as ``agent_id``: guarded calls inside it are that agent's.

    The id lives in a context variable, so each thread and each asyncio task keeps its own,
    and tasks started inside the block inherit it.

    Args:
        agent_id: The acting agent's id, as the policy's declarations name it.

    Yields:
        ``agent_id``.
    """
    if not agent_id:
        raise ValueError("acting_as needs a non-empty agent id")
    token = current_agent.set(agent_id)
    try:
        yield agent_id
    finally:
        current_agent.reset(token)


def resolve_agent(agent: AgentSource | None) -> str | None:
    """The agent id ``agent`` names now; ``None`` when there is none."""
    if agent is None:
        return None
    found = agent() if callable(agent) else agent
    return found or None


# ---------------------------------------------------------------------- plain functions


CONTEXT_AGENT_KEY = "agent_id"
"""The attribute or key of a framework's run context that names the acting agent."""


def context_agent(context: Any) -> str | None:
    """The acting agent a framework's run context names (its ``agent_id``), if any.

    Args:
        context: A mapping or an object (LangGraph's runtime context, the OpenAI Agents SDK's
            run context), or ``None``.

    Returns:
        The agent id, or ``None`` when the context names none.
    """
    if context is None:
        return None
    found = (
        context.get(CONTEXT_AGENT_KEY)
        if isinstance(context, Mapping)
        else getattr(context, CONTEXT_AGENT_KEY, None)
    )
    return str(found) if found else None


def _arguments(
    sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults included, as the guard sees them."""
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        param = sig.parameters[name]
        if i == 0 and name in ("self", "cls"):
            continue  # a method's receiver is not an argument of the tool
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def guarded(
    guard: Guard, *, agent: AgentSource | None = current_agent_id, tool: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function, sync or async, so that the guard decides on every call.

    The call the guard sees is ``tool`` (the function's name by default) with the bound
    arguments, defaults filled in (``**kwargs`` merged in, ``*args`` as a list). It runs
    through :meth:`Guard.run` (or :meth:`Guard.arun` for a coroutine function), so a
    confirmation goes to the guard's approver. The wrapper keeps the function's name,
    docstring, signature and type hints.

    Args:
        guard: The guard.
        agent: The acting agent: an id, or a function returning the current one. By
            default the id set with :func:`acting_as`.
        tool: The tool name the policy knows the function by.

    Returns:
        The decorator.

    Raises:
        CallBlocked: (from the decorated function) the call was denied, its confirmation
            refused, or no agent could be named.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)
        name: str = tool or str(getattr(fn, "__name__", type(fn).__name__))

        def call_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolCall:
            arguments = _arguments(sig, args, kwargs)
            who = resolve_agent(agent)
            if who is None:
                raise CallBlocked(unidentified(guard, name, arguments))
            return ToolCall(agent=who, tool=name, args=arguments)

        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                call = call_of(args, kwargs)
                return await guard.arun(call, lambda _c: afn(*args, **kwargs))

            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            call = call_of(args, kwargs)
            return guard.run(call, lambda _c: fn(*args, **kwargs))

        return wrapper

    return decorate


__all__ = [
    "CONTEXT_AGENT_KEY",
    "AgentSource",
    "acting_as",
    "context_agent",
    "current_agent",
    "current_agent_id",
    "guarded",
    "resolve_agent",
]
