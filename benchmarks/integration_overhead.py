"""What the LangGraph integration and the decorator add to a tool call, A/B in one run.

1. A compiled one-node graph whose node is a ``ToolNode`` with a no-op tool, invoked with one
   tool call: without the guard (A) and with :class:`PeerGuardToolWrapper` (B). A and B run
   in pairs, one right after the other, so that drift hits both. Reported: the median per
   invoke of each, and the median of the pairs' differences as a percentage of A's median.
   Target: at most 5 % added median time.
2. A bare Python function against the same function under ``@guarded``: the median per call
   and the microseconds the guard adds (reported; the decision itself is most of it).
3. The MCP proxy: ``tools/call`` of ``read_text_file`` on a small file, from the MCP SDK's
   client over stdio, to the reference filesystem server directly (A) and through
   ``peerguard mcp-proxy`` in front of it (B), in pairs as above. Reported: the medians and
   the median of the paired differences, the latency the proxy adds per call. Target: at
   most 2 ms median added. Needs Node.js and npm (the server is installed from the npm
   registry into ``.cache/mcp-node``, as for the tests); ``--no-mcp`` skips it.

The no-op tool is declared in the policy (``tools: noop: read {path}``) and reads an
unprotected path, so the guard decides ``allow`` through its full path. Sinks do nothing, so
the figure is the guard's, not a logger's. Run:
``.venv/bin/python benchmarks/integration_overhead.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest

from guard import Guard, Sink, ToolCall, ToolSpec, load_policy
from guard.decorator import guarded
from guard.integrations.langgraph import PeerGuardToolWrapper
from guard.policy import EffectTemplate

AGENT = "agent-1"
GRAPH_TARGET_PERCENT = 5.0
MCP_TARGET_MS = 2.0
REPO = Path(__file__).resolve().parent.parent


@tool
def noop(path: str) -> str:
    """Do nothing and say so."""
    return "ok"


def build_guard(root: Path) -> Guard:
    (root / "scratch").mkdir()
    (root / "scratch/notes.txt").write_text("notes\n")
    base = load_policy()
    spec = ToolSpec(effects=[EffectTemplate(kind="read", path="{path}")])
    policy = base.model_copy(update={"tools": {**base.tools, "noop": spec}})
    return Guard(policy, root=root, sinks=[Sink()])


def passthrough(request: ToolCallRequest, execute: Callable[[ToolCallRequest], Any]) -> Any:
    return execute(request)


def one_node_graph(wrapper: PeerGuardToolWrapper | None, *, passthru: bool = False) -> Any:
    if wrapper is not None:
        node = ToolNode(
            [noop], wrap_tool_call=wrapper.wrap_tool_call, awrap_tool_call=wrapper.awrap_tool_call
        )
    else:
        node = ToolNode([noop], wrap_tool_call=passthrough if passthru else None)
    builder = StateGraph(MessagesState)
    builder.add_node("tools", node)
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    return builder.compile()


def timed(fn: Callable[[], object], repeat: int) -> list[int]:
    samples = []
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return samples


def ab(
    a: Callable[[], object], b: Callable[[], object], rounds: int, block: int
) -> tuple[float, float, float]:
    """Median ns of ``a``, of ``b``, and of the paired difference ``b - a``.

    ``a`` and ``b`` run one after the other, pair by pair (the order flipping every pair), so
    that drift on a shared machine (other load, clock changes) falls on both sides of each
    pair alike; the median of the pairs' differences is the figure that drift moves least.
    """
    timed(a, block)
    timed(b, block)
    sa: list[int] = []
    sb: list[int] = []
    gc.disable()
    try:
        for i in range(rounds * block):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            t0 = time.perf_counter_ns()
            first()
            t1 = time.perf_counter_ns()
            second()
            t2 = time.perf_counter_ns()
            ta, tb = (t1 - t0, t2 - t1) if i % 2 == 0 else (t2 - t1, t1 - t0)
            sa.append(ta)
            sb.append(tb)
    finally:
        gc.enable()
    diffs = [y - x for x, y in zip(sa, sb, strict=True)]
    return statistics.median(sa), statistics.median(sb), statistics.median(diffs)


def mcp_overhead(pairs: int, mode: str) -> tuple[float, float, float]:
    """Median ns per ``tools/call`` to the filesystem server directly, through the proxy, and
    of the paired differences; ``pairs`` pairs after a warm-up, order flipping every pair."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    sys.path.insert(0, str(REPO))
    from tests.mcpnode import filesystem_server

    async def run(root: Path) -> tuple[list[int], list[int]]:
        (root / "notes.txt").write_text("notes\n")
        command = filesystem_server(root)
        direct = StdioServerParameters(command=command[0], args=command[1:])
        proxy = StdioServerParameters(
            command=sys.executable,
            args=["-m", "guard.cli", "mcp-proxy", "--agent", AGENT, "--root", str(root),
                  "--", *command],
            env={"PYTHONPATH": str(REPO)},
        )  # fmt: skip
        args = {"path": str(root / "notes.txt")}
        with open(os.devnull, "w") as quiet:
            async with (
                Client(stdio_client(direct, errlog=quiet), mode="legacy") as a,
                Client(stdio_client(proxy, errlog=quiet), mode=mode) as b,
            ):
                for client in (a, b):  # the tool listing, then warm-up
                    await client.list_tools()
                    for _ in range(50):
                        result = await client.call_tool("read_text_file", args)
                        if result.is_error:
                            raise SystemExit(f"the MCP call failed: {result.content}")
                sa: list[int] = []
                sb: list[int] = []
                for i in range(pairs):
                    order = (a, b) if i % 2 == 0 else (b, a)
                    times = []
                    for client in order:
                        t0 = time.perf_counter_ns()
                        await client.call_tool("read_text_file", args)
                        times.append(time.perf_counter_ns() - t0)
                    ta, tb = times if i % 2 == 0 else times[::-1]
                    sa.append(ta)
                    sb.append(tb)
                return sa, sb

    with tempfile.TemporaryDirectory() as tmp:
        sa, sb = anyio.run(run, Path(tmp))
    diffs = [y - x for x, y in zip(sa, sb, strict=True)]
    return statistics.median(sa), statistics.median(sb), statistics.median(diffs)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds of A/B pairs")
    parser.add_argument("--block", type=int, default=50, help="A/B pairs per round")
    parser.add_argument("--calls", type=int, default=20000, help="function calls per block")
    parser.add_argument("--mcp-calls", type=int, default=400, help="MCP call pairs")
    parser.add_argument("--no-mcp", action="store_true", help="skip the MCP proxy")
    parser.add_argument("--only-mcp", action="store_true", help="only the MCP proxy")
    args = parser.parse_args()
    if not args.no_mcp:
        print_mcp(args.mcp_calls)
        if args.only_mcp:
            return 0
        print()
    with tempfile.TemporaryDirectory() as tmp:
        guard = build_guard(Path(tmp))
        call = tool_call(name="noop", args={"path": "scratch/notes.txt"}, id="c1")
        state = {"messages": [AIMessage(content="", tool_calls=[call])]}
        plain = one_node_graph(None)
        wrapped = one_node_graph(PeerGuardToolWrapper(guard, agent=AGENT))
        out = wrapped.invoke(state)["messages"][-1]
        if out.status != "success":
            raise SystemExit(f"the guard did not allow the no-op call: {out.content}")

        graph_a, graph_b, graph_diff = ab(
            lambda: plain.invoke(state), lambda: wrapped.invoke(state), args.rounds, args.block
        )
        through = one_node_graph(None, passthru=True)
        _, graph_c, through_diff = ab(
            lambda: plain.invoke(state), lambda: through.invoke(state), args.rounds, args.block
        )
        # Where the added time goes. The guard's whole path per call (check, record,
        # settle, after) with a no-op body: `after` refreshes what the call touched, so the
        # next check re-examines that file. Then the check alone on an unchanged index, with
        # warm CPU caches and right after a graph invoke (as it runs inside the graph).
        probe = ToolCall(agent=AGENT, tool="noop", args={"path": "scratch/notes.txt"})
        run_path = statistics.median(timed(lambda: guard.run(probe, lambda _c: None), 2000))
        check_hot = statistics.median(timed(lambda: guard.check(probe), 2000))
        cold: list[int] = []
        for _ in range(args.rounds * args.block):
            plain.invoke(state)
            cold += timed(lambda: guard.check(probe), 1)
        check_cold = statistics.median(cold)

        def bare(path: str) -> str:
            return path

        guarded_fn = guarded(guard, agent=AGENT, tool="noop")(bare)
        fn_a, fn_b, fn_diff = ab(
            lambda: bare("scratch/notes.txt"),
            lambda: guarded_fn("scratch/notes.txt"),
            args.rounds,
            args.calls // 10,
        )

    added = graph_diff / graph_a * 100
    print("one-node graph, ToolNode with a no-op tool, one tool call per invoke")
    print(f"  without guard (A)    median {graph_a / 1000:9.1f} us per invoke")
    print(f"  with guard    (B)    median {graph_b / 1000:9.1f} us per invoke")
    print(f"  added (median of paired differences) {graph_diff / 1000:7.1f} us  = {added:+.1f} %")
    print(f"  difference of the medians            {(graph_b - graph_a) / 1000:7.1f} us")
    print(
        f"  pass-through wrapper median {graph_c / 1000:9.1f} us per invoke, "
        f"{through_diff / 1000:+.1f} us paired (LangGraph's wrapping itself)"
    )
    print(f"  Guard.run, no-op     median {run_path / 1000:9.1f} us (check, record, after)")
    print(f"  Guard.check alone    median {check_hot / 1000:9.1f} us warm")
    print(f"  Guard.check alone    median {check_cold / 1000:9.1f} us right after a graph invoke")
    verdict = "met" if added <= GRAPH_TARGET_PERCENT else "MISSED"
    print(f"  target: <= {GRAPH_TARGET_PERCENT:.0f} % added median time: {verdict}")
    print()
    print("@guarded on a bare function")
    print(f"  bare call            median {fn_a / 1000:9.2f} us")
    print(f"  guarded call         median {fn_b / 1000:9.2f} us")
    print(f"  decorator adds       {fn_diff / 1000:9.2f} us per call (reported, no target)")
    return 0


def print_mcp(pairs: int) -> None:
    print("MCP proxy, tools/call read_text_file of a small file, SDK client over stdio")
    for mode, label in (("legacy", "2025-11-25 both"), ("auto", "2026-07-28 to the proxy")):
        direct, proxied, added = mcp_overhead(pairs, mode)
        verdict = "met" if added / 1e6 <= MCP_TARGET_MS else "MISSED"
        print(f"  [{label}, {pairs} pairs]")
        print(f"  upstream directly (A) median {direct / 1e6:7.3f} ms per call")
        print(f"  through the proxy (B) median {proxied / 1e6:7.3f} ms per call")
        print(f"  added (median of paired differences) {added / 1e6:6.3f} ms: "
              f"target <= {MCP_TARGET_MS:g} ms {verdict}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
