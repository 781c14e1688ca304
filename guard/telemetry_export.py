"""The export side of :class:`~guard.telemetry.OtelSink`: which exporters, and their health.

:func:`exporters_from_env` picks the OTLP exporters the ``OTEL_*`` variables ask for, and
:func:`build_providers` builds the SDK providers over them, each exporter watched so that a
failed export raises an alert instead of vanishing.

The SDK exports on background threads (the batch span and log processors, the periodic metric
reader) and only logs a failed export to its own logger, so an alert the OTLP endpoint never
received would vanish. The sink wraps each exporter it builds in a watched exporter that sees
every ``export()`` result (``FAILURE`` or an exception) and the size of the batch, and tells
:class:`ExportHealth`, which

* counts what was dropped in the counter ``peerguard.telemetry.dropped`` (unit ``{record}``,
  attribute ``peerguard.signal`` = ``logs``, ``spans`` or ``metrics``). The counter is
  cumulative, so the first metric export that gets through carries every drop of the outage;
* raises one ``sink-failure`` alert (severity ERROR, ``enforcement_gap``) when a signal's
  outage starts, and one INFO ``sink-failure`` alert saying how many records were dropped when
  an export of that signal succeeds again (or an ERROR one if the sink shuts down mid-outage).
  Failures in between are counted, not reported, so a dead endpoint does not flood anyone.

The alerts go to the guard's *other* sinks (console, audit log) through the function
:meth:`guard.sinks.Sink.attach` gave the sink, never to the OTLP pipeline that is failing.

:func:`run_bounded` is how the sink keeps ``shutdown()`` and ``force_flush()`` within their
time limit: the SDK's own waits are not bounded (a batch processor's shutdown joins its worker
for 30 s, its force flush ignores its timeout, and the OTLP/HTTP exporter retries with backoff
for up to ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s by default, per batch and signal).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from guard.exceptions import missing_extra

try:
    from opentelemetry import metrics, trace
    from opentelemetry._logs import LoggerProvider, NoOpLoggerProvider
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        LogRecordExporter,
        LogRecordExportResult,
    )
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
except ImportError as exc:  # the extra is not installed
    raise missing_extra("otel", "OtelSink", exc) from exc

from guard.exceptions import ConfigError
from guard.types import Alert, Severity

DROPPED_METRIC: Final = "peerguard.telemetry.dropped"
"""Counter of records (alert logs, spans, metric points) whose export failed, by signal."""

RULE: Final = "sink-failure"

_NOUNS: Final = {
    "logs": ("alert log record", "alert log records"),
    "spans": ("span", "spans"),
    "metrics": ("metric point", "metric points"),
}

R = TypeVar("R")


def _count(signal: str, n: int) -> str:
    one, many = _NOUNS[signal]
    return f"{n} {one if n == 1 else many}"


@dataclass
class _Outage:
    """A run of failed exports of one signal, from the first failure to the next success."""

    started: float
    error: str
    dropped: int = 0
    failures: int = 0


class ExportHealth:
    """What one sink's exporters saw; alerts when a signal's exports start and stop failing.

    Thread-safe: the exporters call it from the SDK's worker threads. The alert and metric
    callbacks run outside its lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._report: Callable[[Alert], None] = lambda alert: None
        self._add: Callable[[str, int], None] = lambda signal, n: None
        self._outages: dict[str, _Outage] = {}
        self._exporters: list[_Watched] = []
        self._closed = False
        self.aborted = False
        #: Records exported, dropped, and (logs only) handed to the SDK, by signal, since start.
        self.exported: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.emitted: Counter[str] = Counter()

    def connect(self, report: Callable[[Alert], None], meter: metrics.Meter) -> None:
        """Send alerts to ``report``; count drops in :data:`DROPPED_METRIC` on ``meter``."""
        counter = meter.create_counter(
            DROPPED_METRIC,
            unit="{record}",
            description="Telemetry records (alert logs, spans, metric points) whose export failed.",
        )
        self._report = report
        self._add = lambda signal, n: counter.add(n, {"peerguard.signal": signal})

    def watch(self, exporter: Any, signal: str) -> Any:
        """``exporter`` wrapped so that this object sees each of its exports."""
        kinds: dict[str, type[_Watched]] = {
            "spans": WatchedSpanExporter,
            "logs": WatchedLogExporter,
            "metrics": WatchedMetricExporter,
        }
        watched = kinds[signal](exporter, self)
        with self._lock:
            self._exporters.append(watched)
        return watched

    def emit(self, signal: str) -> None:
        """One record was handed to the SDK for ``signal`` (the sink counts its alert logs)."""
        with self._lock:
            self.emitted[signal] += 1

    def run(self, signal: str, n: int, export: Callable[[], R], failure: R) -> R:
        """Run one export of ``n`` records and record how it went; ``failure`` once aborted."""
        if self.aborted:
            self._failed(signal, n, "shutdown gave up waiting for the endpoint")
            return failure
        try:
            result = export()
        except Exception as exc:
            self._failed(signal, n, repr(exc))
            raise  # the SDK logs it as it always did
        if result == failure:
            self._failed(signal, n, "the exporter returned FAILURE")
        else:
            self._succeeded(signal, n)
        return result

    def _failed(self, signal: str, n: int, error: str) -> None:
        with self._lock:
            self.dropped[signal] += n
            outage = self._outages.get(signal)
            first = outage is None
            if outage is None:
                outage = self._outages[signal] = _Outage(self._clock(), error)
            outage.dropped += n
            outage.failures += 1
            closed = self._closed
        if closed:
            return  # the shutdown alert accounted for it
        self._add(signal, n)
        if first:
            self._report(
                Alert(
                    severity=Severity.ERROR,
                    rule=RULE,
                    message=(
                        f"OtelSink could not export {signal} over OTLP ({error}): "
                        f"{_count(signal, n)} dropped; further failures are counted, not "
                        f"reported, until an export of {signal} succeeds"
                    ),
                    enforcement_gap=True,
                )
            )

    def _succeeded(self, signal: str, n: int) -> None:
        with self._lock:
            self.exported[signal] += n
            outage = self._outages.pop(signal, None)
            closed = self._closed
            now = self._clock()
        if outage is not None and not closed:
            self._report(
                Alert(
                    severity=Severity.INFO,
                    rule=RULE,
                    message=(
                        f"OtelSink exports {signal} over OTLP again after "
                        f"{now - outage.started:.1f} s: {_count(signal, outage.dropped)} "
                        f"dropped in {outage.failures} failed "
                        f"export{'' if outage.failures == 1 else 's'} ({outage.error})"
                    ),
                )
            )

    def close(self, late: Sequence[str], seconds: float) -> None:
        """The sink shut down; ``late`` are the signals whose shutdown did not finish in time.

        Stops the exporters of late signals (their retries end), then raises one ERROR alert
        for what will never be exported: the outages still going on, and the alert log records
        still queued. Nothing is reported after this.
        """
        if late:
            self.abort()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            parts = []
            for signal in _NOUNS:
                facts = []
                if signal in late:
                    facts.append(f"its shutdown did not complete within {seconds:g} s")
                    unsent = self.emitted[signal] - self.exported[signal] - self.dropped[signal]
                    if unsent > 0:
                        facts.append(f"{_count(signal, unsent)} never sent")
                outage = self._outages.get(signal)
                if outage is not None:
                    facts.append(
                        f"{_count(signal, outage.dropped)} dropped since its exports began "
                        f"failing ({outage.error})"
                    )
                if facts:
                    parts.append(f"{signal}: {', '.join(facts)}")
        if parts:
            self._report(
                Alert(
                    severity=Severity.ERROR,
                    rule=RULE,
                    message="OtelSink shut down without exporting everything: " + "; ".join(parts),
                    enforcement_gap=True,
                )
            )

    def abort(self) -> None:
        """Fail every later export at once and shut the exporters down (ends their retries)."""
        with self._lock:
            self.aborted = True
            exporters = list(self._exporters)
        for exporter in exporters:
            with contextlib.suppress(Exception):  # best effort: the shutdown alert says so
                exporter.shutdown()


class _Watched:
    """What the three watched exporters share: the exporter they wrap, shut down once."""

    signal: str

    def __init__(self, inner: Any, health: ExportHealth) -> None:
        self.inner = inner
        self._health = health
        self._down = False
        self._down_lock = threading.Lock()

    def _shutdown_once(self) -> bool:
        with self._down_lock:
            first, self._down = not self._down, True
        return first

    def shutdown(self) -> None:
        """Shut the wrapped exporter down (once: an aborted shutdown already did)."""
        if self._shutdown_once():
            self.inner.shutdown()


class WatchedSpanExporter(_Watched, SpanExporter):
    """A span exporter whose exports :class:`ExportHealth` watches."""

    signal = "spans"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter; a failure is counted and reported."""
        return self._health.run(
            self.signal, len(spans), lambda: self.inner.export(spans), SpanExportResult.FAILURE
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.inner.force_flush(timeout_millis))


class WatchedLogExporter(_Watched, LogRecordExporter):
    """A log record exporter whose exports :class:`ExportHealth` watches."""

    signal = "logs"

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through the wrapped exporter; a failure is counted and reported."""
        return self._health.run(
            self.signal, len(batch), lambda: self.inner.export(batch), LogRecordExportResult.FAILURE
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.inner.force_flush(timeout_millis))


class WatchedMetricExporter(_Watched, MetricExporter):
    """A metric exporter whose exports :class:`ExportHealth` watches."""

    signal = "metrics"

    def __init__(self, inner: Any, health: ExportHealth) -> None:
        _Watched.__init__(self, inner, health)
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export through the wrapped exporter; a failure is counted and reported."""
        points = sum(
            len(metric.data.data_points)
            for rm in metrics_data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        )
        return self._health.run(
            self.signal,
            points,
            lambda: self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.FAILURE,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.inner.force_flush(timeout_millis=timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the wrapped exporter down (once)."""
        if self._shutdown_once():
            self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def run_bounded(calls: Sequence[tuple[str, Callable[[], object]]], seconds: float) -> list[str]:
    """Run each call on its own daemon thread and wait for all of them, ``seconds`` at most.

    A call still running then is left to finish in the background.

    Returns:
        The names of the calls that did not finish in time, raised, or returned False.
    """
    deadline = time.monotonic() + seconds
    outcomes: dict[str, bool] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            outcomes[name] = call() is not False
        except Exception:
            outcomes[name] = False

    threads = [
        threading.Thread(target=run, args=(name, call), name=f"peerguard-otel-{name}", daemon=True)
        for name, call in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return [name for name, _ in calls if not outcomes.get(name, False)]


# ---------------------------------------------------------------------- building


SIGNALS: Final = ("traces", "metrics", "logs")


def exporters_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The OTLP exporter classes the ``OTEL_*`` variables ask for, by signal.

    Empty when ``OTEL_SDK_DISABLED`` is true or no endpoint is set.

    Raises:
        ConfigError: An unsupported protocol, or the exporter package is missing.
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return {}
    return {s: _exporter_class(env, s) for s in SIGNALS if _signal_configured(env, s)}


@dataclass
class Providers:
    """The SDK providers built over watched exporters (no-op ones for missing signals)."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: LoggerProvider
    owned: list[tuple[str, Any]]  # (signal, SDK provider), to shut down


def build_providers(
    health: ExportHealth,
    resource: Resource | None,
    service_name: str,
    *,
    span_exporter: SpanExporter | None,
    metric_exporter: MetricExporter | None,
    log_exporter: LogRecordExporter | None,
) -> Providers:
    """SDK providers exporting through ``health``'s watched wrappers of these exporters.

    Spans and logs are batched, metrics read periodically. The providers register no exit
    handler of their own: their shutdown is not bounded, the sink's is.
    """
    if resource is None:
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    built = Providers(
        trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), NoOpLoggerProvider(), []
    )
    if span_exporter is not None:
        tp = SdkTracerProvider(resource=resource, shutdown_on_exit=False)
        tp.add_span_processor(BatchSpanProcessor(health.watch(span_exporter, "spans")))
        built.tracer_provider = tp
        built.owned.append(("spans", tp))
    if metric_exporter is not None:
        reader = PeriodicExportingMetricReader(health.watch(metric_exporter, "metrics"))
        mp = SdkMeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
        built.meter_provider = mp
        built.owned.append(("metrics", mp))
    if log_exporter is not None:
        lp = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        lp.add_log_record_processor(BatchLogRecordProcessor(health.watch(log_exporter, "logs")))
        built.logger_provider = lp
        built.owned.append(("logs", lp))
    return built


def _signal_configured(env: Mapping[str, str], signal: str) -> bool:
    upper = signal.upper()
    if env.get(f"OTEL_{upper}_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        env.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


_EXPORTERS: Final = {
    "http/protobuf": (
        "opentelemetry-exporter-otlp-proto-http",
        {
            "traces": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
            "metrics": (
                "opentelemetry.exporter.otlp.proto.http.metric_exporter",
                "OTLPMetricExporter",
            ),
            "logs": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
        },
    ),
    "grpc": (
        "opentelemetry-exporter-otlp-proto-grpc",
        {
            "traces": ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
            "metrics": (
                "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
                "OTLPMetricExporter",
            ),
            "logs": ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
        },
    ),
}


def _exporter_class(env: Mapping[str, str], signal: str) -> Any:
    """The OTLP exporter class for ``signal`` under the configured protocol."""
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        or "http/protobuf"
    )
    if protocol not in _EXPORTERS:
        raise ConfigError(
            f"OTLP protocol {protocol!r} is not supported for {signal}; "
            f"use one of {', '.join(sorted(_EXPORTERS))}"
        )
    package, modules = _EXPORTERS[protocol]
    module, name = modules[signal]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(
            f"exporting {signal} over OTLP {protocol} needs {package}: pip install {package}"
        ) from exc


__all__ = [
    "DROPPED_METRIC",
    "SIGNALS",
    "ExportHealth",
    "Providers",
    "WatchedLogExporter",
    "WatchedMetricExporter",
    "WatchedSpanExporter",
    "build_providers",
    "exporters_from_env",
    "run_bounded",
]
