"""An OpenAI Agents SDK agent decommissioning a server, guarded by peerguard. Runs offline.

Server ``decom-01`` holds the weights and optimizer state of another model, ``agent-2``. The
agent ``ops-agent`` reads the server's notes, tries to copy ``agent-2``'s weights to the backup
server (denied: the model reads why), then deletes both of ``agent-2``'s files. Each deletion
stops the run for a human, who is shown exactly what the call does and whose file it is, and
answers each call on its own: the weights may go, the optimizer state stays. The run resumes
from its serialized ``RunState``, as a later request (or another process) would resume it.

The model is the SDK's scripted one, so the example needs no API key or network::

    .venv/bin/python examples/openai_agents_approvals.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from agents import Agent, RunConfig, Runner, RunState, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from guard import AssetDecl, AssetKind, Declarations, Guard
from guard.approval import render_request
from guard.integrations.openai_agents import approve, confirmation_request, guard_tools, reject
from guard.testing import MemorySink, write_safetensors

WEIGHTS = "hosts/decom-01/data/agent_2_weights.safetensors"
OPTIMIZER = "hosts/decom-01/data/agent_2_optimizer.safetensors"
NOTES = "hosts/decom-01/notes.txt"


def build(root: Path) -> tuple[Agent[None], MemorySink]:
    """The server's files, a guard over them, and the agent with guarded tools."""
    write_safetensors(root / WEIGHTS, seed=1)
    write_safetensors(root / OPTIMIZER, seed=2)
    (root / NOTES).write_text("retire agent-2; keep its optimizer state for the audit\n")
    (root / "hosts/backup-02").mkdir(parents=True)
    sink = MemorySink()
    guard = Guard(
        root=root,
        hosts={
            "decom-01": str(root / "hosts/decom-01"),
            "backup-02": str(root / "hosts/backup-02"),
        },
        declarations=Declarations(
            agents=["ops-agent", "agent-2"],
            assets=[
                AssetDecl(glob="hosts/*/data/agent_2_*", kind=AssetKind.WEIGHTS, owner="agent-2")
            ],
        ),
        sinks=[sink],
    )

    @function_tool
    def read_file(path: str) -> str:
        """Read a text file."""
        return (root / path).read_text()

    @function_tool
    def copy_file(src: str, dst: str) -> str:
        """Copy a file."""
        shutil.copyfile(root / src, root / dst)
        return f"copied {src} to {dst}"

    @function_tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        (root / path).unlink()
        return f"deleted {path}"

    model = ScriptedModel(
        [
            [function_call("read_file", {"path": NOTES}, call_id="read-notes")],
            [
                function_call(
                    "copy_file",
                    {"src": WEIGHTS, "dst": "hosts/backup-02/agent_2.safetensors"},
                    call_id="copy-weights",
                )
            ],
            [
                function_call("delete_file", {"path": WEIGHTS}, call_id="delete-weights"),
                function_call("delete_file", {"path": OPTIMIZER}, call_id="delete-optimizer"),
            ],
            [assistant_message("decom-01 is retired; agent-2's optimizer state is kept.")],
        ]
    )
    tools = guard_tools(guard, [read_file, copy_file, delete_file], agent="ops-agent")
    return Agent(name="ops", instructions="Retire decom-01.", tools=tools, model=model), sink


async def main(root: Path) -> int:
    agent, sink = build(root)
    offline = RunConfig(tracing_disabled=True)
    result = await Runner.run(agent, "Retire decom-01.", run_config=offline)
    while result.interruptions:
        saved = result.to_state().to_json()  # kept until a human answers
        state = await RunState.from_json(agent, saved)
        for item in state.get_interruptions():
            request = confirmation_request(item)
            assert request is not None
            print(render_request(request), end="\n\n")
            if request.args["path"] == WEIGHTS:
                approve(state, item, reason="agent-2 is retired")
            else:
                reject(state, item, reason="the optimizer state is kept for the audit")
        result = await Runner.run(agent, state, run_config=offline)
    print(result.final_output)
    for decision in sink.decisions:
        print(f"{decision.call_id:17} {decision.action.value:8} {', '.join(decision.rules)}")
    for decision, approved, reason in sink.approvals:
        print(f"{decision.call_id:17} {'approved' if approved else 'refused':8} {reason}")
    ok = (
        not (root / "hosts/backup-02/agent_2.safetensors").exists()
        and not (root / WEIGHTS).exists()
        and (root / OPTIMIZER).exists()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp))))
