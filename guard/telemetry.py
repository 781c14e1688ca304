"""OpenTelemetry for peerguard: one span per guarded tool call, decision metrics, alert logs.

:class:`OtelSink` is a :class:`~guard.sinks.Sink`. It writes through the providers it is
given (the global ones by default), so an application that already set up OpenTelemetry
gets peerguard's telemetry in the same pipelines. :meth:`OtelSink.from_env` builds its own
OTLP providers from the standard ``OTEL_*`` variables instead; with none set it sends
nothing anywhere. Nothing here reads the environment at import time.

What is emitted
---------------

Spans follow the GenAI semantic conventions for tool execution: one ``INTERNAL`` span per
call, named ``execute_tool {gen_ai.tool.name}``, with

============================  ===============================================================
``gen_ai.operation.name``     ``execute_tool``
``gen_ai.tool.name``          the tool
``gen_ai.tool.call.id``       the call id (the model's tool-call id under LangGraph)
``peerguard.agent``           the acting agent
``peerguard.decision``        ``allow`` / ``alert`` / ``confirm`` / ``deny``
``peerguard.mode``            ``enforce`` / ``shadow``
``peerguard.rule``            the deciding (most restrictive) rule; absent when none matched
``peerguard.rules``           every rule that matched, most restrictive first
``peerguard.asset.kinds``     kinds of the protected assets touched (``weights``, ...)
``peerguard.asset.owners``    their owners
``peerguard.effects``         the effect kinds the guard resolved (``copy``, ``transfer``, ...)
``peerguard.args_hash``       the hash an approval is bound to (joins spans to the audit log)
``peerguard.approved``        the answer to a confirmation, once given
``error.type``                ``peerguard.denied`` or ``peerguard.confirmation_refused`` when the
                              guard blocked the call (span status ``ERROR``), else the tool's
                              exception type when the tool failed
============================  ===============================================================

No arguments, paths or tool results go on spans or metrics. Alert messages do contain
paths: they are what the ops team needs to act on.

Metrics: the counter ``peerguard.decisions`` and the histogram
``peerguard.decision.duration`` (seconds) carry ``peerguard.decision``, ``peerguard.rule``,
``peerguard.mode`` and ``peerguard.agent``; the observable gauge
``peerguard.confirmations.pending`` counts confirmations asked and not yet answered, by
``peerguard.agent`` and ``peerguard.rule``, from a store every process may share
(:mod:`guard.telemetry_pending`: aggregate it across processes with ``max``).

Alerts are log records (event name ``peerguard.alert``) whose body is the message and whose
severity maps ``info``/``warning``/``error``/``critical`` to ``INFO``/``WARN``/``ERROR``/
``FATAL``. A confirmation asked, approved, refused or timed out is a log record too (event
name ``peerguard.confirmation``, ``peerguard.confirmation.state``). Their structured
attributes (rule, decision, agent, tool, call id, and each asset's path, host, kind, owner
and relation) are listed in :mod:`guard.telemetry_attrs`. They carry the call's trace
context, and alerts are also added as a ``peerguard.alert`` event to the call's span while
it is open.

When the endpoint is down
-------------------------

The SDK exports on background threads and only logs a failed export to its own logger. The
exporters :meth:`OtelSink.from_env` and :meth:`OtelSink.from_exporters` build on are watched
(:mod:`guard.telemetry_export`): when a signal's export fails, a ``sink-failure`` alert
(ERROR, ``enforcement_gap``) goes to the guard's *other* sinks (console, audit log), once per
outage; an INFO one says how many records were dropped when an export succeeds again; and the
counter ``peerguard.telemetry.dropped`` (by ``peerguard.signal``: ``logs``, ``spans``,
``metrics``) counts them, reaching the Collector with the first metric export that gets through.
:meth:`OtelSink.shutdown` and :meth:`OtelSink.force_flush` return within ``shutdown_timeout``
seconds (3 by default) even when the endpoint never answers; a shutdown that gives up says on
the other sinks how many alerts were never sent.

Recording twice
---------------

LangGraph runs a node again from its start when it resumes after an ``interrupt()``, so the
same call id can be recorded twice. The sink remembers which ``(call id, event)`` pairs it
has recorded (a bounded set, ``max_tracked`` entries) and drops repeats: a call id gets one
span, one count, one latency sample and each alert once. The one exception: when a call's span
ends by an exception while its confirmation is pending (the interrupt), the resumed run gets one
continuation span, with ``peerguard.resumed=true`` and a link to the first.

Routing alerts with a Collector
-------------------------------

Point the sink at a Collector (``OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318``) and
route peerguard's alerts apart from the rest of the logs with the routing connector::

    connectors:
      routing:
        default_pipelines: [logs/all]
        table:
          - context: log
            condition: >-
              log.event_name == "peerguard.alert"
              and log.severity_number >= SEVERITY_NUMBER_ERROR
            pipelines: [logs/pager]
    service:
      pipelines:
        logs/in:    {receivers: [otlp], exporters: [routing]}
        logs/pager: {receivers: [routing], exporters: [otlphttp/pager]}
        logs/all:   {receivers: [routing], exporters: [otlphttp/store]}

``attributes["peerguard.enforcement_gap"] == true`` picks out the alerts where the guard could
not decide and fell back to deny (a broken sink, an internal error): those need a human even
when nothing was harmed.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from guard.exceptions import missing_extra

try:
    from opentelemetry import metrics, trace
    from opentelemetry._logs import (
        LoggerProvider,
        NoOpLoggerProvider,
        SeverityNumber,
        get_logger_provider,
    )
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
except ImportError as exc:  # the extra is not installed
    raise missing_extra("otel", "OtelSink", exc) from exc

from guard._version import __version__
from guard.approval import TIMED_OUT
from guard.audit import AUDIT_GAP_RULE
from guard.exceptions import ApprovalTimeout, CallBlocked, ConfigError
from guard.sinks import LoggingSink, Sink
from guard.telemetry_attrs import (
    Attributes,
    alert_attributes,
    call_attributes,
    confirmation_attributes,
    decision_attributes,
    metric_attributes,
)
from guard.telemetry_pending import MemoryPending, PendingStore, SqlitePending
from guard.types import Action, Alert, Decision, Severity, ToolCall

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExporter

    from guard.telemetry_export import ExportHealth

SCOPE: Final = "peerguard"
"""Instrumentation scope name of every tracer, meter and logger the sink uses."""

OPERATION: Final = "execute_tool"
ALERT_EVENT: Final = "peerguard.alert"
CONFIRMATION_EVENT: Final = "peerguard.confirmation"
APPROVAL_EVENT: Final = "peerguard.approval"
ERROR_DENIED: Final = "peerguard.denied"
ERROR_REFUSED: Final = "peerguard.confirmation_refused"

SEVERITY_NUMBERS: Final[Mapping[Severity, SeverityNumber]] = {
    Severity.INFO: SeverityNumber.INFO,
    Severity.WARNING: SeverityNumber.WARN,
    Severity.ERROR: SeverityNumber.ERROR,
    Severity.CRITICAL: SeverityNumber.FATAL,
}
"""How an alert's severity maps onto OpenTelemetry's log severities."""

# Decisions take microseconds to milliseconds; the SDK default buckets (0, 5, 10, ...) suit ms.
_DURATION_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
DEFAULT_SHUTDOWN_TIMEOUT: Final = 3.0
"""Seconds :meth:`OtelSink.shutdown` and :meth:`OtelSink.force_flush` wait at most by default."""

V = TypeVar("V")


class _Seen:
    """A bounded set of recorded keys: the oldest are forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; true when it is new."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


@dataclass
class _Open:
    """A tool span that is open, and what was recorded on it."""

    span: Span
    error: str | None = None


class OtelSink(Sink):
    """Telemetry for every guarded call: spans, metrics and alert logs.

    Build it with :meth:`from_env` (OTLP from the ``OTEL_*`` variables) or
    :meth:`from_exporters` (exporters you configured) and the exports are watched: when the
    endpoint is down, the guard's other sinks get a ``sink-failure`` alert (once per outage,
    and an INFO one with the count of dropped records when exports resume), and the counter
    ``peerguard.telemetry.dropped`` reports the drops once the endpoint is back. Providers
    passed to the constructor are used as they are: their exporters are not watched.

    Args:
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.
        logger_provider: Where alert logs go; the global provider when ``None``.
        max_tracked: How many recorded ``(call id, event)`` keys to remember for dropping
            repeats (and how many pending confirmations to track).
        shutdown_timeout: Seconds :meth:`shutdown` (and :meth:`force_flush`, unless given a
            timeout) wait at most, however dead the endpoint.
        pending: Where ``peerguard.confirmations.pending`` is counted: a
            :class:`~guard.telemetry_pending.PendingStore`, or the path of a SQLite file that
            every process asking or answering confirmations shares; this process's memory
            when ``None`` (see :mod:`guard.telemetry_pending`).

    Raises:
        ConfigError: ``shutdown_timeout`` is not positive.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
        max_tracked: int = 10_000,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        pending: PendingStore | str | os.PathLike[str] | None = None,
    ) -> None:
        if not shutdown_timeout > 0:
            raise ConfigError(f"shutdown_timeout must be positive, not {shutdown_timeout!r}")
        self.shutdown_timeout = shutdown_timeout
        self.tracer_provider = tracer_provider or trace.get_tracer_provider()
        self.meter_provider = meter_provider or metrics.get_meter_provider()
        self.logger_provider = logger_provider or get_logger_provider()
        self._owned: list[tuple[str, Any]] = []  # (signal, provider) built here, for shutdown()
        self._health: ExportHealth | None = None  # watches the exporters built here
        self._report: Callable[[Alert], None] | None = None  # the last guard's other sinks
        self._tracer = self.tracer_provider.get_tracer(SCOPE, __version__)
        self._logger = self.logger_provider.get_logger(SCOPE, __version__)
        meter = self.meter_provider.get_meter(SCOPE, __version__)
        self._decisions = meter.create_counter(
            "peerguard.decisions", unit="{decision}", description="Tool calls decided."
        )
        self._duration = meter.create_histogram(
            "peerguard.decision.duration",
            unit="s",
            description="Time the guard took to decide on a tool call.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        if pending is None:
            pending = MemoryPending(max_tracked)
        elif not isinstance(pending, PendingStore):
            pending = SqlitePending(pending)
        self.pending: PendingStore = pending
        self._pending_keys: set[tuple[str, str]] = set()  # reported once: 0 when none wait
        meter.create_observable_gauge(
            "peerguard.confirmations.pending",
            callbacks=[self._observe_pending],
            unit="{confirmation}",
            description="Confirmations asked and not yet answered (in the pending store).",
        )
        self._records_lost = meter.create_counter(
            "peerguard.audit.records_lost",
            unit="{record}",
            description="Audit records that could not be written (a full disk), counted once "
            "the log marks the gap.",
        )
        self._max = max_tracked
        self._lock = threading.Lock()
        self._seen = _Seen(max_tracked)
        self._open: dict[str, _Open] = {}
        self._asked: _Seen = _Seen(max_tracked)  # call ids this process asked about
        self._suspended: OrderedDict[str, trace.SpanContext] = OrderedDict()
        self._asking: OrderedDict[str, None] = OrderedDict()  # asked here, not yet answered

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_env(
        cls,
        *,
        service_name: str = "peerguard",
        max_tracked: int = 10_000,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        pending: PendingStore | str | os.PathLike[str] | None = None,
    ) -> OtelSink:
        """A sink exporting over OTLP to where the standard ``OTEL_*`` variables say.

        A signal (traces, metrics, logs) is exported only when
        ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` is set and
        ``OTEL_<SIGNAL>_EXPORTER`` is not ``none``; the others are dropped. With
        ``OTEL_SDK_DISABLED=true`` nothing is exported. The exporters read the endpoint,
        headers, timeout, compression and certificates themselves;
        ``OTEL_EXPORTER_OTLP_[<SIGNAL>_]PROTOCOL`` picks ``http/protobuf`` (the default) or
        ``grpc`` (needs ``opentelemetry-exporter-otlp-proto-grpc``). The resource comes from
        ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``, with ``service_name`` when
        neither names the service. The exporters are watched as :meth:`from_exporters` says.
        Call :meth:`shutdown` at exit to flush (it runs at interpreter exit otherwise).

        Args:
            service_name: ``service.name`` when the environment gives none.
            max_tracked: As for the constructor.
            shutdown_timeout: As for the constructor.
            pending: As for the constructor.

        Returns:
            The sink, owning the providers it built.

        Raises:
            ConfigError: An unsupported protocol, or the exporter package is missing.
        """
        from guard.telemetry_export import exporters_from_env

        wanted = exporters_from_env(os.environ)
        if not wanted:
            return cls(
                tracer_provider=trace.NoOpTracerProvider(),
                meter_provider=metrics.NoOpMeterProvider(),
                logger_provider=NoOpLoggerProvider(),
                max_tracked=max_tracked,
                shutdown_timeout=shutdown_timeout,
                pending=pending,
            )
        return cls.from_exporters(
            span_exporter=wanted["traces"]() if "traces" in wanted else None,
            metric_exporter=wanted["metrics"]() if "metrics" in wanted else None,
            log_exporter=wanted["logs"]() if "logs" in wanted else None,
            service_name=service_name,
            max_tracked=max_tracked,
            shutdown_timeout=shutdown_timeout,
            pending=pending,
        )

    @classmethod
    def from_exporters(
        cls,
        *,
        span_exporter: SpanExporter | None = None,
        metric_exporter: MetricExporter | None = None,
        log_exporter: LogRecordExporter | None = None,
        resource: Resource | None = None,
        service_name: str = "peerguard",
        max_tracked: int = 10_000,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        pending: PendingStore | str | os.PathLike[str] | None = None,
    ) -> OtelSink:
        """A sink exporting through these exporters, on SDK providers of its own.

        Spans and alert logs go through batch processors, metrics through a periodic reader
        (every ``OTEL_METRIC_EXPORT_INTERVAL`` ms, 60 s by default); a signal with no exporter
        is not exported. Each exporter is watched: a failed export (``FAILURE`` or an
        exception) raises a ``sink-failure`` alert on the guard's other sinks, once per outage,
        and is counted in ``peerguard.telemetry.dropped`` (see :mod:`guard.telemetry_export`).

        Args:
            span_exporter: Where spans go.
            metric_exporter: Where metrics go, the dropped-records counter among them.
            log_exporter: Where alert logs go.
            resource: The resource; from ``OTEL_RESOURCE_ATTRIBUTES`` and
                ``OTEL_SERVICE_NAME`` (else ``service_name``) when ``None``.
            service_name: ``service.name`` when neither ``resource`` nor the environment
                gives one.
            max_tracked: As for the constructor.
            shutdown_timeout: As for the constructor.
            pending: As for the constructor.

        Returns:
            The sink, owning the providers it built: :meth:`shutdown` flushes them (and runs at
            interpreter exit if not called).
        """
        from guard.telemetry_export import ExportHealth, build_providers

        health = ExportHealth()
        built = build_providers(
            health,
            resource,
            service_name,
            span_exporter=span_exporter,
            metric_exporter=metric_exporter,
            log_exporter=log_exporter,
        )
        sink = cls(
            tracer_provider=built.tracer_provider,
            meter_provider=built.meter_provider,
            logger_provider=built.logger_provider,
            max_tracked=max_tracked,
            shutdown_timeout=shutdown_timeout,
            pending=pending,
        )
        sink._owned = built.owned
        sink._health = health
        health.connect(sink._report_export, sink.meter_provider.get_meter(SCOPE, __version__))
        if built.owned:  # the sink's bounded shutdown runs at exit, not the providers' own
            atexit.register(sink.shutdown)
        return sink

    def attach(self, report: Callable[[Alert], None]) -> None:
        """Send alerts about failed exports to ``report``: the other sinks of the guard joined last.

        One guard's sinks are told, not every guard's: a sink shared by guards made one per
        request would otherwise repeat each alert and keep every guard alive.
        """
        self._report = report

    def _report_export(self, alert: Alert) -> None:
        """An export failed or recovered: tell the guard's other sinks, or else the log."""
        report = self._report
        if report is None:
            LoggingSink().on_alert(alert)  # in no guard: the peerguard logger is all there is
            return
        with contextlib.suppress(Exception):
            report(alert)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything buffered now (SDK providers only; others are skipped).

        Waits ``timeout_millis`` at most (``shutdown_timeout`` when ``None``), however dead
        the endpoint: a flush still running then goes on in the background.

        Returns:
            False when a provider did not finish in time or failed.
        """
        from guard.telemetry_export import run_bounded

        seconds = self.shutdown_timeout if timeout_millis is None else timeout_millis / 1000
        calls = [
            (name, functools.partial(flush, max(int(seconds * 1000), 1)))
            for name, provider in (
                ("spans", self.tracer_provider),
                ("metrics", self.meter_provider),
                ("logs", self.logger_provider),
            )
            if (flush := getattr(provider, "force_flush", None)) is not None
        ]
        return not calls or not run_bounded(calls, seconds)

    def shutdown(self) -> None:
        """Flush and shut down the providers this sink built (never ones passed in).

        Returns within ``shutdown_timeout`` seconds: exports still running then are abandoned
        and their exporters stopped, and a ``sink-failure`` alert on the guard's other sinks
        says what was never exported (so does one for an outage still going on).
        """
        owned, self._owned = self._owned, []
        if not owned:
            return
        atexit.unregister(self.shutdown)
        from guard.telemetry_export import run_bounded

        late = run_bounded([(name, p.shutdown) for name, p in owned], self.shutdown_timeout)
        if self._health is not None:
            self._health.close(late, self.shutdown_timeout)

    # ------------------------------------------------------------------ spans

    @contextlib.contextmanager
    def tool_span(self, call: ToolCall) -> Iterator[Span]:
        """Open the call's ``execute_tool`` span and make it current for the block.

        Record the decision on it with :meth:`record_decision` (or let the engine's
        :meth:`on_decision` find it by call id). An exception leaving the block sets the span's
        status to ``ERROR`` with ``error.type``, unless the guard already blocked the call,
        or a confirmation is pending (a LangGraph interrupt: the span ends suspended).

        Yields:
            The span; a non-recording one when this call id already had its span.
        """
        opened = self._start(call)
        if opened is None:
            yield trace.INVALID_SPAN
            return
        try:
            with trace.use_span(
                opened.span,
                end_on_exit=False,
                record_exception=False,
                set_status_on_exception=False,
            ):
                yield opened.span
        except BaseException as exc:
            self._failed(call.call_id, opened, exc)
            raise
        finally:
            with self._lock:
                self._open.pop(call.call_id, None)
            opened.span.end()

    def _start(self, call: ToolCall) -> _Open | None:
        with self._lock:
            if call.call_id in self._open:
                return None
            earlier = self._suspended.pop(call.call_id, None)
            first = self._seen.add((call.call_id, "span"))
            if earlier is None and not first:
                return None
            attributes = call_attributes(call.tool, call.call_id, call.agent)
            links = None
            if earlier is not None:
                attributes["peerguard.resumed"] = True
                links = [Link(earlier, {"peerguard.link": "resumed"})]
            span = self._tracer.start_span(
                f"{OPERATION} {call.tool}",
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
            )
            opened = _Open(span)
            self._open[call.call_id] = opened
            return opened

    def _failed(self, call_id: str, opened: _Open, exc: BaseException) -> None:
        span = opened.span
        with self._lock:
            suspended = call_id in self._asking
            if suspended:
                _bounded_put(self._suspended, call_id, span.get_span_context(), self._max)
        if suspended:
            # The graph paused for a human; the resumed run continues in a linked span.
            span.set_attribute("peerguard.suspended", True)
            return
        if opened.error is not None:
            return  # the guard blocked the call and said so already
        description = None
        if isinstance(exc, CallBlocked):
            error = ERROR_REFUSED if isinstance(exc, ApprovalTimeout) else ERROR_DENIED
            rules = exc.decision.rules
            description = f"blocked by {rules[0]}" if rules else "blocked"
        else:
            span.record_exception(exc)
            error = _type_name(exc)
        _set_error(span, opened, error, description)

    def _open_for(self, call_id: str | None, span: Span | None = None) -> _Open | None:
        with self._lock:
            opened = self._open.get(call_id) if call_id is not None else None
        if opened is not None and (span is None or opened.span is span):
            return opened
        return None

    def record_decision(self, span: Span, decision: Decision) -> None:
        """Record ``decision`` on ``span`` and everywhere else it belongs.

        Sets the span's ``peerguard.*`` attributes (and ``ERROR`` status for an enforced
        deny), and, once per call id, counts the decision, starts the pending-confirmation
        count for an enforced confirm, and emits the decision's alerts.
        """
        opened = self._open_for(decision.call_id, span)
        if span.is_recording():
            span.set_attributes(decision_attributes(decision))
            if decision.enforced and decision.action is Action.DENY:
                rule = decision.rules[0] if decision.rules else "policy"
                _set_error(span, opened, ERROR_DENIED, f"denied by {rule}")
        with self._lock:
            first = self._seen.add((decision.call_id, "decision"))
        if first:
            self._decisions.add(1, metric_attributes(decision))
            if decision.enforced and decision.action is Action.CONFIRM:
                self.confirmation_started(decision)
        for alert in decision.alerts:
            self._alert(alert, span, decision)

    # ------------------------------------------------------------------ sink hooks

    def on_decision(self, decision: Decision) -> None:
        """Record on the call's open tool span, or on a span started and ended here."""
        opened = self._open_for(decision.call_id)
        if opened is not None:
            self.record_decision(opened.span, decision)
            return
        with self._lock:
            first = self._seen.add((decision.call_id, "span"))
        if not first:
            self.record_decision(trace.INVALID_SPAN, decision)
            return
        span = self._tracer.start_span(
            f"{OPERATION} {decision.tool}",
            kind=SpanKind.INTERNAL,
            attributes=call_attributes(decision.tool, decision.call_id, decision.agent),
        )
        try:
            self.record_decision(span, decision)
        finally:
            span.end()

    def on_alert(self, alert: Alert) -> None:
        """Emit the alert as a log record, and as an event on the call's open span."""
        opened = self._open_for(alert.call_id)
        self._alert(alert, opened.span if opened is not None else None)

    def on_approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """End the pending confirmation; on the open span, the answer and, if refused, ERROR."""
        with self._lock:
            first = self._seen.add((decision.call_id, "approval"))
        if not first:
            return
        self.confirmation_finished(decision)
        if approved:
            state = "approved"
        else:
            state = "timed_out" if reason.startswith(TIMED_OUT) else "refused"
        self._confirmation_log(decision, state, reason)
        opened = self._open_for(decision.call_id)
        if opened is None:
            return
        span = opened.span
        span.set_attribute("peerguard.approved", approved)
        span.add_event(APPROVAL_EVENT, {"peerguard.approved": approved, "peerguard.reason": reason})
        if not approved and decision.enforced:
            _set_error(span, opened, ERROR_REFUSED, f"confirmation refused: {reason}")

    def on_latency(self, decision: Decision, seconds: float) -> None:
        """The engine's hook for :meth:`observe_latency`."""
        self.observe_latency(decision, seconds)

    def on_confirmation_requested(self, decision: Decision) -> None:
        """The engine's and integrations' hook for :meth:`confirmation_started`."""
        self.confirmation_started(decision)

    # ------------------------------------------------------------------ metrics

    def observe_latency(self, decision: Decision, seconds: float) -> None:
        """Record how long the guard took to reach ``decision`` (once per call id)."""
        with self._lock:
            first = self._seen.add((decision.call_id, "latency"))
        if first:
            self._duration.record(seconds, metric_attributes(decision))

    def confirmation_started(self, decision: Decision) -> None:
        """A confirmation was asked: into the pending store, and a ``requested`` log (once)."""
        with self._lock:
            if not self._seen.add((decision.call_id, "confirmation")):
                return
            _bounded_put(self._asking, decision.call_id, None, self._max)
        rule = decision.rules[0] if decision.rules else ""
        self.pending.add(decision.call_id, decision.agent, rule)
        self._confirmation_log(decision, "requested")

    def confirmation_finished(self, decision: Decision) -> None:
        """The confirmation was answered (or abandoned): out of the pending store.

        The store is shared when it is a :class:`SqlitePending`, so a process that answers a
        confirmation another one asked takes it out of everyone's count.
        """
        with self._lock:
            self._asking.pop(decision.call_id, None)
            # Reported from now on, as 0 once none wait, even by a process that never asked.
            self._pending_keys.add((decision.agent, decision.rules[0] if decision.rules else ""))
        self.pending.remove(decision.call_id)

    def _observe_pending(self, options: CallbackOptions) -> Iterable[Observation]:
        counts = self.pending.counts()
        with self._lock:
            self._pending_keys.update(counts)
            keys = sorted(self._pending_keys)
        for agent, rule in keys:
            attributes: Attributes = {"peerguard.agent": agent}
            if rule:
                attributes["peerguard.rule"] = rule
            yield Observation(counts.get((agent, rule), 0), attributes)

    def _confirmation_log(self, decision: Decision, state: str, reason: str = "") -> None:
        number = SeverityNumber.INFO if state in ("requested", "approved") else SeverityNumber.WARN
        opened = self._open_for(decision.call_id)
        context = trace.set_span_in_context(opened.span) if opened is not None else None
        if self._health is not None:
            self._health.emit("logs")
        words = {
            "requested": "asked for",
            "approved": "approved",
            "refused": "refused",
            "timed_out": "timed out",
        }
        self._logger.emit(
            severity_number=number,
            severity_text=number.name,
            body=f"confirmation of {decision.tool} by {decision.agent} {words[state]}"
            + (f": {reason}" if reason and state != "approved" else ""),
            attributes=confirmation_attributes(decision, state, reason),
            event_name=CONFIRMATION_EVENT,
            context=context,
        )

    # ------------------------------------------------------------------ alerts

    def _alert(self, alert: Alert, span: Span | None, decision: Decision | None = None) -> None:
        attributes = alert_attributes(alert, decision)
        lost = alert.detail("lost") if alert.rule == AUDIT_GAP_RULE else None
        if isinstance(lost, int) and lost > 0:
            self._records_lost.add(lost, {"peerguard.audit.log": str(alert.detail("log"))})
        if alert.call_id is None:
            log_first, event_first = True, True  # nothing to tell repeats apart by
        else:
            key = (alert.call_id, "alert", alert.rule, alert.message)
            with self._lock:
                log_first = self._seen.add((*key, "log"))
                event_first = span is not None and span.is_recording() and self._seen.add(key)
        if span is not None and span.is_recording() and event_first:
            span.add_event(ALERT_EVENT, attributes)
        if log_first:
            if self._health is not None:
                self._health.emit("logs")
            number = SEVERITY_NUMBERS[alert.severity]
            context = trace.set_span_in_context(span) if span is not None else None
            self._logger.emit(
                severity_number=number,
                severity_text=number.name,
                body=alert.message,
                attributes=attributes,
                event_name=ALERT_EVENT,
                context=context,
            )


# ---------------------------------------------------------------------- helpers


def _set_error(span: Span, opened: _Open | None, error: str, description: str | None) -> None:
    if opened is not None:
        if opened.error is not None:
            return  # the first reason the call was blocked stands
        opened.error = error
    span.set_attribute("error.type", error)
    span.set_status(Status(StatusCode.ERROR, description))


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _bounded_put(store: OrderedDict[str, V], key: str, value: V, size: int) -> V | None:
    """Put ``key`` in ``store``; the evicted oldest value when that made it too big."""
    store[key] = value
    if len(store) > size:
        return store.popitem(last=False)[1]
    return None


__all__ = [
    "ALERT_EVENT",
    "APPROVAL_EVENT",
    "CONFIRMATION_EVENT",
    "ERROR_DENIED",
    "ERROR_REFUSED",
    "OPERATION",
    "SCOPE",
    "SEVERITY_NUMBERS",
    "OtelSink",
]
