"""The OpenTelemetry sink: spans, metrics and alert logs, in memory and over real OTLP/HTTP."""

from __future__ import annotations

import http.server
import importlib.util
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry._logs import NoOpLoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from guard.engine import Guard
from guard.exceptions import ApprovalTimeout, CallBlocked, ConfigError
from guard.telemetry import OtelSink
from guard.types import (
    Action,
    Alert,
    AssetKind,
    AssetRef,
    Decision,
    Effect,
    EffectKind,
    Location,
    Mode,
    Relation,
    Severity,
    ToolCall,
)
from tests.conftest import AGENT, PEER, World

W = "hosts/decom-01/data/agent_2_weights.safetensors"


# ---------------------------------------------------------------- helpers


@dataclass
class Otel:
    """An :class:`OtelSink` over SDK providers that keep everything in memory."""

    sink: OtelSink
    span_exporter: InMemorySpanExporter
    log_exporter: InMemoryLogRecordExporter
    reader: InMemoryMetricReader
    providers: list[Any] = field(default_factory=list)

    def spans(self) -> list[ReadableSpan]:
        return list(self.span_exporter.get_finished_spans())

    def span(self) -> ReadableSpan:
        (only,) = self.spans()
        return only

    def logs(self, event: str = "peerguard.alert") -> list[ReadableLogRecord]:
        return [
            r for r in self.log_exporter.get_finished_logs() if r.log_record.event_name == event
        ]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def value(self, name: str, **attributes: str) -> float:
        """The sum of ``name``'s points whose attributes include ``attributes``."""
        total = sum(
            p.value
            for p in self.points(name)
            if all(
                dict(p.attributes or {}).get(f"peerguard.{k}") == v for k, v in attributes.items()
            )
        )
        return float(total)


@pytest.fixture(autouse=True)
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the OTEL_* variables of the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def otel() -> Iterator[Otel]:
    """A sink with in-memory exporters, passed explicitly (no global provider is set)."""
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated
    reader = InMemoryMetricReader()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    mp = MeterProvider(metric_readers=[reader])
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    sink = OtelSink(tracer_provider=tp, meter_provider=mp, logger_provider=lp)
    yield Otel(sink, spans, logs, reader, [tp, mp, lp])
    for provider in (tp, mp, lp):
        provider.shutdown()


def attrs(item: ReadableSpan | ReadableLogRecord) -> dict[str, Any]:
    """An item's attributes as a plain dict, sequences as lists."""
    raw: Mapping[str, Any] | None = (
        item.attributes if isinstance(item, ReadableSpan) else item.log_record.attributes
    )
    return {
        k: list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
        for k, v in (raw or {}).items()
    }


def loc(path: str) -> Location:
    return Location(raw=path, path=path)


def make_decision(
    action: Action = Action.DENY,
    *,
    mode: Mode = Mode.ENFORCE,
    call_id: str = "call-1",
    rules: Sequence[str] = ("peer-weights-exfiltration", "unknown-effect"),
    alerts: Sequence[Alert] = (),
) -> Decision:
    """A decision built by hand: a copy of a peer's weights and config off the host."""
    return Decision(
        action=action,
        mode=mode,
        agent=AGENT,
        tool="copy_file",
        call_id=call_id,
        args_hash="h" * 64,
        rules=list(rules),
        effects=[
            Effect(kind=EffectKind.COPY, target=loc("/w"), dest=loc("/x")),
            Effect(kind=EffectKind.TRANSFER, target=loc("/c")),
            Effect(kind=EffectKind.COPY, target=loc("/w2")),
        ],
        assets=[
            AssetRef(path="/w", kind=AssetKind.WEIGHTS, owner=PEER, relation=Relation.PEER),
            AssetRef(path="/c", kind=AssetKind.CONFIG, owner=PEER, relation=Relation.PEER),
            AssetRef(path="/o", kind=AssetKind.WEIGHTS, owner=AGENT, relation=Relation.OWN),
            AssetRef(path=None, kind=None, owner=None, relation=Relation.UNKNOWN),
        ],
        alerts=list(alerts),
        reason="deny by peer-weights-exfiltration",
    )


def make_alert(severity: Severity = Severity.CRITICAL, call_id: str | None = "call-1") -> Alert:
    return Alert(
        severity=severity,
        rule="peer-weights-exfiltration",
        message="copy /w -> /x [weights of agent-2, peer]",
        agent=AGENT,
        tool="copy_file",
        call_id=call_id,
    )


def call(call_id: str = "call-1", tool: str = "copy_file") -> ToolCall:
    return ToolCall(agent=AGENT, tool=tool, args={"src": "/w"}, call_id=call_id)


class Interrupt(Exception):
    """Stands in for LangGraph's GraphInterrupt."""


def run_failing(
    sink: OtelSink,
    decision: Decision | None,
    error: BaseException,
    *,
    asking: Decision | None = None,
) -> None:
    """Open the call's tool span, record ``decision`` or ask to confirm ``asking``, raise."""
    with sink.tool_span(call()) as span:
        if decision is not None:
            sink.record_decision(span, decision)
        if asking is not None:
            sink.confirmation_started(asking)
        raise error


# ---------------------------------------------------------------- spans


def test_denied_call_span_carries_every_attribute(otel: Otel) -> None:
    """A denied call's span has the GenAI and peerguard attributes, error.type and ERROR."""
    otel.sink.on_decision(make_decision())
    span = otel.span()
    assert span.name == "execute_tool copy_file"
    assert span.kind is SpanKind.INTERNAL
    assert attrs(span) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "copy_file",
        "gen_ai.tool.call.id": "call-1",
        "peerguard.agent": AGENT,
        "peerguard.decision": "deny",
        "peerguard.mode": "enforce",
        "peerguard.rule": "peer-weights-exfiltration",
        "peerguard.rules": ["peer-weights-exfiltration", "unknown-effect"],
        "peerguard.asset.kinds": ["config", "weights"],
        "peerguard.asset.owners": [AGENT, PEER],
        "peerguard.effects": ["copy", "transfer"],
        "peerguard.args_hash": "h" * 64,
        "error.type": "peerguard.denied",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "denied by peer-weights-exfiltration"


def test_allowed_call_has_no_rule_and_no_error(otel: Otel) -> None:
    """An allow with no rule matched leaves peerguard.rule and error.type out, status unset."""
    otel.sink.on_decision(make_decision(Action.ALLOW, rules=()))
    span = otel.span()
    assert "peerguard.rule" not in attrs(span)
    assert "error.type" not in attrs(span)
    assert attrs(span)["peerguard.rules"] == []
    assert span.status.status_code is StatusCode.UNSET


def test_shadow_deny_is_recorded_but_not_an_error(otel: Otel) -> None:
    """In shadow mode a deny is recorded as such, but the call ran: no error status."""
    otel.sink.on_decision(make_decision(mode=Mode.SHADOW))
    span = otel.span()
    assert attrs(span)["peerguard.decision"] == "deny"
    assert attrs(span)["peerguard.mode"] == "shadow"
    assert "error.type" not in attrs(span)
    assert span.status.status_code is StatusCode.UNSET


def test_tool_span_is_current_and_holds_the_decision(otel: Otel) -> None:
    """tool_span makes its span current; record_decision and on_decision land on it."""
    with otel.sink.tool_span(call()) as span:
        assert trace.get_current_span() is span
        assert otel.spans() == []  # still open
        otel.sink.record_decision(span, make_decision(Action.ALLOW, rules=()))
        otel.sink.on_decision(make_decision(Action.ALLOW, rules=()))  # same call: no new span
    finished = otel.span()
    assert attrs(finished)["peerguard.decision"] == "allow"
    assert finished.status.status_code is StatusCode.UNSET
    assert otel.value("peerguard.decisions") == 1


def test_tool_span_is_the_parent_of_spans_the_tool_opens(otel: Otel) -> None:
    """A span the tool opens while it runs is a child of the execute_tool span."""
    tracer = otel.providers[0].get_tracer("tool")
    with otel.sink.tool_span(call()), tracer.start_as_current_span("inner"):
        pass
    inner, outer = otel.spans()
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id


def test_tool_failure_sets_the_exception_type(otel: Otel) -> None:
    """A tool that raises leaves its exception type in error.type and an exception event."""
    with pytest.raises(ValueError, match="boom"):
        run_failing(otel.sink, make_decision(Action.ALLOW, rules=()), ValueError("boom"))
    finished = otel.span()
    assert attrs(finished)["error.type"] == "ValueError"
    assert finished.status.status_code is StatusCode.ERROR
    assert [e.name for e in finished.events] == ["exception"]


def test_blocked_call_keeps_the_guards_error_type(otel: Otel) -> None:
    """CallBlocked raised after a recorded deny keeps peerguard.denied, with no exception event."""
    decision = make_decision()
    with pytest.raises(CallBlocked):
        run_failing(otel.sink, decision, CallBlocked(decision))
    finished = otel.span()
    assert attrs(finished)["error.type"] == "peerguard.denied"
    assert "exception" not in [e.name for e in finished.events]


def test_call_blocked_without_a_recorded_decision_is_denied(otel: Otel) -> None:
    """A CallBlocked leaving the span before any decision was recorded still reads as denied."""
    with pytest.raises(CallBlocked), otel.sink.tool_span(call()):
        raise CallBlocked(make_decision())
    span = otel.span()
    assert attrs(span)["error.type"] == "peerguard.denied"
    assert span.status.description == "blocked by peer-weights-exfiltration"  # no paths


def test_approval_timeout_reads_as_refused(otel: Otel) -> None:
    """An ApprovalTimeout leaving the span reads as a refused confirmation."""
    with pytest.raises(ApprovalTimeout), otel.sink.tool_span(call()):
        raise ApprovalTimeout(make_decision(Action.CONFIRM))
    assert attrs(otel.span())["error.type"] == "peerguard.confirmation_refused"


def test_refused_confirmation_marks_the_span(otel: Otel) -> None:
    """A refused confirmation sets peerguard.approved=false, an approval event and ERROR."""
    decision = make_decision(Action.CONFIRM)
    with otel.sink.tool_span(call()) as span:
        otel.sink.record_decision(span, decision)
        otel.sink.on_approval(decision, False, "not today")
    finished = otel.span()
    assert attrs(finished)["peerguard.approved"] is False
    assert attrs(finished)["error.type"] == "peerguard.confirmation_refused"
    assert finished.status.status_code is StatusCode.ERROR
    (event,) = [e for e in finished.events if e.name == "peerguard.approval"]
    assert dict(event.attributes or {}) == {
        "peerguard.approved": False,
        "peerguard.reason": "not today",
    }


def test_approved_confirmation_is_not_an_error(otel: Otel) -> None:
    """An approved confirmation sets peerguard.approved=true and leaves the status unset."""
    decision = make_decision(Action.CONFIRM)
    with otel.sink.tool_span(call()) as span:
        otel.sink.record_decision(span, decision)
        otel.sink.on_approval(decision, True, "ok")
    assert attrs(otel.span())["peerguard.approved"] is True
    assert otel.span().status.status_code is StatusCode.UNSET


# ---------------------------------------------------------------- recording twice


def test_same_call_recorded_twice_is_recorded_once(otel: Otel) -> None:
    """A repeated decision, alert, approval and latency for one call id are dropped."""
    decision = make_decision(Action.CONFIRM, alerts=[make_alert()])
    for _ in range(2):
        otel.sink.on_decision(decision)
        for alert in decision.alerts:
            otel.sink.on_alert(alert)
        otel.sink.observe_latency(decision, 0.002)
    for _ in range(2):
        otel.sink.on_approval(decision, True, "ok")
    assert len(otel.spans()) == 1
    assert len(otel.logs()) == 1
    assert [e.name for e in otel.span().events] == ["peerguard.alert"]
    assert otel.value("peerguard.decisions") == 1
    (histogram,) = otel.points("peerguard.decision.duration")
    assert histogram.count == 1
    assert otel.value("peerguard.confirmations.pending") == 0


def test_tool_span_opened_twice_for_one_call_gives_one_span(otel: Otel) -> None:
    """A second tool_span for a finished call yields a non-recording span and exports nothing."""
    with otel.sink.tool_span(call()) as span:
        otel.sink.record_decision(span, make_decision(Action.ALLOW, rules=()))
    with otel.sink.tool_span(call()) as again:
        assert not again.is_recording()
        otel.sink.record_decision(again, make_decision(Action.ALLOW, rules=()))
    assert len(otel.spans()) == 1
    assert otel.value("peerguard.decisions") == 1


def test_resumed_call_continues_in_a_linked_span(otel: Otel) -> None:
    """An interrupt while a confirmation is pending suspends the span; the resume links to it."""
    decision = make_decision(Action.CONFIRM)
    # First pass: LangGraph asks, interrupt() raises.
    with pytest.raises(Interrupt):
        run_failing(otel.sink, None, Interrupt(), asking=decision)
    assert otel.value("peerguard.confirmations.pending", agent=AGENT) == 1
    # Resume: the node runs again from the start, then records and runs.
    with otel.sink.tool_span(call()) as span:
        otel.sink.confirmation_started(decision)
        otel.sink.record_decision(span, decision)
        otel.sink.on_approval(decision, True, "ok")
    first, resumed = otel.spans()
    assert attrs(first)["peerguard.suspended"] is True
    assert first.status.status_code is StatusCode.UNSET
    assert "error.type" not in attrs(first)
    assert attrs(resumed)["peerguard.resumed"] is True
    assert attrs(resumed)["peerguard.decision"] == "confirm"
    assert [link.context.span_id for link in resumed.links] == [first.context.span_id]
    assert otel.value("peerguard.decisions") == 1
    assert otel.value("peerguard.confirmations.pending") == 0
    # A third run of the same call id is a repeat again.
    with otel.sink.tool_span(call()) as third:
        assert not third.is_recording()
    assert len(otel.spans()) == 2


def test_remembered_keys_are_bounded(otel: Otel) -> None:
    """Past max_tracked keys the oldest call id is forgotten, so memory stays bounded."""
    sink = OtelSink(
        tracer_provider=otel.providers[0],
        meter_provider=otel.providers[1],
        logger_provider=otel.providers[2],
        max_tracked=4,
    )
    for call_id in ("a", "b", "a"):  # two keys a call (span, decision): "a" is remembered
        sink.on_decision(make_decision(Action.ALLOW, call_id=call_id))
    assert len(otel.spans()) == 2
    for call_id in ("c", "a"):  # "c" pushed "a" out, so "a" counts as new again
        sink.on_decision(make_decision(Action.ALLOW, call_id=call_id))
    assert len(otel.spans()) == 4


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("severity", "number", "text"),
    [
        (Severity.INFO, SeverityNumber.INFO, "INFO"),
        (Severity.WARNING, SeverityNumber.WARN, "WARN"),
        (Severity.ERROR, SeverityNumber.ERROR, "ERROR"),
        (Severity.CRITICAL, SeverityNumber.FATAL, "FATAL"),
    ],
)
def test_alert_is_a_log_record_with_mapped_severity(
    otel: Otel, severity: Severity, number: SeverityNumber, text: str
) -> None:
    """Each alert severity maps to its OpenTelemetry severity; body and attributes follow."""
    otel.sink.on_alert(make_alert(severity))
    (record,) = otel.logs()
    log = record.log_record
    assert log.severity_number is number
    assert log.severity_text == text
    assert log.body == "copy /w -> /x [weights of agent-2, peer]"
    assert log.event_name == "peerguard.alert"
    assert attrs(record) == {
        "peerguard.rule": "peer-weights-exfiltration",
        "peerguard.severity": severity.value,
        "peerguard.agent": AGENT,
        "gen_ai.agent.id": AGENT,
        "gen_ai.agent.name": AGENT,
        "gen_ai.tool.name": "copy_file",
        "gen_ai.tool.call.id": "call-1",
        "peerguard.enforcement_gap": False,
    }


def test_alert_during_a_call_is_a_span_event_in_the_same_trace(otel: Otel) -> None:
    """An alert for the open call is an event on its span, and its log carries the span's ids."""
    with otel.sink.tool_span(call()):
        otel.sink.on_alert(make_alert(Severity.WARNING))
    span = otel.span()
    (event,) = span.events
    assert event.name == "peerguard.alert"
    assert dict(event.attributes or {})["peerguard.severity"] == "warning"
    (record,) = otel.logs()
    assert record.log_record.trace_id == span.context.trace_id
    assert record.log_record.span_id == span.context.span_id


def test_decision_alerts_land_on_the_span_made_for_it(otel: Otel) -> None:
    """Without a tool span, a decision's alerts still become events on the span made for it."""
    otel.sink.on_decision(make_decision(alerts=[make_alert()]))
    assert [e.name for e in otel.span().events] == ["peerguard.alert"]
    (record,) = otel.logs()
    assert record.log_record.span_id == otel.span().context.span_id


def test_alerts_without_a_call_are_never_dropped_as_repeats(otel: Otel) -> None:
    """A sink-failure alert has no call id: each one is logged, with its enforcement gap."""
    alert = Alert(
        severity=Severity.ERROR, rule="sink-failure", message="x failed", enforcement_gap=True
    )
    otel.sink.on_alert(alert)
    otel.sink.on_alert(alert)
    assert len(otel.logs()) == 2
    assert attrs(otel.logs()[0]) == {
        "peerguard.rule": "sink-failure",
        "peerguard.severity": "error",
        "peerguard.enforcement_gap": True,
    }


# ---------------------------------------------------------------- metrics


def test_decisions_are_counted_by_action_rule_mode_and_agent(otel: Otel) -> None:
    """peerguard.decisions counts each call once, with its decision, rule, mode and agent."""
    otel.sink.on_decision(make_decision(call_id="a"))
    otel.sink.on_decision(make_decision(call_id="b"))
    otel.sink.on_decision(make_decision(Action.ALLOW, call_id="c", rules=(), mode=Mode.SHADOW))
    by_attrs = {
        tuple(sorted(dict(p.attributes or {}).items())): p.value
        for p in otel.points("peerguard.decisions")
    }
    assert by_attrs == {
        (
            ("peerguard.agent", AGENT),
            ("peerguard.decision", "deny"),
            ("peerguard.mode", "enforce"),
            ("peerguard.rule", "peer-weights-exfiltration"),
        ): 2,
        (
            ("peerguard.agent", AGENT),
            ("peerguard.decision", "allow"),
            ("peerguard.mode", "shadow"),
        ): 1,
    }


def test_decision_duration_is_a_histogram_in_seconds(otel: Otel) -> None:
    """observe_latency records seconds into buckets fine enough for sub-millisecond decisions."""
    otel.sink.observe_latency(make_decision(), 0.0004)
    otel.sink.on_latency(make_decision(call_id="other"), 0.003)
    (point,) = otel.points("peerguard.decision.duration")
    assert isinstance(point, HistogramDataPoint)
    assert point.count == 2
    assert point.sum == pytest.approx(0.0034)
    assert point.explicit_bounds[0] == pytest.approx(0.0001)
    assert dict(point.attributes or {})["peerguard.decision"] == "deny"
    data = otel.reader.get_metrics_data()
    assert data is not None
    units = {
        m.name: m.unit
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert units["peerguard.decision.duration"] == "s"


def test_pending_confirmations_go_up_and_down_once_per_call(otel: Otel) -> None:
    """confirmation_started/finished move the pending count once per call, never below zero."""
    first, second = (
        make_decision(Action.CONFIRM, call_id="a"),
        make_decision(Action.CONFIRM, call_id="b"),
    )
    otel.sink.confirmation_finished(first)  # never started: no change
    otel.sink.confirmation_started(first)
    otel.sink.on_confirmation_requested(first)  # the hook's alias: still once
    otel.sink.confirmation_started(second)
    assert otel.value("peerguard.confirmations.pending") == 2
    otel.sink.confirmation_finished(first)
    otel.sink.confirmation_finished(first)
    assert otel.value("peerguard.confirmations.pending", rule="peer-weights-exfiltration") == 1
    otel.sink.confirmation_finished(second)
    assert otel.value("peerguard.confirmations.pending") == 0


def test_enforced_confirm_is_pending_until_answered(otel: Otel) -> None:
    """Through the Sink hooks alone, an enforced confirm counts as pending until on_approval."""
    decision = make_decision(Action.CONFIRM)
    otel.sink.on_decision(decision)
    otel.sink.on_decision(make_decision(Action.CONFIRM, call_id="shadow", mode=Mode.SHADOW))
    assert otel.value("peerguard.confirmations.pending") == 1
    otel.sink.on_approval(decision, True, "ok")
    assert otel.value("peerguard.confirmations.pending") == 0


# ---------------------------------------------------------------- with the engine


def test_guard_run_records_a_refused_confirmation(otel: Otel, tmp_path: Any) -> None:
    """A Guard with the sink: an unknown tool asks, the default approver refuses, all recorded."""
    guard = Guard(root=tmp_path, sinks=[otel.sink])
    with pytest.raises(CallBlocked):
        guard.run(ToolCall(agent="a", tool="mystery", args={}, call_id="m"), lambda c: None)
    span = otel.span()
    assert span.name == "execute_tool mystery"
    assert attrs(span)["peerguard.decision"] == "confirm"
    assert attrs(span)["peerguard.effects"] == ["unknown"]
    assert otel.value("peerguard.decisions", decision="confirm") == 1
    assert otel.value("peerguard.confirmations.pending") == 0
    rules = [attrs(r)["peerguard.rule"] for r in otel.logs()]
    assert "confirmation-refused" in rules


def test_guard_denies_peer_weights_copy_with_a_fatal_alert(otel: Otel, world: World) -> None:
    """copy_file of a peer's weights through a Guard: a denied span and a FATAL alert log."""
    guard = world.guard(sinks=[otel.sink])
    decision = guard.decide(
        ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": "scratch/w"})
    )
    assert decision.action is Action.DENY
    span = otel.span()
    assert attrs(span)["error.type"] == "peerguard.denied"
    assert attrs(span)["peerguard.asset.kinds"] == ["weights"]
    assert attrs(span)["peerguard.asset.owners"] == [PEER]
    fatal = [r for r in otel.logs() if r.log_record.severity_number is SeverityNumber.FATAL]
    assert fatal and attrs(fatal[0])["gen_ai.tool.call.id"] == decision.call_id


# ---------------------------------------------------------------- configuration


def test_default_providers_are_the_global_ones() -> None:
    """With no providers given, the sink writes through the global (proxy) providers."""
    sink = OtelSink()
    assert sink.tracer_provider is trace.get_tracer_provider()
    assert sink.meter_provider is metrics.get_meter_provider()
    assert sink.logger_provider is get_logger_provider()


def test_from_env_without_an_endpoint_sends_nothing() -> None:
    """With no OTLP endpoint set, from_env builds no-op providers and recording still works."""
    sink = OtelSink.from_env()
    assert isinstance(sink.tracer_provider, trace.NoOpTracerProvider)
    assert isinstance(sink.meter_provider, metrics.NoOpMeterProvider)
    assert isinstance(sink.logger_provider, NoOpLoggerProvider)
    sink.on_decision(make_decision(alerts=[make_alert()]))
    sink.on_alert(make_alert())
    assert sink.force_flush()
    sink.shutdown()


def test_from_env_respects_sdk_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true wins over a configured endpoint."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    sink = OtelSink.from_env()
    assert isinstance(sink.tracer_provider, trace.NoOpTracerProvider)
    assert isinstance(sink.logger_provider, NoOpLoggerProvider)


def test_from_env_exports_only_the_configured_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal endpoint enables that signal alone; OTEL_<SIGNAL>_EXPORTER=none turns one off."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/v1/logs")
    sink = OtelSink.from_env()
    try:
        assert isinstance(sink.tracer_provider, trace.NoOpTracerProvider)
        assert isinstance(sink.meter_provider, metrics.NoOpMeterProvider)
        assert isinstance(sink.logger_provider, LoggerProvider)
    finally:
        sink.shutdown()
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    assert isinstance(OtelSink.from_env().logger_provider, NoOpLoggerProvider)


def test_from_env_rejects_an_unsupported_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OTLP protocol the Python exporters do not speak is a ConfigError, not silence."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="http/json"):
        OtelSink.from_env()


# ---------------------------------------------------------------- real OTLP/HTTP


class _Collector(http.server.BaseHTTPRequestHandler):
    """Stands in for a Collector's OTLP/HTTP receiver: keeps each POST body by path."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert isinstance(self.server, _CollectorServer)
        with self.server.lock:
            self.server.received.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _CollectorServer(http.server.ThreadingHTTPServer):
    """A loopback OTLP/HTTP endpoint on ``port`` (a free one by default)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Collector)
        self.lock = threading.Lock()
        self.received: dict[str, list[bytes]] = {}


def _kv(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    def value(v: AnyValue) -> Any:
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return [value(x) for x in v.array_value.values]
        return getattr(v, kind) if kind else None

    return {p.key: value(p.value) for p in pairs}


def test_denied_call_reaches_an_otlp_http_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env exports a denied call's span, FATAL alert and count as OTLP/HTTP protobuf."""
    server = _CollectorServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "guard-e2e")
        sink = OtelSink.from_env()
        try:
            decision = make_decision(alerts=[make_alert()])
            sink.on_decision(decision)
            for alert in decision.alerts:
                sink.on_alert(alert)
            assert sink.force_flush(10_000)
        finally:
            sink.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    received = server.received

    traces = ExportTraceServiceRequest()
    for body in received["/v1/traces"]:
        traces.MergeFromString(body)
    (resource_spans,) = traces.resource_spans
    assert _kv(resource_spans.resource.attributes)["service.name"] == "guard-e2e"
    spans = [s for ss in resource_spans.scope_spans for s in ss.spans]
    (span,) = spans
    assert span.name == "execute_tool copy_file"
    span_attrs = _kv(span.attributes)
    assert span_attrs["gen_ai.operation.name"] == "execute_tool"
    assert span_attrs["gen_ai.tool.call.id"] == "call-1"
    assert span_attrs["peerguard.decision"] == "deny"
    assert span_attrs["peerguard.rules"] == ["peer-weights-exfiltration", "unknown-effect"]
    assert span_attrs["error.type"] == "peerguard.denied"
    assert span.status.code == span.status.STATUS_CODE_ERROR

    logs = ExportLogsServiceRequest()
    for body in received["/v1/logs"]:
        logs.MergeFromString(body)
    records = [r for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    (record,) = records
    assert record.severity_number == SeverityNumber.FATAL.value
    assert record.severity_text == "FATAL"
    assert record.body.string_value == "copy /w -> /x [weights of agent-2, peer]"
    assert record.event_name == "peerguard.alert"
    assert record.span_id == span.span_id
    assert _kv(record.attributes)["peerguard.rule"] == "peer-weights-exfiltration"

    exported = ExportMetricsServiceRequest()
    for body in received["/v1/metrics"]:
        exported.MergeFromString(body)
    names = {
        m.name for rm in exported.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert "peerguard.decisions" in names


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None,
    reason="the gRPC exporter is installed here",
)
def test_from_env_names_the_missing_grpc_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for gRPC without its exporter package says which package to install."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    with pytest.raises(ConfigError, match="pip install opentelemetry-exporter-otlp-proto-grpc"):
        OtelSink.from_env()
