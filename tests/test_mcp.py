"""The MCP proxy (``peerguard mcp-proxy``) against the real reference filesystem server.

The upstream is ``@modelcontextprotocol/server-filesystem`` on Node.js, installed from the
npm registry (:mod:`tests.mcpnode`); the client is the official MCP Python SDK's, talking
over stdio to the proxy started as ``python -m guard.cli mcp-proxy`` (what the ``peerguard``
script runs), or in-process where a test needs the guard's sinks. ``mode="legacy"`` makes
the client use the initialize handshake (elicitation as its own request); ``mode="auto"``
settles on the 2026-07-28 protocol (elicitation inside an ``InputRequiredResult``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client
from mcp.client.session import ClientRequestContext, ElicitationFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from guard.effects import BUILTIN_SPECS, MCP_FILESYSTEM_TOOLS, template_args
from guard.policy import ToolSpec
from guard.testing import MemorySink
from tests.conftest import AGENT, World, random_safetensors
from tests.mcpnode import REPO

W = "hosts/decom-01/data/agent_2_weights.safetensors"
BIG = "hosts/decom-01/data/agent_2_big.safetensors"
CONFIG = "config/shutdown_config.yaml"


@pytest.fixture
def fs_world(world: World) -> World:
    """The shared world with a 512 KiB peer weights file whose tensor bytes are random."""
    world.write(BIG, random_safetensors(512 * 1024))
    return world


@pytest.fixture
def declare(world: World, tmp_path: Path) -> Path:
    """The world's agents and assets as a ``--declare`` file."""
    path = tmp_path / "declare.yaml"
    path.write_text(yaml.safe_dump(world.declarations.model_dump(mode="json")))
    return path


def answering(action: str, approve: bool | None = True) -> tuple[ElicitationFnT, list[str]]:
    """An elicitation callback answering ``action`` (ticking ``approve``), and the list of
    the messages it was shown."""
    shown: list[str] = []

    async def callback(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        assert isinstance(params, types.ElicitRequestFormParams)
        shown.append(params.message)
        content = {"approve": approve} if action == "accept" and approve is not None else None
        return types.ElicitResult.model_validate({"action": action, "content": content})

    return callback, shown


def edit_config(
    proxy: Proxy, world: World, mode: str, elicit: ElicitationFnT | None = None
) -> types.CallToolResult:
    """``edit_file`` on the peer's config (its company name) through the proxy."""
    edit = {"path": str(world.root / CONFIG),
            "edits": [{"oldText": "OpenBrain", "newText": "ClosedBrain"}]}  # fmt: skip

    async def main() -> types.CallToolResult:
        async with proxy.client(mode, elicit) as client:
            return await client.call_tool("edit_file", edit)

    return anyio.run(main)


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


class Proxy:
    """``peerguard mcp-proxy`` started by the SDK's stdio client; its stderr kept in a file."""

    def __init__(self, world: World, declare: Path, command: list[str], log: Path) -> None:
        hosts = [f for name, d in world.hosts.items() for f in ("--host", f"{name}={d}")]
        self.params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "guard.cli", "mcp-proxy", "--agent", AGENT, "--root", str(world.root),
                  "--declare", str(declare), *hosts, "--", *command],
            env={"PYTHONPATH": str(REPO)},
        )  # fmt: skip
        self.log = log

    @asynccontextmanager
    async def client(
        self, mode: str = "auto", elicit: ElicitationFnT | None = None
    ) -> AsyncIterator[Client]:
        with open(self.log, "a") as errlog:
            transport = stdio_client(self.params, errlog=errlog)
            async with Client(transport, mode=mode, elicitation_callback=elicit) as client:
                yield client

    def decisions(self) -> list[dict[str, Any]]:
        """The decisions the proxy printed on stderr."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        found = [json.loads(line) for line in lines if line.startswith('{"peerguard"')]
        return [d for d in found if d["peerguard"] == "decision"]


@pytest.fixture
def proxy(
    fs_world: World, declare: Path, server_command: Callable[..., list[str]], tmp_path: Path
) -> Proxy:
    """The proxy in front of the filesystem server on the world's root."""
    return Proxy(fs_world, declare, server_command(fs_world.root), tmp_path / "proxy.err")


def upstream(world: World, command: list[str]) -> AbstractAsyncContextManager[Client]:
    """A client of the filesystem server itself, no proxy between."""
    return Client(StdioServerParameters(command=command[0], args=command[1:]), mode="legacy")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_list_tools_equals_the_upstreams(
    proxy: Proxy, fs_world: World, server_command: Callable[..., list[str]], mode: str
) -> None:
    """The proxy lists exactly the tools the upstream lists, schemas and annotations included
    (on a 2026-07-28 connection less ``execution``, which that revision does not have)."""

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with proxy.client(mode) as client:
            through = (await client.list_tools()).tools
        async with upstream(fs_world, server_command(fs_world.root)) as direct:
            plain = (await direct.list_tools()).tools
        dropped = {"execution"} if mode == "auto" else set()
        return [t.model_dump(exclude=dropped) for t in through], [
            t.model_dump(exclude=dropped) for t in plain
        ]

    through, plain = anyio.run(main)
    assert through == plain
    assert {t["name"] for t in through} >= {"read_text_file", "write_file", "move_file"}


def test_a_plain_read_is_allowed_and_returns_the_content(proxy: Proxy, fs_world: World) -> None:
    """Reading an ordinary file runs upstream and returns its text, recorded as allowed."""

    async def main() -> types.CallToolResult:
        async with proxy.client() as client:
            path = str(fs_world.root / "scratch/notes.txt")
            return await client.call_tool("read_text_file", {"path": path})

    result = anyio.run(main)
    assert not result.is_error and text(result) == "mine\n"
    assert [d["decision"] for d in proxy.decisions()] == ["allow"]


def test_moving_a_peers_weights_is_denied(proxy: Proxy, fs_world: World) -> None:
    """``move_file`` of a peer's weights never reaches the server: the model reads why."""
    dest = fs_world.root / "scratch/rescued.safetensors"

    async def main() -> types.CallToolResult:
        async with proxy.client() as client:
            args = {"source": str(fs_world.root / W), "destination": str(dest)}
            return await client.call_tool("move_file", args)

    result = anyio.run(main)
    assert result.is_error and "peer-weights-exfiltration" in text(result)
    assert (fs_world.root / W).exists() and not dest.exists()
    assert [d["decision"] for d in proxy.decisions()] == ["deny"]


def test_copying_a_peers_weights_through_their_content_is_denied(
    proxy: Proxy, fs_world: World
) -> None:
    """The weights read through the proxy are withheld, and writing them out is denied."""
    dest = fs_world.root / "scratch/copy.b64"
    carried = base64.b64encode((fs_world.root / BIG).read_bytes()).decode()

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        async with proxy.client() as client:
            read = await client.call_tool("read_media_file", {"path": str(fs_world.root / BIG)})
            args = {"path": str(dest), "content": carried}
            return read, await client.call_tool("write_file", args)

    read, write = anyio.run(main)
    assert read.is_error and "withheld" in text(read) and carried[:1000] not in text(read)
    assert write.is_error and "peer-weights-exfiltration" in text(write)
    assert not dest.exists()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_an_upstream_error_passes_through(
    proxy: Proxy, fs_world: World, server_command: Callable[..., list[str]], mode: str
) -> None:
    """A call the guard allows but the server refuses comes back as the server gave it (on a
    2026-07-28 connection the SDK stamps its server info into ``_meta``)."""
    outside = {"path": "/etc/hostname"}
    missing = {"path": str(fs_world.root / "scratch/none.txt")}
    stamped = {"meta"} if mode == "auto" else set()

    async def main() -> list[dict[str, Any]]:
        async with proxy.client(mode) as client:
            through = [await client.call_tool("read_text_file", a) for a in (outside, missing)]
        async with upstream(fs_world, server_command(fs_world.root)) as direct:
            plain = [await direct.call_tool("read_text_file", a) for a in (outside, missing)]
        return [r.model_dump(exclude=stamped) for r in (*through, *plain)]

    through_outside, through_missing, plain_outside, plain_missing = anyio.run(main)
    assert through_outside["is_error"] and "Access denied" in str(through_outside["content"])
    assert through_outside == plain_outside
    assert through_missing["is_error"] and through_missing == plain_missing


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_confirmation_the_user_accepts_runs_the_call(
    proxy: Proxy, fs_world: World, mode: str
) -> None:
    """Editing a peer's config asks the client's user; approved, the edit is made."""
    callback, shown = answering("accept")
    result = edit_config(proxy, fs_world, mode, callback)
    assert not result.is_error, text(result)
    assert "company_name: ClosedBrain" in (fs_world.root / CONFIG).read_text()
    assert len(shown) == 1 and "peer-asset-change" in shown[0] and "edit_file" in shown[0]
    assert [d["decision"] for d in proxy.decisions()] == ["confirm"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize(("action", "approve"), [("decline", None), ("cancel", None),
                                                 ("accept", False)])  # fmt: skip
def test_a_confirmation_the_user_refuses_does_not_run(
    proxy: Proxy, fs_world: World, mode: str, action: str, approve: bool | None
) -> None:
    """Declined, cancelled, or accepted without ticking approve: the edit is not made."""
    callback, shown = answering(action, approve)
    before = (fs_world.root / CONFIG).read_text()
    result = edit_config(proxy, fs_world, mode, callback)
    assert result.is_error and "confirmation refused" in text(result)
    assert len(shown) == 1 and (fs_world.root / CONFIG).read_text() == before


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_client_without_elicitation_gets_the_refusal_with_the_reason(
    proxy: Proxy, fs_world: World, mode: str
) -> None:
    """A call that needs confirmation, from a client that cannot ask, is refused saying why."""
    before = (fs_world.root / CONFIG).read_text()
    result = edit_config(proxy, fs_world, mode)
    said = text(result)
    assert result.is_error and "peer-asset-change" in said and "elicitation" in said
    assert (fs_world.root / CONFIG).read_text() == before


def test_edit_file_turning_oversight_off_is_denied(proxy: Proxy, fs_world: World) -> None:
    """``edit_file`` is judged on the file it would leave: switching shutdown off is denied,
    even for a client whose user would approve anything."""
    callback, shown = answering("accept")
    edit = {"path": str(fs_world.root / CONFIG),
            "edits": [{"oldText": "shutdown_enabled: true", "newText": "shutdown_enabled: no"}]}  # fmt: skip

    async def main() -> types.CallToolResult:
        async with proxy.client("auto", callback) as client:
            return await client.call_tool("edit_file", edit)

    result = anyio.run(main)
    assert result.is_error and "oversight-disabled" in text(result) and not shown
    assert "shutdown_enabled: true" in (fs_world.root / CONFIG).read_text()


def test_unknown_tools_and_every_decision_go_through_the_guard(
    fs_world: World, server_command: Callable[..., list[str]]
) -> None:
    """In-process: a tool without a spec needs confirmation (asked, then passed to the
    server, whose own error comes back); each decision and answer reaches the sinks."""
    from guard.integrations.mcp import guarded

    sink = MemorySink()
    guard = fs_world.guard(sinks=[sink])
    command = server_command(fs_world.root)
    params = StdioServerParameters(command=command[0], args=command[1:])
    callback, shown = answering("accept")

    async def main() -> list[types.CallToolResult]:
        async with guarded(guard, AGENT, params) as server:
            async with Client(server, mode="legacy", elicitation_callback=callback) as client:
                unknown = await client.call_tool("frobnicate", {"x": 1})
                read = await client.call_tool("list_allowed_directories", {})
            async with Client(server, mode="legacy") as client:
                return [unknown, read, await client.call_tool("frobnicate", {"x": 1})]

    unknown, read, refused = anyio.run(main)
    assert shown and "uncertain-effect" in shown[0]
    assert unknown.is_error and "frobnicate" in text(unknown) and "peerguard" not in text(unknown)
    assert not read.is_error and str(fs_world.root) in text(read)
    assert refused.is_error and "uncertain-effect" in text(refused)
    assert [(d.tool, d.action.value) for d in sink.decisions] == [
        ("frobnicate", "confirm"), ("list_allowed_directories", "allow"),
        ("frobnicate", "confirm"),
    ]  # fmt: skip
    assert [approved for _d, approved, _r in sink.approvals] == [True, False]


def test_the_upstream_dying_fails_closed(
    fs_world: World, server_command: Callable[..., list[str]], tmp_path: Path
) -> None:
    """When the server's process is gone, calls come back as errors and nothing runs."""
    from guard.integrations.mcp import guarded

    pid_file = tmp_path / "pid"
    script = f'echo $$ > {pid_file}; exec "$@"'
    params = StdioServerParameters(
        command="sh", args=["-c", script, "sh", *server_command(fs_world.root)]
    )
    dest = fs_world.root / "scratch/after.txt"

    async def main() -> tuple[types.CallToolResult, types.CallToolResult, str]:
        async with (
            guarded(fs_world.guard(), AGENT, params) as server,
            Client(server, mode="legacy") as client,
        ):
            before = await client.call_tool("list_allowed_directories", {})
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
            await anyio.sleep(0.5)
            after = await client.call_tool("write_file", {"path": str(dest), "content": "x"})
            try:
                await client.list_tools()
                listed = "listed"
            except MCPError as exc:
                listed = str(exc)
            return before, after, listed

    before, after, listed = anyio.run(main)
    assert not before.is_error
    assert after.is_error and "not reachable" in text(after) and not dest.exists()
    assert "not reachable" in listed


def test_every_tool_of_the_installed_server_has_a_spec_for_all_its_arguments(
    fs_world: World, server_command: Callable[..., list[str]]
) -> None:
    """The tools the installed server lists are the ones peerguard ships specs for, and each
    spec reads or declares inert every argument of the tool's input schema."""

    async def main() -> list[types.Tool]:
        async with upstream(fs_world, server_command(fs_world.root)) as direct:
            return (await direct.list_tools()).tools

    tools = anyio.run(main)
    assert sorted(t.name for t in tools) == sorted(MCP_FILESYSTEM_TOOLS)
    for tool in tools:
        arguments = set(tool.input_schema.get("properties", {}))
        assert arguments <= template_args(BUILTIN_SPECS[tool.name]), tool.name


def test_read_multiple_files_is_judged_for_every_path(decide: Callable[..., Any]) -> None:
    """A list of paths stands for each: a peer's weights among them are seen."""
    decision = decide("read_multiple_files", paths=["scratch/notes.txt", W])
    read = [(e.kind.value, e.target.path) for e in decision.effects if e.target is not None]
    assert [(k, Path(p or "").name) for k, p in read] == [
        ("read", "notes.txt"), ("read", Path(W).name)
    ]  # fmt: skip
    assert decision.assets and decision.assets[0].owner == "agent-2"


def test_the_cli_needs_an_upstream_command() -> None:
    """``mcp-proxy`` without a command after ``--`` is a usage error."""
    done = subprocess.run(
        [sys.executable, "-m", "guard.cli", "mcp-proxy", "--agent", AGENT, "--"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "after --" in done.stderr


def test_importing_without_the_sdk_names_the_extra() -> None:
    """Without the ``mcp`` package, importing the integration raises a GuardError that says
    ``pip install 'peerguard[mcp]'``."""
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None\n"
        "from guard.exceptions import GuardError\n"
        "try:\n"
        "    import guard.integrations.mcp\n"
        "except GuardError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("IntegrationUnavailable")
    assert "pip install 'peerguard[mcp]'" in done.stdout


def test_an_answer_counts_once_and_only_for_the_call_it_was_asked_about(
    fs_world: World, server_command: Callable[..., list[str]]
) -> None:
    """On a 2026-07-28 connection an approval rides the retried call: it approves only the
    call it was asked about, only once, and only when this proxy asked it."""
    from guard.integrations.mcp import CONFIRM_KEY, guarded

    command = server_command(fs_world.root)
    params = StdioServerParameters(command=command[0], args=command[1:])
    callback, _shown = answering("accept")
    path = str(fs_world.root / CONFIG)
    edit = {"path": path, "edits": [{"oldText": "OpenBrain", "newText": "ClosedBrain"}]}
    other = {"path": path, "edits": [{"oldText": "OpenBrain", "newText": "AnyBrain"}]}
    yes: types.InputResponses = {
        CONFIRM_KEY: types.ElicitResult(action="accept", content={"approve": True})
    }

    async def main() -> list[object]:
        async with (
            guarded(fs_world.guard(), AGENT, params) as server,
            Client(server, mode="auto", elicitation_callback=callback) as client,
        ):
            session = client.session
            asked = await session.call_tool("edit_file", edit, allow_input_required=True)
            assert isinstance(asked, types.InputRequiredResult)
            state = asked.request_state
            seen: list[object] = []
            for args, sent in ((other, state), (edit, "made-up"), (edit, state), (edit, state)):
                retried = await session.call_tool(
                    "edit_file", args, input_responses=yes, request_state=sent,
                    allow_input_required=True,
                )  # fmt: skip
                seen.append(retried)
                seen.append((fs_world.root / CONFIG).read_text())
            return seen

    changed_args, text_1, forged, text_2, answered, text_3, replayed, _ = anyio.run(main)
    assert isinstance(changed_args, types.InputRequiredResult) and "OpenBrain" in str(text_1)
    assert isinstance(forged, types.InputRequiredResult) and "OpenBrain" in str(text_2)
    assert isinstance(answered, types.CallToolResult) and not answered.is_error
    assert "ClosedBrain" in str(text_3)
    assert isinstance(replayed, types.InputRequiredResult)


def test_a_streamable_http_upstream_is_guarded_too(world: World, tmp_path: Path) -> None:
    """The proxy reaches an upstream at a URL (streamable HTTP, on loopback) and guards it
    the same way: a peer's weights are not moved, an ordinary file is read."""
    import socket
    import threading

    import uvicorn
    from mcp.server.mcpserver import MCPServer

    from guard.integrations.mcp import guarded, upstream_of

    files = MCPServer("files")

    @files.tool()
    def move_file(source: str, destination: str) -> str:
        """Move a file."""
        Path(source).rename(destination)
        return "moved"

    @files.tool()
    def read_text_file(path: str) -> str:
        """Read a file."""
        return Path(path).read_text()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = uvicorn.Server(
        uvicorn.Config(files.streamable_http_app(), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    dest = world.root / "scratch/moved.safetensors"

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        while not web.started:
            await anyio.sleep(0.05)
        url = upstream_of([f"http://127.0.0.1:{port}/mcp"])
        async with guarded(world.guard(), AGENT, url) as server, Client(server) as client:
            moved = await client.call_tool(
                "move_file", {"source": str(world.root / W), "destination": str(dest)}
            )
            read = await client.call_tool(
                "read_text_file", {"path": str(world.root / "scratch/notes.txt")}
            )
            return moved, read

    try:
        moved, read = anyio.run(main)
    finally:
        web.should_exit = True
        thread.join(timeout=10)
    assert moved.is_error and "peer-weights-exfiltration" in text(moved) and not dest.exists()
    assert not read.is_error and text(read) == "mine\n"


def test_a_calls_own_meta_goes_upstream_but_not_the_clients_protocol_fields(
    world: World,
) -> None:
    """The caller's ``_meta`` keys reach the upstream; its progress token and protocol fields
    (client info, capabilities) stay with the proxy, whose own session sets them upstream."""
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server

    from guard.integrations.mcp import guarded

    seen: list[dict[str, Any]] = []

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        seen.append(dict(params.meta or {}))
        return types.CallToolResult(content=[types.TextContent(text="ok")])

    files = Server("files", on_list_tools=list_tools, on_call_tool=call_tool)
    spec = {"effects": [{"kind": "list"}]}
    policy = world.guard().policy.model_copy(
        update={"tools": {"ping_files": ToolSpec.model_validate(spec)}}
    )
    meta = cast(types.RequestParamsMeta, {"progressToken": 7, "trace": "abc"})
    me = types.Implementation(name="downstream-client", version="1")

    async def main() -> types.CallToolResult:
        async with (
            guarded(world.guard(policy), AGENT, files) as server,
            Client(server, client_info=me) as client,
        ):
            return await client.call_tool("ping_files", {}, meta=meta)

    result = anyio.run(main)
    assert not result.is_error and len(seen) == 1
    assert seen[0]["trace"] == "abc"
    assert "progressToken" not in seen[0] and "progress_token" not in seen[0]
    info = seen[0].get(types.CLIENT_INFO_META_KEY, {})
    assert info.get("name") != "downstream-client"
