"""Alerts that cannot vanish: failed OTLP exports raise alerts, are counted, and never hang."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from guard.exceptions import ConfigError
from guard.sinks import Fanout
from guard.telemetry import OtelSink
from guard.testing import MemorySink
from guard.types import Action, Alert, Severity, ToolCall
from tests.conftest import AGENT, World
from tests.test_telemetry import W, _CollectorServer, _kv, make_alert

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the OTEL_* variables of the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


class Receiver:
    """A loopback OTLP/HTTP receiver that starts down and can come up on its port."""

    def __init__(self) -> None:
        probe = _CollectorServer()
        self.port = probe.server_address[1]
        probe.server_close()  # nothing listens there now: connections are refused
        self.server: _CollectorServer | None = None

    def up(self) -> None:
        self.server = _CollectorServer(self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self, path: str) -> list[bytes]:
        if self.server is None:
            return []
        with self.server.lock:
            return list(self.server.received.get(path, []))


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A receiver that is down, with from_env pointed at it; exports happen on flush only."""
    r = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{r.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # a failed export gives up in ~1 s
    for delay in ("OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"):
        monkeypatch.setenv(delay, "600000")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")
    yield r
    r.close()


def deny(world: World, sinks: Sequence[Any], call_id: str) -> None:
    """A Guard over ``sinks`` denies copying a peer's weights (one FATAL alert)."""
    guard = world.guard(sinks=list(sinks))
    decision = guard.decide(
        ToolCall(
            agent=AGENT,
            tool="copy_file",
            args={"src": W, "dst": "scratch/w"},
            call_id=call_id,
        )
    )
    assert decision.action is Action.DENY


def failures(memory: MemorySink, signal: str, severity: Severity = Severity.ERROR) -> list[Alert]:
    return [
        a
        for a in memory.alerts_for("sink-failure")
        if a.severity is severity and f" {signal} " in a.message
    ]


def dropped_points(receiver: Receiver) -> dict[str, float]:
    """The latest peerguard.telemetry.dropped value per peerguard.signal the receiver got."""
    latest: dict[str, float] = {}
    for body in receiver.bodies("/v1/metrics"):
        request = ExportMetricsServiceRequest()
        request.MergeFromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "peerguard.telemetry.dropped":
                        continue
                    for point in metric.sum.data_points:
                        signal = _kv(point.attributes)["peerguard.signal"]
                        latest[signal] = max(latest.get(signal, 0), point.as_int)
    return latest


class Flaky(LogRecordExporter):
    """A log exporter that fails (or raises) while told to, and keeps what it exported."""

    def __init__(self) -> None:
        self.failing: BaseException | bool = True
        self.exported: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if isinstance(self.failing, BaseException):
            raise self.failing
        if self.failing:
            return LogRecordExportResult.FAILURE
        self.exported.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def alert(call_id: str) -> Alert:
    return make_alert(Severity.CRITICAL, call_id=call_id)


# ---------------------------------------------------------------- alerts on failure


def test_unexported_deny_alert_is_a_sink_failure_on_the_other_sinks(
    receiver: Receiver, world: World
) -> None:
    """A deny whose alert the dead endpoint never got raises one sink-failure on the other sinks."""
    sink = OtelSink.from_env()
    memory = MemorySink()
    try:
        deny(world, [sink, memory], "first")
        sink.force_flush(10_000)
        (failure,) = failures(memory, "logs")
        assert failure.enforcement_gap
        assert "1 alert log record dropped" in failure.message
        deny(world, [sink, memory], "second")  # the outage goes on: counted, not reported
        sink.force_flush(10_000)
        assert len(failures(memory, "logs")) == 1
        assert len(failures(memory, "spans")) == 1
    finally:
        sink.shutdown()


def test_dropped_alerts_are_counted_once_the_endpoint_is_back(
    receiver: Receiver, world: World
) -> None:
    """After the receiver comes back, the dropped-records metric arrives with the right counts."""
    sink = OtelSink.from_env()
    memory = MemorySink()
    try:
        deny(world, [sink, memory], "lost-1")
        deny(world, [sink, memory], "lost-2")
        sink.force_flush(10_000)
        receiver.up()
        deny(world, [sink, memory], "kept")  # a log to export, so the logs signal recovers
        assert sink.force_flush(10_000)
        assert sink.force_flush(10_000)  # the metric export after the recovery
    finally:
        sink.shutdown()
    counts = dropped_points(receiver)
    assert counts["logs"] == 2
    assert counts["spans"] == 2
    (recovered,) = failures(memory, "logs", Severity.INFO)
    assert "2 alert log records dropped" in recovered.message
    logs = ExportLogsServiceRequest()
    for body in receiver.bodies("/v1/logs"):
        logs.MergeFromString(body)
    rules = [
        _kv(r.attributes)["peerguard.rule"]
        for rl in logs.resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    assert rules == ["peer-weights-exfiltration"]  # the kept deny; no sink-failure went to OTLP


def test_one_alert_per_outage_and_one_when_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three failed exports give one ERROR alert; the first success gives one INFO with the count."""
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "600000")
    flaky = Flaky()
    sink = OtelSink.from_exporters(log_exporter=flaky)
    memory = MemorySink()
    fanout = Fanout([sink, memory])
    try:
        for n in range(3):
            fanout.alert(alert(f"c{n}"))
            sink.force_flush()
        flaky.failing = False
        fanout.alert(alert("c3"))
        assert sink.force_flush()
    finally:
        sink.shutdown()
    outage = memory.alerts_for("sink-failure")
    assert [a.severity for a in outage] == [Severity.ERROR, Severity.INFO]
    assert "3 alert log records dropped in 3 failed exports" in outage[1].message
    assert not outage[1].enforcement_gap
    assert [r.log_record.attributes["gen_ai.tool.call.id"] for r in flaky.exported] == ["c3"]  # type: ignore[index]


def test_an_exporter_that_raises_is_a_failed_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception out of export() raises the sink-failure alert, naming the exception."""
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "600000")
    flaky = Flaky()
    flaky.failing = ConnectionError("collector gone")
    sink = OtelSink.from_exporters(log_exporter=flaky)
    memory = MemorySink()
    try:
        Fanout([sink, memory]).alert(alert("c"))
        sink.force_flush()
    finally:
        sink.shutdown()
    (failure, _shutdown) = memory.alerts_for("sink-failure")
    assert "ConnectionError('collector gone')" in failure.message
    assert failure.enforcement_gap


def test_a_sink_in_no_guard_reports_to_the_peerguard_logger(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With no other sinks to tell, a failed export is logged on the peerguard logger."""
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "600000")
    sink = OtelSink.from_exporters(log_exporter=Flaky())
    try:
        with caplog.at_level(logging.ERROR, logger="peerguard"):
            sink.on_alert(alert("c"))
            sink.force_flush()
    finally:
        sink.shutdown()
    assert any("could not export logs" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- bounded waits


@pytest.fixture(params=["refused", "silent"])
def dead_endpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A loopback port that refuses connections, or one that accepts and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if request.param == "refused":
        listener.close()
    else:
        listener.listen(64)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    yield request.param
    listener.close()


def test_shutdown_with_a_dead_endpoint_returns_within_its_bound(
    dead_endpoint: str, world: World
) -> None:
    """shutdown() with a dead endpoint returns within shutdown_timeout, retries or not."""
    sink = OtelSink.from_env(shutdown_timeout=1.0)
    deny(world, [sink, MemorySink()], "c")
    started = time.monotonic()
    sink.shutdown()
    assert time.monotonic() - started < 5  # about 1 s; the SDK alone takes 14 s to 20 s


def test_shutdown_that_gives_up_says_which_alerts_were_never_sent(
    dead_endpoint: str, world: World
) -> None:
    """A shutdown that gives up raises a sink-failure counting the alert logs never sent."""
    sink = OtelSink.from_env(shutdown_timeout=0.5)
    memory = MemorySink()
    deny(world, [sink, memory], "c")
    sink.shutdown()
    (gave_up,) = [a for a in memory.alerts_for("sink-failure") if "shut down" in a.message]
    assert gave_up.enforcement_gap
    assert "1 alert log record never sent" in gave_up.message


def test_force_flush_with_a_dead_endpoint_returns_within_its_bound(
    dead_endpoint: str, world: World
) -> None:
    """force_flush(1000) with a dead endpoint returns False within about a second."""
    sink = OtelSink.from_env(shutdown_timeout=1.0)
    try:
        deny(world, [sink, MemorySink()], "c")
        started = time.monotonic()
        assert sink.force_flush(1000) is False
        assert time.monotonic() - started < 5  # the SDK ignores the timeout: 7 s to 10 s
    finally:
        sink.shutdown()


def test_shutdown_timeout_must_be_positive() -> None:
    """A zero or negative shutdown_timeout is a ConfigError."""
    with pytest.raises(ConfigError, match="shutdown_timeout"):
        OtelSink(shutdown_timeout=0)
