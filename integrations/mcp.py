"""peerguard for MCP: a proxy that guards every tool call of another MCP server.

::

    peerguard mcp-proxy --agent agent-1 --declare guard.yaml --root /srv/work -- \\
        npx -y @modelcontextprotocol/server-filesystem /srv/work

The proxy is an MCP server (stdio) in front of an upstream one, started as a command (stdio)
or reached at a URL (streamable HTTP). It lists the upstream's tools unchanged, so the model
sees the same tools, and decides on each ``tools/call`` with the same engine as every other
integration before forwarding it:

- allowed: the call goes upstream, and its result comes back unchanged unless it carries
  another model's weights (then it is withheld, see :meth:`~guard.engine.Guard.screen`);
  the upstream's own errors (a tool error, or a JSON-RPC error) pass through as they are;
- denied: the upstream never sees the call; the client gets a tool result with
  ``isError: true`` whose text is the guard's reason, so the model reads why;
- needs confirmation: a client that declared the ``elicitation`` capability is asked, with
  a form whose one field approves this exact call (``elicitation/create`` on handshake-era
  connections, an ``InputRequiredResult`` on 2026-07-28 ones); accepted with the box ticked
  runs the call, anything else refuses it. A client that cannot be asked gets the refusal
  with the reason.

Every decision, approval and refusal goes to the guard's sinks (the audit log, telemetry),
by the same steps as the LangGraph integration. A tool the guard has no spec for is decided
like any such tool (it needs confirmation); specs for the reference filesystem server's
tools ship with peerguard (:data:`guard.effects.MCP_FILESYSTEM_TOOLS`). When the upstream is
gone, each call fails closed: an error result saying the call may not have run.

The guard resolves a relative path in a call against its root: give the folder the upstream
resolves relative paths against (for the filesystem server, its first allowed directory).

Built on the SDK's low-level :class:`mcp.server.lowlevel.Server`, not on ``MCPServer``: a
transparent proxy must hand on the upstream's tool list (schemas, annotations, pagination)
and results exactly as they are, while ``MCPServer`` builds both from Python functions.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, TextIO, cast

from guard._version import __version__
from guard.approval import ApprovalResponse
from guard.content import MIN_PAYLOAD, strings_in
from guard.engine import Guard
from guard.exceptions import CallBlocked, IntegrationUnavailable
from guard.facts import READ_ONLY
from guard.sinks import Sink
from guard.types import Action, Decision, ToolCall

try:
    import anyio
    import anyio.to_thread
    import mcp_types as types
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.stdio import stdio_server
    from mcp.shared.exceptions import MCPError
    from mcp_types.version import is_version_at_least
except ImportError as exc:  # the `mcp` extra is not installed
    raise IntegrationUnavailable(
        f"the MCP integration needs the MCP Python SDK ({exc}): pip install 'peerguard[mcp]'"
    ) from exc

Upstream = StdioServerParameters | str | Server[Any] | MCPServer
"""How to reach the upstream server: a command to start (stdio), a URL (streamable HTTP), or
an SDK server in this process."""

APPROVE_FIELD = "approve"
"""The boolean field of the confirmation form: true approves the call."""

CONFIRM_KEY = "peerguard-confirmation"
"""The key of the confirmation in an ``InputRequiredResult`` (2026-07-28 connections)."""

# When an elicitation first appears as an embedded input request instead of a request of its own.
_INPUT_REQUIRED_VERSION = "2026-07-28"
_MAX_PENDING = 1024


class GuardedTools:
    """The proxy's two tool handlers: ``tools/list`` forwards, ``tools/call`` decides first.

    Args:
        guard: The guard.
        agent: The acting agent's id: every call through this proxy is that agent's.
        upstream: The connected client of the upstream server.
        confirm_timeout: Seconds a human has to answer a confirmation (handshake-era
            connections); ``None`` waits as long as the client does.
    """

    def __init__(
        self,
        guard: Guard,
        agent: str,
        upstream: Client,
        *,
        confirm_timeout: float | None = 600.0,
    ) -> None:
        if not agent:
            raise ValueError("the MCP proxy needs the acting agent's id")
        self.guard = guard
        self.agent = agent
        self.upstream = upstream
        self.confirm_timeout = confirm_timeout
        # Confirmations asked on 2026-07-28 connections, by nonce: the call's args hash, its
        # call id, and when it was asked. An answer counts once, for exactly that call.
        self._asked: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        # Calls that may change something run one at a time; each one run counts.
        self._changing = anyio.Lock()
        self._changes = 0

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        """The upstream's tool list, page by page, as the upstream gives it."""
        # Only the page asked for: the client's own protocol fields are not the upstream's.
        cursor = params.cursor if params is not None else None
        request = types.ListToolsRequest(
            params=types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        )
        try:
            return await self.upstream.session.send_request(request, types.ListToolsResult)
        except MCPError as error:
            if error.code == types.CONNECTION_CLOSED:
                raise MCPError(types.INTERNAL_ERROR, _gone(error)) from error
            raise
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
            raise MCPError(types.INTERNAL_ERROR, _gone(error)) from error

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide on the call; forward it only when it may run."""
        args = dict(params.arguments or {})
        call = ToolCall(self.agent, params.name, args, uuid.uuid4().hex)
        asked = self._answered(params, call)
        if asked is not None:
            call = ToolCall(self.agent, params.name, args, asked[0])
        if not self.guard.sinks.spans:
            return await self._call(ctx, params, call, asked)
        with self.guard.sinks.tool_span(call):
            return await self._call(ctx, params, call, asked)

    async def _call(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        call: ToolCall,
        asked: tuple[str, ApprovalResponse] | None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        seen = self._changes
        started = time.perf_counter()
        if self._quick(call):
            decision = self._check(call)
        else:  # a shell analysis or a content scan may take a while: off the event loop
            decision = await anyio.to_thread.run_sync(self._check, call)
        elapsed = time.perf_counter() - started
        response: ApprovalResponse | None = None
        if decision.enforced and decision.action is Action.CONFIRM:
            if asked is not None:
                response = asked[1]
            else:
                self.guard.sinks.confirmation_requested(decision)
                answer = await self._confirm(ctx, call, decision)
                if isinstance(answer, types.InputRequiredResult):
                    return answer  # asked; the client retries the call with the answer
                response = answer
        decision = self.guard.record(decision, seconds=elapsed, call=call)
        try:
            self.guard.settle(call, decision, response)
        except CallBlocked as blocked:
            return refusal(str(blocked))
        if all(e.kind in READ_ONLY for e in decision.effects):
            self.guard.before(decision)
            try:
                result = await self._forward(params)
            finally:
                self.guard.after(decision)  # nothing changed: nothing to look at again
        else:
            # One changing call at a time; one decided before another changed something
            # (while its user was asked, say) is decided again on what it would meet now.
            async with self._changing:
                if self._changes != seen:
                    again = await anyio.to_thread.run_sync(self._check, call)
                    if again.enforced and _worse(again, decision):
                        again = self.guard.record(again, call=call)
                        return refusal(
                            f"peerguard: {call.tool} was not run: what it would do changed "
                            f"after it was decided on (another call ran meanwhile): {again.reason}"
                        )
                self.guard.before(decision)
                try:
                    result = await self._forward(params)
                finally:
                    try:  # what the call touched is hashed again
                        await anyio.to_thread.run_sync(self.guard.after, decision)
                    finally:
                        self._changes += 1
        try:
            # Everything the result holds is looked at, error text included.
            shown = result.model_dump(by_alias=True, mode="json", exclude_none=True)
            if sum(len(p) for p in strings_in(shown)) < MIN_PAYLOAD:
                self.guard.screen(call, shown, decision)  # too small to hold weights: at once
            else:
                await anyio.to_thread.run_sync(self.guard.screen, call, shown, decision)
        except CallBlocked as withheld:
            return refusal(str(withheld))
        return result

    def _check(self, call: ToolCall) -> Decision:
        """The guard's decision, made a deny when a path the call names does not exist as
        written but the upstream would take it for an existing entry by Unicode equivalence
        (the filesystem server matches a missing name's NFC form against its folder's
        entries): the guard judged a new, empty place, the server would use the existing one.
        """
        decision = self.guard.check(call)
        if decision.action is Action.DENY:
            return decision
        for effect in decision.effects:
            for loc in (effect.target, effect.dest):
                twin = _unicode_twin(loc.path) if loc is not None and loc.path else None
                if twin is not None:
                    said = (
                        f"{loc.raw if loc is not None else twin!r} does not exist as written, but "
                        f"the MCP server would take it for {twin} (the same name by Unicode "
                        "normalisation); write the name as it is on disk"
                    )
                    return decision.replace(
                        action=Action.DENY, rules=[UNICODE_TWIN_RULE, *decision.rules],
                        reason=f"deny by {UNICODE_TWIN_RULE}: {said}",
                    )  # fmt: skip
        return decision

    def _quick(self, call: ToolCall) -> bool:
        """Whether deciding on ``call`` is quick enough for the event loop: a tool that only
        reads or lists, with arguments too small for a content scan (a thread hop costs more
        than such a decision)."""
        spec = self.guard.specs.get(call.tool)
        if spec is None:
            return True  # no spec: one uncertain effect
        if any(t.kind not in ("read", "list") for t in spec.effects):
            return False
        return sum(len(p) for p in strings_in(call.args, 256)) < MIN_PAYLOAD

    async def _forward(self, params: types.CallToolRequestParams) -> types.CallToolResult:
        """The upstream's answer to the call, as it gave it; an error result when it is gone."""
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=params.name, arguments=params.arguments, _meta=_forwarded(params.meta)
            )
        )
        try:
            return await self.upstream.session.send_request(request, types.CallToolResult)
        except MCPError as error:
            if error.code != types.CONNECTION_CLOSED:
                raise  # the upstream's own error (an unknown tool, bad arguments): passed on
            return refusal(f"peerguard: {_gone(error)}; {params.name} may not have run")
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
            return refusal(f"peerguard: {_gone(error)}; {params.name} may not have run")

    # -- confirmation

    async def _confirm(
        self, ctx: ServerRequestContext[Any], call: ToolCall, decision: Decision
    ) -> ApprovalResponse | types.InputRequiredResult:
        """Ask the client's user about ``call``: the answer, or the question to send back."""
        if not _can_elicit(ctx.session.client_capabilities):
            return _refused(
                decision, "the MCP client cannot ask its user (it declared no elicitation "
                "capability), so the call was not run",
            )  # fmt: skip
        message = prompt(call, decision)
        if is_version_at_least(ctx.protocol_version, _INPUT_REQUIRED_VERSION):
            nonce = secrets.token_urlsafe(18)
            self._asked[nonce] = (decision.args_hash, call.call_id, time.monotonic())
            while len(self._asked) > _MAX_PENDING:
                self._asked.popitem(last=False)
            form = types.ElicitRequestFormParams(message=message, requested_schema=FORM)
            return types.InputRequiredResult(
                input_requests={CONFIRM_KEY: types.ElicitRequest(params=form)},
                request_state=nonce,
            )
        try:
            with anyio.fail_after(self.confirm_timeout):
                result = await ctx.session.elicit_form(message, FORM, ctx.request_id)
        except TimeoutError:
            timed_out = f"nobody answered within {self.confirm_timeout:g} s"
            return ApprovalResponse(
                approved=False, args_hash=decision.args_hash, reason=timed_out, approver="timeout"
            )
        except Exception as exc:  # an answer that cannot be had refuses the call
            return _refused(decision, f"the MCP client could not be asked ({exc})")
        return _answer(result, decision.args_hash)

    def _answered(
        self, params: types.CallToolRequestParams, call: ToolCall
    ) -> tuple[str, ApprovalResponse] | None:
        """The call id and answer a retried call brings (2026-07-28 connections): only for a
        question this proxy asked, about exactly this call, and only once."""
        nonce = params.request_state
        if nonce is None or nonce not in self._asked:
            return None
        args_hash, call_id, when = self._asked[nonce]
        answer = (params.input_responses or {}).get(CONFIRM_KEY)
        if args_hash != call.args_hash or not isinstance(answer, types.ElicitResult):
            return None  # another call, or no answer: ask again
        del self._asked[nonce]
        if self.confirm_timeout is not None and time.monotonic() - when > self.confirm_timeout:
            late = f"the answer came after {self.confirm_timeout:g} s"
            return call_id, ApprovalResponse(
                approved=False, args_hash=args_hash, reason=late, approver="timeout"
            )
        return call_id, _answer(answer, args_hash)


FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        APPROVE_FIELD: {
            "type": "boolean",
            "title": "Run this exact call",
            "description": "Tick to let the agent run the call shown; anything else refuses it.",
            "default": False,
        }
    },
    "required": [APPROVE_FIELD],
}
"""The confirmation form: one boolean, ``approve``."""


def prompt(call: ToolCall, decision: Decision) -> str:
    """What the user is asked: the exact call, what it would do, and why it needs them."""
    try:
        shown = json.dumps(call.args, ensure_ascii=False, sort_keys=True, default=repr)
    except ValueError:
        shown = repr(call.args)
    if len(shown) > 2000:
        shown = shown[:2000] + f"... ({len(shown)} characters)"
    effects = "; ".join(e.describe() for e in decision.effects) or "nothing it can tell"
    return (
        f"peerguard: agent {call.agent} wants to call {call.tool} with {shown}\n"
        f"It would: {effects}\n"
        f"It needs your confirmation: {decision.reason}\n"
        "Run this exact call?"
    )


def refusal(text: str) -> types.CallToolResult:
    """A tool result the model reads: ``isError`` with ``text``."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _answer(result: types.ElicitResult, args_hash: str) -> ApprovalResponse:
    approved = result.action == "accept" and (result.content or {}).get(APPROVE_FIELD) is True
    if approved:
        reason = "approved by the MCP client's user"
    elif result.action == "accept":
        reason = f"the MCP client's user did not tick {APPROVE_FIELD!r}"
    else:
        reason = f"the MCP client's user answered {result.action}"
    return ApprovalResponse(
        approved=approved, args_hash=args_hash, reason=reason, approver="mcp-elicitation"
    )


def _refused(decision: Decision, reason: str) -> ApprovalResponse:
    return ApprovalResponse(
        approved=False, args_hash=decision.args_hash, reason=reason, approver="peerguard"
    )


def _can_elicit(capabilities: types.ClientCapabilities | None) -> bool:
    """Whether the client takes form elicitations (a bare ``elicitation: {}`` means forms)."""
    found = capabilities.elicitation if capabilities is not None else None
    return found is not None and (found.form is not None or found.url is None)


class StderrSink(Sink):
    """Prints each decision and approval as one JSON object a line on standard error (the
    proxy's standard output is its MCP channel)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def _print(self, data: dict[str, Any]) -> None:
        print(json.dumps(data, default=str), file=self.stream or sys.stderr, flush=True)

    def on_decision(self, decision: Decision) -> None:
        """Print the decision's summary."""
        self._print({"peerguard": "decision", **decision.summary()})

    def on_approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """Print the answer to a confirmation."""
        self._print(
            {"peerguard": "approval", "call_id": decision.call_id, "tool": decision.tool,
             "approved": approved, "reason": reason}
        )  # fmt: skip


def _forwarded(meta: types.RequestParamsMeta | None) -> types.RequestParamsMeta | None:
    """The ``_meta`` of a call as it goes upstream: the caller's own keys, without the
    protocol's (``io.modelcontextprotocol/*``, which the proxy's upstream session sets for
    its own connection) and without a progress token (the proxy does not relay progress, so
    the upstream is not asked for it)."""
    if not meta:
        return None
    kept = {
        k: v
        for k, v in meta.items()
        if k not in ("progressToken", "progress_token")
        and not k.startswith("io.modelcontextprotocol/")
    }
    return cast("types.RequestParamsMeta", kept) if kept else None


def _worse(again: Decision, first: Decision) -> bool:
    """Whether a call decided ``again`` may not run on the strength of the ``first`` decision:
    a more restrictive action, or a confirmation the user was shown other reasons for."""
    if again.action.rank != first.action.rank:
        return again.action.rank > first.action.rank
    return again.action is Action.CONFIRM and again.reason != first.reason


UNICODE_TWIN_RULE = "unicode-equivalent-path"
"""The rule of a call refused for naming an existing entry by another Unicode spelling."""


def _unicode_twin(path: str) -> str | None:
    """The existing entry a missing absolute ``path`` names by Unicode equivalence, as the
    filesystem server finds it (a missing component is matched by its NFC form against the
    entries of the folder above); ``None`` when the path exists or has no such twin."""
    if os.path.lexists(path):
        return None
    here = "/"
    for part in path.split("/"):
        if not part:
            continue
        step = os.path.join(here, part)
        if os.path.lexists(step):
            here = step
            continue
        try:
            entries = os.listdir(here)
        except OSError:
            return None
        wanted = unicodedata.normalize("NFC", part)
        twins = [e for e in entries if unicodedata.normalize("NFC", e) == wanted]
        return os.path.join(here, twins[0]) if twins else None
    return None


def _gone(error: BaseException) -> str:
    return f"the upstream MCP server is not reachable ({type(error).__name__}: {error})"


def proxy_server(guard: Guard, agent: str, upstream: Client, **options: Any) -> Server[Any]:
    """The proxy as a low-level MCP server over a connected ``upstream`` client.

    Args:
        guard: The guard.
        agent: The acting agent's id.
        upstream: A connected :class:`mcp.Client` of the upstream server.
        options: Passed to :class:`GuardedTools` (``confirm_timeout``).
    """
    tools = GuardedTools(guard, agent, upstream, **options)
    return Server(
        "peerguard-mcp-proxy",
        version=__version__,
        instructions=upstream.instructions,
        on_list_tools=tools.list_tools,
        on_call_tool=tools.call_tool,
    )


@contextlib.asynccontextmanager
async def guarded(
    guard: Guard, agent: str, upstream: Upstream, **options: Any
) -> AsyncIterator[Server[Any]]:
    """Connect to ``upstream`` (start its command, reach its URL, or serve it in process)
    and yield the proxy server in front of it; the upstream is closed (its process ended)
    on exit.

    An upstream command runs in the guard's root, so that the guard and the server read a
    relative path in their command line alike.
    """
    if isinstance(upstream, StdioServerParameters) and upstream.cwd is None:
        upstream = upstream.model_copy(update={"cwd": guard.root})
    # No response cache: the proxy hands on what the upstream says now.
    async with Client(upstream, cache=None) as client:
        yield proxy_server(guard, agent, client, **options)


async def serve_stdio(guard: Guard, agent: str, upstream: Upstream, **options: Any) -> None:
    """Serve the proxy over this process's stdin and stdout until the client goes."""
    async with guarded(guard, agent, upstream, **options) as server, stdio_server() as streams:
        await server.run(streams[0], streams[1], server.create_initialization_options())


def upstream_of(command: list[str], env: dict[str, str] | None = None) -> Upstream:
    """The upstream a command line names: a lone ``http://`` or ``https://`` URL is a
    streamable-HTTP server, anything else a command to start."""
    if len(command) == 1 and command[0].startswith(("http://", "https://")):
        return command[0]
    if not command:
        raise ValueError("no upstream server: give its command (or URL) after --")
    return StdioServerParameters(command=command[0], args=command[1:], env=env)


def run(guard: Guard, agent: str, upstream: Upstream, *, errors: TextIO = sys.stderr) -> int:
    """Run the proxy over stdio until the client closes it; the exit status."""
    try:
        anyio.run(lambda: serve_stdio(guard, agent, upstream))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the upstream could not be started or reached
        print(f"peerguard mcp-proxy: {type(exc).__name__}: {exc}", file=errors)
        return 1
    return 0


__all__ = [
    "APPROVE_FIELD",
    "CONFIRM_KEY",
    "FORM",
    "UNICODE_TWIN_RULE",
    "GuardedTools",
    "StderrSink",
    "Upstream",
    "guarded",
    "prompt",
    "proxy_server",
    "refusal",
    "run",
    "serve_stdio",
    "upstream_of",
]
