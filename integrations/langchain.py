"""peerguard for LangChain: guard an existing tool, and a scripted chat model for tests.

::

    from guard.integrations.langchain import guard_tool

    safe_delete = guard_tool(delete_file, guard, agent="ops-agent")

:func:`guard_tool` returns a copy of a LangChain tool that keeps its name, description and
argument schema, so the model sees the same tool; a blocked call comes back to the agent as a
tool error it can read, not as an exception that ends the run. :class:`ScriptedChatModel`
plays a fixed script of AI messages, for testing agents offline.

This is the only place, with :mod:`guard.integrations.langgraph` and the bench, where
peerguard imports LangChain: the core (``guard.engine``, ``guard.decorator``,
``guard.testing``) works without it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from guard.exceptions import missing_extra

try:
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.runnables.config import var_child_runnable_config
    from langchain_core.tools import BaseTool, ToolException
except ImportError as exc:  # the extra is not installed
    raise missing_extra("langgraph", "the LangChain integration", exc) from exc


from guard.decorator import AgentSource, current_agent_id, resolve_agent
from guard.engine import Guard, unidentified
from guard.exceptions import CallBlocked
from guard.types import ToolCall

ToolT = TypeVar("ToolT", bound=BaseTool)

# Set while a guarded tool runs its own body, so that a body that hops to the sync path
# (BaseTool._arun runs _run in a thread) is not decided twice.
_passing: ContextVar[object | None] = ContextVar("peerguard_tool_passing", default=None)


def guard_tool(tool: ToolT, guard: Guard, *, agent: AgentSource | None = None) -> ToolT:
    """Return a copy of a LangChain tool that the guard decides on before each call.

    The copy is of the same class and keeps the tool's name, description, argument schema
    and injected arguments, so the model sees the same tool and LangGraph injects the same
    things. The guard sees the arguments the model gave (injected ones left out) and runs
    the call through :meth:`Guard.run` / :meth:`Guard.arun`, so a confirmation goes to the
    guard's approver. A blocked call raises a :class:`~langchain_core.tools.ToolException`
    that the copy handles: the agent gets the reason as the tool's result (a ``ToolMessage``
    with ``status="error"`` when called with a tool call). Other tool errors are handled as
    the original tool handles them.

    The acting agent is, in order: ``agent``; the run's
    ``config["configurable"]["peerguard_agent"]``; the id set with :func:`acting_as`.

    Args:
        tool: A ``BaseTool``: ``@tool``, ``StructuredTool`` or a subclass.
        guard: The guard.
        agent: The acting agent: an id, or a function returning the current one.

    Returns:
        The guarded copy (the original is left unchanged).
    """
    if not isinstance(tool, BaseTool):
        raise TypeError(f"guard_tool needs a LangChain BaseTool, got {type(tool).__name__}")
    base = type(tool)
    original_handler = tool.handle_tool_error

    def handle(error: ToolException) -> Any:
        if isinstance(error.__cause__, CallBlocked):
            return error.args[0] if error.args else str(error.__cause__)
        if not original_handler:
            raise error
        if isinstance(original_handler, bool):
            return error.args[0] if error.args else "Tool execution error"
        if isinstance(original_handler, str):
            return original_handler
        return original_handler(error)

    def call_of(self: BaseTool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolCall:
        visible = _visible_args(self)
        arguments = {k: v for k, v in kwargs.items() if k in visible}
        for i, value in enumerate(args):
            key = visible[i] if i < len(visible) else f"arg{i}"
            arguments.setdefault(key, value)
        who = resolve_agent(agent) or _configured_agent() or current_agent_id()
        if who is None:
            raise CallBlocked(unidentified(guard, self.name, arguments))
        return ToolCall(agent=who, tool=self.name, args=arguments)

    namespace: dict[str, Any] = {"__module__": base.__module__, "__doc__": base.__doc__}

    base_run = base._run

    @functools.wraps(base_run)
    def _run(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
        if _passing.get() is self:
            return base_run(self, *args, **kwargs)
        try:
            call = call_of(self, args, kwargs)
            return guard.run(call, lambda _c: base_run(self, *args, **kwargs))
        except CallBlocked as exc:
            raise ToolException(str(exc)) from exc

    namespace["_run"] = _run

    base_arun = base._arun
    if base_arun is not BaseTool._arun:
        # The tool has its own async body; a tool without one runs _run in a thread,
        # where the guarded _run above decides.

        @functools.wraps(base_arun)
        async def _arun(self: BaseTool, *args: Any, **kwargs: Any) -> Any:
            async def execute(_c: ToolCall) -> Any:
                token = _passing.set(self)
                try:
                    return await base_arun(self, *args, **kwargs)
                finally:
                    _passing.reset(token)

            try:
                call = call_of(self, args, kwargs)
                return await guard.arun(call, execute)
            except CallBlocked as exc:
                raise ToolException(str(exc)) from exc

        namespace["_arun"] = _arun

    guarded_cls = cast(type[ToolT], type(f"Guarded{base.__name__}", (base,), namespace))
    copy = tool.model_copy(update={"handle_tool_error": handle})
    object.__setattr__(copy, "__class__", guarded_cls)
    return copy


def _visible_args(tool: BaseTool) -> list[str]:
    """The argument names the model sees (injected arguments left out), in order."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return list(schema.get("properties", {}))
    fields = getattr(schema, "model_fields", None)
    if fields is None:  # a pydantic v1 schema
        fields = getattr(schema, "__fields__", {})
    return list(fields)


def _configured_agent() -> str | None:
    """``config["configurable"]["peerguard_agent"]`` of the runnable config in context."""
    config = var_child_runnable_config.get()
    if not config:
        return None
    found = (config.get("configurable") or {}).get("peerguard_agent")
    return str(found) if found else None


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script, for testing agents offline.

    Turn ``n`` answers the ``n``-th model call since the last human message, counted from the
    AI messages already in the conversation (not kept in the model), so a graph resumed after
    an interrupt, even in a new process, continues the same script, and a supervisor's new
    instruction starts the script again. Past the script it answers ``final``.
    ``bind_tools`` returns the model itself: the script ignores the tools it is given.
    """

    turns: list[AIMessage]
    final: str = "done"

    @property
    def _llm_type(self) -> str:
        return "peerguard-scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        done = 0
        for m in messages:
            done = 0 if isinstance(m, HumanMessage) else done + isinstance(m, AIMessage)
        message = self.turns[done] if done < len(self.turns) else AIMessage(content=self.final)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Return the model itself."""
        return self


__all__ = ["ScriptedChatModel", "guard_tool"]
