"""Where the engine writes what happened: one small interface for audit logs and telemetry.

The engine calls every sink for every decision, alert and approval. A sink that raises is
reported as an alert on the other sinks and never turns a deny into an allow. A *required*
sink (the audit log, by default) must record every decision: when it cannot, the call does
not run (:meth:`guard.engine.Guard.record` turns the decision into a deny with an
enforcement-gap alert). A telemetry exporter that is down is not required: it raises the
``sink-failure`` alert and the calls go on. A sink that fails outside its hooks (an export on a
background thread) reports through the function :meth:`Sink.attach` gave it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import ClassVar

from guard.types import Alert, Decision, Severity, ToolCall

log = logging.getLogger("peerguard")


class Sink:
    """Base class for sinks; override the hooks you need (each defaults to doing nothing).

    Attributes:
        required: When true, a call whose decision this sink failed to record does not run.
    """

    required: bool = False

    def on_decision(self, decision: Decision) -> None:
        """A call was decided (before it runs, or instead of running)."""

    def on_alert(self, alert: Alert) -> None:
        """Something the ops team must hear about."""

    def on_approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """A human (or an approver standing in for one) answered a confirmation."""

    def on_latency(self, decision: Decision, seconds: float) -> None:
        """How long deciding took (``check`` only: not approval, not execution)."""

    def on_confirmation_requested(self, decision: Decision) -> None:
        """A confirmation is now waiting for a human."""

    def tool_span(self, call: ToolCall) -> AbstractContextManager[object]:
        """A context around the whole guarded call (telemetry opens a span here)."""
        return contextlib.nullcontext()

    def attach(self, report: Callable[[Alert], None]) -> None:
        """Joined a :class:`Fanout`: ``report`` sends an alert to its *other* sinks.

        For trouble no hook sees, found by the sink on its own: a telemetry export failing on
        a background thread, audit records lost to a full disk. ``report`` never raises and
        never calls this sink back.
        """


class LoggingSink(Sink):
    """Writes alerts to the standard ``logging`` module (logger ``peerguard``)."""

    _LEVELS: ClassVar[dict[Severity, int]] = {
        Severity.INFO: logging.INFO,
        Severity.WARNING: logging.WARNING,
        Severity.ERROR: logging.ERROR,
        Severity.CRITICAL: logging.CRITICAL,
    }

    def on_alert(self, alert: Alert) -> None:
        log.log(self._LEVELS[alert.severity], "%s: %s", alert.rule, alert.message)


_HOOKS = (
    "on_decision",
    "on_alert",
    "on_approval",
    "on_latency",
    "on_confirmation_requested",
    "tool_span",
)


class Fanout:
    """Calls every sink, isolating failures."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = list(sinks)
        # A hook a sink does not override does nothing: call only the ones that do something.
        self._hooks: dict[str, list[tuple[Sink, Callable[..., object]]]] = {
            name: [
                (s, hook)
                for s in self.sinks
                if getattr(hook := getattr(s, name), "__func__", None) is not getattr(Sink, name)
            ]
            for name in _HOOKS
        }
        #: True when some sink opens a context around calls (``tool_span`` is not a no-op).
        self.spans = bool(self._hooks["tool_span"])
        for sink in self.sinks:
            try:
                sink.attach(functools.partial(self._tell_others, sink))
            except Exception as exc:
                self._report("attach", [(sink, exc)])

    def _each(self, name: str, *args: object) -> list[tuple[Sink, BaseException]] | None:
        failures: list[tuple[Sink, BaseException]] | None = None
        for sink, hook in self._hooks[name]:
            try:
                hook(*args)
            except Exception as exc:  # a sink must never break enforcement
                if failures is None:
                    failures = []
                failures.append((sink, exc))
        if failures:
            self._report(name, failures)
        return failures

    def _report(self, name: str, failures: list[tuple[Sink, BaseException]]) -> None:
        for failed, error in failures:
            alert = Alert(
                severity=Severity.ERROR,
                rule="sink-failure",
                message=f"{type(failed).__name__}.{name} failed: {error!r}; records may be missing",
                enforcement_gap=True,
            )
            self._tell_others(failed, alert)

    def _tell_others(self, source: Sink, alert: Alert) -> None:
        """Send ``alert`` about ``source`` to every other sink, and to the ``peerguard`` logger."""
        for sink in self.sinks:
            if sink is source:
                continue
            # Reporting a failure must not recurse into more failure reports.
            with contextlib.suppress(Exception):
                sink.on_alert(alert)
        log.log(LoggingSink._LEVELS[alert.severity], "%s", alert.message)

    def decision(self, decision: Decision) -> list[str]:
        """Record a decision and emit its alerts.

        Returns:
            What went wrong in each *required* sink that failed to record the decision or
            one of its alerts; empty when every required sink has it.
        """
        lost: list[str] = []
        for failures in (
            self._each("on_decision", decision),
            *[self._each("on_alert", alert) for alert in decision.alerts],
        ):
            if failures:
                lost += [f"{type(s).__name__}: {e!r}" for s, e in failures if s.required]
        return lost

    def alert(self, alert: Alert) -> None:
        """Emit one alert."""
        self._each("on_alert", alert)

    def approval(self, decision: Decision, approved: bool, reason: str) -> None:
        """Record a confirmation's answer."""
        self._each("on_approval", decision, approved, reason)

    def latency(self, decision: Decision, seconds: float) -> None:
        """Record how long deciding took."""
        self._each("on_latency", decision, seconds)

    def confirmation_requested(self, decision: Decision) -> None:
        """Record that a confirmation is waiting."""
        self._each("on_confirmation_requested", decision)

    def tool_span(self, call: ToolCall) -> AbstractContextManager[None]:
        """Enter every sink's :meth:`Sink.tool_span` around a guarded call.

        A sink whose context fails to open or close is reported like any sink failure; it
        never hides, replaces or swallows the call's own exception.
        """
        if not self.spans:
            return contextlib.nullcontext()
        return self._tool_spans(call)

    @contextlib.contextmanager
    def _tool_spans(self, call: ToolCall) -> Iterator[None]:
        entered: list[tuple[Sink, AbstractContextManager[object]]] = []
        failures: list[tuple[Sink, BaseException]] = []
        for sink, _hook in self._hooks["tool_span"]:
            try:
                cm = sink.tool_span(call)
                cm.__enter__()
            except Exception as exc:
                failures.append((sink, exc))
                continue
            entered.append((sink, cm))
        self._report("tool_span", failures)
        exc_info: tuple[type[BaseException] | None, BaseException | None, TracebackType | None] = (
            None,
            None,
            None,
        )
        try:
            yield
        except BaseException as exc:
            exc_info = (type(exc), exc, exc.__traceback__)
            raise
        finally:
            failures = []
            for sink, cm in reversed(entered):
                try:
                    cm.__exit__(*exc_info)
                except Exception as exc:
                    failures.append((sink, exc))
            self._report("tool_span", failures)


__all__ = ["Fanout", "LoggingSink", "Sink"]
