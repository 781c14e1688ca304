"""What the on-call engineer receives over real OTLP/HTTP: structured alert logs, confirmation
events, and a pending-confirmations count that is right when another process answers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from guard.approval import CallbackApprover, TimeoutApprover
from guard.exceptions import CallBlocked
from guard.telemetry import OtelSink
from guard.types import ToolCall
from tests.conftest import AGENT, PEER, World
from tests.test_telemetry import _CollectorServer, _kv

W = "hosts/decom-01/data/agent_2_weights.safetensors"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[_CollectorServer]:
    server = _CollectorServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def log_records(server: _CollectorServer) -> list[Any]:
    logs = ExportLogsServiceRequest()
    for body in server.received.get("/v1/logs", []):
        logs.MergeFromString(body)
    return [r for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def test_denied_call_log_record_carries_structured_attributes(
    world: World, receiver: _CollectorServer
) -> None:
    """A denied copy of a peer's weights: the alert log names decision, rule, agent, tool, call
    id and the asset's path, host, kind, owner and relation as attributes, not only in prose."""
    sink = OtelSink.from_env()
    guard = world.guard(sinks=[sink])
    call = ToolCall(
        agent=AGENT,
        tool="copy_file",
        args={"src": W, "dst": "hosts/backup-02/data/w.safetensors"},
        call_id="call-deny-1",
    )
    try:
        with pytest.raises(CallBlocked):
            guard.run(call, lambda *a, **k: None)
        assert sink.force_flush(10_000)
    finally:
        sink.shutdown()
    alerts = [r for r in log_records(receiver) if r.event_name == "peerguard.alert"]
    assert alerts, "no alert log record reached the receiver"
    attrs = _kv(alerts[0].attributes)
    assert attrs["peerguard.decision"] == "deny"
    assert attrs["peerguard.rule"]
    assert attrs["peerguard.severity"] in ("error", "critical")
    assert attrs["gen_ai.agent.id"] == AGENT
    assert attrs["gen_ai.agent.name"] == AGENT
    assert attrs["gen_ai.tool.name"] == "copy_file"
    assert attrs["gen_ai.tool.call.id"] == "call-deny-1"
    assert attrs["peerguard.asset.paths"] == [str(world.root / W)]
    assert attrs["peerguard.asset.hosts"] == ["decom-01"]  # the declared host it is on
    assert attrs["peerguard.asset.kinds"] == ["weights"]
    assert attrs["peerguard.asset.owners"] == [PEER]
    assert attrs["peerguard.asset.relations"] == ["peer"]
    print("DENIED-CALL-LOG-RECORD", alerts[0].severity_text, alerts[0].body.string_value, attrs)


def _confirming_guard(world: World, sink: OtelSink, approver: Any) -> Any:
    from guard.policy import load_policy

    policy = load_policy()
    return world.guard(policy, sinks=[sink], approver=approver)


def _confirm_call(call_id: str) -> ToolCall:
    # Switching a peer's shutdown off needs a human's confirmation under the default policy.
    return ToolCall(
        agent=AGENT,
        tool="delete_file",
        args={"path": "evals/agent-2/items.jsonl"},
        call_id=call_id,
    )


def _slow(request: Any) -> bool:
    time.sleep(5)
    return True


def test_confirmations_are_log_events(world: World, receiver: _CollectorServer) -> None:
    """Asking, approving, refusing and timing out each emit a peerguard.confirmation record."""
    sink = OtelSink.from_env()
    answers = iter([True, False])
    guards = [
        world.guard(sinks=[sink], approver=CallbackApprover(lambda r: next(answers))),
        world.guard(sinks=[sink], approver=TimeoutApprover(
            CallbackApprover(_slow), 0.2)),
    ]  # fmt: skip
    decision = guards[0].check(_confirm_call("c-probe"))
    assert decision.action.value == "confirm", decision.reason
    try:
        for guard, call_id in ((guards[0], "c-yes"), (guards[0], "c-no"), (guards[1], "c-late")):
            with contextlib.suppress(CallBlocked):
                guard.run(_confirm_call(call_id), lambda *a, **k: None)
        assert sink.force_flush(10_000)
    finally:
        sink.shutdown()
    states = [
        (
            _kv(r.attributes)["gen_ai.tool.call.id"],
            _kv(r.attributes)["peerguard.confirmation.state"],
        )
        for r in log_records(receiver)
        if r.event_name == "peerguard.confirmation"
    ]
    assert sorted(states) == sorted(
        [
            ("c-yes", "requested"),
            ("c-yes", "approved"),
            ("c-no", "requested"),
            ("c-no", "refused"),
            ("c-late", "requested"),
            ("c-late", "timed_out"),
        ]
    )
    record = next(r for r in log_records(receiver) if r.event_name == "peerguard.confirmation")
    attrs = _kv(record.attributes)
    assert attrs["gen_ai.agent.id"] == AGENT and attrs["peerguard.rule"]
    assert attrs["peerguard.asset.owners"] == [PEER]


_PROCESS = textwrap.dedent(
    """
    import sys
    from guard.telemetry import OtelSink
    from guard.types import Action, Decision

    role, db = sys.argv[1], sys.argv[2]
    sink = OtelSink.from_env(pending=db)
    for call_id in ("a", "b"):
        d = Decision(Action.CONFIRM, "agent-1", "delete_file", call_id, args_hash="h",
                     rules=["peer-eval-tamper"])
        if role == "ask":
            sink.on_confirmation_requested(d)
        else:
            sink.on_approval(d, True, "ok")
    assert sink.force_flush(10_000)
    if role == "ask":
        print("asked", flush=True)
        sys.stdin.readline()  # the other process answers meanwhile
        assert sink.force_flush(10_000)
    sink.shutdown()
    """
)


def _pending_values(server: _CollectorServer) -> dict[str, list[float]]:
    """The last pending-confirmations value each exporting service reported."""
    last: dict[str, list[float]] = {}
    for body in server.received.get("/v1/metrics", []):
        exported = ExportMetricsServiceRequest()
        exported.MergeFromString(body)
        for rm in exported.resource_metrics:
            service = _kv(rm.resource.attributes)["service.name"]
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "peerguard.confirmations.pending":
                        points = m.gauge.data_points or m.sum.data_points
                        last[service] = [p.as_int or p.as_double for p in points]
    return last


def test_pending_confirmations_right_across_two_processes(
    receiver: _CollectorServer, tmp_path: Path
) -> None:
    """One process asks two confirmations, another answers them: both then report 0 pending
    (the asking process alone said 2 forever before)."""
    db = tmp_path / "pending.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_SERVICE_NAME": "guard-ask"}
    with subprocess.Popen(
        [sys.executable, "-c", _PROCESS, "ask", str(db)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as asker:  # fmt: skip
        assert asker.stdout is not None and asker.stdin is not None
        try:
            assert asker.stdout.readline().strip() == "asked"
            assert _pending_values(receiver) == {"guard-ask": [2]}
            env["OTEL_SERVICE_NAME"] = "guard-answer"
            done = subprocess.run(
                [sys.executable, "-c", _PROCESS, "answer", str(db)],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            asker.stdin.write("\n")
            asker.stdin.flush()
            assert asker.wait(60) == 0
        finally:
            asker.kill()
    assert _pending_values(receiver) == {"guard-ask": [0], "guard-answer": [0]}
